//! 2-D max pooling (PyTorch's `max_pool2d`, floor mode), and [`Pool2dGeom`], the geometry
//! shared with [`avg_pool2d`](super::avg_pool2d()):
//!
//! `y[n, c, i, j] = max_{u, v < k} x[n, c, i·s + u - p, j·s + v - p]`, where the padding
//! counts as `-∞` (so it never wins). A NaN in a window makes its output NaN, as in PyTorch.
//!
//! The derivative is 1 at the position of the maximum and 0 elsewhere: the backward pass
//! routes each output's gradient to the first position (in row-major window order) where
//! `x` equals `y`, which is PyTorch's choice for ties. Overlapping windows accumulate.

use super::conv2d::{check_dims, out_len};
use super::relu::keep_where_positive;
#[cfg(target_arch = "x86_64")]
use crate::float::{as_f32, as_f32_mut};
use crate::simd::{vectorize_above, Kernel};
use crate::{invalid, Float, Result};

// the 2x2 backward pass in sixteen `f32` lanes
#[cfg(target_arch = "x86_64")]
mod avx512;

/// The shape of a square pooling window over `[c, h, w]` images: one `kernel` size, one
/// `stride` and one `padding` for both spatial dimensions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pool2dGeom {
    /// Channels.
    pub c: usize,
    /// Input height.
    pub h: usize,
    /// Input width.
    pub w: usize,
    /// Window size, in both directions.
    pub kernel: usize,
    /// Step between windows, in both directions.
    pub stride: usize,
    /// Padding on each side, in both directions (at most `kernel / 2`, as in PyTorch).
    pub padding: usize,
}

impl Pool2dGeom {
    /// A checked geometry: sizes, kernel and stride positive, `padding <= kernel / 2`, and
    /// the window no larger than the padded input.
    ///
    /// ```
    /// use nanograd_runtime::ops::Pool2dGeom;
    /// let g = Pool2dGeom::new(8, 28, 28, 2, 2, 0).unwrap();
    /// assert_eq!((g.out_h(), g.out_w()), (14, 14));
    /// assert!(Pool2dGeom::new(8, 28, 28, 3, 1, 2).is_err()); // padding > kernel / 2
    /// ```
    pub fn new(
        c: usize,
        h: usize,
        w: usize,
        kernel: usize,
        stride: usize,
        padding: usize,
    ) -> Result<Self> {
        let g = Self {
            c,
            h,
            w,
            kernel,
            stride,
            padding,
        };
        g.validate()?;
        Ok(g)
    }

    /// Checks the geometry as [`Pool2dGeom::new`] does; the kernels call it too, since the
    /// fields are public.
    pub fn validate(&self) -> Result<()> {
        self.validate_for("pool2d")
    }

    fn validate_for(&self, op: &'static str) -> Result<()> {
        let sizes = [
            ("c", self.c),
            ("h", self.h),
            ("w", self.w),
            ("kernel", self.kernel),
            ("stride", self.stride),
        ];
        if let Some((name, _)) = sizes.iter().find(|(_, v)| *v == 0) {
            return Err(invalid(op, format!("`{name}` must be positive, got 0")));
        }
        if self.padding > self.kernel / 2 {
            return Err(invalid(
                op,
                format!(
                    "padding {} is more than half the kernel size {}",
                    self.padding, self.kernel
                ),
            ));
        }
        let pad2 = self.padding.saturating_mul(2);
        let (ph, pw) = (self.h.saturating_add(pad2), self.w.saturating_add(pad2));
        if self.kernel > ph.min(pw) {
            return Err(invalid(
                op,
                format!(
                    "kernel {k}x{k} is larger than the padded input {ph}x{pw} ({}x{} with padding {})",
                    self.h,
                    self.w,
                    self.padding,
                    k = self.kernel
                ),
            ));
        }
        if self
            .c
            .checked_mul(ph)
            .and_then(|v| v.checked_mul(pw))
            .is_none()
        {
            return Err(invalid(
                op,
                format!("{self:?} has more elements than fit in memory"),
            ));
        }
        Ok(())
    }

    /// Output height: `(h + 2·padding - kernel) / stride + 1` (0 for an invalid geometry).
    pub fn out_h(&self) -> usize {
        out_len(self.h, self.kernel, self.stride, self.padding)
    }

    /// Output width: `(w + 2·padding - kernel) / stride + 1` (0 for an invalid geometry).
    pub fn out_w(&self) -> usize {
        out_len(self.w, self.kernel, self.stride, self.padding)
    }

    /// Elements of one input image: `c·h·w`.
    pub fn input_len(&self) -> usize {
        self.c * self.h * self.w
    }

    /// Elements of one output image: `c·out_h·out_w`.
    pub fn output_len(&self) -> usize {
        self.c * self.out_h() * self.out_w()
    }

    /// Checks the geometry and that `n` images fill `x` (input shape) and `y` (output shape).
    pub(super) fn check(
        &self,
        op: &'static str,
        n: usize,
        x: (&'static str, usize),
        y: (&'static str, usize),
    ) -> Result<()> {
        self.validate_for(op)?;
        check_dims(op, x.0, &[n, self.c, self.h, self.w], x.1)?;
        check_dims(op, y.0, &[n, self.c, self.out_h(), self.out_w()], y.1)
    }

    /// The input rows `lo..hi` (or columns, with `len = w`) that output `i`'s window covers,
    /// the padding left out. Needs `padding <= kernel / 2`, which keeps the range non-empty.
    /// The 2x2 window with stride 2 and no padding, which has a path of its own.
    fn is_2x2(&self) -> bool {
        self.kernel == 2 && self.stride == 2 && self.padding == 0
    }

    #[inline]
    pub(super) fn window(&self, i: usize, len: usize) -> (usize, usize) {
        let start = i * self.stride;
        (
            start.saturating_sub(self.padding),
            (start + self.kernel - self.padding).min(len),
        )
    }
}

/// `y = max_pool2d(x)` for `x: [n, c, h, w]` and `y: [n, c, out_h, out_w]`.
pub fn max_pool2d<T: Float>(g: &Pool2dGeom, x: &[T], n: usize, y: &mut [T]) -> Result<()> {
    g.check("max_pool2d", n, ("x", x.len()), ("y", y.len()))?;
    let (oh, ow) = (g.out_h(), g.out_w());
    if g.is_2x2() {
        // the common 2x2 window, stride 2: two input rows per output row, no window bounds
        #[cfg(target_arch = "x86_64")]
        if let (Some(simd), Some(x), Some(y)) = (avx512::available(), as_f32(x), as_f32_mut(y)) {
            avx512::forward_2x2(simd, (g.h, g.w), x, y);
            return Ok(());
        }
        vectorize_above(y.len(), Pool2x2 { g, x, y });
        return Ok(());
    }
    for (xp, yp) in x.chunks_exact(g.h * g.w).zip(y.chunks_exact_mut(oh * ow)) {
        for i in 0..oh {
            let (r0, r1) = g.window(i, g.h);
            for j in 0..ow {
                let (c0, c1) = g.window(j, g.w);
                let mut best = T::NEG_INFINITY;
                for r in r0..r1 {
                    for &v in &xp[r * g.w + c0..r * g.w + c1] {
                        if v > best || v.is_nan() {
                            best = v;
                        }
                    }
                }
                yp[i * ow + j] = best;
            }
        }
    }
    Ok(())
}

/// The backward pass of [`max_pool2d`]: `dx[argmax] += dy` for every window, the argmax
/// recomputed as the first position where `x == y` (both NaN counts as equal). A `y` that is
/// not the forward output of `x` is an error (`dx` may then hold part of the gradient).
pub fn max_pool2d_backward<T: Float>(
    g: &Pool2dGeom,
    x: &[T],
    y: &[T],
    dy: &[T],
    n: usize,
    dx: &mut [T],
) -> Result<()> {
    backward(g, x, y, dy, n, dx, Dx::Add)
}

/// [`max_pool2d_backward`] for a `dx` that holds nothing yet (the first contribution to a
/// gradient, which then needs no zeroing): `dx = 0` except `dx[argmax] = Σ dy` of the
/// windows whose maximum it is, whatever `dx` held.
pub fn max_pool2d_backward_overwrite<T: Float>(
    g: &Pool2dGeom,
    x: &[T],
    y: &[T],
    dy: &[T],
    n: usize,
    dx: &mut [T],
) -> Result<()> {
    backward(g, x, y, dy, n, dx, Dx::Overwrite)
}

/// [`max_pool2d_backward_overwrite`] for a pooling whose input is `x = relu(h)`, giving the
/// gradient of `h` in `dx`: `dx = [x > 0]·(the pooling's gradient)` (`x > 0` exactly where
/// `h > 0`, relu's derivative), so that relu's own backward pass, and the zeroing of its
/// gradient, are not needed. Generated code calls it when the pooling is the only user of
/// the relu.
pub fn max_pool2d_backward_through_relu<T: Float>(
    g: &Pool2dGeom,
    x: &[T],
    y: &[T],
    dy: &[T],
    n: usize,
    dx: &mut [T],
) -> Result<()> {
    backward(g, x, y, dy, n, dx, Dx::ThroughRelu)
}

/// How [`backward`] writes `dx`.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Dx {
    /// `dx += ..`.
    Add,
    /// `dx = ..`.
    Overwrite,
    /// `dx = [x > 0]·..`.
    ThroughRelu,
}

/// The error for window `(i, j)` of plane `p`, whose output `target` is in none of its
/// inputs.
fn not_the_pooling<T: Float>(i: usize, j: usize, p: usize, target: T) -> crate::Error {
    invalid(
        "max_pool2d",
        format!(
            "`y` is not the max pooling of `x`: window ({i}, {j}) of plane {p} has no element equal to {target}"
        ),
    )
}

/// [`max_pool2d_backward`] with `dx` written as `how` says.
fn backward<T: Float>(
    g: &Pool2dGeom,
    x: &[T],
    y: &[T],
    dy: &[T],
    n: usize,
    dx: &mut [T],
    how: Dx,
) -> Result<()> {
    let op = "max_pool2d";
    g.check(op, n, ("x", x.len()), ("y", y.len()))?;
    g.check(op, n, ("dx", dx.len()), ("dy", dy.len()))?;
    if g.is_2x2() && how != Dx::Add {
        // every input in at most one window: each dx written once, in one pass
        let ok = match backward_2x2_f32(g, x, y, dy, dx, how == Dx::ThroughRelu) {
            Some(ok) => ok,
            None if how == Dx::Overwrite => {
                vectorize_above(dx.len(), Pool2x2Backward::<T, false> { g, x, y, dy, dx })
            }
            None => vectorize_above(dx.len(), Pool2x2Backward::<T, true> { g, x, y, dy, dx }),
        };
        if ok {
            return Ok(());
        }
        // a NaN maximum, or a window to name in the error: the plain pass below
    }
    if how != Dx::Add {
        dx.fill(T::zero());
    }
    let (oh, ow, plane) = (g.out_h(), g.out_w(), g.h * g.w);
    let planes = x
        .chunks_exact(plane)
        .zip(dx.chunks_exact_mut(plane))
        .zip(y.chunks_exact(oh * ow).zip(dy.chunks_exact(oh * ow)));
    for (p, ((xp, dxp), (yp, dyp))) in planes.enumerate() {
        if g.is_2x2() {
            for i in 0..oh {
                for j in 0..ow {
                    let (target, k) = (yp[i * ow + j], 2 * i * g.w + 2 * j);
                    let at = [k, k + 1, k + g.w, k + g.w + 1]
                        .into_iter()
                        .find(|&at| xp[at] == target || (xp[at].is_nan() && target.is_nan()))
                        .ok_or_else(|| not_the_pooling(i, j, p, target))?;
                    dxp[at] += dyp[i * ow + j];
                }
            }
            continue;
        }
        for i in 0..oh {
            let (r0, r1) = g.window(i, g.h);
            for j in 0..ow {
                let (c0, c1) = g.window(j, g.w);
                let target = yp[i * ow + j];
                let nan = target.is_nan();
                let mut found = None;
                'window: for r in r0..r1 {
                    let row = &xp[r * g.w + c0..r * g.w + c1];
                    for (c, &v) in row.iter().enumerate() {
                        if v == target || (nan && v.is_nan()) {
                            found = Some(r * g.w + c0 + c);
                            break 'window;
                        }
                    }
                }
                let at = found.ok_or_else(|| not_the_pooling(i, j, p, target))?;
                dxp[at] += dyp[i * ow + j];
            }
        }
    }
    if how == Dx::ThroughRelu {
        keep_where_positive(x, dx);
    }
    Ok(())
}

/// The 2x2 backward pass of [`Pool2x2Backward`] in sixteen `f32` lanes (`avx512.rs`), when
/// `T` is `f32` and the CPU has AVX-512: whether every window found its output, or `None`
/// when that pass does not apply.
fn backward_2x2_f32<T: Float>(
    g: &Pool2dGeom,
    x: &[T],
    y: &[T],
    dy: &[T],
    dx: &mut [T],
    relu: bool,
) -> Option<bool> {
    #[cfg(target_arch = "x86_64")]
    if let (Some(simd), Some(x), Some(y), Some(dy), Some(dx)) = (
        avx512::available(),
        as_f32(x),
        as_f32(y),
        as_f32(dy),
        as_f32_mut(dx),
    ) {
        let hw = (g.h, g.w);
        return Some(if relu {
            avx512::backward_2x2::<true>(simd, hw, x, y, dy, dx)
        } else {
            avx512::backward_2x2::<false>(simd, hw, x, y, dy, dx)
        });
    }
    let _ = (g, x, y, dy, dx, relu);
    None
}

/// The 2x2, stride-2 forward pass over whole planes: each output the maximum of its window,
/// NaN if the window holds one (the first NaN, as the general path keeps it).
struct Pool2x2<'a, T> {
    g: &'a Pool2dGeom,
    x: &'a [T],
    y: &'a mut [T],
}

impl<T: Float> Kernel for Pool2x2<'_, T> {
    type Output = ();
    #[inline(always)]
    fn run(self) {
        let (w, oh, ow) = (self.g.w, self.g.out_h(), self.g.out_w());
        let max = |best: T, v: T| if v > best || v.is_nan() { v } else { best };
        for (xp, yp) in self
            .x
            .chunks_exact(self.g.h * w)
            .zip(self.y.chunks_exact_mut(oh * ow))
        {
            for (i, yrow) in yp.chunks_exact_mut(ow).enumerate() {
                let (r0, r1) = (&xp[2 * i * w..][..2 * ow], &xp[(2 * i + 1) * w..][..2 * ow]);
                let pairs = r0.chunks_exact(2).zip(r1.chunks_exact(2));
                for (yv, (a, b)) in yrow.iter_mut().zip(pairs) {
                    let m = max(max(max(T::NEG_INFINITY, a[0]), a[1]), b[0]);
                    *yv = max(m, b[1]);
                }
            }
        }
    }
}

/// The 2x2, stride-2 backward pass that overwrites `dx` (through relu's derivative when
/// `RELU`): each window's gradient to its first input equal to its output, zeros elsewhere
/// (and in the row and column that no window covers when `h` or `w` is odd). Returns
/// whether every window found its output among its inputs by `==`: false for a NaN
/// maximum too, which the general pass then handles.
struct Pool2x2Backward<'a, T, const RELU: bool> {
    g: &'a Pool2dGeom,
    x: &'a [T],
    y: &'a [T],
    dy: &'a [T],
    dx: &'a mut [T],
}

impl<T: Float, const RELU: bool> Kernel for Pool2x2Backward<'_, T, RELU> {
    type Output = bool;
    #[inline(always)]
    fn run(self) -> bool {
        let (h, w, oh, ow) = (self.g.h, self.g.w, self.g.out_h(), self.g.out_w());
        let mut found_all = true;
        let planes = self
            .x
            .chunks_exact(h * w)
            .zip(self.dx.chunks_exact_mut(h * w))
            .zip(
                self.y
                    .chunks_exact(oh * ow)
                    .zip(self.dy.chunks_exact(oh * ow)),
            );
        for ((xp, dxp), (yp, dyp)) in planes {
            let (covered, uncovered) = dxp.split_at_mut(2 * oh * w);
            uncovered.fill(T::zero());
            for (i, drows) in covered.chunks_exact_mut(2 * w).enumerate() {
                let (d0, d1) = drows.split_at_mut(w);
                let (r0, r1) = (&xp[2 * i * w..][..w], &xp[(2 * i + 1) * w..][..w]);
                d0[2 * ow..].fill(T::zero());
                d1[2 * ow..].fill(T::zero());
                let (yr, gr) = (&yp[i * ow..][..ow], &dyp[i * ow..][..ow]);
                for j in 0..ow {
                    let (t, gy) = (yr[j], gr[j]);
                    let (a0, a1, b0, b1) = (r0[2 * j], r0[2 * j + 1], r1[2 * j], r1[2 * j + 1]);
                    // bitwise on bools: no branches in the loop
                    let (e0, e1, e2, e3) = (a0 == t, a1 == t, b0 == t, b1 == t);
                    let (m0, m1) = (e0, !e0 & e1);
                    let m2 = !e0 & !e1 & e2;
                    let m3 = !e0 & !e1 & !e2 & e3;
                    let pos = |v: T| !RELU | (v > T::zero());
                    let z = T::zero();
                    d0[2 * j] = if m0 & pos(a0) { gy } else { z };
                    d0[2 * j + 1] = if m1 & pos(a1) { gy } else { z };
                    d1[2 * j] = if m2 & pos(b0) { gy } else { z };
                    d1[2 * j + 1] = if m3 & pos(b1) { gy } else { z };
                    // a NaN maximum equals none of its window: the general pass handles it
                    found_all &= e0 | e1 | e2 | e3;
                }
            }
        }
        found_all
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::assert_close;
    use crate::testing::{assert_gradient, random_vec};

    #[test]
    fn literal_stride_equals_kernel() {
        // x = [[1, 5, 2, 0], [3, 4, 8, 1], [0, 0, -1, -2], [9, 0, -3, -4]], 2x2 windows, stride 2:
        // y = [[max(1, 5, 3, 4), max(2, 0, 8, 1)], [max(0, 0, 9, 0), max(-1, -2, -3, -4)]]
        //   = [[5, 8], [9, -1]]
        let g = Pool2dGeom::new(1, 4, 4, 2, 2, 0).unwrap();
        let x = [
            1.0f32, 5.0, 2.0, 0.0, 3.0, 4.0, 8.0, 1.0, 0.0, 0.0, -1.0, -2.0, 9.0, 0.0, -3.0, -4.0,
        ];
        let mut y = [0.0f32; 4];
        max_pool2d(&g, &x, 1, &mut y).unwrap();
        assert_close!(y, [5.0f32, 8.0, 9.0, -1.0]);
        // each gradient lands on its window's maximum, onto the 1 that dx held
        let mut dx = [1.0f32; 16];
        max_pool2d_backward(&g, &x, &y, &[10.0, 20.0, 30.0, 40.0], 1, &mut dx).unwrap();
        let mut expected = [1.0f32; 16];
        expected[1] += 10.0; // 5 at (0, 1)
        expected[6] += 20.0; // 8 at (1, 2)
        expected[12] += 30.0; // 9 at (3, 0)
        expected[10] += 40.0; // -1 at (2, 2)
        assert_close!(dx, expected);
    }

    #[test]
    fn literal_overlapping_padded_windows_and_ties() {
        // x = [[1, 2], [2, 0]], kernel 3, stride 1, padding 1: out = (2 + 2 - 3) / 1 + 1 = 2,
        // and every window covers all of x, whose max 2 appears twice: y = 2 everywhere, and
        // every gradient goes to the first 2, at (0, 1): dx = [0, 1+2+3+4, 0, 0]
        let g = Pool2dGeom::new(1, 2, 2, 3, 1, 1).unwrap();
        let x = [1.0f64, 2.0, 2.0, 0.0];
        let mut y = [0.0; 4];
        max_pool2d(&g, &x, 1, &mut y).unwrap();
        assert_close!(y, [2.0f64; 4]);
        let mut dx = [0.0; 4];
        max_pool2d_backward(&g, &x, &y, &[1.0, 2.0, 3.0, 4.0], 1, &mut dx).unwrap();
        assert_close!(dx, [0.0f64, 10.0, 0.0, 0.0]);
        // negative values: the padding (-inf) never wins
        let x = [-1.0f64, -2.0, -3.0, -4.0];
        max_pool2d(&g, &x, 1, &mut y).unwrap();
        assert_close!(y, [-1.0f64; 4]);
    }

    #[test]
    fn nan_propagates() {
        let g = Pool2dGeom::new(1, 2, 2, 2, 2, 0).unwrap();
        let x = [1.0f64, f64::NAN, 3.0, 0.0];
        let mut y = [0.0];
        max_pool2d(&g, &x, 1, &mut y).unwrap();
        assert!(y[0].is_nan());
        let mut dx = [0.0; 4];
        max_pool2d_backward(&g, &x, &y, &[1.0], 1, &mut dx).unwrap();
        assert_close!(dx, [0.0f64, 1.0, 0.0, 0.0]);
    }

    fn check(g: Pool2dGeom, n: usize, seed: u64) {
        let x: Vec<f64> = random_vec(seed, n * g.input_len(), -1.0, 1.0);
        let u: Vec<f64> = random_vec(seed + 1, n * g.output_len(), -1.0, 1.0);
        let mut y = vec![0.0; u.len()];
        max_pool2d(&g, &x, n, &mut y).unwrap();
        let mut dx = vec![0.0; x.len()];
        max_pool2d_backward(&g, &x, &y, &u, n, &mut dx).unwrap();
        let loss = |x: &[f64]| {
            let mut y = vec![0.0; u.len()];
            max_pool2d(&g, x, n, &mut y).unwrap();
            y.iter().zip(&u).map(|(p, q)| p * q).sum::<f64>()
        };
        assert_gradient("max_pool2d", loss, &x, &dx, 1e-7);
        // through relu: the gradient of Σ u·max_pool2d(relu(h)) with respect to h
        let h = &x;
        let a: Vec<f64> = h.iter().map(|&v| v.max(0.0)).collect();
        max_pool2d(&g, &a, n, &mut y).unwrap();
        let mut dh = vec![f64::NAN; x.len()];
        max_pool2d_backward_through_relu(&g, &a, &y, &u, n, &mut dh).unwrap();
        let loss = |h: &[f64]| {
            let a: Vec<f64> = h.iter().map(|&v| v.max(0.0)).collect();
            loss(&a)
        };
        assert_gradient("max_pool2d through relu", loss, h, &dh, 1e-7);
    }

    #[test]
    fn gradcheck() {
        check(Pool2dGeom::new(2, 4, 6, 2, 2, 0).unwrap(), 2, 1);
        check(Pool2dGeom::new(2, 5, 5, 3, 2, 1).unwrap(), 2, 10);
        check(Pool2dGeom::new(3, 4, 5, 3, 1, 1).unwrap(), 1, 20);
        check(Pool2dGeom::new(1, 7, 5, 2, 3, 1).unwrap(), 2, 30); // stride > kernel
    }

    #[test]
    fn bad_geometry_and_lengths_are_errors() {
        let err = Pool2dGeom::new(1, 4, 4, 3, 1, 2).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid argument to pool2d: padding 2 is more than half the kernel size 3"
        );
        let err = Pool2dGeom::new(1, 4, 4, 2, 0, 0).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid argument to pool2d: `stride` must be positive, got 0"
        );
        let err = Pool2dGeom::new(1, 4, 2, 5, 1, 1).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid argument to pool2d: kernel 5x5 is larger than the padded input 6x4 (4x2 with padding 1)"
        );
        assert!(Pool2dGeom::new(2, usize::MAX, usize::MAX, 2, 2, 1).is_err());
        let g = Pool2dGeom::new(2, 4, 4, 2, 2, 0).unwrap();
        let err = max_pool2d(&g, &[0.0f64; 31], 1, &mut [0.0; 8]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "shape mismatch in max_pool2d: expected `x` of [1, 2, 4, 4], got 31 elements"
        );
        let err = max_pool2d(&g, &[0.0f64; 32], 1, &mut [0.0; 7]).unwrap_err();
        assert!(err.to_string().contains("`y` of [1, 2, 2, 2]"), "{err}");
        let mut dx = [0.0f64; 32];
        let r = max_pool2d_backward(&g, &[0.0; 32], &[0.0; 8], &[0.0; 9], 1, &mut dx);
        assert!(r.unwrap_err().to_string().contains("`dy` of [1, 2, 2, 2]"));
        // a y that is not the forward output is caught
        let err =
            max_pool2d_backward(&g, &[0.0; 32], &[1.0; 8], &[0.0; 8], 1, &mut dx).unwrap_err();
        assert!(err.to_string().contains("no element equal to 1"), "{err}");
        let bad = Pool2dGeom { kernel: 0, ..g };
        assert!(max_pool2d(&bad, &[0.0f64; 32], 1, &mut [0.0; 8]).is_err());
    }

    #[test]
    fn two_by_two_path_matches_a_naive_pooling() {
        // odd sizes (the last row and column are dropped), ties and a NaN
        let (c, h, w, n) = (2, 5, 7, 2);
        let g = Pool2dGeom::new(c, h, w, 2, 2, 0).unwrap();
        let mut x: Vec<f64> = random_vec(31, n * c * h * w, -1.0, 1.0)
            .into_iter()
            .map(|v: f64| (v * 4.0).round() / 4.0)
            .collect();
        x[9] = f64::NAN;
        let mut y = vec![0.0; n * c * 2 * 3];
        max_pool2d(&g, &x, n, &mut y).unwrap();
        let dy: Vec<f64> = (0..y.len()).map(|k| k as f64 + 1.0).collect();
        let mut dx = vec![0.0; x.len()];
        max_pool2d_backward(&g, &x, &y, &dy, n, &mut dx).unwrap();
        let mut want_dx = vec![0.0; x.len()];
        for p in 0..n * c {
            for i in 0..2 {
                for j in 0..3 {
                    let at = |r: usize, s: usize| p * h * w + (2 * i + r) * w + 2 * j + s;
                    let window = [at(0, 0), at(0, 1), at(1, 0), at(1, 1)];
                    let vals: Vec<f64> = window.iter().map(|&k| x[k]).collect();
                    let want = if vals.iter().any(|v| v.is_nan()) {
                        f64::NAN
                    } else {
                        vals.iter().copied().fold(f64::NEG_INFINITY, f64::max)
                    };
                    let got = y[p * 6 + i * 3 + j];
                    assert!(got == want || (got.is_nan() && want.is_nan()));
                    let first = window
                        .iter()
                        .find(|&&k| x[k] == want || (x[k].is_nan() && want.is_nan()))
                        .unwrap();
                    want_dx[*first] += dy[p * 6 + i * 3 + j];
                }
            }
        }
        assert_eq!(dx, want_dx);
    }

    /// `overwrite` and `through_relu` against the accumulating pass onto zeros (and relu's
    /// own backward pass after it), on the 2x2 path with odd sizes, ties, NaN and zeros, and
    /// on overlapping, padded and strided windows.
    fn overwrite_and_through_relu_match_add<T: Float>() {
        let geoms = [
            Pool2dGeom::new(2, 5, 7, 2, 2, 0).unwrap(),
            Pool2dGeom::new(3, 28, 28, 2, 2, 0).unwrap(),
            Pool2dGeom::new(1, 4, 6, 2, 2, 0).unwrap(),
            Pool2dGeom::new(2, 5, 5, 3, 2, 1).unwrap(),
            Pool2dGeom::new(3, 4, 5, 3, 1, 1).unwrap(),
            Pool2dGeom::new(1, 7, 5, 2, 3, 1).unwrap(),
        ];
        for (s, g) in geoms.iter().enumerate() {
            let n = 3;
            // relu's output: rounded so that ties and zeros are common
            let mut x: Vec<T> = random_vec(40 + s as u64, n * g.input_len(), -1.0, 1.0)
                .into_iter()
                .map(|v: f64| T::from_f64((v * 4.0).round().max(0.0)))
                .collect();
            x[3] = T::from_f64(f64::NAN);
            let mut y = vec![T::zero(); n * g.output_len()];
            max_pool2d(g, &x, n, &mut y).unwrap();
            let dy: Vec<T> = random_vec(50 + s as u64, y.len(), -1.0, 1.0);
            let mut added = vec![T::zero(); x.len()];
            max_pool2d_backward(g, &x, &y, &dy, n, &mut added).unwrap();
            let nan = T::from_f64(f64::NAN);
            let mut set = vec![nan; x.len()];
            max_pool2d_backward_overwrite(g, &x, &y, &dy, n, &mut set).unwrap();
            assert_eq!(set, added, "overwrite, {g:?}");
            let mut want = vec![nan; x.len()];
            crate::ops::relu_backward_overwrite(&x, &x, &added, &mut want).unwrap();
            let mut through = vec![nan; x.len()];
            max_pool2d_backward_through_relu(g, &x, &y, &dy, n, &mut through).unwrap();
            assert_eq!(through, want, "through relu, {g:?}");
            assert!(through.iter().any(|&v| v != T::zero()));
            assert!(added.iter().zip(&through).any(|(&a, &t)| a != t));
        }
    }

    #[test]
    fn overwriting_and_through_relu_equal_adding_onto_zeros() {
        overwrite_and_through_relu_match_add::<f64>();
        overwrite_and_through_relu_match_add::<f32>();
    }

    #[test]
    fn literal_through_relu() {
        // x = relu(h) = [[0, 0, 2, 0, 7], [0, 0, 1, 3, 7], [7, 7, 7, 7, 7]], 2x2 windows: the
        // first window's maximum is 0 (the first one wins, and relu's derivative is 0
        // there), the second's 3; the last row and column are in no window.
        // dx = [[0, 0, 0, 0, 0], [0, 0, 0, 20, 0], [0, 0, 0, 0, 0]]
        let g = Pool2dGeom::new(1, 3, 5, 2, 2, 0).unwrap();
        let x = [
            0.0f32, 0.0, 2.0, 0.0, 7.0, 0.0, 0.0, 1.0, 3.0, 7.0, 7.0, 7.0, 7.0, 7.0, 7.0,
        ];
        let mut y = [0.0f32; 2];
        max_pool2d(&g, &x, 1, &mut y).unwrap();
        assert_eq!(y, [0.0, 3.0]);
        let mut dx = [f32::NAN; 15];
        max_pool2d_backward_through_relu(&g, &x, &y, &[10.0, 20.0], 1, &mut dx).unwrap();
        let mut want = [0.0f32; 15];
        want[8] = 20.0;
        assert_eq!(dx, want);
        // a y that is not the pooling of x is caught by the one-pass kernels too
        let err = max_pool2d_backward_overwrite(&g, &x, &[0.0, 4.0], &[1.0, 1.0], 1, &mut dx)
            .unwrap_err();
        assert!(
            err.to_string().contains("window (0, 1) of plane 0"),
            "{err}"
        );
    }

    /// The sixteen-lane 2x2 backward pass against the portable one, bit for bit: widths
    /// with no, one and two full groups of eight windows and a partial one, odd sizes,
    /// batches 1-5, ties and zeros (relu's outputs) and negative values; and a NaN maximum
    /// reported as not found, for the general pass.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn avx512_2x2_backward_matches_the_portable_pass() {
        let Some(simd) = avx512::available() else {
            return;
        };
        let mut checked = 0;
        for (s, (h, w, n)) in [
            (2, 2, 1),
            (3, 5, 2),
            (4, 16, 3),
            (28, 28, 4),
            (5, 35, 5),
            (6, 49, 2),
            (14, 14, 3),
            (7, 33, 1),
        ]
        .into_iter()
        .enumerate()
        {
            let g = Pool2dGeom::new(2, h, w, 2, 2, 0).unwrap();
            for relu in [false, true] {
                let x: Vec<f32> = random_vec(70 + s as u64, n * g.input_len(), -1.0, 1.0)
                    .into_iter()
                    .map(|v: f32| {
                        let v = (v * 4.0).round();
                        if relu {
                            v.max(0.0)
                        } else {
                            v
                        }
                    })
                    .collect();
                let mut y = vec![0.0f32; n * g.output_len()];
                max_pool2d(&g, &x, n, &mut y).unwrap();
                let dy: Vec<f32> = random_vec(80 + s as u64, y.len(), -1.0, 1.0);
                let mut want = vec![f32::NAN; x.len()];
                let portable = {
                    let (g, x, y, dy, dx) = (&g, &x[..], &y[..], &dy[..], &mut want[..]);
                    if relu {
                        Pool2x2Backward::<f32, true> { g, x, y, dy, dx }.run()
                    } else {
                        Pool2x2Backward::<f32, false> { g, x, y, dy, dx }.run()
                    }
                };
                let mut got = vec![f32::NAN; x.len()];
                let fast = if relu {
                    avx512::backward_2x2::<true>(simd, (h, w), &x, &y, &dy, &mut got)
                } else {
                    avx512::backward_2x2::<false>(simd, (h, w), &x, &y, &dy, &mut got)
                };
                assert!(portable && fast, "{h}x{w}, n = {n}");
                let bits = |v: &[f32]| v.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(&got), bits(&want), "{h}x{w}, n = {n}, relu {relu}");
                assert!(got.iter().any(|&v| v != 0.0));
                checked += 1;
                // a NaN maximum is not found, as in the portable pass
                let mut x = x;
                // the second input of the last plane's first window
                let at = x.len() - h * w + 1;
                x[at] = f32::NAN;
                max_pool2d(&g, &x, n, &mut y).unwrap();
                let fast = avx512::backward_2x2::<false>(simd, (h, w), &x, &y, &dy, &mut got);
                assert!(!fast, "{h}x{w}, n = {n}: NaN found");
            }
        }
        assert_eq!(checked, 16);
    }

    /// The sixteen-lane 2x2 forward pass against the portable one, bit for bit: widths of
    /// 1-40 windows (partial and whole groups of sixteen), odd sizes, batches 1-5, ties of
    /// `0` and `-0`, `-∞`, and NaNs of different payloads (the last one in a window kept).
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn avx512_2x2_forward_matches_the_portable_pass() {
        let Some(simd) = avx512::available() else {
            return;
        };
        let specials = [
            0.0f32,
            -0.0,
            f32::NEG_INFINITY,
            f32::NAN,
            -f32::NAN,
            f32::from_bits(0x7fc0_0001),
        ];
        for (s, (h, w, n)) in [
            (2, 2, 1),
            (3, 5, 2),
            (28, 28, 4),
            (14, 14, 5),
            (5, 33, 3),
            (4, 64, 2),
            (6, 81, 1),
        ]
        .into_iter()
        .enumerate()
        {
            let g = Pool2dGeom::new(3, h, w, 2, 2, 0).unwrap();
            let mut x: Vec<f32> = random_vec(110 + s as u64, n * g.input_len(), -1.0, 1.0)
                .into_iter()
                .map(|v: f32| (v * 4.0).round())
                .collect();
            for (k, v) in x.iter_mut().enumerate().skip(s).step_by(5) {
                *v = specials[(k / 5) % specials.len()];
            }
            let mut want = vec![1.0f32; n * g.output_len()];
            Pool2x2 {
                g: &g,
                x: &x,
                y: &mut want,
            }
            .run();
            let mut got = vec![1.0f32; want.len()];
            avx512::forward_2x2(simd, (h, w), &x, &mut got);
            let bits = |v: &[f32]| v.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&got), bits(&want), "{h}x{w}, n = {n}");
            assert!(got.iter().any(|v| v.is_nan()) || got.len() < 8);
        }
    }
}
