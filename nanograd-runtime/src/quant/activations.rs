//! Dynamic quantization of activations: one symmetric scale per row, computed on each call.
//!
//! ```text
//! s = max_k |x[k]| / 127          (0 for a row of zeros: every byte is then the zero point)
//! q[k] = clamp(round_half_even(x[k] · (127 / max|x|)), −127, 127) + 128      (a u8)
//! x[k] ≈ s · (q[k] − 128)
//! ```
//!
//! The AVX-512 path rounds with `vcvtps2dq` in the default rounding mode (to nearest, ties
//! to even), the portable path with `f32::round_ties_even`: the same bytes for every finite
//! input. A row with a non-finite value gives unspecified bytes (no panic).

use super::Path;

/// The largest magnitude of `x`: the scale's numerator.
fn amax(path: Path, x: &[f32]) -> f32 {
    match path {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `Path::Vnni` exists only on CPUs with avx512f and avx512bw.
        Path::Vnni => unsafe { avx512::amax(x) },
        _ => x
            .iter()
            .fold(0.0f32, |m, &v| if v.abs() > m { v.abs() } else { m }),
    }
}

/// Quantizes `x` (one row of `x.len()` values) into `q` (at least as long; the bytes past
/// `x.len()` are set to 128, the zero point) and returns the row's scale.
pub fn quantize_row(path: Path, x: &[f32], q: &mut [u8]) -> f32 {
    let m = amax(path, x);
    let inv = if m > 0.0 { 127.0 / m } else { 0.0 };
    let (head, pad) = q.split_at_mut(x.len());
    match path {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: as above.
        Path::Vnni => unsafe { avx512::quantize(x, inv, head) },
        _ => quantize_portable(x, inv, head),
    }
    pad.fill(128);
    m / 127.0
}

#[inline]
fn quantize_one(v: f32, inv: f32) -> u8 {
    (super::round_even(v * inv) as i32).clamp(-127, 127) as u8 ^ 0x80
}

fn quantize_portable(x: &[f32], inv: f32, q: &mut [u8]) {
    for (qv, &v) in q.iter_mut().zip(x) {
        *qv = quantize_one(v, inv);
    }
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use core::arch::x86_64::*;

    /// Four running maxima of 16 lanes each, so that the loads, not the latency of one
    /// chain of `vmaxps`, set the pace.
    #[target_feature(enable = "avx512f,avx512bw")]
    pub(super) unsafe fn amax(x: &[f32]) -> f32 {
        let mut m = [_mm512_setzero_ps(); 4];
        let blocks = x.chunks_exact(64);
        let rest = blocks.remainder();
        for c in blocks {
            for (j, mj) in m.iter_mut().enumerate() {
                let v = _mm512_abs_ps(_mm512_loadu_ps(c.as_ptr().add(16 * j)));
                *mj = _mm512_max_ps(*mj, v);
            }
        }
        let chunks = rest.chunks_exact(16);
        let tail = chunks.remainder();
        for c in chunks {
            m[0] = _mm512_max_ps(m[0], _mm512_abs_ps(_mm512_loadu_ps(c.as_ptr())));
        }
        let m = _mm512_max_ps(_mm512_max_ps(m[0], m[1]), _mm512_max_ps(m[2], m[3]));
        let m = _mm512_reduce_max_ps(m);
        tail.iter()
            .fold(m, |m, &v| if v.abs() > m { v.abs() } else { m })
    }

    #[target_feature(enable = "avx512f,avx512bw")]
    pub(super) unsafe fn quantize(x: &[f32], inv: f32, q: &mut [u8]) {
        let n = x.len().min(q.len());
        let (inv_v, lo, hi) = (
            _mm512_set1_ps(inv),
            _mm512_set1_epi32(-127),
            _mm512_set1_epi32(127),
        );
        let off = _mm512_set1_epi32(128);
        let mut i = 0;
        while i + 16 <= n {
            let v = _mm512_mul_ps(_mm512_loadu_ps(x.as_ptr().add(i)), inv_v);
            let r = _mm512_cvtps_epi32(v);
            let r = _mm512_add_epi32(_mm512_min_epi32(_mm512_max_epi32(r, lo), hi), off);
            _mm_storeu_si128(q.as_mut_ptr().add(i).cast(), _mm512_cvtepi32_epi8(r));
            i += 16;
        }
        for j in i..n {
            q[j] = super::quantize_one(x[j], inv);
        }
    }
}
