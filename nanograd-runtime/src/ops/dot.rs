//! `dot(a, b) = Σ a[i]·b[i]`, the seed's `dot-op` (and `matmul-op` of two vectors);
//! `d/da = dy·b`, `d/db = dy·a`.

use crate::blas::{self, axpy};
use crate::{check_len, Float, Result};

/// The inner product `Σ a[i]·b[i]` of two vectors of equal length.
pub fn dot<T: Float>(a: &[T], b: &[T]) -> Result<T> {
    check_len("dot", "b", a.len(), b.len())?;
    Ok(blas::dot(a, b))
}

/// The backward pass of [`dot`] for the upstream scalar `dy`: `da += dy·b`, `db += dy·a`.
pub fn dot_backward<T: Float>(
    a: &[T],
    b: &[T],
    dy: T,
    da: Option<&mut [T]>,
    db: Option<&mut [T]>,
) -> Result<()> {
    let n = a.len();
    check_len("dot", "b", n, b.len())?;
    if let Some(da) = &da {
        check_len("dot", "da", n, da.len())?;
    }
    if let Some(db) = &db {
        check_len("dot", "db", n, db.len())?;
    }
    if let Some(da) = da {
        axpy(dy, b, da);
    }
    if let Some(db) = db {
        axpy(dy, a, db);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::assert_close;
    use crate::testing::{assert_gradient, random_vec};

    #[test]
    fn literal() {
        // [1, 2, 3]·[4, -5, 6] = 4 - 10 + 18 = 12
        let (a, b) = ([1.0f32, 2.0, 3.0], [4.0f32, -5.0, 6.0]);
        assert_close!(dot(&a, &b).unwrap(), 12.0f32);
        // dy = 2: da = 2b = [8, -10, 12] onto the 1 already held, db = 2a = [2, 4, 6]
        let (mut da, mut db) = ([1.0f32; 3], [0.0f32; 3]);
        dot_backward(&a, &b, 2.0, Some(&mut da), Some(&mut db)).unwrap();
        assert_close!(da, [9.0f32, -9.0, 13.0]);
        assert_close!(db, [2.0f32, 4.0, 6.0]);
    }

    #[test]
    fn seed_example() {
        // the seed: z = x + y = [4, 6], loss = z·z; d loss/dz = 2z = [8, 12], which is the
        // gradient of x. Using z as both operands sends dy·z to each: 2 · [4, 6].
        let z = [4.0f64, 6.0];
        assert_close!(dot(&z, &z).unwrap(), 52.0f64);
        let (mut da, mut db) = ([0.0; 2], [0.0; 2]);
        dot_backward(&z, &z, 1.0, Some(&mut da), Some(&mut db)).unwrap();
        assert_close!([da[0] + db[0], da[1] + db[1]], [8.0f64, 12.0]);
    }

    #[test]
    fn gradcheck() {
        let a: Vec<f64> = random_vec(1, 7, -1.0, 1.0);
        let b: Vec<f64> = random_vec(2, 7, -1.0, 1.0);
        let dy = 0.7;
        let (mut da, mut db) = (vec![0.0; 7], vec![0.0; 7]);
        dot_backward(&a, &b, dy, Some(&mut da), Some(&mut db)).unwrap();
        assert_gradient("dot da", |a| dy * dot(a, &b).unwrap(), &a, &da, 1e-7);
        assert_gradient("dot db", |b| dy * dot(&a, b).unwrap(), &b, &db, 1e-7);
    }

    #[test]
    fn length_mismatch_is_an_error() {
        let err = dot(&[1.0f64, 2.0], &[1.0; 3]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "length mismatch in dot: `b` has 3 elements, expected 2"
        );
        let mut db = [0.0f64; 1];
        let err = dot_backward(&[1.0, 2.0], &[1.0, 2.0], 1.0, None, Some(&mut db)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "length mismatch in dot: `db` has 1 elements, expected 2"
        );
    }
}
