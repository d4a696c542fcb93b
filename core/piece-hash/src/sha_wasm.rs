//! Four SHA-256 hashes of 64-byte messages at once, one per lane of a wasm `v128`.
//!
//! wasm has no SHA instructions, but a piece tree hashes millions of independent blocks, so
//! running four messages side by side in SIMD lanes does four times the work per
//! instruction. The second block of every 64-byte message is the constant padding block,
//! whose message schedule is precomputed.

use core::arch::wasm32::*;

use crate::sha_consts::{IV, K32, PAD_WK};

#[inline(always)]
fn rotr(x: v128, n: u32) -> v128 {
    v128_or(u32x4_shr(x, n), u32x4_shl(x, 32 - n))
}

/// One round on four lanes; `wk` is the message word plus the round constant.
#[inline(always)]
fn round(s: &mut [v128; 8], wk: v128) {
    let [a, b, c, d, e, f, g, h] = *s;
    let s1 = v128_xor(v128_xor(rotr(e, 6), rotr(e, 11)), rotr(e, 25));
    let ch = v128_xor(v128_and(e, f), v128_andnot(g, e));
    let t1 = u32x4_add(u32x4_add(h, s1), u32x4_add(ch, wk));
    let s0 = v128_xor(v128_xor(rotr(a, 2), rotr(a, 13)), rotr(a, 22));
    let maj = v128_or(v128_and(a, b), v128_and(c, v128_or(a, b)));
    let t2 = u32x4_add(s0, maj);
    *s = [u32x4_add(t1, t2), a, b, c, u32x4_add(d, t1), e, f, g];
}

/// Truncated (254-bit) SHA-256 of four 64-byte messages.
pub(crate) fn hash_x4(blocks: &[[u8; 64]; 4]) -> [[u8; 32]; 4] {
    let word = |lane: usize, i: usize| {
        let b = &blocks[lane];
        u32::from_be_bytes([b[4 * i], b[4 * i + 1], b[4 * i + 2], b[4 * i + 3]])
    };
    let mut w = [u32x4_splat(0); 16];
    for (i, wi) in w.iter_mut().enumerate() {
        *wi = u32x4(word(0, i), word(1, i), word(2, i), word(3, i));
    }
    // A closure: target-feature functions cannot be passed by name.
    #[allow(clippy::redundant_closure)]
    let iv = IV.map(|x| u32x4_splat(x));
    let mut s = iv;
    for t in 0..64 {
        if t >= 16 {
            let w15 = w[(t + 1) % 16];
            let w2 = w[(t + 14) % 16];
            let s0 = v128_xor(v128_xor(rotr(w15, 7), rotr(w15, 18)), u32x4_shr(w15, 3));
            let s1 = v128_xor(v128_xor(rotr(w2, 17), rotr(w2, 19)), u32x4_shr(w2, 10));
            w[t % 16] = u32x4_add(u32x4_add(w[t % 16], s0), u32x4_add(w[(t + 9) % 16], s1));
        }
        round(&mut s, u32x4_add(w[t % 16], u32x4_splat(K32[t])));
    }
    for (si, ivi) in s.iter_mut().zip(iv) {
        *si = u32x4_add(*si, ivi);
    }
    let mid = s;
    for wk in PAD_WK {
        round(&mut s, u32x4_splat(wk));
    }
    let mut out = [[0u8; 32]; 4];
    for (i, (si, mi)) in s.iter().zip(mid).enumerate() {
        let v = u32x4_add(*si, mi);
        let lanes = [
            u32x4_extract_lane::<0>(v),
            u32x4_extract_lane::<1>(v),
            u32x4_extract_lane::<2>(v),
            u32x4_extract_lane::<3>(v),
        ];
        for (lane, value) in lanes.into_iter().enumerate() {
            out[lane][4 * i..4 * i + 4].copy_from_slice(&value.to_be_bytes());
        }
    }
    for o in &mut out {
        o[31] &= 0x3f;
    }
    out
}
