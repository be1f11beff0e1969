//! Convolutions of one input channel with a 3 × 3 kernel, stride 1 and padding 0–2 (the
//! first layer of an image network, `conv1` of `mnist_cnn`), for `f32` in sixteen lanes,
//! straight from `x`: no columns are laid out, so the forward pass writes `y` once and the
//! backward pass reads `x` and `dy` once.
//!
//! The output positions of a row are in the lanes (28 columns are 16 + 12 lanes). Tap
//! `(u, v)` of output row `i` and columns `j..j + 16` reads input row `i + u - p` from column
//! `j + v - p`: one masked load whose mask drops the lanes that fall in the zero padding
//! (zero padding is a mask, not a copy) and a row outside the input is not loaded at all.
//!
//! - Forward: a block of eight output channels by one or two vectors of a row keeps its
//!   sums in registers over the nine taps (per tap one or two loads of `x`, eight
//!   broadcast weights, eight or sixteen FMAs); the bias is added once and `y` written once.
//! - Weight and bias gradient: `dW[d, u, v] = Σ_{k, i, j} dy[k, d, i, j]·x[k, i + u - p,
//!   j + v - p]`. For a block of two output channels the loops walk the input rows: each
//!   row's three shifted vectors of `x` are loaded once and meet the three rows of `dy`
//!   that read them, which stay in registers (one new row of each channel per step); the
//!   18 sums of the weight and the two of the bias stay in registers over the whole batch,
//!   and each takes one horizontal sum at the end.
//!
//! The entry points check that the buffers have the lengths of their geometry and leave the
//! work to im2col and the GEMM (returning `false`) when they do not, or when the element
//! type, the CPU or the geometry is another.

use core::arch::x86_64::__m512;

use pulp::x86::V4;
use pulp::Simd;

use super::super::Conv2dGeom;
use super::{load, store, L};
use crate::float::{as_f32, as_f32_mut};
use crate::simd::{first_lanes, sum_lanes};
use crate::Float;

/// Output channels of one forward block: with two vectors, 16 accumulators.
const FORWARD_CHANNELS: usize = 8;
/// Output channels of one weight-gradient block: 18 + 2 accumulators, three vectors of `x`
/// and three rows of `dy` a channel in 32 registers.
const GRAD_CHANNELS: usize = 2;
/// Taps of the 3 × 3 kernel.
const TAPS: usize = 9;

/// Whether the kernels here run for `g` with elements of type `T` on this CPU: `f32` on
/// AVX-512, one input channel, a 3 × 3 kernel, stride 1 and padding at most 2.
fn single_applies<T: Float>(g: &Conv2dGeom) -> bool {
    as_f32::<T>(&[]).is_some()
        && g.c_in == 1
        && (g.kh, g.kw, g.stride) == (3, 3, 1)
        && g.padding <= 2
        && g.validate().is_ok()
        && V4::try_new().is_some()
}

/// `y = conv2d(x, weight) + bias` for a geometry of [`single_applies`], with `x: [n, 1, h,
/// w]`, `weight: [c_out, 1, 3, 3]`, `bias: [c_out]` and `y: [n, c_out, out_h, out_w]`;
/// `false` (nothing written) when the kernels do not apply or a length differs.
pub(in super::super) fn single_forward<T: Float>(
    g: &Conv2dGeom,
    x: &[T],
    weight: &[T],
    bias: Option<&[T]>,
    n: usize,
    y: &mut [T],
) -> bool {
    if !single_applies::<T>(g) {
        return false;
    }
    let (Some(simd), Some(x), Some(weight), Some(y)) =
        (V4::try_new(), as_f32(x), as_f32(weight), as_f32_mut(y))
    else {
        return false;
    };
    let bias = match bias.map(as_f32) {
        Some(None) => return false,
        Some(Some(b)) if b.len() != g.c_out => return false,
        b => b.flatten(),
    };
    let s = Single::new(g, x, n);
    if !s.fits(x.len(), y.len()) || weight.len() != g.c_out * TAPS {
        return false;
    }
    s.forward(simd, weight, bias, y);
    true
}

/// `dweight[d, 0, u, v] += Σ dy[k, d, i, j]·x[k, i + u - p, j + v - p]` and `dbias[d] +=
/// Σ dy[k, d, i, j]` (each when given) for a geometry of [`single_applies`]; `false`
/// (nothing written) when the kernels do not apply or a length differs.
pub(in super::super) fn single_weight_grad<T: Float>(
    g: &Conv2dGeom,
    x: &[T],
    dy: &[T],
    n: usize,
    dweight: Option<&mut [T]>,
    dbias: Option<&mut [T]>,
) -> bool {
    if !single_applies::<T>(g) {
        return false;
    }
    let (Some(simd), Some(x), Some(dy)) = (V4::try_new(), as_f32(x), as_f32(dy)) else {
        return false;
    };
    let dweight = match dweight.map(as_f32_mut) {
        Some(None) => return false,
        Some(Some(d)) if d.len() != g.c_out * TAPS => return false,
        d => d.flatten(),
    };
    let dbias = match dbias.map(as_f32_mut) {
        Some(None) => return false,
        Some(Some(b)) if b.len() != g.c_out => return false,
        b => b.flatten(),
    };
    let s = Single::new(g, x, n);
    if !s.fits(x.len(), dy.len()) {
        return false;
    }
    s.weight_grad(simd, dy, dweight, dbias);
    true
}

/// One convolution's operands and sizes: `x: [n, h, w]`, outputs `[n, c_out, oh, ow]`,
/// padding `p`.
struct Single<'a> {
    x: &'a [f32],
    n: usize,
    h: usize,
    w: usize,
    p: usize,
    oh: usize,
    ow: usize,
    c_out: usize,
}

impl<'a> Single<'a> {
    fn new(g: &Conv2dGeom, x: &'a [f32], n: usize) -> Self {
        Single {
            x,
            n,
            h: g.h,
            w: g.w,
            p: g.padding,
            oh: g.out_h(),
            ow: g.out_w(),
            c_out: g.c_out,
        }
    }

    /// Whether `x` has `n·h·w` elements and the output (`y` or `dy`) `n·c_out·oh·ow`, and
    /// every offset the loops form fits in `isize`.
    fn fits(&self, x: usize, out: usize) -> bool {
        let sizes = || -> Option<bool> {
            let plane = self.h.checked_mul(self.w)?;
            let out_plane = self.oh.checked_mul(self.ow)?;
            let x_len = self.n.checked_mul(plane)?;
            let out_len = self.n.checked_mul(self.c_out)?.checked_mul(out_plane)?;
            let small = isize::try_from(x_len.max(out_len).checked_add(2 * L)?).is_ok();
            Some(x == x_len && out == out_len && small)
        };
        self.oh > 0 && self.ow > 0 && sizes() == Some(true)
    }

    /// The lanes of the output vector at column `j` whose tap column `v` reads inside the
    /// input row (column `j + l + v - p` in `0..w`, and `l < ow - j`), and the offset of
    /// its lane 0 from the row's start, `j + v - p` (negative at the left border, where the
    /// lanes before the row are not in the mask).
    #[inline(always)]
    fn columns(&self, j: usize, v: usize) -> (u16, isize) {
        // `fits`: every column and size is far below isize::MAX
        let shift = j as isize + v as isize - self.p as isize;
        let end = (self.w as isize - shift).clamp(0, L as isize) as usize;
        let start = (-shift).clamp(0, L as isize) as usize;
        let mask = first_lanes(end) & !first_lanes(start) & first_lanes(self.ow - j);
        (mask, shift)
    }

    /// The input row that output row `i` reads with kernel row `u`, if it is inside the
    /// input (outside it is zero padding).
    #[inline(always)]
    fn row(&self, i: usize, u: usize) -> Option<usize> {
        (i + u).checked_sub(self.p).filter(|&r| r < self.h)
    }

    /// The output rows `top..bottom` whose three input rows are all inside the input (no
    /// padding row): `i - p` and `i + 2 - p` in `0..h`.
    #[inline(always)]
    fn interior(&self) -> (usize, usize) {
        let top = self.p.min(self.oh);
        let bottom = (self.h + self.p).saturating_sub(2).clamp(top, self.oh);
        (top, bottom)
    }

    /// `y` image by image, in blocks of 8 (then 4, then 1) channels by 32 columns (or
    /// 16 at a row's end).
    fn forward(&self, simd: V4, weight: &[f32], bias: Option<&[f32]>, y: &mut [f32]) {
        struct Op<'a, 'b> {
            simd: V4,
            s: &'a Single<'b>,
            weight: &'a [f32],
            bias: Option<&'a [f32]>,
            y: &'a mut [f32],
        }
        impl pulp::WithSimd for Op<'_, '_> {
            type Output = ();
            #[inline(always)]
            fn with_simd<S: Simd>(self, _: S) {
                let Self {
                    simd,
                    s,
                    weight,
                    bias,
                    y,
                } = self;
                for k in 0..s.n {
                    let mut d0 = 0;
                    while d0 < s.c_out {
                        d0 += match s.c_out - d0 {
                            left if left >= FORWARD_CHANNELS => {
                                s.forward_channels::<FORWARD_CHANNELS>(simd, weight, bias, y, k, d0)
                            }
                            left if left >= 4 => {
                                s.forward_channels::<4>(simd, weight, bias, y, k, d0)
                            }
                            _ => s.forward_channels::<1>(simd, weight, bias, y, k, d0),
                        };
                    }
                }
            }
        }
        Simd::vectorize(
            simd,
            Op {
                simd,
                s: self,
                weight,
                bias,
                y,
            },
        );
    }

    /// Channels `d0..d0 + C` of image `k`, every row; returns `C`.
    #[inline(always)]
    fn forward_channels<const C: usize>(
        &self,
        simd: V4,
        weight: &[f32],
        bias: Option<&[f32]>,
        y: &mut [f32],
        k: usize,
        d0: usize,
    ) -> usize {
        let f = simd.avx512f;
        // the block's weights copied out, so that the loops index an array of known length
        let weight: [[f32; TAPS]; C] =
            core::array::from_fn(|c| core::array::from_fn(|t| weight[(d0 + c) * TAPS + t]));
        let bias: [__m512; C] =
            core::array::from_fn(|c| f._mm512_set1_ps(bias.map_or(0.0, |b| b[d0 + c])));
        let x = self.x[k * self.h * self.w..][..self.h * self.w].as_ptr();
        let plane = self.oh * self.ow;
        let y = y[(k * self.c_out + d0) * plane..][..C * plane].as_mut_ptr();
        let mut j = 0;
        while j < self.ow {
            if self.ow - j > L {
                self.forward_columns::<C, 2>(simd, &weight, &bias, x, y, j);
                j += 2 * L;
            } else {
                self.forward_columns::<C, 1>(simd, &weight, &bias, x, y, j);
                j += L;
            }
        }
        C
    }

    /// Columns `j..j + 16·V` of every row of the block, the masks computed once for all
    /// rows, and the rows that read no padding (all but `p` or so at either end) told apart
    /// so that their loop has no test.
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    fn forward_columns<const C: usize, const V: usize>(
        &self,
        simd: V4,
        weight: &[[f32; TAPS]; C],
        bias: &[__m512; C],
        x: *const f32,
        y: *mut f32,
        j: usize,
    ) {
        let columns: [[(u16, isize); 3]; V] =
            core::array::from_fn(|q| core::array::from_fn(|v| self.columns(j + q * L, v)));
        let (top, bottom) = self.interior();
        for i in (0..top).chain(bottom..self.oh) {
            let rows = [self.row(i, 0), self.row(i, 1), self.row(i, 2)];
            self.forward_block(simd, weight, bias, x, y, (i, j), rows, &columns);
        }
        for i in top..bottom {
            let rows = [Some(i - self.p), Some(i + 1 - self.p), Some(i + 2 - self.p)];
            self.forward_block(simd, weight, bias, x, y, (i, j), rows, &columns);
        }
    }

    /// Output row `i`, columns `j..j + 16·V` (those below `ow`), of the `C` channels whose
    /// weights are `weight: [C, 9]` and whose planes start at `y`, from the image at `x`,
    /// whose rows `rows` (`None` in the padding) the kernel's three rows read.
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    fn forward_block<const C: usize, const V: usize>(
        &self,
        simd: V4,
        weight: &[[f32; TAPS]; C],
        bias: &[__m512; C],
        x: *const f32,
        y: *mut f32,
        (i, j): (usize, usize),
        rows: [Option<usize>; 3],
        columns: &[[(u16, isize); 3]; V],
    ) {
        let f = simd.avx512f;
        let mut acc = [[f._mm512_setzero_ps(); V]; C];
        for (u, r) in rows.into_iter().enumerate() {
            let Some(r) = r else { continue };
            let row = x.wrapping_add(r * self.w);
            for v in 0..3 {
                // SAFETY: AVX-512F is present (under `V4`); the lanes of the mask are
                // columns `j + q·16 + l + v - p` in `0..w` of row `r < h` of this image,
                // inside `x` (`fits`); the others are not accessed
                let xs: [__m512; V] = core::array::from_fn(|q| {
                    let (mask, shift) = columns[q][v];
                    unsafe { load(mask, row.wrapping_offset(shift)) }
                });
                for (c, acc) in acc.iter_mut().enumerate() {
                    let wv = f._mm512_set1_ps(weight[c][u * 3 + v]);
                    for (a, &xv) in acc.iter_mut().zip(&xs) {
                        *a = f._mm512_fmadd_ps(wv, xv, *a);
                    }
                }
            }
        }
        let at = i * self.ow + j;
        let plane = self.oh * self.ow;
        for (c, acc) in acc.iter().enumerate() {
            for (q, &a) in acc.iter().enumerate() {
                let mask = first_lanes(self.ow - (j + q * L).min(self.ow));
                // SAFETY: AVX-512F is present; the lanes of the mask are columns below `ow`
                // of row `i < oh` of channel `c < C` of the block's planes, inside `y`
                // (`fits`, and the block's slice of `C` planes)
                unsafe {
                    store(
                        mask,
                        y.add(c * plane + at + q * L),
                        f._mm512_add_ps(a, bias[c]),
                    )
                }
            }
        }
    }

    /// Adds the weight's and the bias's gradients, in blocks of 2 (then 1) channels, each
    /// over the whole batch.
    fn weight_grad(
        &self,
        simd: V4,
        dy: &[f32],
        mut dweight: Option<&mut [f32]>,
        mut dbias: Option<&mut [f32]>,
    ) {
        struct Op<'a, 'b> {
            simd: V4,
            s: &'a Single<'b>,
            dy: &'a [f32],
            d0: usize,
        }
        impl pulp::WithSimd for Op<'_, '_> {
            type Output = [([f32; TAPS], f32); GRAD_CHANNELS];
            #[inline(always)]
            fn with_simd<S: Simd>(self, _: S) -> Self::Output {
                let Self { simd, s, dy, d0 } = self;
                if s.c_out - d0 >= GRAD_CHANNELS {
                    s.grad_channels::<GRAD_CHANNELS>(simd, dy, d0)
                } else {
                    let [one] = s.grad_channels::<1>(simd, dy, d0);
                    [one, ([0.0; TAPS], 0.0)]
                }
            }
        }
        for d0 in (0..self.c_out).step_by(GRAD_CHANNELS) {
            let sums = Simd::vectorize(
                simd,
                Op {
                    simd,
                    s: self,
                    dy,
                    d0,
                },
            );
            let channels = (self.c_out - d0).min(GRAD_CHANNELS);
            for (c, (w, b)) in sums.iter().enumerate().take(channels) {
                if let Some(dw) = dweight.as_deref_mut() {
                    for (d, &e) in dw[(d0 + c) * TAPS..][..TAPS].iter_mut().zip(w) {
                        *d += e;
                    }
                }
                if let Some(db) = dbias.as_deref_mut() {
                    db[d0 + c] += b;
                }
            }
        }
    }

    /// The nine weight sums and the bias sum of channels `d0..d0 + C` over the batch.
    ///
    /// Input row `r` meets output rows `r + p - u` through kernel row `u`: the loops walk
    /// the input rows, load each row's three column shifts once, and keep the three output
    /// rows of `dy` that they meet in registers, loading one new row per step (so a step
    /// is three loads of `x` and `C` of `dy` for `9·C` FMAs, where walking the output rows
    /// loads all nine shifted vectors of `x` for each).
    #[inline(always)]
    fn grad_channels<const C: usize>(
        &self,
        simd: V4,
        dy: &[f32],
        d0: usize,
    ) -> [([f32; TAPS], f32); C] {
        let f = simd.avx512f;
        let zero = f._mm512_setzero_ps();
        let mut acc = [[zero; TAPS]; C];
        let mut acc_b = [zero; C];
        let plane = self.oh * self.ow;
        // column vector outermost: its masks are computed once for the whole batch
        for j in (0..self.ow).step_by(L) {
            let columns: [(u16, isize); 3] = core::array::from_fn(|v| self.columns(j, v));
            let mask = first_lanes(self.ow - j);
            for k in 0..self.n {
                let x = self.x[k * self.h * self.w..][..self.h * self.w].as_ptr();
                let dy = dy[(k * self.c_out + d0) * plane..][..C * plane].as_ptr();
                let at = (dy.wrapping_add(j), plane, mask);
                // at input row `r`, rows[c][2 - u] is output row `r + p - u` of channel `c`:
                // each step shifts in one row, so before row 0 the last two are rows `p - 2`
                // and `p - 1`
                let mut rows = [[zero; 3]; C];
                for c in 0..C {
                    rows[c][1] = self.grad_dy_row(simd, at, c, self.p.checked_sub(2));
                    rows[c][2] = self.grad_dy_row(simd, at, c, self.p.checked_sub(1));
                    acc_b[c] = f._mm512_add_ps(acc_b[c], rows[c][1]);
                    acc_b[c] = f._mm512_add_ps(acc_b[c], rows[c][2]);
                }
                for r in 0..self.h {
                    for c in 0..C {
                        let next = self.grad_dy_row(simd, at, c, Some(r + self.p));
                        acc_b[c] = f._mm512_add_ps(acc_b[c], next);
                        rows[c] = [rows[c][1], rows[c][2], next];
                    }
                    let row = x.wrapping_add(r * self.w);
                    // SAFETY: AVX-512F is present (under `V4`); the lanes of the mask are
                    // columns `j + l + v - p` in `0..w` of row `r < h` of this image, inside
                    // `x` (`fits`)
                    let xs: [__m512; 3] = core::array::from_fn(|v| {
                        let (cols, shift) = columns[v];
                        unsafe { load(cols, row.wrapping_offset(shift)) }
                    });
                    for c in 0..C {
                        for u in 0..3 {
                            for v in 0..3 {
                                let a = &mut acc[c][u * 3 + v];
                                *a = f._mm512_fmadd_ps(rows[c][2 - u], xs[v], *a);
                            }
                        }
                    }
                }
            }
        }
        core::array::from_fn(|c| (acc[c].map(lane_sum), lane_sum(acc_b[c])))
    }

    /// Output row `i` of channel `d0 + c` at the block's column vector (`dy_at` its lane 0
    /// in row 0 of channel `d0`, lanes of `mask`), or zeros when `i` is not an output row.
    #[inline(always)]
    fn grad_dy_row(
        &self,
        simd: V4,
        (dy_at, plane, mask): (*const f32, usize, u16),
        c: usize,
        i: Option<usize>,
    ) -> __m512 {
        match i.filter(|&i| i < self.oh) {
            // SAFETY: AVX-512F is present; lanes below `ow - j` of row `i < oh` of channel
            // `d0 + c` of image `k`, inside `dy` (`fits`, and the block's slice of `C`
            // planes)
            Some(i) => unsafe { load(mask, dy_at.add(c * plane + i * self.ow)) },
            None => simd.avx512f._mm512_setzero_ps(),
        }
    }
}

/// The sum of the sixteen lanes of `v`, pairwise.
#[inline(always)]
fn lane_sum(v: __m512) -> f32 {
    sum_lanes::<f32, L>(pulp::cast(v))
}

#[cfg(test)]
mod tests {
    use super::super::super::{backward, forward_on, Dx, Path};
    use super::*;
    use crate::ops::Conv2dCols;
    use crate::testing::{numeric_grad, random_vec};

    /// `x`, `weight`, `bias` and `dy` of one test.
    type Operands<'a, T> = (&'a [T], &'a [T], Option<&'a [T]>, &'a [T]);

    /// `y`, `dweight` and `dbias` of one forward and one backward pass on `path`, the
    /// gradients added onto zeros (`dbias` only with a bias).
    fn run<T: Float>(
        path: Path,
        g: &Conv2dGeom,
        n: usize,
        (x, w, b, dy): Operands<T>,
    ) -> (Vec<T>, Vec<T>, Vec<T>) {
        let nan = T::from_f64(f64::NAN);
        let mut ws = vec![nan; g.workspace_len(n)];
        let mut y = vec![nan; n * g.output_len()];
        forward_on(path, g, x, w, b, n, &mut ws, &mut y).unwrap();
        let (mut dw, mut db) = (vec![T::zero(); w.len()], vec![T::zero(); g.c_out]);
        let grads = (None, Some(&mut dw[..]), b.is_some().then_some(&mut db[..]));
        let cols = Conv2dCols::Kept;
        backward(path, g, x, w, dy, n, &mut ws, cols, grads, Dx::Add).unwrap();
        (y, dw, db)
    }

    /// `y` and its rounding bound `(taps + 1)·ε·(|b| + Σ|w·x|)`, `dweight`, `dbias` and
    /// theirs (`depth·ε·Σ|dy·x|`, depth the number of terms), in `f64` from the formula.
    #[allow(clippy::type_complexity)]
    fn reference(
        g: &Conv2dGeom,
        n: usize,
        (x, w, b, dy): (&[f32], &[f32], &[f32], &[f32]),
    ) -> [(Vec<f64>, Vec<f64>); 3] {
        let (oh, ow, p) = (g.out_h(), g.out_w(), g.padding as isize);
        let eps = f64::from(f32::EPSILON);
        let mut y = vec![(0.0, 0.0); n * g.output_len()];
        let mut dw = vec![(0.0, 0.0); g.weight_len()];
        let mut db = vec![(0.0, 0.0); g.c_out];
        for k in 0..n {
            for d in 0..g.c_out {
                for i in 0..oh {
                    for j in 0..ow {
                        let o = ((k * g.c_out + d) * oh + i) * ow + j;
                        let (g_o, b_d) = (f64::from(dy[o]), f64::from(b[d]));
                        let mut acc = (b_d, b_d.abs());
                        for t in 0..9 {
                            let r = (i + t / 3) as isize - p;
                            let s = (j + t % 3) as isize - p;
                            if r < 0 || s < 0 || r >= g.h as isize || s >= g.w as isize {
                                continue;
                            }
                            let xv = f64::from(x[(k * g.h + r as usize) * g.w + s as usize]);
                            let wv = f64::from(w[d * 9 + t]);
                            acc = (acc.0 + wv * xv, acc.1 + (wv * xv).abs());
                            let e = &mut dw[d * 9 + t];
                            *e = (e.0 + g_o * xv, e.1 + (g_o * xv).abs());
                        }
                        y[o] = acc;
                        db[d] = (db[d].0 + g_o, db[d].1 + g_o.abs());
                    }
                }
            }
        }
        let depth = (n * oh * ow) as f64;
        let scale = |v: Vec<(f64, f64)>, by: f64| -> (Vec<f64>, Vec<f64>) {
            v.into_iter().map(|(s, a)| (s, by * eps * a)).unzip()
        };
        [scale(y, 10.0), scale(dw, depth), scale(db, depth)]
    }

    /// Asserts `|actual - expected| <= bound` element by element.
    #[track_caller]
    fn assert_within(what: &str, actual: &[f32], (expected, bound): &(Vec<f64>, Vec<f64>)) {
        assert_eq!(actual.len(), expected.len(), "{what}");
        for (e, ((&a, &x), &b)) in actual.iter().zip(expected).zip(bound).enumerate() {
            let err = (f64::from(a) - x).abs();
            assert!(err <= b, "{what}[{e}] = {a}, expected {x} within {b}");
        }
    }

    /// The direct path and the im2col path against the `f64` formula, each within its
    /// rounding bound, and so against each other within the sum of the bounds.
    fn check(g: Conv2dGeom, n: usize, seed: u64) {
        let x: Vec<f32> = random_vec(seed, n * g.input_len(), -1.0, 1.0);
        let w: Vec<f32> = random_vec(seed + 1, g.weight_len(), -1.0, 1.0);
        let b: Vec<f32> = random_vec(seed + 2, g.c_out, -1.0, 1.0);
        let dy: Vec<f32> = random_vec(seed + 3, n * g.output_len(), -1.0, 1.0);
        let [y_ref, dw_ref, db_ref] = reference(&g, n, (&x, &w, &b, &dy));
        for path in [Path::Direct, Path::Gemm] {
            let (y, dw, db) = run(path, &g, n, (&x, &w, Some(&b), &dy));
            let case = format!("{g:?}, n = {n}");
            assert_within(&format!("y ({case})"), &y, &y_ref);
            assert_within(&format!("dweight ({case})"), &dw, &dw_ref);
            assert_within(&format!("dbias ({case})"), &db, &db_ref);
            // without a bias: y has none added, dbias is not touched
            let (y0, dw0, db0) = run(path, &g, n, (&x, &w, None, &dy));
            assert_eq!(dw0, dw, "{case}");
            assert!(db0.iter().all(|&v| v == 0.0), "{case}");
            // y0 + bias and y each lie within y's rounding bound of the exact sum (the
            // bound counts |bias|, which y0 lacks), whatever order the provider's GEMM adds in
            let plane = g.out_h() * g.out_w();
            for (o, (&a, &c)) in y0.iter().zip(&y).enumerate() {
                let bias = f64::from(b[o / plane % g.c_out]);
                let gap = (f64::from(a) + bias - f64::from(c)).abs();
                assert!(gap <= 2.0 * y_ref.1[o], "y without bias ({case})[{o}]");
            }
        }
    }

    #[test]
    fn direct_path_runs_here_when_the_cpu_has_avx512() {
        let g = Conv2dGeom::new(1, 28, 28, 16, 3, 3, 1, 1).unwrap();
        assert_eq!(single_applies::<f32>(&g), V4::try_new().is_some());
        assert!(!single_applies::<f64>(&g));
        for other in [
            Conv2dGeom::new(2, 28, 28, 16, 3, 3, 1, 1).unwrap(),
            Conv2dGeom::new(1, 28, 28, 16, 3, 3, 2, 1).unwrap(),
            Conv2dGeom::new(1, 28, 28, 16, 5, 5, 1, 2).unwrap(),
            Conv2dGeom::new(1, 28, 28, 16, 3, 3, 1, 3).unwrap(),
        ] {
            assert!(!single_applies::<f32>(&other), "{other:?}");
        }
        // a wrong length declines instead of reading past a buffer
        let (x, w) = (vec![0.0f32; 784], vec![0.0f32; 144]);
        let mut y = vec![0.0f32; 16 * 784 - 1];
        assert!(!single_forward(&g, &x, &w, None, 1, &mut y));
        assert!(!single_weight_grad(&g, &x[1..], &y, 1, None, None));
    }

    #[test]
    fn direct_equals_im2col_and_the_formula_on_small_planes() {
        let mut seed = 0;
        for p in 0..=2 {
            for h in 1..=33 {
                // widths around one and two vectors, every height
                for w in [1, 2, 3, 5, 14, 15, 16, 17, 18, 28, 31, 32, 33] {
                    let Ok(g) = Conv2dGeom::new(1, h, w, 3, 3, 3, 1, p) else {
                        assert!(h + 2 * p < 3 || w + 2 * p < 3);
                        continue;
                    };
                    seed += 10;
                    check(g, 1 + h % 5, seed);
                }
            }
        }
    }

    #[test]
    fn direct_equals_im2col_and_the_formula_in_every_channel_block() {
        // blocks of 8, 4 and 1 channels forward, 2 and 1 backward
        for (c_out, n) in [(1, 2), (2, 3), (5, 1), (8, 4), (13, 5), (16, 2)] {
            check(
                Conv2dGeom::new(1, 9, 20, c_out, 3, 3, 1, 1).unwrap(),
                n,
                c_out as u64,
            );
        }
    }

    #[test]
    fn direct_equals_im2col_and_the_formula_at_mnist_cnn_shape() {
        check(Conv2dGeom::new(1, 28, 28, 16, 3, 3, 1, 1).unwrap(), 64, 7);
    }

    #[test]
    fn dx_when_asked_for_is_the_im2col_paths() {
        // the direct loops compute no dx: it comes from the GEMM and col2im as before (the
        // same bits), the columns it overwrites being no input of the direct dweight
        let g = Conv2dGeom::new(1, 9, 20, 5, 3, 3, 1, 1).unwrap();
        let n = 3;
        let x: Vec<f32> = random_vec(21, n * g.input_len(), -1.0, 1.0);
        let w: Vec<f32> = random_vec(22, g.weight_len(), -1.0, 1.0);
        let dy: Vec<f32> = random_vec(23, n * g.output_len(), -1.0, 1.0);
        let [_, dw_ref, _] = reference(&g, n, (&x, &w, &[0.0; 5], &dy));
        let grads = |path, cols, how| {
            let mut ws = vec![f32::NAN; g.workspace_len(n)];
            let mut y = vec![0.0f32; n * g.output_len()];
            forward_on(path, &g, &x, &w, None, n, &mut ws, &mut y).unwrap();
            let (mut dx, mut dw) = (vec![0.5f32; x.len()], vec![0.0f32; w.len()]);
            let grads = (Some(&mut dx[..]), Some(&mut dw[..]), None);
            backward(path, &g, &x, &w, &dy, n, &mut ws, cols, grads, how).unwrap();
            (dx, dw)
        };
        for cols in [Conv2dCols::Kept, Conv2dCols::Recompute] {
            for how in [Dx::Add, Dx::Overwrite] {
                let (dx, dw) = grads(Path::Direct, cols, how);
                let (dx_ref, dw_gemm) = grads(Path::Gemm, cols, how);
                assert_eq!(dx, dx_ref);
                assert_within("dweight", &dw, &dw_ref);
                assert_within("dweight (im2col)", &dw_gemm, &dw_ref);
            }
        }
    }

    #[test]
    fn f64_takes_the_im2col_path() {
        let g = Conv2dGeom::new(1, 7, 9, 4, 3, 3, 1, 1).unwrap();
        let n = 3;
        let x: Vec<f64> = random_vec(1, n * g.input_len(), -1.0, 1.0);
        let w: Vec<f64> = random_vec(2, g.weight_len(), -1.0, 1.0);
        let b: Vec<f64> = random_vec(3, g.c_out, -1.0, 1.0);
        let dy: Vec<f64> = random_vec(4, n * g.output_len(), -1.0, 1.0);
        let ops = (&x[..], &w[..], Some(&b[..]), &dy[..]);
        assert_eq!(run(Path::Direct, &g, n, ops), run(Path::Gemm, &g, n, ops));
    }

    #[test]
    fn weight_and_bias_gradients_match_central_differences() {
        // the loss Σ dy·y is linear in the weight and the bias, so a wide step loses nothing
        // to curvature; the forward pass runs on the direct path in f32
        for (g, n) in [
            (Conv2dGeom::new(1, 6, 19, 3, 3, 3, 1, 1).unwrap(), 2),
            (Conv2dGeom::new(1, 5, 4, 2, 3, 3, 1, 0).unwrap(), 3),
            (Conv2dGeom::new(1, 4, 17, 5, 3, 3, 1, 2).unwrap(), 1),
        ] {
            let x: Vec<f32> = random_vec(11, n * g.input_len(), -1.0, 1.0);
            let w: Vec<f32> = random_vec(12, g.weight_len(), -1.0, 1.0);
            let b: Vec<f32> = random_vec(13, g.c_out, -1.0, 1.0);
            let dy: Vec<f32> = random_vec(14, n * g.output_len(), -1.0, 1.0);
            let (_, dw, db) = run(Path::Direct, &g, n, (&x, &w, Some(&b), &dy));
            let loss = |w: &[f64], b: &[f64]| {
                let (w, b): (Vec<f32>, Vec<f32>) = (
                    w.iter().map(|&v| v as f32).collect(),
                    b.iter().map(|&v| v as f32).collect(),
                );
                let (y, _, _) = run(Path::Direct, &g, n, (&x, &w, Some(&b), &dy));
                y.iter()
                    .zip(&dy)
                    .map(|(&a, &u)| f64::from(a) * f64::from(u))
                    .sum::<f64>()
            };
            let (w64, b64): (Vec<f64>, Vec<f64>) = (
                w.iter().map(|&v| f64::from(v)).collect(),
                b.iter().map(|&v| f64::from(v)).collect(),
            );
            let num_w = numeric_grad(|w| loss(w, &b64), &w64, 0.25);
            let num_b = numeric_grad(|b| loss(&w64, b), &b64, 0.25);
            let close = |a: &[f32], e: &[f64]| {
                a.iter()
                    .zip(e)
                    .all(|(&a, &e)| (f64::from(a) - e).abs() <= 1e-4 * e.abs().max(1.0))
            };
            assert!(close(&dw, &num_w), "{g:?}: {dw:?} against {num_w:?}");
            assert!(close(&db, &num_b), "{g:?}: {db:?} against {num_b:?}");
        }
    }
}
