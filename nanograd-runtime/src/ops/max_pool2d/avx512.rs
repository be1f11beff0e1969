//! The 2x2, stride-2 max pooling's forward pass, and its backward pass that writes `dx` (overwriting, or through
//! relu's derivative), for `f32` in sixteen lanes: eight windows of an output row at a time.
//!
//! The two input rows of eight windows are two vectors of sixteen; the windows' outputs,
//! each repeated twice (`y[j]` in lanes `2j` and `2j + 1`), are compared with both, which
//! gives two masks of sixteen bits, `a` for the upper row and `b` for the lower. A window's
//! four candidates are then bits `2j`, `2j + 1` of `a` and of `b`, and the first one equal to
//! the output (the portable pass's choice, PyTorch's for ties) is a few operations on the
//! masks as integers; the gradient, repeated as `y` is, is written through the two masks of
//! chosen lanes (and, through relu, of positive inputs). The values are those of the
//! portable pass to the bit: each `dx` is `dy` of its window or zero.

use core::arch::x86_64::{__m512, __m512i, _CMP_EQ_OQ, _CMP_GT_OQ, _CMP_UNORD_Q};

use core::arch::x86_64::{_mm512_mask_storeu_ps, _mm512_maskz_loadu_ps};

use pulp::x86::V4;
use pulp::{u32x16, Simd};

use crate::simd::first_lanes;

/// Whether this CPU has AVX-512 (the pass below runs only then).
pub(super) fn available() -> Option<V4> {
    V4::try_new()
}

/// The first `s.len()` lanes (at most 16) loaded from `s`, zeros in the others. Called only
/// inside this file's passes, under AVX-512.
#[inline(always)]
fn load(s: &[f32]) -> __m512 {
    debug_assert!(s.len() <= 16);
    // SAFETY: AVX-512F is present (the caller runs under `V4`), and the mask reads only the
    // first `s.len()` lanes, which are `s`'s elements (masked lanes are not accessed)
    unsafe { _mm512_maskz_loadu_ps(first_lanes(s.len()), s.as_ptr()) }
}

/// The first `s.len()` lanes (at most 16) of `v` stored into `s`. Called only inside this
/// file's passes, under AVX-512.
#[inline(always)]
fn store(s: &mut [f32], v: __m512) {
    debug_assert!(s.len() <= 16);
    // SAFETY: as in `load`: only the first `s.len()` lanes are written, `s`'s elements
    unsafe { _mm512_mask_storeu_ps(s.as_mut_ptr(), first_lanes(s.len()), v) }
}

/// The even bits of a 16-bit lane mask: one bit per window, at its first lane.
const EVEN: u32 = 0x5555;

/// The 2x2, stride-2 backward pass over `[planes, h, w]` (`x`, `dx`) and `[planes, h/2,
/// w/2]` (`y`, `dy`), lengths checked by the caller: `dx` overwritten with each window's
/// gradient at its first input equal to its output (only where that input is positive
/// when `RELU`), zeros elsewhere. Returns whether every window found its output among its
/// inputs (false for a NaN maximum, which the caller's general pass then handles).
pub(super) fn backward_2x2<const RELU: bool>(
    simd: V4,
    (h, w): (usize, usize),
    x: &[f32],
    y: &[f32],
    dy: &[f32],
    dx: &mut [f32],
) -> bool {
    struct Op<'a, const RELU: bool> {
        simd: V4,
        h: usize,
        w: usize,
        x: &'a [f32],
        y: &'a [f32],
        dy: &'a [f32],
        dx: &'a mut [f32],
    }
    impl<const RELU: bool> pulp::WithSimd for Op<'_, RELU> {
        type Output = bool;
        #[inline(always)]
        fn with_simd<S: Simd>(self, _: S) -> bool {
            let Self {
                simd,
                h,
                w,
                x,
                y,
                dy,
                dx,
            } = self;
            let (oh, ow) = (h / 2, w / 2);
            let f = simd.avx512f;
            let dup: __m512i = pulp::cast(u32x16(0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7));
            let zero = f._mm512_setzero_ps();
            let mut found_all = true;
            let planes = x
                .chunks_exact(h * w)
                .zip(dx.chunks_exact_mut(h * w))
                .zip(y.chunks_exact(oh * ow).zip(dy.chunks_exact(oh * ow)));
            for ((xp, dxp), (yp, dyp)) in planes {
                let (covered, uncovered) = dxp.split_at_mut(2 * oh * w);
                uncovered.fill(0.0);
                for (i, drows) in covered.chunks_exact_mut(2 * w).enumerate() {
                    let (d0, d1) = drows.split_at_mut(w);
                    let (r0, r1) = (&xp[2 * i * w..][..w], &xp[(2 * i + 1) * w..][..w]);
                    let (yr, gr) = (&yp[i * ow..][..ow], &dyp[i * ow..][..ow]);
                    for j in (0..ow).step_by(8) {
                        let count = (ow - j).min(8);
                        let lanes = 2 * j..2 * (j + count);
                        let (xa, xb) = (load(&r0[lanes.clone()]), load(&r1[lanes.clone()]));
                        let t = f._mm512_permutexvar_ps(dup, load(&yr[j..j + count]));
                        let g = f._mm512_permutexvar_ps(dup, load(&gr[j..j + count]));
                        let a = u32::from(f._mm512_cmp_ps_mask::<_CMP_EQ_OQ>(xa, t));
                        let b = u32::from(f._mm512_cmp_ps_mask::<_CMP_EQ_OQ>(xb, t));
                        // the four candidates of each window, at its even bit
                        let (a0, a1, b0, b1) =
                            (a & EVEN, (a >> 1) & EVEN, b & EVEN, (b >> 1) & EVEN);
                        let m1 = !a0 & a1;
                        let m2 = !a0 & !a1 & b0;
                        let m3 = !a0 & !a1 & !b0 & b1;
                        let valid = EVEN & ((1u32 << (2 * count)) - 1);
                        found_all &= (a0 | a1 | b0 | b1) & valid == valid;
                        let mut upper = ((a0 | (m1 << 1)) & 0xffff) as u16;
                        let mut lower = ((m2 | (m3 << 1)) & 0xffff) as u16;
                        if RELU {
                            upper &= f._mm512_cmp_ps_mask::<_CMP_GT_OQ>(xa, zero);
                            lower &= f._mm512_cmp_ps_mask::<_CMP_GT_OQ>(xb, zero);
                        }
                        let (ga, gb) = (
                            f._mm512_maskz_mov_ps(upper, g),
                            f._mm512_maskz_mov_ps(lower, g),
                        );
                        store(&mut d0[lanes.clone()], ga);
                        store(&mut d1[lanes], gb);
                    }
                    d0[2 * ow..].fill(0.0);
                    d1[2 * ow..].fill(0.0);
                }
            }
            found_all
        }
    }
    Simd::vectorize(
        simd,
        Op::<RELU> {
            simd,
            h,
            w,
            x,
            y,
            dy,
            dx,
        },
    )
}

/// The 2x2, stride-2 forward pass over `[planes, h, w]` (`x`) into `[planes, h/2, w/2]`
/// (`y`), lengths checked by the caller, sixteen windows of an output row at a time: the
/// portable pass's `max(max(max(a0, a1), b0), b1)` with its `max(best, v) = v` if `v > best`
/// or `v` is NaN, else `best` (so the same bits: the first of equal values, the last NaN).
pub(super) fn forward_2x2(simd: V4, (h, w): (usize, usize), x: &[f32], y: &mut [f32]) {
    struct Op<'a> {
        simd: V4,
        h: usize,
        w: usize,
        x: &'a [f32],
        y: &'a mut [f32],
    }
    impl pulp::WithSimd for Op<'_> {
        type Output = ();
        #[inline(always)]
        fn with_simd<S: Simd>(self, _: S) {
            let Self { simd, h, w, x, y } = self;
            let (oh, ow) = (h / 2, w / 2);
            let f = simd.avx512f;
            let even: __m512i = pulp::cast(u32x16(
                0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30,
            ));
            let odd: __m512i = pulp::cast(u32x16(
                1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31,
            ));
            let step = |best: __m512, v: __m512| {
                let k = f._mm512_cmp_ps_mask::<_CMP_GT_OQ>(v, best)
                    | f._mm512_cmp_ps_mask::<_CMP_UNORD_Q>(v, v);
                f._mm512_mask_blend_ps(k, best, v)
            };
            // the window's first (even) and second (odd) inputs of sixteen windows
            let pairs = |r: &[f32]| {
                let half = r.len().min(16);
                let (lo, hi) = (load(&r[..half]), load(&r[half..]));
                (
                    f._mm512_permutex2var_ps(lo, even, hi),
                    f._mm512_permutex2var_ps(lo, odd, hi),
                )
            };
            for (xp, yp) in x.chunks_exact(h * w).zip(y.chunks_exact_mut(oh * ow)) {
                for (i, yrow) in yp.chunks_exact_mut(ow).enumerate() {
                    let (r0, r1) = (&xp[2 * i * w..][..2 * ow], &xp[(2 * i + 1) * w..][..2 * ow]);
                    for j in (0..ow).step_by(16) {
                        let count = (ow - j).min(16);
                        let lanes = 2 * j..2 * (j + count);
                        let (a0, a1) = pairs(&r0[lanes.clone()]);
                        let (b0, b1) = pairs(&r1[lanes]);
                        let best = step(step(step(a0, a1), b0), b1);
                        store(&mut yrow[j..j + count], best);
                    }
                }
            }
        }
    }
    Simd::vectorize(simd, Op { simd, h, w, x, y })
}
