//! [`RmsProp`]: divides the gradient by a running root mean square of recent gradients (the
//! seed's `make-rmsprop`, PyTorch's `torch.optim.RMSprop`):
//!
//! ```text
//! g ← g + w·p                                  (coupled weight decay w ≠ 0)
//! s ← α·s + (1 − α)·g²
//! ḡ ← α·ḡ + (1 − α)·g, a ← √(s − ḡ²) + eps     (centered)
//!                      a ← √s + eps            (otherwise)
//! b ← μ·b + g/a, p ← p − lr·b                  (momentum μ > 0; b starts at 0)
//!                p ← p − lr·g/a                (otherwise)
//! ```

use alloc::vec::Vec;
use serde::{Deserialize, Serialize};

use super::state::ParamKeys;
use super::weight_decay::coupled;
use super::{check_range, lerp, Optimizer};
use crate::{Float, Module, Result};

/// RMSprop. Defaults (seed's and PyTorch's): alpha 0.99, eps 1e-8, weight decay 0,
/// momentum 0, not centered.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(bound(serialize = "T: Float", deserialize = "T: Float"))]
pub struct RmsProp<T: Float> {
    lr: f64,
    alpha: f64,
    eps: f64,
    weight_decay: f64,
    momentum: f64,
    centered: bool,
    state: Option<RmsPropState<T>>,
}

/// Per-parameter averages (`grad_avg` only when centered, `momentum_buffer` only with
/// momentum) and the step count.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(bound(serialize = "T: Float", deserialize = "T: Float"))]
struct RmsPropState<T: Float> {
    keys: ParamKeys,
    steps: u64,
    square_avg: Vec<Vec<T>>,
    grad_avg: Vec<Vec<T>>,
    momentum_buffer: Vec<Vec<T>>,
}

impl<T: Float> RmsProp<T> {
    /// RMSprop with learning rate `lr` and PyTorch's defaults for everything else.
    pub fn new(lr: f64) -> Self {
        RmsProp {
            lr,
            alpha: 0.99,
            eps: 1e-8,
            weight_decay: 0.0,
            momentum: 0.0,
            centered: false,
            state: None,
        }
    }

    /// Smoothing constant α of the squared-gradient average (default 0.99).
    pub fn alpha(mut self, alpha: f64) -> Self {
        self.alpha = alpha;
        self
    }

    /// The constant added to the root mean square (default 1e-8).
    pub fn eps(mut self, eps: f64) -> Self {
        self.eps = eps;
        self
    }

    /// Momentum factor μ (default 0).
    pub fn momentum(mut self, momentum: f64) -> Self {
        self.momentum = momentum;
        self
    }

    /// Coupled L2 weight decay `w` (default 0).
    pub fn weight_decay(mut self, weight_decay: f64) -> Self {
        self.weight_decay = weight_decay;
        self
    }

    /// Centered RMSprop: normalise by an estimate of the gradient's variance rather than
    /// its second moment (default off).
    pub fn centered(mut self, centered: bool) -> Self {
        self.centered = centered;
        self
    }

    fn validate(&self) -> Result<()> {
        check_range("rmsprop", "learning rate", self.lr, 0.0, None)?;
        check_range("rmsprop", "eps", self.eps, 0.0, None)?;
        check_range("rmsprop", "momentum", self.momentum, 0.0, None)?;
        check_range("rmsprop", "weight_decay", self.weight_decay, 0.0, None)?;
        check_range("rmsprop", "alpha", self.alpha, 0.0, None)
    }
}

fn new_state<T: Float>(keys: ParamKeys, centered: bool, momentum: bool) -> RmsPropState<T> {
    RmsPropState {
        square_avg: keys.zeros(),
        grad_avg: if centered { keys.zeros() } else { Vec::new() },
        momentum_buffer: if momentum { keys.zeros() } else { Vec::new() },
        keys,
        steps: 0,
    }
}

impl<T: Float> Optimizer<T> for RmsProp<T> {
    fn init(&mut self, model: &dyn Module<T>) -> Result<()> {
        self.state = Some(new_state(
            ParamKeys::of(model),
            self.centered,
            self.momentum > 0.0,
        ));
        Ok(())
    }

    fn step(&mut self, model: &mut dyn Module<T>) -> Result<()> {
        self.validate()?;
        let (centered, use_momentum) = (self.centered, self.momentum > 0.0);
        let state = self
            .state
            .get_or_insert_with(|| new_state(ParamKeys::of(&*model), centered, use_momentum));
        state
            .keys
            .check_buffers("rmsprop", "square_avg", &state.square_avg)?;
        if centered {
            state
                .keys
                .check_buffers("rmsprop", "grad_avg", &state.grad_avg)?;
        }
        if use_momentum {
            state
                .keys
                .check_buffers("rmsprop", "momentum_buffer", &state.momentum_buffer)?;
        }
        let (neg_lr, alpha, one_minus_alpha, eps, wd, mu) = (
            T::from_f64(-self.lr),
            T::from_f64(self.alpha),
            T::from_f64(1.0 - self.alpha),
            T::from_f64(self.eps),
            T::from_f64(self.weight_decay),
            T::from_f64(self.momentum),
        );
        let RmsPropState {
            keys,
            square_avg,
            grad_avg,
            momentum_buffer,
            ..
        } = state;
        keys.for_each_param("rmsprop", model, |i, p, g| {
            for (j, ((pj, &gj), s)) in p
                .iter_mut()
                .zip(g)
                .zip(square_avg[i].iter_mut())
                .enumerate()
            {
                let gj = coupled(gj, *pj, wd);
                *s = *s * alpha + one_minus_alpha * gj * gj;
                let rms = if centered {
                    let ga = &mut grad_avg[i][j];
                    *ga = lerp(*ga, gj, one_minus_alpha);
                    (*s + -*ga * *ga).sqrt()
                } else {
                    s.sqrt()
                };
                let avg = rms + eps;
                if use_momentum {
                    let b = &mut momentum_buffer[i][j];
                    *b = *b * mu + gj / avg;
                    *pj += neg_lr * *b;
                } else {
                    *pj += neg_lr * gj / avg;
                }
            }
        })?;
        state.steps += 1;
        Ok(())
    }

    fn learning_rate(&self) -> f64 {
        self.lr
    }

    fn set_learning_rate(&mut self, lr: f64) {
        self.lr = lr;
    }

    fn config(&self) -> Vec<(&'static str, f64)> {
        vec![
            ("lr", self.lr),
            ("alpha", self.alpha),
            ("eps", self.eps),
            ("weight_decay", self.weight_decay),
            ("momentum", self.momentum),
            ("centered", f64::from(u8::from(self.centered))),
        ]
    }

    fn step_count(&self) -> u64 {
        self.state.as_ref().map_or(0, |s| s.steps)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::assert_close;
    use crate::optim::test_util::{scalar, trajectory};

    #[test]
    fn literal_plain_and_momentum() {
        // p = 1, g = 0.5, lr 0.01, alpha 0.99, eps 0
        // step 1: s = 0.01 * 0.25 = 0.0025, sqrt(s) = 0.05, p = 1 - 0.01 * 0.5 / 0.05 = 0.9
        // step 2: s = 0.99 * 0.0025 + 0.0025 = 0.004975, sqrt(s) = 0.0705336799,
        //         p = 0.9 - 0.005 / 0.0705336799 = 0.8291118795
        let mut opt = RmsProp::new(0.01).eps(0.0);
        assert_close!(
            trajectory::<f64>(&mut opt, 2),
            [0.9, 0.8291118794991664],
            1e-14
        );
        // momentum 0.9: b = 0 + 0.5 / 0.05 = 10, p = 0.9;
        //   b = 9 + 0.5 / 0.0705336799 = 16.0888120501, p = 0.9 - 0.160888 = 0.7391118795
        let mut opt = RmsProp::new(0.01).eps(0.0).momentum(0.9);
        assert_close!(
            trajectory::<f64>(&mut opt, 2),
            [0.9, 0.7391118794991665],
            1e-14
        );
        let mut opt = RmsProp::new(0.01).eps(0.0);
        assert_close!(trajectory::<f32>(&mut opt, 2), [0.9f32, 0.829_111_9]);
    }

    #[test]
    fn literal_centered_with_weight_decay() {
        // centered, eps 0: step 1: s = 0.0025, ga = 0.005, sqrt(s - ga^2) = sqrt(0.002475)
        //   = 0.0497493719, p = 1 - 0.005 / 0.0497493719 = 0.8994962185
        // step 2: s = 0.004975, ga = 0.00995, sqrt(0.004975 - 0.0000990025) = 0.0698283431,
        //   p = 0.8994962185 - 0.005 / 0.0698283431 = 0.8278920564
        let mut opt = RmsProp::new(0.01).eps(0.0).centered(true);
        assert_close!(
            trajectory::<f64>(&mut opt, 2),
            [0.8994962184740788, 0.8278920563520247],
            1e-14
        );
        // weight decay 1 doubles the first gradient to 1.5: s = 0.0225, sqrt = 0.15,
        // p = 1 - 0.01 * 1.5 / 0.15 = 0.9 (the first step is lr * sign(g) / sqrt(1 - alpha))
        let mut opt = RmsProp::new(0.01).eps(0.0).weight_decay(1.0);
        assert_close!(trajectory::<f64>(&mut opt, 1), [0.9], 1e-14);
    }

    #[test]
    fn invalid_configuration_is_an_error() {
        let mut m = scalar::<f32>(1.0);
        let err = RmsProp::new(0.01).alpha(-0.5).step(&mut m).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid argument to rmsprop: alpha must be >= 0, got -0.5"
        );
        assert!(RmsProp::new(0.01).momentum(-0.5).step(&mut m).is_err());
        assert!(RmsProp::new(0.01).eps(f64::NAN).step(&mut m).is_err());
        assert_eq!(
            RmsProp::<f32>::new(0.01).centered(true).config(),
            [
                ("lr", 0.01),
                ("alpha", 0.99),
                ("eps", 1e-8),
                ("weight_decay", 0.0),
                ("momentum", 0.0),
                ("centered", 1.0)
            ]
        );
    }
}
