//! `relu(x) = max(0, x)`; `d relu / dx = 1` where `x > 0`, else `0` (PyTorch's choice at 0).
//! A NaN input stays NaN, as in PyTorch.

use crate::simd::{vectorize_above, Kernel};
use crate::{check_len, Float, Result};

/// `y = max(0, x)` elementwise.
pub fn relu<T: Float>(x: &[T], y: &mut [T]) -> Result<()> {
    check_len("relu", "y", x.len(), y.len())?;
    vectorize_above(x.len(), Relu { x, y });
    Ok(())
}

/// `x = max(0, x)` in place, as [`relu`] computes it (generated code calls it after batch
/// norm's eval pass when batch norm writes the relu's output itself in a training step).
pub fn relu_in_place<T: Float>(x: &mut [T]) {
    vectorize_above(x.len(), ReluInPlace { x });
}

/// `dx += dy * [x > 0]`.
pub fn relu_backward<T: Float>(x: &[T], y: &[T], dy: &[T], dx: &mut [T]) -> Result<()> {
    backward(x, y, dy, dx, true)
}

/// `dx = dy * [x > 0]`: [`relu_backward`] for a `dx` that holds nothing yet (the first
/// contribution to a gradient, which then needs no zeroing).
pub fn relu_backward_overwrite<T: Float>(x: &[T], y: &[T], dy: &[T], dx: &mut [T]) -> Result<()> {
    backward(x, y, dy, dx, false)
}

fn backward<T: Float>(x: &[T], y: &[T], dy: &[T], dx: &mut [T], add: bool) -> Result<()> {
    let n = x.len();
    check_len("relu", "y", n, y.len())?;
    check_len("relu", "dy", n, dy.len())?;
    check_len("relu", "dx", n, dx.len())?;
    if add {
        vectorize_above(n, ReluBackward::<T, true> { x, dy, dx });
    } else {
        vectorize_above(n, ReluBackward::<T, false> { x, dy, dx });
    }
    Ok(())
}

/// `d[i] = 0` where `x[i] <= 0` (or NaN): relu's backward pass in place, for kernels that
/// fold it into their own (`x` is then relu's output, positive exactly where its input is).
pub(crate) fn keep_where_positive<T: Float>(x: &[T], d: &mut [T]) {
    vectorize_above(d.len(), KeepWherePositive { x, d })
}

struct KeepWherePositive<'a, T> {
    x: &'a [T],
    d: &'a mut [T],
}

impl<T: Float> Kernel for KeepWherePositive<'_, T> {
    type Output = ();
    #[inline(always)]
    fn run(self) {
        for (d, &xi) in self.d.iter_mut().zip(self.x) {
            *d = if xi > T::zero() { *d } else { T::zero() };
        }
    }
}

/// [`relu`]'s loop, compiled for the CPU's widest vectors.
struct Relu<'a, T> {
    x: &'a [T],
    y: &'a mut [T],
}

impl<T: Float> Kernel for Relu<'_, T> {
    type Output = ();
    #[inline(always)]
    fn run(self) {
        for (yi, &xi) in self.y.iter_mut().zip(self.x) {
            *yi = if xi < T::zero() { T::zero() } else { xi };
        }
    }
}

/// [`relu_in_place`]'s loop.
struct ReluInPlace<'a, T> {
    x: &'a mut [T],
}

impl<T: Float> Kernel for ReluInPlace<'_, T> {
    type Output = ();
    #[inline(always)]
    fn run(self) {
        for xi in self.x.iter_mut() {
            *xi = if *xi < T::zero() { T::zero() } else { *xi };
        }
    }
}

/// [`relu_backward`]'s loop (adding onto `dx` when `ADD`, else overwriting it), compiled
/// for the CPU's widest vectors.
struct ReluBackward<'a, T, const ADD: bool> {
    x: &'a [T],
    dy: &'a [T],
    dx: &'a mut [T],
}

impl<T: Float, const ADD: bool> Kernel for ReluBackward<'_, T, ADD> {
    type Output = ();
    #[inline(always)]
    fn run(self) {
        for ((d, &xi), &g) in self.dx.iter_mut().zip(self.x).zip(self.dy) {
            let v = if xi > T::zero() { g } else { T::zero() };
            *d = if ADD { *d + v } else { v };
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
        let x = [-2.0f32, -0.0, 0.5, 3.0];
        let mut y = [9.0f32; 4];
        relu(&x, &mut y).unwrap();
        assert_close!(y, [0.0f32, 0.0, 0.5, 3.0]);
        // gradient passes where x > 0 and accumulates onto what dx held
        let mut dx = [1.0f32; 4];
        relu_backward(&x, &y, &[10.0, 10.0, 10.0, 10.0], &mut dx).unwrap();
        assert_close!(dx, [1.0f32, 1.0, 11.0, 11.0]);
        // the overwriting form ignores what dx held (NaN here)
        let mut dx = [f32::NAN; 4];
        relu_backward_overwrite(&x, &y, &[10.0, 10.0, 10.0, 10.0], &mut dx).unwrap();
        assert_close!(dx, [0.0f32, 0.0, 10.0, 10.0]);
        relu(&[f32::NAN], &mut y[..1]).unwrap();
        assert!(y[0].is_nan());
        // in place: the same values, NaN kept
        let mut z = [-2.0f32, -0.0, 0.5, 3.0, f32::NAN];
        relu_in_place(&mut z);
        assert_eq!(z[..4], [0.0f32, -0.0, 0.5, 3.0]);
        assert!(z[4].is_nan());
        let x: Vec<f32> = random_vec(3, 1000, -1.0, 1.0);
        let (mut y, mut z) = (vec![0.0f32; 1000], x.clone());
        relu(&x, &mut y).unwrap();
        relu_in_place(&mut z);
        assert_eq!(y, z);
    }

    #[test]
    fn gradcheck() {
        // keep away from the kink at 0, where the derivative does not exist
        let x: Vec<f64> = random_vec(1, 12, -1.0, 1.0)
            .into_iter()
            .map(|v: f64| if v.abs() < 0.1 { v + 0.2 } else { v })
            .collect();
        let w: Vec<f64> = random_vec(2, 12, -1.0, 1.0);
        let mut y = vec![0.0; 12];
        relu(&x, &mut y).unwrap();
        let mut dx = vec![0.0; 12];
        relu_backward(&x, &y, &w, &mut dx).unwrap();
        let loss = |x: &[f64]| {
            let mut y = vec![0.0; x.len()];
            relu(x, &mut y).unwrap();
            y.iter().zip(&w).map(|(a, b)| a * b).sum()
        };
        assert_gradient("relu", loss, &x, &dx, 1e-7);
        let mut set = vec![f64::NAN; 12];
        relu_backward_overwrite(&x, &y, &w, &mut set).unwrap();
        assert_eq!(set, dx);
    }

    #[test]
    fn length_mismatch_is_an_error() {
        let err = relu(&[1.0f64, 2.0], &mut [0.0; 3]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "length mismatch in relu: `y` has 3 elements, expected 2"
        );
        let mut dx = [0.0f64; 2];
        assert!(relu_backward(&[1.0, 2.0], &[1.0, 2.0], &[1.0], &mut dx).is_err());
    }
}
