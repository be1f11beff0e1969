//! `sum(x) = Σ_i x_i` over all elements, the seed's `sum-tensor`; `dL/dx_i = dL/dy`.
//!
//! Also the row-wise sum over the last dimension, `sum_rows(x)[r] = Σ_j x[r, j]`, with
//! `dL/dx[r, j] = dL/dy[r]`.

use super::row_count;
use crate::{check_len, Float, Result};

/// `Σ_i x_i` (0 for an empty `x`).
pub fn sum<T: Float>(x: &[T]) -> T {
    x.iter().fold(T::zero(), |acc, &v| acc + v)
}

/// `dx_i += dy` for every element. Never fails; returns `Result` like every backward kernel.
pub fn sum_backward<T: Float>(dy: T, dx: &mut [T]) -> Result<()> {
    for d in dx.iter_mut() {
        *d += dy;
    }
    Ok(())
}

/// `y[r] = Σ_j x[r, j]` for `x` of shape `[rows, cols]` and `y` of `rows` elements.
pub fn sum_rows<T: Float>(x: &[T], cols: usize, y: &mut [T]) -> Result<()> {
    let rows = row_count("sum_rows", "x", x.len(), cols)?;
    check_len("sum_rows", "y", rows, y.len())?;
    for (yr, xr) in y.iter_mut().zip(x.chunks_exact(cols)) {
        *yr = sum(xr);
    }
    Ok(())
}

/// `dx[r, j] += dy[r]` for `dx` of shape `[rows, cols]` and `dy` of `rows` elements.
pub fn sum_rows_backward<T: Float>(cols: usize, dy: &[T], dx: &mut [T]) -> Result<()> {
    let rows = row_count("sum_rows", "dx", dx.len(), cols)?;
    check_len("sum_rows", "dy", rows, dy.len())?;
    for (&g, dxr) in dy.iter().zip(dx.chunks_exact_mut(cols)) {
        sum_backward(g, dxr)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::assert_close;
    use crate::testing::{assert_gradient, random_vec};

    #[test]
    fn literal() {
        // the seed's example: sum([1, 2, 3, 4]) = 10, each gradient 1
        let x = [1.0f32, 2.0, 3.0, 4.0];
        assert_close!(sum(&x), 10.0f32);
        let mut dx = [0.5f32; 4];
        sum_backward(2.0, &mut dx).unwrap();
        assert_close!(dx, [2.5f32; 4]);
        assert_eq!(sum::<f64>(&[]), 0.0);
        // rows of [[1, 2], [3, 4]]: [3, 7]; dx[r, j] += dy[r]
        let mut y = [0.0f32; 2];
        sum_rows(&x, 2, &mut y).unwrap();
        assert_close!(y, [3.0f32, 7.0]);
        let mut dx = [0.0f32; 4];
        sum_rows_backward(2, &[1.0, -2.0], &mut dx).unwrap();
        assert_close!(dx, [1.0f32, 1.0, -2.0, -2.0]);
    }

    #[test]
    fn gradcheck() {
        let x: Vec<f64> = random_vec(1, 12, -1.0, 1.0);
        let mut dx = vec![0.0; 12];
        sum_backward(0.3, &mut dx).unwrap();
        assert_gradient("sum", |x| 0.3 * sum(x), &x, &dx, 1e-7);

        let w: Vec<f64> = random_vec(2, 3, -1.0, 1.0);
        let mut dx = vec![0.0; 12];
        sum_rows_backward(4, &w, &mut dx).unwrap();
        let loss = |x: &[f64]| {
            let mut y = vec![0.0; 3];
            sum_rows(x, 4, &mut y).unwrap();
            y.iter().zip(&w).map(|(y, w)| y * w).sum()
        };
        assert_gradient("sum_rows", loss, &x, &dx, 1e-7);
    }

    #[test]
    fn errors() {
        let err = sum_rows(&[1.0f64; 7], 3, &mut [0.0; 2]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid argument to sum_rows: `x` has 7 elements, not a multiple of the row length 3"
        );
        assert!(sum_rows(&[1.0f64; 6], 0, &mut [0.0; 2]).is_err());
        let err = sum_rows(&[1.0f64; 6], 3, &mut [0.0; 3]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "length mismatch in sum_rows: `y` has 3 elements, expected 2"
        );
        assert!(sum_rows_backward(3, &[1.0f64; 3], &mut [0.0; 6]).is_err());
    }
}
