//! `slice(x, start, len)`: rows `start..start + len` of `x` along its first dimension, the
//! seed's `slice-tensor`; `x` is `[rows, row_len]` row-major (`row_len` is the product of
//! the other dimensions). The gradient flows back into those rows: `dx[start + r] += dy[r]`,
//! the other rows receive nothing.

use super::row_count;
use crate::blas::axpy;
use crate::{check_len, invalid, Float, Result};

/// Checks that rows `start..start + len` lie within `rows` rows.
fn check_range(start: usize, len: usize, rows: usize) -> Result<()> {
    match start.checked_add(len) {
        Some(end) if end <= rows => Ok(()),
        _ => Err(invalid(
            "slice",
            format!(
                "rows {start}..{} are out of range for {rows} rows",
                start as u128 + len as u128
            ),
        )),
    }
}

/// `y = x[start..start + len]` along the first dimension: `x` holds `x.len() / row_len`
/// rows of `row_len` elements, `y` holds `len` rows.
pub fn slice<T: Float>(
    x: &[T],
    row_len: usize,
    start: usize,
    len: usize,
    y: &mut [T],
) -> Result<()> {
    let rows = row_count("slice", "x", x.len(), row_len)?;
    check_range(start, len, rows)?;
    check_len("slice", "y", len * row_len, y.len())?;
    y.copy_from_slice(&x[start * row_len..(start + len) * row_len]);
    Ok(())
}

/// `dx[start..start + len] += dy`, where `dy` holds the `len` sliced rows.
pub fn slice_backward<T: Float>(
    row_len: usize,
    start: usize,
    dy: &[T],
    dx: &mut [T],
) -> Result<()> {
    let rows = row_count("slice", "dx", dx.len(), row_len)?;
    let len = row_count("slice", "dy", dy.len(), row_len)?;
    check_range(start, len, rows)?;
    axpy(
        T::one(),
        dy,
        &mut dx[start * row_len..(start + len) * row_len],
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::assert_close;
    use crate::testing::{assert_gradient, random_vec};

    #[test]
    fn literal() {
        // x = [[0, 1], [2, 3], [4, 5], [6, 7]]; rows 1..3 = [[2, 3], [4, 5]]
        let x: Vec<f32> = (0..8).map(|v| v as f32).collect();
        let mut y = [0.0f32; 4];
        slice(&x, 2, 1, 2, &mut y).unwrap();
        assert_close!(y, [2.0f32, 3.0, 4.0, 5.0]);
        // the gradient lands in rows 1 and 2 only, on top of what dx held
        let mut dx = [1.0f32; 8];
        slice_backward(2, 1, &[10.0, 20.0, 30.0, 40.0], &mut dx).unwrap();
        assert_close!(dx, [1.0f32, 1.0, 11.0, 21.0, 31.0, 41.0, 1.0, 1.0]);
        // an empty slice at the end is allowed
        slice(&x, 2, 4, 0, &mut []).unwrap();
    }

    #[test]
    fn gradcheck() {
        let x: Vec<f64> = random_vec(1, 15, -1.0, 1.0);
        let w: Vec<f64> = random_vec(2, 6, -1.0, 1.0);
        let mut dx = vec![0.0; 15];
        slice_backward(3, 2, &w, &mut dx).unwrap();
        let loss = |x: &[f64]| {
            let mut y = vec![0.0; 6];
            slice(x, 3, 2, 2, &mut y).unwrap();
            y.iter().zip(&w).map(|(y, w)| y * w).sum()
        };
        assert_gradient("slice", loss, &x, &dx, 1e-7);
    }

    #[test]
    fn errors() {
        let x = [0.0f64; 8];
        let err = slice(&x, 2, 3, 2, &mut [0.0; 4]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid argument to slice: rows 3..5 are out of range for 4 rows"
        );
        assert!(slice(&x, 2, usize::MAX, 2, &mut [0.0; 4]).is_err());
        assert!(slice(&x, 3, 0, 1, &mut [0.0; 3]).is_err());
        assert!(slice(&x, 0, 0, 1, &mut [0.0; 3]).is_err());
        let err = slice(&x, 2, 0, 2, &mut [0.0; 3]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "length mismatch in slice: `y` has 3 elements, expected 4"
        );
        assert!(slice_backward(2, 3, &[0.0f64; 4], &mut [0.0; 8]).is_err());
        assert!(slice_backward(2, 0, &[0.0f64; 3], &mut [0.0; 8]).is_err());
    }
}
