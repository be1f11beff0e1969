//! `mul(a, b) = a * b` elementwise (Hadamard product), with trailing-dimension broadcasting
//! (see [`broadcast_len`](super::broadcast_len)); `dL/da = dL/dy * b`, `dL/db = dL/dy * a`,
//! each summed over its operand's repeats.

use super::broadcast::{binary, binary_backward};
use crate::{Float, Result};

/// `y[i] = a[i % la] * b[i % lb]`.
pub fn mul<T: Float>(a: &[T], b: &[T], y: &mut [T]) -> Result<()> {
    binary("mul", a, b, y, |a, b| a * b)
}

/// `da += dy * b`, `db += dy * a`, each reduced over its operand's repeats; `None` skips
/// that input.
pub fn mul_backward<T: Float>(
    a: &[T],
    b: &[T],
    dy: &[T],
    da: Option<&mut [T]>,
    db: Option<&mut [T]>,
) -> Result<()> {
    let lens = (a.len(), b.len());
    binary_backward(
        "mul",
        lens,
        dy,
        da,
        db,
        |_, ib, g| g * b[ib],
        |ia, _, g| g * a[ia],
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::assert_close;
    use crate::testing::{assert_gradient, random_vec};

    #[test]
    fn literal() {
        // [[1, 2], [3, 4]] * 3 = [[3, 6], [9, 12]]
        let a = [1.0f32, 2.0, 3.0, 4.0];
        let mut y = [0.0f32; 4];
        mul(&a, &[3.0], &mut y).unwrap();
        assert_close!(y, [3.0f32, 6.0, 9.0, 12.0]);
        // da = dy * 3; db = sum(dy * a) = 1*1 + 1*2 + 2*3 + 2*4 = 17
        let dy = [1.0f32, 1.0, 2.0, 2.0];
        let (mut da, mut db) = ([0.0f32; 4], [0.0f32; 1]);
        mul_backward(&a, &[3.0], &dy, Some(&mut da), Some(&mut db)).unwrap();
        assert_close!(da, [3.0f32, 3.0, 6.0, 6.0]);
        assert_close!(db, [17.0f32]);
    }

    #[test]
    fn gradcheck() {
        for (la, lb) in [(12, 12), (12, 3), (4, 12)] {
            let a: Vec<f64> = random_vec(1, la, -1.0, 1.0);
            let b: Vec<f64> = random_vec(2, lb, -1.0, 1.0);
            let w: Vec<f64> = random_vec(3, 12, -1.0, 1.0);
            let (mut da, mut db) = (vec![0.0; la], vec![0.0; lb]);
            mul_backward(&a, &b, &w, Some(&mut da), Some(&mut db)).unwrap();
            let loss = |a: &[f64], b: &[f64]| {
                let mut y = vec![0.0; 12];
                mul(a, b, &mut y).unwrap();
                y.iter().zip(&w).map(|(y, w)| y * w).sum::<f64>()
            };
            assert_gradient("mul da", |a| loss(a, &b), &a, &da, 1e-7);
            assert_gradient("mul db", |b| loss(&a, b), &b, &db, 1e-7);
        }
    }

    #[test]
    fn errors() {
        assert!(mul(&[1.0f64; 3], &[1.0; 2], &mut [0.0; 3]).is_err());
        let err = mul_backward(
            &[1.0f64; 4],
            &[1.0; 2],
            &[1.0; 4],
            None,
            Some(&mut [0.0; 4]),
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "length mismatch in mul: `db` has 4 elements, expected 2"
        );
        assert!(mul_backward(&[1.0f64; 4], &[1.0; 2], &[1.0; 2], None, None).is_err());
    }
}
