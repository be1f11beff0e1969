//! `softmax` over the last dimension of a row-major `[rows, cols]` buffer:
//! `y_j = e^(x_j - m) / Σ_k e^(x_k - m)` with `m = max_k x_k`, so that no exponential
//! overflows (logits of ±1000 give exact probabilities).
//!
//! Derivative (Jacobian-vector product): `dx_j = y_j (dy_j - Σ_k dy_k y_k)`.

use super::row_count;
use crate::{check_len, Float, Result};

/// `(m, s)` for one row: its maximum `m` and `s = Σ_k e^(x_k - m)`, so that
/// `ln Σ_k e^(x_k) = m + ln s` with every exponent `<= 0`.
#[inline]
pub(crate) fn max_and_sum_exp<T: Float>(row: &[T]) -> (T, T) {
    let m = row_max(row);
    let s = row.iter().map(|&v| (v - m).exp()).sum();
    (m, s)
}

/// `out_j = e^(x_j - m)` for one row, returning `(m, s)` as [`max_and_sum_exp`] does, for
/// callers that use the exponentials themselves.
#[inline]
pub(crate) fn exps_into<T: Float>(row: &[T], out: &mut [T]) -> (T, T) {
    let m = row_max(row);
    let mut s = T::zero();
    for (e, &xj) in out.iter_mut().zip(row) {
        *e = (xj - m).exp();
        s += *e;
    }
    (m, s)
}

/// The maximum of a row (`-inf` for an empty one; NaNs are skipped here and propagate
/// through the exponentials).
#[inline]
fn row_max<T: Float>(row: &[T]) -> T {
    row.iter()
        .fold(T::NEG_INFINITY, |m, &v| if v > m { v } else { m })
}

/// `y = softmax(x)` over each row of `cols` elements.
pub fn softmax<T: Float>(x: &[T], cols: usize, y: &mut [T]) -> Result<()> {
    check_len("softmax", "y", x.len(), y.len())?;
    row_count("softmax", "x", x.len(), cols)?;
    for (xr, yr) in x.chunks_exact(cols).zip(y.chunks_exact_mut(cols)) {
        let (_, s) = exps_into(xr, yr);
        for yj in yr.iter_mut() {
            *yj /= s;
        }
    }
    Ok(())
}

/// `dx += y (dy - Σ dy·y)` over each row, where `y = softmax(x)` is the forward output.
pub fn softmax_backward<T: Float>(y: &[T], dy: &[T], cols: usize, dx: &mut [T]) -> Result<()> {
    check_len("softmax", "dy", y.len(), dy.len())?;
    check_len("softmax", "dx", y.len(), dx.len())?;
    row_count("softmax", "y", y.len(), cols)?;
    for ((yr, gr), dxr) in y
        .chunks_exact(cols)
        .zip(dy.chunks_exact(cols))
        .zip(dx.chunks_exact_mut(cols))
    {
        let s: T = yr.iter().zip(gr).map(|(&a, &b)| a * b).sum();
        for ((d, &yj), &gj) in dxr.iter_mut().zip(yr).zip(gr) {
            *d += yj * (gj - s);
        }
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
        // rows of 3: e^[0, ln 2, ln 5] = [1, 2, 5], sum 8 -> [1/8, 2/8, 5/8];
        // the same shifted by 1000 (no overflow: 1000 is subtracted first);
        // [-1000, 0, -1000]: e^-1000 = 0 exactly -> [0, 1, 0]
        let (l2, l5) = (2.0f64.ln(), 5.0f64.ln());
        let x = [
            0.0,
            l2,
            l5,
            1000.0,
            1000.0 + l2,
            1000.0 + l5,
            -1000.0,
            0.0,
            -1000.0,
        ];
        let mut y = [0.0; 9];
        softmax(&x, 3, &mut y).unwrap();
        let p = [0.125, 0.25, 0.625];
        assert_close!(y[..3], p, 1e-15);
        assert_close!(y[3..6], p, 1e-12); // 1000 + ln 2 is stored to 1.1e-13
        assert_eq!(y[6..], [0.0, 1.0, 0.0]);
        // dy = [1, 0, 0]: Σ dy·y = 1/8, dx = y (dy - 1/8) = [1/8 · 7/8, -2/8 · 1/8, -5/8 · 1/8]
        let mut dx = [1.0; 3];
        softmax_backward(&y[..3], &[1.0, 0.0, 0.0], 3, &mut dx).unwrap();
        assert_close!(
            dx,
            [1.0 + 7.0 / 64.0, 1.0 - 2.0 / 64.0, 1.0 - 5.0 / 64.0],
            1e-15
        );
    }

    #[test]
    fn f32_literal() {
        // [ln 1, ln 3] -> [1/4, 3/4]; with dy = [0, 1]: Σ dy·y = 3/4,
        // dx = [1/4 · (0 - 3/4), 3/4 · (1 - 3/4)] = [-3/16, 3/16]
        let x = [0.0f32, 3.0f32.ln()];
        let mut y = [0.0f32; 2];
        softmax(&x, 2, &mut y).unwrap();
        assert_close!(y, [0.25f32, 0.75]);
        let mut dx = [0.0f32; 2];
        softmax_backward(&y, &[0.0, 1.0], 2, &mut dx).unwrap();
        assert_close!(dx, [-0.1875f32, 0.1875]);
    }

    #[test]
    fn gradcheck() {
        let (rows, cols) = (3, 4);
        let x: Vec<f64> = random_vec(15, rows * cols, -3.0, 3.0);
        let w: Vec<f64> = random_vec(16, rows * cols, -1.0, 1.0);
        let mut y = vec![0.0; rows * cols];
        softmax(&x, cols, &mut y).unwrap();
        let mut dx = vec![0.0; rows * cols];
        softmax_backward(&y, &w, cols, &mut dx).unwrap();
        let loss = |x: &[f64]| {
            let mut y = vec![0.0; x.len()];
            softmax(x, cols, &mut y).unwrap();
            y.iter().zip(&w).map(|(a, b)| a * b).sum()
        };
        assert_gradient("softmax", loss, &x, &dx, 1e-7);
    }

    #[test]
    fn bad_shapes_are_errors() {
        let err = softmax(&[1.0f64; 7], 3, &mut [0.0; 7]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid argument to softmax: `x` has 7 elements, not a multiple of the row length 3"
        );
        let err = softmax(&[1.0f64; 6], 0, &mut [0.0; 6]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid argument to softmax: the row length of `x` must be positive, got 0"
        );
        let err = softmax(&[1.0f64; 6], 3, &mut [0.0; 5]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "length mismatch in softmax: `y` has 5 elements, expected 6"
        );
        let mut dx = [0.0f64; 6];
        let err = softmax_backward(&[0.5; 6], &[1.0; 4], 3, &mut dx).unwrap_err();
        assert_eq!(
            err.to_string(),
            "length mismatch in softmax: `dy` has 4 elements, expected 6"
        );
        assert!(softmax_backward(&[0.5; 6], &[1.0; 6], 4, &mut dx).is_err());
    }
}
