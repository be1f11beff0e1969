//! Layer normalisation over the last dimension (`cols` values per row), as PyTorch's
//! `F.layer_norm(x, [cols], weight, bias, eps)`:
//!
//! ```text
//! mean = Σ x / d,  var = Σ (x - mean)² / d   (biased),  invstd = 1 / √(var + eps)
//! x̂ = (x - mean) · invstd,   y = weight · x̂ + bias     (d = cols; weight, bias optional)
//! ```
//!
//! Derivative, per row with `g = dy · weight` (or `dy` without a weight):
//!
//! ```text
//! dx = invstd / d · (d · g - Σ g - x̂ · Σ g x̂),   dweight = Σ_rows dy x̂,   dbias = Σ_rows dy
//! ```
//!
//! Both passes run in a loop compiled for the CPU's widest vectors ([`crate::simd`]), in
//! `f64` arithmetic whatever `T` is, rounding once to `T` per output. Rows go in blocks of
//! up to [`BLOCK_ROWS`] (at most 2048 values unless one row is longer, so a block stays in
//! L1): the means of the block's rows, then their centred variances, each row summed in
//! [`LANES`] interleaved partial sums (so that the sums vectorise, and one row's chain of
//! additions overlaps the next row's), then the output pass over the block. For `f32` this
//! keeps `y`, `dx`, `dweight` and `dbias` within half an ulp of the same formulas evaluated
//! in `f64` (test `f32_within_ulps_of_f64`), even where `x - mean` or
//! `g - mean(g) - x̂ · mean(g x̂)` cancels, which sums in `f32` would leave wrong by several
//! ulps of the row's scale.
//!
//! The backward pass recomputes each row's mean and variance from `x` (one extra pass over
//! the row) rather than taking saved statistics: it widens a block of `x` to `f64` once,
//! takes the statistics and `Σ g` and `Σ g x̂` of each row, then in one pass updates `dx`
//! and adds `dy · x̂` and `dy` onto sums over rows kept in `f64`, which go onto `dweight`
//! and `dbias` at the end (rounded once).

use super::row_count;
use crate::simd::{vectorize_above, Kernel};
use crate::{check_len, invalid, Float, Result};

/// Independent partial sums in the row reductions (two AVX-512 registers of `f64`).
const LANES: usize = 16;

/// The sum of the partial sums, plus `tail`: the two halves added first (one vector
/// addition), then the rest in order. Halving further made the compiler vectorise the
/// partial sums themselves two lanes wide, which measured slower.
#[inline(always)]
fn total(acc: [f64; LANES], tail: f64) -> f64 {
    let half: [f64; LANES / 2] = core::array::from_fn(|k| acc[k] + acc[k + LANES / 2]);
    half.iter().fold(tail, |s, &p| s + p)
}

/// `Σ f(a_j, b_j, c_j)` over three rows of the same length, in `f64` with [`LANES`]
/// partial sums (each a sum of every `LANES`-th term) added at the end.
#[inline(always)]
fn lane_sum<A: Copy, B: Copy, C: Copy>(
    a: &[A],
    b: &[B],
    c: &[C],
    f: impl Fn(A, B, C) -> f64,
) -> f64 {
    let (a_chunks, a_tail) = a.as_chunks::<LANES>();
    let (b_chunks, b_tail) = b.as_chunks::<LANES>();
    let (c_chunks, c_tail) = c.as_chunks::<LANES>();
    let mut acc = [0.0f64; LANES];
    for ((ca, cb), cc) in a_chunks.iter().zip(b_chunks).zip(c_chunks) {
        for (s, ((&u, &v), &w)) in acc.iter_mut().zip(ca.iter().zip(cb).zip(cc)) {
            *s += f(u, v, w);
        }
    }
    let tail = a_tail
        .iter()
        .zip(b_tail)
        .zip(c_tail)
        .fold(0.0, |s, ((&u, &v), &w)| s + f(u, v, w));
    total(acc, tail)
}

/// `row` widened to `f64` into `out` (of the same length).
#[inline(always)]
fn widen_into<T: Float>(row: &[T], out: &mut [f64]) {
    for (o, &v) in out.iter_mut().zip(row) {
        *o = v.to_f64();
    }
}

/// Rows at most in a block: the sums of a block's rows are taken one after the other in
/// short loops, so that the processor overlaps the additions of one row's sum (a chain of
/// dependent additions) with the next row's.
const BLOCK_ROWS: usize = 16;

/// Values in a block at most (16 KB of `f64` in the backward pass's scratch, which stays in
/// L1 with the block's `x`, `dy` and `dx`), unless a single row is longer.
const BLOCK_VALUES: usize = 2048;

/// The rows of `cols` values in a block.
fn block_rows(cols: usize) -> usize {
    (BLOCK_VALUES / cols).clamp(1, BLOCK_ROWS)
}

/// Writes the mean and `1 / √(var + eps)` (biased variance) of each row of `cols` values in
/// the block `x` into `mean` and `invstd`: the means first, then the sums of squares of the
/// centred values. (`A` is `T`, or `f64` for rows already widened.)
#[inline(always)]
fn block_stats<A: Float>(
    x: &[A],
    cols: usize,
    eps: f64,
    mean: &mut [f64; BLOCK_ROWS],
    invstd: &mut [f64; BLOCK_ROWS],
) {
    let d = cols as f64;
    for (m, row) in mean.iter_mut().zip(x.chunks_exact(cols)) {
        *m = lane_sum(row, row, row, |v, _, _| v.to_f64()) / d;
    }
    for ((s, &m), row) in invstd.iter_mut().zip(&*mean).zip(x.chunks_exact(cols)) {
        let var = lane_sum(row, row, row, |v, _, _| {
            let c = v.to_f64() - m;
            c * c
        }) / d;
        *s = 1.0 / (var + eps).sqrt();
    }
}

/// `y = (x - mean) / √(var + eps) · weight + bias` per row of `cols` values; `weight` and
/// `bias` (length `cols`) are optional, as PyTorch's `elementwise_affine`.
pub fn layer_norm<T: Float>(
    x: &[T],
    weight: Option<&[T]>,
    bias: Option<&[T]>,
    cols: usize,
    eps: T,
    y: &mut [T],
) -> Result<()> {
    const OP: &str = "layer_norm";
    row_count(OP, "x", x.len(), cols)?;
    check_len(OP, "y", x.len(), y.len())?;
    if let Some(w) = weight {
        check_len(OP, "weight", cols, w.len())?;
    }
    if let Some(b) = bias {
        check_len(OP, "bias", cols, b.len())?;
    }
    vectorize_above(
        x.len(),
        Forward {
            x,
            weight,
            bias,
            cols,
            eps: eps.to_f64(),
            y,
        },
    );
    Ok(())
}

/// [`layer_norm`]'s loop over blocks of rows, compiled for the CPU's widest vectors.
struct Forward<'a, T> {
    x: &'a [T],
    weight: Option<&'a [T]>,
    bias: Option<&'a [T]>,
    cols: usize,
    eps: f64,
    y: &'a mut [T],
}

impl<T: Float> Kernel for Forward<'_, T> {
    type Output = ();
    #[inline(always)]
    fn run(self) {
        let Forward {
            x,
            weight,
            bias,
            cols,
            eps,
            y,
        } = self;
        let block = block_rows(cols) * cols;
        for (xb, yb) in x.chunks(block).zip(y.chunks_mut(block)) {
            let (mut mean, mut invstd) = ([0.0; BLOCK_ROWS], [0.0; BLOCK_ROWS]);
            block_stats(xb, cols, eps, &mut mean, &mut invstd);
            let rows = yb.chunks_exact_mut(cols).zip(xb.chunks_exact(cols));
            for ((yr, row), (&m, &s)) in rows.zip(mean.iter().zip(&invstd)) {
                let xhat = |v: T| (v.to_f64() - m) * s;
                let row = row.iter();
                // one loop per affine combination, so that none tests an option per element
                match (weight, bias) {
                    (Some(w), Some(b)) => {
                        for ((yi, &v), (&wi, &bi)) in yr.iter_mut().zip(row).zip(w.iter().zip(b)) {
                            *yi = T::from_f64(xhat(v) * wi.to_f64() + bi.to_f64());
                        }
                    }
                    (Some(w), None) => {
                        for ((yi, &v), &wi) in yr.iter_mut().zip(row).zip(w) {
                            *yi = T::from_f64(xhat(v) * wi.to_f64());
                        }
                    }
                    (None, Some(b)) => {
                        for ((yi, &v), &bi) in yr.iter_mut().zip(row).zip(b) {
                            *yi = T::from_f64(xhat(v) + bi.to_f64());
                        }
                    }
                    (None, None) => {
                        for (yi, &v) in yr.iter_mut().zip(row) {
                            *yi = T::from_f64(xhat(v));
                        }
                    }
                }
            }
        }
    }
}

/// Accumulates into `dx`, `dweight` and `dbias` (each optional) from `dy`. `weight` is the
/// one given to the forward pass; asking for `dweight` without a weight is an error.
#[allow(clippy::too_many_arguments)]
pub fn layer_norm_backward<T: Float>(
    x: &[T],
    weight: Option<&[T]>,
    dy: &[T],
    cols: usize,
    eps: T,
    dx: Option<&mut [T]>,
    dweight: Option<&mut [T]>,
    dbias: Option<&mut [T]>,
) -> Result<()> {
    const OP: &str = "layer_norm_backward";
    row_count(OP, "x", x.len(), cols)?;
    check_len(OP, "dy", x.len(), dy.len())?;
    if let Some(w) = weight {
        check_len(OP, "weight", cols, w.len())?;
    }
    if let Some(dx) = dx.as_deref() {
        check_len(OP, "dx", x.len(), dx.len())?;
    }
    if let Some(dw) = dweight.as_deref() {
        if weight.is_none() {
            return Err(invalid(
                OP,
                "`dweight` was asked for but there is no weight",
            ));
        }
        check_len(OP, "dweight", cols, dw.len())?;
    }
    if let Some(db) = dbias.as_deref() {
        check_len(OP, "dbias", cols, db.len())?;
    }
    if cols > BLOCK_VALUES {
        wide_rows_backward(x, weight, dy, cols, eps, dx, dweight, dbias);
        return Ok(());
    }
    // on the stack: no kernel allocates
    let mut scratch = [0.0f64; BLOCK_VALUES];
    // taken whether asked for or not: in the pass that updates dx they cost little
    let (mut sum_dw, mut sum_db) = ([0.0f64; BLOCK_VALUES], [0.0f64; BLOCK_VALUES]);
    vectorize_above(
        x.len(),
        Backward {
            x,
            weight,
            dy,
            cols,
            eps: eps.to_f64(),
            dx,
            sum_dw: &mut sum_dw[..cols],
            sum_db: &mut sum_db[..cols],
            scratch: &mut scratch[..block_rows(cols) * cols],
        },
    );
    for (grad, sum) in [(dweight, &sum_dw), (dbias, &sum_db)] {
        if let Some(grad) = grad {
            for (gj, &s) in grad.iter_mut().zip(sum) {
                *gj = T::from_f64(gj.to_f64() + s);
            }
        }
    }
    Ok(())
}

/// The backward pass for rows longer than a block ([`BLOCK_VALUES`]), row by row in `T`,
/// which needs no scratch: a row's `Σ g` and `Σ g·x̂`, then `dx`, `dweight` and `dbias`.
#[allow(clippy::too_many_arguments)]
fn wide_rows_backward<T: Float>(
    x: &[T],
    weight: Option<&[T]>,
    dy: &[T],
    cols: usize,
    eps: T,
    mut dx: Option<&mut [T]>,
    mut dweight: Option<&mut [T]>,
    mut dbias: Option<&mut [T]>,
) {
    let d = T::from_usize(cols);
    let w_at = |j: usize| weight.map_or(T::one(), |w| w[j]);
    for (r, (xr, gr)) in x.chunks_exact(cols).zip(dy.chunks_exact(cols)).enumerate() {
        let mean = xr.iter().copied().sum::<T>() / d;
        let var = xr.iter().map(|&v| (v - mean) * (v - mean)).sum::<T>() / d;
        let invstd = T::one() / (var + eps).sqrt();
        let (mut sum_g, mut sum_gx) = (T::zero(), T::zero());
        for (j, (&xi, &gi)) in xr.iter().zip(gr).enumerate() {
            let g = gi * w_at(j);
            sum_g += g;
            sum_gx += g * (xi - mean) * invstd;
        }
        if let Some(dx) = dx.as_deref_mut() {
            let a = invstd / d;
            let dxr = &mut dx[r * cols..(r + 1) * cols];
            for (j, (di, (&xi, &gi))) in dxr.iter_mut().zip(xr.iter().zip(gr)).enumerate() {
                let xhat = (xi - mean) * invstd;
                *di += a * (d * gi * w_at(j) - sum_g - xhat * sum_gx);
            }
        }
        if let Some(dw) = dweight.as_deref_mut() {
            for ((dwj, &xi), &gi) in dw.iter_mut().zip(xr).zip(gr) {
                *dwj += gi * (xi - mean) * invstd;
            }
        }
        if let Some(db) = dbias.as_deref_mut() {
            for (dbj, &gi) in db.iter_mut().zip(gr) {
                *dbj += gi;
            }
        }
    }
}

/// [`layer_norm_backward`]'s loop over blocks of rows, compiled for the CPU's widest
/// vectors: per block the rows widened into `scratch` and their statistics, then per row
/// `Σ g` and `Σ g x̂`, `dx` from them, and `dy·x̂` and `dy` added onto the `f64` sums over
/// rows. `x̂` is recomputed from the widened `x` where needed, which measured faster than
/// storing and reloading it.
struct Backward<'a, T> {
    x: &'a [T],
    weight: Option<&'a [T]>,
    dy: &'a [T],
    cols: usize,
    eps: f64,
    dx: Option<&'a mut [T]>,
    sum_dw: &'a mut [f64],
    sum_db: &'a mut [f64],
    scratch: &'a mut [f64],
}

impl<T: Float> Kernel for Backward<'_, T> {
    type Output = ();
    #[inline(always)]
    fn run(self) {
        let Backward {
            x,
            weight,
            dy,
            cols,
            eps,
            mut dx,
            sum_dw,
            sum_db,
            scratch,
        } = self;
        let block = scratch.len();
        let d = cols as f64;
        for (b, (xb, dyb)) in x.chunks(block).zip(dy.chunks(block)).enumerate() {
            let n = xb.len();
            let wide = &mut scratch[..n];
            widen_into(xb, wide);
            let wide = &*wide;
            let (mut mean, mut invstd) = ([0.0; BLOCK_ROWS], [0.0; BLOCK_ROWS]);
            block_stats(wide, cols, eps, &mut mean, &mut invstd);
            let stats = mean.iter().zip(&invstd);
            if let Some(dx) = dx.as_deref_mut() {
                let (mut mean_g, mut mean_gx) = ([0.0; BLOCK_ROWS], [0.0; BLOCK_ROWS]);
                let rows = wide.chunks_exact(cols).zip(dyb.chunks_exact(cols));
                let sums = mean_g.iter_mut().zip(mean_gx.iter_mut());
                for ((mg, mgx), ((xr, dyr), (&m, &s))) in sums.zip(rows.zip(stats.clone())) {
                    // without a weight, g = dy · 1 = dy exactly
                    let (sg, sgx) = match weight {
                        Some(w) => (
                            lane_sum(dyr, w, dyr, |dy, w, _| dy.to_f64() * w.to_f64()),
                            lane_sum(xr, dyr, w, |x, dy, w| {
                                dy.to_f64() * w.to_f64() * ((x - m) * s)
                            }),
                        ),
                        None => (
                            lane_sum(dyr, dyr, dyr, |dy, _, _| dy.to_f64()),
                            lane_sum(xr, dyr, dyr, |x, dy, _| dy.to_f64() * ((x - m) * s)),
                        ),
                    };
                    *mg = sg / d;
                    *mgx = sgx / d;
                }
                let dxb = dx[b * block..b * block + n].chunks_exact_mut(cols);
                let rows = dxb.zip(wide.chunks_exact(cols).zip(dyb.chunks_exact(cols)));
                let stats = stats.zip(mean_g.iter().zip(&mean_gx));
                for ((dxr, (xr, dyr)), ((&m, &s), (&mg, &mgx))) in rows.zip(stats) {
                    let sums = sum_dw.iter_mut().zip(sum_db.iter_mut());
                    match weight {
                        Some(weight) => {
                            let row = dxr.iter_mut().zip(sums).zip(xr.iter().zip(dyr).zip(weight));
                            for ((di, (sw, sb)), ((&x, &dy), &w)) in row {
                                let (dy, h) = (dy.to_f64(), (x - m) * s);
                                let g = dy * w.to_f64();
                                *di = T::from_f64(di.to_f64() + s * (g - mg - h * mgx));
                                *sw += dy * h;
                                *sb += dy;
                            }
                        }
                        None => {
                            let row = dxr.iter_mut().zip(sums).zip(xr.iter().zip(dyr));
                            for ((di, (sw, sb)), (&x, &dy)) in row {
                                let (dy, h) = (dy.to_f64(), (x - m) * s);
                                *di = T::from_f64(di.to_f64() + s * (dy - mg - h * mgx));
                                *sw += dy * h;
                                *sb += dy;
                            }
                        }
                    }
                }
            } else {
                let rows = wide.chunks_exact(cols).zip(dyb.chunks_exact(cols));
                for ((xr, dyr), (&m, &s)) in rows.zip(stats) {
                    let sums = sum_dw.iter_mut().zip(sum_db.iter_mut());
                    for ((sw, sb), (&x, &dy)) in sums.zip(xr.iter().zip(dyr)) {
                        let dy = dy.to_f64();
                        *sw += dy * ((x - m) * s);
                        *sb += dy;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::assert_close;
    use crate::testing::{assert_gradient, random_vec};

    fn cast<T: Float>(v: &[f64]) -> Vec<T> {
        v.iter().map(|&a| T::from_f64(a)).collect()
    }

    fn literal<T: Float>() {
        // cols = 4, eps = 1
        // row 0: [0, 0, 0, 4]: mean 1, var (1+1+1+9)/4 = 3, invstd 1/√4 = 0.5,
        //        x̂ = [-0.5, -0.5, -0.5, 1.5]
        // row 1: [1, 1, 1, 1]: mean 1, var 0, invstd 1, x̂ = 0
        // weight [1, 2, 3, 4], bias [0, 0, 0, 1]: y = x̂·w + b
        let x = cast::<T>(&[0.0, 0.0, 0.0, 4.0, 1.0, 1.0, 1.0, 1.0]);
        let w = cast::<T>(&[1.0, 2.0, 3.0, 4.0]);
        let b = cast::<T>(&[0.0, 0.0, 0.0, 1.0]);
        let mut y = vec![T::zero(); 8];
        layer_norm(&x, Some(&w), Some(&b), 4, T::one(), &mut y).unwrap();
        assert_close!(y, [-0.5, -1.0, -1.5, 7.0, 0.0, 0.0, 0.0, 1.0]);
        layer_norm(&x, None, None, 4, T::one(), &mut y).unwrap();
        assert_close!(y, [-0.5, -0.5, -0.5, 1.5, 0.0, 0.0, 0.0, 0.0]);
        // backward, g = dy·w, dx = invstd/4 · (4 g - Σg - x̂ Σ g x̂):
        // row 0: dy [1, 0, 0, 0], g = [1, 0, 0, 0], Σg = 1, Σ g x̂ = -0.5
        //        dx = 0.125·[4 - 1 - 0.25, -1 - 0.25, -1 - 0.25, -1 + 0.75]
        //           = [0.34375, -0.15625, -0.15625, -0.03125]
        // row 1: dy [1, 1, 0, 0], g = [1, 2, 0, 0], Σg = 3, x̂ = 0
        //        dx = 0.25·[4 - 3, 8 - 3, -3, -3] = [0.25, 1.25, -0.75, -0.75]
        // dweight = Σ dy x̂ = [-0.5, 0, 0, 0], dbias = Σ dy = [2, 1, 0, 0], accumulated onto 1
        let dy = cast::<T>(&[1.0, 0.0, 0.0, 0.0, 1.0, 1.0, 0.0, 0.0]);
        let (mut dx, mut dw, mut db) = (vec![T::zero(); 8], vec![T::one(); 4], vec![T::one(); 4]);
        layer_norm_backward(
            &x,
            Some(&w),
            &dy,
            4,
            T::one(),
            Some(&mut dx),
            Some(&mut dw),
            Some(&mut db),
        )
        .unwrap();
        assert_close!(
            dx,
            [0.34375, -0.15625, -0.15625, -0.03125, 0.25, 1.25, -0.75, -0.75]
        );
        assert_close!(dw, [0.5, 1.0, 1.0, 1.0]);
        assert_close!(db, [3.0, 2.0, 1.0, 1.0]);
    }

    #[test]
    fn literal_f64_and_f32() {
        literal::<f64>();
        literal::<f32>();
    }

    #[test]
    fn gradcheck() {
        gradcheck_at(3, 5);
    }

    #[test]
    fn gradcheck_rows_longer_than_a_block() {
        // past BLOCK_VALUES the backward pass goes row by row without scratch
        gradcheck_at(1, BLOCK_VALUES + 3);
    }

    fn gradcheck_at(rows: usize, cols: usize) {
        let x: Vec<f64> = random_vec(1, rows * cols, -2.0, 2.0);
        let w: Vec<f64> = random_vec(2, cols, -1.5, 1.5);
        let b: Vec<f64> = random_vec(3, cols, -1.0, 1.0);
        let up: Vec<f64> = random_vec(4, rows * cols, -1.0, 1.0);
        let loss = |x: &[f64], w: Option<&[f64]>, b: Option<&[f64]>| -> f64 {
            let mut y = vec![0.0; x.len()];
            layer_norm(x, w, b, cols, 1e-5, &mut y).unwrap();
            y.iter().zip(&up).map(|(a, b)| a * b).sum()
        };
        let (mut dx, mut dw, mut db) = (vec![0.0; x.len()], vec![0.0; cols], vec![0.0; cols]);
        layer_norm_backward(
            &x,
            Some(&w),
            &up,
            cols,
            1e-5,
            Some(&mut dx),
            Some(&mut dw),
            Some(&mut db),
        )
        .unwrap();
        assert_gradient(
            "layer_norm dx",
            |x| loss(x, Some(&w), Some(&b)),
            &x,
            &dx,
            1e-6,
        );
        assert_gradient(
            "layer_norm dweight",
            |w| loss(&x, Some(w), Some(&b)),
            &w,
            &dw,
            1e-6,
        );
        assert_gradient(
            "layer_norm dbias",
            |b| loss(&x, Some(&w), Some(b)),
            &b,
            &db,
            1e-6,
        );
        // without an affine transform
        let mut dx = vec![0.0; x.len()];
        layer_norm_backward(&x, None, &up, cols, 1e-5, Some(&mut dx), None, None).unwrap();
        assert_gradient(
            "layer_norm dx, no weight",
            |x| loss(x, None, None),
            &x,
            &dx,
            1e-6,
        );
    }

    /// `y`, `dx`, `dweight` and `dbias` in `f64` straight from the formulas of the module
    /// doc, one row and one element at a time (the gradients from zero).
    fn reference(
        x: &[f64],
        w: Option<&[f64]>,
        b: Option<&[f64]>,
        dy: &[f64],
        cols: usize,
        eps: f64,
    ) -> [Vec<f64>; 4] {
        let d = cols as f64;
        let (mut y, mut dx) = (vec![0.0; x.len()], vec![0.0; x.len()]);
        let (mut dw, mut db) = (vec![0.0; cols], vec![0.0; cols]);
        for (r, (xr, dyr)) in x.chunks(cols).zip(dy.chunks(cols)).enumerate() {
            let mean = xr.iter().sum::<f64>() / d;
            let var = xr.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / d;
            let invstd = 1.0 / (var + eps).sqrt();
            let xhat: Vec<f64> = xr.iter().map(|v| (v - mean) * invstd).collect();
            let g: Vec<f64> = (0..cols)
                .map(|j| dyr[j] * w.map_or(1.0, |w| w[j]))
                .collect();
            let sum_g: f64 = g.iter().sum();
            let sum_gx: f64 = g.iter().zip(&xhat).map(|(a, h)| a * h).sum();
            for j in 0..cols {
                let i = r * cols + j;
                y[i] = xhat[j] * w.map_or(1.0, |w| w[j]) + b.map_or(0.0, |b| b[j]);
                dx[i] = invstd / d * (d * g[j] - sum_g - xhat[j] * sum_gx);
                dw[j] += dyr[j] * xhat[j];
                db[j] += dyr[j];
            }
        }
        [y, dx, dw, db]
    }

    fn widen<T: Float>(v: &[T]) -> Vec<f64> {
        v.iter().map(|a| a.to_f64()).collect()
    }

    /// `|got - want|` in units in the last place of `want` as an `f32`.
    fn ulps(got: f32, want: f64) -> f64 {
        let spacing = if want.abs() < f32::MIN_POSITIVE as f64 {
            2f64.powi(-149)
        } else {
            2f64.powi(want.abs().log2().floor() as i32 - 23)
        };
        (got as f64 - want).abs() / spacing
    }

    /// Rows of random values around a mean that changes from row to row (up to 12 times
    /// their spread, so that `x - mean` cancels), and a weight, a bias and `dy`.
    fn inputs<T: Float>(seed: u64, rows: usize, cols: usize) -> [Vec<T>; 4] {
        let noise: Vec<f64> = random_vec(seed, rows * cols, -1.0, 1.0);
        let x = noise
            .iter()
            .enumerate()
            .map(|(i, &v)| T::from_f64(v + 4.0 * ((i / cols) % 4) as f64 - 2.0))
            .collect();
        [
            x,
            random_vec(seed + 1, cols, -1.5, 1.5),
            random_vec(seed + 2, cols, -1.0, 1.0),
            random_vec(seed + 3, rows * cols, -1.0, 1.0),
        ]
    }

    #[test]
    fn f32_within_ulps_of_f64() {
        // every output of the f32 passes against the formulas in f64 on the same (f32)
        // inputs, accumulating onto gradients that already hold values
        let eps = 1e-5f32;
        let mut worst = [0.0f64; 4];
        for (seed, cols) in [(10, 128), (20, 7), (30, 33), (40, 130), (50, 1), (60, 16)] {
            let rows = 40;
            let [x, w, b, dy] = inputs::<f32>(seed, rows, cols);
            let mut y = vec![f32::NAN; x.len()];
            layer_norm(&x, Some(&w), Some(&b), cols, eps, &mut y).unwrap();
            let mut dx: Vec<f32> = random_vec(seed + 4, x.len(), -1.0, 1.0);
            let mut dw: Vec<f32> = random_vec(seed + 5, cols, -1.0, 1.0);
            let mut db: Vec<f32> = random_vec(seed + 6, cols, -1.0, 1.0);
            let before = [widen(&dx), widen(&dw), widen(&db)];
            layer_norm_backward(
                &x,
                Some(&w),
                &dy,
                cols,
                eps,
                Some(&mut dx),
                Some(&mut dw),
                Some(&mut db),
            )
            .unwrap();
            let [y64, dx64, dw64, db64] = reference(
                &widen(&x),
                Some(&widen(&w)),
                Some(&widen(&b)),
                &widen(&dy),
                cols,
                eps as f64,
            );
            let got = [&y, &dx, &dw, &db];
            let want = [
                y64,
                add(&before[0], &dx64),
                add(&before[1], &dw64),
                add(&before[2], &db64),
            ];
            for (k, (got, want)) in got.iter().zip(&want).enumerate() {
                for (&g, &e) in got.iter().zip(want) {
                    worst[k] = worst[k].max(ulps(g, e));
                }
            }
        }
        println!(
            "layer_norm f32: max error {:.3} ulp y, {:.3} dx, {:.3} dweight, {:.3} dbias",
            worst[0], worst[1], worst[2], worst[3]
        );
        for (what, e) in ["y", "dx", "dweight", "dbias"].iter().zip(worst) {
            assert!(e <= 1.0, "layer_norm f32 {what}: {e} ulp");
        }
    }

    fn add(a: &[f64], b: &[f64]) -> Vec<f64> {
        a.iter().zip(b).map(|(u, v)| u + v).collect()
    }

    /// Widths whose rows fill no vector, part of one, or whole vectors and a tail.
    const WIDTHS: [usize; 12] = [1, 2, 3, 7, 15, 16, 17, 33, 63, 64, 127, 130];

    fn vectors_and_tails<T: Float>(tol: f64) {
        // a batch of at least 256 values runs dispatched to the widest vectors, a single row
        // (below 256) as compiled for the baseline: the same operations in the same order,
        // so the same bits; and both agree with the formulas in f64
        for (seed, &cols) in (100..).step_by(10).zip(&WIDTHS) {
            let rows = 256 / cols + 2;
            let [x, w, b, dy] = inputs::<T>(seed, rows, cols);
            let eps = T::from_f64(1e-5);
            let mut y = vec![T::zero(); x.len()];
            layer_norm(&x, Some(&w), Some(&b), cols, eps, &mut y).unwrap();
            let (mut dx, mut dw, mut db) = (
                vec![T::zero(); x.len()],
                vec![T::zero(); cols],
                vec![T::zero(); cols],
            );
            layer_norm_backward(
                &x,
                Some(&w),
                &dy,
                cols,
                eps,
                Some(&mut dx),
                Some(&mut dw),
                Some(&mut db),
            )
            .unwrap();
            for r in 0..rows {
                let at = r * cols..(r + 1) * cols;
                let mut yr = vec![T::zero(); cols];
                layer_norm(&x[at.clone()], Some(&w), Some(&b), cols, eps, &mut yr).unwrap();
                let mut dxr = vec![T::zero(); cols];
                layer_norm_backward(
                    &x[at.clone()],
                    Some(&w),
                    &dy[at.clone()],
                    cols,
                    eps,
                    Some(&mut dxr),
                    None,
                    None,
                )
                .unwrap();
                for (got, want) in [(&y[at.clone()], &yr), (&dx[at.clone()], &dxr)] {
                    let bits = |v: &[T]| v.iter().map(|a| a.to_f64().to_bits()).collect::<Vec<_>>();
                    assert_eq!(
                        bits(got),
                        bits(want),
                        "{} row {r} of width {cols}",
                        T::DTYPE
                    );
                }
            }
            let want = reference(
                &widen(&x),
                Some(&widen(&w)),
                Some(&widen(&b)),
                &widen(&dy),
                cols,
                eps.to_f64(),
            );
            for (got, want) in [&y, &dx, &dw, &db].into_iter().zip(&want) {
                assert_close!(widen(got), want, tol);
            }
        }
    }

    #[test]
    fn vectors_and_tails_match_row_by_row_and_the_formulas() {
        vectors_and_tails::<f64>(1e-12);
        vectors_and_tails::<f32>(1e-5);
    }

    #[test]
    fn without_weight_or_bias() {
        // every combination of weight and bias, and of gradients asked for, on a batch
        // that runs dispatched (40 rows) and one that does not (3 rows)
        for rows in [40, 3] {
            let cols = 9;
            let [x, w, b, dy] = inputs::<f64>(7, rows, cols);
            for (wt, bs) in [
                (None, None),
                (Some(&w[..]), None),
                (None, Some(&b[..])),
                (Some(&w[..]), Some(&b[..])),
            ] {
                let want = reference(&x, wt, bs, &dy, cols, 1e-5);
                let mut y = vec![f64::NAN; x.len()];
                layer_norm(&x, wt, bs, cols, 1e-5, &mut y).unwrap();
                assert_close!(y, want[0], 1e-12);
                for ask in 0..8 {
                    let (ask_dx, ask_dw, ask_db) = (ask & 1 != 0, ask & 2 != 0, ask & 4 != 0);
                    if ask_dw && wt.is_none() {
                        continue;
                    }
                    let (mut dx, mut dw, mut db) =
                        (vec![0.0; x.len()], vec![0.0; cols], vec![0.0; cols]);
                    layer_norm_backward(
                        &x,
                        wt,
                        &dy,
                        cols,
                        1e-5,
                        ask_dx.then_some(&mut dx[..]),
                        ask_dw.then_some(&mut dw[..]),
                        ask_db.then_some(&mut db[..]),
                    )
                    .unwrap();
                    for (asked, got, want) in [
                        (ask_dx, &dx, &want[1]),
                        (ask_dw, &dw, &want[2]),
                        (ask_db, &db, &want[3]),
                    ] {
                        if asked {
                            assert_close!(got, want, 1e-12);
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn accumulates_into_existing_gradients() {
        // twice onto values already there: before + 2 · gradient, for both types
        fn twice<T: Float>(tol: f64) {
            let (rows, cols) = (20, 33);
            let [x, w, _, dy] = inputs::<T>(3, rows, cols);
            let mut dx: Vec<T> = random_vec(4, x.len(), -1.0, 1.0);
            let mut dw: Vec<T> = random_vec(5, cols, -1.0, 1.0);
            let mut db: Vec<T> = random_vec(6, cols, -1.0, 1.0);
            let before = [widen(&dx), widen(&dw), widen(&db)];
            for _ in 0..2 {
                layer_norm_backward(
                    &x,
                    Some(&w),
                    &dy,
                    cols,
                    T::from_f64(1e-5),
                    Some(&mut dx),
                    Some(&mut dw),
                    Some(&mut db),
                )
                .unwrap();
            }
            let grads = reference(&widen(&x), Some(&widen(&w)), None, &widen(&dy), cols, 1e-5);
            for ((got, before), grad) in [widen(&dx), widen(&dw), widen(&db)]
                .iter()
                .zip(&before)
                .zip(&grads[1..])
            {
                let want: Vec<f64> = before.iter().zip(grad).map(|(a, g)| a + 2.0 * g).collect();
                assert_close!(got, want, tol);
            }
        }
        twice::<f64>(1e-12);
        twice::<f32>(1e-5);
    }

    #[test]
    fn bad_input_is_an_error() {
        let x = [0.0f64; 6];
        let mut y = [0.0f64; 6];
        let err = layer_norm(&x, None, None, 4, 1e-5, &mut y).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid argument to layer_norm: `x` has 6 elements, not a multiple of the row length 4"
        );
        assert!(layer_norm(&x, None, None, 0, 1e-5, &mut y).is_err());
        let err = layer_norm(&x, Some(&[1.0; 2]), None, 3, 1e-5, &mut y).unwrap_err();
        assert_eq!(
            err.to_string(),
            "length mismatch in layer_norm: `weight` has 2 elements, expected 3"
        );
        let mut dw = [0.0f64; 3];
        let err =
            layer_norm_backward(&x, None, &x, 3, 1e-5, None, Some(&mut dw), None).unwrap_err();
        assert!(err.to_string().contains("no weight"), "{err}");
        let mut dx = [0.0f64; 5];
        assert!(layer_norm_backward(&x, None, &x, 3, 1e-5, Some(&mut dx), None, None).is_err());
    }
}
