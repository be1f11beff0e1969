//! The fully-connected layer's op, with PyTorch's weight layout `W: [out, in]`:
//! `y = x·Wᵀ + b` for `x: [batch, in]`, `y: [batch, out]` (batch 1 is the seed's single
//! vector). Gradients: `dx += dy·W`, `dW += dyᵀ·x`, `db += Σ_batch dy`.
//!
//! Batch 1 runs on `gemv`, larger batches on `gemm`. The bias is written into `y` first and
//! the product added onto it (`beta = 1`), which saves a second pass over `y`. A small layer
//! at batch 1 (rows under 32 inputs, under 256 weights) is a dot product per output, in
//! [`dense`] itself, where the call costs more than the arithmetic.

use super::matmul::{add_outer, check_matrix};
use crate::blas::{axpy, gemm, gemv, packed_len, PackedWeight, Trans, MIN_PACK};
use crate::{check_len, Float, Param, Result};

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
#[inline]
pub fn dense<T: Float>(
    x: &[T],
    w: &[T],
    b: Option<&[T]>,
    batch: usize,
    in_f: usize,
    out_f: usize,
    y: &mut [T],
) -> Result<()> {
    // a small layer at batch 1, its lengths right: computed here, inlined where the sizes
    // are constants (the code `model!` writes), so that its loops are unrolled
    if batch == 1
        && is_small(in_f, out_f)
        && x.len() == in_f
        && w.len() == out_f * in_f
        && y.len() == out_f
        && b.is_none_or(|b| b.len() == out_f)
    {
        small_rows(x, w, b, in_f, out_f, y);
        return Ok(());
    }
    dense_checked(x, w, b, batch, in_f, out_f, y)
}

/// [`dense`] past its small batch-1 case: every length checked, then the product.
#[allow(clippy::too_many_arguments)]
fn dense_checked<T: Float>(
    x: &[T],
    w: &[T],
    b: Option<&[T]>,
    batch: usize,
    in_f: usize,
    out_f: usize,
    y: &mut [T],
) -> Result<()> {
    check_forward(x.len(), w.len(), b, batch, in_f, out_f, y.len())?;
    product(x, w, b, batch, in_f, out_f, y);
    Ok(())
}

/// The lengths of a dense forward pass: `x: [batch, in_f]`, `w: [out_f, in_f]`, `b: [out_f]`
/// and `y: [batch, out_f]`.
#[inline]
fn check_forward<T: Float>(
    x: usize,
    w: usize,
    b: Option<&[T]>,
    batch: usize,
    in_f: usize,
    out_f: usize,
    y: usize,
) -> Result<()> {
    check_matrix("dense", "x", batch, in_f, x)?;
    check_matrix("dense", "w", out_f, in_f, w)?;
    if let Some(b) = b {
        check_len("dense", "b", out_f, b.len())?;
    }
    check_matrix("dense", "y", batch, out_f, y)
}

/// Below this many weight elements, with rows shorter than [`SMALL_IN`], a batch-1 layer is
/// computed by [`small_rows`] rather than through `gemv`.
const SMALL_W: usize = 256;
/// See [`SMALL_W`].
const SMALL_IN: usize = 32;

/// Whether a weight `[out_f, in_f]` is one for [`small_rows`] (`in_f > 0`).
#[inline(always)]
fn is_small(in_f: usize, out_f: usize) -> bool {
    in_f > 0 && in_f < SMALL_IN && out_f < SMALL_W && out_f * in_f < SMALL_W
}

/// `y = x·Wᵀ + b` on lengths already checked.
#[inline]
fn product<T: Float>(
    x: &[T],
    w: &[T],
    b: Option<&[T]>,
    batch: usize,
    in_f: usize,
    out_f: usize,
    y: &mut [T],
) {
    if batch == 1 && is_small(in_f, out_f) {
        small_rows(x, w, b, in_f, out_f, y);
        return;
    }
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
}

/// `y = W·x + b` for one row `x` of `in_f` elements and a small `W` ([`is_small`]): a
/// dot product per output, each summed in order from zero and added to its bias, the sums
/// `gemv` forms for such rows, without its bias pass, argument checks and dispatch (for a
/// 2→8→1 network these were most of a call).
#[inline(always)]
fn small_rows<T: Float>(x: &[T], w: &[T], b: Option<&[T]>, in_f: usize, out_f: usize, y: &mut [T]) {
    let (x, w, y) = (&x[..in_f], &w[..out_f * in_f], &mut y[..out_f]);
    for (o, (yo, row)) in y.iter_mut().zip(w.chunks_exact(in_f)).enumerate() {
        let d: T = row.iter().zip(x).map(|(&a, &b)| a * b).sum();
        *yo = b.map_or(T::zero(), |b| b[o]) + d;
    }
}

/// [`dense`] with the weight read from `pack`, a cache of `w` rearranged for the product
/// (see [`PackedWeight`]): the first call with `w` in a given state computes as [`dense`]
/// does and reserves the cache's memory, the second packs `w`, and every later call until
/// `w` changes streams the packed panels, on CPUs with AVX-512. The result is the same sum
/// of the same products (to rounding: the order of the additions differs).
///
/// This is what the `_into` methods generated by `model!` call for each dense layer, with
/// one cache per layer in the [`crate::Workspace`].
///
/// ```
/// use nanograd_runtime::{blas::PackedWeight, ops::dense_cached, Param};
/// let w = Param::new(&[2, 2], vec![1.0f32, 2.0, 0.0, -1.0]).unwrap();
/// let mut pack = PackedWeight::new();
/// let mut y = [0.0f32; 2];
/// for _ in 0..3 {
///     dense_cached(&[3.0, 4.0], &w, Some(&[0.5, 0.5]), 1, 2, 2, &mut y, &mut pack).unwrap();
///     assert_eq!(y, [11.5, -3.5]);
/// }
/// ```
#[allow(clippy::too_many_arguments)]
pub fn dense_cached<T: Float>(
    x: &[T],
    w: &Param<T>,
    b: Option<&[T]>,
    batch: usize,
    in_f: usize,
    out_f: usize,
    y: &mut [T],
    pack: &mut PackedWeight<T>,
) -> Result<()> {
    check_forward(x.len(), w.len(), b, batch, in_f, out_f, y.len())?;
    match pack.panels(w, out_f, in_f) {
        Some(panels) if batch > 0 => T::packed_dense(x, batch, in_f, panels, out_f, b, y),
        _ => product(x, w.value(), b, batch, in_f, out_f, y),
    }
    Ok(())
}

/// The scratch [`dense_packing`] needs for a weight `[out_f, in_f]`: the weight packed in
/// panels of 32 columns (the widest panel of any element type).
pub fn dense_scratch_len(in_f: usize, out_f: usize) -> usize {
    out_f.div_ceil(32) * 32 * in_f
}

/// [`dense`] for a weight that changes between calls (a training step): on CPUs with
/// AVX-512, `f32`, batches of 8 rows or more and weights of 4096 elements or more, `w` is
/// packed into `scratch` (in registers, 16×16 transposes) and the product runs on the packed
/// panels, as in [`dense_cached`]; otherwise it computes as [`dense`] does. `scratch` holds
/// at least [`dense_scratch_len`] elements; what it held before is overwritten.
///
/// ```
/// use nanograd_runtime::ops::{dense_packing, dense_scratch_len};
/// let w = [1.0f32, 2.0, 0.0, -1.0]; // [[1, 2], [0, -1]]
/// let mut scratch = vec![0.0f32; dense_scratch_len(2, 2)];
/// let mut y = [0.0f32; 2];
/// dense_packing(&[3.0, 4.0], &w, Some(&[0.5, 0.5]), 1, 2, 2, &mut y, &mut scratch).unwrap();
/// assert_eq!(y, [11.5, -3.5]);
/// ```
#[allow(clippy::too_many_arguments)]
pub fn dense_packing<T: Float>(
    x: &[T],
    w: &[T],
    b: Option<&[T]>,
    batch: usize,
    in_f: usize,
    out_f: usize,
    y: &mut [T],
    scratch: &mut [T],
) -> Result<()> {
    check_forward(x.len(), w.len(), b, batch, in_f, out_f, y.len())?;
    let need = dense_scratch_len(in_f, out_f);
    if scratch.len() < need {
        return Err(crate::invalid(
            "dense",
            format!(
                "`scratch` has {} elements, expected at least {need}",
                scratch.len()
            ),
        ));
    }
    if T::FAST_PACK && batch >= 8 && out_f * in_f >= MIN_PACK && PackedWeight::<T>::available() {
        let panels = &mut scratch[..packed_len::<T>(out_f, in_f)];
        T::pack(w, out_f, in_f, panels);
        T::packed_dense(x, batch, in_f, panels, out_f, b, y);
    } else {
        product(x, w, b, batch, in_f, out_f, y);
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
    backward(x, w, dy, batch, in_f, out_f, dx, T::one(), dw, db)
}

/// Like [`dense_backward`], but `dx = dy·W` overwrites `dx` (whatever it held) instead of
/// adding to it: for the first contribution to an input's gradient, which then needs no
/// zeroing first. `dw` and `db` still accumulate.
#[allow(clippy::too_many_arguments)]
pub fn dense_backward_overwrite<T: Float>(
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
    backward(x, w, dy, batch, in_f, out_f, dx, T::zero(), dw, db)
}

/// Both backward passes: `dx = dx_keep·dx + dy·W` (`dx_keep` 1 accumulates, 0 overwrites).
#[allow(clippy::too_many_arguments)]
fn backward<T: Float>(
    x: &[T],
    w: &[T],
    dy: &[T],
    batch: usize,
    in_f: usize,
    out_f: usize,
    dx: Option<&mut [T]>,
    dx_keep: T,
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
                dx_keep,
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
                dx_keep,
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
    fn overwriting_backward_replaces_dx_and_accumulates_the_rest() {
        // W = [[1, 2], [0, -1]], dy = [[1, 1], [2, 0]]: dy·W = [[1, 1], [2, 4]]
        let (x, w, dy) = (
            [1.0f64, 2.0, 3.0, 4.0],
            [1.0, 2.0, 0.0, -1.0],
            [1.0, 1.0, 2.0, 0.0],
        );
        for batch in [2, 1] {
            let n = 2 * batch;
            // garbage (NaN included) in dx is never read
            let mut dx = vec![f64::NAN; n];
            let (mut dw, mut db) = ([1.0; 4], [1.0; 2]);
            dense_backward_overwrite(
                &x[..n],
                &w,
                &dy[..n],
                batch,
                2,
                2,
                Some(&mut dx),
                Some(&mut dw),
                Some(&mut db),
            )
            .unwrap();
            let (mut want_dx, mut want_dw, mut want_db) = (vec![0.0; n], [1.0; 4], [1.0; 2]);
            dense_backward(
                &x[..n],
                &w,
                &dy[..n],
                batch,
                2,
                2,
                Some(&mut want_dx),
                Some(&mut want_dw),
                Some(&mut want_db),
            )
            .unwrap();
            assert_eq!(dx, want_dx);
            assert_eq!(&dx[..2], &[1.0, 1.0]);
            assert_eq!((dw, db), (want_dw, want_db));
        }
    }

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

    /// `dense` at batch 1 for a small weight (its dot products in place) against `gemv`, the
    /// path such a layer took before: with the runtime's own BLAS the same sums in the same
    /// order, bit for bit; with OpenBLAS or MKL, equal up to rounding.
    fn small_matches_gemv<T: Float>() {
        for (in_f, out_f) in [(1, 1), (2, 8), (8, 1), (3, 5), (7, 13), (31, 8), (5, 51)] {
            assert!(is_small(in_f, out_f), "{in_f}->{out_f}");
            let x = random_vec::<T>(1, in_f, -1.0, 1.0);
            let w = random_vec::<T>(2, out_f * in_f, -1.0, 1.0);
            let b = random_vec::<T>(3, out_f, -1.0, 1.0);
            for bias in [Some(&b[..]), None] {
                let mut y = vec![T::from_f64(f64::NAN); out_f];
                dense(&x, &w, bias, 1, in_f, out_f, &mut y).unwrap();
                let mut want = bias.map_or(vec![T::zero(); out_f], <[T]>::to_vec);
                let beta = T::from_f64(if bias.is_some() { 1.0 } else { 0.0 });
                gemv(
                    Trans::No,
                    out_f,
                    in_f,
                    T::one(),
                    &w,
                    in_f,
                    &x,
                    beta,
                    &mut want,
                );
                if crate::blas::PROVIDER == "gemm" {
                    assert_eq!(y, want, "{in_f}->{out_f}, bias {}", bias.is_some());
                } else {
                    // a BLAS library's gemv may add in another order: equal up to rounding
                    let scale = T::EPSILON.to_f64() * 4.0 * (in_f as f64 + 1.0);
                    for (a, b) in y.iter().zip(&want) {
                        let (a, b) = (a.to_f64(), b.to_f64());
                        assert!((a - b).abs() <= scale, "{in_f}->{out_f}: {a} against {b}");
                    }
                }
            }
        }
        // past the bounds, `gemv` itself
        assert!(!is_small(32, 1) && !is_small(8, 32) && !is_small(1, 256) && !is_small(0, 4));
    }

    #[test]
    fn small_layers_at_batch_1_match_gemv() {
        small_matches_gemv::<f32>();
        small_matches_gemv::<f64>();
    }

    #[test]
    fn small_layers_with_wrong_lengths_are_errors() {
        // the in-place path takes only right lengths; the rest get the checks' errors
        let w = [1.0f32; 16];
        let mut y = [0.0f32; 8];
        let e = dense(&[1.0; 3], &w, None, 1, 2, 8, &mut y).unwrap_err();
        assert!(e.to_string().contains("`x`"), "{e}");
        let e = dense(&[1.0; 2], &w[1..], None, 1, 2, 8, &mut y).unwrap_err();
        assert!(e.to_string().contains("`w`"), "{e}");
        let e = dense(&[1.0; 2], &w, Some(&[0.0; 7]), 1, 2, 8, &mut y).unwrap_err();
        assert!(e.to_string().contains("`b`"), "{e}");
        let e = dense(&[1.0; 2], &w, None, 1, 2, 8, &mut y[..7]).unwrap_err();
        assert!(e.to_string().contains("`y`"), "{e}");
        dense(&[1.0; 2], &w, Some(&[0.5; 8]), 1, 2, 8, &mut y).unwrap();
        assert_eq!(y, [2.5; 8]);
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
