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
#[cfg(test)]
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

/// `y[i] = f(a[i % la], b[i % lb])`: the forward pass of a broadcast binary op. The loops
/// zip slices (the output in chunks of the shorter operand against the whole of it), so
/// they carry no index arithmetic or bounds checks and vectorise.
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
    if n == 0 {
        return Ok(());
    }
    // equal lengths take the first branch: one chunk, the whole of both
    if a.len() == n {
        for (y, a) in y.chunks_exact_mut(b.len()).zip(a.chunks_exact(b.len())) {
            for ((y, &a), &b) in y.iter_mut().zip(a).zip(b) {
                *y = f(a, b);
            }
        }
    } else {
        for (y, b) in y.chunks_exact_mut(a.len()).zip(b.chunks_exact(a.len())) {
            for ((y, &b), &a) in y.iter_mut().zip(b).zip(a) {
                *y = f(a, b);
            }
        }
    }
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
        accumulate((la, lb), dy, da, fa);
    }
    if let Some(db) = db {
        accumulate((la, lb), dy, db, fb);
    }
    Ok(())
}

/// `d[i % d.len()] += f(i % la, i % lb, dy[i])` for every output index `i`, `d` being the
/// gradient of one operand (lengths checked by the caller): `dy` in chunks of the shorter
/// length, each zipped with the matching chunk of `d` (or all of it, when `d` is the shorter),
/// so that the loop carries no bounds checks.
#[inline]
fn accumulate<T: Float>(
    (la, lb): (usize, usize),
    dy: &[T],
    d: &mut [T],
    f: impl Fn(usize, usize, T) -> T,
) {
    let (n, s) = (la.max(lb), la.min(lb));
    if n == 0 {
        return;
    }
    let full = d.len() == n;
    for (c, dy) in dy.chunks_exact(s).enumerate() {
        let start = c * s;
        let d = if full {
            &mut d[start..start + s]
        } else {
            &mut *d
        };
        for (j, (d, &g)) in d.iter_mut().zip(dy).enumerate() {
            let i = start + j;
            *d += f(if la == n { i } else { j }, if lb == n { i } else { j }, g);
        }
    }
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
    fn zipped_loops_visit_the_indices_of_the_definition() {
        // the forward's zips and the backward's chunks against the plain index walk, for
        // equal lengths, either side shorter, a scalar on either side and nothing
        for (la, lb) in [(6, 3), (3, 6), (1, 4), (4, 1), (5, 5), (0, 0)] {
            let a: Vec<f64> = (0..la).map(|i| i as f64).collect();
            let b: Vec<f64> = (0..lb).map(|i| i as f64).collect();
            let n = la.max(lb);
            let mut y = vec![-1.0; n];
            binary("t", &a, &b, &mut y, |a, b| 1000.0 * a + b).unwrap();
            let mut want = vec![-1.0; n];
            let (mut want_da, mut want_db) = (vec![0.0; la], vec![0.0; lb]);
            for_each_index(la, lb, |i, ia, ib| {
                want[i] = 1000.0 * ia as f64 + ib as f64;
                want_da[ia] += (i * ib) as f64;
                want_db[ib] += (i * ia) as f64 + 0.5;
            });
            assert_eq!(y, want, "({la}, {lb})");
            // dy[i] = i; fa and fb mix in the other operand's index, as mul's do
            let dy: Vec<f64> = (0..n).map(|i| i as f64).collect();
            let (mut da, mut db) = (vec![0.0; la], vec![0.0; lb]);
            binary_backward(
                "t",
                (la, lb),
                &dy,
                Some(&mut da),
                Some(&mut db),
                |_, ib, g| g * ib as f64,
                |ia, _, g| g * ia as f64 + 0.5,
            )
            .unwrap();
            assert_eq!((da, db), (want_da, want_db), "({la}, {lb})");
        }
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
