//! Trailing-dimension broadcasting of a binary elementwise op on flat row-major buffers.
//!
//! For operands `a` (`la` elements) and `b` (`lb` elements) the output has
//! `n = max(la, lb)` elements and `out[i] = f(a[i % la], b[i % lb])`. The shorter operand
//! must have a length that divides the longer one: its shape is a suffix of the other's
//! (`[3]` against `[2, 3]`), `1` being the scalar case; either operand may be the shorter.
//! Two empty operands give an empty output; one empty operand against a non-empty one is
//! an error (a flat length cannot say how it would repeat).
//!
//! Backward: the gradient of a broadcast operand is the upstream gradient summed over the
//! operand's repeats, `da[j] += sum_k dL/dout[k * la + j] * d out / d a`.

use crate::{check_len, invalid, Float, Result};

/// The output length of a broadcast binary op on operands of `la` and `lb` elements:
/// `max(la, lb)`, or an error naming both lengths when the shorter does not divide the
/// longer.
///
/// ```
/// use nanograd_runtime::ops::broadcast_len;
/// assert_eq!(broadcast_len("add", 6, 3).unwrap(), 6); // [2, 3] + [3]
/// assert_eq!(broadcast_len("mul", 1, 6).unwrap(), 6); // scalar * [2, 3]
/// assert!(broadcast_len("add", 6, 4).is_err());
/// ```
pub fn broadcast_len(op: &'static str, la: usize, lb: usize) -> Result<usize> {
    let (short, long) = (la.min(lb), la.max(lb));
    if short == long || (short > 0 && long % short == 0) {
        Ok(long)
    } else {
        Err(invalid(
            op,
            format!(
                "cannot broadcast `a` of {la} elements with `b` of {lb} elements: \
                 the shorter length must divide the longer"
            ),
        ))
    }
}

/// Calls `f(i, ia, ib)` for every output index `i` of a broadcast of lengths `la` and `lb`
/// (already checked by [`broadcast_len`]), with `ia = i % la` and `ib = i % lb`, without a
/// division per element: the output is walked in chunks of the shorter length.
#[inline]
fn for_each_index(la: usize, lb: usize, mut f: impl FnMut(usize, usize, usize)) {
    let (n, s) = (la.max(lb), la.min(lb));
    if n == 0 {
        return;
    }
    for start in (0..n).step_by(s) {
        for j in 0..s {
            let i = start + j;
            f(i, if la == n { i } else { j }, if lb == n { i } else { j });
        }
    }
}

/// `y[i] = f(a[i % la], b[i % lb])`: the forward pass of a broadcast binary op.
#[inline]
pub(crate) fn binary<T: Float>(
    op: &'static str,
    a: &[T],
    b: &[T],
    y: &mut [T],
    f: impl Fn(T, T) -> T,
) -> Result<()> {
    let n = broadcast_len(op, a.len(), b.len())?;
    check_len(op, "y", n, y.len())?;
    for_each_index(a.len(), b.len(), |i, ia, ib| y[i] = f(a[ia], b[ib]));
    Ok(())
}

/// The backward pass of a broadcast binary op whose operands have `la` and `lb` elements:
/// `da[i % la] += fa(i % la, i % lb, dy[i])` and `db[i % lb] += fb(i % la, i % lb, dy[i])`
/// over every output index `i`, where `fa`/`fb` return the upstream gradient times the
/// local derivative. A `None` gradient is skipped.
#[inline]
pub(crate) fn binary_backward<T: Float>(
    op: &'static str,
    (la, lb): (usize, usize),
    dy: &[T],
    da: Option<&mut [T]>,
    db: Option<&mut [T]>,
    fa: impl Fn(usize, usize, T) -> T,
    fb: impl Fn(usize, usize, T) -> T,
) -> Result<()> {
    let n = broadcast_len(op, la, lb)?;
    check_len(op, "dy", n, dy.len())?;
    if let Some(da) = &da {
        check_len(op, "da", la, da.len())?;
    }
    if let Some(db) = &db {
        check_len(op, "db", lb, db.len())?;
    }
    if let Some(da) = da {
        for_each_index(la, lb, |i, ia, ib| da[ia] += fa(ia, ib, dy[i]));
    }
    if let Some(db) = db {
        for_each_index(la, lb, |i, ia, ib| db[ib] += fb(ia, ib, dy[i]));
    }
    Ok(())
}

/// The operand lengths of an op whose backward does not need the operands' values (`add`,
/// `sub`): a gradient buffer gives its operand's length; a skipped one is taken to be
/// full-length, so that the other is still checked against `dy`.
pub(crate) fn lens_from_grads<T>(
    dy: &[T],
    da: &Option<&mut [T]>,
    db: &Option<&mut [T]>,
) -> (usize, usize) {
    let len = |d: &Option<&mut [T]>| d.as_ref().map_or(dy.len(), |d| d.len());
    (len(da), len(db))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::assert_close;

    #[test]
    fn lengths() {
        assert_eq!(broadcast_len("add", 6, 6).unwrap(), 6);
        assert_eq!(broadcast_len("add", 6, 3).unwrap(), 6);
        assert_eq!(broadcast_len("add", 2, 6).unwrap(), 6);
        assert_eq!(broadcast_len("add", 1, 6).unwrap(), 6);
        assert_eq!(broadcast_len("add", 0, 0).unwrap(), 0);
        let err = broadcast_len("add", 6, 4).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid argument to add: cannot broadcast `a` of 6 elements with `b` of 4 \
             elements: the shorter length must divide the longer"
        );
        assert!(broadcast_len("add", 0, 3).is_err());
        assert!(broadcast_len("add", 3, 0).is_err());
    }

    #[test]
    fn indices_repeat_the_shorter_operand() {
        // [2, 3] against [3]: ia = i, ib = i % 3
        let mut seen = vec![];
        for_each_index(6, 3, |i, ia, ib| seen.push((i, ia, ib)));
        let want: Vec<_> = (0..6).map(|i| (i, i, i % 3)).collect();
        assert_eq!(seen, want);
        // scalar against [4], shorter first
        seen.clear();
        for_each_index(1, 4, |i, ia, ib| seen.push((i, ia, ib)));
        let want: Vec<_> = (0..4).map(|i| (i, 0, i)).collect();
        assert_eq!(seen, want);
    }

    #[test]
    fn backward_sums_over_repeats() {
        // d(sum(w * (a + b)))/db[j] = w[j] + w[j + 2] + w[j + 4] for b repeated three times
        let w = [1.0f64, 2.0, 3.0, 4.0, 5.0, 6.0];
        let mut db = [0.5f64, 0.5];
        binary_backward(
            "t",
            (6, 2),
            &w,
            None,
            Some(&mut db),
            |_, _, g| g,
            |_, _, g| g,
        )
        .unwrap();
        assert_close!(db, [0.5 + 1.0 + 3.0 + 5.0, 0.5 + 2.0 + 4.0 + 6.0]);
        // a gradient of the wrong length is an error, even when the other is skipped
        let mut da = [0.0f64; 5];
        let err = binary_backward(
            "t",
            (5, 2),
            &w,
            Some(&mut da),
            None,
            |_, _, g| g,
            |_, _, g| g,
        );
        assert!(err.is_err());
    }
}
