//! Learning-rate schedules (the seed's "Learning Rate Scheduling" section): a schedule maps
//! an epoch (from 0) to a learning rate, which the training loop hands to
//! [`Optimizer::set_learning_rate`](super::Optimizer::set_learning_rate).
//!
//! | schedule | lr(epoch) | PyTorch |
//! | --- | --- | --- |
//! | [`StepDecay`] | `base · gamma^⌊epoch / step_size⌋` | `StepLR` |
//! | [`ExponentialDecay`] | `base · exp(−rate · epoch)` | `ExponentialLR` with gamma = e^(−rate) |
//! | [`CosineAnnealing`] | `min + (base − min)(1 + cos(π · epoch / total)) / 2` | `CosineAnnealingLR` |
//! | [`LinearWarmup`] | a linear ramp, then another schedule | |
//!
//! ```
//! use nanograd_runtime::optim::{LrSchedule, StepDecay};
//! let s = StepDecay { base: 0.1, step_size: 30, gamma: 0.5 };
//! assert_eq!((s.lr(29), s.lr(30), s.lr(60)), (0.1, 0.05, 0.025));
//! ```

use alloc::boxed::Box;
use serde::{Deserialize, Serialize};

use crate::{invalid, Result};

/// A learning rate per epoch.
pub trait LrSchedule {
    /// The learning rate of `epoch` (counted from 0).
    fn lr(&self, epoch: usize) -> f64;
}

impl<S: LrSchedule + ?Sized> LrSchedule for Box<S> {
    fn lr(&self, epoch: usize) -> f64 {
        (**self).lr(epoch)
    }
}

impl<S: LrSchedule + ?Sized> LrSchedule for &S {
    fn lr(&self, epoch: usize) -> f64 {
        (**self).lr(epoch)
    }
}

/// `base · gamma^⌊epoch / step_size⌋`: multiply by `gamma` every `step_size` epochs (the
/// seed's `step-decay` with `drop-every = step_size`, PyTorch's `StepLR`). A `step_size` of 0
/// reads as 1; [`StepDecay::new`] rejects it.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct StepDecay {
    /// The learning rate of epoch 0.
    pub base: f64,
    /// Epochs between decays.
    pub step_size: usize,
    /// The factor applied at each decay.
    pub gamma: f64,
}

impl StepDecay {
    /// Checks that `step_size > 0`.
    pub fn new(base: f64, step_size: usize, gamma: f64) -> Result<Self> {
        if step_size == 0 {
            return Err(invalid("StepDecay", "step_size must be positive, got 0"));
        }
        Ok(StepDecay {
            base,
            step_size,
            gamma,
        })
    }
}

impl LrSchedule for StepDecay {
    fn lr(&self, epoch: usize) -> f64 {
        let drops = epoch / self.step_size.max(1);
        self.base * crate::Float::powi(self.gamma, i32::try_from(drops).unwrap_or(i32::MAX))
    }
}

/// `base · exp(−rate · epoch)` (the seed's `exp-decay`).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct ExponentialDecay {
    /// The learning rate of epoch 0.
    pub base: f64,
    /// The decay rate per epoch.
    pub rate: f64,
}

impl LrSchedule for ExponentialDecay {
    fn lr(&self, epoch: usize) -> f64 {
        self.base * crate::Float::exp(-self.rate * epoch as f64)
    }
}

/// `min + (base − min) · (1 + cos(π · epoch / total)) / 2`: half a cosine from `base` at
/// epoch 0 to `min` at epoch `total` (PyTorch's `CosineAnnealingLR` closed form with
/// `T_max = total`, `eta_min = min`; the seed's `cosine-annealing` is `min = 0`). Past
/// `total` the cosine continues, as in PyTorch. A `total` of 0 reads as 1.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct CosineAnnealing {
    /// The learning rate of epoch 0.
    pub base: f64,
    /// The learning rate reached at epoch `total`.
    pub min: f64,
    /// The length of the half period, in epochs.
    pub total: usize,
}

impl LrSchedule for CosineAnnealing {
    fn lr(&self, epoch: usize) -> f64 {
        let phase = core::f64::consts::PI * epoch as f64 / self.total.max(1) as f64;
        self.min + (self.base - self.min) * (1.0 + crate::float::cos(phase)) / 2.0
    }
}

/// A linear warm-up over the first `warmup` epochs, then the schedule `then`, started afresh:
/// `then.lr(0) · (epoch + 1) / (warmup + 1)` for `epoch < warmup`, else
/// `then.lr(epoch − warmup)`. The ramp never reaches 0 and rises steadily to `then.lr(0)`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct LinearWarmup<S> {
    /// The number of warm-up epochs.
    pub warmup: usize,
    /// The schedule that follows.
    pub then: S,
}

impl<S: LrSchedule> LrSchedule for LinearWarmup<S> {
    fn lr(&self, epoch: usize) -> f64 {
        if epoch < self.warmup {
            self.then.lr(0) * (epoch + 1) as f64 / (self.warmup + 1) as f64
        } else {
            self.then.lr(epoch - self.warmup)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::assert_close;

    #[test]
    fn step_decay_by_hand() {
        // the seed's usage: (step-decay 0.1 epoch 30 0.5)
        let s = StepDecay::new(0.1, 30, 0.5).unwrap();
        let lrs: Vec<f64> = [0, 29, 30, 59, 60, 95].iter().map(|&e| s.lr(e)).collect();
        assert_close!(lrs, [0.1, 0.1, 0.05, 0.05, 0.025, 0.0125], 1e-15);
        assert!(StepDecay::new(0.1, 0, 0.5).is_err());
        // a literal with step_size 0 decays every epoch instead of dividing by zero
        assert_close!(
            StepDecay {
                base: 1.0,
                step_size: 0,
                gamma: 0.5
            }
            .lr(3),
            0.125,
            1e-15
        );
    }

    #[test]
    fn exponential_decay_by_hand() {
        let s = ExponentialDecay {
            base: 0.2,
            rate: 0.1,
        };
        // 0.2 e^0 = 0.2; 0.2 e^-1 = 0.0735758882...; 0.2 e^-2.5 = 0.0164169997...
        assert_close!(
            [s.lr(0), s.lr(10), s.lr(25)],
            [0.2, 0.07357588823428847, 0.01641699972477976],
            1e-15
        );
    }

    #[test]
    fn cosine_annealing_by_hand() {
        let s = CosineAnnealing {
            base: 0.1,
            min: 0.0,
            total: 100,
        };
        // the seed: 0.5 base (1 + cos(pi e / total)): 0.1 at 0, 0.05 at 50, 0 at 100;
        // at 25: 0.05 (1 + cos(pi/4)) = 0.05 (1 + 0.70710678) = 0.0853553390...
        assert_close!(
            [s.lr(0), s.lr(25), s.lr(50), s.lr(100)],
            [0.1, 0.08535533905932738, 0.05, 0.0],
            1e-15
        );
        let s = CosineAnnealing {
            base: 1.0,
            min: 0.2,
            total: 4,
        };
        // 0.2 + 0.8 (1 + cos(pi/2)) / 2 = 0.6 at epoch 2; the cosine rises again past total
        assert_close!(
            [s.lr(2), s.lr(4), s.lr(6), s.lr(8)],
            [0.6, 0.2, 0.6, 1.0],
            1e-15
        );
    }

    #[test]
    fn linear_warmup_then_schedule() {
        let s = LinearWarmup {
            warmup: 3,
            then: StepDecay {
                base: 0.4,
                step_size: 2,
                gamma: 0.5,
            },
        };
        // ramp 0.4 * 1/4, 2/4, 3/4, then step decay from its epoch 0: 0.4, 0.4, 0.2, 0.2, 0.1
        let lrs: Vec<f64> = (0..8).map(|e| s.lr(e)).collect();
        assert_close!(lrs, [0.1, 0.2, 0.3, 0.4, 0.4, 0.2, 0.2, 0.1], 1e-15);
        let boxed: LinearWarmup<Box<dyn LrSchedule>> = LinearWarmup {
            warmup: 1,
            then: Box::new(ExponentialDecay {
                base: 1.0,
                rate: 0.0,
            }),
        };
        assert_close!(
            [boxed.lr(0), boxed.lr(1), boxed.lr(9)],
            [0.5, 1.0, 1.0],
            1e-15
        );
    }
}
