//! Two SHA-256 compressions interleaved with the x86 SHA extensions.
//!
//! A piece tree hashes millions of independent 64-byte blocks. One SHA-NI hash is bound by
//! the latency of `sha256rnds2`; running two independent messages side by side fills the
//! pipeline and nearly doubles throughput on one core. The second block of every 64-byte
//! message is the constant padding block, so its message schedule is precomputed.
//!
//! The round structure follows the `sha2` crate's SHA-NI backend (MIT/Apache-2.0).

use core::arch::x86_64::*;

use crate::sha_consts::{IV, K32, PAD_WK};

/// Whether this CPU has the SHA extensions (cached by std).
pub(crate) fn available() -> bool {
    std::is_x86_feature_detected!("sha")
        && std::is_x86_feature_detected!("sse4.1")
        && std::is_x86_feature_detected!("ssse3")
}

#[inline(always)]
fn load4(v: &[u32]) -> __m128i {
    // SAFETY: callers pass slices of at least 4 words; loadu has no alignment needs.
    unsafe { _mm_loadu_si128(v.as_ptr().cast()) }
}

/// Four rounds on both lanes with the message words plus constants in `wk`.
#[inline(always)]
unsafe fn rounds4(abef: &mut [__m128i; 2], cdgh: &mut [__m128i; 2], wk: [__m128i; 2]) {
    for l in 0..2 {
        cdgh[l] = _mm_sha256rnds2_epu32(cdgh[l], abef[l], wk[l]);
        abef[l] = _mm_sha256rnds2_epu32(abef[l], cdgh[l], _mm_shuffle_epi32(wk[l], 0x0E));
    }
}

/// Truncated (254-bit) SHA-256 of two 64-byte messages at once.
///
/// # Safety
/// The CPU must support `sha`, `sse4.1` and `ssse3` ([`available`]).
#[target_feature(enable = "sha,sse2,ssse3,sse4.1")]
pub(crate) unsafe fn hash_x2(a: &[u8; 64], b: &[u8; 64]) -> [[u8; 32]; 2] {
    let bswap = _mm_set_epi64x(0x0C0D_0E0F_0809_0A0B, 0x0405_0607_0001_0203);
    // Initial state in the register layout sha256rnds2 expects.
    let dcba = load4(&IV[0..4]);
    let hgfe = load4(&IV[4..8]);
    let cdab = _mm_shuffle_epi32(dcba, 0xB1);
    let efgh = _mm_shuffle_epi32(hgfe, 0x1B);
    let abef0 = _mm_alignr_epi8(cdab, efgh, 8);
    let cdgh0 = _mm_blend_epi16(efgh, cdab, 0xF0);

    let mut abef = [abef0; 2];
    let mut cdgh = [cdgh0; 2];
    let blocks = [a, b];
    let mut w: [[__m128i; 4]; 2] = [[_mm_setzero_si128(); 4]; 2];
    for l in 0..2 {
        for (i, word) in w[l].iter_mut().enumerate() {
            // SAFETY: each block is 64 bytes, so the four 16-byte loads are in bounds.
            let raw = unsafe { _mm_loadu_si128(blocks[l].as_ptr().add(16 * i).cast()) };
            *word = _mm_shuffle_epi8(raw, bswap);
        }
    }
    // First block: the message itself.
    for r in 0..4 {
        let k = load4(&K32[4 * r..]);
        // SAFETY: same target features as this function.
        unsafe {
            rounds4(
                &mut abef,
                &mut cdgh,
                [_mm_add_epi32(w[0][r], k), _mm_add_epi32(w[1][r], k)],
            )
        };
    }
    for r in 4..16 {
        let i = r % 4;
        let k = load4(&K32[4 * r..]);
        let mut wk = [_mm_setzero_si128(); 2];
        for l in 0..2 {
            let t1 = _mm_sha256msg1_epu32(w[l][i], w[l][(i + 1) % 4]);
            let t2 = _mm_alignr_epi8(w[l][(i + 3) % 4], w[l][(i + 2) % 4], 4);
            w[l][i] = _mm_sha256msg2_epu32(_mm_add_epi32(t1, t2), w[l][(i + 3) % 4]);
            wk[l] = _mm_add_epi32(w[l][i], k);
        }
        // SAFETY: same target features as this function.
        unsafe { rounds4(&mut abef, &mut cdgh, wk) };
    }
    for l in 0..2 {
        abef[l] = _mm_add_epi32(abef[l], abef0);
        cdgh[l] = _mm_add_epi32(cdgh[l], cdgh0);
    }
    // Second block: the constant padding, schedule precomputed.
    let (abef1, cdgh1) = (abef, cdgh);
    for r in 0..16 {
        let wk = load4(&PAD_WK[4 * r..]);
        // SAFETY: same target features as this function.
        unsafe { rounds4(&mut abef, &mut cdgh, [wk, wk]) };
    }
    let mut out = [[0u8; 32]; 2];
    for l in 0..2 {
        let abef_l = _mm_add_epi32(abef[l], abef1[l]);
        let cdgh_l = _mm_add_epi32(cdgh[l], cdgh1[l]);
        let feba = _mm_shuffle_epi32(abef_l, 0x1B);
        let dchg = _mm_shuffle_epi32(cdgh_l, 0xB1);
        let dcba = _mm_blend_epi16(feba, dchg, 0xF0);
        let hgef = _mm_alignr_epi8(dchg, feba, 8);
        // SAFETY: out[l] is 32 bytes: two 16-byte stores.
        unsafe {
            _mm_storeu_si128(out[l].as_mut_ptr().cast(), _mm_shuffle_epi8(dcba, bswap));
            _mm_storeu_si128(
                out[l].as_mut_ptr().add(16).cast(),
                _mm_shuffle_epi8(hgef, bswap),
            );
        }
        out[l][31] &= 0x3f;
    }
    out
}
