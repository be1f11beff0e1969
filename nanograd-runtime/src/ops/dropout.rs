//! Inverted dropout, training mode only:
//!
//! ```text
//! mask_i = 1 / (1 - p)  with probability 1 - p,  else 0
//! y = x · mask,   dx = dy · mask
//! ```
//!
//! so that `E[y] = x`, as PyTorch's `F.dropout(x, p, training=True)`. `p = 1` drops
//! everything (the mask is all zeros, no division by zero); `p` outside `[0, 1]` is an
//! error. In eval mode dropout is the identity, so callers skip the call altogether.
//!
//! The mask is drawn from a caller's seeded generator, so that the same seed gives the same
//! mask, and kept in a caller buffer for the backward pass. [`dropout`] is
//! [`dropout_mask`] followed by [`dropout_apply`].

use crate::{check_len, invalid, Float, Result};
use rand::{Rng, RngExt};

/// Draws `mask[i] = 1 / (1 - p)` with probability `1 - p`, else `0`, one uniform draw per
/// element. Errors if `p` is not in `[0, 1]`.
pub fn dropout_mask<T: Float>(p: T, rng: &mut impl Rng, mask: &mut [T]) -> Result<()> {
    if !(p >= T::zero() && p <= T::one()) {
        return Err(invalid(
            "dropout",
            format!("probability p must be in [0, 1], got {p}"),
        ));
    }
    let keep = if p < T::one() {
        T::one() / (T::one() - p)
    } else {
        T::zero()
    };
    let p = p.to_f64();
    for m in mask.iter_mut() {
        *m = if rng.random::<f64>() < p {
            T::zero()
        } else {
            keep
        };
    }
    Ok(())
}

/// `y = x · mask` elementwise, with a mask from [`dropout_mask`].
pub fn dropout_apply<T: Float>(x: &[T], mask: &[T], y: &mut [T]) -> Result<()> {
    check_len("dropout", "mask", x.len(), mask.len())?;
    check_len("dropout", "y", x.len(), y.len())?;
    for ((yi, &xi), &mi) in y.iter_mut().zip(x).zip(mask) {
        *yi = xi * mi;
    }
    Ok(())
}

/// Draws a fresh `mask` (see [`dropout_mask`]) and writes `y = x · mask`. `mask` and `y`
/// have the length of `x`.
pub fn dropout<T: Float>(
    x: &[T],
    p: T,
    rng: &mut impl Rng,
    mask: &mut [T],
    y: &mut [T],
) -> Result<()> {
    check_len("dropout", "mask", x.len(), mask.len())?;
    check_len("dropout", "y", x.len(), y.len())?;
    dropout_mask(p, rng, mask)?;
    dropout_apply(x, mask, y)
}

/// `dx += dy · mask`.
pub fn dropout_backward<T: Float>(mask: &[T], dy: &[T], dx: &mut [T]) -> Result<()> {
    check_len("dropout_backward", "dy", mask.len(), dy.len())?;
    check_len("dropout_backward", "dx", mask.len(), dx.len())?;
    for ((di, &gi), &mi) in dx.iter_mut().zip(dy).zip(mask) {
        *di += gi * mi;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::assert_close;
    use crate::testing::{assert_gradient, random_vec};
    use rand::{rngs::StdRng, SeedableRng};

    #[test]
    fn literal_with_a_chosen_mask() {
        // p = 0.5: kept values scale by 1/(1 - 0.5) = 2
        let x = [1.0f32, 2.0, 3.0, 4.0];
        let mask = [2.0f32, 0.0, 2.0, 0.0];
        let mut y = [9.0f32; 4];
        dropout_apply(&x, &mask, &mut y).unwrap();
        assert_close!(y, [2.0f32, 0.0, 6.0, 0.0]);
        let mut dx = [1.0f32; 4];
        dropout_backward(&mask, &[0.5, 0.5, 0.5, 0.5], &mut dx).unwrap();
        assert_close!(dx, [2.0f32, 1.0, 2.0, 1.0]);
    }

    #[test]
    fn drawn_mask_holds_only_zero_or_the_scale() {
        // p = 0.2: scale 1/0.8 = 1.25
        let x: Vec<f64> = random_vec(1, 1000, -1.0, 1.0);
        let (mut mask, mut y) = (vec![0.0; 1000], vec![0.0; 1000]);
        dropout(&x, 0.2, &mut StdRng::seed_from_u64(3), &mut mask, &mut y).unwrap();
        assert!(mask.iter().all(|&m| m == 0.0 || m == 1.25));
        assert!(mask.contains(&0.0) && mask.contains(&1.25));
        for i in 0..1000 {
            assert_eq!(y[i], x[i] * mask[i]);
        }
    }

    #[test]
    fn same_seed_same_mask() {
        let x = vec![1.0f32; 64];
        let draw = |seed: u64| {
            let (mut mask, mut y) = (vec![0.0f32; 64], vec![0.0f32; 64]);
            dropout(&x, 0.5, &mut StdRng::seed_from_u64(seed), &mut mask, &mut y).unwrap();
            mask
        };
        assert_eq!(draw(7), draw(7));
        assert_ne!(draw(7), draw(8));
    }

    #[test]
    fn keeps_one_minus_p_and_preserves_the_mean() {
        let n = 100_000;
        let p = 0.3;
        let x: Vec<f64> = random_vec(5, n, 0.0, 2.0);
        let (mut mask, mut y) = (vec![0.0; n], vec![0.0; n]);
        dropout(&x, p, &mut StdRng::seed_from_u64(11), &mut mask, &mut y).unwrap();
        // kept count ~ Binomial(n, 0.7): σ = √(n·0.7·0.3) ≈ 145; allow 5σ
        let kept = mask.iter().filter(|&&m| m != 0.0).count() as f64;
        let sigma = (n as f64 * p * (1.0 - p)).sqrt();
        assert!(
            (kept - n as f64 * (1.0 - p)).abs() < 5.0 * sigma,
            "kept {kept}"
        );
        // mean of y ≈ mean of x: y has per-element variance ≤ E[x²]·p/(1-p) ≈ 0.57,
        // so the mean's σ is about √(0.57/n) ≈ 0.0024; allow 5σ
        let (mx, my) = (
            x.iter().sum::<f64>() / n as f64,
            y.iter().sum::<f64>() / n as f64,
        );
        assert!((my - mx).abs() < 0.012, "mean of y {my}, of x {mx}");
    }

    #[test]
    fn p_zero_and_p_one() {
        let x = [1.0f64, -2.0, 3.0];
        let (mut mask, mut y) = ([7.0; 3], [7.0; 3]);
        let mut rng = StdRng::seed_from_u64(0);
        dropout(&x, 0.0, &mut rng, &mut mask, &mut y).unwrap();
        assert_eq!((mask, y), ([1.0; 3], x));
        dropout(&x, 1.0, &mut rng, &mut mask, &mut y).unwrap();
        assert_eq!((mask, y), ([0.0; 3], [0.0; 3]));
    }

    #[test]
    fn gradcheck_with_a_fixed_mask() {
        let x: Vec<f64> = random_vec(1, 12, -1.0, 1.0);
        let up: Vec<f64> = random_vec(2, 12, -1.0, 1.0);
        let mut mask = vec![0.0; 12];
        dropout_mask(0.4, &mut StdRng::seed_from_u64(4), &mut mask).unwrap();
        let loss = |x: &[f64]| -> f64 {
            let mut y = vec![0.0; x.len()];
            dropout_apply(x, &mask, &mut y).unwrap();
            y.iter().zip(&up).map(|(a, b)| a * b).sum()
        };
        let mut dx = vec![0.0; 12];
        dropout_backward(&mask, &up, &mut dx).unwrap();
        assert_gradient("dropout", loss, &x, &dx, 1e-7);
    }

    #[test]
    fn bad_input_is_an_error() {
        let mut rng = StdRng::seed_from_u64(0);
        let (mut mask, mut y) = ([0.0f64; 2], [0.0f64; 2]);
        for p in [-0.1, 1.5, f64::NAN] {
            let err = dropout(&[1.0, 2.0], p, &mut rng, &mut mask, &mut y).unwrap_err();
            assert!(err
                .to_string()
                .starts_with("invalid argument to dropout: probability p must be in [0, 1], got"));
        }
        let err = dropout(&[1.0, 2.0, 3.0], 0.5, &mut rng, &mut [0.0; 3], &mut y).unwrap_err();
        assert_eq!(
            err.to_string(),
            "length mismatch in dropout: `y` has 2 elements, expected 3"
        );
        assert!(dropout_backward(&mask, &[1.0; 3], &mut [0.0; 2]).is_err());
    }
}
