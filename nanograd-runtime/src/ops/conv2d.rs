//! 2-D convolution (PyTorch's `conv2d`, which is cross-correlation) by im2col + GEMM, the
//! seed's `conv2d`:
//!
//! `y[n, o, i, j] = b[o] + Σ_{c, u, v} w[o, c, u, v] · x[n, c, i·s + u - p, j·s + v - p]`
//!
//! with zero padding `p` on every side and stride `s` in both directions. `im2col` lays the
//! batch out as `cols: [c_in·kh·kw, n·out_h·out_w]` (row `(c, u, v)`, column `(n, i, j)`), so
//! that `Y = W·cols` convolves every image, with `W` viewed as `[c_out, c_in·kh·kw]` and `Y`
//! as `[c_out, n·out_h·out_w]`. Hence `dW += dY·colsᵀ`, `d cols = Wᵀ·dY` (scattered back
//! onto `dx` by `col2im`) and `db[o] += Σ_{n, i, j} dy[n, o, i, j]`.
//!
//! The kernels walk the batch in chunks of images (one image when its output plane is
//! large, else up to about 1024 output columns, preferably a whole number of 16-lane
//! vectors): im2col, one GEMM over the chunk's columns, and
//! the reordering between `Y`'s layout `[c_out, images, out_h·out_w]` and `y`'s
//! `[images, c_out, out_h, out_w]` (none for one image), so that a chunk stays in cache.
//!
//! Stride-1 convolutions of 8 input channels or more (padding below the kernel) take
//! another way, without im2col: one GEMM per tap on shifted views of one zero-padded copy
//! of the input (`conv2d/shifted.rs`); their workspace holds that copy instead of the
//! columns, and [`Conv2dCols`] means that copy for them. For `f32` on AVX-512 the GEMMs on
//! that copy give way to direct loops that keep their sums in registers
//! (`conv2d/avx512.rs`).
//!
//! Convolutions of one input channel with a 3 × 3 kernel at stride 1 (an image network's
//! first layer) take neither way for `f32` on AVX-512: direct loops read `x` and write `y`
//! once, and the backward pass takes the weight's and the bias's gradients from `x` and
//! `dy` (`conv2d/avx512/single.rs`); they leave the workspace as it was, unused.
//!
//! # The workspace
//!
//! The caller provides one workspace of [`Conv2dGeom::workspace_len`]`(n)` =
//! `n · workspace_per_image() + workspace_fixed()` elements: first the columns of all `n`
//! images, then the weight's gradient summed over the chunks, scratch for planes split by the stride,
//! and one chunk's `Y` (or `dY`) before it is reordered. [`conv2d`] leaves `x`'s columns in
//! it, so that [`conv2d_backward`] called next with [`Conv2dCols::Kept`] computes `dweight`
//! from them instead of laying them out again; see [`Conv2dCols`] for the exact contract,
//! and [`Conv2dCols::Recompute`] for a backward pass on its own.

// the shifted convolutions' direct loops in sixteen `f32` lanes
#[cfg(target_arch = "x86_64")]
mod avx512;
mod im2col;
mod products;
mod rows;
mod shifted;

/// Off x86-64 the shifted convolutions always run as GEMMs: the direct loops decline.
#[cfg(not(target_arch = "x86_64"))]
mod avx512 {
    use super::{Conv2dGeom, Dx};
    use crate::Float;

    #[allow(clippy::too_many_arguments)]
    pub(super) fn forward<T: Float>(
        _: &Conv2dGeom,
        _: &[T],
        _: usize,
        _: (&[T], &mut [T]),
        _: Option<&[T]>,
        _: usize,
        _: &mut [T],
    ) -> bool {
        false
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn input_grad<T: Float>(
        _: &Conv2dGeom,
        _: &[T],
        _: usize,
        _: (&[T], &mut [T]),
        _: usize,
        _: &[T],
        _: &mut [T],
        _: Dx,
    ) -> bool {
        false
    }

    pub(super) fn pad_rows<T: Float>(_: &[T], _: usize, _: usize, _: &mut [T], _: usize) -> bool {
        false
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn winograd_forward<T: Float>(
        _: &Conv2dGeom,
        _: &[T],
        _: usize,
        _: &[T],
        _: Option<&[T]>,
        _: usize,
        _: &mut [T],
        _: &mut [T],
    ) -> bool {
        false
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn winograd_input_grad_dy<T: Float>(
        _: &Conv2dGeom,
        _: &[T],
        _: &[T],
        _: usize,
        _: &[T],
        _: &mut [T],
        _: &mut [T],
        _: Dx,
    ) -> bool {
        false
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn winograd_weight_grad<T: Float>(
        _: &Conv2dGeom,
        _: &[T],
        _: &[T],
        _: usize,
        _: usize,
        _: &mut [T],
        _: Option<&mut [T]>,
        _: &mut [T],
    ) -> bool {
        false
    }

    pub(super) fn single_forward<T: Float>(
        _: &Conv2dGeom,
        _: &[T],
        _: &[T],
        _: Option<&[T]>,
        _: usize,
        _: &mut [T],
    ) -> bool {
        false
    }

    pub(super) fn single_weight_grad<T: Float>(
        _: &Conv2dGeom,
        _: &[T],
        _: &[T],
        _: usize,
        _: Option<&mut [T]>,
        _: Option<&mut [T]>,
    ) -> bool {
        false
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn add_weight_grad<T: Float>(
        _: &Conv2dGeom,
        _: &[T],
        _: &[T],
        _: usize,
        _: usize,
        _: (&mut [T], &mut [T]),
        _: Option<&mut [T]>,
        _: &mut [T],
    ) -> bool {
        false
    }
}

use super::relu::keep_where_positive;
use crate::blas::{gemm, gemm_bias, Trans};
use crate::{check_len, fmt_shape, invalid, Error, Float, Result};
use im2col::{col2im_batch, im2col_batch};
use products::add_row_products;
use rows::{add_row_sums, swap_leading};

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
pub(super) const fn out_len(len: usize, k: usize, s: usize, p: usize) -> usize {
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
            && checked_numel(&[self.c_out, self.c_in, self.kh, self.kw]).is_some()
            && (!self.is_shifted() || self.shifted_fits());
        if !fits {
            return Err(invalid(
                op,
                format!("{self:?} has more elements than fit in memory"),
            ));
        }
        Ok(())
    }

    /// Output height: `(h + 2·padding - kh) / stride + 1` (0 for an invalid geometry).
    pub const fn out_h(&self) -> usize {
        out_len(self.h, self.kh, self.stride, self.padding)
    }

    /// Output width: `(w + 2·padding - kw) / stride + 1` (0 for an invalid geometry).
    pub const fn out_w(&self) -> usize {
        out_len(self.w, self.kw, self.stride, self.padding)
    }

    /// Elements of the im2col workspace for one image: `c_in·kh·kw·out_h·out_w`.
    pub const fn col_len(&self) -> usize {
        self.c_in * self.kh * self.kw * self.out_h() * self.out_w()
    }

    /// Elements of one input image: `c_in·h·w`.
    pub const fn input_len(&self) -> usize {
        self.c_in * self.h * self.w
    }

    /// Elements of one output image: `c_out·out_h·out_w`.
    pub const fn output_len(&self) -> usize {
        self.c_out * self.out_h() * self.out_w()
    }

    /// Elements of the weight: `c_out·c_in·kh·kw`.
    pub const fn weight_len(&self) -> usize {
        self.c_out * self.c_in * self.kh * self.kw
    }

    /// Elements of the workspace of [`conv2d`] and [`conv2d_backward`] for `n` images:
    /// `n · workspace_per_image() + workspace_fixed()`, exactly linear in `n` (saturating at
    /// `usize::MAX`, which no buffer can match, should that overflow).
    ///
    /// ```
    /// use nanograd_runtime::ops::Conv2dGeom;
    /// let g = Conv2dGeom::new(8, 28, 28, 16, 3, 3, 2, 1).unwrap();
    /// // per image: its columns [8·3·3, 14·14]; fixed: the weight's gradient,
    /// // a 28x28 plane split by the stride and merged back, the outputs of 6 images
    /// assert_eq!(g.workspace_per_image(), 72 * 196);
    /// assert_eq!(g.workspace_fixed(), 16 * 72 + 2 * 28 * 28 + 6 * 16 * 196);
    /// assert_eq!(g.workspace_len(32), 32 * g.workspace_per_image() + g.workspace_fixed());
    /// // sizes known while compiling
    /// const G: Conv2dGeom = Conv2dGeom {
    ///     c_in: 1, h: 28, w: 28, c_out: 8, kh: 3, kw: 3, stride: 1, padding: 1,
    /// };
    /// const PER_IMAGE: usize = G.workspace_per_image();
    /// const FIXED: usize = G.workspace_fixed();
    /// assert_eq!((PER_IMAGE, FIXED), (9 * 784, 8 * 9));
    /// ```
    pub const fn workspace_len(&self, n: usize) -> usize {
        match n.checked_mul(self.workspace_per_image()) {
            Some(len) => len.saturating_add(self.workspace_fixed()),
            None => usize::MAX,
        }
    }

    /// Workspace elements per image: its columns, [`Conv2dGeom::col_len`]
    /// (`c_in·kh·kw·out_h·out_w`); for the shifted GEMMs of a stride-1 convolution of 8
    /// channels or more (the module's doc), its padded input and output gradient planes,
    /// `(c_in + c_out)·(h + p)·(w + p)`.
    pub const fn workspace_per_image(&self) -> usize {
        if self.is_shifted() {
            return self.shifted_per_image();
        }
        self.col_len()
    }

    /// Workspace elements that do not grow with the batch, `weight + phases + chunk_out`:
    ///
    /// - `weight = c_out·c_in·kh·kw`, the weight's gradient summed over the chunks;
    /// - `phases = 2·h·w` when `stride >= 2` and the output is the input divided by the
    ///   stride exactly (`out_h·stride = h` and `out_w·stride = w`), else 0: one input plane
    ///   split by the stride and one merged back;
    /// - `chunk_out = m·c_out·out_h·out_w` when the GEMMs run on chunks of `m > 1` images,
    ///   else 0, where with `ohw = out_h·out_w`, `m = 1` if `ohw >= 256` and `ohw` is a
    ///   multiple of 16, else `m = ⌈1024 / ohw⌉`: one chunk's output before it is
    ///   reordered.
    ///
    /// For the shifted GEMMs (the module's doc) instead: the padded input's tail rows, the
    /// output gradient's leading zeros, one chunk's product, the weight by tap and its
    /// gradient by tap (`conv2d/shifted.rs`).
    ///
    /// A `const fn`, like [`Conv2dGeom::workspace_per_image`]: generated code may size its
    /// buffers with them in constants.
    pub const fn workspace_fixed(&self) -> usize {
        if self.is_shifted() {
            return self.shifted_fixed();
        }
        let chunk = self.chunk_images();
        let chunk_out = if chunk > 1 {
            chunk * self.output_len()
        } else {
            0
        };
        self.weight_len() + self.phase_len() + chunk_out
    }

    /// The most images that one GEMM covers (`Chunks::new` takes fewer when their outputs
    /// fill whole vectors). The kernels run chunk after chunk (columns, GEMMs, reordering),
    /// so that a chunk's columns stay in cache between the steps. One image
    /// when its output plane is long and a whole number of 16-lane vectors: the GEMM then
    /// runs as fast as for a whole batch and writes straight into `y`. Otherwise enough
    /// images for 1024 output columns: measured with the `gemm` crate, narrower GEMMs on
    /// short or ragged planes run up to 1.5 times slower, wider ones no faster.
    const fn chunk_images(&self) -> usize {
        let ohw = self.out_h() * self.out_w();
        if ohw == 0 || (ohw >= 256 && ohw.is_multiple_of(16)) {
            1
        } else {
            1024usize.div_ceil(ohw)
        }
    }

    /// The workspace of `n` images cut into its parts: the columns, the weight's gradient,
    /// the phase planes and a chunk's output.
    fn split_workspace<'a, T>(&self, n: usize, ws: &'a mut [T]) -> [&'a mut [T]; 4] {
        let (cols, rest) = ws.split_at_mut(n * self.col_len());
        let (dwt, rest) = rest.split_at_mut(self.weight_len());
        let (phases, out) = rest.split_at_mut(self.phase_len());
        [cols, dwt, phases, out]
    }

    /// Checks the geometry and the lengths of `x`, `weight`, the workspace and a tensor of
    /// output shape (`y` or `dy`) for `n` images.
    fn check_buffers(
        &self,
        n: usize,
        x: usize,
        weight: usize,
        workspace: usize,
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
        check_dims(
            op,
            out.0,
            &[n, self.c_out, self.out_h(), self.out_w()],
            out.1,
        )?;
        check_len(op, "workspace", self.workspace_len(n), workspace)
    }
}

/// What the workspace handed to [`conv2d_backward`] holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Conv2dCols {
    /// `x`'s columns, as [`conv2d`] left them. The caller promises that the workspace was
    /// last written by a `conv2d` call with the same geometry, the same `n` and the same
    /// values of `x` (the weight and bias may differ since), or after it only by
    /// `conv2d_backward` calls that did not ask for `dx`. The backward pass then computes
    /// `dweight` from these columns; `x` itself is not read, except by the direct loops of
    /// one input channel (the module's doc), which keep no columns and read `x`. Generated code passes this:
    /// each convolution has a workspace of its own, and its backward pass runs once, after
    /// the training forward pass of the same batch.
    Kept,
    /// Anything: the backward pass lays out `x`'s columns itself when `dweight` is asked for.
    /// For a backward pass with no forward pass before it, or one after a backward pass that
    /// computed `dx` (which overwrites the columns).
    Recompute,
}

/// `y = conv2d(x, weight) + bias` for `x: [n, c_in, h, w]`, `weight: [c_out, c_in, kh, kw]`,
/// `bias: [c_out]` (or none) and `y: [n, c_out, out_h, out_w]`; `n = 1` is the seed's single
/// image `[c_in, h, w]`. `workspace` has [`Conv2dGeom::workspace_len`]`(n)` elements; the
/// call leaves `x`'s columns in it for [`conv2d_backward`] with [`Conv2dCols::Kept`].
///
/// ```
/// use nanograd_runtime::ops::{conv2d, Conv2dGeom};
/// // a 2x2 sum filter over a 3x3 image: each output is the sum of a 2x2 block, plus 1
/// let g = Conv2dGeom::new(1, 3, 3, 1, 2, 2, 1, 0).unwrap();
/// let x = [1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0];
/// let mut workspace = vec![0.0; g.workspace_len(1)];
/// let mut y = [0.0f32; 4];
/// conv2d(&g, &x, &[1.0; 4], Some(&[1.0]), 1, &mut workspace, &mut y).unwrap();
/// assert_eq!(y, [13.0, 17.0, 25.0, 29.0]);
/// ```
#[allow(clippy::too_many_arguments)]
pub fn conv2d<T: Float>(
    g: &Conv2dGeom,
    x: &[T],
    weight: &[T],
    bias: Option<&[T]>,
    n: usize,
    workspace: &mut [T],
    y: &mut [T],
) -> Result<()> {
    forward_on(Path::Direct, g, x, weight, bias, n, workspace, y)
}

/// Which loops a convolution runs.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Path {
    /// The direct loops in AVX-512 where they run (`f32`; one input channel with a 3 × 3
    /// kernel: `conv2d/avx512/single.rs`; a shifted geometry: `conv2d/avx512.rs` on `P` and
    /// `dYw`, all three passes by Winograd's F(2 × 2, 3 × 3) where that applies:
    /// `conv2d/avx512/winograd.rs` and `winograd_grad.rs`), else the GEMMs.
    Direct,
    /// [`Path::Direct`] without Winograd's: the direct loops' tests run them on geometries
    /// that Winograd's would take.
    #[cfg_attr(not(test), allow(dead_code))]
    Loops,
    /// The GEMMs (of im2col's columns, or of the shifted planes) always: the tests compare
    /// the two.
    #[cfg_attr(not(test), allow(dead_code))]
    Gemm,
}

/// [`conv2d`] on the loops `path` says.
#[allow(clippy::too_many_arguments)]
fn forward_on<T: Float>(
    path: Path,
    g: &Conv2dGeom,
    x: &[T],
    weight: &[T],
    bias: Option<&[T]>,
    n: usize,
    workspace: &mut [T],
    y: &mut [T],
) -> Result<()> {
    g.check_buffers(n, x.len(), weight.len(), workspace.len(), ("y", y.len()))?;
    if let Some(b) = bias {
        check_len("conv2d", "bias", g.c_out, b.len())?;
    }
    // one input channel: y written once, straight from x, no columns
    if path != Path::Gemm && avx512::single_forward(g, x, weight, bias, n, y) {
        return Ok(());
    }
    if g.is_shifted() {
        shifted::forward_on(path, g, x, weight, bias, n, workspace, y);
        return Ok(());
    }
    let [cols, _, phases, out] = g.split_workspace(n, workspace);
    for ch in Chunks::new(g, n) {
        im2col_batch(
            g,
            &x[ch.images(g.input_len())],
            ch.ld,
            ch.cols(cols),
            phases,
        );
        // Y = W·cols + bias: [c_out, k] · [k, width], straight into y for one image, else
        // reordered from [c_out, images, ohw] (adding the bias on the way)
        let y = &mut y[ch.images(g.output_len())];
        if let (Some(b), 1) = (bias, ch.count) {
            // the bias added where the product's tiles are stored: one pass over y
            gemm_bias(
                g.c_out,
                ch.width,
                ch.k,
                weight,
                /* lda= */ ch.k,
                ch.cols(cols),
                /* ldb= */ ch.ld,
                b,
                y,
                /* ldc= */ ch.width,
            );
            continue;
        }
        let product = if ch.count == 1 {
            &mut *y
        } else {
            &mut out[..g.c_out * ch.width]
        };
        gemm(
            Trans::No,
            Trans::No,
            g.c_out,
            ch.width,
            ch.k,
            T::one(),
            weight,
            /* lda= */ ch.k,
            ch.cols(cols),
            /* ldb= */ ch.ld,
            T::zero(),
            product,
            /* ldc= */ ch.width,
        );
        if ch.count > 1 {
            swap_leading(&out[..g.c_out * ch.width], ch.count, ch.ohw, bias, y);
        }
    }
    Ok(())
}

/// The backward pass of [`conv2d`]: `dweight += dY·colsᵀ`, `dx += col2im(weightᵀ·dY)` and
/// `dbias[o] += Σ dy[.., o, .., ..]`; `None` skips a gradient.
///
/// `workspace` has [`Conv2dGeom::workspace_len`]`(n)` elements. With [`Conv2dCols::Kept`] it
/// must hold the columns [`conv2d`] left there for this `x` (see [`Conv2dCols`]); with
/// [`Conv2dCols::Recompute`] it may hold anything. Afterwards it holds `x`'s columns still
/// when `dx` was not asked for, and scratch values when it was.
#[allow(clippy::too_many_arguments)]
pub fn conv2d_backward<T: Float>(
    g: &Conv2dGeom,
    x: &[T],
    weight: &[T],
    dy: &[T],
    n: usize,
    workspace: &mut [T],
    cols_held: Conv2dCols,
    dx: Option<&mut [T]>,
    dweight: Option<&mut [T]>,
    dbias: Option<&mut [T]>,
) -> Result<()> {
    let grads = (dx, dweight, dbias);
    backward(
        Path::Direct,
        g,
        x,
        weight,
        dy,
        n,
        workspace,
        cols_held,
        grads,
        Dx::Add,
    )
}

/// [`conv2d_backward`] for a `dx` that holds nothing yet (the first contribution to a
/// gradient, which then needs no zeroing): `dx = col2im(weightᵀ·dY)`, whatever `dx` held;
/// `dweight` and `dbias` are added to as in [`conv2d_backward`].
#[allow(clippy::too_many_arguments)]
pub fn conv2d_backward_overwrite<T: Float>(
    g: &Conv2dGeom,
    x: &[T],
    weight: &[T],
    dy: &[T],
    n: usize,
    workspace: &mut [T],
    cols_held: Conv2dCols,
    dx: Option<&mut [T]>,
    dweight: Option<&mut [T]>,
    dbias: Option<&mut [T]>,
) -> Result<()> {
    let grads = (dx, dweight, dbias);
    backward(
        Path::Direct,
        g,
        x,
        weight,
        dy,
        n,
        workspace,
        cols_held,
        grads,
        Dx::Overwrite,
    )
}

/// [`conv2d_backward_overwrite`] for a convolution whose input is `x = relu(h)`, giving the
/// gradient of `h` in `dx`: `dx = [x > 0]·col2im(weightᵀ·dY)` (`x > 0` exactly where
/// `h > 0`, relu's derivative), so that relu's own backward pass is not needed. Generated
/// code calls it when the convolution is the only user of the relu.
#[allow(clippy::too_many_arguments)]
pub fn conv2d_backward_through_relu<T: Float>(
    g: &Conv2dGeom,
    x: &[T],
    weight: &[T],
    dy: &[T],
    n: usize,
    workspace: &mut [T],
    cols_held: Conv2dCols,
    dx: Option<&mut [T]>,
    dweight: Option<&mut [T]>,
    dbias: Option<&mut [T]>,
) -> Result<()> {
    let grads = (dx, dweight, dbias);
    backward(
        Path::Direct,
        g,
        x,
        weight,
        dy,
        n,
        workspace,
        cols_held,
        grads,
        Dx::ThroughRelu,
    )
}

/// How [`backward`] writes `dx`.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Dx {
    /// `dx += col2im(..)`.
    Add,
    /// `dx = col2im(..)`.
    Overwrite,
    /// `dx = [x > 0]·col2im(..)`.
    ThroughRelu,
}

/// [`conv2d_backward`] with `dx` written as `how` says, on the loops `path` says.
#[allow(clippy::too_many_arguments, clippy::type_complexity)]
fn backward<T: Float>(
    path: Path,
    g: &Conv2dGeom,
    x: &[T],
    weight: &[T],
    dy: &[T],
    n: usize,
    workspace: &mut [T],
    cols_held: Conv2dCols,
    (mut dx, mut dweight, mut dbias): (Option<&mut [T]>, Option<&mut [T]>, Option<&mut [T]>),
    how: Dx,
) -> Result<()> {
    g.check_buffers(n, x.len(), weight.len(), workspace.len(), ("dy", dy.len()))?;
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
    if g.is_shifted() {
        let (args, grads) = ((x, weight, dy, n), (dx, dweight, dbias));
        shifted::backward_on(path, g, args, workspace, cols_held, grads, how);
        return Ok(());
    }
    // one input channel: dweight and dbias straight from x and dy, whatever the workspace
    // holds (the direct forward pass keeps no columns); dx, if asked for, as below
    if path != Path::Gemm
        && avx512::single_weight_grad(g, x, dy, n, dweight.as_deref_mut(), dbias.as_deref_mut())
    {
        (dweight, dbias) = (None, None);
        if dx.is_none() {
            return Ok(());
        }
    }
    let [cols, dw_sum, phases, out] = g.split_workspace(n, workspace);
    for ch in Chunks::new(g, n) {
        // dY as [c_out, width]: dy itself for one image, else reordered
        let dy = &dy[ch.images(g.output_len())];
        let dy_t: &[T] = if ch.count == 1 {
            dy
        } else {
            let out = &mut out[..g.c_out * ch.width];
            swap_leading(dy, g.c_out, ch.ohw, None, out);
            out
        };
        if let Some(db) = dbias.as_deref_mut() {
            add_row_sums(dy_t, ch.width, db);
        }
        if dweight.is_some() {
            if cols_held == Conv2dCols::Recompute {
                let x = &x[ch.images(g.input_len())];
                im2col_batch(g, x, ch.ld, ch.cols(cols), phases);
            }
            // dW += dY·colsᵀ: [c_out, width] · [width, k], as dot products of their rows,
            // summed over the chunks in the workspace
            if ch.first {
                dw_sum.fill(T::zero());
            }
            add_row_products(dy_t, ch.width, ch.cols(cols), ch.ld, ch.width, dw_sum, ch.k);
        }
        if let Some(dx) = dx.as_deref_mut() {
            // d cols = Wᵀ·dY: [k, c_out] · [c_out, width], over the chunk's columns, which
            // are not needed any more
            gemm(
                Trans::Yes,
                Trans::No,
                ch.k,
                ch.width,
                g.c_out,
                T::one(),
                weight,
                /* lda= */ ch.k,
                dy_t,
                /* ldb= */ ch.width,
                T::zero(),
                ch.cols(cols),
                /* ldc= */ ch.ld,
            );
            let dx = &mut dx[ch.images(g.input_len())];
            col2im_batch(g, ch.cols(cols), ch.ld, dx, phases, how == Dx::Add);
            if how == Dx::ThroughRelu {
                keep_where_positive(&x[ch.images(g.input_len())], dx);
            }
        }
    }
    if let (Some(dw), true) = (dweight, n > 0) {
        for (d, &e) in dw.iter_mut().zip(&*dw_sum) {
            *d += e;
        }
    }
    Ok(())
}

/// One chunk of images, `start..start + count` of `n`, whose GEMMs run together over the
/// `width = count·ohw` columns `start·ohw..` of `cols: [k, ld]` (`k = c_in·kh·kw`,
/// `ld = n·ohw`). See [`Conv2dGeom::chunk_images`].
struct Chunk {
    start: usize,
    count: usize,
    first: bool,
    ohw: usize,
    width: usize,
    k: usize,
    ld: usize,
}

impl Chunk {
    /// The chunk's elements of a batch of `per_image` elements per image.
    fn images(&self, per_image: usize) -> core::ops::Range<usize> {
        self.start * per_image..(self.start + self.count) * per_image
    }

    /// The chunk's columns: `cols` from its first one on (rows `ld` apart).
    fn cols<'a, T>(&self, cols: &'a mut [T]) -> &'a mut [T] {
        &mut cols[self.start * self.ohw..]
    }
}

/// The chunks of a batch of `n` images: as few as chunks of at most
/// [`Conv2dGeom::chunk_images`] allow, of sizes differing by at most one (no short last
/// chunk, whose GEMM would run slower).
struct Chunks {
    next: usize,
    index: usize,
    n: usize,
    count: usize,
    ohw: usize,
    k: usize,
}

impl Chunks {
    /// Chunks of the most images up to [`Conv2dGeom::chunk_images`] whose outputs fill
    /// whole 16-lane vectors (4 planes of 14x14 = 49 vectors), when that is at least half
    /// as many; else of up to `chunk_images`. Rows of whole vectors, each 64-byte aligned
    /// when the first one is, run faster in the GEMMs and in the weight gradient's dot
    /// products, which have no partial vector at their end then (measured on the CNN's
    /// second convolution: 4 images per chunk instead of 6 took 38 µs off a training step).
    fn new(g: &Conv2dGeom, n: usize) -> Self {
        let (most, ohw) = (g.chunk_images(), g.out_h() * g.out_w());
        let whole = (most.div_ceil(2)..=most)
            .rev()
            .find(|&m| (m * ohw).is_multiple_of(16));
        Self::of(g, n, whole.unwrap_or(most))
    }

    fn of(g: &Conv2dGeom, n: usize, images: usize) -> Self {
        Chunks {
            next: 0,
            index: 0,
            n,
            count: n.div_ceil(images),
            ohw: g.out_h() * g.out_w(),
            k: g.c_in * g.kh * g.kw,
        }
    }
}

impl Iterator for Chunks {
    type Item = Chunk;

    fn next(&mut self) -> Option<Chunk> {
        if self.index == self.count {
            return None;
        }
        let images = self.n / self.count + usize::from(self.index < self.n % self.count);
        let start = self.next;
        (self.next, self.index) = (start + images, self.index + 1);
        Some(Chunk {
            start,
            count: images,
            first: start == 0,
            ohw: self.ohw,
            width: images * self.ohw,
            k: self.k,
            ld: self.n * self.ohw,
        })
    }
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
        let mut ws = vec![f64::NAN; g.workspace_len(1)];
        let mut y = [f64::NAN; 4];
        conv2d(&g, &x, &w, Some(&[0.5]), 1, &mut ws, &mut y).unwrap();
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
            &mut ws,
            Conv2dCols::Kept,
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
        // per image: 36 column entries; fixed: the 9 weights' gradient and the 4 outputs of
        // each image of a chunk of 256 (1024 output columns per GEMM)
        assert_eq!(g.workspace_len(1), 36 + 9 + 256 * 4);
        let x: Vec<f32> = (1..=9).map(|v| v as f32).collect();
        let w = [1.0f32; 9];
        let mut ws = vec![0.0f32; g.workspace_len(1)];
        let mut y = [0.0f32; 4];
        conv2d(&g, &x, &w, None, 1, &mut ws, &mut y).unwrap();
        assert_close!(y, [12.0f32, 16.0, 24.0, 28.0]);
        // dy = 1: dx counts the windows covering each pixel: corners 1, edges 2, centre 4.
        // Tap (u, v) reads rows {2i+u-1} ∩ [0, 3) = {1}, {0, 2}, {1} for u = 0, 1, 2 (same for
        // columns), so dW = [[5, 4+6, 5], [2+8, 1+3+7+9, 10], [5, 10, 5]].
        let (mut dx, mut dw) = (vec![0.0f32; 9], [0.0f32; 9]);
        let dy = [1.0f32; 4];
        ws.fill(f32::NAN); // Recompute reads nothing from the workspace
        conv2d_backward(
            &g,
            &x,
            &w,
            &dy,
            1,
            &mut ws,
            Conv2dCols::Recompute,
            Some(&mut dx),
            Some(&mut dw),
            None,
        )
        .unwrap();
        assert_close!(dx, [1.0f32, 2.0, 1.0, 2.0, 4.0, 2.0, 1.0, 2.0, 1.0]);
        assert_close!(dw, [5.0f32, 10.0, 5.0, 10.0, 20.0, 10.0, 5.0, 10.0, 5.0]);
    }

    #[test]
    fn literal_batch_of_2_f32() {
        // two 2x2 images through a 1x1 kernel, 1 -> 2 channels with weights [2, -1], bias
        // [1, 0]: y[n, 0] = 2 x[n] + 1 and y[n, 1] = -x[n]; images [1, 2, 3, 4], [5, 6, 7, 8]
        let g = Conv2dGeom::new(1, 2, 2, 2, 1, 1, 1, 0).unwrap();
        let x: Vec<f32> = (1..=8).map(|v| v as f32).collect();
        let (w, b) = ([2.0f32, -1.0], [1.0f32, 0.0]);
        let mut ws = vec![f32::NAN; g.workspace_len(2)];
        let mut y = [f32::NAN; 16];
        conv2d(&g, &x, &w, Some(&b), 2, &mut ws, &mut y).unwrap();
        #[rustfmt::skip]
        let expected = [
            3.0f32, 5.0, 7.0, 9.0, -1.0, -2.0, -3.0, -4.0,
            11.0, 13.0, 15.0, 17.0, -5.0, -6.0, -7.0, -8.0,
        ];
        assert_close!(y, expected);
        // dy[n, 0] = 1 everywhere, dy[n, 1] = 2 everywhere but dy[0, 1, 3] = 4:
        // dW[0] = Σ x = 36, dW[1] = 2 Σ x + 2 x[0, 3] = 72 + 8 = 80;
        // db = [8, 2·8 + 2] = [8, 18]; dx = 2·dy[n, 0] - dy[n, 1] = 2 - 2 = 0 but at
        // dx[0, 3] = 2 - 4 = -2
        #[rustfmt::skip]
        let dy = [
            1.0f32, 1.0, 1.0, 1.0, 2.0, 2.0, 2.0, 4.0,
            1.0, 1.0, 1.0, 1.0, 2.0, 2.0, 2.0, 2.0,
        ];
        let (mut dx, mut dw, mut db) = ([0.0f32; 8], [0.0f32; 2], [0.0f32; 2]);
        conv2d_backward(
            &g,
            &x,
            &w,
            &dy,
            2,
            &mut ws,
            Conv2dCols::Kept,
            Some(&mut dx),
            Some(&mut dw),
            Some(&mut db),
        )
        .unwrap();
        assert_close!(dw, [36.0f32, 80.0]);
        assert_close!(db, [8.0f32, 18.0]);
        assert_close!(dx, [0.0f32, 0.0, 0.0, -2.0, 0.0, 0.0, 0.0, 0.0]);
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

    /// Compares with [`naive`] and checks every gradient by central differences, with the
    /// columns kept from the forward pass and recomputed.
    fn check(g: Conv2dGeom, n: usize, seed: u64) {
        let x: Vec<f64> = random_vec(seed, n * g.input_len(), -1.0, 1.0);
        let w: Vec<f64> = random_vec(seed + 1, g.weight_len(), -1.0, 1.0);
        let b: Vec<f64> = random_vec(seed + 2, g.c_out, -1.0, 1.0);
        let u: Vec<f64> = random_vec(seed + 3, n * g.output_len(), -1.0, 1.0);
        let run = |x: &[f64], w: &[f64], b: &[f64], ws: &mut [f64]| {
            let mut y = vec![f64::NAN; n * g.output_len()];
            conv2d(&g, x, w, Some(b), n, ws, &mut y).unwrap();
            y
        };
        let mut ws = vec![f64::NAN; g.workspace_len(n)];
        let mut ws2 = ws.clone();
        let mut loss = |x: &[f64], w: &[f64], b: &[f64]| {
            let y = run(x, w, b, &mut ws2);
            y.iter().zip(&u).map(|(p, q)| p * q).sum::<f64>()
        };
        for cols in [Conv2dCols::Kept, Conv2dCols::Recompute] {
            ws.fill(f64::NAN);
            assert_close!(run(&x, &w, &b, &mut ws), naive(&g, &x, &w, &b, n), 1e-12);
            if cols == Conv2dCols::Recompute {
                ws.fill(f64::NAN);
            }
            // gradients accumulate onto what the buffers held
            let (mut dx, mut dw, mut db) =
                (vec![1.0; x.len()], vec![1.0; w.len()], vec![1.0; b.len()]);
            conv2d_backward(
                &g,
                &x,
                &w,
                &u,
                n,
                &mut ws,
                cols,
                Some(&mut dx),
                Some(&mut dw),
                Some(&mut db),
            )
            .unwrap();
            let minus_one = |v: Vec<f64>| v.into_iter().map(|g| g - 1.0).collect::<Vec<_>>();
            let (dx, dw, db) = (minus_one(dx), minus_one(dw), minus_one(db));
            assert_gradient("conv2d dx", |x| loss(x, &w, &b), &x, &dx, 1e-7);
            assert_gradient("conv2d dweight", |w| loss(&x, w, &b), &w, &dw, 1e-7);
            assert_gradient("conv2d dbias", |b| loss(&x, &w, b), &b, &db, 1e-7);
        }
    }

    #[test]
    fn gradcheck() {
        check(Conv2dGeom::new(2, 5, 4, 3, 3, 3, 1, 1).unwrap(), 2, 1);
        check(Conv2dGeom::new(2, 6, 7, 3, 3, 3, 2, 1).unwrap(), 1, 10);
        check(Conv2dGeom::new(1, 5, 6, 2, 2, 3, 2, 0).unwrap(), 2, 20);
        check(Conv2dGeom::new(3, 4, 4, 2, 1, 1, 1, 0).unwrap(), 2, 30); // pointwise
        check(Conv2dGeom::new(2, 3, 3, 2, 1, 1, 2, 1).unwrap(), 1, 40); // only padding in corners
        check(Conv2dGeom::new(1, 2, 2, 1, 4, 4, 3, 2).unwrap(), 2, 50); // kernel = padded input
        check(Conv2dGeom::new(2, 5, 5, 3, 3, 3, 2, 1).unwrap(), 5, 60); // batch of 5
                                                                        // outputs of the input's size divided by the stride (im2col on phase planes)
        check(Conv2dGeom::new(2, 6, 8, 3, 3, 3, 2, 1).unwrap(), 3, 70);
        check(Conv2dGeom::new(1, 8, 6, 2, 4, 4, 2, 1).unwrap(), 2, 80);
        check(Conv2dGeom::new(2, 6, 9, 2, 3, 3, 3, 0).unwrap(), 2, 90);
        check(Conv2dGeom::new(1, 6, 6, 2, 5, 5, 1, 2).unwrap(), 2, 100);
        check(Conv2dGeom::new(2, 1, 1, 2, 3, 3, 1, 1).unwrap(), 2, 110); // taps off the input
                                                                         // 256 outputs per image: the GEMMs run image by image
        check(Conv2dGeom::new(2, 16, 16, 3, 3, 3, 1, 1).unwrap(), 2, 120);
        check(Conv2dGeom::new(1, 32, 32, 2, 3, 3, 2, 1).unwrap(), 3, 130);
        // 225 outputs per image: chunks of at most 5 images (here 4 and 3)
        check(Conv2dGeom::new(1, 15, 15, 2, 3, 3, 1, 1).unwrap(), 7, 140);
        // 8 channels or more at stride 1: nine GEMMs on shifted views of the padded input
        check(Conv2dGeom::new(8, 5, 4, 3, 3, 3, 1, 1).unwrap(), 3, 150);
        check(Conv2dGeom::new(8, 6, 5, 2, 3, 3, 1, 0).unwrap(), 2, 160);
        check(Conv2dGeom::new(9, 4, 5, 2, 2, 3, 1, 1).unwrap(), 1, 170);
        check(Conv2dGeom::new(8, 3, 4, 2, 5, 5, 1, 2).unwrap(), 2, 180);
        // (chunks of several images: `shifted::tests::shifted_equals_im2col`)
    }

    /// The gradients of one backward pass, accumulated onto zeros.
    struct Grads<T> {
        dx: Vec<T>,
        dw: Vec<T>,
        db: Vec<T>,
    }

    /// A forward pass on `x` in a NaN-filled workspace, then a backward pass with its
    /// columns either kept or recomputed (after the workspace is filled with NaN again) from
    /// `x_back`. Every gradient is asked for, the bias's only with a bias.
    #[allow(clippy::too_many_arguments)]
    fn forward_backward<T: Float>(
        g: &Conv2dGeom,
        n: usize,
        x: &[T],
        x_back: &[T],
        w: &[T],
        b: Option<&[T]>,
        dy: &[T],
        cols: Conv2dCols,
    ) -> Grads<T> {
        let mut ws = vec![T::from_f64(f64::NAN); g.workspace_len(n)];
        let mut y = vec![T::zero(); n * g.output_len()];
        conv2d(g, x, w, b, n, &mut ws, &mut y).unwrap();
        if cols == Conv2dCols::Recompute {
            ws.fill(T::from_f64(f64::NAN));
        }
        let mut grads = Grads {
            dx: vec![T::zero(); x.len()],
            dw: vec![T::zero(); w.len()],
            db: vec![T::zero(); g.c_out],
        };
        let db = b.is_some().then_some(&mut grads.db[..]);
        conv2d_backward(
            g,
            x_back,
            w,
            dy,
            n,
            &mut ws,
            cols,
            Some(&mut grads.dx),
            Some(&mut grads.dw),
            db,
        )
        .unwrap();
        grads
    }

    /// Forward then backward with the kept columns gives exactly (bit for bit) the gradients
    /// of a backward pass that lays the columns out itself.
    fn kept_equals_recomputed<T: Float>() {
        let geoms = [
            Conv2dGeom::new(2, 6, 5, 3, 3, 3, 1, 0).unwrap(), // stride 1, no padding
            Conv2dGeom::new(2, 6, 5, 3, 3, 3, 1, 1).unwrap(), // stride 1, padding
            Conv2dGeom::new(3, 7, 7, 2, 3, 2, 2, 0).unwrap(), // stride 2, no padding
            Conv2dGeom::new(1, 8, 8, 4, 3, 3, 2, 1).unwrap(), // stride 2, padding
            Conv2dGeom::new(2, 7, 8, 3, 3, 3, 2, 1).unwrap(), // stride 2, odd height
            Conv2dGeom::new(2, 16, 16, 3, 3, 3, 1, 1).unwrap(), // GEMMs per image
            Conv2dGeom::new(1, 32, 32, 2, 3, 3, 2, 1).unwrap(), // per image, stride 2
            Conv2dGeom::new(1, 18, 18, 2, 3, 3, 1, 0).unwrap(), // per image, general im2col
            Conv2dGeom::new(2, 15, 15, 3, 3, 3, 1, 1).unwrap(), // chunks of 5 images
            Conv2dGeom::new(1, 30, 31, 2, 3, 3, 2, 1).unwrap(), // chunks of 5, general
            Conv2dGeom::new(8, 14, 14, 3, 3, 3, 1, 1).unwrap(), // shifted GEMMs
            Conv2dGeom::new(9, 5, 7, 2, 2, 3, 1, 0).unwrap(), // shifted, no padding
        ];
        for (i, g) in geoms.iter().enumerate() {
            for n in [1, 5, 7] {
                for with_bias in [false, true] {
                    let seed = 100 * i as u64 + n as u64;
                    let x: Vec<T> = random_vec(seed, n * g.input_len(), -1.0, 1.0);
                    let w: Vec<T> = random_vec(seed + 1, g.weight_len(), -1.0, 1.0);
                    let b: Vec<T> = random_vec(seed + 2, g.c_out, -1.0, 1.0);
                    let dy: Vec<T> = random_vec(seed + 3, n * g.output_len(), -1.0, 1.0);
                    let b = with_bias.then_some(&b[..]);
                    let run = |cols| forward_backward(g, n, &x, &x, &w, b, &dy, cols);
                    let (kept, fresh) = (run(Conv2dCols::Kept), run(Conv2dCols::Recompute));
                    let case = format!("{g:?}, n = {n}, bias {with_bias}");
                    assert_eq!(kept.dx, fresh.dx, "dx: {case}");
                    assert_eq!(kept.dw, fresh.dw, "dweight: {case}");
                    assert_eq!(kept.db, fresh.db, "dbias: {case}");
                    assert!(kept.dw.iter().all(|v| v.is_finite()), "{case}");
                    assert!(kept.dx.iter().all(|v| v.is_finite()), "{case}");
                }
            }
        }
    }

    #[test]
    fn kept_columns_equal_recomputed_ones() {
        kept_equals_recomputed::<f64>();
        kept_equals_recomputed::<f32>();
    }

    #[test]
    fn overwriting_dx_equals_adding_onto_zeros() {
        // every col2im path: stride-2 phase homes, stride 1 aligned, stride-3 phase planes,
        // the general one; dweight and dbias still accumulate
        for (i, g) in [
            Conv2dGeom::new(2, 8, 6, 3, 3, 3, 2, 1).unwrap(),
            Conv2dGeom::new(2, 5, 4, 3, 3, 3, 1, 1).unwrap(),
            Conv2dGeom::new(2, 6, 9, 2, 3, 3, 3, 0).unwrap(),
            Conv2dGeom::new(1, 5, 6, 2, 2, 3, 2, 0).unwrap(),
            Conv2dGeom::new(1, 15, 15, 2, 3, 3, 1, 1).unwrap(),
            Conv2dGeom::new(8, 6, 5, 3, 3, 3, 1, 1).unwrap(), // shifted GEMMs
        ]
        .iter()
        .enumerate()
        {
            let n = 7;
            let seed = 10 * i as u64;
            let x: Vec<f64> = random_vec(seed, n * g.input_len(), -1.0, 1.0);
            let w: Vec<f64> = random_vec(seed + 1, g.weight_len(), -1.0, 1.0);
            let dy: Vec<f64> = random_vec(seed + 2, n * g.output_len(), -1.0, 1.0);
            let run = |overwrite: bool, dx0: f64| {
                let mut ws = vec![f64::NAN; g.workspace_len(n)];
                let (mut dx, mut dw, mut db) = (vec![dx0; x.len()], vec![1.0; w.len()], [2.0; 3]);
                let db = &mut db[..g.c_out];
                let f = if overwrite {
                    conv2d_backward_overwrite
                } else {
                    conv2d_backward
                };
                let cols = Conv2dCols::Recompute;
                let grads = (Some(&mut dx[..]), Some(&mut dw[..]), Some(&mut db[..]));
                f(g, &x, &w, &dy, n, &mut ws, cols, grads.0, grads.1, grads.2).unwrap();
                (dx, dw, db.to_vec())
            };
            let (set, added) = (run(true, f64::NAN), run(false, 0.0));
            assert_close!(set.0, added.0, 1e-14);
            assert_eq!((set.1, set.2), (added.1, added.2), "{g:?}");
        }
    }

    #[test]
    fn through_relu_equals_relu_backward_after_overwrite() {
        // x = relu(h): dh = relu_backward(h, dx) of the plain gradient, in one call; the
        // stride-2 phase homes, the stride-1 and the general path
        for (i, g) in [
            Conv2dGeom::new(2, 8, 6, 3, 3, 3, 2, 1).unwrap(),
            Conv2dGeom::new(2, 5, 4, 3, 3, 3, 1, 1).unwrap(),
            Conv2dGeom::new(1, 5, 6, 2, 2, 3, 2, 0).unwrap(),
            Conv2dGeom::new(8, 5, 6, 2, 3, 3, 1, 1).unwrap(), // shifted GEMMs
        ]
        .iter()
        .enumerate()
        {
            let (n, seed) = (3, 10 * i as u64);
            let h: Vec<f64> = random_vec(seed, n * g.input_len(), -1.0, 1.0);
            let x: Vec<f64> = h.iter().map(|&v| v.max(0.0)).collect();
            let w: Vec<f64> = random_vec(seed + 1, g.weight_len(), -1.0, 1.0);
            let dy: Vec<f64> = random_vec(seed + 2, n * g.output_len(), -1.0, 1.0);
            let mut ws = vec![f64::NAN; g.workspace_len(n)];
            let cols = Conv2dCols::Recompute;
            let (mut dx, mut dh) = (vec![f64::NAN; x.len()], vec![f64::NAN; x.len()]);
            let only_dx = (Some(&mut dx[..]), None, None);
            let (a, b, c) = only_dx;
            conv2d_backward_overwrite(g, &x, &w, &dy, n, &mut ws, cols, a, b, c).unwrap();
            let mut expected = vec![f64::NAN; x.len()];
            crate::ops::relu_backward_overwrite(&h, &x, &dx, &mut expected).unwrap();
            let (mut dw, mut db) = (vec![0.0; w.len()], vec![0.0; g.c_out]);
            let (a, b, c) = (Some(&mut dh[..]), Some(&mut dw[..]), Some(&mut db[..]));
            conv2d_backward_through_relu(g, &x, &w, &dy, n, &mut ws, cols, a, b, c).unwrap();
            assert_eq!(dh, expected, "{g:?}");
            assert!(x.iter().zip(&dh).any(|(&a, &d)| a > 0.0 && d != 0.0));
        }
    }

    #[test]
    fn kept_columns_are_those_of_the_forward_input() {
        // `Kept` takes dweight from the columns of the forward pass's x, whatever x the
        // backward pass is given; `Recompute` from the x it is given.
        let g = Conv2dGeom::new(2, 5, 5, 3, 3, 3, 2, 1).unwrap();
        let n = 3;
        let x1: Vec<f64> = random_vec(1, n * g.input_len(), -1.0, 1.0);
        let x2: Vec<f64> = random_vec(2, n * g.input_len(), -1.0, 1.0);
        let w: Vec<f64> = random_vec(3, g.weight_len(), -1.0, 1.0);
        let dy: Vec<f64> = random_vec(4, n * g.output_len(), -1.0, 1.0);
        let fb = |x, x_back, cols| forward_backward(&g, n, x, x_back, &w, None, &dy, cols);
        let kept = fb(&x1, &x2, Conv2dCols::Kept);
        assert_eq!(kept.dw, fb(&x2, &x1, Conv2dCols::Recompute).dw);
        assert_ne!(kept.dw, fb(&x1, &x2, Conv2dCols::Recompute).dw);
    }

    #[test]
    fn columns_survive_a_backward_pass_without_dx() {
        // without dx the columns stay, so a second Kept pass adds the same dweight again;
        // after a pass with dx they are gone and the next pass needs Recompute
        let g = Conv2dGeom::new(2, 6, 6, 3, 3, 3, 1, 1).unwrap();
        let n = 2;
        let x: Vec<f64> = random_vec(5, n * g.input_len(), -1.0, 1.0);
        let w: Vec<f64> = random_vec(6, g.weight_len(), -1.0, 1.0);
        let dy: Vec<f64> = random_vec(7, n * g.output_len(), -1.0, 1.0);
        let once = forward_backward(&g, n, &x, &x, &w, None, &dy, Conv2dCols::Kept).dw;
        let mut ws = vec![f64::NAN; g.workspace_len(n)];
        let mut y = vec![0.0; n * g.output_len()];
        conv2d(&g, &x, &w, None, n, &mut ws, &mut y).unwrap();
        let (mut dx, mut dw) = (vec![0.0; x.len()], vec![0.0; w.len()]);
        let mut backward = |cols, dx: Option<&mut [f64]>, dw: &mut [f64]| {
            conv2d_backward(&g, &x, &w, &dy, n, &mut ws, cols, dx, Some(dw), None).unwrap();
        };
        backward(Conv2dCols::Kept, None, &mut dw);
        backward(Conv2dCols::Kept, Some(&mut dx), &mut dw);
        backward(Conv2dCols::Recompute, None, &mut dw);
        let thrice: Vec<f64> = once.iter().map(|v| 3.0 * v).collect();
        assert_close!(dw, thrice, 1e-12);
    }

    #[test]
    fn workspace_is_linear_in_the_batch() {
        for g in [
            Conv2dGeom::new(1, 28, 28, 8, 3, 3, 1, 1).unwrap(),
            Conv2dGeom::new(8, 28, 28, 16, 3, 3, 2, 1).unwrap(),
            Conv2dGeom::new(3, 4, 4, 2, 1, 1, 1, 0).unwrap(),
        ] {
            for n in [0, 1, 2, 5, 32, 1000] {
                let len = n * g.workspace_per_image() + g.workspace_fixed();
                assert_eq!(g.workspace_len(n), len, "{g:?}, n = {n}");
            }
            assert_eq!(g.workspace_len(usize::MAX), usize::MAX);
        }
        // 1 -> 8 channels, 3x3, padding 1 on 28x28: 9·784 column entries per image (its GEMMs
        // run image by image: 784 outputs are 49 vectors of 16), the 8·9 weights' gradient
        let g = Conv2dGeom::new(1, 28, 28, 8, 3, 3, 1, 1).unwrap();
        assert_eq!(g.workspace_len(32), 32 * 9 * 784 + 72);
        // 8 -> 16 channels, stride 2 to 14x14: 72·196 column entries per image, the 16·72
        // weights' gradient, a 28x28 plane split by the stride and merged back, the 16·196 outputs of
        // each image of a chunk of 6 (1176 >= 1024 output columns per GEMM)
        let g = Conv2dGeom::new(8, 28, 28, 16, 3, 3, 2, 1).unwrap();
        assert_eq!(
            g.workspace_len(32),
            32 * 72 * 196 + 16 * 72 + 2 * 784 + 6 * 16 * 196
        );
    }

    #[test]
    fn chunks_cover_the_batch() {
        let g = |c, h, w, k, s, p| Conv2dGeom::new(c, h, w, 4, k, k, s, p).unwrap();
        // 784 = 49·16 outputs: one image per GEMM; 196: 6 images (1176 columns); 225: 5
        assert_eq!(g(1, 28, 28, 3, 1, 1).chunk_images(), 1);
        assert_eq!(g(8, 28, 28, 3, 2, 1).chunk_images(), 6);
        assert_eq!(g(1, 15, 15, 3, 1, 1).chunk_images(), 5);
        // 12 images in chunks of at most 5: 3 chunks of 4; 13: 5, 4, 4
        let chunks = |n| -> Vec<_> {
            Chunks::new(&g(1, 15, 15, 3, 1, 1), n)
                .map(|c| (c.start, c.count, c.first, c.width, c.ld))
                .collect()
        };
        let ld = 12 * 225;
        let expected = [
            (0, 4, true, 4 * 225, ld),
            (4, 4, false, 4 * 225, ld),
            (8, 4, false, 4 * 225, ld),
        ];
        assert_eq!(chunks(12), expected);
        let starts: Vec<_> = chunks(13).iter().map(|c| (c.0, c.1)).collect();
        assert_eq!(starts, [(0, 5), (5, 4), (9, 4)]);
        assert_eq!(chunks(1), [(0, 1, true, 225, 225)]);
        assert!(chunks(0).is_empty());
        // 4 planes of 196 outputs are 49 vectors of 16 (32 images in 8 chunks of 4, not 6
        // chunks of at most 6); 225 outputs never fill whole vectors below 16 images
        let backward = |g: &Conv2dGeom, n| -> Vec<_> {
            Chunks::new(g, n).map(|c| (c.start, c.count)).collect()
        };
        let g2 = g(8, 28, 28, 3, 2, 1);
        assert_eq!(
            backward(&g2, 32),
            (0..8).map(|c| (4 * c, 4)).collect::<Vec<_>>()
        );
        assert_eq!(backward(&g(1, 15, 15, 3, 1, 1), 10), [(0, 5), (5, 5)]);
        assert_eq!(backward(&g(1, 28, 28, 3, 1, 1), 2), [(0, 1), (1, 1)]);
    }

    #[test]
    fn an_empty_batch_does_nothing() {
        let g = Conv2dGeom::new(2, 4, 4, 3, 3, 3, 1, 1).unwrap();
        let w = vec![1.0f64; g.weight_len()];
        let (mut y, mut ws) = (Vec::<f64>::new(), vec![0.0; g.workspace_len(0)]);
        conv2d(&g, &[], &w, None, 0, &mut ws, &mut y).unwrap();
        let mut dw = vec![2.0; g.weight_len()];
        let (mut dx, mut db) = (Vec::<f64>::new(), vec![3.0; 3]);
        conv2d_backward(
            &g,
            &[],
            &w,
            &[],
            0,
            &mut ws,
            Conv2dCols::Recompute,
            Some(&mut dx),
            Some(&mut dw),
            Some(&mut db),
        )
        .unwrap();
        assert!(dw.iter().all(|&v| v == 2.0) && db == [3.0; 3]);
    }

    #[test]
    #[cfg(target_pointer_width = "64")]
    fn shifted_workspace_that_overflows_is_an_error() {
        // 8 -> 2^32 + 1 channels on 65536x65536, 3x3, no padding: the output, 2^32 + 1
        // planes of 65534², fits in usize (just), the shifted kernels' workspace, 2^32 + 9
        // planes of 65536², does not
        let g = |c_out| Conv2dGeom::new(8, 65536, 65536, c_out, 3, 3, 1, 0);
        let err = g((1 << 32) + 1).unwrap_err().to_string();
        assert!(err.contains("more elements than fit in memory"), "{err}");
        let ok = g(1 << 20).unwrap();
        assert!(ok.is_shifted() && ok.workspace_per_image() == ((1 << 20) + 8) << 32);
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
        // 2 images of 27·64 column entries, the 4·27 weights, a chunk of 16 images' 4·64
        // outputs: 7660
        let (mut ws, mut y) = (
            vec![0.0f32; g.workspace_len(2)],
            vec![0.0f32; 2 * g.output_len()],
        );
        let err = conv2d(&g, &x[1..], &w, None, 2, &mut ws, &mut y).unwrap_err();
        assert_eq!(
            err.to_string(),
            "shape mismatch in conv2d: expected `x` of [2, 3, 8, 8], got 383 elements"
        );
        let err = conv2d(&g, &x, &w, None, 2, &mut ws[1..], &mut y).unwrap_err();
        assert_eq!(
            err.to_string(),
            "length mismatch in conv2d: `workspace` has 7659 elements, expected 7660"
        );
        // the one-image size of old is too short for a batch
        let mut short = vec![0.0f32; g.col_len()];
        let err = conv2d(&g, &x, &w, None, 2, &mut short, &mut y).unwrap_err();
        assert_eq!(
            err.to_string(),
            "length mismatch in conv2d: `workspace` has 1728 elements, expected 7660"
        );
        let err = conv2d(&g, &x, &w, Some(&[0.0; 3]), 2, &mut ws, &mut y).unwrap_err();
        assert!(err
            .to_string()
            .contains("`bias` has 3 elements, expected 4"));
        let err = conv2d(&g, &x, &w, None, 2, &mut ws, &mut y[..10]).unwrap_err();
        assert!(err.to_string().contains("`y` of [2, 4, 8, 8]"), "{err}");
        let mut dw = vec![0.0f32; 5];
        let kept = Conv2dCols::Kept;
        let r = conv2d_backward(&g, &x, &w, &y, 2, &mut ws, kept, None, Some(&mut dw), None);
        assert!(r
            .unwrap_err()
            .to_string()
            .contains("`dweight` of [4, 3, 3, 3]"));
        let mut dx = vec![0.0f32; x.len()];
        let r = conv2d_backward(
            &g,
            &x,
            &w,
            &y,
            2,
            &mut short,
            kept,
            Some(&mut dx),
            None,
            None,
        );
        assert_eq!(
            r.unwrap_err().to_string(),
            "length mismatch in conv2d: `workspace` has 1728 elements, expected 7660"
        );
        // a geometry built without `new` is checked by the kernels too
        let bad = Conv2dGeom { stride: 0, ..g };
        assert!(conv2d(&bad, &x, &w, None, 2, &mut ws, &mut y).is_err());
    }
}
