//! `silu(x) = x · σ(x)` (SiLU, also called swish); `d silu / dx = σ(x) (1 + x (1 - σ(x)))`.
//! σ is the overflow-free logistic of [`sigmoid_stable`](fn@super::sigmoid_stable), so `x = ±1000`
//! gives 1000 and 0 with gradients 1 and 0.

use super::sigmoid_stable::logistic;
use super::{unary, unary_backward};
use crate::{Float, Result};

/// `y = x σ(x)` elementwise.
pub fn silu<T: Float>(x: &[T], y: &mut [T]) -> Result<()> {
    unary("silu", x, y, |v| v * logistic(v))
}

/// `dx += dy · σ(x) (1 + x (1 - σ(x)))`, with σ recomputed from `x`.
pub fn silu_backward<T: Float>(x: &[T], y: &[T], dy: &[T], dx: &mut [T]) -> Result<()> {
    unary_backward("silu", x, y, dy, dx, |x, _, g| {
        let s = logistic(x);
        g * s * (T::one() + x * (T::one() - s))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::assert_close;
    use crate::testing::{assert_gradient, random_vec};

    #[test]
    fn literal() {
        // σ(0) = 1/2, σ(ln 3) = 3/4, σ(-ln 3) = 1/4:
        // y = 0, (3/4) ln 3, -(1/4) ln 3; y' = 1/2, (3/4)(1 + (1/4) ln 3), (1/4)(1 - (3/4) ln 3);
        // x = ±1000: σ = 1 and 0, y = 1000 and 0, y' = 1 and 0
        let l3 = 3.0f64.ln();
        let x = [0.0, l3, -l3, 1000.0, -1000.0];
        let mut y = [0.0; 5];
        silu(&x, &mut y).unwrap();
        assert_close!(y, [0.0, 0.75 * l3, -0.25 * l3, 1000.0, 0.0], 1e-15);
        // dy = 2 onto dx = 1
        let mut dx = [1.0; 5];
        silu_backward(&x, &y, &[2.0; 5], &mut dx).unwrap();
        let d = [
            0.5,
            0.75 * (1.0 + 0.25 * l3),
            0.25 * (1.0 - 0.75 * l3),
            1.0,
            0.0,
        ];
        assert_close!(dx, d.map(|v| 1.0 + 2.0 * v), 1e-15);
    }

    #[test]
    fn f32_literal() {
        // silu(ln 3) = (3/4) ln 3, silu'(0) = 1/2
        let l3 = 3.0f32.ln();
        let x = [l3, 0.0];
        let mut y = [0.0f32; 2];
        silu(&x, &mut y).unwrap();
        assert_close!(y, [0.75 * l3, 0.0]);
        let mut dx = [0.0f32; 2];
        silu_backward(&x, &y, &[1.0, 1.0], &mut dx).unwrap();
        assert_close!(dx, [0.75 * (1.0 + 0.25 * l3), 0.5]);
    }

    #[test]
    fn gradcheck() {
        let x: Vec<f64> = random_vec(13, 12, -6.0, 6.0);
        let w: Vec<f64> = random_vec(14, 12, -1.0, 1.0);
        let mut y = vec![0.0; 12];
        silu(&x, &mut y).unwrap();
        let mut dx = vec![0.0; 12];
        silu_backward(&x, &y, &w, &mut dx).unwrap();
        let loss = |x: &[f64]| {
            let mut y = vec![0.0; x.len()];
            silu(x, &mut y).unwrap();
            y.iter().zip(&w).map(|(a, b)| a * b).sum()
        };
        assert_gradient("silu", loss, &x, &dx, 1e-7);
    }

    #[test]
    fn length_mismatch_is_an_error() {
        let err = silu(&[1.0f64, 2.0], &mut [0.0; 3]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "length mismatch in silu: `y` has 3 elements, expected 2"
        );
        let mut dx = [0.0f64; 2];
        assert!(silu_backward(&[1.0, 2.0], &[1.0, 2.0], &[1.0; 3], &mut dx).is_err());
    }
}
