//! `causal_mask` over the last two dimensions of a row-major `[.., t, t]` buffer: the entries
//! above the diagonal (column `j` > row `i`) become `-∞`, the rest pass through, as PyTorch's
//! `x.masked_fill(torch.triu(torch.ones(t, t), 1).bool(), -inf)`:
//!
//! ```text
//! y[.., i, j] = x[.., i, j]   if j <= i
//!               -∞            if j >  i
//! ```
//!
//! Derivative: `dx[.., i, j] += dy[.., i, j]` for `j <= i`; a masked entry is a constant, so
//! its `x` gets no gradient.
//!
//! Followed by a softmax over the last dimension this is causal attention; the fused
//! [`attention`](super::attention()) kernels apply the same mask without materialising it.

use crate::{check_len, invalid, Float, Result};

/// The number of `[t, t]` matrices in a buffer of `len` elements: an error when `t` is 0 or
/// `t·t` does not divide `len`.
fn matrices(what: &str, len: usize, t: usize) -> Result<usize> {
    let tt = t.checked_mul(t).filter(|&tt| tt > 0).ok_or_else(|| {
        invalid(
            "causal_mask",
            format!("the size t must be positive and t·t fit in memory, got t = {t}"),
        )
    })?;
    if !len.is_multiple_of(tt) {
        return Err(invalid(
            "causal_mask",
            format!("`{what}` has {len} elements, not a multiple of t·t = {tt}"),
        ));
    }
    Ok(len / tt)
}

/// `y = x` on and below the diagonal of each `[t, t]` matrix, `-∞` above it.
pub fn causal_mask<T: Float>(x: &[T], t: usize, y: &mut [T]) -> Result<()> {
    matrices("x", x.len(), t)?;
    check_len("causal_mask", "y", x.len(), y.len())?;
    for (xm, ym) in x.chunks_exact(t * t).zip(y.chunks_exact_mut(t * t)) {
        for (i, (xr, yr)) in xm.chunks_exact(t).zip(ym.chunks_exact_mut(t)).enumerate() {
            let (keep, masked) = yr.split_at_mut(i + 1);
            keep.copy_from_slice(&xr[..i + 1]);
            masked.fill(T::NEG_INFINITY);
        }
    }
    Ok(())
}

/// `dx += dy` on and below the diagonal of each `[t, t]` matrix; nothing above it.
pub fn causal_mask_backward<T: Float>(dy: &[T], t: usize, dx: &mut [T]) -> Result<()> {
    matrices("dy", dy.len(), t)?;
    check_len("causal_mask", "dx", dy.len(), dx.len())?;
    for (gm, dm) in dy.chunks_exact(t * t).zip(dx.chunks_exact_mut(t * t)) {
        for (i, (gr, dr)) in gm.chunks_exact(t).zip(dm.chunks_exact_mut(t)).enumerate() {
            for (d, &g) in dr[..i + 1].iter_mut().zip(&gr[..i + 1]) {
                *d += g;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::assert_close;
    use crate::testing::{assert_gradient, random_vec};

    const INF: f64 = f64::INFINITY;

    #[test]
    fn literal() {
        // two 3×3 matrices holding 1..=18:
        // [[1, 2, 3], [4, 5, 6], [7, 8, 9]] -> [[1, -∞, -∞], [4, 5, -∞], [7, 8, 9]], the same
        // pattern again for 10..=18
        let x: Vec<f64> = (1..=18).map(f64::from).collect();
        let mut y = vec![0.0; 18];
        causal_mask(&x, 3, &mut y).unwrap();
        #[rustfmt::skip]
        let expected = [
            1.0, -INF, -INF, 4.0, 5.0, -INF, 7.0, 8.0, 9.0,
            10.0, -INF, -INF, 13.0, 14.0, -INF, 16.0, 17.0, 18.0,
        ];
        assert_eq!(y, expected);
        // dx starts at 0.5: it gains dy below and on the diagonal only
        let dy: Vec<f64> = (1..=18).map(|v| f64::from(v) * 10.0).collect();
        let mut dx = vec![0.5; 18];
        causal_mask_backward(&dy, 3, &mut dx).unwrap();
        #[rustfmt::skip]
        let expected = [
            10.5, 0.5, 0.5, 40.5, 50.5, 0.5, 70.5, 80.5, 90.5,
            100.5, 0.5, 0.5, 130.5, 140.5, 0.5, 160.5, 170.5, 180.5,
        ];
        assert_eq!(dx, expected);
        // t = 1: nothing is above the diagonal
        let mut y1 = [0.0f32; 2];
        causal_mask(&[3.0f32, -2.0], 1, &mut y1).unwrap();
        assert_eq!(y1, [3.0, -2.0]);
    }

    #[test]
    fn gradcheck() {
        // the masked outputs are -∞; weighting them by 0 keeps the loss finite, and the
        // gradient there must be 0 (no finite difference reaches them)
        let t = 4;
        let x: Vec<f64> = random_vec(31, 2 * t * t, -1.0, 1.0);
        let w: Vec<f64> = random_vec(32, 2 * t * t, -1.0, 1.0);
        let loss = |x: &[f64]| {
            let mut y = vec![0.0; x.len()];
            causal_mask(x, t, &mut y).unwrap();
            y.iter()
                .zip(&w)
                .filter(|(v, _)| v.is_finite())
                .map(|(a, b)| a * b)
                .sum()
        };
        let mut dx = vec![0.0; x.len()];
        causal_mask_backward(&w, t, &mut dx).unwrap();
        assert_gradient("causal_mask", loss, &x, &dx, 1e-7);
        assert_close!(dx[1], 0.0f64, 0.0);
        assert_close!(dx[t * t + t + 2], 0.0f64, 0.0);
    }

    #[test]
    fn bad_shapes_are_errors() {
        let err = causal_mask(&[0.0f64; 10], 3, &mut [0.0; 10]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid argument to causal_mask: `x` has 10 elements, not a multiple of t·t = 9"
        );
        let err = causal_mask(&[0.0f64; 9], 3, &mut [0.0; 8]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "length mismatch in causal_mask: `y` has 8 elements, expected 9"
        );
        assert!(causal_mask::<f64>(&[], 0, &mut []).is_err());
        assert!(causal_mask::<f64>(&[], usize::MAX, &mut []).is_err());
        assert!(causal_mask_backward(&[0.0f64; 9], 3, &mut [0.0; 10]).is_err());
        assert!(causal_mask_backward(&[0.0f64; 8], 2, &mut [0.0; 8]).is_ok());
        assert!(causal_mask_backward(&[0.0f64; 7], 2, &mut [0.0; 7]).is_err());
    }
}
