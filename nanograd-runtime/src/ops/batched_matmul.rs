//! Batched matrix product, PyTorch's `torch.matmul` of two 3-d tensors (or of two 4-d ones
//! with their two leading dimensions merged into `batch`): for `i` in `0..batch`,
//!
//! `Y[i] = A[i]·B[i]`, with `A` `[batch, m, k]`, `B` `[batch, k, n]` and `Y` `[batch, m, n]`.
//!
//! Derivative, per batch element: `dA[i] += dY[i]·B[i]ᵀ` and `dB[i] += A[i]ᵀ·dY[i]`. Each
//! is one BLAS call with `beta = 1`, which is the accumulation the op conventions ask for.

use crate::blas::{gemm, Trans};
use crate::{fmt_shape, invalid, Error, Float, Result};

/// Checks that buffer `what` of `len` elements holds a `[batch, rows, cols]` tensor and
/// returns `rows * cols`, the size of one batch element.
fn check_batched(
    op: &'static str,
    what: &'static str,
    batch: usize,
    rows: usize,
    cols: usize,
    len: usize,
) -> Result<usize> {
    let shape = [batch, rows, cols];
    let (per, total) = match rows
        .checked_mul(cols)
        .and_then(|per| Some((per, per.checked_mul(batch)?)))
    {
        Some(sizes) => sizes,
        None => {
            return Err(invalid(
                op,
                format!("{} has more elements than fit in memory", fmt_shape(&shape)),
            ))
        }
    };
    if total != len {
        return Err(Error::ShapeMismatch {
            op,
            expected: format!("`{what}` of {}", fmt_shape(&shape)),
            got: format!("{len} elements"),
        });
    }
    Ok(per)
}

/// `y[i] = a[i]·b[i]` for `i` in `0..batch`: `a` `[batch, m, k]`, `b` `[batch, k, n]`,
/// `y` `[batch, m, n]`, all row-major.
///
/// ```
/// use nanograd_runtime::ops::batched_matmul;
/// // two 1 × 2 by 2 × 1 products: [1, 2]·[3, 4]ᵀ = 11 and [5, 6]·[7, 8]ᵀ = 83
/// let mut y = [0.0f64; 2];
/// batched_matmul(&[1.0, 2.0, 5.0, 6.0], &[3.0, 4.0, 7.0, 8.0], 2, 1, 2, 1, &mut y).unwrap();
/// assert_eq!(y, [11.0, 83.0]);
/// ```
pub fn batched_matmul<T: Float>(
    a: &[T],
    b: &[T],
    batch: usize,
    m: usize,
    k: usize,
    n: usize,
    y: &mut [T],
) -> Result<()> {
    const OP: &str = "batched_matmul";
    let sa = check_batched(OP, "a", batch, m, k, a.len())?;
    let sb = check_batched(OP, "b", batch, k, n, b.len())?;
    let sy = check_batched(OP, "y", batch, m, n, y.len())?;
    for i in 0..batch {
        gemm(
            Trans::No,
            Trans::No,
            m,
            n,
            k,
            T::one(),
            &a[i * sa..(i + 1) * sa],
            /* lda= */ k.max(1),
            &b[i * sb..(i + 1) * sb],
            /* ldb= */ n.max(1),
            T::zero(),
            &mut y[i * sy..(i + 1) * sy],
            /* ldc= */ n.max(1),
        );
    }
    Ok(())
}

/// The backward pass of [`batched_matmul`]: `da[i] += dy[i]·b[i]ᵀ` and `db[i] += a[i]ᵀ·dy[i]`
/// for every batch element; `None` skips a gradient.
#[allow(clippy::too_many_arguments)]
pub fn batched_matmul_backward<T: Float>(
    a: &[T],
    b: &[T],
    dy: &[T],
    batch: usize,
    m: usize,
    k: usize,
    n: usize,
    da: Option<&mut [T]>,
    db: Option<&mut [T]>,
) -> Result<()> {
    const OP: &str = "batched_matmul";
    let sa = check_batched(OP, "a", batch, m, k, a.len())?;
    let sb = check_batched(OP, "b", batch, k, n, b.len())?;
    let sy = check_batched(OP, "dy", batch, m, n, dy.len())?;
    if let Some(da) = &da {
        check_batched(OP, "da", batch, m, k, da.len())?;
    }
    if let Some(db) = &db {
        check_batched(OP, "db", batch, k, n, db.len())?;
    }
    let (k1, n1) = (k.max(1), n.max(1));
    if let Some(da) = da {
        for i in 0..batch {
            // [m, n] · [n, k]
            gemm(
                Trans::No,
                Trans::Yes,
                m,
                k,
                n,
                T::one(),
                &dy[i * sy..(i + 1) * sy],
                /* lda= */ n1,
                &b[i * sb..(i + 1) * sb],
                /* ldb= */ n1,
                T::one(),
                &mut da[i * sa..(i + 1) * sa],
                /* ldc= */ k1,
            );
        }
    }
    if let Some(db) = db {
        for i in 0..batch {
            // [k, m] · [m, n]
            gemm(
                Trans::Yes,
                Trans::No,
                k,
                n,
                m,
                T::one(),
                &a[i * sa..(i + 1) * sa],
                /* lda= */ k1,
                &dy[i * sy..(i + 1) * sy],
                /* ldb= */ n1,
                T::one(),
                &mut db[i * sb..(i + 1) * sb],
                /* ldc= */ n1,
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::assert_close;
    use crate::ops::{matmul, matmul_backward};
    use crate::testing::{assert_gradient, random_vec};

    #[test]
    fn literal() {
        // batch 0: [[1, 2], [3, 4]] · [[1, 0], [0, 1]] = [[1, 2], [3, 4]]
        // batch 1: [[1, 0], [0, 2]] · [[5, 6], [7, 8]] = [[5, 6], [14, 16]]
        let a = [1.0f64, 2.0, 3.0, 4.0, 1.0, 0.0, 0.0, 2.0];
        let b = [1.0f64, 0.0, 0.0, 1.0, 5.0, 6.0, 7.0, 8.0];
        let mut y = [f64::NAN; 8];
        batched_matmul(&a, &b, 2, 2, 2, 2, &mut y).unwrap();
        assert_close!(y, [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 14.0, 16.0]);
        // dy = [[1, 0], [0, 0]] for both:
        // da0 = dy·b0ᵀ = [[1, 0], [0, 0]]; da1 = dy·b1ᵀ = [[5, 7], [0, 0]]
        // db0 = a0ᵀ·dy = [[1, 0], [2, 0]]; db1 = a1ᵀ·dy = [[1, 0], [0, 0]]; all onto 1
        let dy = [1.0f64, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0];
        let (mut da, mut db) = ([1.0; 8], [1.0; 8]);
        batched_matmul_backward(&a, &b, &dy, 2, 2, 2, 2, Some(&mut da), Some(&mut db)).unwrap();
        assert_close!(da, [2.0, 1.0, 1.0, 1.0, 6.0, 8.0, 1.0, 1.0]);
        assert_close!(db, [2.0, 1.0, 3.0, 1.0, 2.0, 1.0, 1.0, 1.0]);
    }

    #[test]
    fn each_batch_element_is_a_matmul() {
        let (batch, m, k, n) = (3, 4, 5, 2);
        let a: Vec<f32> = random_vec(1, batch * m * k, -1.0, 1.0);
        let b: Vec<f32> = random_vec(2, batch * k * n, -1.0, 1.0);
        let dy: Vec<f32> = random_vec(3, batch * m * n, -1.0, 1.0);
        let mut y = vec![0.0f32; batch * m * n];
        batched_matmul(&a, &b, batch, m, k, n, &mut y).unwrap();
        let (mut da, mut db) = (vec![0.0f32; a.len()], vec![0.0f32; b.len()]);
        batched_matmul_backward(&a, &b, &dy, batch, m, k, n, Some(&mut da), Some(&mut db)).unwrap();
        for i in 0..batch {
            let (ra, rb, ry) = (
                i * m * k..(i + 1) * m * k,
                i * k * n..(i + 1) * k * n,
                i * m * n..(i + 1) * m * n,
            );
            let mut yi = vec![0.0f32; m * n];
            matmul(&a[ra.clone()], &b[rb.clone()], m, k, n, &mut yi).unwrap();
            assert_close!(y[ry.clone()], yi);
            let (mut dai, mut dbi) = (vec![0.0f32; m * k], vec![0.0f32; k * n]);
            let (ai, bi, dyi) = (&a[ra.clone()], &b[rb.clone()], &dy[ry]);
            matmul_backward(ai, bi, dyi, m, k, n, Some(&mut dai), Some(&mut dbi)).unwrap();
            assert_close!(da[ra], dai);
            assert_close!(db[rb], dbi);
        }
    }

    #[test]
    fn gradcheck() {
        let (batch, m, k, n) = (2, 3, 4, 5);
        let a: Vec<f64> = random_vec(4, batch * m * k, -1.0, 1.0);
        let b: Vec<f64> = random_vec(5, batch * k * n, -1.0, 1.0);
        let w: Vec<f64> = random_vec(6, batch * m * n, -1.0, 1.0);
        let (mut da, mut db) = (vec![0.0; a.len()], vec![0.0; b.len()]);
        batched_matmul_backward(&a, &b, &w, batch, m, k, n, Some(&mut da), Some(&mut db)).unwrap();
        let loss = |a: &[f64], b: &[f64]| {
            let mut y = vec![0.0; batch * m * n];
            batched_matmul(a, b, batch, m, k, n, &mut y).unwrap();
            y.iter().zip(&w).map(|(y, w)| y * w).sum::<f64>()
        };
        assert_gradient("batched_matmul da", |a| loss(a, &b), &a, &da, 1e-7);
        assert_gradient("batched_matmul db", |b| loss(&a, b), &b, &db, 1e-7);
        // None skips: only db changes
        let mut db2 = vec![0.0; b.len()];
        batched_matmul_backward(&a, &b, &w, batch, m, k, n, None, Some(&mut db2)).unwrap();
        assert_close!(db2, db);
    }

    #[test]
    fn empty_dims() {
        // k = 0: zero matrices; batch = 0: nothing to do
        let mut y = [f64::NAN; 4];
        batched_matmul::<f64>(&[], &[], 2, 1, 0, 2, &mut y).unwrap();
        assert_eq!(y, [0.0; 4]);
        batched_matmul::<f64>(&[], &[], 0, 3, 4, 5, &mut []).unwrap();
    }

    #[test]
    fn errors() {
        let z = [0.0f64; 24];
        let err = batched_matmul(&z[..12], &z[..12], 2, 2, 3, 2, &mut [0.0; 7]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "shape mismatch in batched_matmul: expected `y` of [2, 2, 2], got 7 elements"
        );
        let err = batched_matmul(&z[..11], &z[..12], 2, 2, 3, 2, &mut [0.0; 8]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "shape mismatch in batched_matmul: expected `a` of [2, 2, 3], got 11 elements"
        );
        let err = batched_matmul(&z[..12], &z[..6], 2, 2, 3, 2, &mut [0.0; 8]).unwrap_err();
        assert!(err.to_string().contains("`b` of [2, 3, 2]"), "{err}");
        let mut db = [0.0f64; 11];
        let err =
            batched_matmul_backward(&z[..12], &z[..12], &z[..8], 2, 2, 3, 2, None, Some(&mut db))
                .unwrap_err();
        assert_eq!(
            err.to_string(),
            "shape mismatch in batched_matmul: expected `db` of [2, 3, 2], got 11 elements"
        );
        let mut da = [0.0f64; 12];
        assert!(batched_matmul_backward(
            &z[..12],
            &z[..12],
            &z[..7],
            2,
            2,
            3,
            2,
            Some(&mut da),
            None
        )
        .is_err());
        let err = batched_matmul::<f64>(&[], &[], usize::MAX, 2, 1, 1, &mut []).unwrap_err();
        assert!(err.to_string().contains("more elements than fit"), "{err}");
    }
}
