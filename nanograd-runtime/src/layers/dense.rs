//! [`Dense`]: a fully connected layer, `y = x · weightᵀ + bias` (the seed's
//! `make-dense-layer`, PyTorch's `nn.Linear`).

use rand::Rng;

use super::positive;
use crate::{init, Float, Module, Param, Result};

/// Fully connected layer: `weight` of shape `[out_features, in_features]`, Xavier-uniform
/// initialised (seed), and a zero `bias` of shape `[out_features]` unless built
/// [`without_bias`](Dense::without_bias) (PyTorch's `bias=False`).
#[derive(Clone, Debug)]
pub struct Dense<T: Float> {
    /// `[out_features, in_features]`.
    pub weight: Param<T>,
    /// `[out_features]`; empty (`[0]`) in a layer without a bias.
    pub bias: Param<T>,
    has_bias: bool,
    in_features: usize,
    out_features: usize,
    training: bool,
}

impl<T: Float> Dense<T> {
    /// A layer mapping `in_features` to `out_features`, with weights drawn from `rng`.
    /// Errors if a size is zero.
    pub fn new(in_features: usize, out_features: usize, rng: &mut impl Rng) -> Result<Self> {
        positive("Dense", "in_features", in_features)?;
        positive("Dense", "out_features", out_features)?;
        let mut weight = Param::zeros(&[out_features, in_features])?;
        init::xavier_uniform(in_features, out_features, rng, weight.value_mut())?;
        Ok(Dense {
            weight,
            bias: Param::zeros(&[out_features])?,
            has_bias: true,
            in_features,
            out_features,
            training: true,
        })
    }

    /// A layer with no bias, `y = x · weightᵀ`: it has one parameter, `weight`.
    pub fn without_bias(
        in_features: usize,
        out_features: usize,
        rng: &mut impl Rng,
    ) -> Result<Self> {
        let mut layer = Dense::new(in_features, out_features, rng)?;
        layer.bias = Param::zeros(&[0])?;
        layer.has_bias = false;
        Ok(layer)
    }

    /// Whether the layer adds a bias.
    pub fn has_bias(&self) -> bool {
        self.has_bias
    }

    /// The number of input features (the seed's `layer-input-size`).
    pub fn in_features(&self) -> usize {
        self.in_features
    }

    /// The number of output features (the seed's `layer-output-size`).
    pub fn out_features(&self) -> usize {
        self.out_features
    }
}

impl<T: Float> Module<T> for Dense<T> {
    fn visit_params(&self, f: &mut dyn FnMut(&str, &Param<T>)) {
        f("weight", &self.weight);
        if self.has_bias {
            f("bias", &self.bias);
        }
    }
    fn visit_params_mut(&mut self, f: &mut dyn FnMut(&str, &mut Param<T>)) {
        f("weight", &mut self.weight);
        if self.has_bias {
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
    use rand::{rngs::StdRng, SeedableRng};

    #[test]
    fn shapes_init_and_names() {
        let mut rng = StdRng::seed_from_u64(0);
        let d = Dense::<f32>::new(784, 128, &mut rng).unwrap();
        assert_eq!((d.in_features(), d.out_features()), (784, 128));
        assert_eq!(d.weight.shape(), &[128, 784]);
        assert_eq!(d.bias.value(), &[0.0; 128][..]);
        // Xavier bound sqrt(6 / (784 + 128)) = 0.0811...
        let a = (6.0f32 / 912.0).sqrt();
        assert!(d.weight.value().iter().all(|w| w.abs() <= a));
        assert!(d.weight.value().iter().any(|w| w.abs() > 0.9 * a));
        let mut names = Vec::new();
        d.visit_params(&mut |n, p| names.push((n.to_string(), p.len())));
        assert_eq!(names, [("weight".into(), 784 * 128), ("bias".into(), 128)]);
        assert_eq!(d.num_parameters(), 100_480);
        assert!(d.is_training());
    }

    #[test]
    fn zero_size_is_an_error() {
        let mut rng = StdRng::seed_from_u64(0);
        let err = Dense::<f64>::new(0, 3, &mut rng).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid argument to Dense: in_features must be positive, got 0"
        );
        assert!(Dense::<f64>::new(3, 0, &mut rng).is_err());
    }

    #[test]
    fn without_bias_has_only_a_weight() {
        let mut rng = StdRng::seed_from_u64(3);
        let layer = Dense::<f64>::without_bias(4, 3, &mut rng).unwrap();
        assert!(!layer.has_bias());
        let mut names = Vec::new();
        layer.visit_params(&mut |n, _| names.push(n.to_string()));
        assert_eq!(names, ["weight"]);
        assert_eq!(layer.num_parameters(), layer.weight.len());
        assert!(Dense::<f64>::new(4, 3, &mut rng).unwrap().has_bias());
    }
}
