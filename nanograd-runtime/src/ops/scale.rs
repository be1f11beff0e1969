//! `scale(x, s) = s * x` for a scalar `s` (the seed's `scale-op`, BLAS `scal`);
//! `dL/dx = s * dL/dy` (BLAS `axpy`).

use crate::blas::{axpy, scal};
use crate::{check_len, Float, Result};

/// `y = s * x`.
pub fn scale<T: Float>(x: &[T], s: T, y: &mut [T]) -> Result<()> {
    check_len("scale", "y", x.len(), y.len())?;
    y.copy_from_slice(x);
    scal(s, y);
    Ok(())
}

/// `dx += s * dy`.
pub fn scale_backward<T: Float>(s: T, dy: &[T], dx: &mut [T]) -> Result<()> {
    check_len("scale", "dx", dy.len(), dx.len())?;
    axpy(s, dy, dx);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::assert_close;
    use crate::testing::{assert_gradient, random_vec};

    #[test]
    fn literal() {
        // -2 * [1, -0.5, 3] = [-2, 1, -6]
        let mut y = [0.0f32; 3];
        scale(&[1.0, -0.5, 3.0], -2.0, &mut y).unwrap();
        assert_close!(y, [-2.0f32, 1.0, -6.0]);
        // dx = [1, 1, 1] + -2 * [1, 2, 3] = [-1, -3, -5]
        let mut dx = [1.0f32; 3];
        scale_backward(-2.0, &[1.0, 2.0, 3.0], &mut dx).unwrap();
        assert_close!(dx, [-1.0f32, -3.0, -5.0]);
    }

    #[test]
    fn gradcheck() {
        let x: Vec<f64> = random_vec(1, 10, -1.0, 1.0);
        let w: Vec<f64> = random_vec(2, 10, -1.0, 1.0);
        let s = 0.7;
        let mut dx = vec![0.0; 10];
        scale_backward(s, &w, &mut dx).unwrap();
        let loss = |x: &[f64]| {
            let mut y = vec![0.0; x.len()];
            scale(x, s, &mut y).unwrap();
            y.iter().zip(&w).map(|(y, w)| y * w).sum()
        };
        assert_gradient("scale", loss, &x, &dx, 1e-7);
    }

    #[test]
    fn errors() {
        let err = scale(&[1.0f64; 3], 2.0, &mut [0.0; 2]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "length mismatch in scale: `y` has 2 elements, expected 3"
        );
        assert!(scale_backward(2.0, &[1.0f64; 3], &mut [0.0; 4]).is_err());
    }
}
