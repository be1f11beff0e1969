//! Layer normalisation over the last dimension (`cols` values per row), as PyTorch's
//! `F.layer_norm(x, [cols], weight, bias, eps)`:
//!
//! ```text
//! mean = Σ x / d,  var = Σ (x - mean)² / d   (biased),  invstd = 1 / √(var + eps)
//! x̂ = (x - mean) · invstd,   y = weight · x̂ + bias     (d = cols; weight, bias optional)
//! ```
//!
//! Derivative, per row with `g = dy · weight` (or `dy` without a weight):
//!
//! ```text
//! dx = invstd / d · (d · g - Σ g - x̂ · Σ g x̂),   dweight = Σ_rows dy x̂,   dbias = Σ_rows dy
//! ```
//!
//! The backward pass recomputes each row's mean and variance from `x` (one extra pass over
//! the row) rather than taking saved statistics, so no buffer beyond the gradients is needed.

use super::row_count;
use crate::{check_len, invalid, Float, Result};

/// Mean and `1 / √(var + eps)` (biased variance) of one row.
fn row_stats<T: Float>(row: &[T], eps: T) -> (T, T) {
    let d = T::from_usize(row.len());
    let mean = row.iter().copied().sum::<T>() / d;
    let var = row.iter().map(|&v| (v - mean) * (v - mean)).sum::<T>() / d;
    (mean, T::one() / (var + eps).sqrt())
}

/// `y = (x - mean) / √(var + eps) · weight + bias` per row of `cols` values; `weight` and
/// `bias` (length `cols`) are optional, as PyTorch's `elementwise_affine`.
pub fn layer_norm<T: Float>(
    x: &[T],
    weight: Option<&[T]>,
    bias: Option<&[T]>,
    cols: usize,
    eps: T,
    y: &mut [T],
) -> Result<()> {
    const OP: &str = "layer_norm";
    row_count(OP, "x", x.len(), cols)?;
    check_len(OP, "y", x.len(), y.len())?;
    if let Some(w) = weight {
        check_len(OP, "weight", cols, w.len())?;
    }
    if let Some(b) = bias {
        check_len(OP, "bias", cols, b.len())?;
    }
    for (xr, yr) in x.chunks_exact(cols).zip(y.chunks_exact_mut(cols)) {
        let (mean, invstd) = row_stats(xr, eps);
        for (j, (yi, &xi)) in yr.iter_mut().zip(xr).enumerate() {
            let mut v = (xi - mean) * invstd;
            if let Some(w) = weight {
                v *= w[j];
            }
            if let Some(b) = bias {
                v += b[j];
            }
            *yi = v;
        }
    }
    Ok(())
}

/// Accumulates into `dx`, `dweight` and `dbias` (each optional) from `dy`. `weight` is the
/// one given to the forward pass; asking for `dweight` without a weight is an error.
#[allow(clippy::too_many_arguments)]
pub fn layer_norm_backward<T: Float>(
    x: &[T],
    weight: Option<&[T]>,
    dy: &[T],
    cols: usize,
    eps: T,
    mut dx: Option<&mut [T]>,
    mut dweight: Option<&mut [T]>,
    mut dbias: Option<&mut [T]>,
) -> Result<()> {
    const OP: &str = "layer_norm_backward";
    row_count(OP, "x", x.len(), cols)?;
    check_len(OP, "dy", x.len(), dy.len())?;
    if let Some(w) = weight {
        check_len(OP, "weight", cols, w.len())?;
    }
    if let Some(dx) = dx.as_deref() {
        check_len(OP, "dx", x.len(), dx.len())?;
    }
    if let Some(dw) = dweight.as_deref() {
        if weight.is_none() {
            return Err(invalid(
                OP,
                "`dweight` was asked for but there is no weight",
            ));
        }
        check_len(OP, "dweight", cols, dw.len())?;
    }
    if let Some(db) = dbias.as_deref() {
        check_len(OP, "dbias", cols, db.len())?;
    }
    let d = T::from_usize(cols);
    let w_at = |j: usize| weight.map_or(T::one(), |w| w[j]);
    for (r, (xr, gr)) in x.chunks_exact(cols).zip(dy.chunks_exact(cols)).enumerate() {
        let (mean, invstd) = row_stats(xr, eps);
        let (mut sum_g, mut sum_gx) = (T::zero(), T::zero());
        for (j, (&xi, &gi)) in xr.iter().zip(gr).enumerate() {
            let g = gi * w_at(j);
            sum_g += g;
            sum_gx += g * (xi - mean) * invstd;
        }
        if let Some(dx) = dx.as_deref_mut() {
            let a = invstd / d;
            let dxr = &mut dx[r * cols..(r + 1) * cols];
            for (j, (di, (&xi, &gi))) in dxr.iter_mut().zip(xr.iter().zip(gr)).enumerate() {
                let xhat = (xi - mean) * invstd;
                *di += a * (d * gi * w_at(j) - sum_g - xhat * sum_gx);
            }
        }
        if let Some(dw) = dweight.as_deref_mut() {
            for ((dwj, &xi), &gi) in dw.iter_mut().zip(xr).zip(gr) {
                *dwj += gi * (xi - mean) * invstd;
            }
        }
        if let Some(db) = dbias.as_deref_mut() {
            for (dbj, &gi) in db.iter_mut().zip(gr) {
                *dbj += gi;
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
        // cols = 4, eps = 1
        // row 0: [0, 0, 0, 4]: mean 1, var (1+1+1+9)/4 = 3, invstd 1/√4 = 0.5,
        //        x̂ = [-0.5, -0.5, -0.5, 1.5]
        // row 1: [1, 1, 1, 1]: mean 1, var 0, invstd 1, x̂ = 0
        // weight [1, 2, 3, 4], bias [0, 0, 0, 1]: y = x̂·w + b
        let x = cast::<T>(&[0.0, 0.0, 0.0, 4.0, 1.0, 1.0, 1.0, 1.0]);
        let w = cast::<T>(&[1.0, 2.0, 3.0, 4.0]);
        let b = cast::<T>(&[0.0, 0.0, 0.0, 1.0]);
        let mut y = vec![T::zero(); 8];
        layer_norm(&x, Some(&w), Some(&b), 4, T::one(), &mut y).unwrap();
        assert_close!(y, [-0.5, -1.0, -1.5, 7.0, 0.0, 0.0, 0.0, 1.0]);
        layer_norm(&x, None, None, 4, T::one(), &mut y).unwrap();
        assert_close!(y, [-0.5, -0.5, -0.5, 1.5, 0.0, 0.0, 0.0, 0.0]);
        // backward, g = dy·w, dx = invstd/4 · (4 g - Σg - x̂ Σ g x̂):
        // row 0: dy [1, 0, 0, 0], g = [1, 0, 0, 0], Σg = 1, Σ g x̂ = -0.5
        //        dx = 0.125·[4 - 1 - 0.25, -1 - 0.25, -1 - 0.25, -1 + 0.75]
        //           = [0.34375, -0.15625, -0.15625, -0.03125]
        // row 1: dy [1, 1, 0, 0], g = [1, 2, 0, 0], Σg = 3, x̂ = 0
        //        dx = 0.25·[4 - 3, 8 - 3, -3, -3] = [0.25, 1.25, -0.75, -0.75]
        // dweight = Σ dy x̂ = [-0.5, 0, 0, 0], dbias = Σ dy = [2, 1, 0, 0], accumulated onto 1
        let dy = cast::<T>(&[1.0, 0.0, 0.0, 0.0, 1.0, 1.0, 0.0, 0.0]);
        let (mut dx, mut dw, mut db) = (vec![T::zero(); 8], vec![T::one(); 4], vec![T::one(); 4]);
        layer_norm_backward(
            &x,
            Some(&w),
            &dy,
            4,
            T::one(),
            Some(&mut dx),
            Some(&mut dw),
            Some(&mut db),
        )
        .unwrap();
        assert_close!(
            dx,
            [0.34375, -0.15625, -0.15625, -0.03125, 0.25, 1.25, -0.75, -0.75]
        );
        assert_close!(dw, [0.5, 1.0, 1.0, 1.0]);
        assert_close!(db, [3.0, 2.0, 1.0, 1.0]);
    }

    #[test]
    fn literal_f64_and_f32() {
        literal::<f64>();
        literal::<f32>();
    }

    #[test]
    fn gradcheck() {
        let (rows, cols) = (3, 5);
        let x: Vec<f64> = random_vec(1, rows * cols, -2.0, 2.0);
        let w: Vec<f64> = random_vec(2, cols, -1.5, 1.5);
        let b: Vec<f64> = random_vec(3, cols, -1.0, 1.0);
        let up: Vec<f64> = random_vec(4, rows * cols, -1.0, 1.0);
        let loss = |x: &[f64], w: Option<&[f64]>, b: Option<&[f64]>| -> f64 {
            let mut y = vec![0.0; x.len()];
            layer_norm(x, w, b, cols, 1e-5, &mut y).unwrap();
            y.iter().zip(&up).map(|(a, b)| a * b).sum()
        };
        let (mut dx, mut dw, mut db) = (vec![0.0; x.len()], vec![0.0; cols], vec![0.0; cols]);
        layer_norm_backward(
            &x,
            Some(&w),
            &up,
            cols,
            1e-5,
            Some(&mut dx),
            Some(&mut dw),
            Some(&mut db),
        )
        .unwrap();
        assert_gradient(
            "layer_norm dx",
            |x| loss(x, Some(&w), Some(&b)),
            &x,
            &dx,
            1e-6,
        );
        assert_gradient(
            "layer_norm dweight",
            |w| loss(&x, Some(w), Some(&b)),
            &w,
            &dw,
            1e-6,
        );
        assert_gradient(
            "layer_norm dbias",
            |b| loss(&x, Some(&w), Some(b)),
            &b,
            &db,
            1e-6,
        );
        // without an affine transform
        let mut dx = vec![0.0; x.len()];
        layer_norm_backward(&x, None, &up, cols, 1e-5, Some(&mut dx), None, None).unwrap();
        assert_gradient(
            "layer_norm dx, no weight",
            |x| loss(x, None, None),
            &x,
            &dx,
            1e-6,
        );
    }

    #[test]
    fn bad_input_is_an_error() {
        let x = [0.0f64; 6];
        let mut y = [0.0f64; 6];
        let err = layer_norm(&x, None, None, 4, 1e-5, &mut y).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid argument to layer_norm: `x` has 6 elements, not a multiple of the row length 4"
        );
        assert!(layer_norm(&x, None, None, 0, 1e-5, &mut y).is_err());
        let err = layer_norm(&x, Some(&[1.0; 2]), None, 3, 1e-5, &mut y).unwrap_err();
        assert_eq!(
            err.to_string(),
            "length mismatch in layer_norm: `weight` has 2 elements, expected 3"
        );
        let mut dw = [0.0f64; 3];
        let err =
            layer_norm_backward(&x, None, &x, 3, 1e-5, None, Some(&mut dw), None).unwrap_err();
        assert!(err.to_string().contains("no weight"), "{err}");
        let mut dx = [0.0f64; 5];
        assert!(layer_norm_backward(&x, None, &x, 3, 1e-5, Some(&mut dx), None, None).is_err());
    }
}
