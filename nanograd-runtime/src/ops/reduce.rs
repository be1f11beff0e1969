//! `reduce(x, init, f) = f(..f(f(init, x_0), x_1).., x_{n-1})`, the seed's `reduce-tensor`:
//! a fold of all elements to a scalar. The seed's reducer takes `(element accumulator)`;
//! here `f(acc, elem)`, in the order of Rust's `Iterator::fold`.
//!
//! A generic fold has no derivative the kernel could know, so the backward pass takes the
//! seed's `compute-gradient` rule: `dx_i += rule(dy, i, x_i, x)`. Without one the gradient
//! is uniform, as for [`sum`](super::sum): `dx_i += dy`.

use crate::{check_len, Float, Result};

/// The type of a function-pointer gradient rule `(grad_out, index, value, all_values) ->
/// grad_in`; `None::<GradientRule<f32>>` spells "no rule" for [`reduce_backward`].
pub type GradientRule<T> = fn(T, usize, T, &[T]) -> T;

/// `f(..f(f(init, x_0), x_1).., x_{n-1})` (`init` for an empty `x`).
pub fn reduce<T: Float>(x: &[T], init: T, f: impl Fn(T, T) -> T) -> T {
    x.iter().fold(init, |acc, &v| f(acc, v))
}

/// `dx_i += rule(dy, i, x_i, x)`, or `dx_i += dy` when `rule` is `None`.
pub fn reduce_backward<T: Float>(
    x: &[T],
    dy: T,
    rule: Option<impl Fn(T, usize, T, &[T]) -> T>,
    dx: &mut [T],
) -> Result<()> {
    check_len("reduce", "dx", x.len(), dx.len())?;
    match rule {
        Some(rule) => {
            for (i, d) in dx.iter_mut().enumerate() {
                *d += rule(dy, i, x[i], x);
            }
        }
        None => {
            for d in dx.iter_mut() {
                *d += dy;
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

    /// The seed's custom maximum: the gradient flows only to the maximal element.
    fn max_rule(g: f64, _: usize, v: f64, all: &[f64]) -> f64 {
        if v == reduce(all, f64::NEG_INFINITY, f64::max) {
            g
        } else {
            0.0
        }
    }

    #[test]
    fn literal() {
        // a sum with the uniform default: 1 + 2 + 3 = 6, each gradient dy = 2
        let x = [1.0f32, 2.0, 3.0];
        assert_close!(reduce(&x, 0.0, |a, b| a + b), 6.0f32);
        let mut dx = [0.0f32; 3];
        reduce_backward(&x, 2.0, None::<GradientRule<f32>>, &mut dx).unwrap();
        assert_close!(dx, [2.0f32; 3]);
        // f(acc, elem) order: ((10 - 1) - 2) - 3 = 4
        assert_close!(reduce(&x, 10.0, |acc, v| acc - v), 4.0f32);
        // the seed's maximum: max(-1, 5, 2) = 5, the gradient goes to index 1 only
        let x = [-1.0f64, 5.0, 2.0];
        assert_close!(reduce(&x, f64::NEG_INFINITY, f64::max), 5.0f64);
        let mut dx = [0.0f64; 3];
        reduce_backward(&x, 3.0, Some(max_rule), &mut dx).unwrap();
        assert_close!(dx, [0.0f64, 3.0, 0.0]);
        // a closure rule sees the index: dx_i += dy * i
        let mut dx = [1.0f64; 3];
        reduce_backward(
            &x,
            0.5,
            Some(|g: f64, i: usize, _: f64, _: &[f64]| g * i as f64),
            &mut dx,
        )
        .unwrap();
        assert_close!(dx, [1.0f64, 1.5, 2.0]);
    }

    #[test]
    fn gradcheck() {
        // the maximum of distinct values is differentiable; its gradient is one-hot
        let x: Vec<f64> = random_vec(1, 9, -1.0, 1.0);
        let mut dx = vec![0.0; 9];
        reduce_backward(&x, 0.7, Some(max_rule), &mut dx).unwrap();
        let loss = |x: &[f64]| 0.7 * reduce(x, f64::NEG_INFINITY, f64::max);
        assert_gradient("reduce max", loss, &x, &dx, 1e-7);
        // a sum of squares with its rule 2 x_i dy
        let mut dx = vec![0.0; 9];
        let rule = |g: f64, _: usize, v: f64, _: &[f64]| 2.0 * v * g;
        reduce_backward(&x, 0.7, Some(rule), &mut dx).unwrap();
        let loss = |x: &[f64]| 0.7 * reduce(x, 0.0, |acc, v| acc + v * v);
        assert_gradient("reduce sum of squares", loss, &x, &dx, 1e-7);
        // the uniform default is the gradient of the sum
        let mut dx = vec![0.0; 9];
        reduce_backward(&x, 0.7, None::<GradientRule<f64>>, &mut dx).unwrap();
        let loss = |x: &[f64]| 0.7 * reduce(x, 0.0, |acc, v| acc + v);
        assert_gradient("reduce sum", loss, &x, &dx, 1e-7);
    }

    #[test]
    fn errors() {
        let err = reduce_backward(&[1.0f64; 3], 1.0, None::<GradientRule<f64>>, &mut [0.0; 4])
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "length mismatch in reduce: `dx` has 4 elements, expected 3"
        );
    }
}
