//! `cross_entropy_loss(pred, target) = -Σ_i target_i · ln(max(pred_i, ε))`, `ε = 1e-10`, summed
//! over all elements: the seed's cross-entropy on probabilities (`pred` already normalised,
//! e.g. by softmax); the clamp keeps `pred = 0` finite.
//!
//! Derivatives, with the clamp differentiated as `torch.clamp(pred, min=ε)` is:
//! `∂L/∂pred_i = -target_i / pred_i` where `pred_i > ε`, else 0 (at `pred_i = ε` too, as
//! PyTorch's clamp to a scalar bound does);
//! `∂L/∂target_i = -ln(max(pred_i, ε))`.
//!
//! For logits, prefer the fused and stable [`softmax_cross_entropy`](fn@super::softmax_cross_entropy).

use crate::{check_len, Float, Result};

/// The clamp `ε` applied to `pred` before its logarithm.
pub const CROSS_ENTROPY_EPS: f64 = 1e-10;

/// `max(p, ε)` that keeps NaN, as `torch.clamp` does.
#[inline]
fn clamp<T: Float>(p: T, eps: T) -> T {
    if p < eps {
        eps
    } else {
        p
    }
}

/// `-Σ target · ln(max(pred, 1e-10))` over all elements.
pub fn cross_entropy_loss<T: Float>(pred: &[T], target: &[T]) -> Result<T> {
    check_len("cross_entropy_loss", "target", pred.len(), target.len())?;
    let eps = T::from_f64(CROSS_ENTROPY_EPS);
    let s: T = pred
        .iter()
        .zip(target)
        .map(|(&p, &t)| t * clamp(p, eps).ln())
        .sum();
    Ok(-s)
}

/// `dpred += -target / pred · dy` (0 where `pred <= 1e-10`) and
/// `dtarget += -ln(max(pred, 1e-10)) · dy`, for the upstream gradient `dy` of the scalar
/// loss. `None` skips a gradient.
pub fn cross_entropy_loss_backward<T: Float>(
    pred: &[T],
    target: &[T],
    dy: T,
    mut dpred: Option<&mut [T]>,
    mut dtarget: Option<&mut [T]>,
) -> Result<()> {
    let n = pred.len();
    check_len("cross_entropy_loss", "target", n, target.len())?;
    if let Some(d) = dpred.as_deref() {
        check_len("cross_entropy_loss", "dpred", n, d.len())?;
    }
    if let Some(d) = dtarget.as_deref() {
        check_len("cross_entropy_loss", "dtarget", n, d.len())?;
    }
    let eps = T::from_f64(CROSS_ENTROPY_EPS);
    for i in 0..n {
        let (p, t) = (pred[i], target[i]);
        if let Some(d) = dpred.as_deref_mut() {
            if p > eps {
                d[i] -= t / p * dy;
            }
        }
        if let Some(d) = dtarget.as_deref_mut() {
            d[i] -= clamp(p, eps).ln() * dy;
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
        // pred = [1/4, 3/4 | 1/2, 1/2], target = [0, 1 | 1, 0]:
        // L = -(ln 3/4 + ln 1/2) = ln(4/3) + ln 2 = ln(8/3)
        let p = [0.25f64, 0.75, 0.5, 0.5];
        let t = [0.0f64, 1.0, 1.0, 0.0];
        assert_close!(
            cross_entropy_loss(&p, &t).unwrap(),
            (8.0f64 / 3.0).ln(),
            1e-15
        );
        // dy = 3: dpred = -t/p · 3 = [0, -4, -6, 0]; dtarget = -ln p · 3 = 3 [ln 4, ln 4/3, ln 2, ln 2]
        let (mut dp, mut dt) = ([1.0; 4], [0.0; 4]);
        cross_entropy_loss_backward(&p, &t, 3.0, Some(&mut dp), Some(&mut dt)).unwrap();
        assert_close!(dp, [1.0, -3.0, -5.0, 1.0], 1e-15);
        let l2 = 2.0f64.ln();
        let want = [2.0 * l2, 2.0 * l2 - 3.0f64.ln(), l2, l2].map(|v| 3.0 * v);
        assert_close!(dt, want, 1e-15);
    }

    #[test]
    fn clamps_pred_at_1e_10() {
        // pred = 0 and pred = 1e-10 with target 1 and 1/2: -(1 + 1/2) ln(1e-10) = 15 ln 10;
        // no gradient through the clamp, at the bound either (as torch.clamp(min=1e-10));
        // pred = 2e-10 is above it: dpred = -(1/4) / 2e-10 = -1.25e9
        let p = [0.0f64, 1e-10, 2e-10, 1.0];
        let t = [1.0f64, 0.5, 0.25, 0.0];
        let l10 = 10.0f64.ln();
        let want = 15.0 * l10 - 0.25 * 2e-10f64.ln();
        assert_close!(cross_entropy_loss(&p, &t).unwrap(), want, 1e-15);
        let (mut dp, mut dt) = ([0.0; 4], [0.0; 4]);
        cross_entropy_loss_backward(&p, &t, 1.0, Some(&mut dp), Some(&mut dt)).unwrap();
        assert_close!(dp, [0.0, 0.0, -1.25e9, 0.0], 1e-15);
        let dt_want = [10.0 * l10, 10.0 * l10, -2e-10f64.ln(), 0.0];
        assert_close!(dt, dt_want, 1e-15);
        // NaN stays NaN (f64::max would have hidden it)
        assert!(cross_entropy_loss(&[f64::NAN], &[1.0]).unwrap().is_nan());
    }

    #[test]
    fn f32_literal() {
        // pred = [1/2, 1/4], target = [1/2, 1/2]: L = (ln 2 + ln 4)/2 = (3/2) ln 2;
        // dpred = -t/p = [-1, -2]
        let (p, t) = ([0.5f32, 0.25], [0.5f32, 0.5]);
        assert_close!(cross_entropy_loss(&p, &t).unwrap(), 1.5 * 2.0f32.ln());
        let mut dp = [0.0f32; 2];
        cross_entropy_loss_backward(&p, &t, 1.0, Some(&mut dp), None).unwrap();
        assert_close!(dp, [-1.0f32, -2.0]);
    }

    #[test]
    fn gradcheck() {
        // keep pred away from the clamp
        let p: Vec<f64> = random_vec(21, 10, 0.05, 1.0);
        let t: Vec<f64> = random_vec(22, 10, 0.0, 1.0);
        let dy = -1.3;
        let (mut dp, mut dt) = (vec![0.0; 10], vec![0.0; 10]);
        cross_entropy_loss_backward(&p, &t, dy, Some(&mut dp), Some(&mut dt)).unwrap();
        let by_pred = |p: &[f64]| dy * cross_entropy_loss(p, &t).unwrap();
        assert_gradient("cross_entropy_loss (pred)", by_pred, &p, &dp, 1e-7);
        let by_target = |t: &[f64]| dy * cross_entropy_loss(&p, t).unwrap();
        assert_gradient("cross_entropy_loss (target)", by_target, &t, &dt, 1e-7);
    }

    #[test]
    fn length_mismatch_is_an_error() {
        let err = cross_entropy_loss(&[0.5f64, 0.5], &[1.0, 0.0, 0.0]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "length mismatch in cross_entropy_loss: `target` has 3 elements, expected 2"
        );
        let mut dp = [0.0f64; 1];
        let err = cross_entropy_loss_backward(&[0.5, 0.5], &[1.0, 0.0], 1.0, Some(&mut dp), None);
        assert_eq!(
            err.unwrap_err().to_string(),
            "length mismatch in cross_entropy_loss: `dpred` has 1 elements, expected 2"
        );
    }
}
