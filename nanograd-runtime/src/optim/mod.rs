//! Optimizers, learning-rate schedules, gradient clipping and gradient diagnostics.
//!
//! | optimizer | PyTorch | update (g = gradient, p = parameter) |
//! | --- | --- | --- |
//! | [`Sgd`] | `torch.optim.SGD` | momentum, dampening, Nesterov, coupled L2 |
//! | [`Adam`] | `torch.optim.Adam` | bias-corrected moments, coupled L2 (`g += w·p`), AMSGrad |
//! | [`AdamW`] | `torch.optim.AdamW` | Adam with decoupled decay (`p *= 1 − lr·w`) |
//! | [`RmsProp`] | `torch.optim.RMSprop` | squared-gradient average, momentum, centred |
//!
//! Adam and AdamW can restrict weight decay to parameters with two or more dimensions
//! ([`DecayScope::MatricesOnly`], `AdamW::new(lr).weight_decay(0.1).decay_matrices_only()`),
//! what PyTorch does with two parameter groups.
//!
//! Defaults and update formulas are PyTorch's (its single-tensor code path, in the same order
//! of floating-point operations), so trajectories agree with PyTorch's to rounding; the tests
//! compare them over many steps. Hyperparameters are `f64`, converted to `T` once per step.
//!
//! An optimizer is configured by a builder that cannot fail (`Adam::new(1e-3).betas(0.9,
//! 0.99)`); [`Optimizer::step`] checks the configuration (PyTorch's constructor checks) and
//! returns [`Error`](crate::Error) for, say, a negative learning rate.
//!
//! State (moments, step count) is allocated by the first step or by [`Optimizer::init`]; a
//! step then allocates nothing. It is keyed by parameter order, and each step checks that
//! the model still has the parameters (names and lengths) the state was built for. Optimizers
//! and their state are `serde` serialisable, so a training run can be checkpointed and
//! resumed exactly.
//!
//! ```
//! use nanograd_runtime::{layers::Dense, optim::{Adam, Optimizer}, Module};
//! use nanograd_runtime::rand::{rngs::StdRng, SeedableRng};
//!
//! let mut layer = Dense::<f64>::new(3, 2, &mut StdRng::seed_from_u64(0))?;
//! let mut opt = Adam::new(1e-2).betas(0.9, 0.99);
//! layer.visit_params_mut(&mut |_, p| p.grad_mut().fill(1.0)); // (a backward pass)
//! let before = layer.bias.value()[0];
//! opt.step(&mut layer)?;
//! // Adam's first step moves every parameter by lr against the gradient's sign
//! assert!((layer.bias.value()[0] - (before - 1e-2)).abs() < 1e-9);
//! layer.zero_grad();
//! # Ok::<(), nanograd_runtime::Error>(())
//! ```

use alloc::vec::Vec;

mod adam;
mod adamw;
pub mod clip;
pub mod diagnostics;
mod rmsprop;
pub mod schedule;
mod sgd;
mod state;
mod weight_decay;

pub use adam::Adam;
pub use adamw::AdamW;
pub use clip::{clip_grad_norm, clip_grad_value};
pub use diagnostics::{
    check_grad_health, ensure_finite, grad_stats, GradIssue, GradStats, HealthThresholds,
};
pub use rmsprop::RmsProp;
pub use schedule::{CosineAnnealing, ExponentialDecay, LinearWarmup, LrSchedule, StepDecay};
pub use sgd::Sgd;
pub use weight_decay::DecayScope;

use crate::{Float, Module, Result};

/// An optimizer: updates a model's parameters from their gradients (the seed's `step!`,
/// `get-learning-rate`, `set-learning-rate!`, `optimizer-state`).
///
/// The trait is object safe: `step` takes `&mut dyn Module<T>`, to which `&mut model`
/// converts implicitly for any sized model, and optimizers can be chosen at run time as
/// `Box<dyn Optimizer<T>>`.
pub trait Optimizer<T: Float> {
    /// Allocates fresh state (zero moments, step count 0) for the parameters of `model`.
    /// [`Optimizer::step`] calls it on first use; calling it again resets the state.
    fn init(&mut self, model: &dyn Module<T>) -> Result<()>;

    /// One update of every parameter of `model` from its gradient. Errors, before changing
    /// anything, if the configuration is invalid or the model's parameters (names, lengths,
    /// order) are not the ones the state was built for.
    fn step(&mut self, model: &mut dyn Module<T>) -> Result<()>;

    /// The current learning rate.
    fn learning_rate(&self) -> f64;

    /// Sets the learning rate, for schedules (checked by the next `step`).
    fn set_learning_rate(&mut self, lr: f64);

    /// The hyperparameters by PyTorch name (`lr`, `momentum`, `beta1`, `eps`,
    /// `weight_decay`, ...; flags as 0 or 1), the seed's `optimizer-state`.
    fn config(&self) -> Vec<(&'static str, f64)>;

    /// The number of steps taken since the state was allocated.
    fn step_count(&self) -> u64;
}

/// `a + w (b − a)` as PyTorch's `lerp` computes it (from `b` when `w >= 0.5`, which is
/// more accurate there).
#[inline]
pub(crate) fn lerp<T: Float>(a: T, b: T, w: T) -> T {
    if w.abs() < T::from_f64(0.5) {
        a + w * (b - a)
    } else {
        b - (b - a) * (T::one() - w)
    }
}

/// Checks `low <= value` (and `value < high` when given), as PyTorch's constructors do;
/// NaN fails.
pub(crate) fn check_range(
    op: &'static str,
    what: &str,
    value: f64,
    low: f64,
    high: Option<f64>,
) -> Result<()> {
    let ok = low <= value && high.is_none_or(|h| value < h);
    if ok {
        return Ok(());
    }
    let range = match high {
        Some(h) => format!("in [{low}, {h})"),
        None => format!(">= {low}"),
    };
    Err(crate::invalid(
        op,
        format!("{what} must be {range}, got {value}"),
    ))
}

/// A flat module of named parameters and a constant-gradient driver, for the optimizers'
/// hand-derived tests.
#[cfg(test)]
pub(crate) mod test_util {
    use super::Optimizer;
    use crate::{Float, Module, Param};

    /// Named parameters as a module.
    pub struct Params<T: Float>(pub Vec<(&'static str, Param<T>)>);

    impl<T: Float> Module<T> for Params<T> {
        fn visit_params(&self, f: &mut dyn FnMut(&str, &Param<T>)) {
            for (name, p) in &self.0 {
                f(name, p);
            }
        }
        fn visit_params_mut(&mut self, f: &mut dyn FnMut(&str, &mut Param<T>)) {
            for (name, p) in &mut self.0 {
                f(name, p);
            }
        }
        fn set_training_mode(&mut self, _: bool) {}
        fn is_training(&self) -> bool {
            true
        }
    }

    /// One parameter `w = [value]`.
    pub fn scalar<T: Float>(value: f64) -> Params<T> {
        Params(vec![(
            "w",
            Param::new(&[1], vec![T::from_f64(value)]).unwrap(),
        )])
    }

    /// Runs `steps` steps of `opt` on `w = [1]` with the gradient held at 0.5, and returns
    /// the value after each step.
    pub fn trajectory<T: Float>(opt: &mut dyn Optimizer<T>, steps: usize) -> Vec<T> {
        let mut m = scalar::<T>(1.0);
        (0..steps)
            .map(|_| {
                m.0[0].1.grad_mut()[0] = T::from_f64(0.5);
                opt.step(&mut m).unwrap();
                m.0[0].1.value()[0]
            })
            .collect()
    }

    /// A `[1, 1]` matrix and a `[1]` vector, both 1 with the gradient held at 0.5: the
    /// values of both after each of `steps` steps.
    pub fn matrix_and_vector<T: Float>(opt: &mut dyn Optimizer<T>, steps: usize) -> Vec<(T, T)> {
        let one = || vec![T::one()];
        let mut m = Params(vec![
            ("w", Param::new(&[1, 1], one()).unwrap()),
            ("b", Param::new(&[1], one()).unwrap()),
        ]);
        (0..steps)
            .map(|_| {
                m.visit_params_mut(&mut |_, p| p.grad_mut()[0] = T::from_f64(0.5));
                opt.step(&mut m).unwrap();
                (m.0[0].1.value()[0], m.0[1].1.value()[0])
            })
            .collect()
    }
}
