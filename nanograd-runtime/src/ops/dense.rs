//! The fully-connected layer's op, with PyTorch's weight layout `W: [out, in]`:
//! `y = x·Wᵀ + b` for `x: [batch, in]`, `y: [batch, out]` (batch 1 is the seed's single
//! vector). Gradients: `dx += dy·W`, `dW += dyᵀ·x`, `db += Σ_batch dy`.
//!
//! Batch 1 runs on `gemv`, larger batches on `gemm`. The bias is written into `y` first and
//! the product added onto it (`beta = 1`), which saves a second pass over `y`.

use super::matmul::{add_outer, check_matrix};
use crate::blas::{axpy, gemm, gemv, Trans};
use crate::{check_len, Float, Result};

/// `y = x·Wᵀ + b` for `x: [batch, in_f]`, `w: [out_f, in_f]`, `b: [out_f]` (or no bias) and
/// `y: [batch, out_f]`.
///
/// ```
/// use nanograd_runtime::ops::dense;
/// let w = [1.0f32, 2.0, 0.0, -1.0]; // [[1, 2], [0, -1]]
/// let mut y = [0.0f32; 2];
/// dense(&[3.0, 4.0], &w, Some(&[0.5, 0.5]), 1, 2, 2, &mut y).unwrap();
/// assert_eq!(y, [11.5, -3.5]);
/// ```
#[allow(clippy::too_many_arguments)]
pub fn dense<T: Float>(
    x: &[T],
    w: &[T],
    b: Option<&[T]>,
    batch: usize,
    in_f: usize,
    out_f: usize,
    y: &mut [T],
) -> Result<()> {
    check_matrix("dense", "x", batch, in_f, x.len())?;
    check_matrix("dense", "w", out_f, in_f, w.len())?;
    if let Some(b) = b {
        check_len("dense", "b", out_f, b.len())?;
    }
    check_matrix("dense", "y", batch, out_f, y.len())?;
    let beta = match b {
        Some(b) if out_f > 0 => {
            for row in y.chunks_exact_mut(out_f) {
                row.copy_from_slice(b);
            }
            T::one()
        }
        _ => T::zero(),
    };
    let (in1, out1) = (in_f.max(1), out_f.max(1));
    if batch == 1 {
        gemv(
            Trans::No,
            out_f,
            in_f,
            T::one(),
            w,
            /* lda= */ in1,
            x,
            beta,
            y,
        );
    } else {
        // [batch, in] · [in, out]
        gemm(
            Trans::No,
            Trans::Yes,
            batch,
            out_f,
            in_f,
            T::one(),
            x,
            /* lda= */ in1,
            w,
            /* ldb= */ in1,
            beta,
            y,
            /* ldc= */ out1,
        );
    }
    Ok(())
}

/// The backward pass of [`dense`]: `dx += dy·W`, `dw += dyᵀ·x`, `db += Σ_batch dy`; `None`
/// skips a gradient.
#[allow(clippy::too_many_arguments)]
pub fn dense_backward<T: Float>(
    x: &[T],
    w: &[T],
    dy: &[T],
    batch: usize,
    in_f: usize,
    out_f: usize,
    dx: Option<&mut [T]>,
    dw: Option<&mut [T]>,
    db: Option<&mut [T]>,
) -> Result<()> {
    check_matrix("dense", "x", batch, in_f, x.len())?;
    check_matrix("dense", "w", out_f, in_f, w.len())?;
    check_matrix("dense", "dy", batch, out_f, dy.len())?;
    if let Some(dx) = &dx {
        check_matrix("dense", "dx", batch, in_f, dx.len())?;
    }
    if let Some(dw) = &dw {
        check_matrix("dense", "dw", out_f, in_f, dw.len())?;
    }
    if let Some(db) = &db {
        check_len("dense", "db", out_f, db.len())?;
    }
    let (in1, out1) = (in_f.max(1), out_f.max(1));
    if let Some(dx) = dx {
        if batch == 1 {
            gemv(
                Trans::Yes,
                out_f,
                in_f,
                T::one(),
                w,
                /* lda= */ in1,
                dy,
                T::one(),
                dx,
            );
        } else {
            // [batch, out] · [out, in]
            gemm(
                Trans::No,
                Trans::No,
                batch,
                in_f,
                out_f,
                T::one(),
                dy,
                /* lda= */ out1,
                w,
                /* ldb= */ in1,
                T::one(),
                dx,
                /* ldc= */ in1,
            );
        }
    }
    if let Some(dw) = dw {
        if batch == 1 {
            add_outer(dy, x, dw);
        } else {
            // [out, batch] · [batch, in]
            gemm(
                Trans::Yes,
                Trans::No,
                out_f,
                in_f,
                batch,
                T::one(),
                dy,
                /* lda= */ out1,
                x,
                /* ldb= */ in1,
                T::one(),
                dw,
                /* ldc= */ in1,
            );
        }
    }
    if let Some(db) = db {
        if out_f > 0 {
            for row in dy.chunks_exact(out_f) {
                axpy(T::one(), row, db);
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
    fn literal_batch_2() {
        // W = [[1, 2, 3], [0, -1, 1]], b = [1, -1], x = [[1, 1, 1], [2, 0, -1]]
        // y[0] = [1+2+3+1, 0-1+1-1] = [7, -1]; y[1] = [2+0-3+1, 0+0-1-1] = [0, -2]
        let w = [1.0f32, 2.0, 3.0, 0.0, -1.0, 1.0];
        let x = [1.0f32, 1.0, 1.0, 2.0, 0.0, -1.0];
        let mut y = [f32::NAN; 4];
        dense(&x, &w, Some(&[1.0, -1.0]), 2, 3, 2, &mut y).unwrap();
        assert_close!(y, [7.0f32, -1.0, 0.0, -2.0]);
        dense(&x, &w, None, 2, 3, 2, &mut y).unwrap();
        assert_close!(y, [6.0f32, 0.0, -1.0, -1.0]);
        // dy = [[1, 0], [1, 2]]
        // dx = dy·W = [[1, 2, 3], [1, 2-2, 3+2]] = [[1, 2, 3], [1, 0, 5]]
        // dW = dyᵀ·x = [[1+2, 1+0, 1-1], [0+4, 0+0, 0-2]] = [[3, 1, 0], [4, 0, -2]]
        // db = [1+1, 0+2] = [2, 2], each onto the 1 already held
        let dy = [1.0f32, 0.0, 1.0, 2.0];
        let (mut dx, mut dw, mut db) = ([0.0f32; 6], [0.0f32; 6], [1.0f32; 2]);
        dense_backward(
            &x,
            &w,
            &dy,
            2,
            3,
            2,
            Some(&mut dx),
            Some(&mut dw),
            Some(&mut db),
        )
        .unwrap();
        assert_close!(dx, [1.0f32, 2.0, 3.0, 1.0, 0.0, 5.0]);
        assert_close!(dw, [3.0f32, 1.0, 0.0, 4.0, 0.0, -2.0]);
        assert_close!(db, [3.0f32, 3.0]);
    }

    #[test]
    fn literal_batch_1() {
        // W = [[1, 2], [0, -1], [2, 2]], b = [0.5, 0.5, 0], x = [3, 4]
        // y = [3+8+0.5, -4+0.5, 6+8] = [11.5, -3.5, 14]
        let w = [1.0f64, 2.0, 0.0, -1.0, 2.0, 2.0];
        let mut y = [f64::NAN; 3];
        dense(&[3.0, 4.0], &w, Some(&[0.5, 0.5, 0.0]), 1, 2, 3, &mut y).unwrap();
        assert_close!(y, [11.5f64, -3.5, 14.0]);
        // dy = [1, 1, -1]: dx = dy·W = [1+0-2, 2-1-2] = [-1, -1];
        // dW = dy ⊗ x = [[3, 4], [3, 4], [-3, -4]]; db = dy
        let (mut dx, mut dw, mut db) = ([0.0; 2], [0.0; 6], [0.0; 3]);
        let dy = [1.0, 1.0, -1.0];
        dense_backward(
            &[3.0, 4.0],
            &w,
            &dy,
            1,
            2,
            3,
            Some(&mut dx),
            Some(&mut dw),
            Some(&mut db),
        )
        .unwrap();
        assert_close!(dx, [-1.0f64, -1.0]);
        assert_close!(dw, [3.0f64, 4.0, 3.0, 4.0, -3.0, -4.0]);
        assert_close!(db, [1.0f64, 1.0, -1.0]);
    }

    fn check_gradients(batch: usize, seed: u64) {
        let (in_f, out_f) = (5, 3);
        let x: Vec<f64> = random_vec(seed, batch * in_f, -1.0, 1.0);
        let w: Vec<f64> = random_vec(seed + 1, out_f * in_f, -1.0, 1.0);
        let b: Vec<f64> = random_vec(seed + 2, out_f, -1.0, 1.0);
        let u: Vec<f64> = random_vec(seed + 3, batch * out_f, -1.0, 1.0);
        let (mut dx, mut dw, mut db) = (vec![0.0; x.len()], vec![0.0; w.len()], vec![0.0; 3]);
        dense_backward(
            &x,
            &w,
            &u,
            batch,
            in_f,
            out_f,
            Some(&mut dx),
            Some(&mut dw),
            Some(&mut db),
        )
        .unwrap();
        let loss = |x: &[f64], w: &[f64], b: &[f64]| {
            let mut y = vec![0.0; batch * out_f];
            dense(x, w, Some(b), batch, in_f, out_f, &mut y).unwrap();
            y.iter().zip(&u).map(|(p, q)| p * q).sum::<f64>()
        };
        assert_gradient("dense dx", |x| loss(x, &w, &b), &x, &dx, 1e-7);
        assert_gradient("dense dw", |w| loss(&x, w, &b), &w, &dw, 1e-7);
        assert_gradient("dense db", |b| loss(&x, &w, b), &b, &db, 1e-7);
    }

    #[test]
    fn gradcheck() {
        check_gradients(1, 10);
        check_gradients(4, 20);
    }

    #[test]
    fn shape_mismatch_is_an_error() {
        let w = vec![0.0f32; 10 * 784];
        let mut y = vec![0.0f32; 20];
        let err = dense(&vec![0.0; 2 * 783], &w, None, 2, 784, 10, &mut y).unwrap_err();
        assert_eq!(
            err.to_string(),
            "shape mismatch in dense: expected `x` of [2, 784], got [2, 783]"
        );
        let x = vec![0.0f32; 2 * 784];
        let err = dense(&x, &w[1..], None, 2, 784, 10, &mut y).unwrap_err();
        assert_eq!(
            err.to_string(),
            "shape mismatch in dense: expected `w` of [10, 784], got 7839 elements"
        );
        let err = dense(&x, &w, Some(&[0.0; 9]), 2, 784, 10, &mut y).unwrap_err();
        assert_eq!(
            err.to_string(),
            "length mismatch in dense: `b` has 9 elements, expected 10"
        );
        let err = dense(&x, &w, None, 2, 784, 10, &mut y[..18]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "shape mismatch in dense: expected `y` of [2, 10], got [2, 9]"
        );
        let mut db = [0.0f32; 11];
        let r = dense_backward(&x, &w, &y, 2, 784, 10, None, None, Some(&mut db));
        assert!(r.is_err());
        let mut dw = [0.0f32; 3];
        let r = dense_backward(&x, &w, &y, 2, 784, 10, None, Some(&mut dw), None);
        assert!(r.unwrap_err().to_string().contains("`dw` of [10, 784]"));
    }
}
