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
use crate::{invalid, Float, Result};

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
        for (xp, yp) in x.chunks_exact(g.h * g.w).zip(y.chunks_exact_mut(oh * ow)) {
            for (i, yrow) in yp.chunks_exact_mut(ow).enumerate() {
                let (r0, r1) = (&xp[2 * i * g.w..][..g.w], &xp[(2 * i + 1) * g.w..][..g.w]);
                for (j, yv) in yrow.iter_mut().enumerate() {
                    let k = 2 * j;
                    *yv = [r0[k], r0[k + 1], r1[k], r1[k + 1]].into_iter().fold(
                        T::NEG_INFINITY,
                        |best, v| {
                            if v > best || v.is_nan() {
                                v
                            } else {
                                best
                            }
                        },
                    );
                }
            }
        }
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
    let op = "max_pool2d";
    g.check(op, n, ("x", x.len()), ("y", y.len()))?;
    g.check(op, n, ("dx", dx.len()), ("dy", dy.len()))?;
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
                        .ok_or_else(|| {
                            invalid(
                                op,
                                format!(
                                    "`y` is not the max pooling of `x`: window ({i}, {j}) of plane {p} has no element equal to {target}"
                                ),
                            )
                        })?;
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
                let at = found.ok_or_else(|| {
                        invalid(
                            op,
                            format!(
                                "`y` is not the max pooling of `x`: window ({i}, {j}) of plane {p} has no element equal to {target}"
                            ),
                        )
                    })?;
                dxp[at] += dyp[i * ow + j];
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
}
