//! [`super::gelu`]'s `f32` passes in AVX-512: the portable loops' formulas (`x σ(a)` with
//! `σ` from `F = e^-|a|`, all in `f64`, one rounding to `f32`), with the two steps that
//! dominate their cost done with what the portable compile cannot use:
//!
//! - the Taylor polynomial of `e^r` by fused multiply-adds (7 instead of 14 operations, and
//!   one rounding per step instead of two);
//! - `q = 1/(1 + F)` from the 14-bit reciprocal estimate `vrcp14pd` and two Newton steps
//!   (`q ← q + q (1 - d q)`: 14 → 28 → 56 bits) instead of a division, whose latency and
//!   throughput on these vectors (16 cycles for 8 lanes) cost as much as the rest together.
//!   `d = 1 + F` lies in `[1, 2]`, so the estimate never meets a zero, an infinity or a
//!   subnormal.
//!
//! Eight elements at a time (`f32` → `f64` lanes); the last partial group goes through the
//! same vectors from a zero-padded copy, so every element of a slice gets the same bits
//! whatever its position. The results differ from the portable loops' only in the last bits
//! of the `f64` intermediates (both stay within one `f32` ulp of the exact formula: the
//! tests of [`super`] run both).

use pulp::x86::V4;
use pulp::{b8, f32x8, f64x8, u64x8, Simd};

use super::{A, B, EXP_CUT, LN_2, LOG2_E, ROUND};

/// `f64` lanes in one register.
const L: usize = 8;

/// Whether this CPU has AVX-512 (the passes below run only then).
pub(super) fn available() -> Option<V4> {
    V4::try_new()
}

/// `y = gelu(x)`; `x` and `y` have equal lengths (checked by the caller).
pub(super) fn forward(simd: V4, x: &[f32], y: &mut [f32]) {
    struct Op<'a> {
        simd: V4,
        x: &'a [f32],
        y: &'a mut [f32],
    }
    impl pulp::WithSimd for Op<'_> {
        type Output = ();
        #[inline(always)]
        fn with_simd<S: Simd>(self, _: S) {
            let simd = self.simd;
            let (xs, xt) = pulp::as_arrays::<L, f32>(self.x);
            let (ys, yt) = pulp::as_arrays_mut::<L, f32>(self.y);
            for (x, y) in xs.iter().zip(ys.iter_mut()) {
                *y = gelu8(simd, *x);
            }
            if !xt.is_empty() {
                let mut x = [0.0f32; L];
                x[..xt.len()].copy_from_slice(xt);
                let y = gelu8(simd, x);
                yt.copy_from_slice(&y[..yt.len()]);
            }
        }
    }
    Simd::vectorize(simd, Op { simd, x, y });
}

/// `dx (+)= dy · gelu'(x)` (overwriting with `OVERWRITE`); equal lengths, checked by the caller.
pub(super) fn backward<const OVERWRITE: bool>(simd: V4, x: &[f32], dy: &[f32], dx: &mut [f32]) {
    struct Op<'a, const OVERWRITE: bool> {
        simd: V4,
        x: &'a [f32],
        dy: &'a [f32],
        dx: &'a mut [f32],
    }
    impl<const OVERWRITE: bool> pulp::WithSimd for Op<'_, OVERWRITE> {
        type Output = ();
        #[inline(always)]
        fn with_simd<S: Simd>(self, _: S) {
            let simd = self.simd;
            let (xs, xt) = pulp::as_arrays::<L, f32>(self.x);
            let (gs, gt) = pulp::as_arrays::<L, f32>(self.dy);
            let (ds, dt) = pulp::as_arrays_mut::<L, f32>(self.dx);
            for ((x, g), d) in xs.iter().zip(gs).zip(ds.iter_mut()) {
                *d = gelu_grad8::<OVERWRITE>(simd, *x, *g, *d);
            }
            if !xt.is_empty() {
                let (mut x, mut g, mut d) = ([0.0f32; L], [0.0f32; L], [0.0f32; L]);
                x[..xt.len()].copy_from_slice(xt);
                g[..gt.len()].copy_from_slice(gt);
                d[..dt.len()].copy_from_slice(dt);
                let d = gelu_grad8::<OVERWRITE>(simd, x, g, d);
                dt.copy_from_slice(&d[..dt.len()]);
            }
        }
    }
    Simd::vectorize(simd, Op::<OVERWRITE> { simd, x, dy, dx });
}

/// Eight `f32` widened to `f64` lanes.
#[inline(always)]
fn widen(simd: V4, x: [f32; L]) -> f64x8 {
    simd.convert_f32x8_to_f64x8(pulp::cast::<[f32; L], f32x8>(x))
}

/// Eight `f64` lanes rounded to `f32`.
#[inline(always)]
fn narrow(simd: V4, x: f64x8) -> [f32; L] {
    pulp::cast::<f32x8, [f32; L]>(simd.convert_f64x8_to_f32x8(x))
}

#[inline(always)]
fn gelu8(simd: V4, x: [f32; L]) -> [f32; L] {
    let x = widen(simd, x);
    let Parts { w, q, .. } = parts(simd, x);
    narrow(simd, simd.mul_f64x8(x, simd.mul_f64x8(w, q)))
}

#[inline(always)]
fn gelu_grad8<const OVERWRITE: bool>(simd: V4, x: [f32; L], g: [f32; L], d: [f32; L]) -> [f32; L] {
    let x = widen(simd, x);
    let Parts { w, q, f, .. } = parts(simd, x);
    let splat = |v| simd.splat_f64x8(v);
    // a' = A + 3B x², gelu' = q (w + x a' F q)
    let da = simd.mul_add_f64x8(splat(3.0 * B), simd.mul_f64x8(x, x), splat(A));
    let slope = simd.mul_f64x8(simd.mul_f64x8(x, da), simd.mul_f64x8(f, q));
    let grad = simd.mul_f64x8(q, simd.add_f64x8(w, slope));
    let g = widen(simd, g);
    let out = if OVERWRITE {
        simd.mul_f64x8(g, grad)
    } else {
        simd.mul_add_f64x8(g, grad, widen(simd, d))
    };
    narrow(simd, out)
}

/// What forward and backward share (see `sigmoid_parts` in [`super`]): `σ(a) = w q`,
/// `σ(a)(1 - σ(a)) = F q²`.
struct Parts {
    w: f64x8,
    q: f64x8,
    f: f64x8,
}

#[inline(always)]
fn parts(simd: V4, x: f64x8) -> Parts {
    let splat = |v| simd.splat_f64x8(v);
    let a = simd.mul_f64x8(
        x,
        simd.mul_add_f64x8(splat(B), simd.mul_f64x8(x, x), splat(A)),
    );
    let f = exp_neg(simd, simd.sub_f64x8(splat(0.0), simd.abs_f64x8(a)));
    let d = simd.add_f64x8(splat(1.0), f);
    let q = reciprocal(simd, d);
    let w = simd.select_f64x8(simd.cmp_lt_f64x8(a, splat(0.0)), f, splat(1.0));
    Parts { w, q, f }
}

/// `1/d` for `d` in `[1, 2]`: the 14-bit estimate and two Newton steps.
#[inline(always)]
fn reciprocal(simd: V4, d: f64x8) -> f64x8 {
    let one = simd.splat_f64x8(1.0);
    let mut q: f64x8 = pulp::cast(simd.avx512f._mm512_rcp14_pd(pulp::cast(d)));
    for _ in 0..2 {
        // e = 1 - d q (one rounding), q ← q + q e
        let e = simd.mul_add_f64x8(simd.sub_f64x8(simd.splat_f64x8(0.0), d), q, one);
        q = simd.mul_add_f64x8(q, e, q);
    }
    q
}

/// `e^b` for `b ≤ 0` (and 0 below `-EXP_CUT` and for NaN), as `exp_neg` in [`super`]:
/// `b = n ln 2 + r`, `e^r` by its Taylor polynomial of degree 7, `2ⁿ` from exponent bits.
#[inline(always)]
fn exp_neg(simd: V4, b: f64x8) -> f64x8 {
    let splat = |v| simd.splat_f64x8(v);
    let inside: b8 = simd.cmp_gt_f64x8(b, splat(-EXP_CUT));
    let b = simd.select_f64x8(inside, b, splat(-EXP_CUT));
    let t = simd.mul_add_f64x8(b, splat(LOG2_E), splat(ROUND));
    let n = simd.sub_f64x8(t, splat(ROUND));
    // r = b - n ln 2 with one rounding
    let r = simd.mul_add_f64x8(simd.sub_f64x8(splat(0.0), n), splat(LN_2), b);
    let mut p = splat(1.0 / 5040.0);
    for c in [720.0, 120.0, 24.0, 6.0, 2.0, 1.0, 1.0] {
        p = simd.mul_add_f64x8(p, r, splat(1.0 / c));
    }
    let bits: u64x8 = pulp::cast(t);
    let scale: f64x8 = pulp::cast(
        simd.shl_const_u64x8::<52>(simd.wrapping_add_u64x8(bits, simd.splat_u64x8(1023))),
    );
    simd.select_f64x8(inside, simd.mul_f64x8(p, scale), splat(0.0))
}
