//! GELU with the tanh approximation (the seed's `gelu`; PyTorch's
//! `F.gelu(x, approximate="tanh")`):
//!
//! `gelu(x) = x/2 · (1 + tanh(u))`, `u = √(2/π) · (x + 0.044715 x³)`;
//!
//! `d gelu / dx = (1 + tanh u)/2 + x/2 · (1 - tanh² u) · √(2/π) · (1 + 3 · 0.044715 x²)`.
//!
//! `f64` evaluates these formulas as written, with the C library's `tanh`, element by
//! element. `f32` runs a loop compiled for the CPU's widest vectors ([`crate::simd`]), in
//! `f64` arithmetic with one rounding to `f32` at the end, on the same function written
//! without `tanh`: `(1 + tanh u)/2 = σ(a)`, the logistic function of `a = 2u`, so
//!
//! `gelu(x) = x σ(a)`, `d gelu / dx = σ(a) + x a' σ(a)(1 - σ(a))`,
//! `a' = 2√(2/π) (1 + 3 · 0.044715 x²)`;
//!
//! with `F = e^-|a|`, `σ(a) = 1/(1 + F)` for `a ≥ 0` and `F/(1 + F)` below, and
//! `σ(1 - σ) = F/(1 + F)²`. `e^-|a|` is a range reduction by `ln 2` and a Taylor polynomial
//! (see `exp_neg`). Nothing cancels: for `x ≪ 0`, `1 + tanh u` is lost entirely in `f32`
//! (`tanh u` rounds to -1 below `x ≈ -5.16`, where `gelu` is still `-7.7e-8`), and the `f64`
//! argument keeps `e^-|a|` accurate where `|a|` reaches 87 (an `a` rounded to `f32` would
//! put tens of ulps of error into `F` there, each ulp of `a` counting `|a|` times).
//!
//! On a CPU with AVX-512 the `f32` passes run `avx512.rs` instead, for every length.
//! Backward: the same formulas in `f64` lanes, with fused multiply-adds and a reciprocal
//! estimate refined by Newton steps in place of the division (2.09–2.12 → 1.79–1.83 ns per
//! element, best of 200 calls over 32,768 elements on a shared Xeon). Forward: sixteen `f32`
//! lanes with `a` carried as a sum of two `f32` and `e^-|a|` from a table (see there),
//! 1.35–1.48× the `f64` lanes' speed (2.09–2.37 → 1.54–1.61 ns per element, best of 200
//! calls over 32,768 and 393,216 elements, both in one run on a loaded machine). The
//! backward pass stays in `f64` lanes: near the zero of `gelu'` at `x ≈ -0.7518`, `σ` and
//! `x a' σ(1 - σ)` cancel, so `F`, `a'` and `1/(1 + F)²` would all need two-`f32` arithmetic,
//! about as many operations per element as the `f64` lanes take.
//!
//! Measured against the same formulas in `f64` (test `f32_*_within_ulps_of_f64`: `[-10, 10]`
//! in steps of `2^-14`, ±0, ±1e-30, ±1e-40, ±20, ±88, ±1e30, ±`f32::MAX`): at most 0.60 ulp
//! forward (0.53 in the AVX-512 pass) and 0.78 ulp backward (as an `f32` `gelu'`, including
//! next to its zero at `x ≈ -0.7518`), so correctly rounded but for a few last-bit ties. The
//! forward passes also on every `f32` in `[-12.5, 12.5]` (test
//! `f32_forward_every_input_within_an_ulp`, ignored by default: 7.5 minutes for both passes in a
//! release build on a loaded machine):
//! at most 0.62 ulp portable, 0.76 ulp AVX-512. At ±∞ and NaN both
//! types give the literal formula's results: `gelu(∞) = ∞`, `gelu(-∞) = -∞ · 0 = NaN`,
//! `gelu'(±∞) = NaN` (as PyTorch), NaN stays NaN.

use super::{unary, unary_backward};
#[cfg(target_arch = "x86_64")]
use crate::float::{as_f32, as_f32_mut};
use crate::simd::{vectorize_above, Kernel};
use crate::{check_len, Float, Result};

#[cfg(target_arch = "x86_64")]
mod avx512;
// the exact (erf) GELU: `gelu_erf`, `gelu_erf_backward`, `gelu_erf_backward_overwrite`
mod erf;
pub use erf::*;

/// `√(2/π)`.
const SQRT_2_OVER_PI: f64 = 0.797_884_560_802_865_4;
/// The cubic coefficient of the approximation.
const KAPPA: f64 = 0.044_715;

/// `y = x/2 · (1 + tanh(√(2/π) (x + 0.044715 x³)))` elementwise.
pub fn gelu<T: Float>(x: &[T], y: &mut [T]) -> Result<()> {
    if T::DTYPE == "f32" {
        check_len("gelu", "y", x.len(), y.len())?;
        #[cfg(target_arch = "x86_64")]
        if let (Some(simd), Some(x), Some(y)) = (avx512::available(), as_f32(x), as_f32_mut(y)) {
            avx512::forward(simd, x, y);
            return Ok(());
        }
        vectorize_above(x.len(), Gelu { x, y });
        return Ok(());
    }
    let (s, k) = (T::from_f64(SQRT_2_OVER_PI), T::from_f64(KAPPA));
    let half = T::from_f64(0.5);
    unary("gelu", x, y, |v| {
        let t = (s * (v + k * v * v * v)).tanh();
        half * v * (T::one() + t)
    })
}

/// `dx += dy · ((1 + t)/2 + x/2 · (1 - t²) · √(2/π) (1 + 3 · 0.044715 x²))`, with `t = tanh(u)`
/// recomputed from `x`.
pub fn gelu_backward<T: Float>(x: &[T], y: &[T], dy: &[T], dx: &mut [T]) -> Result<()> {
    if T::DTYPE == "f32" {
        let n = x.len();
        check_len("gelu", "y", n, y.len())?;
        check_len("gelu", "dy", n, dy.len())?;
        check_len("gelu", "dx", n, dx.len())?;
        backward_f32::<T, false>(x, dy, dx);
        return Ok(());
    }
    let (s, k) = (T::from_f64(SQRT_2_OVER_PI), T::from_f64(KAPPA));
    let (half, three) = (T::from_f64(0.5), T::from_f64(3.0));
    unary_backward("gelu", x, y, dy, dx, |x, _, g| {
        let x2 = x * x;
        let t = (s * (x + k * x2 * x)).tanh();
        let du = s * (T::one() + three * k * x2);
        g * (half * (T::one() + t) + half * x * (T::one() - t * t) * du)
    })
}

/// Like [`gelu_backward`], but `dx = dy · gelu'(x)` overwrites `dx` (whatever it held, never
/// read) instead of adding to it: for the first contribution to an input's gradient.
pub fn gelu_backward_overwrite<T: Float>(x: &[T], y: &[T], dy: &[T], dx: &mut [T]) -> Result<()> {
    let n = x.len();
    check_len("gelu", "y", n, y.len())?;
    check_len("gelu", "dy", n, dy.len())?;
    check_len("gelu", "dx", n, dx.len())?;
    if T::DTYPE == "f32" {
        backward_f32::<T, true>(x, dy, dx);
        return Ok(());
    }
    dx.fill(T::zero());
    gelu_backward(x, y, dy, dx)
}

/// The `f32` backward passes: in AVX-512 when the CPU has it, else the portable loop.
fn backward_f32<T: Float, const OVERWRITE: bool>(x: &[T], dy: &[T], dx: &mut [T]) {
    #[cfg(target_arch = "x86_64")]
    if let (Some(simd), Some(x), Some(dy), Some(dx)) =
        (avx512::available(), as_f32(x), as_f32(dy), as_f32_mut(dx))
    {
        return avx512::backward::<OVERWRITE>(simd, x, dy, dx);
    }
    vectorize_above(x.len(), GeluBackward::<T, OVERWRITE> { x, dy, dx });
}

/// `a = 2u = A x + B x³`: `A = 2√(2/π)`.
const A: f64 = 2.0 * SQRT_2_OVER_PI;
/// `B = 2√(2/π) · 0.044715`.
const B: f64 = 2.0 * SQRT_2_OVER_PI * KAPPA;
/// `log₂ e`.
const LOG2_E: f64 = core::f64::consts::LOG2_E;
/// `ln 2`.
const LN_2: f64 = core::f64::consts::LN_2;
/// `1.5 · 2⁵²`: adding it rounds a value below `2⁵¹` in magnitude to an integer (to nearest),
/// which then sits in the low bits of the sum.
const ROUND: f64 = 6_755_399_441_055_744.0;
/// Below `e^-EXP_CUT` (`2^-1021`) [`exp_neg`] returns 0: far below the smallest `f32`
/// however large the `x` it multiplies, and `2ⁿ` stays a normal `f64`.
const EXP_CUT: f64 = 708.0;

/// `e^b` for `b ≤ 0` (`b = -|a|`, so no overflow), in `f64` arithmetic without FMA (so the
/// baseline compile is as fast and gives the same bits): `b = n ln 2 + r` with `n` the
/// integer nearest `b / ln 2` and `|r| ≤ ln 2 / 2`, then `e^b = 2ⁿ · e^r` with `e^r` by its
/// Taylor polynomial of degree 7 (relative error below `r⁸/8! ≤ 5.2e-9`, a tenth of an
/// `f32` ulp) and `2ⁿ` made from its exponent bits. 0 below `-EXP_CUT`, and for NaN.
#[inline(always)]
fn exp_neg(b: f64) -> f64 {
    let inside = b > -EXP_CUT;
    let b = if inside { b } else { -EXP_CUT };
    let t = b * LOG2_E + ROUND;
    let n = t - ROUND;
    let r = b - n * LN_2;
    // Horner from 1/7! down to 1/0!
    let mut p = 1.0 / 5040.0;
    for c in [720.0, 120.0, 24.0, 6.0, 2.0, 1.0, 1.0] {
        p = p * r + 1.0 / c;
    }
    // the low bits of `t` hold n (two's complement): n + 1023 ∈ [2, 1023] is 2ⁿ's exponent
    let scale = f64::from_bits(t.to_bits().wrapping_add(1023) << 52);
    if inside {
        p * scale
    } else {
        0.0
    }
}

/// What forward and backward share at `x` (as `f64`): with `a = 2u` and `F = e^-|a|`,
/// `σ(a) = w q` for `q = 1/(1 + F)` and `w = 1` where `a ≥ 0`, `F` where `a < 0`;
/// `σ(a)(1 - σ(a)) = F q²`. Returns `(w, q, F)`. No term cancels: `1 + tanh u = 2σ(a)`
/// is computed without forming `tanh u`, which for `x ≪ 0` is `-1` to within less than
/// an `f32` ulp.
#[inline(always)]
fn sigmoid_parts(x: f64) -> (f64, f64, f64) {
    let a = x * (A + B * (x * x));
    let f = exp_neg(-a.abs());
    let q = 1.0 / (1.0 + f);
    let w = if a < 0.0 { f } else { 1.0 };
    (w, q, f)
}

/// [`gelu`]'s `f32` loop, compiled for the CPU's widest vectors: `y = x σ(2u)` in `f64`,
/// rounded once to `T`.
struct Gelu<'a, T> {
    x: &'a [T],
    y: &'a mut [T],
}

impl<T: Float> Kernel for Gelu<'_, T> {
    type Output = ();
    #[inline(always)]
    fn run(self) {
        for (yi, &xi) in self.y.iter_mut().zip(self.x) {
            let x = xi.to_f64();
            let (w, q, _) = sigmoid_parts(x);
            *yi = T::from_f64(x * (w * q));
        }
    }
}

/// [`gelu_backward`]'s `f32` loop, compiled for the CPU's widest vectors:
/// `gelu' = σ(a) + x a' σ(a)(1 - σ(a)) = q (w + x a' F q)` with `a' = A + 3B x²`, in `f64`,
/// and `dx + dy · gelu'` rounded once to `T`.
/// `OVERWRITE`: `dx` is written without being read (see [`gelu_backward_overwrite`]).
struct GeluBackward<'a, T, const OVERWRITE: bool> {
    x: &'a [T],
    dy: &'a [T],
    dx: &'a mut [T],
}

impl<T: Float, const OVERWRITE: bool> Kernel for GeluBackward<'_, T, OVERWRITE> {
    type Output = ();
    #[inline(always)]
    fn run(self) {
        for ((d, &xi), &g) in self.dx.iter_mut().zip(self.x).zip(self.dy) {
            let x = xi.to_f64();
            let (w, q, f) = sigmoid_parts(x);
            let da = A + 3.0 * B * (x * x);
            let grad = q * (w + x * da * f * q);
            let before = if OVERWRITE { 0.0 } else { d.to_f64() };
            *d = T::from_f64(before + g.to_f64() * grad);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::assert_close;
    use crate::testing::{assert_gradient, random_vec};

    #[test]
    fn overwrite_writes_what_accumulating_onto_zero_writes() {
        for n in [5usize, 300, 1013] {
            let x: Vec<f64> = random_vec(70, n, -6.0, 6.0);
            let g: Vec<f64> = random_vec(71, n, -1.0, 1.0);
            let (x32, g32): (Vec<f32>, Vec<f32>) = (
                x.iter().map(|&v| v as f32).collect(),
                g.iter().map(|&v| v as f32).collect(),
            );
            let mut y32 = vec![0.0f32; n];
            gelu(&x32, &mut y32).unwrap();
            let mut want = vec![0.0f32; n];
            gelu_backward(&x32, &y32, &g32, &mut want).unwrap();
            // whatever dx held, NaN included, is not read
            let mut got = vec![f32::NAN; n];
            gelu_backward_overwrite(&x32, &y32, &g32, &mut got).unwrap();
            assert_eq!(got, want);
            let mut y = vec![0.0f64; n];
            gelu(&x, &mut y).unwrap();
            let mut want = vec![0.0f64; n];
            gelu_backward(&x, &y, &g, &mut want).unwrap();
            let mut got = vec![f64::NAN; n];
            gelu_backward_overwrite(&x, &y, &g, &mut got).unwrap();
            assert_eq!(got, want);
        }
    }

    #[test]
    fn literal() {
        // x = 0: u = 0, y = 0, y' = (1 + 0)/2 = 1/2.
        // x = 1: u = 0.7978845608028654 · 1.044715 = 0.83356197, tanh u = 0.68238398,
        //   y = (1 + tanh u)/2 = 0.8411919906082768;
        //   y' = 0.84119199 + 0.5 · (1 - 0.68238398²) · 0.79788456 · 1.134145 = 1.0829640838457826.
        // x = -1: tanh is odd, so y(-1) = -(1 - tanh u)/2 = y(1) - 1, and y'(-1) = 1 - y'(1)
        //   (y(x) - y(-x) = x, so y'(x) + y'(-x) = 1).
        // x = ±20: tanh u = ±1 exactly, y = 20 and 0, y' = 1 and 0.
        let x = [0.0f64, 1.0, -1.0, 20.0, -20.0];
        let mut y = [0.0; 5];
        gelu(&x, &mut y).unwrap();
        let (g1, d1) = (0.841_191_990_608_276_8, 1.082_964_083_845_782_6);
        assert_close!(y, [0.0, g1, g1 - 1.0, 20.0, 0.0], 1e-14);
        let mut dx = [1.0; 5];
        gelu_backward(&x, &y, &[1.0; 5], &mut dx).unwrap();
        assert_close!(dx, [1.5, 1.0 + d1, 2.0 - d1, 2.0, 1.0], 1e-14);
    }

    #[test]
    fn f32_literal() {
        // as above: gelu(1) = 0.84119199, gelu'(0) = 1/2
        let x = [1.0f32, 0.0];
        let mut y = [0.0f32; 2];
        gelu(&x, &mut y).unwrap();
        assert_close!(y, [0.841_192f32, 0.0]);
        let mut dx = [0.0f32; 2];
        gelu_backward(&x, &y, &[1.0, 1.0], &mut dx).unwrap();
        assert_close!(dx, [1.082_964f32, 0.5]);
    }

    /// `gelu(x)` and `gelu'(x)` in `f64` from `x σ(2u)`: the literal `x/2 (1 + tanh u)`
    /// loses everything to cancellation for `x ≪ 0` even in `f64` (`tanh u = -1 + 2e-38` at
    /// `x = -10`).
    fn exact(x: f64) -> (f64, f64) {
        let a = 2.0 * SQRT_2_OVER_PI * (x + KAPPA * x * x * x);
        let e = (-a.abs()).exp();
        let sigma = if a < 0.0 {
            e / (1.0 + e)
        } else {
            1.0 / (1.0 + e)
        };
        let da = 2.0 * SQRT_2_OVER_PI * (1.0 + 3.0 * KAPPA * x * x);
        (x * sigma, sigma + x * da * e / ((1.0 + e) * (1.0 + e)))
    }

    /// `|got - want|` in units in the last place of `want` as an `f32` (the spacing of
    /// subnormals below the smallest normal).
    fn ulps(got: f32, want: f64) -> f64 {
        let spacing = if want.abs() < f32::MIN_POSITIVE as f64 {
            2f64.powi(-149)
        } else {
            2f64.powi(want.abs().log2().floor() as i32 - 23)
        };
        (got as f64 - want).abs() / spacing
    }

    /// The `f32` inputs of the accuracy tests: `[-10, 10]` in steps of `2^-14`, then the
    /// extremes.
    fn sweep() -> Vec<f32> {
        let mut x: Vec<f32> = (-(10 << 14)..=(10 << 14))
            .map(|i| i as f32 / (1 << 14) as f32)
            .collect();
        x.extend([
            0.0, -0.0, 1e-30, -1e-30, 1e-40, -1e-40, 20.0, -20.0, 88.0, -88.0,
        ]);
        x.extend([1e30, -1e30, f32::MAX, -f32::MAX]);
        x
    }

    /// An `f32` forward pass: `(x, y)`.
    type ForwardPass = fn(&[f32], &mut [f32]);

    /// The `f32` forward passes this CPU can run: the portable loop, and the AVX-512 one when
    /// the CPU has it (which [`gelu`] then takes).
    fn forward_paths() -> Vec<(&'static str, ForwardPass)> {
        let mut paths: Vec<(&'static str, ForwardPass)> =
            vec![("portable", |x, y| vectorize_above(x.len(), Gelu { x, y }))];
        #[cfg(target_arch = "x86_64")]
        if avx512::available().is_some() {
            paths.push(("avx512", |x, y| {
                avx512::forward(avx512::available().unwrap(), x, y)
            }));
        }
        paths
    }

    /// An accumulating `f32` backward pass: `(x, dy, dx)`.
    type BackwardPass = fn(&[f32], &[f32], &mut [f32]);

    /// [`forward_paths`] for the accumulating backward pass.
    fn backward_paths() -> Vec<(&'static str, BackwardPass)> {
        let mut paths: Vec<(&'static str, BackwardPass)> = vec![("portable", |x, dy, dx| {
            vectorize_above(x.len(), GeluBackward::<f32, false> { x, dy, dx })
        })];
        #[cfg(target_arch = "x86_64")]
        if avx512::available().is_some() {
            paths.push(("avx512", |x, dy, dx| {
                avx512::backward::<false>(avx512::available().unwrap(), x, dy, dx)
            }));
        }
        paths
    }

    #[test]
    fn f32_forward_within_ulps_of_f64() {
        let x = sweep();
        for (path, gelu) in forward_paths() {
            let mut y = vec![f32::NAN; x.len()];
            gelu(&x, &mut y);
            let (mut worst, mut at) = (0.0, 0.0);
            for (&xi, &yi) in x.iter().zip(&y) {
                let e = ulps(yi, exact(xi as f64).0);
                if e > worst {
                    (worst, at) = (e, xi);
                }
            }
            println!("gelu f32 ({path}): max error {worst:.3} ulp at x = {at}");
            assert!(worst <= 1.0, "gelu f32 ({path}): {worst} ulp at x = {at}");
        }
    }

    #[test]
    fn f32_backward_within_ulps_of_f64() {
        let x = sweep();
        for (path, gelu_backward) in backward_paths() {
            let mut dx = vec![0.0f32; x.len()];
            gelu_backward(&x, &vec![1.0; x.len()], &mut dx);
            let (mut worst, mut at) = (0.0, 0.0);
            for (&xi, &di) in x.iter().zip(&dx) {
                let e = ulps(di, exact(xi as f64).1);
                if e > worst {
                    (worst, at) = (e, xi);
                }
            }
            println!("gelu' f32 ({path}): max error {worst:.3} ulp at x = {at}");
            assert!(worst <= 1.0, "gelu' f32 ({path}): {worst} ulp at x = {at}");
        }
    }

    #[test]
    fn f32_paths_agree_on_the_extremes() {
        // ±0, ±∞, NaN, the cut-offs of e^-|a| and the largest values: both passes give the
        // same bits (or both NaN), forward and backward
        let inf = f32::INFINITY;
        let x = [
            0.0f32,
            -0.0,
            1e-30,
            -1e-30,
            1e-40,
            20.0,
            -20.0,
            88.0,
            -88.0,
            -9.5,
            f32::MAX,
            -f32::MAX,
            inf,
            -inf,
            f32::NAN,
        ];
        let dy = [1.5f32; 15];
        let (mut ys, mut dxs) = (vec![], vec![]);
        for ((_, gelu), (_, gelu_backward)) in forward_paths().into_iter().zip(backward_paths()) {
            let mut y = [0.0f32; 15];
            gelu(&x, &mut y);
            let mut dx = [0.25f32; 15];
            gelu_backward(&x, &dy, &mut dx);
            ys.push(y);
            dxs.push(dx);
        }
        let same = |a: f32, b: f32| a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan());
        for (y, dx) in ys.iter().zip(&dxs).skip(1) {
            for i in 0..x.len() {
                assert!(
                    same(y[i], ys[0][i]),
                    "gelu({}) = {} and {}",
                    x[i],
                    y[i],
                    ys[0][i]
                );
                assert!(
                    same(dx[i], dxs[0][i]),
                    "gelu'({}): {} and {}",
                    x[i],
                    dx[i],
                    dxs[0][i]
                );
            }
        }
    }

    #[test]
    fn f32_extremes() {
        // ±0 keep their sign; gelu(±1e-30) = ±1e-30/2 (σ(2u) = 1/2 + 8e-31); at ±20 and
        // ±88, σ(2u) is 1 or below 1e-260: gelu = x or -0, gelu' = 1 or 0. At ±∞ both
        // passes give what the f64 formula gives: gelu(∞) = ∞, gelu(-∞) = -∞ · 0 = NaN and
        // gelu'(±∞) = ∞ · 0 = NaN; NaN stays NaN.
        let inf = f32::INFINITY;
        let x = [
            0.0f32,
            -0.0,
            1e-30,
            -1e-30,
            20.0,
            -20.0,
            88.0,
            -88.0,
            inf,
            -inf,
            f32::NAN,
        ];
        let mut y = [1.0f32; 11];
        gelu(&x, &mut y).unwrap();
        let want = [0.0f32, -0.0, 5e-31, -5e-31, 20.0, -0.0, 88.0, -0.0, inf];
        for (got, want) in y.iter().zip(want) {
            assert_eq!(got.to_bits(), want.to_bits(), "{got} against {want}");
        }
        assert!(y[9].is_nan() && y[10].is_nan());
        // accumulating: dx = 1 + 2 gelu'
        let mut dx = [1.0f32; 11];
        gelu_backward(&x, &y, &[2.0; 11], &mut dx).unwrap();
        assert_eq!(dx[..8], [2.0f32, 2.0, 2.0, 2.0, 3.0, 1.0, 3.0, 1.0]);
        assert!(dx[8..].iter().all(|d| d.is_nan()));
    }

    #[test]
    fn f32_vectors_and_tail_match_one_by_one() {
        // 1013 elements: dispatched to the widest vectors, with a tail that fills none; one
        // element at a time runs the baseline compile. Same operations, so the same bits.
        let x: Vec<f32> = random_vec(3, 1013, -12.0, 12.0);
        let dy: Vec<f32> = random_vec(4, 1013, -1.0, 1.0);
        let mut y = vec![0.0f32; x.len()];
        gelu(&x, &mut y).unwrap();
        let mut dx = vec![0.5f32; x.len()];
        gelu_backward(&x, &y, &dy, &mut dx).unwrap();
        for i in 0..x.len() {
            let (mut yi, mut di) = ([0.0f32], [0.5f32]);
            gelu(&x[i..=i], &mut yi).unwrap();
            gelu_backward(&x[i..=i], &yi, &dy[i..=i], &mut di).unwrap();
            assert_eq!(
                (y[i].to_bits(), dx[i].to_bits()),
                (yi[0].to_bits(), di[0].to_bits())
            );
        }
    }

    #[test]
    fn f32_exp2_table_holds_its_powers() {
        // 2^((32 - j)/32) for j ≥ 1, 1 at j = 0: each hi + lo within 2^-47 of the power
        #[cfg(target_arch = "x86_64")]
        for (j, (hi, lo)) in avx512::EXP2_HI.iter().zip(avx512::EXP2_LO).enumerate() {
            let want = 2f64.powf(((32 - j) % 32) as f64 / 32.0);
            assert_eq!(*hi, want as f32, "j = {j}");
            let err = (*hi as f64 + lo as f64 - want).abs();
            assert!(err < 2f64.powi(-47), "j = {j}: {err:e}");
        }
    }

    /// Every `f32` in `[-12.5, 12.5]` (2.2 billion of them) through the forward passes,
    /// against the `f64` formula: 7.5 minutes for both passes in a release build on a loaded
    /// machine (`cargo test --release -p nanograd-runtime gelu -- --ignored`).
    #[test]
    #[ignore]
    fn f32_forward_every_input_within_an_ulp() {
        let top = 12.5f32.to_bits();
        let chunk = 1 << 16;
        for (path, gelu) in forward_paths() {
            let (mut worst, mut at) = (0.0, 0.0);
            let (mut x, mut y) = (vec![0.0f32; chunk], vec![0.0f32; chunk]);
            for sign in [0u32, 1 << 31] {
                for start in (0..=top).step_by(chunk) {
                    let n = chunk.min((top - start) as usize + 1);
                    for (i, xi) in x[..n].iter_mut().enumerate() {
                        *xi = f32::from_bits(sign | (start + i as u32));
                    }
                    gelu(&x[..n], &mut y[..n]);
                    for (&xi, &yi) in x[..n].iter().zip(&y[..n]) {
                        let e = ulps(yi, exact(xi as f64).0);
                        if e > worst {
                            (worst, at) = (e, xi);
                        }
                    }
                }
            }
            println!("gelu f32 ({path}), every input: max error {worst:.3} ulp at x = {at}");
            assert!(worst <= 1.0, "gelu f32 ({path}): {worst} ulp at x = {at}");
        }
    }

    #[test]
    fn gradcheck() {
        let x: Vec<f64> = random_vec(11, 12, -4.0, 4.0);
        let w: Vec<f64> = random_vec(12, 12, -1.0, 1.0);
        let mut y = vec![0.0; 12];
        gelu(&x, &mut y).unwrap();
        let mut dx = vec![0.0; 12];
        gelu_backward(&x, &y, &w, &mut dx).unwrap();
        let loss = |x: &[f64]| {
            let mut y = vec![0.0; x.len()];
            gelu(x, &mut y).unwrap();
            y.iter().zip(&w).map(|(a, b)| a * b).sum()
        };
        assert_gradient("gelu", loss, &x, &dx, 1e-7);
    }

    #[test]
    fn length_mismatch_is_an_error() {
        let err = gelu(&[1.0f64, 2.0], &mut [0.0; 3]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "length mismatch in gelu: `y` has 3 elements, expected 2"
        );
        let mut dx = [0.0f64; 2];
        assert!(gelu_backward(&[1.0, 2.0], &[1.0], &[1.0, 1.0], &mut dx).is_err());
    }
}
