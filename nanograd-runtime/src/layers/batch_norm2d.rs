//! [`BatchNorm2d`]: batch normalisation over the channels of `[B, C, H, W]` inputs (the
//! seed's `make-batch-norm-2d`, PyTorch's `nn.BatchNorm2d`):
//! `y = weight · (x − μ) / √(σ² + eps) + bias`, with the batch statistics in training mode
//! and the running ones in evaluation mode. The running statistics are updated in training
//! as `running = (1 − momentum) · running + momentum · batch` (unbiased batch variance).

use super::positive;
use crate::{invalid, Float, Module, Param, Result, Tensor};

/// Batch normalisation of `num_features` channels: a learnable scale `weight` (ones) and
/// shift `bias` (zeros), and the buffers `running_mean` (zeros) and `running_var` (ones).
/// Defaults (seed and PyTorch): `eps = 1e-5`, `momentum = 0.1`.
#[derive(Clone, Debug)]
pub struct BatchNorm2d<T: Float> {
    /// Scale γ, `[num_features]`, initialised to ones.
    pub weight: Param<T>,
    /// Shift β, `[num_features]`, initialised to zeros.
    pub bias: Param<T>,
    /// Running mean, `[num_features]`, initialised to zeros.
    pub running_mean: Tensor<T>,
    /// Running (unbiased) variance, `[num_features]`, initialised to ones.
    pub running_var: Tensor<T>,
    num_features: usize,
    eps: f64,
    momentum: f64,
    training: bool,
}

impl<T: Float> BatchNorm2d<T> {
    /// Batch norm over `num_features` channels, with `eps = 1e-5`, `momentum = 0.1`.
    /// Errors if `num_features` is zero.
    pub fn new(num_features: usize) -> Result<Self> {
        positive("BatchNorm2d", "num_features", num_features)?;
        Ok(BatchNorm2d {
            weight: Param::full(&[num_features], T::one())?,
            bias: Param::zeros(&[num_features])?,
            running_mean: Tensor::zeros(&[num_features])?,
            running_var: Tensor::full(&[num_features], T::one())?,
            num_features,
            eps: 1e-5,
            momentum: 0.1,
            training: true,
        })
    }

    /// The number of channels (the seed's `layer-input-size` and `layer-output-size`).
    pub fn num_features(&self) -> usize {
        self.num_features
    }

    /// The constant added to the variance before the square root.
    pub fn eps(&self) -> f64 {
        self.eps
    }

    /// The weight of the current batch in the running statistics' update.
    pub fn momentum(&self) -> f64 {
        self.momentum
    }

    /// Sets `eps`; errors unless it is finite and positive.
    pub fn set_eps(&mut self, eps: f64) -> Result<()> {
        self.eps = super::positive_eps("BatchNorm2d", eps)?;
        Ok(())
    }

    /// Sets `momentum`; errors unless it lies in `[0, 1]`.
    pub fn set_momentum(&mut self, momentum: f64) -> Result<()> {
        if !(0.0..=1.0).contains(&momentum) {
            return Err(invalid(
                "BatchNorm2d",
                format!("momentum must lie in [0, 1], got {momentum}"),
            ));
        }
        self.momentum = momentum;
        Ok(())
    }
}

impl<T: Float> Module<T> for BatchNorm2d<T> {
    fn visit_params(&self, f: &mut dyn FnMut(&str, &Param<T>)) {
        f("weight", &self.weight);
        f("bias", &self.bias);
    }
    fn visit_params_mut(&mut self, f: &mut dyn FnMut(&str, &mut Param<T>)) {
        f("weight", &mut self.weight);
        f("bias", &mut self.bias);
    }
    fn visit_buffers(&self, f: &mut dyn FnMut(&str, &Tensor<T>)) {
        f("running_mean", &self.running_mean);
        f("running_var", &self.running_var);
    }
    fn visit_buffers_mut(&mut self, f: &mut dyn FnMut(&str, &mut Tensor<T>)) {
        f("running_mean", &mut self.running_mean);
        f("running_var", &mut self.running_var);
    }
    fn set_training_mode(&mut self, training: bool) {
        self.training = training;
    }
    fn is_training(&self) -> bool {
        self.training
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn initial_state_and_names() {
        let mut bn = BatchNorm2d::<f32>::new(3).unwrap();
        assert_eq!(bn.weight.value(), &[1.0; 3]);
        assert_eq!(bn.bias.value(), &[0.0; 3]);
        assert_eq!(bn.running_mean.data(), &[0.0; 3]);
        assert_eq!(bn.running_var.data(), &[1.0; 3]);
        assert_eq!((bn.num_features(), bn.eps(), bn.momentum()), (3, 1e-5, 0.1));
        let mut names = Vec::new();
        bn.visit_params(&mut |n, _| names.push(n.to_string()));
        bn.visit_buffers(&mut |n, _| names.push(n.to_string()));
        assert_eq!(names, ["weight", "bias", "running_mean", "running_var"]);
        bn.visit_buffers_mut(&mut |_, b| b.data_mut()[0] = 5.0);
        assert_eq!(bn.running_mean.data()[0], 5.0);
        bn.set_eval_mode();
        assert!(!bn.is_training());
    }

    #[test]
    fn setters_check_their_range() {
        let mut bn = BatchNorm2d::<f64>::new(2).unwrap();
        bn.set_eps(1e-3).unwrap();
        bn.set_momentum(0.01).unwrap();
        assert_eq!((bn.eps(), bn.momentum()), (1e-3, 0.01));
        let err = bn.set_momentum(1.5).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid argument to BatchNorm2d: momentum must lie in [0, 1], got 1.5"
        );
        assert!(bn.set_eps(0.0).is_err() && bn.set_eps(f64::NAN).is_err());
        assert_eq!((bn.eps(), bn.momentum()), (1e-3, 0.01));
        assert!(BatchNorm2d::<f64>::new(0).is_err());
    }
}
