//! `safe_div(a, b) = a / (b + eps)` elementwise, the seed's `safe-div` (default
//! `eps` = [`SAFE_DIV_EPS`] = 1e-8), with trailing-dimension broadcasting (see
//! [`broadcast_len`](super::broadcast_len)); `dL/da = dL/dy / (b + eps)`,
//! `dL/db = -dL/dy * a / (b + eps)²`, each summed over its operand's repeats.

use super::broadcast::{binary, binary_backward};
use crate::{Float, Result};

/// The seed's default `epsilon` of `safe-div`.
pub const SAFE_DIV_EPS: f64 = 1e-8;

/// `y[i] = a[i % la] / (b[i % lb] + eps)`.
pub fn safe_div<T: Float>(a: &[T], b: &[T], eps: T, y: &mut [T]) -> Result<()> {
    binary("safe_div", a, b, y, |a, b| a / (b + eps))
}

/// `da += dy / (b + eps)`, `db -= dy * a / (b + eps)²`, each reduced over its operand's
/// repeats; `None` skips that input.
pub fn safe_div_backward<T: Float>(
    a: &[T],
    b: &[T],
    eps: T,
    dy: &[T],
    da: Option<&mut [T]>,
    db: Option<&mut [T]>,
) -> Result<()> {
    let lens = (a.len(), b.len());
    binary_backward(
        "safe_div",
        lens,
        dy,
        da,
        db,
        |_, ib, g| g / (b[ib] + eps),
        |ia, ib, g| {
            let d = b[ib] + eps;
            -g * a[ia] / (d * d)
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::assert_close;
    use crate::testing::{assert_gradient, random_vec};

    #[test]
    fn literal() {
        // eps = 0.5: [1, 2, 3] / ([0, 1.5, 0] + 0.5) = [2, 1, 6]
        let (a, b) = ([1.0f32, 2.0, 3.0], [0.0f32, 1.5, 0.0]);
        let mut y = [0.0f32; 3];
        safe_div(&a, &b, 0.5, &mut y).unwrap();
        assert_close!(y, [2.0f32, 1.0, 6.0]);
        // dy = 1: da = 1 / (b + eps) = [2, 0.5, 2];
        // db = -a / (b + eps)² = [-1 / 0.25, -2 / 4, -3 / 0.25] = [-4, -0.5, -12]
        let (mut da, mut db) = ([0.0f32; 3], [0.0f32; 3]);
        safe_div_backward(&a, &b, 0.5, &[1.0; 3], Some(&mut da), Some(&mut db)).unwrap();
        assert_close!(da, [2.0f32, 0.5, 2.0]);
        assert_close!(db, [-4.0f32, -0.5, -12.0]);
        // with the seed's default, a zero divisor gives a large finite value: 1 / 1e-8
        let mut y1 = [0.0f64];
        safe_div(&[1.0], &[0.0], SAFE_DIV_EPS, &mut y1).unwrap();
        assert_close!(y1, [1e8f64], 1e-12);
    }

    #[test]
    fn gradcheck() {
        let a: Vec<f64> = random_vec(1, 3, -1.0, 1.0);
        let b: Vec<f64> = random_vec(2, 9, 0.2, 1.5);
        let w: Vec<f64> = random_vec(3, 9, -1.0, 1.0);
        let eps = 0.1;
        let (mut da, mut db) = (vec![0.0; 3], vec![0.0; 9]);
        safe_div_backward(&a, &b, eps, &w, Some(&mut da), Some(&mut db)).unwrap();
        let loss = |a: &[f64], b: &[f64]| {
            let mut y = vec![0.0; 9];
            safe_div(a, b, eps, &mut y).unwrap();
            y.iter().zip(&w).map(|(y, w)| y * w).sum::<f64>()
        };
        assert_gradient("safe_div da", |a| loss(a, &b), &a, &da, 1e-7);
        assert_gradient("safe_div db", |b| loss(&a, b), &b, &db, 1e-7);
    }

    #[test]
    fn errors() {
        let err = safe_div(&[1.0f64; 4], &[1.0; 3], 1e-8, &mut [0.0; 4]).unwrap_err();
        assert!(
            err.to_string().starts_with("invalid argument to safe_div"),
            "{err}"
        );
        let res = safe_div_backward(&[1.0f64; 4], &[1.0; 4], 1e-8, &[1.0; 3], None, None);
        assert_eq!(
            res.unwrap_err().to_string(),
            "length mismatch in safe_div: `dy` has 3 elements, expected 4"
        );
    }
}
