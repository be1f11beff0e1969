//! GELU with the tanh approximation (the seed's `gelu`; PyTorch's
//! `F.gelu(x, approximate="tanh")`):
//!
//! `gelu(x) = x/2 · (1 + tanh(u))`, `u = √(2/π) · (x + 0.044715 x³)`;
//!
//! `d gelu / dx = (1 + tanh u)/2 + x/2 · (1 - tanh² u) · √(2/π) · (1 + 3 · 0.044715 x²)`.

use super::{unary, unary_backward};
use crate::{Float, Result};

/// `√(2/π)`.
const SQRT_2_OVER_PI: f64 = 0.797_884_560_802_865_4;
/// The cubic coefficient of the approximation.
const KAPPA: f64 = 0.044_715;

/// `y = x/2 · (1 + tanh(√(2/π) (x + 0.044715 x³)))` elementwise.
pub fn gelu<T: Float>(x: &[T], y: &mut [T]) -> Result<()> {
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
    let (s, k) = (T::from_f64(SQRT_2_OVER_PI), T::from_f64(KAPPA));
    let (half, three) = (T::from_f64(0.5), T::from_f64(3.0));
    unary_backward("gelu", x, y, dy, dx, |x, _, g| {
        let x2 = x * x;
        let t = (s * (x + k * x2 * x)).tanh();
        let du = s * (T::one() + three * k * x2);
        g * (half * (T::one() + t) + half * x * (T::one() - t * t) * du)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::assert_close;
    use crate::testing::{assert_gradient, random_vec};

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
