//! [`Dropout`]: in training mode, zeroes each element with probability `p` and scales the
//! rest by `1 / (1 − p)`; in evaluation mode, the identity (PyTorch's `nn.Dropout`).

use crate::{invalid, Float, Module, Param, Result};

/// Dropout with drop probability `p` (PyTorch's default is 0.5). No parameters.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Dropout {
    p: f64,
    training: bool,
}

impl Dropout {
    /// Dropout with drop probability `p`; errors unless `p` lies in `[0, 1]`.
    pub fn new(p: f64) -> Result<Self> {
        if !(0.0..=1.0).contains(&p) {
            return Err(invalid(
                "Dropout",
                format!("probability must lie in [0, 1], got {p}"),
            ));
        }
        Ok(Dropout { p, training: true })
    }

    /// The drop probability.
    pub fn p(&self) -> f64 {
        self.p
    }

    /// Sets training mode: dropout is active only while training.
    pub fn set_training_mode(&mut self, training: bool) {
        self.training = training;
    }

    /// Whether the layer is in training mode (drops) or evaluation mode (identity).
    pub fn is_training(&self) -> bool {
        self.training
    }
}

impl<T: Float> Module<T> for Dropout {
    fn visit_params(&self, _f: &mut dyn FnMut(&str, &Param<T>)) {}
    fn visit_params_mut(&mut self, _f: &mut dyn FnMut(&str, &mut Param<T>)) {}
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
    fn probability_and_mode() {
        let mut d = Dropout::new(0.25).unwrap();
        assert_eq!(d.p(), 0.25);
        assert!(d.is_training());
        Module::<f32>::set_eval_mode(&mut d);
        assert!(!d.is_training());
        d.set_training_mode(true);
        assert!(Module::<f32>::is_training(&d));
        assert_eq!(Module::<f64>::num_parameters(&d), 0);
        let err = Dropout::new(1.5).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid argument to Dropout: probability must lie in [0, 1], got 1.5"
        );
        assert!(Dropout::new(-0.1).is_err() && Dropout::new(f64::NAN).is_err());
    }
}
