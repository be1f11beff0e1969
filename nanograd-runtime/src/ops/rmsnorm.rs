//! Root-mean-square normalisation over the last dimension (`cols = d` values per row), the
//! seed's `(rmsnorm x weight #:epsilon 1e-5)`, as PyTorch's `F.rms_norm`:
//!
//! ```text
//! r = 1 / √(Σ x² / d + eps),   y = x · r · weight
//! ```
//!
//! Derivative, per row (`dr/dx_k = -r³ x_k / d`):
//!
//! ```text
//! dx_k    = dy_k · weight_k · r - r³ · x_k / d · Σ_j dy_j weight_j x_j
//! dweight = Σ_rows dy · x · r
//! ```

use super::row_count;
use crate::blas::dot;
use crate::{check_len, Float, Result};

/// `1 / √(mean(x²) + eps)` of one row.
fn inv_rms<T: Float>(row: &[T], eps: T) -> T {
    T::one() / (dot(row, row) / T::from_usize(row.len()) + eps).sqrt()
}

/// `y = x / √(mean(x²) + eps) · weight` per row of `cols` values; `weight` has `cols`.
pub fn rmsnorm<T: Float>(x: &[T], weight: &[T], cols: usize, eps: T, y: &mut [T]) -> Result<()> {
    const OP: &str = "rmsnorm";
    row_count(OP, "x", x.len(), cols)?;
    check_len(OP, "weight", cols, weight.len())?;
    check_len(OP, "y", x.len(), y.len())?;
    for (xr, yr) in x.chunks_exact(cols).zip(y.chunks_exact_mut(cols)) {
        let r = inv_rms(xr, eps);
        for ((yi, &xi), &wi) in yr.iter_mut().zip(xr).zip(weight) {
            *yi = xi * r * wi;
        }
    }
    Ok(())
}

/// Accumulates into `dx` and `dweight` (each optional) from `dy`.
pub fn rmsnorm_backward<T: Float>(
    x: &[T],
    weight: &[T],
    dy: &[T],
    cols: usize,
    eps: T,
    mut dx: Option<&mut [T]>,
    mut dweight: Option<&mut [T]>,
) -> Result<()> {
    const OP: &str = "rmsnorm_backward";
    row_count(OP, "x", x.len(), cols)?;
    check_len(OP, "weight", cols, weight.len())?;
    check_len(OP, "dy", x.len(), dy.len())?;
    if let Some(dx) = dx.as_deref() {
        check_len(OP, "dx", x.len(), dx.len())?;
    }
    if let Some(dw) = dweight.as_deref() {
        check_len(OP, "dweight", cols, dw.len())?;
    }
    let d = T::from_usize(cols);
    for (r, (xr, gr)) in x.chunks_exact(cols).zip(dy.chunks_exact(cols)).enumerate() {
        let inv = inv_rms(xr, eps);
        if let Some(dx) = dx.as_deref_mut() {
            let s: T = xr
                .iter()
                .zip(gr)
                .zip(weight)
                .map(|((&xi, &gi), &wi)| gi * wi * xi)
                .sum();
            let a = inv * inv * inv * s / d;
            let dxr = &mut dx[r * cols..(r + 1) * cols];
            for ((di, (&xi, &gi)), &wi) in dxr.iter_mut().zip(xr.iter().zip(gr)).zip(weight) {
                *di += gi * wi * inv - a * xi;
            }
        }
        if let Some(dw) = dweight.as_deref_mut() {
            for ((dwj, &xi), &gi) in dw.iter_mut().zip(xr).zip(gr) {
                *dwj += gi * xi * inv;
            }
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
        // cols = 2, eps = 3.5, weight = [2, -1]
        // row 0: [3, 4]:  mean x² = 25/2 = 12.5, r = 1/√16 = 0.25, y = [1.5, -1]
        // row 1: [-5, 0]: mean x² = 12.5,         r = 0.25,        y = [-2.5, 0]
        let x = cast::<T>(&[3.0, 4.0, -5.0, 0.0]);
        let w = cast::<T>(&[2.0, -1.0]);
        let eps = T::from_f64(3.5);
        let mut y = vec![T::zero(); 4];
        rmsnorm(&x, &w, 2, eps, &mut y).unwrap();
        assert_close!(y, [1.5, -1.0, -2.5, 0.0]);
        // backward, r³ = 1/64, d = 2, s = Σ dy w x:
        // row 0: dy [1, 2], s = 6 - 8 = -2
        //        dx = [0.5 + 3·2/128, -0.5 + 4·2/128] = [0.546875, -0.4375]
        // row 1: dy [1, 1], s = -10
        //        dx = [0.5 - 50/128, -0.25 - 0] = [0.109375, -0.25]
        // dweight = Σ dy x r = [0.75 - 1.25, 2 + 0] = [-0.5, 2], accumulated onto [1, 1]
        let dy = cast::<T>(&[1.0, 2.0, 1.0, 1.0]);
        let (mut dx, mut dw) = (vec![T::zero(); 4], vec![T::one(); 2]);
        rmsnorm_backward(&x, &w, &dy, 2, eps, Some(&mut dx), Some(&mut dw)).unwrap();
        assert_close!(dx, [0.546875, -0.4375, 0.109375, -0.25]);
        assert_close!(dw, [0.5, 3.0]);
    }

    #[test]
    fn literal_f64_and_f32() {
        literal::<f64>();
        literal::<f32>();
    }

    #[test]
    fn gradcheck() {
        let (rows, cols) = (3, 6);
        let x: Vec<f64> = random_vec(1, rows * cols, -2.0, 2.0);
        let w: Vec<f64> = random_vec(2, cols, -1.5, 1.5);
        let up: Vec<f64> = random_vec(3, rows * cols, -1.0, 1.0);
        let loss = |x: &[f64], w: &[f64]| -> f64 {
            let mut y = vec![0.0; x.len()];
            rmsnorm(x, w, cols, 1e-5, &mut y).unwrap();
            y.iter().zip(&up).map(|(a, b)| a * b).sum()
        };
        let (mut dx, mut dw) = (vec![0.0; x.len()], vec![0.0; cols]);
        rmsnorm_backward(&x, &w, &up, cols, 1e-5, Some(&mut dx), Some(&mut dw)).unwrap();
        assert_gradient("rmsnorm dx", |x| loss(x, &w), &x, &dx, 1e-6);
        assert_gradient("rmsnorm dweight", |w| loss(&x, w), &w, &dw, 1e-6);
    }

    #[test]
    fn bad_input_is_an_error() {
        let x = [1.0f64; 6];
        let mut y = [0.0f64; 6];
        let err = rmsnorm(&x, &[1.0; 2], 3, 1e-5, &mut y).unwrap_err();
        assert_eq!(
            err.to_string(),
            "length mismatch in rmsnorm: `weight` has 2 elements, expected 3"
        );
        let err = rmsnorm(&x, &[1.0; 4], 4, 1e-5, &mut y).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid argument to rmsnorm: `x` has 6 elements, not a multiple of the row length 4"
        );
        assert!(rmsnorm(&x, &[], 0, 1e-5, &mut y).is_err());
        let mut dw = [0.0f64; 2];
        assert!(rmsnorm_backward(&x, &[1.0; 3], &x, 3, 1e-5, None, Some(&mut dw)).is_err());
    }
}
