//! `log_softmax` over the last dimension of a row-major `[rows, cols]` buffer:
//! `y_j = (x_j - m) - ln Σ_k e^(x_k - m)` with `m = max_k x_k`, which never overflows and
//! stays exact where `ln(softmax(x))` would give `ln 0 = -inf` (logits of ±1000 give
//! `[0, -2000]`).
//!
//! Derivative: `dx_j = dy_j - e^(y_j) Σ_k dy_k` (`e^y` is the softmax).

use super::{row_count, softmax::max_and_sum_exp};
use crate::{check_len, Float, Result};

/// `y = log_softmax(x)` over each row of `cols` elements.
pub fn log_softmax<T: Float>(x: &[T], cols: usize, y: &mut [T]) -> Result<()> {
    check_len("log_softmax", "y", x.len(), y.len())?;
    row_count("log_softmax", "x", x.len(), cols)?;
    for (xr, yr) in x.chunks_exact(cols).zip(y.chunks_exact_mut(cols)) {
        let (m, s) = max_and_sum_exp(xr);
        let ln_s = s.ln();
        for (yj, &xj) in yr.iter_mut().zip(xr) {
            *yj = (xj - m) - ln_s;
        }
    }
    Ok(())
}

/// `dx += dy - e^y Σ dy` over each row, where `y = log_softmax(x)` is the forward output.
pub fn log_softmax_backward<T: Float>(y: &[T], dy: &[T], cols: usize, dx: &mut [T]) -> Result<()> {
    check_len("log_softmax", "dy", y.len(), dy.len())?;
    check_len("log_softmax", "dx", y.len(), dx.len())?;
    row_count("log_softmax", "y", y.len(), cols)?;
    for ((yr, gr), dxr) in y
        .chunks_exact(cols)
        .zip(dy.chunks_exact(cols))
        .zip(dx.chunks_exact_mut(cols))
    {
        let s: T = gr.iter().copied().sum();
        for ((d, &yj), &gj) in dxr.iter_mut().zip(yr).zip(gr) {
            *d += gj - yj.exp() * s;
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
        // [0, ln 3]: ln(e^0 + e^ln 3) = ln 4, y = [-ln 4, ln 3 - ln 4];
        // [1000, -1000]: m = 1000, s = 1 + e^-2000 = 1, y = [0, -2000] exactly
        let (l3, l4) = (3.0f64.ln(), 4.0f64.ln());
        let x = [0.0, l3, 1000.0, -1000.0];
        let mut y = [0.0; 4];
        log_softmax(&x, 2, &mut y).unwrap();
        assert_close!(y[..2], [-l4, l3 - l4], 1e-15);
        assert_eq!(y[2..], [0.0, -2000.0]);
        // dy = [1, 2] and [1, 1]: Σ dy = 3 and 2; e^y = [1/4, 3/4] and [1, 0]
        // dx = [1 - 3/4, 2 - 9/4] and [1 - 2, 1 - 0], onto dx = 1
        let mut dx = [1.0; 4];
        log_softmax_backward(&y, &[1.0, 2.0, 1.0, 1.0], 2, &mut dx).unwrap();
        assert_close!(dx, [1.25, 0.75, 0.0, 2.0], 1e-15);
    }

    #[test]
    fn f32_literal() {
        // [ln 3, 0] -> [ln 3 - ln 4, -ln 4]; dy = [0, 1]: dx = [0 - 3/4, 1 - 1/4]
        let x = [3.0f32.ln(), 0.0];
        let mut y = [0.0f32; 2];
        log_softmax(&x, 2, &mut y).unwrap();
        assert_close!(y, [(0.75f32).ln(), -(4.0f32).ln()]);
        let mut dx = [0.0f32; 2];
        log_softmax_backward(&y, &[0.0, 1.0], 2, &mut dx).unwrap();
        assert_close!(dx, [-0.75f32, 0.75]);
    }

    #[test]
    fn gradcheck() {
        let (rows, cols) = (3, 4);
        let x: Vec<f64> = random_vec(17, rows * cols, -3.0, 3.0);
        let w: Vec<f64> = random_vec(18, rows * cols, -1.0, 1.0);
        let mut y = vec![0.0; rows * cols];
        log_softmax(&x, cols, &mut y).unwrap();
        let mut dx = vec![0.0; rows * cols];
        log_softmax_backward(&y, &w, cols, &mut dx).unwrap();
        let loss = |x: &[f64]| {
            let mut y = vec![0.0; x.len()];
            log_softmax(x, cols, &mut y).unwrap();
            y.iter().zip(&w).map(|(a, b)| a * b).sum()
        };
        assert_gradient("log_softmax", loss, &x, &dx, 1e-7);
    }

    #[test]
    fn bad_shapes_are_errors() {
        let err = log_softmax(&[1.0f64; 5], 2, &mut [0.0; 5]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid argument to log_softmax: `x` has 5 elements, not a multiple of the row length 2"
        );
        let err = log_softmax(&[1.0f64; 4], 2, &mut [0.0; 6]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "length mismatch in log_softmax: `y` has 6 elements, expected 4"
        );
        let mut dx = [0.0f64; 3];
        let err = log_softmax_backward(&[0.5; 4], &[1.0; 4], 2, &mut dx).unwrap_err();
        assert_eq!(
            err.to_string(),
            "length mismatch in log_softmax: `dx` has 3 elements, expected 4"
        );
        let mut dx = [0.0f64; 4];
        assert!(log_softmax_backward(&[0.5; 4], &[1.0; 4], 0, &mut dx).is_err());
    }
}
