//! `softplus(x) = ln(1 + e^(β x)) / β`; `d softplus / dx = σ(β x)`.
//!
//! Computed as `(max(β x, 0) + ln(1 + e^-|β x|)) / β`, which never overflows: `x = 1000` gives
//! 1000 and `x = -1000` gives 0 (PyTorch instead returns `x` outright where `β x > 20`; the
//! two differ there by `ln(1 + e^-20) / β ≈ 2e-9 / β`, a relative 1e-10). The gradient uses
//! the overflow-free logistic of [`sigmoid_stable`](fn@super::sigmoid_stable). The seed's
//! default `β` is [`SOFTPLUS_BETA`] = 1; `β` must be finite and nonzero.

use super::sigmoid_stable::logistic;
use super::{unary, unary_backward};
use crate::{invalid, Float, Result};

/// The default `β`, in the seed (`beta: 1.0`) and in PyTorch.
pub const SOFTPLUS_BETA: f64 = 1.0;

fn check_beta<T: Float>(beta: T) -> Result<()> {
    if beta == T::zero() || !beta.is_finite() {
        return Err(invalid(
            "softplus",
            format!("beta must be finite and nonzero, got {beta}"),
        ));
    }
    Ok(())
}

/// `y = ln(1 + e^(beta x)) / beta` elementwise, without overflow.
pub fn softplus<T: Float>(x: &[T], beta: T, y: &mut [T]) -> Result<()> {
    check_beta(beta)?;
    unary("softplus", x, y, |v| {
        let bx = beta * v;
        let pos = if bx > T::zero() { bx } else { T::zero() };
        (pos + (-bx.abs()).exp().ln_1p()) / beta
    })
}

/// `dx += dy * σ(beta x)`.
pub fn softplus_backward<T: Float>(
    x: &[T],
    y: &[T],
    dy: &[T],
    beta: T,
    dx: &mut [T],
) -> Result<()> {
    check_beta(beta)?;
    unary_backward("softplus", x, y, dy, dx, |x, _, g| g * logistic(beta * x))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::assert_close;
    use crate::testing::{assert_gradient, random_vec};

    #[test]
    fn literal() {
        // β = 1: softplus(0) = ln 2; softplus(ln 3) = ln(1 + 3) = 2 ln 2;
        // softplus(1000) = 1000 + ln(1 + e^-1000) = 1000; softplus(-1000) = ln(1 + e^-1000) = 0
        let x = [0.0, 3.0f64.ln(), 1000.0, -1000.0];
        let mut y = [0.0; 4];
        softplus(&x, 1.0, &mut y).unwrap();
        let l2 = 2.0f64.ln();
        assert_close!(y, [l2, 2.0 * l2, 1000.0, 0.0], 1e-15);
        // σ(x) = 1/2, 3/4, 1, 0; dy = 2 onto dx = 1
        let mut dx = [1.0; 4];
        softplus_backward(&x, &y, &[2.0; 4], 1.0, &mut dx).unwrap();
        assert_close!(dx, [2.0, 2.5, 3.0, 1.0], 1e-15);
    }

    #[test]
    fn beta_scales_the_input_and_the_output() {
        // β = 2, x = ln(3)/2: ln(1 + e^(ln 3)) / 2 = ln(4) / 2 = ln 2; gradient σ(ln 3) = 3/4.
        // x = -50: ln(1 + e^-100) / 2 = e^-100 / 2 to full precision (ln_1p).
        let x = [3.0f64.ln() / 2.0, -50.0];
        let mut y = [0.0; 2];
        softplus(&x, 2.0, &mut y).unwrap();
        assert_close!(y[0], 2.0f64.ln(), 1e-15);
        assert!((y[1] / ((-100.0f64).exp() / 2.0) - 1.0).abs() < 1e-14);
        let mut dx = [0.0; 2];
        softplus_backward(&x, &y, &[1.0, 1.0], 2.0, &mut dx).unwrap();
        assert_close!(dx[0], 0.75, 1e-15);
        assert!((dx[1] / (-100.0f64).exp() - 1.0).abs() < 1e-14);
    }

    #[test]
    fn f32_literal() {
        // softplus(0) = ln 2, softplus(200) = 200 (e^200 overflows f32; this does not)
        let x = [0.0f32, 200.0];
        let mut y = [0.0f32; 2];
        softplus(&x, 1.0, &mut y).unwrap();
        assert_close!(y, [2.0f32.ln(), 200.0]);
        let mut dx = [0.0f32; 2];
        softplus_backward(&x, &y, &[1.0, 1.0], 1.0, &mut dx).unwrap();
        assert_close!(dx, [0.5f32, 1.0]);
    }

    #[test]
    fn gradcheck() {
        let x: Vec<f64> = random_vec(9, 12, -4.0, 4.0);
        let w: Vec<f64> = random_vec(10, 12, -1.0, 1.0);
        for beta in [1.0, 2.5, -0.5] {
            let mut y = vec![0.0; 12];
            softplus(&x, beta, &mut y).unwrap();
            let mut dx = vec![0.0; 12];
            softplus_backward(&x, &y, &w, beta, &mut dx).unwrap();
            let loss = |x: &[f64]| {
                let mut y = vec![0.0; x.len()];
                softplus(x, beta, &mut y).unwrap();
                y.iter().zip(&w).map(|(a, b)| a * b).sum()
            };
            assert_gradient("softplus", loss, &x, &dx, 1e-7);
        }
    }

    #[test]
    fn bad_input_is_an_error() {
        let err = softplus(&[1.0f64, 2.0], 1.0, &mut [0.0; 3]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "length mismatch in softplus: `y` has 3 elements, expected 2"
        );
        let err = softplus(&[1.0f64], 0.0, &mut [0.0]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid argument to softplus: beta must be finite and nonzero, got 0"
        );
        let mut dx = [0.0f64; 1];
        assert!(softplus_backward(&[1.0], &[1.0], &[1.0], f64::NAN, &mut dx).is_err());
        assert!(softplus_backward(&[1.0], &[1.0], &[1.0, 2.0], 1.0, &mut dx).is_err());
    }
}
