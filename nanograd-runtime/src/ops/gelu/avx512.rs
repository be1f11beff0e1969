//! [`super::gelu`]'s `f32` passes in AVX-512.
//!
//! **Forward, sixteen `f32` lanes**, to the accuracy of `f64` arithmetic: `y = x σ(a)` with
//! `a = 2u` carried to about 48 bits as the unevaluated sum of two `f32` (`e^-|a|`
//! multiplies the error of `a` by `|a|`, up to 142 here), so that only the last step
//! rounds to `f32`:
//!
//! 1. `|a| = |x| (A + B x²)`: `x²`, `B x²` and `|x| c` as exact products by fused
//!    multiply-adds (`h = p q`, `l = fma(p, q, -h)`), `A + B x²` by Knuth's two-sum.
//! 2. `|a| = k ln2/32 + r` with `k` the nearest integer and `|r| ≤ ln2/64 ≈ 0.011`:
//!    `ln2/32 = L1 + L2` with `L1` of 11 bits (so `k L1` is exact for `k < 2¹³`), and
//!    `r = rh + rl` with `rh = |a|_hi - k L1` exact.
//! 3. `F = e^-|a| = 2^⌊-k/32⌋ · 2^((-k mod 32)/32) · e^-r`: the middle factor from a table
//!    of 32 two-part constants (two `vpermi2ps`), `e^-r - 1 = -r + r²(1/2 - r/6 + r²/24)`
//!    (truncated below `2^-31`, relative), and the power of two applied by `vscalefps` at
//!    the end, so that an `F` below the smallest normal `f32` keeps its bits until `x F`
//!    rounds.
//! 4. `σ(a) = N/(1 + F)` with `N = 1` for `x ≥ 0` and `F` below: `D = 1 + F` as a two-part
//!    sum; the quotient is `y₀ + q₀ (N - D y₀)` with `q₀` the 14-bit estimate `vrcp14ps`
//!    and `y₀ = N q₀`, the residual exact but for the roundings of low parts (relative
//!    error below `2^-28`), and `y = fma(x, y₀, x q₀ (N - D y₀))`.
//!
//! Above `|x| = 12` (`σ` within `2^-200` of 0 or 1) `y` is `x` or `x · 0` (so `-∞` gives
//! NaN, as the formula does); NaN stays NaN. Every `f32` input within one ulp of the `f64`
//! formula (test `f32_forward_every_input_within_an_ulp`).
//!
//! **Backward, eight `f64` lanes**: the portable loop's formulas (`σ` from `F = e^-|a|`, all
//! in `f64`, one rounding to `f32`), with the two steps that dominate their cost done with
//! what the portable compile cannot use:
//!
//! - the Taylor polynomial of `e^r` by fused multiply-adds (7 instead of 14 operations, and
//!   one rounding per step instead of two);
//! - `q = 1/(1 + F)` from the 14-bit reciprocal estimate `vrcp14pd` and two Newton steps
//!   (`q ← q + q (1 - d q)`: 14 → 28 → 56 bits) instead of a division, whose latency and
//!   throughput on these vectors (16 cycles for 8 lanes) cost as much as the rest together.
//!   `d = 1 + F` lies in `[1, 2]`, so the estimate never meets a zero, an infinity or a
//!   subnormal.
//!
//! In both, the last partial group goes through the same vectors from a zero-padded copy,
//! so every element of a slice gets the same bits whatever its position. The tests of
//! [`super`] run these passes and the portable ones.

use core::arch::x86_64::{__m512, __mmask16, _CMP_LT_OQ, _CMP_NLE_UQ};

use pulp::x86::V4;
use pulp::{b8, f32x8, f64x8, u64x8, Simd};

use super::{A, B, EXP_CUT, LN_2, LOG2_E, ROUND};

/// `f64` lanes in one register.
const L: usize = 8;

/// Whether this CPU has AVX-512 (the passes below run only then).
pub(super) fn available() -> Option<V4> {
    V4::try_new()
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

/// `f32` lanes in one register.
const L32: usize = 16;

/// `A` as the sum of two `f32`.
const AH: f32 = A as f32;
const AL: f32 = (A - AH as f64) as f32;
/// `B` as the sum of two `f32`.
const BH: f32 = B as f32;
const BL: f32 = (B - BH as f64) as f32;
/// `ln2/32` as `L1 + L2`: `L1` has 11 significant bits.
const L1: f32 = 355.0 / 16384.0;
const L2: f32 = (LN_2 / 32.0 - 355.0 / 16384.0) as f32;
/// `32/ln2`.
const K_PER_A: f32 = (32.0 * LOG2_E) as f32;
/// `1.5 · 2²³`: added to a value below `2²²` in magnitude, rounds it to an integer, which
/// then sits in the low bits of the sum.
const ROUND32: f32 = 12_582_912.0;
/// Above this `|x|`, `σ(a)` is within `2^-200` of 0 or 1.
const X_BIG: f32 = 12.0;

/// `2^(((32 - j) mod 32)/32)` rounded to `f32`, for `j` in `0..32`.
pub(super) const EXP2_HI: [f32; 32] = [
    1.0,
    1.9571441,
    1.9152066,
    1.8741677,
    1.8340081,
    1.7947091,
    1.7562522,
    1.7186193,
    1.6817929,
    1.6457555,
    1.6104903,
    1.5759809,
    1.5422108,
    1.5091645,
    1.4768262,
    1.4451808,
    core::f32::consts::SQRT_2,
    1.38391,
    1.3542556,
    1.3252367,
    1.2968396,
    1.269051,
    1.2418578,
    1.2152474,
    1.1892071,
    1.1637249,
    1.1387886,
    1.1143868,
    1.0905077,
    1.0671405,
    1.0442737,
    1.0218972,
];

/// What [`EXP2_HI`] leaves out: `2^(((32 - j) mod 32)/32) - EXP2_HI[j]`, rounded.
pub(super) const EXP2_LO: [f32; 32] = [
    0.0,
    -1.7021804e-08,
    9.845328e-09,
    -4.6630056e-08,
    -1.1239278e-08,
    -1.1415045e-08,
    -9.23577e-09,
    -4.8496176e-08,
    -2.4755327e-08,
    -5.124972e-08,
    9.836217e-09,
    -5.6610254e-08,
    8.070905e-09,
    -2.4959373e-08,
    -4.500899e-08,
    3.3242e-08,
    2.4203235e-08,
    -5.8755774e-08,
    -1.0123349e-08,
    -3.4963733e-08,
    -4.0189995e-08,
    1.4193333e-09,
    4.496838e-08,
    -3.267395e-08,
    3.7976353e-08,
    -4.0514415e-08,
    5.3862223e-08,
    -5.43554e-08,
    -1.307754e-08,
    -5.933752e-08,
    4.83347e-08,
    -4.81156e-08,
];

/// The AVX-512 instructions of the `f32` passes, named for what they compute.
#[derive(Clone, Copy)]
struct Lanes(V4);

impl Lanes {
    #[inline(always)]
    fn splat(self, v: f32) -> __m512 {
        self.0.avx512f._mm512_set1_ps(v)
    }
    #[inline(always)]
    fn add(self, a: __m512, b: __m512) -> __m512 {
        self.0.avx512f._mm512_add_ps(a, b)
    }
    #[inline(always)]
    fn sub(self, a: __m512, b: __m512) -> __m512 {
        self.0.avx512f._mm512_sub_ps(a, b)
    }
    #[inline(always)]
    fn mul(self, a: __m512, b: __m512) -> __m512 {
        self.0.avx512f._mm512_mul_ps(a, b)
    }
    /// `a b + c`, one rounding.
    #[inline(always)]
    fn fma(self, a: __m512, b: __m512, c: __m512) -> __m512 {
        self.0.avx512f._mm512_fmadd_ps(a, b, c)
    }
    /// `a b - c`, one rounding.
    #[inline(always)]
    fn fms(self, a: __m512, b: __m512, c: __m512) -> __m512 {
        self.0.avx512f._mm512_fmsub_ps(a, b, c)
    }
    /// `c - a b`, one rounding.
    #[inline(always)]
    fn fnma(self, a: __m512, b: __m512, c: __m512) -> __m512 {
        self.0.avx512f._mm512_fnmadd_ps(a, b, c)
    }
    /// `a 2^⌊b⌋`, one rounding (into the subnormals too).
    #[inline(always)]
    fn scale(self, a: __m512, b: __m512) -> __m512 {
        self.0.avx512f._mm512_scalef_ps(a, b)
    }
    /// `b` where `k` is set, else `a`.
    #[inline(always)]
    fn select(self, k: __mmask16, a: __m512, b: __m512) -> __m512 {
        self.0.avx512f._mm512_mask_blend_ps(k, a, b)
    }
    /// `table[idx mod 32]` for a table in two registers.
    #[inline(always)]
    fn lookup(self, table: [__m512; 2], idx: __m512) -> __m512 {
        let f = self.0.avx512f;
        f._mm512_permutex2var_ps(table[0], f._mm512_castps_si512(idx), table[1])
    }
}

/// `y = gelu(x)` in `f32` lanes; `x` and `y` have equal lengths (checked by the caller).
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
            let v = Lanes(self.simd);
            let hi: [__m512; 2] = pulp::cast(EXP2_HI);
            let lo: [__m512; 2] = pulp::cast(EXP2_LO);
            let (xs, xt) = pulp::as_arrays::<L32, f32>(self.x);
            let (ys, yt) = pulp::as_arrays_mut::<L32, f32>(self.y);
            for (x, y) in xs.iter().zip(ys.iter_mut()) {
                *y = pulp::cast(gelu16(v, [hi, lo], pulp::cast(*x)));
            }
            if !xt.is_empty() {
                let mut x = [0.0f32; L32];
                x[..xt.len()].copy_from_slice(xt);
                let y: [f32; L32] = pulp::cast(gelu16(v, [hi, lo], pulp::cast(x)));
                yt.copy_from_slice(&y[..yt.len()]);
            }
        }
    }
    Simd::vectorize(simd, Op { simd, x, y });
}

/// `σ(a) = N/D` for sixteen `x`, in parts: `D = dh + dl = 1 + F`, `N = nh + nl` (1 for
/// `x ≥ 0`, `F` below, both scaled by `2^-ns` so that `F`'s bits survive below the smallest
/// normal: `N = 2^⌊ns⌋ (nh + nl)`).
struct Sigmoid {
    nh: __m512,
    nl: __m512,
    ns: __m512,
    dh: __m512,
    dl: __m512,
}

#[inline(always)]
fn sigmoid16(v: Lanes, table: [[__m512; 2]; 2], x: __m512) -> Sigmoid {
    let f = v.0.avx512f;
    let neg = f._mm512_cmp_ps_mask::<_CMP_LT_OQ>(x, f._mm512_setzero_ps());
    let ax = f._mm512_min_ps(f._mm512_abs_ps(x), v.splat(X_BIG));
    // |a| = ax (A + B x²) = ph + pl + ax cl
    let x2 = v.mul(ax, ax);
    let x2l = v.fms(ax, ax, x2);
    let (bh, al) = (v.splat(BH), v.splat(AL));
    let th = v.mul(bh, x2);
    let tl = v.fms(bh, x2, th);
    let tl = v.fma(bh, x2l, v.fma(v.splat(BL), x2, tl));
    // ch + err = AH + th exactly (two-sum)
    let ah = v.splat(AH);
    let ch = v.add(ah, th);
    let tb = v.sub(ch, ah);
    let err = v.add(v.sub(ah, v.sub(ch, tb)), v.sub(th, tb));
    let cl = v.add(err, v.add(al, tl));
    let ph = v.mul(ax, ch);
    let pl = v.fms(ax, ch, ph);
    // k = round(|a| 32/ln2), r = |a| - k ln2/32 = rh + rl
    let t = v.fma(ph, v.splat(K_PER_A), v.splat(ROUND32));
    let k = v.sub(t, v.splat(ROUND32));
    let rh = v.fnma(k, v.splat(L1), ph);
    let rl = v.fnma(k, v.splat(L2), v.fma(ax, cl, pl));
    let r = v.add(rh, rl);
    // e^-r - 1 = r² (1/2 - r/6 + r²/24) - rl - rh
    let inner = v.fma(
        r,
        v.fma(r, v.splat(1.0 / 24.0), v.splat(-1.0 / 6.0)),
        v.splat(0.5),
    );
    let em1 = v.sub(v.fms(v.mul(r, r), inner, rl), rh);
    // F 2^-⌊-k/32⌋ = th2 (1 + em1) + tl2 = fh + fl
    let fh = v.lookup(table[0], t);
    let fl = v.fma(fh, em1, v.lookup(table[1], t));
    let ns = v.mul(k, v.splat(-1.0 / 32.0));
    let (fs, fls) = (v.scale(fh, ns), v.scale(fl, ns));
    // D = 1 + F: dh + dl (fast two-sum: 1 ≥ F)
    let one = v.splat(1.0);
    let dh = v.add(one, fs);
    let dl = v.add(v.sub(fs, v.sub(dh, one)), fls);
    let zero = f._mm512_setzero_ps();
    Sigmoid {
        nh: v.select(neg, one, fh),
        nl: v.select(neg, zero, fl),
        ns: v.select(neg, zero, ns),
        dh,
        dl,
    }
}

/// `gelu(x) = x σ(a)` for sixteen `x`.
#[inline(always)]
fn gelu16(v: Lanes, table: [[__m512; 2]; 2], x: __m512) -> __m512 {
    let f = v.0.avx512f;
    let Sigmoid { nh, nl, ns, dh, dl } = sigmoid16(v, table, x);
    // N/D = y0 + q0 (N - D y0), the residual exact but for the roundings of its low parts
    // (up to 1 % of the high ones: the estimates take both)
    let q0 = f._mm512_rcp14_ps(v.add(dh, dl));
    let y0 = v.mul(v.add(nh, nl), q0);
    let res = v.add(v.fnma(dl, y0, v.fnma(dh, y0, nh)), nl);
    let y = v.scale(v.fma(x, y0, v.mul(x, v.mul(q0, res))), ns);
    // |x| > 12 or NaN: x for x ≥ 0 (and NaN), x · 0 below
    let zero = f._mm512_setzero_ps();
    let neg = f._mm512_cmp_ps_mask::<_CMP_LT_OQ>(x, zero);
    let big = f._mm512_cmp_ps_mask::<_CMP_NLE_UQ>(f._mm512_abs_ps(x), v.splat(X_BIG));
    f._mm512_mask_mov_ps(y, big, f._mm512_mask_mul_ps(x, neg, x, zero))
}
