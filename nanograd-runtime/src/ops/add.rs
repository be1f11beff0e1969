//! `add(a, b) = a + b` elementwise, with trailing-dimension broadcasting (see
//! [`broadcast_len`](super::broadcast_len)); `dL/da = dL/dy`, `dL/db = dL/dy`, each summed
//! over its operand's repeats.

use super::broadcast::{binary, binary_backward, lens_from_grads};
use crate::{Float, Result};

/// `y[i] = a[i % la] + b[i % lb]`.
pub fn add<T: Float>(a: &[T], b: &[T], y: &mut [T]) -> Result<()> {
    binary("add", a, b, y, |a, b| a + b)
}

/// `da += dy`, `db += dy`, each reduced over its operand's repeats; `None` skips that
/// input. `da`/`db` have the lengths of `a`/`b`.
pub fn add_backward<T: Float>(dy: &[T], da: Option<&mut [T]>, db: Option<&mut [T]>) -> Result<()> {
    let lens = lens_from_grads(dy, &da, &db);
    binary_backward("add", lens, dy, da, db, |_, _, g| g, |_, _, g| g)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::assert_close;
    use crate::testing::{assert_gradient, random_vec};

    #[test]
    fn literal() {
        // [[1, 2, 3], [4, 5, 6]] + [10, 20, 30] = [[11, 22, 33], [14, 25, 36]]
        let a = [1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0];
        let b = [10.0f32, 20.0, 30.0];
        let mut y = [0.0f32; 6];
        add(&a, &b, &mut y).unwrap();
        assert_close!(y, [11.0f32, 22.0, 33.0, 14.0, 25.0, 36.0]);
        // b is added to both rows, so db sums dy over the rows:
        // db = [1 + 4, 2 + 5, 3 + 6] = [5, 7, 9], on top of the 1 it held
        let dy = [1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0];
        let (mut da, mut db) = ([0.0f32; 6], [1.0f32; 3]);
        add_backward(&dy, Some(&mut da), Some(&mut db)).unwrap();
        assert_close!(da, dy);
        assert_close!(db, [6.0f32, 8.0, 10.0]);
        // the shorter operand may come first: 1 + [1, 2] = [2, 3]
        let mut y2 = [0.0f32; 2];
        add(&[1.0], &[1.0, 2.0], &mut y2).unwrap();
        assert_close!(y2, [2.0f32, 3.0]);
    }

    #[test]
    fn gradcheck() {
        let a: Vec<f64> = random_vec(1, 12, -1.0, 1.0);
        let b: Vec<f64> = random_vec(2, 4, -1.0, 1.0);
        let w: Vec<f64> = random_vec(3, 12, -1.0, 1.0);
        let (mut da, mut db) = (vec![0.0; 12], vec![0.0; 4]);
        add_backward(&w, Some(&mut da), Some(&mut db)).unwrap();
        let loss = |a: &[f64], b: &[f64]| {
            let mut y = vec![0.0; 12];
            add(a, b, &mut y).unwrap();
            y.iter().zip(&w).map(|(y, w)| y * w).sum::<f64>()
        };
        assert_gradient("add da", |a| loss(a, &b), &a, &da, 1e-7);
        assert_gradient("add db", |b| loss(&a, b), &b, &db, 1e-7);
    }

    #[test]
    fn errors() {
        let err = add(&[1.0f64; 6], &[1.0; 4], &mut [0.0; 6]).unwrap_err();
        assert!(
            err.to_string().contains("`a` of 6 elements with `b` of 4"),
            "{err}"
        );
        let err = add(&[1.0f64; 6], &[1.0; 3], &mut [0.0; 3]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "length mismatch in add: `y` has 3 elements, expected 6"
        );
        // db of 4 elements cannot be a repeat of a 6-element dy
        assert!(add_backward(&[1.0f64; 6], None, Some(&mut [0.0; 4])).is_err());
        assert!(add_backward(&[1.0f64; 6], Some(&mut [0.0; 5]), None).is_err());
        assert!(add_backward(&[1.0f64; 6], Some(&mut [0.0; 6]), Some(&mut [0.0; 12])).is_err());
    }
}
