//! `flatten(x)`: `[B, d1, d2, ..]` to `[B, d1 * d2 * ..]`, keeping the batch dimension as
//! PyTorch's `nn.Flatten` does (the seed's `flatten-tensor`, which flattens to 1-D, is the
//! same on the data); `dL/dx = dL/dy` element for element. On flat row-major buffers both
//! passes are copies; [`flatten_shape`] gives the output shape.

use super::reshape::{add_into, copy};
use crate::{fmt_shape, invalid, Float, Result};

/// The shape `[B, d1 * d2 * ..]` of `flatten` applied to `[B, d1, d2, ..]`; an error for a
/// shape of fewer than two dimensions (as in PyTorch) or an element count that overflows.
pub fn flatten_shape(shape: &[usize]) -> Result<[usize; 2]> {
    let bad = |why: &str| invalid("flatten", format!("{why}, got shape {}", fmt_shape(shape)));
    match shape {
        [batch, rest @ ..] if !rest.is_empty() => {
            let inner = rest
                .iter()
                .try_fold(1usize, |acc, &d| acc.checked_mul(d))
                .ok_or_else(|| bad("element count overflows"))?;
            Ok([*batch, inner])
        }
        _ => Err(bad("needs a batch dimension and at least one more")),
    }
}

/// `y = x`, element for element; `y` must hold as many elements as `x`.
pub fn flatten<T: Float>(x: &[T], y: &mut [T]) -> Result<()> {
    copy("flatten", x, y)
}

/// `dx += dy`, element for element.
pub fn flatten_backward<T: Float>(dy: &[T], dx: &mut [T]) -> Result<()> {
    add_into("flatten", dy, dx)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::assert_close;
    use crate::testing::{assert_gradient, random_vec};

    #[test]
    fn literal() {
        // [2, 3, 4, 5] -> [2, 3 * 4 * 5] = [2, 60]
        assert_eq!(flatten_shape(&[2, 3, 4, 5]).unwrap(), [2, 60]);
        assert_eq!(flatten_shape(&[7, 4]).unwrap(), [7, 4]);
        let mut y = [0.0f32; 4];
        flatten(&[1.0, -2.0, 3.0, -4.0], &mut y).unwrap();
        assert_close!(y, [1.0f32, -2.0, 3.0, -4.0]);
        let mut dx = [0.5f32; 4];
        flatten_backward(&[1.0, 2.0, 3.0, 4.0], &mut dx).unwrap();
        assert_close!(dx, [1.5f32, 2.5, 3.5, 4.5]);
    }

    #[test]
    fn gradcheck() {
        let x: Vec<f64> = random_vec(1, 8, -1.0, 1.0);
        let w: Vec<f64> = random_vec(2, 8, -1.0, 1.0);
        let mut dx = vec![0.0; 8];
        flatten_backward(&w, &mut dx).unwrap();
        let loss = |x: &[f64]| {
            let mut y = vec![0.0; 8];
            flatten(x, &mut y).unwrap();
            y.iter().zip(&w).map(|(y, w)| y * w).sum()
        };
        assert_gradient("flatten", loss, &x, &dx, 1e-7);
    }

    #[test]
    fn errors() {
        let err = flatten_shape(&[5]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid argument to flatten: needs a batch dimension and at least one more, \
             got shape [5]"
        );
        assert!(flatten_shape(&[]).is_err());
        assert!(flatten_shape(&[1, usize::MAX, 2]).is_err());
        let err = flatten(&[1.0f64; 6], &mut [0.0; 4]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "length mismatch in flatten: `y` has 4 elements, expected 6"
        );
        assert!(flatten_backward(&[1.0f64; 6], &mut [0.0; 4]).is_err());
    }
}
