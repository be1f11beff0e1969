//! `reshape(x, shape)`: the same elements in the same row-major order under another shape
//! (the element counts must match), the seed's `reshape`; `dL/dx = dL/dy` element for
//! element. On flat buffers both passes are copies, kept as ops so that generated code
//! treats every node alike (the macro checks the shapes; the kernel checks the counts).

use crate::blas::axpy;
use crate::{check_len, Float, Result};

/// `y = x`, element for element; `y` must hold as many elements as `x`.
pub fn reshape<T: Float>(x: &[T], y: &mut [T]) -> Result<()> {
    copy("reshape", x, y)
}

/// `dx += dy`, element for element.
pub fn reshape_backward<T: Float>(dy: &[T], dx: &mut [T]) -> Result<()> {
    add_into("reshape", dy, dx)
}

/// The forward pass of the ops that only change a shape: `y = x`.
pub(super) fn copy<T: Float>(op: &'static str, x: &[T], y: &mut [T]) -> Result<()> {
    check_len(op, "y", x.len(), y.len())?;
    y.copy_from_slice(x);
    Ok(())
}

/// Their backward pass: `dx += dy`.
pub(super) fn add_into<T: Float>(op: &'static str, dy: &[T], dx: &mut [T]) -> Result<()> {
    check_len(op, "dx", dy.len(), dx.len())?;
    axpy(T::one(), dy, dx);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::assert_close;
    use crate::testing::{assert_gradient, random_vec};

    #[test]
    fn literal() {
        // the seed's example: [[1, 2], [3, 4]] reshaped to [4] keeps row-major order
        let mut y = [0.0f32; 4];
        reshape(&[1.0, 2.0, 3.0, 4.0], &mut y).unwrap();
        assert_close!(y, [1.0f32, 2.0, 3.0, 4.0]);
        let mut dx = [1.0f32; 4];
        reshape_backward(&[1.0, 2.0, 3.0, 4.0], &mut dx).unwrap();
        assert_close!(dx, [2.0f32, 3.0, 4.0, 5.0]);
    }

    #[test]
    fn gradcheck() {
        let x: Vec<f64> = random_vec(1, 6, -1.0, 1.0);
        let w: Vec<f64> = random_vec(2, 6, -1.0, 1.0);
        let mut dx = vec![0.0; 6];
        reshape_backward(&w, &mut dx).unwrap();
        let loss = |x: &[f64]| {
            let mut y = vec![0.0; 6];
            reshape(x, &mut y).unwrap();
            y.iter().zip(&w).map(|(y, w)| y * w).sum()
        };
        assert_gradient("reshape", loss, &x, &dx, 1e-7);
    }

    #[test]
    fn errors() {
        let err = reshape(&[1.0f64; 6], &mut [0.0; 5]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "length mismatch in reshape: `y` has 5 elements, expected 6"
        );
        assert!(reshape_backward(&[1.0f64; 6], &mut [0.0; 7]).is_err());
    }
}
