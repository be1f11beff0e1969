//! Exact GELU (PyTorch's default `nn.GELU()`, `F.gelu(x, approximate="none")`; the DSL's
//! `gelu(x, approximate = "none")`): `x` times the standard normal distribution function,
//!
//! `gelu(x) = x Φ(x) = x/2 · (1 + erf(x/√2))`;
//!
//! `d gelu / dx = Φ(x) + x φ(x)`, `φ(x) = e^(-x²/2) / √(2π)`.
//!
//! `1 + erf(x/√2)` is written `erfc(-x/√2)`, which keeps its relative precision where
//! `erf(x/√2)` is close to `-1` (for `x ≪ 0`, where `gelu(x)` is tiny but not zero: `-7.6e-24`
//! at `x = -10`). Both element types evaluate the formulas in `f64` with `libm`'s `erfc` and
//! `exp` (the musl functions, the same with and without `std`), `f32` rounding once at the end.
//! At ±∞ and NaN the literal formula's results, as PyTorch: `gelu(∞) = ∞`,
//! `gelu(-∞) = -∞ · 0 = NaN`, `gelu'(±∞) = NaN`, NaN stays NaN.

use super::super::{unary, unary_backward};
use crate::{check_len, Float, Result};

/// `1/√2`.
const FRAC_1_SQRT_2: f64 = core::f64::consts::FRAC_1_SQRT_2;
/// `1/√(2π)`.
const FRAC_1_SQRT_2PI: f64 = 0.398_942_280_401_432_7;

/// `Φ(x) = erfc(-x/√2)/2`.
#[inline]
fn normal_cdf(x: f64) -> f64 {
    0.5 * libm::erfc(-x * FRAC_1_SQRT_2)
}

/// `gelu(x) = x Φ(x)` in `f64`.
#[inline]
fn forward(x: f64) -> f64 {
    x * normal_cdf(x)
}

/// `gelu'(x) = Φ(x) + x φ(x)` in `f64`.
#[inline]
fn derivative(x: f64) -> f64 {
    normal_cdf(x) + x * FRAC_1_SQRT_2PI * libm::exp(-0.5 * x * x)
}

/// `y = x Φ(x) = x/2 · (1 + erf(x/√2))` elementwise.
pub fn gelu_erf<T: Float>(x: &[T], y: &mut [T]) -> Result<()> {
    unary("gelu_erf", x, y, |v| T::from_f64(forward(v.to_f64())))
}

/// `dx += dy · (Φ(x) + x φ(x))`.
pub fn gelu_erf_backward<T: Float>(x: &[T], y: &[T], dy: &[T], dx: &mut [T]) -> Result<()> {
    unary_backward("gelu_erf", x, y, dy, dx, |x, _, g| {
        let x = x.to_f64();
        T::from_f64(g.to_f64() * derivative(x))
    })
}

/// Like [`gelu_erf_backward`], but `dx = dy · gelu'(x)` overwrites `dx` (whatever it held,
/// never read) instead of adding to it: for the first contribution to an input's gradient.
pub fn gelu_erf_backward_overwrite<T: Float>(
    x: &[T],
    y: &[T],
    dy: &[T],
    dx: &mut [T],
) -> Result<()> {
    let n = x.len();
    check_len("gelu_erf", "y", n, y.len())?;
    check_len("gelu_erf", "dy", n, dy.len())?;
    check_len("gelu_erf", "dx", n, dx.len())?;
    dx.fill(T::zero());
    gelu_erf_backward(x, y, dy, dx)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::assert_close;
    use crate::testing::{assert_gradient, random_vec};

    #[test]
    fn literal() {
        // x = 0: Φ(0) = 1/2, so y = 0 and y' = 1/2 + 0 = 1/2.
        // x = 1: Φ(1) = 0.8413447460685429 (erf(1/√2) = 0.6826894921370859), so y = Φ(1);
        //   φ(1) = e^(-1/2)/√(2π) = 0.24197072451914337, y' = Φ(1) + φ(1) = 1.0833154705876864.
        // x = -1: Φ(-1) = 1 - Φ(1), so y(-1) = -(1 - Φ(1)) = Φ(1) - 1, and
        //   y'(-1) = 1 - Φ(1) - φ(1) = 1 - y'(1) (y(x) - y(-x) = x, so y'(x) + y'(-x) = 1).
        // x = -10: Φ(-10) = 7.619853024160593e-24 (erfc(10/√2)/2), y = -7.619853024160593e-23:
        //   tiny but exact, where 1 + erf(-10/√2) would round to 0.
        // x = 10: Φ(10) = 1 - 7.6e-24 rounds to 1, y = 10, y' = 1 + 10 · 7.7e-23 = 1.
        let x = [0.0f64, 1.0, -1.0, -10.0, 10.0];
        let mut y = [0.0; 5];
        gelu_erf(&x, &mut y).unwrap();
        let (p1, d1) = (0.841_344_746_068_542_9, 1.083_315_470_587_686_4);
        assert_close!(y[..3], [0.0, p1, p1 - 1.0], 1e-15);
        assert!(
            (y[3] / -7.619_853_024_160_593e-23 - 1.0).abs() < 1e-13,
            "{}",
            y[3]
        );
        assert_eq!(y[4], 10.0);
        let mut dx = [1.0; 5];
        gelu_erf_backward(&x, &y, &[1.0; 5], &mut dx).unwrap();
        assert_close!(dx[..3], [1.5, 1.0 + d1, 2.0 - d1], 1e-15);
        assert_close!(dx[3..], [1.0, 2.0], 1e-15);
    }

    #[test]
    fn f32_literal() {
        // as above: gelu(1) = Φ(1) = 0.84134475, gelu'(1) = 1.08331547, gelu'(0) = 1/2
        let x = [1.0f32, 0.0];
        let mut y = [0.0f32; 2];
        gelu_erf(&x, &mut y).unwrap();
        assert_eq!(y, [0.841_344_746_068_542_9f64 as f32, 0.0]);
        let mut dx = [0.0f32; 2];
        gelu_erf_backward(&x, &y, &[1.0, 1.0], &mut dx).unwrap();
        assert_eq!(dx, [1.083_315_470_587_686_4f64 as f32, 0.5]);
    }

    #[test]
    fn differs_from_the_tanh_approximation() {
        // the two GELUs differ by up to about 2e-4 (here at x = 2: 1.9544997 against
        // 1.9545977); a kernel that fell back to the approximation would fail this
        let x = [2.0f64];
        let (mut exact, mut approx) = ([0.0], [0.0]);
        gelu_erf(&x, &mut exact).unwrap();
        crate::ops::gelu(&x, &mut approx).unwrap();
        assert_close!(exact, [1.954_499_736_103_642], 1e-15);
        assert!((exact[0] - approx[0]).abs() > 5e-5);
    }

    #[test]
    fn extremes() {
        // ±0 keep their sign; ±∞ and NaN give the literal formula's results
        let inf = f32::INFINITY;
        let x = [0.0f32, -0.0, inf, -inf, f32::NAN, -200.0];
        let mut y = [1.0f32; 6];
        gelu_erf(&x, &mut y).unwrap();
        assert_eq!(y[0].to_bits(), 0.0f32.to_bits());
        assert_eq!(y[1].to_bits(), (-0.0f32).to_bits());
        assert_eq!(y[2], inf);
        assert!(y[3].is_nan() && y[4].is_nan());
        assert_eq!(y[5].to_bits(), (-0.0f32).to_bits());
        let mut dx = [0.0f32; 6];
        gelu_erf_backward(&x, &y, &[1.0; 6], &mut dx).unwrap();
        assert_eq!(dx[..2], [0.5, 0.5]);
        assert!(dx[2..5].iter().all(|d| d.is_nan()));
        assert_eq!(dx[5], 0.0);
    }

    #[test]
    fn overwrite_writes_what_accumulating_onto_zero_writes() {
        let x: Vec<f32> = random_vec(5, 37, -6.0, 6.0);
        let g: Vec<f32> = random_vec(6, 37, -1.0, 1.0);
        let mut y = vec![0.0f32; 37];
        gelu_erf(&x, &mut y).unwrap();
        let mut want = vec![0.0f32; 37];
        gelu_erf_backward(&x, &y, &g, &mut want).unwrap();
        let mut got = vec![f32::NAN; 37];
        gelu_erf_backward_overwrite(&x, &y, &g, &mut got).unwrap();
        assert_eq!(got, want);
    }

    #[test]
    fn gradcheck() {
        let x: Vec<f64> = random_vec(13, 12, -4.0, 4.0);
        let w: Vec<f64> = random_vec(14, 12, -1.0, 1.0);
        let mut y = vec![0.0; 12];
        gelu_erf(&x, &mut y).unwrap();
        let mut dx = vec![0.0; 12];
        gelu_erf_backward(&x, &y, &w, &mut dx).unwrap();
        let loss = |x: &[f64]| {
            let mut y = vec![0.0; x.len()];
            gelu_erf(x, &mut y).unwrap();
            y.iter().zip(&w).map(|(a, b)| a * b).sum()
        };
        assert_gradient("gelu_erf", loss, &x, &dx, 1e-7);
    }

    #[test]
    fn length_mismatch_is_an_error() {
        let err = gelu_erf(&[1.0f64, 2.0], &mut [0.0; 3]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "length mismatch in gelu_erf: `y` has 3 elements, expected 2"
        );
        let mut dx = [0.0f64; 2];
        assert!(gelu_erf_backward(&[1.0, 2.0], &[1.0], &[1.0, 1.0], &mut dx).is_err());
        assert!(gelu_erf_backward_overwrite(&[1.0, 2.0], &[1.0], &[1.0, 1.0], &mut dx).is_err());
    }
}
