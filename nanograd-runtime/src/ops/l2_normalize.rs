//! L2 normalisation over the last dimension (`cols` values per row), the seed's
//! `(l2-normalize x #:epsilon 1e-8)`:
//!
//! ```text
//! s = √(Σ x² + eps),   y = x / s
//! ```
//!
//! The gradient goes through the norm (`ds/dx_k = x_k / s`):
//!
//! ```text
//! dx_k = dy_k / s - x_k · Σ_j dy_j x_j / s³ = (dy_k - y_k · Σ_j dy_j y_j) / s
//! ```
//!
//! This is not PyTorch's `F.normalize`, which divides by `max(‖x‖, eps)` instead.

use super::row_count;
use crate::blas::dot;
use crate::{check_len, Float, Result};

/// `y = x / √(Σ x² + eps)` per row of `cols` values.
pub fn l2_normalize<T: Float>(x: &[T], cols: usize, eps: T, y: &mut [T]) -> Result<()> {
    const OP: &str = "l2_normalize";
    row_count(OP, "x", x.len(), cols)?;
    check_len(OP, "y", x.len(), y.len())?;
    for (xr, yr) in x.chunks_exact(cols).zip(y.chunks_exact_mut(cols)) {
        let inv = T::one() / (dot(xr, xr) + eps).sqrt();
        for (yi, &xi) in yr.iter_mut().zip(xr) {
            *yi = xi * inv;
        }
    }
    Ok(())
}

/// `dx += (dy - y · Σ dy y) / √(Σ x² + eps)` per row, where `y` is the forward output.
pub fn l2_normalize_backward<T: Float>(
    x: &[T],
    y: &[T],
    dy: &[T],
    cols: usize,
    eps: T,
    dx: &mut [T],
) -> Result<()> {
    const OP: &str = "l2_normalize_backward";
    row_count(OP, "x", x.len(), cols)?;
    check_len(OP, "y", x.len(), y.len())?;
    check_len(OP, "dy", x.len(), dy.len())?;
    check_len(OP, "dx", x.len(), dx.len())?;
    let rows = x.chunks_exact(cols).zip(y.chunks_exact(cols));
    for ((xr, yr), (gr, dxr)) in rows.zip(dy.chunks_exact(cols).zip(dx.chunks_exact_mut(cols))) {
        let inv = T::one() / (dot(xr, xr) + eps).sqrt();
        let gy = dot(gr, yr);
        for ((di, &gi), &yi) in dxr.iter_mut().zip(gr).zip(yr) {
            *di += (gi - yi * gy) * inv;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::assert_close;
    use crate::testing::{assert_gradient, random_vec};

    fn cast<T: Float>(v: &[f64]) -> Vec<T> {
        v.iter().map(|&a| T::from_f64(a)).collect()
    }

    fn literal<T: Float>() {
        // cols = 2, eps = 39 (large, so that its place shows)
        // row 0: [3, 4]:  s = √(25 + 39) = 8, y = [0.375, 0.5]
        // row 1: [-5, 0]: s = 8,              y = [-0.625, 0]
        let x = cast::<T>(&[3.0, 4.0, -5.0, 0.0]);
        let eps = T::from_f64(39.0);
        let mut y = vec![T::zero(); 4];
        l2_normalize(&x, 2, eps, &mut y).unwrap();
        assert_close!(y, [0.375, 0.5, -0.625, 0.0]);
        // row 0: dy [1, 0]: Σ dy y = 0.375, dx = ([1, 0] - 0.375·[0.375, 0.5]) / 8
        //        = [0.859375, -0.1875] / 8 = [0.107421875, -0.0234375]
        //        (check: dy/s - x·Σ dy x/s³ = [1/8 - 9/512, -12/512])
        // row 1: dy [0, 2]: Σ dy y = 0, dx = [0, 2] / 8 = [0, 0.25]; accumulated onto 1
        let dy = cast::<T>(&[1.0, 0.0, 0.0, 2.0]);
        let mut dx = vec![T::one(); 4];
        l2_normalize_backward(&x, &y, &dy, 2, eps, &mut dx).unwrap();
        assert_close!(dx, [1.107421875, 0.9765625, 1.0, 1.25]);
    }

    #[test]
    fn literal_f64_and_f32() {
        literal::<f64>();
        literal::<f32>();
        // a zero row stays zero: s = √eps, no NaN
        let mut y = [1.0f32; 3];
        l2_normalize(&[0.0f32; 3], 3, 1e-8, &mut y).unwrap();
        assert_eq!(y, [0.0; 3]);
    }

    #[test]
    fn gradcheck() {
        let (rows, cols) = (3, 6);
        let x: Vec<f64> = random_vec(1, rows * cols, -2.0, 2.0);
        let up: Vec<f64> = random_vec(2, rows * cols, -1.0, 1.0);
        // the seed's eps, and a large one whose place in the gradient shows
        for eps in [1e-8, 0.5] {
            let loss = |x: &[f64]| -> f64 {
                let mut y = vec![0.0; x.len()];
                l2_normalize(x, cols, eps, &mut y).unwrap();
                y.iter().zip(&up).map(|(a, b)| a * b).sum()
            };
            let mut y = vec![0.0; x.len()];
            l2_normalize(&x, cols, eps, &mut y).unwrap();
            let mut dx = vec![0.0; x.len()];
            l2_normalize_backward(&x, &y, &up, cols, eps, &mut dx).unwrap();
            assert_gradient("l2_normalize dx", loss, &x, &dx, 1e-6);
        }
    }

    #[test]
    fn bad_input_is_an_error() {
        let x = [1.0f64; 6];
        let mut y = [0.0f64; 5];
        let err = l2_normalize(&x, 3, 1e-8, &mut y).unwrap_err();
        assert_eq!(
            err.to_string(),
            "length mismatch in l2_normalize: `y` has 5 elements, expected 6"
        );
        assert!(l2_normalize(&x, 4, 1e-8, &mut [0.0; 6]).is_err());
        let mut dx = [0.0f64; 6];
        assert!(l2_normalize_backward(&x, &x, &x[..3], 3, 1e-8, &mut dx).is_err());
    }
}
