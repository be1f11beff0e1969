//! [`Embedding`]: a lookup table of `vocab` vectors of length `dim` (PyTorch's
//! `nn.Embedding`): token `i` maps to row `i` of `weight`.

use rand::Rng;

use super::positive;
use crate::{init, Float, Module, Param, Result};

/// A table of `vocab` embedding vectors of length `dim`: `weight` of shape `[vocab, dim]`,
/// drawn from N(0, 1) as PyTorch's `nn.Embedding` initialises it.
#[derive(Clone, Debug)]
pub struct Embedding<T: Float> {
    /// `[vocab, dim]`: row `i` is the vector of token `i`.
    pub weight: Param<T>,
    vocab: usize,
    dim: usize,
    training: bool,
}

impl<T: Float> Embedding<T> {
    /// A table of `vocab` vectors of length `dim`, drawn from N(0, 1) with `rng`. Errors if
    /// a size is zero.
    pub fn new(vocab: usize, dim: usize, rng: &mut impl Rng) -> Result<Self> {
        positive("Embedding", "vocab", vocab)?;
        positive("Embedding", "dim", dim)?;
        let mut weight = Param::zeros(&[vocab, dim])?;
        init::normal(0.0, 1.0, rng, weight.value_mut())?;
        Ok(Embedding {
            weight,
            vocab,
            dim,
            training: true,
        })
    }

    /// The number of rows: tokens are `0..vocab`.
    pub fn vocab(&self) -> usize {
        self.vocab
    }

    /// The length of each embedding vector.
    pub fn dim(&self) -> usize {
        self.dim
    }
}

impl<T: Float> Module<T> for Embedding<T> {
    fn visit_params(&self, f: &mut dyn FnMut(&str, &Param<T>)) {
        f("weight", &self.weight);
    }
    fn visit_params_mut(&mut self, f: &mut dyn FnMut(&str, &mut Param<T>)) {
        f("weight", &mut self.weight);
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
    use rand::{rngs::StdRng, SeedableRng};

    #[test]
    fn shape_names_and_standard_normal_init() {
        let mut rng = StdRng::seed_from_u64(0);
        let mut e = Embedding::<f64>::new(500, 200, &mut rng).unwrap();
        assert_eq!((e.vocab(), e.dim()), (500, 200));
        assert_eq!(e.weight.shape(), &[500, 200]);
        let mut names = Vec::new();
        e.visit_params(&mut |n, p| names.push((n.to_string(), p.len())));
        assert_eq!(names, [("weight".to_string(), 100_000)]);
        assert_eq!(e.num_parameters(), 100_000);
        // N(0, 1) over 100 000 draws: mean within ~4.5 standard errors (0.0032 each),
        // variance 1 within 2 %, and 68.3 % of the draws within one standard deviation
        let w = e.weight.value();
        let n = w.len() as f64;
        let mean = w.iter().sum::<f64>() / n;
        let var = w.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n;
        let within = w.iter().filter(|x| x.abs() < 1.0).count() as f64 / n;
        assert!(mean.abs() < 0.015, "mean {mean}");
        assert!((var - 1.0).abs() < 0.02, "variance {var}");
        assert!((within - 0.6827).abs() < 0.01, "within {within}");
        assert!(e.is_training());
        e.set_eval_mode();
        assert!(!e.is_training());
        e.set_training_mode(true);
        assert!(e.is_training());
    }

    #[test]
    fn same_seed_same_table_and_zero_sizes_are_errors() {
        let a = Embedding::<f32>::new(3, 4, &mut StdRng::seed_from_u64(7)).unwrap();
        let b = Embedding::<f32>::new(3, 4, &mut StdRng::seed_from_u64(7)).unwrap();
        assert_eq!(a.weight, b.weight);
        let mut rng = StdRng::seed_from_u64(0);
        let err = Embedding::<f32>::new(0, 4, &mut rng).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid argument to Embedding: vocab must be positive, got 0"
        );
        assert!(Embedding::<f64>::new(4, 0, &mut rng).is_err());
    }
}
