//! Matrix products, the seed's `matmul-op` in its four rank cases (row-major):
//!
//! | kernel | shapes | forward | backward |
//! | --- | --- | --- | --- |
//! | [`matmul`] | `[m, k] × [k, n] -> [m, n]` | `Y = A·B` | `dA += dY·Bᵀ`, `dB += Aᵀ·dY` |
//! | [`matvec`] | `[m, n] × [n] -> [m]` | `y = A·x` | `dA += dy ⊗ x`, `dx += Aᵀ·dy` |
//! | [`vecmat`] | `[m] × [m, n] -> [n]` | `y = xᵀ·B` | `dx += B·dy`, `dB += x ⊗ dy` |
//! | [`dot`](super::dot()) | `[n] × [n] -> []` | `y = a·b` | `da += dy·b`, `db += dy·a` |
//!
//! Backward passes are BLAS calls with `beta = 1`, which is exactly the accumulation the
//! op conventions ask for.

use crate::blas::{axpy, gemm, gemv, Trans};
use crate::{check_len, fmt_shape, invalid, Error, Float, Result};

/// `rows * cols`, or an error when the product overflows `usize`.
pub(super) fn numel(op: &'static str, rows: usize, cols: usize) -> Result<usize> {
    rows.checked_mul(cols).ok_or_else(|| {
        invalid(
            op,
            format!(
                "{} has more elements than fit in memory",
                fmt_shape(&[rows, cols])
            ),
        )
    })
}

/// Checks that buffer `what` of `len` elements holds a `[rows, cols]` matrix. The error
/// names both shapes, e.g. ``shape mismatch in dense: expected `x` of [4, 784], got [4, 783]``
/// (or the bare element count when `len` is not a whole number of rows).
#[inline]
pub(super) fn check_matrix(
    op: &'static str,
    what: &'static str,
    rows: usize,
    cols: usize,
    len: usize,
) -> Result<()> {
    if rows.checked_mul(cols) == Some(len) {
        Ok(())
    } else {
        matrix_mismatch(op, what, rows, cols, len)
    }
}

/// The error of [`check_matrix`], kept out of line: the check runs on every call of every
/// kernel, the error almost never.
#[cold]
#[inline(never)]
fn matrix_mismatch(
    op: &'static str,
    what: &'static str,
    rows: usize,
    cols: usize,
    len: usize,
) -> Result<()> {
    numel(op, rows, cols)?;
    let got = if rows > 0 && len.is_multiple_of(rows) {
        fmt_shape(&[rows, len / rows])
    } else {
        format!("{len} elements")
    };
    Err(Error::ShapeMismatch {
        op,
        expected: format!("`{what}` of {}", fmt_shape(&[rows, cols])),
        got,
    })
}

/// `out[i, :] += u[i] * v` for `out` of shape `[u.len(), v.len()]`: the outer product
/// `u ⊗ v`, accumulated.
pub(super) fn add_outer<T: Float>(u: &[T], v: &[T], out: &mut [T]) {
    if v.is_empty() {
        return;
    }
    for (row, &ui) in out.chunks_exact_mut(v.len()).zip(u) {
        axpy(ui, v, row);
    }
}

/// `Y = A·B` for `A` of shape `[m, k]`, `B` of shape `[k, n]` and `Y` of shape `[m, n]`.
///
/// ```
/// use nanograd_runtime::ops::matmul;
/// let a = [1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0]; // [[1, 2, 3], [4, 5, 6]]
/// let b = [1.0f32, 0.0, 0.0, 1.0, 1.0, 1.0]; // [[1, 0], [0, 1], [1, 1]]
/// let mut y = [0.0f32; 4];
/// matmul(&a, &b, 2, 3, 2, &mut y).unwrap();
/// assert_eq!(y, [4.0, 5.0, 10.0, 11.0]);
/// ```
pub fn matmul<T: Float>(a: &[T], b: &[T], m: usize, k: usize, n: usize, y: &mut [T]) -> Result<()> {
    check_matrix("matmul", "a", m, k, a.len())?;
    check_matrix("matmul", "b", k, n, b.len())?;
    check_matrix("matmul", "y", m, n, y.len())?;
    gemm(
        Trans::No,
        Trans::No,
        m,
        n,
        k,
        T::one(),
        a,
        /* lda= */ k.max(1),
        b,
        /* ldb= */ n.max(1),
        T::zero(),
        y,
        /* ldc= */ n.max(1),
    );
    Ok(())
}

/// The backward pass of [`matmul`]: `dA += dY·Bᵀ` and `dB += Aᵀ·dY`; `None` skips a gradient.
#[allow(clippy::too_many_arguments)]
pub fn matmul_backward<T: Float>(
    a: &[T],
    b: &[T],
    dy: &[T],
    m: usize,
    k: usize,
    n: usize,
    da: Option<&mut [T]>,
    db: Option<&mut [T]>,
) -> Result<()> {
    check_matrix("matmul", "a", m, k, a.len())?;
    check_matrix("matmul", "b", k, n, b.len())?;
    check_matrix("matmul", "dy", m, n, dy.len())?;
    if let Some(da) = &da {
        check_matrix("matmul", "da", m, k, da.len())?;
    }
    if let Some(db) = &db {
        check_matrix("matmul", "db", k, n, db.len())?;
    }
    let (k1, n1) = (k.max(1), n.max(1));
    if let Some(da) = da {
        // [m, n] · [n, k]
        gemm(
            Trans::No,
            Trans::Yes,
            m,
            k,
            n,
            T::one(),
            dy,
            /* lda= */ n1,
            b,
            /* ldb= */ n1,
            T::one(),
            da,
            /* ldc= */ k1,
        );
    }
    if let Some(db) = db {
        // [k, m] · [m, n]
        gemm(
            Trans::Yes,
            Trans::No,
            k,
            n,
            m,
            T::one(),
            a,
            /* lda= */ k1,
            dy,
            /* ldb= */ n1,
            T::one(),
            db,
            /* ldc= */ n1,
        );
    }
    Ok(())
}

/// `y = A·x` for `A` of shape `[m, n]`, `x` of length `n` and `y` of length `m`.
pub fn matvec<T: Float>(a: &[T], x: &[T], m: usize, n: usize, y: &mut [T]) -> Result<()> {
    check_matrix("matvec", "a", m, n, a.len())?;
    check_len("matvec", "x", n, x.len())?;
    check_len("matvec", "y", m, y.len())?;
    gemv(Trans::No, m, n, T::one(), a, n.max(1), x, T::zero(), y);
    Ok(())
}

/// The backward pass of [`matvec`]: `dA += dy ⊗ x` and `dx += Aᵀ·dy`.
#[allow(clippy::too_many_arguments)]
pub fn matvec_backward<T: Float>(
    a: &[T],
    x: &[T],
    dy: &[T],
    m: usize,
    n: usize,
    da: Option<&mut [T]>,
    dx: Option<&mut [T]>,
) -> Result<()> {
    check_matrix("matvec", "a", m, n, a.len())?;
    check_len("matvec", "x", n, x.len())?;
    check_len("matvec", "dy", m, dy.len())?;
    if let Some(da) = &da {
        check_matrix("matvec", "da", m, n, da.len())?;
    }
    if let Some(dx) = &dx {
        check_len("matvec", "dx", n, dx.len())?;
    }
    if let Some(da) = da {
        add_outer(dy, x, da);
    }
    if let Some(dx) = dx {
        gemv(Trans::Yes, m, n, T::one(), a, n.max(1), dy, T::one(), dx);
    }
    Ok(())
}

/// `y = xᵀ·B` for `x` of length `m`, `B` of shape `[m, n]` and `y` of length `n`.
pub fn vecmat<T: Float>(x: &[T], b: &[T], m: usize, n: usize, y: &mut [T]) -> Result<()> {
    check_len("vecmat", "x", m, x.len())?;
    check_matrix("vecmat", "b", m, n, b.len())?;
    check_len("vecmat", "y", n, y.len())?;
    gemv(Trans::Yes, m, n, T::one(), b, n.max(1), x, T::zero(), y);
    Ok(())
}

/// The backward pass of [`vecmat`]: `dx += B·dy` and `dB += x ⊗ dy`.
#[allow(clippy::too_many_arguments)]
pub fn vecmat_backward<T: Float>(
    x: &[T],
    b: &[T],
    dy: &[T],
    m: usize,
    n: usize,
    dx: Option<&mut [T]>,
    db: Option<&mut [T]>,
) -> Result<()> {
    check_len("vecmat", "x", m, x.len())?;
    check_matrix("vecmat", "b", m, n, b.len())?;
    check_len("vecmat", "dy", n, dy.len())?;
    if let Some(dx) = &dx {
        check_len("vecmat", "dx", m, dx.len())?;
    }
    if let Some(db) = &db {
        check_matrix("vecmat", "db", m, n, db.len())?;
    }
    if let Some(dx) = dx {
        gemv(Trans::No, m, n, T::one(), b, n.max(1), dy, T::one(), dx);
    }
    if let Some(db) = db {
        add_outer(x, dy, db);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::assert_close;
    use crate::testing::{assert_gradient, random_vec};

    fn weighted(y: &[f64], w: &[f64]) -> f64 {
        y.iter().zip(w).map(|(a, b)| a * b).sum()
    }

    #[test]
    fn matmul_literal() {
        // A = [[1, 2, 3], [4, 5, 6]], B = [[1, -1], [0, 2], [3, 1]]
        // Y = [[1+0+9, -1+4+3], [4+0+18, -4+10+6]] = [[10, 6], [22, 12]]
        let a = [1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0];
        let b = [1.0f32, -1.0, 0.0, 2.0, 3.0, 1.0];
        let mut y = [f32::NAN; 4];
        matmul(&a, &b, 2, 3, 2, &mut y).unwrap();
        assert_close!(y, [10.0f32, 6.0, 22.0, 12.0]);
        // dY = [[1, 0], [0, 1]]:
        // dA = dY·Bᵀ = rows of B as columns: [[1, 0, 3], [-1, 2, 1]], plus the 1 already held
        // dB = Aᵀ·dY = [[1, 4], [2, 5], [3, 6]]
        let dy = [1.0f32, 0.0, 0.0, 1.0];
        let mut da = [1.0f32; 6];
        let mut db = [0.0f32; 6];
        matmul_backward(&a, &b, &dy, 2, 3, 2, Some(&mut da), Some(&mut db)).unwrap();
        assert_close!(da, [2.0f32, 1.0, 4.0, 0.0, 3.0, 2.0]);
        assert_close!(db, [1.0f32, 4.0, 2.0, 5.0, 3.0, 6.0]);
    }

    #[test]
    fn matvec_and_vecmat_literal() {
        // the seed's example: [[1, 2], [3, 4]] · [5, 6] = [5+12, 15+24] = [17, 39]
        let a = [1.0f64, 2.0, 3.0, 4.0];
        let mut y = [0.0; 2];
        matvec(&a, &[5.0, 6.0], 2, 2, &mut y).unwrap();
        assert_close!(y, [17.0f64, 39.0]);
        // dy = [1, 2]: dA = dy ⊗ x = [[5, 6], [10, 12]]; dx = Aᵀ·dy = [1+6, 2+8] = [7, 10]
        let (mut da, mut dx) = ([0.0; 4], [0.0; 2]);
        matvec_backward(
            &a,
            &[5.0, 6.0],
            &[1.0, 2.0],
            2,
            2,
            Some(&mut da),
            Some(&mut dx),
        )
        .unwrap();
        assert_close!(da, [5.0f64, 6.0, 10.0, 12.0]);
        assert_close!(dx, [7.0f64, 10.0]);

        // [5, 6] · [[1, 2, 0], [3, 4, -1]] = [5+18, 10+24, -6] = [23, 34, -6]
        let b = [1.0f32, 2.0, 0.0, 3.0, 4.0, -1.0];
        let mut y = [0.0f32; 3];
        vecmat(&[5.0, 6.0], &b, 2, 3, &mut y).unwrap();
        assert_close!(y, [23.0f32, 34.0, -6.0]);
        // dy = [1, 0, 2]: dx = B·dy = [1+0, 3-2] = [1, 1]; dB = x ⊗ dy = [[5, 0, 10], [6, 0, 12]]
        let (mut dx, mut db) = ([0.0f32; 2], [0.0f32; 6]);
        vecmat_backward(
            &[5.0, 6.0],
            &b,
            &[1.0, 0.0, 2.0],
            2,
            3,
            Some(&mut dx),
            Some(&mut db),
        )
        .unwrap();
        assert_close!(dx, [1.0f32, 1.0]);
        assert_close!(db, [5.0f32, 0.0, 10.0, 6.0, 0.0, 12.0]);
    }

    #[test]
    fn matmul_gradcheck() {
        let (m, k, n) = (3, 4, 5);
        let a: Vec<f64> = random_vec(1, m * k, -1.0, 1.0);
        let b: Vec<f64> = random_vec(2, k * n, -1.0, 1.0);
        let w: Vec<f64> = random_vec(3, m * n, -1.0, 1.0);
        let (mut da, mut db) = (vec![0.0; m * k], vec![0.0; k * n]);
        matmul_backward(&a, &b, &w, m, k, n, Some(&mut da), Some(&mut db)).unwrap();
        let loss = |a: &[f64], b: &[f64]| {
            let mut y = vec![0.0; m * n];
            matmul(a, b, m, k, n, &mut y).unwrap();
            weighted(&y, &w)
        };
        assert_gradient("matmul da", |a| loss(a, &b), &a, &da, 1e-7);
        assert_gradient("matmul db", |b| loss(&a, b), &b, &db, 1e-7);
    }

    #[test]
    fn matvec_gradcheck() {
        let (m, n) = (4, 3);
        let a: Vec<f64> = random_vec(4, m * n, -1.0, 1.0);
        let x: Vec<f64> = random_vec(5, n, -1.0, 1.0);
        let w: Vec<f64> = random_vec(6, m, -1.0, 1.0);
        let (mut da, mut dx) = (vec![0.0; m * n], vec![0.0; n]);
        matvec_backward(&a, &x, &w, m, n, Some(&mut da), Some(&mut dx)).unwrap();
        let loss = |a: &[f64], x: &[f64]| {
            let mut y = vec![0.0; m];
            matvec(a, x, m, n, &mut y).unwrap();
            weighted(&y, &w)
        };
        assert_gradient("matvec da", |a| loss(a, &x), &a, &da, 1e-7);
        assert_gradient("matvec dx", |x| loss(&a, x), &x, &dx, 1e-7);
    }

    #[test]
    fn vecmat_gradcheck() {
        let (m, n) = (4, 3);
        let x: Vec<f64> = random_vec(7, m, -1.0, 1.0);
        let b: Vec<f64> = random_vec(8, m * n, -1.0, 1.0);
        let w: Vec<f64> = random_vec(9, n, -1.0, 1.0);
        let (mut dx, mut db) = (vec![0.0; m], vec![0.0; m * n]);
        vecmat_backward(&x, &b, &w, m, n, Some(&mut dx), Some(&mut db)).unwrap();
        let loss = |x: &[f64], b: &[f64]| {
            let mut y = vec![0.0; n];
            vecmat(x, b, m, n, &mut y).unwrap();
            weighted(&y, &w)
        };
        assert_gradient("vecmat dx", |x| loss(x, &b), &x, &dx, 1e-7);
        assert_gradient("vecmat db", |b| loss(&x, b), &b, &db, 1e-7);
    }

    #[test]
    fn none_skips_and_empty_dims_work() {
        let a = [1.0f64, 2.0];
        let mut db = [0.0f64; 2];
        // [1, 2] x [2, 1]: only dB = Aᵀ·dY = [1*3, 2*3]
        matmul_backward(&a, &[1.0, 1.0], &[3.0], 1, 2, 1, None, Some(&mut db)).unwrap();
        assert_close!(db, [3.0f64, 6.0]);
        // k = 0: the product of [2, 0] and [0, 3] is a [2, 3] matrix of zeros
        let mut y = [f64::NAN; 6];
        matmul::<f64>(&[], &[], 2, 0, 3, &mut y).unwrap();
        assert_close!(y, [0.0f64; 6]);
        let mut y: [f64; 0] = [];
        matmul::<f64>(&[], &[], 0, 3, 0, &mut y).unwrap();
    }

    #[test]
    fn shape_mismatch_is_an_error() {
        let err = matmul(&[0.0f64; 6], &[0.0; 6], 2, 3, 2, &mut [0.0; 3]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "shape mismatch in matmul: expected `y` of [2, 2], got 3 elements"
        );
        let err = matmul(&[0.0f64; 6], &[0.0; 4], 2, 3, 2, &mut [0.0; 4]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "shape mismatch in matmul: expected `b` of [3, 2], got 4 elements"
        );
        let err = matmul(&[0.0f64; 4], &[0.0; 6], 2, 3, 2, &mut [0.0; 4]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "shape mismatch in matmul: expected `a` of [2, 3], got [2, 2]"
        );
        let mut da = [0.0f64; 5];
        let r = matmul_backward(
            &[0.0; 6],
            &[0.0; 6],
            &[0.0; 4],
            2,
            3,
            2,
            Some(&mut da),
            None,
        );
        assert!(r.unwrap_err().to_string().contains("`da` of [2, 3]"));
        let err = matvec(&[0.0f64; 6], &[0.0; 2], 2, 3, &mut [0.0; 2]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "length mismatch in matvec: `x` has 2 elements, expected 3"
        );
        let err = vecmat(&[0.0f64; 2], &[0.0; 6], 2, 3, &mut [0.0; 2]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "length mismatch in vecmat: `y` has 2 elements, expected 3"
        );
        let mut dx = [0.0f64; 3];
        assert!(
            matvec_backward(&[0.0; 6], &[0.0; 3], &[0.0; 3], 2, 3, None, Some(&mut dx)).is_err()
        );
        assert!(
            vecmat_backward(&[0.0; 2], &[0.0; 6], &[0.0; 3], 2, 3, Some(&mut dx), None).is_err()
        );
        // dimensions whose product overflows are an error, not a panic
        let err = matmul::<f64>(&[], &[], usize::MAX, 2, 1, &mut []).unwrap_err();
        assert!(err.to_string().contains("more elements than fit"), "{err}");
    }
}
