//! Cosine similarity of the rows of `a` and `b` (`cols` values per row), one value per row,
//! the seed's `(cosine-similarity a b)` with PyTorch's guard `eps = 1e-8`:
//!
//! ```text
//! na = max(‖a‖, eps),   nb = max(‖b‖, eps),   y = a · b / (na · nb)
//! ```
//!
//! Derivative (`dna/da = a / ‖a‖` where `‖a‖ > eps`, else `0`, as the clamp is then constant):
//!
//! ```text
//! da = dy · (b / (na · nb) - y · a / na²   [only where ‖a‖ > eps])
//! db = dy · (a / (na · nb) - y · b / nb²   [only where ‖b‖ > eps])
//! ```
//!
//! This is the exact derivative of the formula. PyTorch agrees everywhere except for a
//! vector whose norm lies strictly between 0 and `1e-8`, where it keeps the `a / na²` term.

use super::row_count;
use crate::blas::dot;
use crate::{check_len, Float, Result};

/// The norm guard of PyTorch's `F.cosine_similarity`.
const EPS: f64 = 1e-8;

/// `‖a‖`, `‖b‖`, their clamped values and `y` for one pair of rows.
struct Row<T> {
    na: T,
    nb: T,
    a_clamped: bool,
    b_clamped: bool,
    y: T,
}

fn row<T: Float>(a: &[T], b: &[T]) -> Row<T> {
    let eps = T::from_f64(EPS);
    let (norm_a, norm_b) = (dot(a, a).sqrt(), dot(b, b).sqrt());
    let (na, nb) = (norm_a.max(eps), norm_b.max(eps));
    Row {
        na,
        nb,
        a_clamped: norm_a <= eps,
        b_clamped: norm_b <= eps,
        y: dot(a, b) / na / nb,
    }
}

/// `y[r] = a_r · b_r / (max(‖a_r‖, 1e-8) · max(‖b_r‖, 1e-8))`; `a` and `b` are
/// `[rows, cols]`, `y` has `rows` values.
pub fn cosine_similarity<T: Float>(a: &[T], b: &[T], cols: usize, y: &mut [T]) -> Result<()> {
    const OP: &str = "cosine_similarity";
    let rows = row_count(OP, "a", a.len(), cols)?;
    check_len(OP, "b", a.len(), b.len())?;
    check_len(OP, "y", rows, y.len())?;
    for ((ar, br), yr) in a
        .chunks_exact(cols)
        .zip(b.chunks_exact(cols))
        .zip(y.iter_mut())
    {
        *yr = row(ar, br).y;
    }
    Ok(())
}

/// Accumulates into `da` and `db` (each optional, `[rows, cols]`) from `dy` (`rows`).
pub fn cosine_similarity_backward<T: Float>(
    a: &[T],
    b: &[T],
    dy: &[T],
    cols: usize,
    mut da: Option<&mut [T]>,
    mut db: Option<&mut [T]>,
) -> Result<()> {
    const OP: &str = "cosine_similarity_backward";
    let rows = row_count(OP, "a", a.len(), cols)?;
    check_len(OP, "b", a.len(), b.len())?;
    check_len(OP, "dy", rows, dy.len())?;
    if let Some(da) = da.as_deref() {
        check_len(OP, "da", a.len(), da.len())?;
    }
    if let Some(db) = db.as_deref() {
        check_len(OP, "db", b.len(), db.len())?;
    }
    for (r, ((ar, br), &g)) in a
        .chunks_exact(cols)
        .zip(b.chunks_exact(cols))
        .zip(dy)
        .enumerate()
    {
        let Row {
            na,
            nb,
            a_clamped,
            b_clamped,
            y,
        } = row(ar, br);
        let cross = g / (na * nb);
        let span = r * cols..(r + 1) * cols;
        // gradient for `u`, whose partner is `v`: g·v/(na·nb) - g·y·u/nu²
        let grad = |out: &mut [T], u: &[T], v: &[T], nu: T, clamped: bool| {
            let own = if clamped {
                T::zero()
            } else {
                g * y / (nu * nu)
            };
            for ((o, &ui), &vi) in out.iter_mut().zip(u).zip(v) {
                *o += cross * vi - own * ui;
            }
        };
        if let Some(da) = da.as_deref_mut() {
            grad(&mut da[span.clone()], ar, br, na, a_clamped);
        }
        if let Some(db) = db.as_deref_mut() {
            grad(&mut db[span], br, ar, nb, b_clamped);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::assert_close;
    use crate::testing::{assert_gradient, random_vec};

    fn cast<T: Float>(v: &[f64]) -> Vec<T> {
        v.iter().map(|&a| T::from_f64(a)).collect()
    }

    fn literal<T: Float>() {
        // cols = 2
        // row 0: a [3, 4], b [4, 3]: a·b = 24, ‖a‖ = ‖b‖ = 5, y = 24/25 = 0.96
        // row 1: a [1, 0], b [0, 2]: orthogonal, y = 0
        // row 2: a [0, 0], b [1, 0]: ‖a‖ clamps to 1e-8, y = 0 (no NaN)
        let a = cast::<T>(&[3.0, 4.0, 1.0, 0.0, 0.0, 0.0]);
        let b = cast::<T>(&[4.0, 3.0, 0.0, 2.0, 1.0, 0.0]);
        let mut y = vec![T::one(); 3];
        cosine_similarity(&a, &b, 2, &mut y).unwrap();
        assert_close!(y, [0.96, 0.0, 0.0]);
        // da = dy·(b/(na nb) - y a/na²), db symmetric
        // row 0, dy 1: da = ([4, 3] - 0.96·[3, 4]) / 25 = [0.0448, -0.0336]
        //              db = ([3, 4] - 0.96·[4, 3]) / 25 = [-0.0336, 0.0448]
        // row 1, dy 2: da = 2·[0, 2]/2 = [0, 2], db = 2·[1, 0]/2 = [1, 0]
        // row 2, dy 1: da = [1, 0] / (1e-8 · 1) = [1e8, 0] (clamped: no norm term),
        //              db = [0, 0]/1e-8 - 0 = [0, 0]
        let dy = cast::<T>(&[1.0, 2.0, 1.0]);
        let (mut da, mut db) = (vec![T::zero(); 6], vec![T::one(); 6]);
        cosine_similarity_backward(&a, &b, &dy, 2, Some(&mut da), Some(&mut db)).unwrap();
        assert_close!(da, [0.0448, -0.0336, 0.0, 2.0, 1e8, 0.0]);
        assert_close!(db, [0.9664, 1.0448, 2.0, 1.0, 1.0, 1.0]);
    }

    #[test]
    fn literal_f64_and_f32() {
        literal::<f64>();
        literal::<f32>();
    }

    #[test]
    fn gradcheck() {
        let (rows, cols) = (3, 6);
        let a: Vec<f64> = random_vec(1, rows * cols, -1.0, 1.0);
        let b: Vec<f64> = random_vec(2, rows * cols, -1.0, 1.0);
        let up: Vec<f64> = random_vec(3, rows, -1.0, 1.0);
        let loss = |a: &[f64], b: &[f64]| -> f64 {
            let mut y = vec![0.0; rows];
            cosine_similarity(a, b, cols, &mut y).unwrap();
            y.iter().zip(&up).map(|(a, b)| a * b).sum()
        };
        let (mut da, mut db) = (vec![0.0; a.len()], vec![0.0; b.len()]);
        cosine_similarity_backward(&a, &b, &up, cols, Some(&mut da), Some(&mut db)).unwrap();
        assert_gradient("cosine_similarity da", |a| loss(a, &b), &a, &da, 1e-6);
        assert_gradient("cosine_similarity db", |b| loss(&a, b), &b, &db, 1e-6);
        // a vector below the guard: the norm is the constant 1e-8 there
        let (a, b) = ([3e-9, -4e-9, 1e-9], [0.5, 2.0, -1.0]);
        let mut da = [0.0; 3];
        cosine_similarity_backward(&a, &b, &[1.0], 3, Some(&mut da), None).unwrap();
        let nb = (0.25f64 + 4.0 + 1.0).sqrt();
        assert_close!(da, b.map(|v| v / (1e-8 * nb)), 1e-12);
    }

    #[test]
    fn bad_input_is_an_error() {
        let a = [1.0f64; 6];
        let err = cosine_similarity(&a, &a, 3, &mut [0.0; 3]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "length mismatch in cosine_similarity: `y` has 3 elements, expected 2"
        );
        let err = cosine_similarity(&a, &a[..4], 2, &mut [0.0; 3]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "length mismatch in cosine_similarity: `b` has 4 elements, expected 6"
        );
        assert!(cosine_similarity(&a, &a, 0, &mut []).is_err());
        let mut db = [0.0f64; 5];
        assert!(cosine_similarity_backward(&a, &a, &[1.0; 2], 3, None, Some(&mut db)).is_err());
    }
}
