//! `embedding(ids, weight)`: a row of a `[vocab, dim]` table per id, as PyTorch's
//! `F.embedding(ids, weight)`:
//!
//! `y[p, :] = weight[ids[p], :]`,   `y` of shape `[ids.len(), dim]`.
//!
//! Derivative: the table receives each position's upstream row at that position's id,
//! `dweight[ids[p], :] += dy[p, :]`, so an id used at several positions accumulates all of
//! their gradients (and unused rows receive nothing). The ids themselves have no gradient.
//!
//! Every id is checked against `vocab` before anything is written.

use crate::{check_len, invalid, Float, Result};

const OP: &str = "embedding";

/// Checks `table` (`what`) as `[vocab, dim]`, `rows` (`what_rows`) as `[ids.len(), dim]`, and
/// every id against `vocab`; the error for an id names it, its position and `vocab`.
fn check(
    ids: &[u32],
    vocab: usize,
    dim: usize,
    what: &'static str,
    table: usize,
    what_rows: &'static str,
    rows: usize,
) -> Result<()> {
    let numel = |n: usize| {
        n.checked_mul(dim).ok_or_else(|| {
            invalid(
                OP,
                format!("{n} rows of {dim} elements are more than fit in memory"),
            )
        })
    };
    check_len(OP, what, numel(vocab)?, table)?;
    check_len(OP, what_rows, numel(ids.len())?, rows)?;
    match ids.iter().position(|&id| id as usize >= vocab) {
        Some(p) => Err(invalid(
            OP,
            format!(
                "id {} at position {p} is out of range for a vocabulary of {vocab}",
                ids[p]
            ),
        )),
        None => Ok(()),
    }
}

/// `y[p] = weight[ids[p]]` (rows of `dim` elements): `weight` `[vocab, dim]`, `y`
/// `[ids.len(), dim]`. An id `>= vocab` is an error naming the id, its position and `vocab`.
///
/// ```
/// use nanograd_runtime::ops::embedding;
/// let weight = [0.0f32, 0.5, 1.0, 1.5, 2.0, 2.5]; // 3 rows of 2
/// let mut y = [0.0f32; 6];
/// embedding(&[2, 0, 2], &weight, 3, 2, &mut y).unwrap();
/// assert_eq!(y, [2.0, 2.5, 0.0, 0.5, 2.0, 2.5]);
/// ```
pub fn embedding<T: Float>(
    ids: &[u32],
    weight: &[T],
    vocab: usize,
    dim: usize,
    y: &mut [T],
) -> Result<()> {
    check(ids, vocab, dim, "weight", weight.len(), "y", y.len())?;
    for (p, &id) in ids.iter().enumerate() {
        let id = id as usize;
        y[p * dim..(p + 1) * dim].copy_from_slice(&weight[id * dim..(id + 1) * dim]);
    }
    Ok(())
}

/// `dweight[ids[p]] += dy[p]` for every position `p` (repeated ids accumulate).
pub fn embedding_backward<T: Float>(
    ids: &[u32],
    dy: &[T],
    vocab: usize,
    dim: usize,
    dweight: &mut [T],
) -> Result<()> {
    check(ids, vocab, dim, "dweight", dweight.len(), "dy", dy.len())?;
    for (p, &id) in ids.iter().enumerate() {
        let id = id as usize;
        let to = &mut dweight[id * dim..(id + 1) * dim];
        for (d, &g) in to.iter_mut().zip(&dy[p * dim..(p + 1) * dim]) {
            *d += g;
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
        // weight [3, 2] = [[1, 2], [3, 4], [5, 6]]; ids [1, 1, 0]
        let w = [1.0f64, 2.0, 3.0, 4.0, 5.0, 6.0];
        let mut y = [f64::NAN; 6];
        embedding(&[1, 1, 0], &w, 3, 2, &mut y).unwrap();
        assert_close!(y, [3.0, 4.0, 3.0, 4.0, 1.0, 2.0]);
        // dy = [[1, 2], [10, 20], [100, 200]]: row 1 gets 1 + 10, 2 + 20; row 0 gets 100, 200;
        // row 2 nothing; all onto 1
        let mut dw = [1.0; 6];
        embedding_backward(
            &[1, 1, 0],
            &[1.0, 2.0, 10.0, 20.0, 100.0, 200.0],
            3,
            2,
            &mut dw,
        )
        .unwrap();
        assert_close!(dw, [101.0, 201.0, 12.0, 23.0, 1.0, 1.0]);
        // no ids: nothing read or written
        embedding::<f64>(&[], &w, 3, 2, &mut []).unwrap();
    }

    #[test]
    fn f32_literal() {
        let mut y = [0.0f32; 2];
        embedding(&[0, 1], &[7.0f32, 8.0], 2, 1, &mut y).unwrap();
        assert_close!(y, [7.0f32, 8.0]);
    }

    #[test]
    fn gradcheck() {
        let (vocab, dim) = (5, 3);
        let ids = [4u32, 0, 4, 2, 4, 1];
        let w: Vec<f64> = random_vec(1, vocab * dim, -1.0, 1.0);
        let up: Vec<f64> = random_vec(2, ids.len() * dim, -1.0, 1.0);
        let mut dw = vec![0.0; w.len()];
        embedding_backward(&ids, &up, vocab, dim, &mut dw).unwrap();
        let loss = |w: &[f64]| {
            let mut y = vec![0.0; up.len()];
            embedding(&ids, w, vocab, dim, &mut y).unwrap();
            y.iter().zip(&up).map(|(y, u)| y * u).sum()
        };
        assert_gradient("embedding", loss, &w, &dw, 1e-7);
        // row 3 is never looked up
        assert_eq!(dw[9..12], [0.0; 3]);
    }

    #[test]
    fn errors() {
        let w = [0.0f64; 65 * 2];
        let ids = [0u32, 1, 2, 3, 64, 70, 65];
        let mut y = [0.0f64; 14];
        let err = embedding(&ids, &w, 65, 2, &mut y).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid argument to embedding: id 70 at position 5 is out of range for a vocabulary of 65"
        );
        // the backward checks every id before touching dweight
        let mut dw = [0.0f64; 130];
        let err = embedding_backward(&ids, &[1.0; 14], 65, 2, &mut dw).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid argument to embedding: id 70 at position 5 is out of range for a vocabulary of 65"
        );
        assert!(dw.iter().all(|&v| v == 0.0));
        let err = embedding(&[u32::MAX], &w, 65, 2, &mut y[..2]).unwrap_err();
        assert!(
            err.to_string().contains("id 4294967295 at position 0"),
            "{err}"
        );

        let err = embedding(&[0, 1], &w, 65, 2, &mut y[..3]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "length mismatch in embedding: `y` has 3 elements, expected 4"
        );
        let err = embedding(&[0, 1], &w[..129], 65, 2, &mut y[..4]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "length mismatch in embedding: `weight` has 129 elements, expected 130"
        );
        let err = embedding_backward(&[0, 1], &[0.0; 5], 65, 2, &mut dw).unwrap_err();
        assert_eq!(
            err.to_string(),
            "length mismatch in embedding: `dy` has 5 elements, expected 4"
        );
        let err = embedding_backward(&[0, 1], &[0.0; 4], 65, 2, &mut dw[..128]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "length mismatch in embedding: `dweight` has 128 elements, expected 130"
        );
        assert!(embedding::<f64>(&[0], &[], usize::MAX, 2, &mut []).is_err());
    }
}
