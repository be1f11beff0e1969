//! Stride-1 convolutions with many input channels as `kh·kw` GEMMs on shifted views of one
//! padded copy of the input, instead of im2col's `kh·kw` copies.
//!
//! The images are stacked in one zero-padded plane per channel, sharing their padding: each
//! row is `p` zeros then the `w` values of an input row (`pw = w + p` wide; the right padding
//! of a row is the left padding of the next), each image `p` zero rows then its `h` rows
//! (`ph = h + p` high; its bottom padding is the next image's top), and after the last
//! image `kh` zero rows and `kw` zeros more:
//!
//! `P[c, (k·ph + p + r)·pw + p + s] = x[k, c, r, s]`, zero elsewhere, `L` elements a channel.
//!
//! Output `(k, i, j)` sits at column `q = k·ph·pw + i·pw + j` of a "wide" output
//! `[c_out, n·ph·pw]` (the columns with `i ≥ out_h` or `j ≥ out_w` are junk), and reads tap
//! `(u, v)` of channel `c` at `P[c, q + u·pw + v]`. So with `W_t = weight[.., .., u, v]`
//! (`[c_out, c_in]`) and the shift `d_t = u·pw + v`:
//!
//! - forward: `Y_wide = Σ_t W_t · P[.., d_t..]`, nine GEMMs of depth `c_in` when the kernel
//!   is 3x3, each reading its shifted view of `P` in place (rows `L` apart);
//! - input gradient: with `dY` laid out wide (`dYw`, junk columns 0, and a margin of `d_max`
//!   zeros before column 0), `dP[.., q] = Σ_t W_tᵀ · dYw[.., q - d_t]`: one GEMM gives
//!   every tap's `W_tᵀ · dYw` (`[c_in·kh·kw, c_out]`, the weight as stored, transposed),
//!   whose rows are then shifted back and summed over each image's padded rows, and `dx`
//!   is read out of the sum;
//! - weight gradient: `dW_t += dYw · P[.., d_t..]ᵀ`, one product of depth `n·ph·pw` per tap
//!   over the whole batch, as register-blocked dot products of rows.
//!
//! For `f32` on AVX-512 all three run instead as direct loops whose sums stay in registers
//! (`avx512.rs`): the forward pass over `P`, the input gradient over `dYw`, the weight
//! gradient over `P` and `dy` itself, transposed image by image; the GEMMs remain for other
//! types and CPUs.
//!
//! It needs `p < kh` and `p < kw` (so that one row and one image of padding serve both
//! sides). The columns go in chunks of whole images, about 1024 at a time, so that a
//! chunk's rows of `P`, `dYw` and the product stay in cache across the taps.

use super::avx512;
use super::products::add_row_products;
use super::rows::add_row_sums;
use super::{Conv2dCols, Conv2dGeom, Dx, Path};
use crate::blas::{gemm, Trans};
use crate::ops::relu::keep_where_positive;
use crate::simd::{vectorize, Kernel};
use crate::Float;

/// The fewest input channels for which [`Conv2dGeom::is_shifted`] holds: each tap's GEMM has
/// this depth, and below it the products are too shallow to beat im2col's one deep GEMM.
const MIN_C_IN: usize = 8;

/// Output columns a chunk of images aims at.
const CHUNK_COLUMNS: usize = 1024;

impl Conv2dGeom {
    /// Whether the kernels run as shifted GEMMs (the module's doc): stride 1, padding less
    /// than the kernel in both directions, at least [`MIN_C_IN`] input channels.
    pub(super) const fn is_shifted(&self) -> bool {
        self.stride == 1
            && self.padding < self.kh
            && self.padding < self.kw
            && self.c_in >= MIN_C_IN
    }

    /// Width of a padded row, `w + p`.
    pub(super) const fn padded_w(&self) -> usize {
        self.w + self.padding
    }

    /// Elements of one image's padded plane, `(h + p)·(w + p)`: its columns of `Y_wide`.
    pub(super) const fn padded_plane(&self) -> usize {
        (self.h + self.padding) * self.padded_w()
    }

    /// Zeros after the last image in each channel of `P`: `kh` rows and `kw` more.
    const fn padded_tail(&self) -> usize {
        self.kh * self.padded_w() + self.kw
    }

    /// The largest shift, `(kh - 1)·pw + kw - 1`: zeros before column 0 of `dYw`.
    pub(super) const fn max_shift(&self) -> usize {
        (self.kh - 1) * self.padded_w() + self.kw - 1
    }

    /// Images per chunk: enough for [`CHUNK_COLUMNS`] columns, at least one.
    pub(super) const fn shifted_chunk(&self) -> usize {
        let plane = self.padded_plane();
        if plane == 0 {
            1
        } else {
            CHUNK_COLUMNS.div_ceil(plane)
        }
    }

    /// Whether [`Conv2dGeom::shifted_per_image`] and [`Conv2dGeom::shifted_fixed`] fit in
    /// `usize`: validation checks it for a shifted geometry, whose `c_out` planes of
    /// `(h + p)·(w + p)` can overflow where the output's `c_out·out_h·out_w` does not.
    pub(super) fn shifted_fits(&self) -> bool {
        let sizes = || -> Option<()> {
            let pw = self.w.checked_add(self.padding)?;
            let plane = self.h.checked_add(self.padding)?.checked_mul(pw)?;
            self.c_in.checked_add(self.c_out)?.checked_mul(plane)?;
            let tail = self.kh.checked_mul(pw)?.checked_add(self.kw)?;
            let shift = (self.kh - 1).checked_mul(pw)?.checked_add(self.kw - 1)?;
            let width = CHUNK_COLUMNS.div_ceil(plane).checked_mul(plane)?;
            let forward = self.c_out.checked_mul(width)?;
            let taps = self.c_in.checked_mul(self.kh)?.checked_mul(self.kw)?;
            let backward = taps.checked_mul(width.checked_add(shift)?)?;
            self.c_in
                .checked_mul(tail)?
                .checked_add(self.c_out.checked_mul(shift)?)?
                .checked_add(forward.max(backward))?
                .checked_add(self.weight_len().checked_mul(2)?)?;
            Some(())
        };
        sizes().is_some()
    }

    /// Workspace per image of the shifted kernels: its planes of `P` and of `dYw`,
    /// `(c_in + c_out)·(h + p)·(w + p)`.
    pub(super) const fn shifted_per_image(&self) -> usize {
        (self.c_in + self.c_out) * self.padded_plane()
    }

    /// Fixed workspace of the shifted kernels: `P`'s tails, `dYw`'s margins, one chunk's
    /// product (`Y_wide` or `dP`), the weight by tap and its gradient by tap.
    pub(super) const fn shifted_fixed(&self) -> usize {
        let width = self.shifted_chunk() * self.padded_plane();
        let forward = self.c_out * width;
        let backward = self.c_in * self.kh * self.kw * (width + self.max_shift());
        let product = if forward > backward {
            forward
        } else {
            backward
        };
        self.c_in * self.padded_tail()
            + self.c_out * self.max_shift()
            + product
            + 2 * self.weight_len()
    }

    /// The shifted kernels' workspace for `n` images cut into `P`, `dYw`, a chunk's product,
    /// the weight by tap and its gradient by tap; with `P`'s and `dYw`'s row lengths.
    #[allow(clippy::type_complexity)]
    fn split_shifted<'a, T>(&self, n: usize, ws: &'a mut [T]) -> ([&'a mut [T]; 5], usize, usize) {
        let ld_p = n * self.padded_plane() + self.padded_tail();
        let ld_dy = n * self.padded_plane() + self.max_shift();
        let (p, rest) = ws.split_at_mut(self.c_in * ld_p);
        let (dyw, rest) = rest.split_at_mut(self.c_out * ld_dy);
        let (wt, rest) = rest.split_at_mut(self.weight_len());
        let (dwt, chunk) = rest.split_at_mut(self.weight_len());
        ([p, dyw, chunk, wt, dwt], ld_p, ld_dy)
    }
}

/// [`super::conv2d`] for a geometry with [`Conv2dGeom::is_shifted`] (buffers checked), on
/// the loops `path` says (on `P` and `dYw`: the direct loops of `avx512.rs` or the GEMMs):
/// leaves `P` in the workspace for [`Conv2dCols::Kept`].
#[allow(clippy::too_many_arguments)]
pub(super) fn forward_on<T: Float>(
    path: Path,
    g: &Conv2dGeom,
    x: &[T],
    weight: &[T],
    bias: Option<&[T]>,
    n: usize,
    workspace: &mut [T],
    y: &mut [T],
) {
    let ([p, _, chunk, wt, _], ld_p, _) = g.split_shifted(n, workspace);
    vectorize(Pad { g, x, p, ld_p });
    if path == Path::Direct && avx512::winograd_forward(g, p, ld_p, weight, bias, n, chunk, y) {
        return;
    }
    if path != Path::Gemm && avx512::forward(g, p, ld_p, (weight, wt), bias, n, y) {
        return;
    }
    by_tap(g, weight, wt);
    let (plane, pw, taps) = (g.padded_plane(), g.padded_w(), g.kh * g.kw);
    let mut k0 = 0;
    while k0 < n {
        let m = g.shifted_chunk().min(n - k0);
        let (c0, width) = (k0 * plane, m * plane);
        let product = &mut chunk[..g.c_out * width];
        // Y_wide[.., c0..] = Σ_t W_t · P[.., c0 + d_t..]: [c_out, c_in] · [c_in, width]
        for t in 0..taps {
            let shift = t / g.kw * pw + t % g.kw;
            gemm(
                Trans::No,
                Trans::No,
                g.c_out,
                width,
                g.c_in,
                T::one(),
                &wt[t * g.c_out * g.c_in..][..g.c_out * g.c_in],
                /* lda= */ g.c_in,
                &p[c0 + shift..],
                /* ldb= */ ld_p,
                if t == 0 { T::zero() } else { T::one() },
                product,
                /* ldc= */ width,
            );
        }
        let y = &mut y[k0 * g.output_len()..(k0 + m) * g.output_len()];
        vectorize(Unwide {
            g,
            product,
            width,
            bias,
            y,
        });
        k0 += m;
    }
}

/// [`super::backward`] for a geometry with [`Conv2dGeom::is_shifted`] (buffers checked), on
/// the loops `path` says.
#[allow(clippy::type_complexity)]
pub(super) fn backward_on<T: Float>(
    path: Path,
    g: &Conv2dGeom,
    (x, weight, dy, n): (&[T], &[T], &[T], usize),
    workspace: &mut [T],
    cols_held: Conv2dCols,
    (mut dx, mut dweight, dbias): (Option<&mut [T]>, Option<&mut [T]>, Option<&mut [T]>),
    how: Dx,
) {
    if n == 0 {
        return;
    }
    let ([p, dyw, chunk, wt, dwt], ld_p, ld_dy) = g.split_shifted(n, workspace);
    let mut dbias = dbias;
    if dweight.is_some() && cols_held == Conv2dCols::Recompute {
        vectorize(Pad { g, x, p, ld_p });
    }
    if let (Path::Direct, Some(dw)) = (path, dweight.as_deref_mut()) {
        // Winograd's, reading `dy` as it is, with `chunk` as scratch, summing `dbias` on the way
        if avx512::winograd_weight_grad(g, dy, p, ld_p, n, chunk, dbias.as_deref_mut(), dw) {
            (dweight, dbias) = (None, None);
        }
    }
    if let (Path::Direct | Path::Loops, Some(dw)) = (path, dweight.as_deref_mut()) {
        // reads `dy` as it is, with `chunk` and `dwt` as scratch, and sums `dbias` on the way
        if avx512::add_weight_grad(g, dy, p, ld_p, n, (chunk, dwt), dbias.as_deref_mut(), dw) {
            (dweight, dbias) = (None, None);
        }
    }
    if let Some(db) = dbias {
        add_row_sums(dy, g.out_h() * g.out_w(), db);
    }
    if let (Path::Direct, Some(d)) = (path, dx.as_deref_mut()) {
        // Winograd's, reading `dy` as it is, with `chunk` as scratch
        if avx512::winograd_input_grad_dy(g, dy, weight, n, x, chunk, d, how) {
            dx = None;
        }
    }
    if dweight.is_none() && dx.is_none() {
        return;
    }
    // the loops and the GEMMs below read `dYw`
    vectorize(Widen { g, dy, dyw, ld_dy });
    if let (Path::Direct | Path::Loops, Some(d)) = (path, dx.as_deref_mut()) {
        if avx512::input_grad(g, dyw, ld_dy, (weight, wt), n, x, d, how) {
            dx = None;
        }
    }
    dwt.fill(T::zero());
    let (plane, pw, taps, margin) = (g.padded_plane(), g.padded_w(), g.kh * g.kw, g.max_shift());
    if dweight.is_some() {
        // dW_t += dYw[.., c0..] · P[.., c0 + d_t..]ᵀ, dot products of rows `width` long, in
        // chunks of whole vectors (the images' planes need not be)
        let total = n * plane;
        for c0 in (0..total).step_by(CHUNK_COLUMNS) {
            let width = CHUNK_COLUMNS.min(total - c0);
            for t in 0..taps {
                let shift = t / g.kw * pw + t % g.kw;
                let dw = &mut dwt[t * g.c_out * g.c_in..][..g.c_out * g.c_in];
                let (a, b) = (&dyw[margin + c0..], &p[c0 + shift..]);
                add_row_products(a, ld_dy, b, ld_p, width, dw, g.c_in);
            }
        }
    }
    let mut k0 = 0;
    while k0 < n {
        let m = g.shifted_chunk().min(n - k0);
        let (c0, width) = (k0 * plane, m * plane);
        if let Some(dx) = dx.as_deref_mut() {
            // Z[(c, t), ..] = Σ_o weight[o, c, t]·dYw[o, c0 - d_max..]: [c_in·taps, c_out] ·
            // [c_out, width + d_max], every tap's product at once (the weight as stored,
            // transposed); then dP[c, q] = Σ_t Z[(c, t), q + d_max - d_t]
            let span = width + margin;
            let product = &mut chunk[..g.c_in * taps * span];
            gemm(
                Trans::Yes,
                Trans::No,
                g.c_in * taps,
                span,
                g.c_out,
                T::one(),
                weight,
                /* lda= */ g.c_in * taps,
                &dyw[c0..],
                /* ldb= */ ld_dy,
                T::zero(),
                product,
                /* ldc= */ span,
            );
            let images = k0 * g.input_len()..(k0 + m) * g.input_len();
            let dx = &mut dx[images.clone()];
            let add = how == Dx::Add;
            vectorize(Unpad {
                g,
                product,
                span,
                dx,
                add,
            });
            if how == Dx::ThroughRelu {
                keep_where_positive(&x[images], dx);
            }
        }
        k0 += m;
    }
    if let Some(dw) = dweight {
        // dweight[o, c, u, v] += dW_t[o, c] with t = u·kw + v
        let (cc, taps) = (g.c_out * g.c_in, g.kh * g.kw);
        for (oc, d) in dw.chunks_exact_mut(taps).enumerate() {
            for (t, d) in d.iter_mut().enumerate() {
                *d += dwt[t * cc + oc];
            }
        }
    }
}

/// `wt[t, o, c] = weight[o, c, t]`: the weight as one `[c_out, c_in]` matrix per tap.
fn by_tap<T: Float>(g: &Conv2dGeom, weight: &[T], wt: &mut [T]) {
    let (cc, taps) = (g.c_out * g.c_in, g.kh * g.kw);
    for (oc, w) in weight.chunks_exact(taps).enumerate() {
        for (t, &v) in w.iter().enumerate() {
            wt[t * cc + oc] = v;
        }
    }
}

/// Lays out `x: [n, c_in, h, w]` as the padded planes `P: [c_in, ld_p]` (the module's doc).
struct Pad<'a, T> {
    g: &'a Conv2dGeom,
    x: &'a [T],
    p: &'a mut [T],
    ld_p: usize,
}

impl<T: Float> Kernel for Pad<'_, T> {
    type Output = ();
    #[inline(always)]
    fn run(self) {
        let Pad { g, x, p, ld_p } = self;
        let (pad, pw, plane, hw) = (g.padding, g.padded_w(), g.padded_plane(), g.h * g.w);
        let n = x.len() / g.input_len();
        for (c, p) in p.chunks_exact_mut(ld_p).enumerate() {
            for k in 0..n {
                let img = &mut p[k * plane..(k + 1) * plane];
                img[..pad * pw].fill(T::zero());
                let src = &x[(k * g.c_in + c) * hw..][..hw];
                let rows = &mut img[pad * pw..];
                if avx512::pad_rows(src, g.w, pad, rows, pw) {
                    continue;
                }
                for (row, src) in rows.chunks_exact_mut(pw).zip(src.chunks_exact(g.w)) {
                    row[..pad].fill(T::zero());
                    row[pad..].copy_from_slice(src);
                }
            }
            p[n * plane..].fill(T::zero());
        }
    }
}

/// Lays out `dy: [n, c_out, out_h, out_w]` as `dYw: [c_out, ld_dy]`: `max_shift` zeros, then
/// each image's wide plane with its junk columns 0.
struct Widen<'a, T> {
    g: &'a Conv2dGeom,
    dy: &'a [T],
    dyw: &'a mut [T],
    ld_dy: usize,
}

impl<T: Float> Kernel for Widen<'_, T> {
    type Output = ();
    #[inline(always)]
    fn run(self) {
        let Widen { g, dy, dyw, ld_dy } = self;
        let (pw, plane, margin) = (g.padded_w(), g.padded_plane(), g.max_shift());
        let (oh, ow) = (g.out_h(), g.out_w());
        let n = dy.len() / g.output_len();
        for (o, row) in dyw.chunks_exact_mut(ld_dy).enumerate() {
            row[..margin].fill(T::zero());
            for k in 0..n {
                let img = &mut row[margin + k * plane..][..plane];
                let src = &dy[(k * g.c_out + o) * oh * ow..][..oh * ow];
                let (rows, below) = img.split_at_mut(oh * pw);
                below.fill(T::zero());
                if avx512::pad_rows(src, ow, 0, rows, pw) {
                    continue;
                }
                for (dst, src) in rows.chunks_exact_mut(pw).zip(src.chunks_exact(ow)) {
                    dst[..ow].copy_from_slice(src);
                    dst[ow..].fill(T::zero());
                }
            }
        }
    }
}

/// `y[k, o, i, j] = product[o, k·plane + i·pw + j] + bias[o]` for the chunk's images.
struct Unwide<'a, T> {
    g: &'a Conv2dGeom,
    product: &'a [T],
    width: usize,
    bias: Option<&'a [T]>,
    y: &'a mut [T],
}

impl<T: Float> Kernel for Unwide<'_, T> {
    type Output = ();
    #[inline(always)]
    fn run(self) {
        let Unwide {
            g,
            product,
            width,
            bias,
            y,
        } = self;
        let (pw, plane, oh, ow) = (g.padded_w(), g.padded_plane(), g.out_h(), g.out_w());
        for (ko, y) in y.chunks_exact_mut(oh * ow).enumerate() {
            let (k, o) = (ko / g.c_out, ko % g.c_out);
            let src = &product[o * width + k * plane..][..oh * pw];
            let b = bias.map_or(T::zero(), |b| b[o]);
            for (dst, src) in y.chunks_exact_mut(ow).zip(src.chunks_exact(pw)) {
                for (d, &s) in dst.iter_mut().zip(src) {
                    *d = s + b;
                }
            }
        }
    }
}

/// `dx[k, c, r, s] (+)= Σ_t Z[(c, t), d_max - d_t + k·plane + (p + r)·pw + p + s]` for the
/// chunk's images: the taps' products shifted back onto the input and summed, over each
/// image's `h` padded rows at once (long vectors, not rows of `w`) into tap 0's row of `Z`
/// (whose shift is 0), then read out row by row.
struct Unpad<'a, T> {
    g: &'a Conv2dGeom,
    product: &'a mut [T],
    span: usize,
    dx: &'a mut [T],
    add: bool,
}

impl<T: Float> Kernel for Unpad<'_, T> {
    type Output = ();
    #[inline(always)]
    fn run(self) {
        let Unpad {
            g,
            product,
            span,
            dx,
            add,
        } = self;
        let (pad, pw, plane, taps) = (g.padding, g.padded_w(), g.padded_plane(), g.kh * g.kw);
        let (margin, rows) = (g.max_shift(), g.h * pw);
        for (kc, dx) in dx.chunks_exact_mut(g.h * g.w).enumerate() {
            let (k, c) = (kc / g.c_in, kc % g.c_in);
            let z = &mut product[c * taps * span..][..taps * span];
            let q = margin + k * plane + pad * pw;
            let (first, others) = z.split_at_mut(span);
            let sum = &mut first[q..][..rows];
            for t in 1..taps {
                let shift = t / g.kw * pw + t % g.kw;
                let src = &others[(t - 1) * span + q - shift..][..rows];
                for (d, &s) in sum.iter_mut().zip(src) {
                    *d += s;
                }
            }
            for (dst, src) in dx.chunks_exact_mut(g.w).zip(sum.chunks_exact(pw)) {
                let src = &src[pad..];
                if add {
                    for (d, &s) in dst.iter_mut().zip(src) {
                        *d += s;
                    }
                } else {
                    dst.copy_from_slice(src);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::assert_close;
    use crate::ops::{conv2d, conv2d_backward, conv2d_backward_overwrite};
    use crate::testing::random_vec;

    /// The shifted kernels' workspace for `n` images, whatever the number of channels.
    fn workspace<T: Float>(g: &Conv2dGeom, n: usize) -> Vec<T> {
        vec![T::from_f64(f64::NAN); n * g.shifted_per_image() + g.shifted_fixed()]
    }

    #[test]
    fn literal_two_channels() {
        // x: 2 channels of 2x2, [[1, 2], [3, 4]] and [[5, 6], [7, 8]]; one 3x3 filter with
        // padding 1 that is 1 at the centre of channel 0 and at the top-left tap (u, v) =
        // (0, 0) of channel 1: y[i, j] = x0[i, j] + x1[i - 1, j - 1]
        //   = [[1 + 0, 2 + 0], [3 + 0, 4 + 5]] = [[1, 2], [3, 9]]
        let g = Conv2dGeom::new(2, 2, 2, 1, 3, 3, 1, 1).unwrap();
        let x: Vec<f64> = (1..=8).map(f64::from).collect();
        let mut w = [0.0; 18];
        (w[4], w[9]) = (1.0, 1.0);
        let mut ws = workspace(&g, 1);
        let mut y = [f64::NAN; 4];
        forward_on(Path::Direct, &g, &x, &w, Some(&[0.5]), 1, &mut ws, &mut y);
        assert_eq!(y, [1.5, 2.5, 3.5, 9.5]);
        // dy = [[1, 2], [3, 4]]: dx0 = dy; dx1[r, s] = dy[r + 1, s + 1] = [[4, 0], [0, 0]];
        // dW[0, 0, u, v] = Σ dy[i, j]·x0[i + u - 1, j + v - 1], at the centre Σ dy·x0 = 30,
        // dW[0, 1, 0, 0] = Σ dy[i, j]·x1[i - 1, j - 1] = dy[1, 1]·x1[0, 0] = 20; db = 10
        let dy = [1.0, 2.0, 3.0, 4.0];
        let (mut dx, mut dw, mut db) = (vec![f64::NAN; 8], vec![0.0; 18], vec![0.0]);
        let grads = (Some(&mut dx[..]), Some(&mut dw[..]), Some(&mut db[..]));
        let args = (&x[..], &w[..], &dy[..], 1);
        backward_on(
            Path::Direct,
            &g,
            args,
            &mut ws,
            Conv2dCols::Kept,
            grads,
            Dx::Overwrite,
        );
        assert_eq!(dx, [1.0, 2.0, 3.0, 4.0, 4.0, 0.0, 0.0, 0.0]);
        assert_eq!((dw[4], dw[9], db[0]), (30.0, 20.0, 10.0));
        // the top-left tap of channel 0 sees x0[i - 1, j - 1]: dy[1, 1]·x0[0, 0] = 4
        assert_eq!(dw[0], 4.0);
    }

    /// The shifted kernels against im2col's ([`conv2d`] for fewer than [`MIN_C_IN`] input
    /// channels): the output, `dx` added, overwritten and through relu, `dweight`, `dbias`.
    fn equals_im2col<T: Float>(tol: f64) {
        let geoms = [
            Conv2dGeom::new(1, 6, 5, 3, 3, 3, 1, 1).unwrap(),
            Conv2dGeom::new(2, 6, 5, 3, 3, 3, 1, 0).unwrap(),
            Conv2dGeom::new(3, 7, 9, 2, 2, 3, 1, 1).unwrap(),
            Conv2dGeom::new(2, 5, 5, 4, 1, 1, 1, 0).unwrap(),
            Conv2dGeom::new(1, 6, 7, 2, 5, 5, 1, 2).unwrap(),
            Conv2dGeom::new(3, 14, 14, 5, 3, 3, 1, 1).unwrap(),
            Conv2dGeom::new(2, 33, 31, 3, 3, 3, 1, 1).unwrap(),
        ];
        for (i, g) in geoms.iter().enumerate() {
            assert!(!g.is_shifted() && g.padding < g.kh && g.padding < g.kw);
            for n in 1..=5 {
                let seed = 1000 + 10 * i as u64 + n as u64;
                let h: Vec<T> = random_vec(seed, n * g.input_len(), -1.0, 1.0);
                let x: Vec<T> = h.iter().map(|&v| v.max(T::zero())).collect();
                let w: Vec<T> = random_vec(seed + 1, g.weight_len(), -1.0, 1.0);
                let b: Vec<T> = random_vec(seed + 2, g.c_out, -1.0, 1.0);
                let dy: Vec<T> = random_vec(seed + 3, n * g.output_len(), -1.0, 1.0);
                let case = format!("{g:?}, n = {n}");
                let mut ws = vec![T::zero(); g.workspace_len(n)];
                let mut expected_y = vec![T::zero(); n * g.output_len()];
                conv2d(g, &x, &w, Some(&b), n, &mut ws, &mut expected_y).unwrap();
                let nan = T::from_f64(f64::NAN);
                let mut ours = workspace::<T>(g, n);
                let mut y = vec![nan; expected_y.len()];
                forward_on(Path::Direct, g, &x, &w, Some(&b), n, &mut ours, &mut y);
                assert_close!(y, expected_y, tol);
                // dx added onto ones, dweight onto twos, dbias onto threes
                let (mut edx, mut edw, mut edb) = (
                    vec![T::one(); x.len()],
                    vec![T::from_f64(2.0); w.len()],
                    vec![T::from_f64(3.0); g.c_out],
                );
                let grads = (Some(&mut edx[..]), Some(&mut edw[..]), Some(&mut edb[..]));
                let (a, bb, c) = grads;
                conv2d_backward(g, &x, &w, &dy, n, &mut ws, Conv2dCols::Kept, a, bb, c).unwrap();
                for cols in [Conv2dCols::Kept, Conv2dCols::Recompute] {
                    if cols == Conv2dCols::Recompute {
                        ours.fill(nan);
                    }
                    let (mut dx, mut dw, mut db) = (
                        vec![T::one(); x.len()],
                        vec![T::from_f64(2.0); w.len()],
                        vec![T::from_f64(3.0); g.c_out],
                    );
                    let grads = (Some(&mut dx[..]), Some(&mut dw[..]), Some(&mut db[..]));
                    let args = (&x[..], &w[..], &dy[..], n);
                    backward_on(Path::Direct, g, args, &mut ours, cols, grads, Dx::Add);
                    assert_close!(dx, edx, tol);
                    assert_close!(dw, edw, tol);
                    assert_close!(db, edb, tol);
                    assert!(dw.iter().all(|v| v.is_finite()), "{case}");
                }
                // dx overwritten, and through relu (x = relu(h)): [x > 0]·dx
                let mut edx = vec![nan; x.len()];
                let grads = (Some(&mut edx[..]), None, None);
                let (a, bb, c) = grads;
                let cols = Conv2dCols::Recompute;
                conv2d_backward_overwrite(g, &x, &w, &dy, n, &mut ws, cols, a, bb, c).unwrap();
                let mut dx = vec![nan; x.len()];
                let (args, grads) = (
                    (&x[..], &w[..], &dy[..], n),
                    (Some(&mut dx[..]), None, None),
                );
                backward_on(Path::Direct, g, args, &mut ours, cols, grads, Dx::Overwrite);
                assert_close!(dx, edx, tol);
                let (args, grads) = (
                    (&x[..], &w[..], &dy[..], n),
                    (Some(&mut dx[..]), None, None),
                );
                backward_on(
                    Path::Direct,
                    g,
                    args,
                    &mut ours,
                    cols,
                    grads,
                    Dx::ThroughRelu,
                );
                let relu: Vec<T> = x
                    .iter()
                    .zip(&edx)
                    .map(|(&x, &d)| if x > T::zero() { d } else { T::zero() })
                    .collect();
                assert_close!(dx, relu, tol);
                assert!(dx.iter().any(|&d| d != T::zero()) && dx.iter().any(|&d| d == T::zero()));
            }
        }
    }

    #[test]
    fn shifted_equals_im2col() {
        equals_im2col::<f64>(1e-12);
        equals_im2col::<f32>(1e-4);
    }

    #[test]
    fn which_geometries_are_shifted() {
        let g = |c, k, s, p| Conv2dGeom::new(c, 14, 14, 32, k, k, s, p).unwrap();
        // the CNN's second convolution; not its first (one channel), not stride 2, not a
        // padding as wide as the kernel
        assert!(g(16, 3, 1, 1).is_shifted() && g(8, 1, 1, 0).is_shifted());
        assert!(!g(1, 3, 1, 1).is_shifted() && !g(7, 3, 1, 1).is_shifted());
        assert!(!g(16, 3, 2, 1).is_shifted() && !g(16, 3, 1, 3).is_shifted());
        // 16 -> 32 channels on 14x14: planes of 15x15, chunks of 5 images, a 3x3 kernel's
        // shifts up to 2·15 + 2; per image P's 16 and dYw's 32 planes
        let g = g(16, 3, 1, 1);
        assert_eq!(
            (g.padded_plane(), g.shifted_chunk(), g.max_shift()),
            (225, 5, 32)
        );
        assert_eq!(g.workspace_per_image(), 48 * 225);
        let fixed = 16 * (3 * 15 + 3) + 32 * 32 + 16 * 9 * (5 * 225 + 32) + 2 * 32 * 16 * 9;
        assert_eq!(g.workspace_fixed(), fixed);
        assert_eq!(g.workspace_len(64), 64 * 48 * 225 + fixed);
    }
}
