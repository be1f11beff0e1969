//! `tanh(x)`, the seed's `tanh-op`; `d tanh / dx = 1 - tanh²(x)`, computed from the output.

use super::{unary, unary_backward};
use crate::{Float, Result};

/// `y = tanh(x)` elementwise.
pub fn tanh<T: Float>(x: &[T], y: &mut [T]) -> Result<()> {
    unary("tanh", x, y, |v| v.tanh())
}

/// `dx += dy * (1 - y²)`, where `y = tanh(x)` is the forward output.
pub fn tanh_backward<T: Float>(x: &[T], y: &[T], dy: &[T], dx: &mut [T]) -> Result<()> {
    unary_backward("tanh", x, y, dy, dx, |_, y, g| g * (T::one() - y * y))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::assert_close;
    use crate::testing::{assert_gradient, random_vec};

    #[test]
    fn literal() {
        // tanh x = (e^x - e^-x) / (e^x + e^-x):
        // tanh(ln 2) = (2 - 1/2) / (2 + 1/2) = 3/5; tanh(-ln 3) = -(3 - 1/3) / (3 + 1/3) = -4/5;
        // tanh(±1000) = ±1
        let x = [0.0, 2.0f64.ln(), -3.0f64.ln(), 1000.0, -1000.0];
        let mut y = [0.0; 5];
        tanh(&x, &mut y).unwrap();
        assert_close!(y, [0.0, 0.6, -0.8, 1.0, -1.0], 1e-15);
        // 1 - y² = 1, 16/25, 9/25, 0, 0; times dy = 5, onto dx = 1
        let mut dx = [1.0; 5];
        tanh_backward(&x, &y, &[5.0; 5], &mut dx).unwrap();
        assert_close!(dx, [6.0, 4.2, 2.8, 1.0, 1.0], 1e-14);
    }

    #[test]
    fn f32_literal() {
        // as above: tanh(ln 2) = 3/5, 1 - 9/25 = 16/25 = 0.64
        let x = [2.0f32.ln()];
        let mut y = [0.0f32];
        tanh(&x, &mut y).unwrap();
        assert_close!(y, [0.6f32]);
        let mut dx = [0.0f32];
        tanh_backward(&x, &y, &[1.0], &mut dx).unwrap();
        assert_close!(dx, [0.64f32]);
    }

    #[test]
    fn gradcheck() {
        let x: Vec<f64> = random_vec(5, 12, -3.0, 3.0);
        let w: Vec<f64> = random_vec(6, 12, -1.0, 1.0);
        let mut y = vec![0.0; 12];
        tanh(&x, &mut y).unwrap();
        let mut dx = vec![0.0; 12];
        tanh_backward(&x, &y, &w, &mut dx).unwrap();
        let loss = |x: &[f64]| {
            let mut y = vec![0.0; x.len()];
            tanh(x, &mut y).unwrap();
            y.iter().zip(&w).map(|(a, b)| a * b).sum()
        };
        assert_gradient("tanh", loss, &x, &dx, 1e-7);
    }

    #[test]
    fn length_mismatch_is_an_error() {
        let err = tanh(&[1.0f64, 2.0], &mut [0.0; 3]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "length mismatch in tanh: `y` has 3 elements, expected 2"
        );
        let mut dx = [0.0f64; 2];
        let err = tanh_backward(&[1.0, 2.0], &[0.5, 0.5], &[1.0], &mut dx).unwrap_err();
        assert_eq!(
            err.to_string(),
            "length mismatch in tanh: `dy` has 1 elements, expected 2"
        );
    }
}
