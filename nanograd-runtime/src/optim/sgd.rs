//! [`Sgd`]: stochastic gradient descent with momentum, dampening, Nesterov momentum and
//! coupled weight decay (the seed's `make-sgd`, PyTorch's `torch.optim.SGD`):
//!
//! ```text
//! g ← g + w·p                                   (weight_decay w ≠ 0)
//! b ← g at the first step, else μ·b + (1 − τ)·g (momentum μ ≠ 0, dampening τ)
//! g ← g + μ·b if nesterov, else b
//! p ← p − lr·g
//! ```

use alloc::vec::Vec;
use serde::{Deserialize, Serialize};

use super::state::ParamKeys;
use super::weight_decay::coupled;
use super::{check_range, Optimizer};
use crate::{invalid, Float, Module, Result};

/// SGD. Defaults (PyTorch's): momentum 0, dampening 0, nesterov off, weight decay 0.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(bound(serialize = "T: Float", deserialize = "T: Float"))]
pub struct Sgd<T: Float> {
    lr: f64,
    momentum: f64,
    dampening: f64,
    nesterov: bool,
    weight_decay: f64,
    state: Option<SgdState<T>>,
}

/// Per-parameter momentum buffers (empty without momentum) and the step count.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(bound(serialize = "T: Float", deserialize = "T: Float"))]
struct SgdState<T: Float> {
    keys: ParamKeys,
    steps: u64,
    momentum_buffer: Vec<Vec<T>>,
}

impl<T: Float> Sgd<T> {
    /// SGD with learning rate `lr` and PyTorch's defaults for everything else.
    pub fn new(lr: f64) -> Self {
        Sgd {
            lr,
            momentum: 0.0,
            dampening: 0.0,
            nesterov: false,
            weight_decay: 0.0,
            state: None,
        }
    }

    /// Momentum factor μ (default 0).
    pub fn momentum(mut self, momentum: f64) -> Self {
        self.momentum = momentum;
        self
    }

    /// Dampening τ of the momentum (default 0).
    pub fn dampening(mut self, dampening: f64) -> Self {
        self.dampening = dampening;
        self
    }

    /// Nesterov momentum (default off); needs momentum > 0 and zero dampening.
    pub fn nesterov(mut self, nesterov: bool) -> Self {
        self.nesterov = nesterov;
        self
    }

    /// Coupled L2 weight decay `w` (default 0).
    pub fn weight_decay(mut self, weight_decay: f64) -> Self {
        self.weight_decay = weight_decay;
        self
    }

    fn validate(&self) -> Result<()> {
        check_range("sgd", "learning rate", self.lr, 0.0, None)?;
        check_range("sgd", "momentum", self.momentum, 0.0, None)?;
        check_range("sgd", "weight_decay", self.weight_decay, 0.0, None)?;
        if !self.dampening.is_finite() {
            return Err(invalid(
                "sgd",
                format!("dampening must be finite, got {}", self.dampening),
            ));
        }
        if self.nesterov && (self.momentum <= 0.0 || self.dampening != 0.0) {
            return Err(invalid(
                "sgd",
                format!(
                    "nesterov momentum needs momentum > 0 and zero dampening, got momentum {} and dampening {}",
                    self.momentum, self.dampening
                ),
            ));
        }
        Ok(())
    }
}

/// Fresh state: momentum buffers (zeros, overwritten by the first gradient) only when there
/// is momentum.
fn new_state<T: Float>(keys: ParamKeys, momentum: f64) -> SgdState<T> {
    let momentum_buffer = if momentum != 0.0 {
        keys.zeros()
    } else {
        Vec::new()
    };
    SgdState {
        keys,
        steps: 0,
        momentum_buffer,
    }
}

impl<T: Float> Optimizer<T> for Sgd<T> {
    fn init(&mut self, model: &dyn Module<T>) -> Result<()> {
        self.state = Some(new_state(ParamKeys::of(model), self.momentum));
        Ok(())
    }

    fn step(&mut self, model: &mut dyn Module<T>) -> Result<()> {
        self.validate()?;
        let momentum = self.momentum;
        let state = self
            .state
            .get_or_insert_with(|| new_state(ParamKeys::of(&*model), momentum));
        let use_momentum = momentum != 0.0;
        if use_momentum {
            state
                .keys
                .check_buffers("sgd", "momentum_buffer", &state.momentum_buffer)?;
        }
        let (lr, m, damp, wd) = (
            T::from_f64(self.lr),
            T::from_f64(momentum),
            T::from_f64(1.0 - self.dampening),
            T::from_f64(self.weight_decay),
        );
        let (nesterov, first) = (self.nesterov, state.steps == 0);
        let SgdState {
            keys,
            momentum_buffer,
            ..
        } = state;
        keys.for_each_param("sgd", model, |i, p, g| {
            if !use_momentum {
                for (pj, &gj) in p.iter_mut().zip(g) {
                    *pj += -lr * coupled(gj, *pj, wd);
                }
                return;
            }
            for ((pj, &gj), b) in p.iter_mut().zip(g).zip(momentum_buffer[i].iter_mut()) {
                let d = coupled(gj, *pj, wd);
                *b = if first { d } else { *b * m + damp * d };
                *pj += -lr * if nesterov { d + m * *b } else { *b };
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
            ("momentum", self.momentum),
            ("dampening", self.dampening),
            ("weight_decay", self.weight_decay),
            ("nesterov", f64::from(u8::from(self.nesterov))),
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
    use crate::optim::test_util::{scalar, trajectory, Params};
    use crate::Param;

    #[test]
    fn literal_momentum_and_weight_decay() {
        // p = 1, g = 0.5, lr 0.1, momentum 0.9, weight decay 0.1
        // step 1: d = 0.5 + 0.1*1 = 0.6, b = d = 0.6, p = 1 - 0.06 = 0.94
        // step 2: d = 0.5 + 0.094 = 0.594, b = 0.54 + 0.594 = 1.134, p = 0.94 - 0.1134 = 0.8266
        let mut opt = Sgd::new(0.1).momentum(0.9).weight_decay(0.1);
        assert_close!(trajectory::<f64>(&mut opt, 2), [0.94, 0.8266], 1e-15);
        assert_eq!(opt.step_count(), 2);
        // plain: p -= 0.1 * 0.5 each step
        assert_close!(
            trajectory::<f32>(&mut Sgd::new(0.1), 3),
            [0.95f32, 0.9, 0.85]
        );
    }

    #[test]
    fn literal_nesterov_and_dampening() {
        // nesterov, weight decay 0.1: step 1: d = 0.6, b = 0.6, p = 1 - 0.1 (0.6 + 0.54) = 0.886
        // step 2: d = 0.5 + 0.0886 = 0.5886, b = 0.54 + 0.5886 = 1.1286,
        //         p = 0.886 - 0.1 (0.5886 + 0.9 * 1.1286) = 0.886 - 0.160434 = 0.725566
        let mut opt = Sgd::new(0.1).momentum(0.9).nesterov(true).weight_decay(0.1);
        assert_close!(trajectory::<f64>(&mut opt, 2), [0.886, 0.725566], 1e-15);
        // dampening 0.5: the first step takes b = g = 0.5 undamped, p = 0.95;
        // then b = 0.9 * 0.5 + 0.5 * 0.5 = 0.7, p = 0.95 - 0.07 = 0.88
        let mut opt = Sgd::new(0.1).momentum(0.9).dampening(0.5);
        assert_close!(trajectory::<f32>(&mut opt, 2), [0.95f32, 0.88]);
    }

    #[test]
    fn invalid_configuration_is_an_error() {
        let mut m = scalar::<f64>(1.0);
        let err = Sgd::new(-0.1).step(&mut m).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid argument to sgd: learning rate must be >= 0, got -0.1"
        );
        let err = Sgd::new(0.1).nesterov(true).step(&mut m).unwrap_err();
        assert!(
            err.to_string()
                .contains("nesterov momentum needs momentum > 0"),
            "{err}"
        );
        assert!(Sgd::new(0.1)
            .momentum(0.9)
            .dampening(0.1)
            .nesterov(true)
            .step(&mut m)
            .is_err());
        assert!(Sgd::new(f64::NAN).step(&mut m).is_err());
        assert!(Sgd::new(0.1).weight_decay(-1.0).step(&mut m).is_err());
        assert_eq!(m.0[0].1.value(), &[1.0], "nothing changed");
    }

    #[test]
    fn a_changed_model_is_an_error() {
        let mut opt = Sgd::new(0.1).momentum(0.9);
        let mut m = scalar::<f64>(1.0);
        opt.step(&mut m).unwrap();
        let mut other = Params(vec![("v", Param::zeros(&[1]).unwrap())]);
        let err = opt.step(&mut other).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid argument to sgd: parameter 0 is `v` with 1 elements, but the optimizer state was built for `w` with 1"
        );
        let mut longer = Params(vec![("w", Param::zeros(&[2]).unwrap())]);
        assert!(opt
            .step(&mut longer)
            .unwrap_err()
            .to_string()
            .contains("`w` with 2 elements"));
        m.0.push(("b", Param::zeros(&[3]).unwrap()));
        let err = opt.step(&mut m).unwrap_err();
        assert!(
            err.to_string().contains("parameter `b` beyond the 1"),
            "{err}"
        );
        m.0.clear();
        let err = opt.step(&mut m).unwrap_err();
        assert!(
            err.to_string().contains("the model has 0 parameters"),
            "{err}"
        );
        // init rebuilds the state for the new model
        opt.init(&other).unwrap();
        assert_eq!(opt.step_count(), 0);
        opt.step(&mut other).unwrap();
    }

    #[test]
    fn config_and_learning_rate() {
        let mut opt = Sgd::<f32>::new(0.1).momentum(0.9).nesterov(true);
        assert_eq!(
            opt.config(),
            [
                ("lr", 0.1),
                ("momentum", 0.9),
                ("dampening", 0.0),
                ("weight_decay", 0.0),
                ("nesterov", 1.0)
            ]
        );
        opt.set_learning_rate(0.01);
        assert_eq!(opt.learning_rate(), 0.01);
    }
}
