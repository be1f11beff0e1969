//! `sigmoid(x) = σ(x) = 1 / (1 + e^-x)`; `dσ/dx = σ(x) (1 - σ(x))`, computed from the output.
//!
//! The seed's plain formula. It never returns NaN (`e^-x` overflowing to infinity gives 0),
//! but for very negative `x` (below about -88 in f32) it rounds to 0 where
//! [`sigmoid_stable`](fn@super::sigmoid_stable) keeps `e^x`.

use super::{unary, unary_backward};
use crate::{Float, Result};

/// `y = 1 / (1 + e^-x)` elementwise.
pub fn sigmoid<T: Float>(x: &[T], y: &mut [T]) -> Result<()> {
    unary("sigmoid", x, y, |v| T::one() / (T::one() + (-v).exp()))
}

/// `dx += dy * y (1 - y)`, where `y = σ(x)` is the forward output.
pub fn sigmoid_backward<T: Float>(x: &[T], y: &[T], dy: &[T], dx: &mut [T]) -> Result<()> {
    unary_backward("sigmoid", x, y, dy, dx, |_, y, g| g * y * (T::one() - y))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::assert_close;
    use crate::testing::{assert_gradient, random_vec};

    #[test]
    fn literal() {
        // σ(0) = 1/2; σ(ln 3) = 1 / (1 + 1/3) = 3/4; σ(-ln 3) = 1 / (1 + 3) = 1/4;
        // σ(-1000) = 1 / (1 + inf) = 0; σ(1000) = 1 / (1 + 0) = 1
        let l3 = 3.0f64.ln();
        let x = [0.0, l3, -l3, -1000.0, 1000.0];
        let mut y = [0.0; 5];
        sigmoid(&x, &mut y).unwrap();
        assert_close!(y, [0.5, 0.75, 0.25, 0.0, 1.0], 1e-15);
        // σ' = σ(1 - σ) = 1/4, 3/16, 3/16, 0, 0; times dy = 4, onto dx = 1
        let mut dx = [1.0; 5];
        sigmoid_backward(&x, &y, &[4.0; 5], &mut dx).unwrap();
        assert_close!(dx, [2.0, 1.75, 1.75, 1.0, 1.0], 1e-15);
    }

    #[test]
    fn f32_literal() {
        // σ(-ln 3) = 1/4, σ(0) = 1/2; σ' = 3/16, 1/4
        let x = [-3.0f32.ln(), 0.0];
        let mut y = [0.0f32; 2];
        sigmoid(&x, &mut y).unwrap();
        assert_close!(y, [0.25f32, 0.5]);
        let mut dx = [0.0f32; 2];
        sigmoid_backward(&x, &y, &[1.0, 1.0], &mut dx).unwrap();
        assert_close!(dx, [0.1875f32, 0.25]);
    }

    #[test]
    fn gradcheck() {
        let x: Vec<f64> = random_vec(3, 12, -6.0, 6.0);
        let w: Vec<f64> = random_vec(4, 12, -1.0, 1.0);
        let mut y = vec![0.0; 12];
        sigmoid(&x, &mut y).unwrap();
        let mut dx = vec![0.0; 12];
        sigmoid_backward(&x, &y, &w, &mut dx).unwrap();
        let loss = |x: &[f64]| {
            let mut y = vec![0.0; x.len()];
            sigmoid(x, &mut y).unwrap();
            y.iter().zip(&w).map(|(a, b)| a * b).sum()
        };
        assert_gradient("sigmoid", loss, &x, &dx, 1e-7);
    }

    #[test]
    fn length_mismatch_is_an_error() {
        let err = sigmoid(&[1.0f64, 2.0], &mut [0.0; 1]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "length mismatch in sigmoid: `y` has 1 elements, expected 2"
        );
        let mut dx = [0.0f64; 2];
        let err = sigmoid_backward(&[1.0, 2.0], &[0.5], &[1.0, 1.0], &mut dx).unwrap_err();
        assert_eq!(
            err.to_string(),
            "length mismatch in sigmoid: `y` has 1 elements, expected 2"
        );
    }
}
