//! 2-D convolution (PyTorch's `conv2d`, which is cross-correlation) by im2col + GEMM, the
//! seed's `conv2d`:
//!
//! `y[n, o, i, j] = b[o] + Σ_{c, u, v} w[o, c, u, v] · x[n, c, i·s + u - p, j·s + v - p]`
//!
//! with zero padding `p` on every side and stride `s` in both directions. For one image,
//! `im2col` lays the input out as `cols: [c_in·kh·kw, out_h·out_w]` (row `(c, u, v)`,
//! column `(i, j)`), so that `Y = W·cols` with `W` viewed as `[c_out, c_in·kh·kw]`. Hence
//! `dW += dY·colsᵀ`, `d cols = Wᵀ·dY` (scattered back onto `dx` by `col2im`) and
//! `db[o] += Σ_{n, i, j} dy[n, o, i, j]`.
//!
//! The caller provides the `cols` workspace, [`Conv2dGeom::col_len`] elements, reused image
//! after image. A 1×1 kernel with stride 1 and no padding needs no im2col: the input is
//! multiplied directly.

use crate::blas::{gemm, Trans};
use crate::{check_len, fmt_shape, invalid, Error, Float, Result};

/// The product of `dims`, or `None` when it overflows `usize`.
pub(super) fn checked_numel(dims: &[usize]) -> Option<usize> {
    dims.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d))
}

/// Checks that buffer `what` of `len` elements holds a tensor of shape `dims`, with an error
/// such as ``shape mismatch in conv2d: expected `x` of [2, 3, 8, 8], got 383 elements``.
pub(super) fn check_dims(
    op: &'static str,
    what: &'static str,
    dims: &[usize],
    len: usize,
) -> Result<()> {
    if checked_numel(dims) == Some(len) {
        return Ok(());
    }
    Err(Error::ShapeMismatch {
        op,
        expected: format!("`{what}` of {}", fmt_shape(dims)),
        got: format!("{len} elements"),
    })
}

/// The number of windows of size `k` with stride `s` along a padded length `len + 2p`
/// (PyTorch's floor mode), or 0 when there is none or the geometry is invalid.
pub(super) fn out_len(len: usize, k: usize, s: usize, p: usize) -> usize {
    let padded = len.saturating_add(p.saturating_mul(2));
    match (padded.checked_sub(k), s) {
        (Some(room), s) if s > 0 && k > 0 => room / s + 1,
        _ => 0,
    }
}

/// The shape of a convolution: input `[c_in, h, w]` per image, weight `[c_out, c_in, kh, kw]`,
/// one `stride` and one zero `padding` for both spatial dimensions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Conv2dGeom {
    /// Input channels.
    pub c_in: usize,
    /// Input height.
    pub h: usize,
    /// Input width.
    pub w: usize,
    /// Output channels.
    pub c_out: usize,
    /// Kernel height.
    pub kh: usize,
    /// Kernel width.
    pub kw: usize,
    /// Step between windows, in both directions.
    pub stride: usize,
    /// Zeros added on each side, in both directions.
    pub padding: usize,
}

impl Conv2dGeom {
    /// A checked geometry: every size and the stride must be positive, and the kernel must
    /// fit inside the padded input.
    ///
    /// ```
    /// use nanograd_runtime::ops::Conv2dGeom;
    /// let g = Conv2dGeom::new(1, 28, 28, 8, 3, 3, 2, 1).unwrap();
    /// assert_eq!((g.out_h(), g.out_w()), (14, 14));
    /// assert!(Conv2dGeom::new(1, 28, 28, 8, 3, 3, 0, 1).is_err());
    /// ```
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        c_in: usize,
        h: usize,
        w: usize,
        c_out: usize,
        kh: usize,
        kw: usize,
        stride: usize,
        padding: usize,
    ) -> Result<Self> {
        let g = Self {
            c_in,
            h,
            w,
            c_out,
            kh,
            kw,
            stride,
            padding,
        };
        g.validate()?;
        Ok(g)
    }

    /// Checks the geometry as [`Conv2dGeom::new`] does; the kernels call it too, since the
    /// fields are public.
    pub fn validate(&self) -> Result<()> {
        let op = "conv2d";
        if self.stride == 0 {
            return Err(invalid(op, "stride must be positive, got 0"));
        }
        let sizes = [
            ("c_in", self.c_in),
            ("h", self.h),
            ("w", self.w),
            ("c_out", self.c_out),
            ("kh", self.kh),
            ("kw", self.kw),
        ];
        if let Some((name, _)) = sizes.iter().find(|(_, v)| *v == 0) {
            return Err(invalid(op, format!("`{name}` must be positive, got 0")));
        }
        let (ph, pw) = (
            self.h.saturating_add(self.padding.saturating_mul(2)),
            self.w.saturating_add(self.padding.saturating_mul(2)),
        );
        if self.kh > ph || self.kw > pw {
            return Err(invalid(
                op,
                format!(
                    "kernel {}x{} is larger than the padded input {ph}x{pw} ({}x{} with padding {})",
                    self.kh, self.kw, self.h, self.w, self.padding
                ),
            ));
        }
        let (oh, ow) = (self.out_h(), self.out_w());
        let fits = checked_numel(&[self.c_in, self.kh, self.kw, oh, ow]).is_some()
            && checked_numel(&[self.c_in, self.h, self.w]).is_some()
            && checked_numel(&[self.c_out, oh, ow]).is_some()
            && checked_numel(&[self.c_out, self.c_in, self.kh, self.kw]).is_some();
        if !fits {
            return Err(invalid(
                op,
                format!("{self:?} has more elements than fit in memory"),
            ));
        }
        Ok(())
    }

    /// Output height: `(h + 2·padding - kh) / stride + 1` (0 for an invalid geometry).
    pub fn out_h(&self) -> usize {
        out_len(self.h, self.kh, self.stride, self.padding)
    }

    /// Output width: `(w + 2·padding - kw) / stride + 1` (0 for an invalid geometry).
    pub fn out_w(&self) -> usize {
        out_len(self.w, self.kw, self.stride, self.padding)
    }

    /// Elements of the im2col workspace for one image: `c_in·kh·kw·out_h·out_w`.
    pub fn col_len(&self) -> usize {
        self.c_in * self.kh * self.kw * self.out_h() * self.out_w()
    }

    /// Elements of one input image: `c_in·h·w`.
    pub fn input_len(&self) -> usize {
        self.c_in * self.h * self.w
    }

    /// Elements of one output image: `c_out·out_h·out_w`.
    pub fn output_len(&self) -> usize {
        self.c_out * self.out_h() * self.out_w()
    }

    /// Elements of the weight: `c_out·c_in·kh·kw`.
    pub fn weight_len(&self) -> usize {
        self.c_out * self.c_in * self.kh * self.kw
    }

    /// A 1×1 kernel with stride 1 and no padding: `cols` would be a copy of the input.
    fn is_pointwise(&self) -> bool {
        self.kh == 1 && self.kw == 1 && self.stride == 1 && self.padding == 0
    }

    /// Checks the geometry and the lengths of `x`, `weight`, `cols` and a tensor of output
    /// shape (`y` or `dy`) for `n` images.
    fn check_buffers(
        &self,
        n: usize,
        x: usize,
        weight: usize,
        cols: usize,
        out: (&'static str, usize),
    ) -> Result<()> {
        self.validate()?;
        let op = "conv2d";
        check_dims(op, "x", &[n, self.c_in, self.h, self.w], x)?;
        check_dims(
            op,
            "weight",
            &[self.c_out, self.c_in, self.kh, self.kw],
            weight,
        )?;
        check_len(op, "cols", self.col_len(), cols)?;
        check_dims(
            op,
            out.0,
            &[n, self.c_out, self.out_h(), self.out_w()],
            out.1,
        )
    }
}

/// The range `lo..hi` of output positions whose tap at kernel offset `k` lands inside an
/// input of length `len` (rather than in the padding): `0 <= o·s + k - p < len`.
fn valid_outputs(k: usize, len: usize, s: usize, p: usize, out: usize) -> (usize, usize) {
    let lo = if k >= p { 0 } else { (p - k).div_ceil(s) };
    let hi = if len + p > k {
        (len + p - k).div_ceil(s).min(out)
    } else {
        0
    };
    (lo.min(hi), hi)
}

/// Lays one image `x: [c_in, h, w]` out as `cols: [c_in·kh·kw, out_h·out_w]`.
fn im2col<T: Float>(g: &Conv2dGeom, x: &[T], cols: &mut [T]) {
    let (oh, ow, s, p) = (g.out_h(), g.out_w(), g.stride, g.padding);
    let mut rows = cols.chunks_exact_mut(oh * ow);
    for plane in x.chunks_exact(g.h * g.w) {
        for u in 0..g.kh {
            let (i_lo, i_hi) = valid_outputs(u, g.h, s, p, oh);
            for v in 0..g.kw {
                let (j_lo, j_hi) = valid_outputs(v, g.w, s, p, ow);
                let row = rows.next().expect("cols holds c_in·kh·kw rows");
                row[..i_lo * ow].fill(T::zero());
                row[i_hi * ow..].fill(T::zero());
                for i in i_lo..i_hi {
                    let src = &plane[(i * s + u - p) * g.w..][..g.w];
                    let dst = &mut row[i * ow..][..ow];
                    dst[..j_lo].fill(T::zero());
                    dst[j_hi..].fill(T::zero());
                    for j in j_lo..j_hi {
                        dst[j] = src[j * s + v - p];
                    }
                }
            }
        }
    }
}

/// The adjoint of [`im2col`]: adds every entry of `cols` onto the input position it was
/// read from (entries that came from the padding are dropped).
fn col2im<T: Float>(g: &Conv2dGeom, cols: &[T], dx: &mut [T]) {
    let (oh, ow, s, p) = (g.out_h(), g.out_w(), g.stride, g.padding);
    let mut rows = cols.chunks_exact(oh * ow);
    for plane in dx.chunks_exact_mut(g.h * g.w) {
        for u in 0..g.kh {
            let (i_lo, i_hi) = valid_outputs(u, g.h, s, p, oh);
            for v in 0..g.kw {
                let (j_lo, j_hi) = valid_outputs(v, g.w, s, p, ow);
                let row = rows.next().expect("cols holds c_in·kh·kw rows");
                for i in i_lo..i_hi {
                    let dst = &mut plane[(i * s + u - p) * g.w..][..g.w];
                    let src = &row[i * ow..][..ow];
                    for j in j_lo..j_hi {
                        dst[j * s + v - p] += src[j];
                    }
                }
            }
        }
    }
}

/// `y = conv2d(x, weight) + bias` for `x: [n, c_in, h, w]`, `weight: [c_out, c_in, kh, kw]`,
/// `bias: [c_out]` (or none) and `y: [n, c_out, out_h, out_w]`; `n = 1` is the seed's single
/// image `[c_in, h, w]`. `cols` is a workspace of [`Conv2dGeom::col_len`] elements.
///
/// ```
/// use nanograd_runtime::ops::{conv2d, Conv2dGeom};
/// // a 2x2 sum filter over a 3x3 image: each output is the sum of a 2x2 block, plus 1
/// let g = Conv2dGeom::new(1, 3, 3, 1, 2, 2, 1, 0).unwrap();
/// let x = [1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0];
/// let mut cols = vec![0.0; g.col_len()];
/// let mut y = [0.0f32; 4];
/// conv2d(&g, &x, &[1.0; 4], Some(&[1.0]), 1, &mut cols, &mut y).unwrap();
/// assert_eq!(y, [13.0, 17.0, 25.0, 29.0]);
/// ```
#[allow(clippy::too_many_arguments)]
pub fn conv2d<T: Float>(
    g: &Conv2dGeom,
    x: &[T],
    weight: &[T],
    bias: Option<&[T]>,
    n: usize,
    cols: &mut [T],
    y: &mut [T],
) -> Result<()> {
    g.check_buffers(n, x.len(), weight.len(), cols.len(), ("y", y.len()))?;
    if let Some(b) = bias {
        check_len("conv2d", "bias", g.c_out, b.len())?;
    }
    let ohw = g.out_h() * g.out_w();
    let k = g.c_in * g.kh * g.kw;
    for (x_img, y_img) in x
        .chunks_exact(g.input_len())
        .zip(y.chunks_exact_mut(g.output_len()))
    {
        let beta = match bias {
            Some(b) => {
                for (row, &bo) in y_img.chunks_exact_mut(ohw).zip(b) {
                    row.fill(bo);
                }
                T::one()
            }
            None => T::zero(),
        };
        let cols: &[T] = if g.is_pointwise() {
            x_img
        } else {
            im2col(g, x_img, cols);
            cols
        };
        // [c_out, k] · [k, ohw]
        gemm(
            Trans::No,
            Trans::No,
            g.c_out,
            ohw,
            k,
            T::one(),
            weight,
            /* lda= */ k,
            cols,
            /* ldb= */ ohw,
            beta,
            y_img,
            /* ldc= */ ohw,
        );
    }
    Ok(())
}

/// The backward pass of [`conv2d`]: `dweight += dY·colsᵀ`, `dx += col2im(weightᵀ·dY)` and
/// `dbias[o] += Σ dy[.., o, .., ..]`, image after image; `None` skips a gradient. `cols`
/// is the same workspace as the forward pass's; it is overwritten.
#[allow(clippy::too_many_arguments)]
pub fn conv2d_backward<T: Float>(
    g: &Conv2dGeom,
    x: &[T],
    weight: &[T],
    dy: &[T],
    n: usize,
    cols: &mut [T],
    mut dx: Option<&mut [T]>,
    mut dweight: Option<&mut [T]>,
    dbias: Option<&mut [T]>,
) -> Result<()> {
    g.check_buffers(n, x.len(), weight.len(), cols.len(), ("dy", dy.len()))?;
    if let Some(dx) = &dx {
        check_dims("conv2d", "dx", &[n, g.c_in, g.h, g.w], dx.len())?;
    }
    if let Some(dw) = &dweight {
        check_dims(
            "conv2d",
            "dweight",
            &[g.c_out, g.c_in, g.kh, g.kw],
            dw.len(),
        )?;
    }
    if let Some(db) = &dbias {
        check_len("conv2d", "dbias", g.c_out, db.len())?;
    }
    let ohw = g.out_h() * g.out_w();
    let k = g.c_in * g.kh * g.kw;
    let (in_len, out_len) = (g.input_len(), g.output_len());
    for (img, (x_img, dy_img)) in x
        .chunks_exact(in_len)
        .zip(dy.chunks_exact(out_len))
        .enumerate()
    {
        if let Some(dw) = dweight.as_deref_mut() {
            let cols: &[T] = if g.is_pointwise() {
                x_img
            } else {
                im2col(g, x_img, cols);
                cols
            };
            // [c_out, ohw] · [ohw, k]
            gemm(
                Trans::No,
                Trans::Yes,
                g.c_out,
                k,
                ohw,
                T::one(),
                dy_img,
                /* lda= */ ohw,
                cols,
                /* ldb= */ ohw,
                T::one(),
                dw,
                /* ldc= */ k,
            );
        }
        if let Some(dx) = dx.as_deref_mut() {
            let dx_img = &mut dx[img * in_len..][..in_len];
            // [k, c_out] · [c_out, ohw], straight onto dx when cols would be the input itself
            let (out, beta) = if g.is_pointwise() {
                (&mut *dx_img, T::one())
            } else {
                (&mut *cols, T::zero())
            };
            gemm(
                Trans::Yes,
                Trans::No,
                k,
                ohw,
                g.c_out,
                T::one(),
                weight,
                /* lda= */ k,
                dy_img,
                /* ldb= */ ohw,
                beta,
                out,
                /* ldc= */ ohw,
            );
            if !g.is_pointwise() {
                col2im(g, cols, dx_img);
            }
        }
    }
    if let Some(db) = dbias {
        for dy_img in dy.chunks_exact(out_len) {
            for (dbo, row) in db.iter_mut().zip(dy_img.chunks_exact(ohw)) {
                *dbo += row.iter().copied().sum::<T>();
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
    fn literal_stride_1() {
        // x = [[1, 2, 3], [4, 5, 6], [7, 8, 9]], W = [[1, 2], [0, -1]], b = 0.5
        // y[i, j] = x[i, j] + 2 x[i, j+1] - x[i+1, j+1] + 0.5
        //         = [[1+4-5, 2+6-6], [4+10-8, 5+12-9]] + 0.5 = [[0.5, 2.5], [6.5, 8.5]]
        let g = Conv2dGeom::new(1, 3, 3, 1, 2, 2, 1, 0).unwrap();
        let x: Vec<f64> = (1..=9).map(f64::from).collect();
        let w = [1.0, 2.0, 0.0, -1.0];
        let mut cols = vec![f64::NAN; g.col_len()];
        let mut y = [f64::NAN; 4];
        conv2d(&g, &x, &w, Some(&[0.5]), 1, &mut cols, &mut y).unwrap();
        assert_close!(y, [0.5f64, 2.5, 6.5, 8.5]);
        // dy = [[1, 0], [0, 2]]
        // dW[u, v] = x[u, v] + 2 x[1+u, 1+v] = [[1+10, 2+12], [4+16, 5+18]] = [[11, 14], [20, 23]]
        // dx = W placed at (0, 0) plus 2W placed at (1, 1) = [[1, 2, 0], [0, -1+2, 4], [0, 0, -2]]
        // db = 1 + 2 = 3
        let dy = [1.0, 0.0, 0.0, 2.0];
        let (mut dx, mut dw, mut db) = (vec![0.0; 9], [0.0; 4], [10.0]);
        conv2d_backward(
            &g,
            &x,
            &w,
            &dy,
            1,
            &mut cols,
            Some(&mut dx),
            Some(&mut dw),
            Some(&mut db),
        )
        .unwrap();
        assert_close!(dw, [11.0f64, 14.0, 20.0, 23.0]);
        assert_close!(dx, [1.0f64, 2.0, 0.0, 0.0, 1.0, 4.0, 0.0, 0.0, -2.0]);
        assert_close!(db, [13.0f64]);
    }

    #[test]
    fn literal_padding_1_stride_2_f32() {
        // a 3x3 box filter over x = [[1, 2, 3], [4, 5, 6], [7, 8, 9]] with padding 1, stride 2:
        // out = (3 + 2 - 3) / 2 + 1 = 2; windows centred on the corners sum 2x2 blocks:
        // [[1+2+4+5, 2+3+5+6], [4+5+7+8, 5+6+8+9]] = [[12, 16], [24, 28]]
        let g = Conv2dGeom::new(1, 3, 3, 1, 3, 3, 2, 1).unwrap();
        assert_eq!((g.out_h(), g.out_w(), g.col_len()), (2, 2, 36));
        let x: Vec<f32> = (1..=9).map(|v| v as f32).collect();
        let w = [1.0f32; 9];
        let mut cols = vec![0.0f32; g.col_len()];
        let mut y = [0.0f32; 4];
        conv2d(&g, &x, &w, None, 1, &mut cols, &mut y).unwrap();
        assert_close!(y, [12.0f32, 16.0, 24.0, 28.0]);
        // dy = 1: dx counts the windows covering each pixel: corners 1, edges 2, centre 4.
        // Tap (u, v) reads rows {2i+u-1} ∩ [0, 3) = {1}, {0, 2}, {1} for u = 0, 1, 2 (same for
        // columns), so dW = [[5, 4+6, 5], [2+8, 1+3+7+9, 10], [5, 10, 5]].
        let (mut dx, mut dw) = (vec![0.0f32; 9], [0.0f32; 9]);
        let dy = [1.0f32; 4];
        conv2d_backward(
            &g,
            &x,
            &w,
            &dy,
            1,
            &mut cols,
            Some(&mut dx),
            Some(&mut dw),
            None,
        )
        .unwrap();
        assert_close!(dx, [1.0f32, 2.0, 1.0, 2.0, 4.0, 2.0, 1.0, 2.0, 1.0]);
        assert_close!(dw, [5.0f32, 10.0, 5.0, 10.0, 20.0, 10.0, 5.0, 10.0, 5.0]);
    }

    /// Direct evaluation of the formula in the module's doc comment, as a reference.
    fn naive(g: &Conv2dGeom, x: &[f64], w: &[f64], b: &[f64], n: usize) -> Vec<f64> {
        let (oh, ow) = (g.out_h(), g.out_w());
        let mut y = vec![0.0; n * g.c_out * oh * ow];
        for img in 0..n {
            for o in 0..g.c_out {
                for i in 0..oh {
                    for j in 0..ow {
                        let mut acc = b[o];
                        for c in 0..g.c_in {
                            for u in 0..g.kh {
                                for v in 0..g.kw {
                                    let r = (i * g.stride + u) as isize - g.padding as isize;
                                    let s = (j * g.stride + v) as isize - g.padding as isize;
                                    if r < 0 || s < 0 || r >= g.h as isize || s >= g.w as isize {
                                        continue;
                                    }
                                    let xi =
                                        ((img * g.c_in + c) * g.h + r as usize) * g.w + s as usize;
                                    let wi = ((o * g.c_in + c) * g.kh + u) * g.kw + v;
                                    acc += w[wi] * x[xi];
                                }
                            }
                        }
                        y[((img * g.c_out + o) * oh + i) * ow + j] = acc;
                    }
                }
            }
        }
        y
    }

    /// Compares with [`naive`] and checks every gradient by central differences.
    fn check(g: Conv2dGeom, n: usize, seed: u64) {
        let x: Vec<f64> = random_vec(seed, n * g.input_len(), -1.0, 1.0);
        let w: Vec<f64> = random_vec(seed + 1, g.weight_len(), -1.0, 1.0);
        let b: Vec<f64> = random_vec(seed + 2, g.c_out, -1.0, 1.0);
        let u: Vec<f64> = random_vec(seed + 3, n * g.output_len(), -1.0, 1.0);
        let mut cols = vec![0.0; g.col_len()];
        let run = |x: &[f64], w: &[f64], b: &[f64], cols: &mut [f64]| {
            let mut y = vec![f64::NAN; n * g.output_len()];
            conv2d(&g, x, w, Some(b), n, cols, &mut y).unwrap();
            y
        };
        assert_close!(run(&x, &w, &b, &mut cols), naive(&g, &x, &w, &b, n), 1e-12);
        // gradients accumulate onto what the buffers held
        let (mut dx, mut dw, mut db) = (vec![1.0; x.len()], vec![1.0; w.len()], vec![1.0; b.len()]);
        conv2d_backward(
            &g,
            &x,
            &w,
            &u,
            n,
            &mut cols,
            Some(&mut dx),
            Some(&mut dw),
            Some(&mut db),
        )
        .unwrap();
        let minus_one = |v: Vec<f64>| v.into_iter().map(|g| g - 1.0).collect::<Vec<_>>();
        let (dx, dw, db) = (minus_one(dx), minus_one(dw), minus_one(db));
        let mut cols2 = cols.clone();
        let mut loss = |x: &[f64], w: &[f64], b: &[f64]| {
            let y = run(x, w, b, &mut cols2);
            y.iter().zip(&u).map(|(p, q)| p * q).sum::<f64>()
        };
        assert_gradient("conv2d dx", |x| loss(x, &w, &b), &x, &dx, 1e-7);
        assert_gradient("conv2d dweight", |w| loss(&x, w, &b), &w, &dw, 1e-7);
        assert_gradient("conv2d dbias", |b| loss(&x, &w, b), &b, &db, 1e-7);
    }

    #[test]
    fn gradcheck() {
        check(Conv2dGeom::new(2, 5, 4, 3, 3, 3, 1, 1).unwrap(), 2, 1);
        check(Conv2dGeom::new(2, 6, 7, 3, 3, 3, 2, 1).unwrap(), 1, 10);
        check(Conv2dGeom::new(1, 5, 6, 2, 2, 3, 2, 0).unwrap(), 2, 20);
        check(Conv2dGeom::new(3, 4, 4, 2, 1, 1, 1, 0).unwrap(), 2, 30); // pointwise
        check(Conv2dGeom::new(2, 3, 3, 2, 1, 1, 2, 1).unwrap(), 1, 40); // only padding in corners
        check(Conv2dGeom::new(1, 2, 2, 1, 4, 4, 3, 2).unwrap(), 2, 50); // kernel = padded input
    }

    #[test]
    fn bad_geometry_and_lengths_are_errors() {
        let err = Conv2dGeom::new(1, 5, 5, 1, 3, 3, 0, 0).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid argument to conv2d: stride must be positive, got 0"
        );
        let err = Conv2dGeom::new(1, 5, 4, 1, 3, 7, 1, 1).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid argument to conv2d: kernel 3x7 is larger than the padded input 7x6 (5x4 with padding 1)"
        );
        let err = Conv2dGeom::new(0, 5, 5, 1, 3, 3, 1, 0).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid argument to conv2d: `c_in` must be positive, got 0"
        );
        assert!(Conv2dGeom::new(1, usize::MAX, usize::MAX, 1, 1, 1, 1, 0).is_err());

        let g = Conv2dGeom::new(3, 8, 8, 4, 3, 3, 1, 1).unwrap();
        let (x, w) = (vec![0.0f32; 2 * 3 * 64], vec![0.0f32; g.weight_len()]);
        let (mut cols, mut y) = (vec![0.0f32; g.col_len()], vec![0.0f32; 2 * g.output_len()]);
        let err = conv2d(&g, &x[1..], &w, None, 2, &mut cols, &mut y).unwrap_err();
        assert_eq!(
            err.to_string(),
            "shape mismatch in conv2d: expected `x` of [2, 3, 8, 8], got 383 elements"
        );
        let err = conv2d(&g, &x, &w, None, 2, &mut cols[1..], &mut y).unwrap_err();
        assert_eq!(
            err.to_string(),
            "length mismatch in conv2d: `cols` has 1727 elements, expected 1728"
        );
        let err = conv2d(&g, &x, &w, Some(&[0.0; 3]), 2, &mut cols, &mut y).unwrap_err();
        assert!(err
            .to_string()
            .contains("`bias` has 3 elements, expected 4"));
        let err = conv2d(&g, &x, &w, None, 2, &mut cols, &mut y[..10]).unwrap_err();
        assert!(err.to_string().contains("`y` of [2, 4, 8, 8]"), "{err}");
        let mut dw = vec![0.0f32; 5];
        let r = conv2d_backward(&g, &x, &w, &y, 2, &mut cols, None, Some(&mut dw), None);
        assert!(r
            .unwrap_err()
            .to_string()
            .contains("`dweight` of [4, 3, 3, 3]"));
        // a geometry built without `new` is checked by the kernels too
        let bad = Conv2dGeom { stride: 0, ..g };
        assert!(conv2d(&bad, &x, &w, None, 2, &mut cols, &mut y).is_err());
    }
}
