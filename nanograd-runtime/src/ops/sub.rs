//! `sub(a, b) = a - b` elementwise, with trailing-dimension broadcasting (see
//! [`broadcast_len`](super::broadcast_len)); `dL/da = dL/dy`, `dL/db = -dL/dy`, each summed
//! over its operand's repeats.

use super::broadcast::{binary, binary_backward, lens_from_grads};
use crate::{Float, Result};

/// `y[i] = a[i % la] - b[i % lb]`.
pub fn sub<T: Float>(a: &[T], b: &[T], y: &mut [T]) -> Result<()> {
    binary("sub", a, b, y, |a, b| a - b)
}

/// `da += dy`, `db -= dy`, each reduced over its operand's repeats; `None` skips that
/// input. `da`/`db` have the lengths of `a`/`b`.
pub fn sub_backward<T: Float>(dy: &[T], da: Option<&mut [T]>, db: Option<&mut [T]>) -> Result<()> {
    let lens = lens_from_grads(dy, &da, &db);
    binary_backward("sub", lens, dy, da, db, |_, _, g| g, |_, _, g| -g)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::assert_close;
    use crate::testing::{assert_gradient, random_vec};

    #[test]
    fn literal() {
        // the shorter operand first: [1, 2] - [[10, 20], [30, 40]] = [[-9, -18], [-29, -38]]
        let a = [1.0f32, 2.0];
        let b = [10.0f32, 20.0, 30.0, 40.0];
        let mut y = [0.0f32; 4];
        sub(&a, &b, &mut y).unwrap();
        assert_close!(y, [-9.0f32, -18.0, -29.0, -38.0]);
        // da sums dy over the two rows: [1 + 3, 2 + 4] = [4, 6]; db = -dy
        let dy = [1.0f32, 2.0, 3.0, 4.0];
        let (mut da, mut db) = ([0.0f32; 2], [0.0f32; 4]);
        sub_backward(&dy, Some(&mut da), Some(&mut db)).unwrap();
        assert_close!(da, [4.0f32, 6.0]);
        assert_close!(db, [-1.0f32, -2.0, -3.0, -4.0]);
        // None skips an input
        sub_backward(&dy, None, Some(&mut db)).unwrap();
        assert_close!(db, [-2.0f32, -4.0, -6.0, -8.0]);
    }

    #[test]
    fn gradcheck() {
        let a: Vec<f64> = random_vec(1, 1, -1.0, 1.0);
        let b: Vec<f64> = random_vec(2, 6, -1.0, 1.0);
        let w: Vec<f64> = random_vec(3, 6, -1.0, 1.0);
        let (mut da, mut db) = (vec![0.0; 1], vec![0.0; 6]);
        sub_backward(&w, Some(&mut da), Some(&mut db)).unwrap();
        let loss = |a: &[f64], b: &[f64]| {
            let mut y = vec![0.0; 6];
            sub(a, b, &mut y).unwrap();
            y.iter().zip(&w).map(|(y, w)| y * w).sum::<f64>()
        };
        assert_gradient("sub da", |a| loss(a, &b), &a, &da, 1e-7);
        assert_gradient("sub db", |b| loss(&a, b), &b, &db, 1e-7);
    }

    #[test]
    fn errors() {
        let err = sub(&[1.0f64; 2], &[1.0; 5], &mut [0.0; 5]).unwrap_err();
        assert!(
            err.to_string().contains("`a` of 2 elements with `b` of 5"),
            "{err}"
        );
        assert!(sub_backward(&[1.0f64; 4], Some(&mut [0.0; 3]), None).is_err());
    }
}
