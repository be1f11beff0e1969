//! [`AdamW`]: Adam with decoupled weight decay (Loshchilov & Hutter; PyTorch's
//! `torch.optim.AdamW`): each step first shrinks the parameter, `p ← p · (1 − lr·w)`, then
//! applies the Adam update of [`Adam`] to the plain gradient.

use alloc::vec::Vec;
use serde::{Deserialize, Serialize};

use super::{Adam, DecayScope, Optimizer};
use crate::{Float, Module, Result};

/// AdamW. Defaults (PyTorch's): betas (0.9, 0.999), eps 1e-8, weight decay 0.01, no AMSGrad.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(bound(serialize = "T: Float", deserialize = "T: Float"))]
pub struct AdamW<T: Float>(Adam<T>);

impl<T: Float> AdamW<T> {
    /// AdamW with learning rate `lr` and PyTorch's defaults (weight decay 0.01).
    pub fn new(lr: f64) -> Self {
        AdamW(Adam::new_decoupled(lr, 0.01))
    }

    /// The decay rates β₁, β₂ of the first and second moments (default 0.9, 0.999).
    pub fn betas(self, beta1: f64, beta2: f64) -> Self {
        AdamW(self.0.betas(beta1, beta2))
    }

    /// The constant added to the denominator (default 1e-8).
    pub fn eps(self, eps: f64) -> Self {
        AdamW(self.0.eps(eps))
    }

    /// Decoupled weight decay `w` (default 0.01).
    pub fn weight_decay(self, weight_decay: f64) -> Self {
        AdamW(self.0.weight_decay(weight_decay))
    }

    /// AMSGrad (default off).
    pub fn amsgrad(self, amsgrad: bool) -> Self {
        AdamW(self.0.amsgrad(amsgrad))
    }

    /// Which parameters weight decay applies to (default [`DecayScope::All`]).
    pub fn decay_scope(self, scope: DecayScope) -> Self {
        AdamW(self.0.decay_scope(scope))
    }

    /// Weight decay on parameters with two or more dimensions only (weights and
    /// embeddings, not biases or LayerNorm gains), as nanoGPT-style recipes train:
    /// `decay_scope(DecayScope::MatricesOnly)`.
    pub fn decay_matrices_only(self) -> Self {
        AdamW(self.0.decay_matrices_only())
    }

    /// The parameters weight decay applies to.
    pub fn scope(&self) -> DecayScope {
        self.0.scope()
    }
}

impl<T: Float> Optimizer<T> for AdamW<T> {
    fn init(&mut self, model: &dyn Module<T>) -> Result<()> {
        self.0.init(model)
    }
    fn step(&mut self, model: &mut dyn Module<T>) -> Result<()> {
        self.0.step(model)
    }
    fn learning_rate(&self) -> f64 {
        self.0.learning_rate()
    }
    fn set_learning_rate(&mut self, lr: f64) {
        self.0.set_learning_rate(lr)
    }
    fn config(&self) -> Vec<(&'static str, f64)> {
        self.0.config()
    }
    fn step_count(&self) -> u64 {
        self.0.step_count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::assert_close;
    use crate::optim::test_util::{matrix_and_vector, scalar, trajectory};

    #[test]
    fn literal_decoupled_weight_decay() {
        // p = 1, g = 0.5, lr 0.1, weight decay 0.5, eps 0: p shrinks by 1 - 0.05 = 0.95, then
        // the Adam step of a constant gradient moves it by lr:
        // step 1: 0.95 - 0.1 = 0.85; step 2: 0.85 * 0.95 - 0.1 = 0.7075
        let mut opt = AdamW::new(0.1).weight_decay(0.5).eps(0.0);
        assert_close!(trajectory::<f64>(&mut opt, 2), [0.85, 0.7075], 1e-14);
        let mut opt = AdamW::new(0.1)
            .weight_decay(0.5)
            .eps(0.0)
            .betas(0.8, 0.9)
            .amsgrad(true);
        assert_close!(trajectory::<f32>(&mut opt, 2), [0.85f32, 0.7075]);
    }

    #[test]
    fn literal_decoupled_decay_of_matrices_only() {
        // as literal_decoupled_weight_decay for the [1, 1] matrix (0.85, 0.7075); the [1]
        // vector does not shrink and moves by lr per step (0.9, 0.8)
        let mut opt = AdamW::new(0.1)
            .weight_decay(0.5)
            .eps(0.0)
            .decay_matrices_only();
        assert_eq!(opt.scope(), DecayScope::MatricesOnly);
        let got = matrix_and_vector::<f64>(&mut opt, 2);
        assert_close!([got[0].0, got[1].0], [0.85, 0.7075], 1e-14);
        assert_close!([got[0].1, got[1].1], [0.9, 0.8], 1e-14);
        let mut opt = AdamW::new(0.1)
            .weight_decay(0.5)
            .eps(0.0)
            .amsgrad(true)
            .decay_scope(DecayScope::MatricesOnly);
        let got = matrix_and_vector::<f32>(&mut opt, 2);
        assert_close!([got[0].0, got[1].0], [0.85f32, 0.7075]);
        assert_close!([got[0].1, got[1].1], [0.9f32, 0.8]);
        // the default scope shrinks both
        let mut opt = AdamW::new(0.1).weight_decay(0.5).eps(0.0);
        assert_eq!(opt.scope(), DecayScope::All);
        let got = matrix_and_vector::<f64>(&mut opt, 2);
        assert_close!([got[1].0, got[1].1], [0.7075, 0.7075], 1e-14);
    }

    #[test]
    fn defaults_and_errors() {
        let mut opt = AdamW::<f64>::new(1e-3);
        assert_eq!(
            opt.config(),
            [
                ("lr", 1e-3),
                ("beta1", 0.9),
                ("beta2", 0.999),
                ("eps", 1e-8),
                ("weight_decay", 0.01),
                ("amsgrad", 0.0),
                ("decay_matrices_only", 0.0)
            ]
        );
        opt.set_learning_rate(-1.0);
        assert_eq!(opt.learning_rate(), -1.0);
        let err = opt.step(&mut scalar(1.0)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid argument to adamw: learning rate must be >= 0, got -1"
        );
        assert_eq!(opt.step_count(), 0);
    }
}
