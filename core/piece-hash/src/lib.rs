//! The hashing kernel of Filecoin piece commitments (CommP) for `raas-core`: Fr32 expansion of
//! 127-byte quads, SHA-256 truncated to 254 bits, and subtree roots, with SIMD backends (x86
//! SHA extensions, wasm `simd128`).
//!
//! A crate of its own so that a build can optimise it for speed while optimising everything
//! else for size (the browser package: see the `wasm-release` profile of the workspace).
//! `raas_core::cid::piece` builds the streaming hasher, CIDs and sizes on top of it.

#[cfg(any(
    target_arch = "x86_64",
    all(target_arch = "wasm32", target_feature = "simd128")
))]
mod sha_consts;
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
mod sha_wasm;
#[cfg(target_arch = "x86_64")]
mod sha_x86;

use sha2::block_api::compress256;

/// Input bytes per Fr32 "quad" (four 32-byte leaves).
pub const QUAD_INPUT: usize = 127;

const SHA256_IV: [u32; 8] = [
    0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
];

/// The second SHA-256 block of every 64-byte message: 0x80, zeros, bit length 512.
const PAD_BLOCK: [u8; 64] = {
    let mut b = [0u8; 64];
    b[0] = 0x80;
    b[62] = 0x02;
    b
};

/// SHA-256 of a 64-byte block, truncated to 254 bits: one node of the piece tree.
#[inline(always)]
fn hash_block(block: &[u8; 64]) -> [u8; 32] {
    let mut state = SHA256_IV;
    compress256(&mut state, &[*block, PAD_BLOCK]);
    let mut out = [0u8; 32];
    for (chunk, word) in out.chunks_exact_mut(4).zip(state) {
        chunk.copy_from_slice(&word.to_be_bytes());
    }
    out[31] &= 0x3f;
    out
}

/// The parent of two nodes of the piece tree.
#[inline(always)]
pub fn hash_pair(left: &[u8; 32], right: &[u8; 32]) -> [u8; 32] {
    let mut block = [0u8; 64];
    block[..32].copy_from_slice(left);
    block[32..].copy_from_slice(right);
    hash_block(&block)
}

/// Fr32 expansion of 127 bytes into 128: two zero bits after every 254 bits.
#[inline(always)]
fn fr32_expand(inp: &[u8; QUAD_INPUT], out: &mut [[u8; 64]; 2]) {
    let (a, b) = out.split_at_mut(1);
    let (lo, hi) = (&mut a[0], &mut b[0]);
    lo[..32].copy_from_slice(&inp[..32]);
    lo[31] &= 0x3f;
    for j in 0..32 {
        lo[32 + j] = (inp[31 + j] >> 6) | (inp[32 + j] << 2);
    }
    lo[63] &= 0x3f;
    for j in 0..32 {
        hi[j] = (inp[63 + j] >> 4) | (inp[64 + j] << 4);
    }
    hi[31] &= 0x3f;
    for j in 0..31 {
        hi[32 + j] = (inp[95 + j] >> 2) | (inp[96 + j] << 6);
    }
    hi[63] = (inp[126] >> 2) & 0x3f;
}

/// Hashes each 64-byte block into one 32-byte node, two at a time where the CPU allows.
fn hash_blocks(blocks: &[[u8; 64]], out: &mut Vec<[u8; 32]>) {
    out.clear();
    #[cfg(target_arch = "x86_64")]
    if sha_x86::available() {
        let (pairs, tail) = blocks.as_chunks::<2>();
        for [a, b] in pairs {
            // SAFETY: the SHA extensions were detected just above.
            out.extend(unsafe { sha_x86::hash_x2(a, b) });
        }
        out.extend(tail.iter().map(hash_block));
        return;
    }
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    {
        let (quads, tail) = blocks.as_chunks::<4>();
        for four in quads {
            out.extend(sha_wasm::hash_x4(four));
        }
        out.extend(tail.iter().map(hash_block));
    }
    #[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
    out.extend(blocks.iter().map(hash_block));
}

/// Root of the 4-leaf subtree of one 127-byte chunk.
#[inline(always)]
pub fn quad_root(chunk: &[u8; QUAD_INPUT]) -> [u8; 32] {
    let mut leaves = [[0u8; 64]; 2];
    fr32_expand(chunk, &mut leaves);
    hash_pair(&hash_block(&leaves[0]), &hash_block(&leaves[1]))
}

/// Root of a complete subtree over `data`, whose length is `127 · 2^n`.
///
/// Works level by level so that independent blocks can be hashed in pairs.
pub fn subtree_root(data: &[u8]) -> [u8; 32] {
    let (quads, _) = data.as_chunks::<QUAD_INPUT>();
    let mut blocks = vec![[0u8; 64]; quads.len() * 2];
    for (quad, pair) in quads.iter().zip(blocks.as_chunks_mut::<2>().0) {
        fr32_expand(quad, pair);
    }
    let mut nodes = Vec::with_capacity(blocks.len());
    hash_blocks(&blocks, &mut nodes);
    while nodes.len() > 1 {
        let (parents, _) = nodes.as_flattened().as_chunks::<64>();
        blocks.clear();
        blocks.extend_from_slice(parents);
        hash_blocks(&blocks, &mut nodes);
    }
    nodes.first().copied().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The paired (SIMD) path and the one-at-a-time path agree, odd counts included.
    #[test]
    fn paired_hashing_matches_single_hashing() {
        let blocks: Vec<[u8; 64]> = (0..7u8)
            .map(|i| std::array::from_fn(|j| (j as u8).wrapping_mul(i).wrapping_add(i)))
            .collect();
        let mut paired = Vec::new();
        hash_blocks(&blocks, &mut paired);
        let single: Vec<[u8; 32]> = blocks.iter().map(hash_block).collect();
        assert_eq!(paired, single);
    }
}
