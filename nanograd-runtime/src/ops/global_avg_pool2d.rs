//! Global average pooling, the seed's `global-avg-pool2d`: `[n, c, h, w] -> [n, c]` with
//! `y[n, c] = (1 / hw) · Σ_{i, j} x[n, c, i, j]` (the seed's `(C, H, W) -> (C,)` is `n = 1`).
//! Gradient, "distributed uniformly over all spatial positions": `dx[n, c, i, j] += dy[n, c] / hw`.

use crate::simd::{vectorize_above, Kernel};
use crate::{check_len, invalid, Float, Result};

/// Checks `hw > 0` and the lengths of a `[n, c, hw]` and a `[n, c]` buffer.
fn check(
    n: usize,
    c: usize,
    hw: usize,
    x: (&'static str, usize),
    y: (&'static str, usize),
) -> Result<()> {
    let op = "global_avg_pool2d";
    if hw == 0 {
        return Err(invalid(op, "the spatial size `hw` must be positive, got 0"));
    }
    let rows = n.checked_mul(c).ok_or_else(|| {
        invalid(
            op,
            format!("[{n}, {c}] has more elements than fit in memory"),
        )
    })?;
    let elems = rows.checked_mul(hw).ok_or_else(|| {
        invalid(
            op,
            format!("[{n}, {c}, {hw}] has more elements than fit in memory"),
        )
    })?;
    check_len(op, x.0, elems, x.1)?;
    check_len(op, y.0, rows, y.1)
}

/// `y[r] = mean(x[r, ..])` for `x: [n, c, hw]` (`hw = h·w`) and `y: [n, c]`.
pub fn global_avg_pool2d<T: Float>(
    x: &[T],
    n: usize,
    c: usize,
    hw: usize,
    y: &mut [T],
) -> Result<()> {
    check(n, c, hw, ("x", x.len()), ("y", y.len()))?;
    vectorize_above(x.len(), Pool { x, hw, y });
    Ok(())
}

/// The backward pass of [`global_avg_pool2d`]: `dx[r, ..] += dy[r] / hw`.
pub fn global_avg_pool2d_backward<T: Float>(
    dy: &[T],
    n: usize,
    c: usize,
    hw: usize,
    dx: &mut [T],
) -> Result<()> {
    check(n, c, hw, ("dx", dx.len()), ("dy", dy.len()))?;
    vectorize_above(dx.len(), PoolBackward::<T, true> { dy, hw, dx });
    Ok(())
}

/// `dx[r, ..] = dy[r] / hw`: [`global_avg_pool2d_backward`] for a `dx` that holds nothing
/// yet (the first contribution to a gradient, which then needs no zeroing).
pub fn global_avg_pool2d_backward_overwrite<T: Float>(
    dy: &[T],
    n: usize,
    c: usize,
    hw: usize,
    dx: &mut [T],
) -> Result<()> {
    check(n, c, hw, ("dx", dx.len()), ("dy", dy.len()))?;
    vectorize_above(dx.len(), PoolBackward::<T, false> { dy, hw, dx });
    Ok(())
}

/// [`global_avg_pool2d`]'s loop: each row summed in [`LANES`] interleaved partial sums, so
/// that it vectorises (float sums are not reassociated otherwise).
struct Pool<'a, T> {
    x: &'a [T],
    hw: usize,
    y: &'a mut [T],
}

/// Partial sums of one row.
const LANES: usize = 16;

impl<T: Float> Kernel for Pool<'_, T> {
    type Output = ();
    #[inline(always)]
    fn run(self) {
        let scale = T::one() / T::from_usize(self.hw);
        for (yi, row) in self.y.iter_mut().zip(self.x.chunks_exact(self.hw)) {
            let (chunks, tail) = row.as_chunks::<LANES>();
            let mut acc = [T::zero(); LANES];
            for chunk in chunks {
                for (a, &e) in acc.iter_mut().zip(chunk) {
                    *a += e;
                }
            }
            let tail = tail.iter().fold(T::zero(), |s, &e| s + e);
            *yi = acc.iter().fold(tail, |s, &a| s + a) * scale;
        }
    }
}

/// [`global_avg_pool2d_backward_overwrite`] for a pooling whose input is `x = relu(h)`,
/// giving the gradient of `h` in `dx`: `dx[r, i] = [x[r, i] > 0]·dy[r] / hw` (`x > 0`
/// exactly where `h > 0`, relu's derivative), so that relu's own backward pass is not
/// needed. Generated code calls it when the pooling is the only user of the relu.
pub fn global_avg_pool2d_backward_through_relu<T: Float>(
    x: &[T],
    dy: &[T],
    n: usize,
    c: usize,
    hw: usize,
    dx: &mut [T],
) -> Result<()> {
    check(n, c, hw, ("dx", dx.len()), ("dy", dy.len()))?;
    check_len("global_avg_pool2d", "x", dx.len(), x.len())?;
    vectorize_above(dx.len(), ThroughRelu { x, dy, hw, dx });
    Ok(())
}

/// [`global_avg_pool2d_backward_through_relu`]'s loop.
struct ThroughRelu<'a, T> {
    x: &'a [T],
    dy: &'a [T],
    hw: usize,
    dx: &'a mut [T],
}

impl<T: Float> Kernel for ThroughRelu<'_, T> {
    type Output = ();
    #[inline(always)]
    fn run(self) {
        let scale = T::one() / T::from_usize(self.hw);
        let rows = self
            .dx
            .chunks_exact_mut(self.hw)
            .zip(self.x.chunks_exact(self.hw));
        for (&g, (row, x)) in self.dy.iter().zip(rows) {
            let share = g * scale;
            for (d, &xi) in row.iter_mut().zip(x) {
                *d = if xi > T::zero() { share } else { T::zero() };
            }
        }
    }
}

/// [`global_avg_pool2d_backward`]'s loop, adding onto `dx` when `ADD`, else overwriting it.
struct PoolBackward<'a, T, const ADD: bool> {
    dy: &'a [T],
    hw: usize,
    dx: &'a mut [T],
}

impl<T: Float, const ADD: bool> Kernel for PoolBackward<'_, T, ADD> {
    type Output = ();
    #[inline(always)]
    fn run(self) {
        let scale = T::one() / T::from_usize(self.hw);
        for (&g, row) in self.dy.iter().zip(self.dx.chunks_exact_mut(self.hw)) {
            let share = g * scale;
            if ADD {
                for d in row {
                    *d += share;
                }
            } else {
                row.fill(share);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::assert_close;
    use crate::testing::{assert_gradient, random_vec};

    #[test]
    fn literal() {
        // two channels of 2x2: mean(1, 2, 3, 4) = 2.5, mean(0, 0, 0, 4) = 1
        let x = [1.0f32, 2.0, 3.0, 4.0, 0.0, 0.0, 0.0, 4.0];
        let mut y = [0.0f32; 2];
        global_avg_pool2d(&x, 1, 2, 4, &mut y).unwrap();
        assert_close!(y, [2.5f32, 1.0]);
        // dy = [2, 4]: each position gets dy / 4 = 0.5 and 1, onto the 1 already held
        let mut dx = [1.0f32; 8];
        global_avg_pool2d_backward(&[2.0, 4.0], 1, 2, 4, &mut dx).unwrap();
        assert_close!(dx, [1.5f32, 1.5, 1.5, 1.5, 2.0, 2.0, 2.0, 2.0]);
        // overwriting: dy / 4 whatever dx held
        let mut dx = [f32::NAN; 8];
        global_avg_pool2d_backward_overwrite(&[2.0, 4.0], 1, 2, 4, &mut dx).unwrap();
        assert_close!(dx, [0.5f32, 0.5, 0.5, 0.5, 1.0, 1.0, 1.0, 1.0]);
    }

    #[test]
    fn gradcheck() {
        let (n, c, hw) = (2, 3, 5);
        let x: Vec<f64> = random_vec(1, n * c * hw, -1.0, 1.0);
        let u: Vec<f64> = random_vec(2, n * c, -1.0, 1.0);
        let mut dx = vec![0.0; x.len()];
        global_avg_pool2d_backward(&u, n, c, hw, &mut dx).unwrap();
        let loss = |x: &[f64]| {
            let mut y = vec![0.0; n * c];
            global_avg_pool2d(x, n, c, hw, &mut y).unwrap();
            y.iter().zip(&u).map(|(p, q)| p * q).sum::<f64>()
        };
        assert_gradient("global_avg_pool2d", loss, &x, &dx, 1e-7);
        let mut set = vec![f64::NAN; x.len()];
        global_avg_pool2d_backward_overwrite(&u, n, c, hw, &mut set).unwrap();
        assert_eq!(set, dx);
        // through a relu: the gradient of h for pool(relu(h)), relu's derivative applied
        let a: Vec<f64> = x.iter().map(|&v| v.max(0.0)).collect();
        let mut dh = vec![f64::NAN; x.len()];
        global_avg_pool2d_backward_through_relu(&a, &u, n, c, hw, &mut dh).unwrap();
        let mut expected = vec![f64::NAN; x.len()];
        crate::ops::relu_backward_overwrite(&x, &a, &dx, &mut expected).unwrap();
        assert_eq!(dh, expected);
        let loss_h = |h: &[f64]| {
            let a: Vec<f64> = h.iter().map(|&v| v.max(0.0)).collect();
            loss(&a)
        };
        // away from relu's kink at 0
        let h: Vec<f64> = x
            .iter()
            .map(|&v| if v.abs() < 0.1 { v + 0.2 } else { v })
            .collect();
        let a: Vec<f64> = h.iter().map(|&v| v.max(0.0)).collect();
        global_avg_pool2d_backward_through_relu(&a, &u, n, c, hw, &mut dh).unwrap();
        assert_gradient("global_avg_pool2d through relu", loss_h, &h, &dh, 1e-7);
    }

    #[test]
    fn bad_sizes_are_errors() {
        let err = global_avg_pool2d(&[0.0f64; 7], 1, 2, 4, &mut [0.0; 2]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "length mismatch in global_avg_pool2d: `x` has 7 elements, expected 8"
        );
        let err = global_avg_pool2d_backward(&[0.0f64; 3], 1, 2, 4, &mut [0.0; 8]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "length mismatch in global_avg_pool2d: `dy` has 3 elements, expected 2"
        );
        let err = global_avg_pool2d::<f64>(&[], 1, 2, 0, &mut [0.0; 2]).unwrap_err();
        assert!(err.to_string().contains("`hw` must be positive"), "{err}");
    }
}
