//! [`LayerNorm`]: normalisation over the last dimension (PyTorch's `nn.LayerNorm(dim)`):
//! `y = weight · (x − μ) / √(σ² + eps) + bias`, with the mean μ and the biased variance σ²
//! of each row of `dim` values. It keeps no running statistics: training and evaluation
//! compute the same thing.

use super::positive;
use crate::{Float, Module, Param, Result};

/// Layer normalisation over rows of `dim` values, with a learnable scale `weight` (ones) and
/// shift `bias` (zeros), unless built [`without_affine`](LayerNorm::without_affine)
/// (PyTorch's `elementwise_affine=False`). Default `eps = 1e-5`, as PyTorch's.
#[derive(Clone, Debug)]
pub struct LayerNorm<T: Float> {
    /// Scale γ, `[dim]`, initialised to ones; empty (`[0]`) without affine parameters.
    pub weight: Param<T>,
    /// Shift β, `[dim]`, initialised to zeros; empty (`[0]`) without affine parameters.
    pub bias: Param<T>,
    dim: usize,
    affine: bool,
    eps: f64,
    training: bool,
}

impl<T: Float> LayerNorm<T> {
    /// Layer norm over rows of `dim` values, with `weight` ones and `bias` zeros and
    /// `eps = 1e-5`. Errors if `dim` is zero.
    pub fn new(dim: usize) -> Result<Self> {
        positive("LayerNorm", "dim", dim)?;
        Ok(LayerNorm {
            weight: Param::full(&[dim], T::one())?,
            bias: Param::zeros(&[dim])?,
            dim,
            affine: true,
            eps: 1e-5,
            training: true,
        })
    }

    /// Layer norm with no parameters, `y = (x − μ) / √(σ² + eps)`.
    pub fn without_affine(dim: usize) -> Result<Self> {
        let mut layer = LayerNorm::new(dim)?;
        layer.weight = Param::zeros(&[0])?;
        layer.bias = Param::zeros(&[0])?;
        layer.affine = false;
        Ok(layer)
    }

    /// The length of the normalised rows (the last dimension of the input).
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Whether the layer has the learnable `weight` and `bias`.
    pub fn is_affine(&self) -> bool {
        self.affine
    }

    /// The constant added to the variance before the square root.
    pub fn eps(&self) -> f64 {
        self.eps
    }

    /// Sets `eps`; errors unless it is finite and positive.
    pub fn set_eps(&mut self, eps: f64) -> Result<()> {
        self.eps = super::positive_eps("LayerNorm", eps)?;
        Ok(())
    }
}

impl<T: Float> Module<T> for LayerNorm<T> {
    fn visit_params(&self, f: &mut dyn FnMut(&str, &Param<T>)) {
        if self.affine {
            f("weight", &self.weight);
            f("bias", &self.bias);
        }
    }
    fn visit_params_mut(&mut self, f: &mut dyn FnMut(&str, &mut Param<T>)) {
        if self.affine {
            f("weight", &mut self.weight);
            f("bias", &mut self.bias);
        }
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
        let mut ln = LayerNorm::<f32>::new(4).unwrap();
        assert_eq!(ln.weight.value(), &[1.0; 4]);
        assert_eq!(ln.bias.value(), &[0.0; 4]);
        assert_eq!(ln.weight.shape(), &[4]);
        assert_eq!((ln.dim(), ln.is_affine(), ln.eps()), (4, true, 1e-5));
        let mut names = Vec::new();
        ln.visit_params(&mut |n, p| names.push((n.to_string(), p.len())));
        assert_eq!(names, [("weight".into(), 4), ("bias".into(), 4)]);
        let mut mut_names = Vec::new();
        ln.visit_params_mut(&mut |n, _| mut_names.push(n.to_string()));
        assert_eq!(mut_names, ["weight", "bias"]);
        assert_eq!(ln.num_parameters(), 8);
        assert!(ln.is_training());
        ln.set_eval_mode();
        assert!(!ln.is_training());
        ln.set_training_mode(true);
        assert!(ln.is_training());
    }

    #[test]
    fn without_affine_has_no_parameters() {
        let mut ln = LayerNorm::<f64>::without_affine(6).unwrap();
        assert!(!ln.is_affine());
        assert_eq!(ln.dim(), 6);
        assert_eq!((ln.weight.shape(), ln.bias.shape()), (&[0][..], &[0][..]));
        let mut visited = 0;
        ln.visit_params(&mut |_, _| visited += 1);
        ln.visit_params_mut(&mut |_, _| visited += 1);
        assert_eq!(visited, 0);
        assert_eq!(ln.num_parameters(), 0);
    }

    #[test]
    fn arguments_are_checked() {
        let err = LayerNorm::<f32>::new(0).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid argument to LayerNorm: dim must be positive, got 0"
        );
        assert!(LayerNorm::<f32>::without_affine(0).is_err());
        let mut ln = LayerNorm::<f64>::new(2).unwrap();
        ln.set_eps(1e-6).unwrap();
        assert_eq!(ln.eps(), 1e-6);
        assert!(ln.set_eps(0.0).is_err() && ln.set_eps(f64::INFINITY).is_err());
        assert_eq!(ln.eps(), 1e-6);
    }
}
