//! [`MultiHeadAttention`]: scaled dot-product self-attention with `heads` heads over
//! `dim` features (PyTorch's `nn.MultiheadAttention(dim, heads)` with equal query, key and
//! value sizes): the queries, keys and values come from one packed projection
//! `x · in_proj_weightᵀ + in_proj_bias` (rows `0..dim` for Q, `dim..2·dim` for K,
//! `2·dim..3·dim` for V), each head attends over `dim / heads` of their features, and the
//! heads' outputs, concatenated, pass through `out_proj`.
//!
//! Parameters, their shapes and names are those of PyTorch's state dict, so weights load
//! from it unchanged. Attention dropout is not part of the layer.

use rand::Rng;

use super::{positive, Dense};
use crate::module::{visit_child_params, visit_child_params_mut};
use crate::{init, invalid, Float, Module, Param, Result};

/// Multi-head attention over `dim` features with `heads` heads:
///
/// | parameter | shape | initialisation (PyTorch's) |
/// | --- | --- | --- |
/// | `in_proj_weight` | `[3·dim, dim]` | Xavier uniform over the whole matrix |
/// | `in_proj_bias` | `[3·dim]` | zeros |
/// | `out_proj.weight` | `[dim, dim]` | U(−1/√dim, 1/√dim), `nn.Linear`'s default |
/// | `out_proj.bias` | `[dim]` | zeros |
///
/// Built with `bias = false` (PyTorch's `bias=False`) it has only the two weights; the
/// biases are then empty (`[0]`) and not visited.
#[derive(Clone, Debug)]
pub struct MultiHeadAttention<T: Float> {
    /// `[3·dim, dim]`: the query, key and value projections stacked by rows.
    pub in_proj_weight: Param<T>,
    /// `[3·dim]`; empty (`[0]`) without biases.
    pub in_proj_bias: Param<T>,
    /// The output projection, `dim` to `dim`.
    pub out_proj: Dense<T>,
    dim: usize,
    heads: usize,
    bias: bool,
    training: bool,
}

impl<T: Float> MultiHeadAttention<T> {
    /// Attention over `dim` features with `heads` heads, with or without biases, weights
    /// drawn from `rng` (the in-projection first, then the out-projection). Errors if `dim`
    /// or `heads` is zero or `heads` does not divide `dim`.
    pub fn new(dim: usize, heads: usize, bias: bool, rng: &mut impl Rng) -> Result<Self> {
        positive("MultiHeadAttention", "dim", dim)?;
        positive("MultiHeadAttention", "heads", heads)?;
        if !dim.is_multiple_of(heads) {
            return Err(invalid(
                "MultiHeadAttention",
                format!("heads ({heads}) must divide dim ({dim})"),
            ));
        }
        let three_dim = dim.checked_mul(3).ok_or_else(|| {
            invalid(
                "MultiHeadAttention",
                format!("dim {dim} is too large for the packed projection"),
            )
        })?;
        // the fans of the whole [3·dim, dim] matrix, as PyTorch's xavier_uniform_ sees it
        let mut in_proj_weight = Param::zeros(&[three_dim, dim])?;
        let (fan_in, fan_out) = init::fans(in_proj_weight.shape())?;
        init::xavier_uniform(fan_in, fan_out, rng, in_proj_weight.value_mut())?;
        let mut out_proj = if bias {
            Dense::new(dim, dim, rng)?
        } else {
            Dense::without_bias(dim, dim, rng)?
        };
        let bound = 1.0 / (dim as f64).sqrt();
        init::uniform(-bound, bound, rng, out_proj.weight.value_mut())?;
        Ok(MultiHeadAttention {
            in_proj_weight,
            in_proj_bias: Param::zeros(&[if bias { three_dim } else { 0 }])?,
            out_proj,
            dim,
            heads,
            bias,
            training: true,
        })
    }

    /// The number of features of the input and the output (PyTorch's `embed_dim`).
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// The number of heads; each attends over `dim / heads` features.
    pub fn heads(&self) -> usize {
        self.heads
    }

    /// The number of features per head, `dim / heads`.
    pub fn head_dim(&self) -> usize {
        self.dim / self.heads
    }

    /// Whether the projections add biases.
    pub fn has_bias(&self) -> bool {
        self.bias
    }
}

impl<T: Float> Module<T> for MultiHeadAttention<T> {
    fn visit_params(&self, f: &mut dyn FnMut(&str, &Param<T>)) {
        f("in_proj_weight", &self.in_proj_weight);
        if self.bias {
            f("in_proj_bias", &self.in_proj_bias);
        }
        visit_child_params("out_proj", &self.out_proj, f);
    }
    fn visit_params_mut(&mut self, f: &mut dyn FnMut(&str, &mut Param<T>)) {
        f("in_proj_weight", &mut self.in_proj_weight);
        if self.bias {
            f("in_proj_bias", &mut self.in_proj_bias);
        }
        visit_child_params_mut("out_proj", &mut self.out_proj, f);
    }
    fn set_training_mode(&mut self, training: bool) {
        self.training = training;
        self.out_proj.set_training_mode(training);
    }
    fn is_training(&self) -> bool {
        self.training
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{rngs::StdRng, SeedableRng};

    fn names_and_shapes(m: &MultiHeadAttention<f64>) -> Vec<String> {
        let mut out = Vec::new();
        m.visit_params(&mut |n, p| out.push(format!("{n} {:?}", p.shape())));
        out
    }

    #[test]
    fn shapes_and_names_follow_pytorch() {
        let mut rng = StdRng::seed_from_u64(0);
        let mut m = MultiHeadAttention::<f64>::new(8, 2, true, &mut rng).unwrap();
        assert_eq!(
            (m.dim(), m.heads(), m.head_dim(), m.has_bias()),
            (8, 2, 4, true)
        );
        assert_eq!(
            names_and_shapes(&m),
            [
                "in_proj_weight [24, 8]",
                "in_proj_bias [24]",
                "out_proj.weight [8, 8]",
                "out_proj.bias [8]",
            ]
        );
        let mut mut_names = Vec::new();
        m.visit_params_mut(&mut |n, _| mut_names.push(n.to_string()));
        assert_eq!(
            mut_names,
            [
                "in_proj_weight",
                "in_proj_bias",
                "out_proj.weight",
                "out_proj.bias"
            ]
        );
        assert_eq!(m.num_parameters(), 24 * 8 + 24 + 64 + 8);
        assert!(m.in_proj_bias.value().iter().all(|&b| b == 0.0));
        assert!(m.out_proj.bias.value().iter().all(|&b| b == 0.0));
    }

    #[test]
    fn without_bias_has_only_the_weights() {
        let mut rng = StdRng::seed_from_u64(1);
        let m = MultiHeadAttention::<f64>::new(6, 3, false, &mut rng).unwrap();
        assert!(!m.has_bias() && !m.out_proj.has_bias());
        assert_eq!(
            names_and_shapes(&m),
            ["in_proj_weight [18, 6]", "out_proj.weight [6, 6]"]
        );
        assert_eq!(m.in_proj_bias.shape(), &[0]);
        assert_eq!(m.num_parameters(), 18 * 6 + 36);
    }

    /// Mean and variance.
    fn moments(v: &[f64]) -> (f64, f64) {
        let n = v.len() as f64;
        let mean = v.iter().sum::<f64>() / n;
        (mean, v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n)
    }

    #[test]
    fn initialisation_matches_pytorch_ranges() {
        let mut rng = StdRng::seed_from_u64(2);
        let dim = 128;
        let m = MultiHeadAttention::<f64>::new(dim, 4, true, &mut rng).unwrap();
        // in_proj_weight: Xavier over [384, 128], a = sqrt(6 / (128 + 384)) = 0.10825...,
        // variance a^2 / 3 = 2 / 512
        let a = (6.0 / (4.0 * dim as f64)).sqrt();
        let w = m.in_proj_weight.value();
        let (mean, var) = moments(w);
        assert!(w.iter().all(|x| x.abs() <= a));
        assert!(w.iter().any(|x| x.abs() > 0.99 * a));
        assert!(mean.abs() < 2e-3, "mean {mean}");
        assert!(
            (var - 2.0 / 512.0).abs() < 0.03 * 2.0 / 512.0,
            "variance {var}"
        );
        // out_proj.weight: U(-b, b) with b = 1/sqrt(128) = 0.0884 (not Xavier's 0.153),
        // variance b^2 / 3 = 1 / 384
        let b = 1.0 / (dim as f64).sqrt();
        let w = m.out_proj.weight.value();
        let (mean, var) = moments(w);
        assert!(w.iter().all(|x| x.abs() <= b));
        assert!(w.iter().any(|x| x.abs() > 0.99 * b));
        assert!(mean.abs() < 3e-3, "mean {mean}");
        assert!((var - 1.0 / 384.0).abs() < 0.05 / 384.0, "variance {var}");
        // biases zero
        assert!(m.in_proj_bias.value().iter().all(|&x| x == 0.0));
        assert!(m.out_proj.bias.value().iter().all(|&x| x == 0.0));
        // same seed, same weights
        let again = MultiHeadAttention::<f64>::new(dim, 4, true, &mut StdRng::seed_from_u64(2));
        let again = again.unwrap();
        assert_eq!(again.in_proj_weight, m.in_proj_weight);
        assert_eq!(again.out_proj.weight, m.out_proj.weight);
    }

    #[test]
    fn heads_must_divide_dim() {
        let mut rng = StdRng::seed_from_u64(3);
        let err = MultiHeadAttention::<f32>::new(10, 4, true, &mut rng).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid argument to MultiHeadAttention: heads (4) must divide dim (10)"
        );
        let err = MultiHeadAttention::<f32>::new(8, 0, true, &mut rng).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid argument to MultiHeadAttention: heads must be positive, got 0"
        );
        assert!(MultiHeadAttention::<f32>::new(0, 1, false, &mut rng).is_err());
        assert!(MultiHeadAttention::<f32>::new(usize::MAX, 1, true, &mut rng).is_err());
        assert!(MultiHeadAttention::<f32>::new(8, 8, true, &mut rng).is_ok());
    }

    #[test]
    fn training_mode_reaches_the_out_projection() {
        let mut rng = StdRng::seed_from_u64(4);
        let mut m = MultiHeadAttention::<f32>::new(4, 2, true, &mut rng).unwrap();
        assert!(m.is_training() && m.out_proj.is_training());
        m.set_eval_mode();
        assert!(!m.is_training() && !m.out_proj.is_training());
        m.set_training_mode(true);
        assert!(m.is_training() && m.out_proj.is_training());
    }
}
