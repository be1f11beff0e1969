//! `mean(x) = Σ_i x_i / n` over all `n` elements, the seed's `mean-tensor`;
//! `dL/dx_i = dL/dy / n`. The mean of no elements is an error.
//!
//! Also the row-wise mean over the last dimension, `mean_rows(x)[r] = Σ_j x[r, j] / cols`,
//! with `dL/dx[r, j] = dL/dy[r] / cols`.

use super::row_count;
use super::sum::{sum, sum_backward};
use crate::{check_len, invalid, Float, Result};

fn check_nonempty(n: usize) -> Result<()> {
    if n == 0 {
        Err(invalid("mean", "cannot take the mean of 0 elements"))
    } else {
        Ok(())
    }
}

/// `Σ_i x_i / n`; an error if `x` is empty.
pub fn mean<T: Float>(x: &[T]) -> Result<T> {
    check_nonempty(x.len())?;
    Ok(sum(x) / T::from_usize(x.len()))
}

/// `dx_i += dy / n`; an error if `dx` is empty.
pub fn mean_backward<T: Float>(dy: T, dx: &mut [T]) -> Result<()> {
    check_nonempty(dx.len())?;
    sum_backward(dy / T::from_usize(dx.len()), dx)
}

/// `y[r] = Σ_j x[r, j] / cols` for `x` of shape `[rows, cols]` and `y` of `rows` elements.
pub fn mean_rows<T: Float>(x: &[T], cols: usize, y: &mut [T]) -> Result<()> {
    let rows = row_count("mean_rows", "x", x.len(), cols)?;
    check_len("mean_rows", "y", rows, y.len())?;
    let n = T::from_usize(cols);
    for (yr, xr) in y.iter_mut().zip(x.chunks_exact(cols)) {
        *yr = sum(xr) / n;
    }
    Ok(())
}

/// `dx[r, j] += dy[r] / cols` for `dx` of shape `[rows, cols]` and `dy` of `rows` elements.
pub fn mean_rows_backward<T: Float>(cols: usize, dy: &[T], dx: &mut [T]) -> Result<()> {
    let rows = row_count("mean_rows", "dx", dx.len(), cols)?;
    check_len("mean_rows", "dy", rows, dy.len())?;
    let n = T::from_usize(cols);
    for (&g, dxr) in dy.iter().zip(dx.chunks_exact_mut(cols)) {
        sum_backward(g / n, dxr)?;
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
        // the seed's example: mean([1, 2, 3, 4]) = 10 / 4 = 2.5, each gradient 1 / 4
        let x = [1.0f32, 2.0, 3.0, 4.0];
        assert_close!(mean(&x).unwrap(), 2.5f32);
        let mut dx = [0.0f32; 4];
        mean_backward(1.0, &mut dx).unwrap();
        assert_close!(dx, [0.25f32; 4]);
        // rows of [[1, 2], [3, 4]]: [1.5, 3.5]; dx[r, j] += dy[r] / 2
        let mut y = [0.0f32; 2];
        mean_rows(&x, 2, &mut y).unwrap();
        assert_close!(y, [1.5f32, 3.5]);
        let mut dx = [1.0f32; 4];
        mean_rows_backward(2, &[1.0, -2.0], &mut dx).unwrap();
        assert_close!(dx, [1.5f32, 1.5, 0.0, 0.0]);
    }

    #[test]
    fn gradcheck() {
        let x: Vec<f64> = random_vec(1, 12, -1.0, 1.0);
        let mut dx = vec![0.0; 12];
        mean_backward(0.3, &mut dx).unwrap();
        assert_gradient("mean", |x| 0.3 * mean(x).unwrap(), &x, &dx, 1e-7);

        let w: Vec<f64> = random_vec(2, 4, -1.0, 1.0);
        let mut dx = vec![0.0; 12];
        mean_rows_backward(3, &w, &mut dx).unwrap();
        let loss = |x: &[f64]| {
            let mut y = vec![0.0; 4];
            mean_rows(x, 3, &mut y).unwrap();
            y.iter().zip(&w).map(|(y, w)| y * w).sum()
        };
        assert_gradient("mean_rows", loss, &x, &dx, 1e-7);
    }

    #[test]
    fn errors() {
        let err = mean::<f64>(&[]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid argument to mean: cannot take the mean of 0 elements"
        );
        assert!(mean_backward::<f64>(1.0, &mut []).is_err());
        let err = mean_rows(&[1.0f64; 6], 0, &mut [0.0; 2]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid argument to mean_rows: the row length of `x` must be positive, got 0"
        );
        assert!(mean_rows(&[1.0f64; 6], 3, &mut [0.0; 1]).is_err());
        assert!(mean_rows_backward(3, &[1.0f64; 2], &mut [0.0; 7]).is_err());
    }
}
