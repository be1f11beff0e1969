//! `sigmoid_stable(x) = 1 / (1 + e^-x)`, the logistic function computed so that no
//! exponential can overflow: with `z = e^-|x|` (always in `(0, 1]`),
//! `σ(x) = 1 / (1 + z)` for `x >= 0` and `σ(x) = z / (1 + z)` for `x < 0`.
//!
//! Derivative: `σ(x) (1 - σ(x)) = σ(|x|) σ(-|x|) = z / (1 + z)²`, also computed from `z`, so
//! that it keeps its relative precision where `1 - σ(x)` would round to 0 (e.g. `x = 50`).
//! Very negative inputs keep theirs too: in f32, `σ(-90) ≈ e^-90` where the plain formula
//! overflows `e^90` and returns 0. `x = ±1000` gives exactly 1 and 0, with gradient 0.

use super::{unary, unary_backward};
use crate::{Float, Result};

/// The logistic function of one value, computed from `e^-|x|` (never overflows). Shared by
/// the ops built on σ: [`silu`](fn@super::silu), [`softplus`](fn@super::softplus).
#[inline]
pub(crate) fn logistic<T: Float>(x: T) -> T {
    let z = (-x.abs()).exp();
    if x >= T::zero() {
        T::one() / (T::one() + z)
    } else {
        z / (T::one() + z)
    }
}

/// `y = 1 / (1 + e^-x)` elementwise, without overflow for any `x`.
pub fn sigmoid_stable<T: Float>(x: &[T], y: &mut [T]) -> Result<()> {
    unary("sigmoid_stable", x, y, logistic)
}

/// `dx += dy * σ(x) (1 - σ(x))`, computed as `dy * z / (1 + z)²` with `z = e^-|x|`.
pub fn sigmoid_stable_backward<T: Float>(x: &[T], y: &[T], dy: &[T], dx: &mut [T]) -> Result<()> {
    unary_backward("sigmoid_stable", x, y, dy, dx, |x, _, g| {
        let z = (-x.abs()).exp();
        let d = T::one() + z;
        g * z / (d * d)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::assert_close;
    use crate::testing::{assert_gradient, random_vec};

    #[test]
    fn literal() {
        // σ(0) = 1/2; σ(ln 3) = 1 / (1 + 1/3) = 3/4; σ(-ln 3) = (1/3) / (4/3) = 1/4;
        // σ(±1000): z = e^-1000 = 0, so exactly 1 and 0
        let l3 = 3.0f64.ln();
        let x = [0.0, l3, -l3, 1000.0, -1000.0];
        let mut y = [0.0; 5];
        sigmoid_stable(&x, &mut y).unwrap();
        assert_eq!(y[3], 1.0);
        assert_eq!(y[4], 0.0);
        assert_close!(y, [0.5, 0.75, 0.25, 1.0, 0.0], 1e-15);
        // σ' = σ(1 - σ): 1/4, 3/16, 3/16, and 0 at ±1000 (not NaN); dx starts at 1
        let mut dx = [1.0; 5];
        sigmoid_stable_backward(&x, &y, &[2.0; 5], &mut dx).unwrap();
        assert_close!(dx, [1.5, 1.375, 1.375, 1.0, 1.0], 1e-15);
    }

    #[test]
    fn keeps_relative_precision_in_the_tails() {
        // σ(-700) = e^-700 / (1 + e^-700) = e^-700 to full precision, and σ'(±50) = e^-50 / (1 + e^-50)²
        let mut y = [0.0f64; 1];
        sigmoid_stable(&[-700.0], &mut y).unwrap();
        assert!((y[0] / (-700.0f64).exp() - 1.0).abs() < 1e-14);
        let mut dx = [0.0f64; 2];
        let mut y2 = [0.0f64; 2];
        sigmoid_stable(&[50.0, -50.0], &mut y2).unwrap();
        sigmoid_stable_backward(&[50.0, -50.0], &y2, &[1.0, 1.0], &mut dx).unwrap();
        let e = (-50.0f64).exp();
        let want = e / ((1.0 + e) * (1.0 + e));
        for d in dx {
            assert!((d / want - 1.0).abs() < 1e-14, "{d} vs {want}");
        }
        // f32: e^90 overflows, e^-90 ≈ 8.19e-40 is a subnormal that σ(-90) must return
        let mut y = [0.0f32; 1];
        sigmoid_stable(&[-90.0f32], &mut y).unwrap();
        assert!(
            (y[0] as f64 / (-90.0f64).exp() - 1.0).abs() < 1e-5,
            "{}",
            y[0]
        );
    }

    #[test]
    fn f32_literal() {
        // as above in f32: σ(0) = 1/2, σ(ln 3) = 3/4; σ' = 1/4, 3/16
        let x = [0.0f32, 3.0f32.ln()];
        let mut y = [0.0f32; 2];
        sigmoid_stable(&x, &mut y).unwrap();
        assert_close!(y, [0.5f32, 0.75]);
        let mut dx = [0.0f32; 2];
        sigmoid_stable_backward(&x, &y, &[1.0, 1.0], &mut dx).unwrap();
        assert_close!(dx, [0.25f32, 0.1875]);
    }

    #[test]
    fn gradcheck() {
        let x: Vec<f64> = random_vec(1, 12, -6.0, 6.0);
        let w: Vec<f64> = random_vec(2, 12, -1.0, 1.0);
        let mut y = vec![0.0; 12];
        sigmoid_stable(&x, &mut y).unwrap();
        let mut dx = vec![0.0; 12];
        sigmoid_stable_backward(&x, &y, &w, &mut dx).unwrap();
        let loss = |x: &[f64]| {
            let mut y = vec![0.0; x.len()];
            sigmoid_stable(x, &mut y).unwrap();
            y.iter().zip(&w).map(|(a, b)| a * b).sum()
        };
        assert_gradient("sigmoid_stable", loss, &x, &dx, 1e-7);
    }

    #[test]
    fn length_mismatch_is_an_error() {
        let err = sigmoid_stable(&[1.0f64, 2.0], &mut [0.0; 3]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "length mismatch in sigmoid_stable: `y` has 3 elements, expected 2"
        );
        let mut dx = [0.0f64; 3];
        let err = sigmoid_stable_backward(&[1.0, 2.0], &[0.5, 0.5], &[1.0, 1.0], &mut dx);
        assert_eq!(
            err.unwrap_err().to_string(),
            "length mismatch in sigmoid_stable: `dx` has 3 elements, expected 2"
        );
    }
}
