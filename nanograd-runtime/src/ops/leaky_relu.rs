//! `leaky_relu(x) = x` where `x > 0`, else `alpha · x` (the seed's `max(alpha · x, x)` for
//! `0 <= alpha <= 1`, written as PyTorch does so that any `alpha` works). Derivative: `1` where
//! `x > 0`, else `alpha` (PyTorch's choice at 0). The seed's default slope is
//! [`LEAKY_RELU_ALPHA`] = 0.01, as PyTorch's `negative_slope`.

use super::{unary, unary_backward};
use crate::{Float, Result};

/// The default negative slope, in the seed (`alpha: 0.01`) and in PyTorch (`negative_slope`).
pub const LEAKY_RELU_ALPHA: f64 = 0.01;

/// `y = x` where `x > 0`, else `alpha * x`, elementwise.
pub fn leaky_relu<T: Float>(x: &[T], alpha: T, y: &mut [T]) -> Result<()> {
    unary("leaky_relu", x, y, |v| {
        if v > T::zero() {
            v
        } else {
            alpha * v
        }
    })
}

/// `dx += dy` where `x > 0`, else `dx += alpha * dy`.
pub fn leaky_relu_backward<T: Float>(
    x: &[T],
    y: &[T],
    dy: &[T],
    alpha: T,
    dx: &mut [T],
) -> Result<()> {
    unary_backward("leaky_relu", x, y, dy, dx, |x, _, g| {
        if x > T::zero() {
            g
        } else {
            alpha * g
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::assert_close;
    use crate::testing::{assert_gradient, random_vec};

    #[test]
    fn literal() {
        // alpha = 0.1: -2 -> -0.2, 0 -> 0, 3 -> 3; slopes 0.1, 0.1 (at 0), 1
        let x = [-2.0f64, 0.0, 3.0];
        let mut y = [9.0; 3];
        leaky_relu(&x, 0.1, &mut y).unwrap();
        assert_close!(y, [-0.2, 0.0, 3.0], 1e-15);
        // dy = 10 onto dx = 1: 1 + 1, 1 + 1, 1 + 10
        let mut dx = [1.0; 3];
        leaky_relu_backward(&x, &y, &[10.0; 3], 0.1, &mut dx).unwrap();
        assert_close!(dx, [2.0, 2.0, 11.0], 1e-15);
    }

    #[test]
    fn f32_default_slope() {
        // alpha = 0.01: -5 -> -0.05, 4 -> 4; slopes 0.01, 1
        let a = LEAKY_RELU_ALPHA as f32;
        let x = [-5.0f32, 4.0];
        let mut y = [0.0f32; 2];
        leaky_relu(&x, a, &mut y).unwrap();
        assert_close!(y, [-0.05f32, 4.0]);
        let mut dx = [0.0f32; 2];
        leaky_relu_backward(&x, &y, &[1.0, 1.0], a, &mut dx).unwrap();
        assert_close!(dx, [0.01f32, 1.0]);
    }

    #[test]
    fn gradcheck() {
        // keep away from the kink at 0
        let x: Vec<f64> = random_vec(7, 12, -1.0, 1.0)
            .into_iter()
            .map(|v: f64| if v.abs() < 0.1 { v + 0.2 } else { v })
            .collect();
        let w: Vec<f64> = random_vec(8, 12, -1.0, 1.0);
        let alpha = 0.2;
        let mut y = vec![0.0; 12];
        leaky_relu(&x, alpha, &mut y).unwrap();
        let mut dx = vec![0.0; 12];
        leaky_relu_backward(&x, &y, &w, alpha, &mut dx).unwrap();
        let loss = |x: &[f64]| {
            let mut y = vec![0.0; x.len()];
            leaky_relu(x, alpha, &mut y).unwrap();
            y.iter().zip(&w).map(|(a, b)| a * b).sum()
        };
        assert_gradient("leaky_relu", loss, &x, &dx, 1e-7);
    }

    #[test]
    fn length_mismatch_is_an_error() {
        let err = leaky_relu(&[1.0f64, 2.0], 0.01, &mut [0.0; 3]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "length mismatch in leaky_relu: `y` has 3 elements, expected 2"
        );
        let mut dx = [0.0f64; 1];
        let err = leaky_relu_backward(&[1.0, 2.0], &[1.0, 2.0], &[1.0, 1.0], 0.01, &mut dx);
        assert_eq!(
            err.unwrap_err().to_string(),
            "length mismatch in leaky_relu: `dx` has 1 elements, expected 2"
        );
    }
}
