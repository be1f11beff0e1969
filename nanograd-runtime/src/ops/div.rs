//! `div(a, b) = a / b` elementwise, with trailing-dimension broadcasting (see
//! [`broadcast_len`](super::broadcast_len)); `dL/da = dL/dy / b`,
//! `dL/db = -dL/dy * a / b²`, each summed over its operand's repeats. Division by zero
//! follows IEEE 754 (infinity or NaN), as in PyTorch; see [`safe_div`](super::safe_div).

use super::broadcast::{binary, binary_backward};
use crate::{Float, Result};

/// `y[i] = a[i % la] / b[i % lb]`.
pub fn div<T: Float>(a: &[T], b: &[T], y: &mut [T]) -> Result<()> {
    binary("div", a, b, y, |a, b| a / b)
}

/// `da += dy / b`, `db -= dy * a / b²`, each reduced over its operand's repeats; `None`
/// skips that input.
pub fn div_backward<T: Float>(
    a: &[T],
    b: &[T],
    dy: &[T],
    da: Option<&mut [T]>,
    db: Option<&mut [T]>,
) -> Result<()> {
    let lens = (a.len(), b.len());
    binary_backward(
        "div",
        lens,
        dy,
        da,
        db,
        |_, ib, g| g / b[ib],
        |ia, ib, g| -g * a[ia] / (b[ib] * b[ib]),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::assert_close;
    use crate::testing::{assert_gradient, random_vec};

    #[test]
    fn literal() {
        // [[1, 2], [3, 4]] / [2, 4] = [[0.5, 0.5], [1.5, 1]]
        let (a, b) = ([1.0f32, 2.0, 3.0, 4.0], [2.0f32, 4.0]);
        let mut y = [0.0f32; 4];
        div(&a, &b, &mut y).unwrap();
        assert_close!(y, [0.5f32, 0.5, 1.5, 1.0]);
        // dy = 1: da = 1 / b = [0.5, 0.25, 0.5, 0.25];
        // db[0] = -(1 + 3) / 4 = -1, db[1] = -(2 + 4) / 16 = -0.375
        let (mut da, mut db) = ([0.0f32; 4], [0.0f32; 2]);
        div_backward(&a, &b, &[1.0; 4], Some(&mut da), Some(&mut db)).unwrap();
        assert_close!(da, [0.5f32, 0.25, 0.5, 0.25]);
        assert_close!(db, [-1.0f32, -0.375]);
        // IEEE division by zero
        div(&[1.0, -1.0], &[0.0], &mut y[..2]).unwrap();
        assert_eq!(y[..2], [f32::INFINITY, f32::NEG_INFINITY]);
    }

    #[test]
    fn gradcheck() {
        // keep b away from 0
        let b: Vec<f64> = random_vec::<f64>(2, 4, 0.5, 2.0)
            .into_iter()
            .enumerate()
            .map(|(i, v)| if i % 2 == 0 { v } else { -v })
            .collect();
        let a: Vec<f64> = random_vec(1, 12, -1.0, 1.0);
        let w: Vec<f64> = random_vec(3, 12, -1.0, 1.0);
        let (mut da, mut db) = (vec![0.0; 12], vec![0.0; 4]);
        div_backward(&a, &b, &w, Some(&mut da), Some(&mut db)).unwrap();
        let loss = |a: &[f64], b: &[f64]| {
            let mut y = vec![0.0; 12];
            div(a, b, &mut y).unwrap();
            y.iter().zip(&w).map(|(y, w)| y * w).sum::<f64>()
        };
        assert_gradient("div da", |a| loss(a, &b), &a, &da, 1e-7);
        assert_gradient("div db", |b| loss(&a, b), &b, &db, 1e-7);
    }

    #[test]
    fn errors() {
        assert!(div(&[1.0f64; 4], &[1.0; 3], &mut [0.0; 4]).is_err());
        let err = div_backward(
            &[1.0f64; 4],
            &[1.0; 2],
            &[1.0; 4],
            Some(&mut [0.0; 2]),
            None,
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "length mismatch in div: `da` has 2 elements, expected 4"
        );
    }
}
