//! `concat(a, b)`: two tensors joined along one dimension `d`, as PyTorch's
//! `torch.cat([a, b], dim=d)`. Seen row-major, each tensor is `[outer, inner]` with
//! `outer` the product of the dimensions before `d` and `inner` the product of `d` and the
//! ones after it, so every output row is a row of `a` followed by a row of `b`:
//!
//! `y[o, ..] = [a[o, 0..a_inner], b[o, 0..b_inner]]`,   `y` of shape `[outer, a_inner + b_inner]`.
//!
//! Derivative: each input receives its part of each row of the upstream gradient,
//! `da[o, :] += dy[o, 0..a_inner]` and `db[o, :] += dy[o, a_inner..]`.

use crate::{check_len, invalid, Float, Result};

const OP: &str = "concat";

/// `rows * cols`, or an error naming the product that overflows.
fn numel(rows: usize, cols: usize) -> Result<usize> {
    rows.checked_mul(cols).ok_or_else(|| {
        invalid(
            OP,
            format!("{rows} rows of {cols} elements are more than fit in memory"),
        )
    })
}

/// Checks the three buffer lengths (`y` or `dy` as `what_y`) and returns the output row length.
fn check(
    outer: usize,
    a_inner: usize,
    b_inner: usize,
    a: Option<(&'static str, usize)>,
    b: Option<(&'static str, usize)>,
    what_y: &'static str,
    y_len: usize,
) -> Result<usize> {
    let row = a_inner.checked_add(b_inner).ok_or_else(|| {
        invalid(
            OP,
            format!("rows of {a_inner} + {b_inner} elements overflow"),
        )
    })?;
    if let Some((what, len)) = a {
        check_len(OP, what, numel(outer, a_inner)?, len)?;
    }
    if let Some((what, len)) = b {
        check_len(OP, what, numel(outer, b_inner)?, len)?;
    }
    check_len(OP, what_y, numel(outer, row)?, y_len)?;
    Ok(row)
}

/// `y[o] = [a[o], b[o]]` for each of `outer` rows: `a` `[outer, a_inner]`, `b`
/// `[outer, b_inner]`, `y` `[outer, a_inner + b_inner]`.
///
/// ```
/// use nanograd_runtime::ops::concat;
/// // [[1, 2], [3, 4]] and [[5], [6]] along the last dimension
/// let mut y = [0.0f32; 6];
/// concat(&[1.0, 2.0, 3.0, 4.0], &[5.0, 6.0], 2, 2, 1, &mut y).unwrap();
/// assert_eq!(y, [1.0, 2.0, 5.0, 3.0, 4.0, 6.0]);
/// ```
pub fn concat<T: Float>(
    a: &[T],
    b: &[T],
    outer: usize,
    a_inner: usize,
    b_inner: usize,
    y: &mut [T],
) -> Result<()> {
    let row = check(
        outer,
        a_inner,
        b_inner,
        Some(("a", a.len())),
        Some(("b", b.len())),
        "y",
        y.len(),
    )?;
    for o in 0..outer {
        let yr = &mut y[o * row..(o + 1) * row];
        yr[..a_inner].copy_from_slice(&a[o * a_inner..(o + 1) * a_inner]);
        yr[a_inner..].copy_from_slice(&b[o * b_inner..(o + 1) * b_inner]);
    }
    Ok(())
}

/// `da[o] += dy[o, ..a_inner]` and `db[o] += dy[o, a_inner..]` for each of `outer` rows;
/// `None` skips a gradient.
pub fn concat_backward<T: Float>(
    dy: &[T],
    outer: usize,
    a_inner: usize,
    b_inner: usize,
    mut da: Option<&mut [T]>,
    mut db: Option<&mut [T]>,
) -> Result<()> {
    let row = check(
        outer,
        a_inner,
        b_inner,
        da.as_deref().map(|d| ("da", d.len())),
        db.as_deref().map(|d| ("db", d.len())),
        "dy",
        dy.len(),
    )?;
    for o in 0..outer {
        let gr = &dy[o * row..(o + 1) * row];
        if let Some(da) = da.as_deref_mut() {
            for (d, &g) in da[o * a_inner..(o + 1) * a_inner]
                .iter_mut()
                .zip(&gr[..a_inner])
            {
                *d += g;
            }
        }
        if let Some(db) = db.as_deref_mut() {
            for (d, &g) in db[o * b_inner..(o + 1) * b_inner]
                .iter_mut()
                .zip(&gr[a_inner..])
            {
                *d += g;
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

    #[test]
    fn literal() {
        // along the last dimension: a [2, 2] = [[1, 2], [3, 4]], b [2, 3] = [[5, 6, 7], [8, 9, 10]]
        let (a, b) = ([1.0f64, 2.0, 3.0, 4.0], [5.0f64, 6.0, 7.0, 8.0, 9.0, 10.0]);
        let mut y = [f64::NAN; 10];
        concat(&a, &b, 2, 2, 3, &mut y).unwrap();
        assert_close!(y, [1., 2., 5., 6., 7., 3., 4., 8., 9., 10.]);
        // along the first dimension (outer = 1): b's elements follow a's
        concat(&a, &b, 1, 4, 6, &mut y).unwrap();
        assert_close!(y, [1., 2., 3., 4., 5., 6., 7., 8., 9., 10.]);
        // backward of the first: dy = 1..=10 split back per row, onto 1
        let dy: Vec<f64> = (1..=10).map(f64::from).collect();
        let (mut da, mut db) = ([1.0; 4], [1.0; 6]);
        concat_backward(&dy, 2, 2, 3, Some(&mut da), Some(&mut db)).unwrap();
        assert_close!(da, [2., 3., 7., 8.]);
        assert_close!(db, [4., 5., 6., 9., 10., 11.]);
        // None skips
        let mut db = [0.0; 6];
        concat_backward(&dy, 2, 2, 3, None, Some(&mut db)).unwrap();
        assert_close!(db, [3., 4., 5., 8., 9., 10.]);
    }

    #[test]
    fn f32_and_empty_parts() {
        // an empty `a` (a_inner = 0) makes y a copy of b
        let mut y = [0.0f32; 4];
        concat(&[], &[1.0f32, 2.0, 3.0, 4.0], 2, 0, 2, &mut y).unwrap();
        assert_close!(y, [1.0f32, 2.0, 3.0, 4.0]);
        let mut da: [f32; 0] = [];
        concat_backward(&y, 2, 0, 2, Some(&mut da), None).unwrap();
    }

    #[test]
    fn gradcheck() {
        let (outer, ai, bi) = (3, 4, 2);
        let a: Vec<f64> = random_vec(1, outer * ai, -1.0, 1.0);
        let b: Vec<f64> = random_vec(2, outer * bi, -1.0, 1.0);
        let w: Vec<f64> = random_vec(3, outer * (ai + bi), -1.0, 1.0);
        let (mut da, mut db) = (vec![0.0; a.len()], vec![0.0; b.len()]);
        concat_backward(&w, outer, ai, bi, Some(&mut da), Some(&mut db)).unwrap();
        let loss = |a: &[f64], b: &[f64]| {
            let mut y = vec![0.0; w.len()];
            concat(a, b, outer, ai, bi, &mut y).unwrap();
            y.iter().zip(&w).map(|(y, w)| y * w).sum::<f64>()
        };
        assert_gradient("concat da", |a| loss(a, &b), &a, &da, 1e-7);
        assert_gradient("concat db", |b| loss(&a, b), &b, &db, 1e-7);
    }

    #[test]
    fn errors() {
        let z = [0.0f64; 10];
        let err = concat(&z[..4], &z[..6], 2, 2, 3, &mut [0.0; 9]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "length mismatch in concat: `y` has 9 elements, expected 10"
        );
        let err = concat(&z[..3], &z[..6], 2, 2, 3, &mut [0.0; 10]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "length mismatch in concat: `a` has 3 elements, expected 4"
        );
        let err = concat(&z[..4], &z[..5], 2, 2, 3, &mut [0.0; 10]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "length mismatch in concat: `b` has 5 elements, expected 6"
        );
        let mut db = [0.0f64; 5];
        let err = concat_backward(&z, 2, 2, 3, None, Some(&mut db)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "length mismatch in concat: `db` has 5 elements, expected 6"
        );
        let mut da = [0.0f64; 4];
        let err = concat_backward(&z[..9], 2, 2, 3, Some(&mut da), None).unwrap_err();
        assert_eq!(
            err.to_string(),
            "length mismatch in concat: `dy` has 9 elements, expected 10"
        );
        assert_eq!(da, [0.0; 4]);
        assert!(concat::<f64>(&[], &[], usize::MAX, 2, 0, &mut []).is_err());
        assert!(concat::<f64>(&[], &[], 1, usize::MAX, 1, &mut []).is_err());
    }
}
