//! `mse_loss(pred, target) = (1/n) Σ_i (pred_i - target_i)²` over all `n` elements (the
//! seed's mean squared error; PyTorch's `F.mse_loss` with its default `reduction="mean"`).
//!
//! Derivatives: `∂L/∂pred_i = 2 (pred_i - target_i) / n = -∂L/∂target_i`.

use crate::{check_len, invalid, Float, Result};

/// Checks the lengths shared by the forward and backward passes; returns `n`.
fn check(pred: usize, target: usize) -> Result<usize> {
    check_len("mse_loss", "target", pred, target)?;
    if pred == 0 {
        return Err(invalid(
            "mse_loss",
            "`pred` and `target` are empty: the mean of 0 elements is undefined",
        ));
    }
    Ok(pred)
}

/// The mean of `(pred - target)²` over all elements.
pub fn mse_loss<T: Float>(pred: &[T], target: &[T]) -> Result<T> {
    let n = check(pred.len(), target.len())?;
    let s: T = pred
        .iter()
        .zip(target)
        .map(|(&p, &t)| (p - t) * (p - t))
        .sum();
    Ok(s / T::from_usize(n))
}

/// `dpred += 2 (pred - target) / n · dy` and `dtarget -= 2 (pred - target) / n · dy`, for
/// the upstream gradient `dy` of the scalar loss. `None` skips a gradient.
pub fn mse_loss_backward<T: Float>(
    pred: &[T],
    target: &[T],
    dy: T,
    mut dpred: Option<&mut [T]>,
    mut dtarget: Option<&mut [T]>,
) -> Result<()> {
    let n = check(pred.len(), target.len())?;
    if let Some(d) = dpred.as_deref() {
        check_len("mse_loss", "dpred", n, d.len())?;
    }
    if let Some(d) = dtarget.as_deref() {
        check_len("mse_loss", "dtarget", n, d.len())?;
    }
    let c = T::from_f64(2.0) * dy / T::from_usize(n);
    for i in 0..n {
        let g = (pred[i] - target[i]) * c;
        if let Some(d) = dpred.as_deref_mut() {
            d[i] += g;
        }
        if let Some(d) = dtarget.as_deref_mut() {
            d[i] -= g;
        }
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
        // pred - target = [1, 0, -2, 0], squares [1, 0, 4, 0], mean 5/4
        let (p, t) = ([1.0f64, 2.0, 3.0, 4.0], [0.0f64, 2.0, 5.0, 4.0]);
        assert_close!(mse_loss(&p, &t).unwrap(), 1.25, 1e-15);
        // dy = 2: 2 (p - t) / 4 · 2 = p - t = [1, 0, -2, 0]; onto gradients holding 1
        let (mut dp, mut dt) = ([1.0; 4], [1.0; 4]);
        mse_loss_backward(&p, &t, 2.0, Some(&mut dp), Some(&mut dt)).unwrap();
        assert_close!(dp, [2.0, 1.0, -1.0, 1.0], 1e-15);
        assert_close!(dt, [0.0, 1.0, 3.0, 1.0], 1e-15);
        // None skips a gradient
        let mut dp = [0.0; 4];
        mse_loss_backward(&p, &t, 1.0, Some(&mut dp), None).unwrap();
        assert_close!(dp, [0.5, 0.0, -1.0, 0.0], 1e-15);
    }

    #[test]
    fn f32_literal() {
        // [0.5, -1] vs [0, 1]: (0.25 + 4) / 2 = 2.125; dpred = (p - t) = [0.5, -2]
        let (p, t) = ([0.5f32, -1.0], [0.0f32, 1.0]);
        assert_close!(mse_loss(&p, &t).unwrap(), 2.125f32);
        let mut dp = [0.0f32; 2];
        mse_loss_backward(&p, &t, 1.0, Some(&mut dp), None).unwrap();
        assert_close!(dp, [0.5f32, -2.0]);
    }

    #[test]
    fn gradcheck() {
        let p: Vec<f64> = random_vec(19, 10, -2.0, 2.0);
        let t: Vec<f64> = random_vec(20, 10, -2.0, 2.0);
        let dy = 0.7;
        let (mut dp, mut dt) = (vec![0.0; 10], vec![0.0; 10]);
        mse_loss_backward(&p, &t, dy, Some(&mut dp), Some(&mut dt)).unwrap();
        let by_pred = |p: &[f64]| dy * mse_loss(p, &t).unwrap();
        assert_gradient("mse_loss (pred)", by_pred, &p, &dp, 1e-7);
        let by_target = |t: &[f64]| dy * mse_loss(&p, t).unwrap();
        assert_gradient("mse_loss (target)", by_target, &t, &dt, 1e-7);
    }

    #[test]
    fn bad_input_is_an_error() {
        let err = mse_loss(&[1.0f64, 2.0], &[1.0]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "length mismatch in mse_loss: `target` has 1 elements, expected 2"
        );
        assert!(mse_loss::<f64>(&[], &[]).is_err());
        let mut dt = [0.0f64; 3];
        let err = mse_loss_backward(&[1.0, 2.0], &[1.0, 2.0], 1.0, None, Some(&mut dt));
        assert_eq!(
            err.unwrap_err().to_string(),
            "length mismatch in mse_loss: `dtarget` has 3 elements, expected 2"
        );
    }
}
