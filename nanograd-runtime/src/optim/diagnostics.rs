//! Gradient diagnostics: statistics over all gradients of a model ([`grad_stats`]), a health
//! check that flags exploding, vanishing and non-finite gradients ([`check_grad_health`]),
//! and a NaN guard over values, gradients and buffers ([`ensure_finite`]).
//!
//! ```
//! use nanograd_runtime::{layers::Dense, optim::{check_grad_health, GradIssue, HealthThresholds}, Module};
//! use nanograd_runtime::rand::{rngs::StdRng, SeedableRng};
//!
//! let mut layer = Dense::<f32>::new(2, 2, &mut StdRng::seed_from_u64(0))?;
//! layer.visit_params_mut(&mut |_, p| p.grad_mut().fill(1e4));
//! let issues = check_grad_health(&layer, &HealthThresholds::default());
//! assert!(matches!(issues[..], [GradIssue::Exploding { .. }]));
//! # Ok::<(), nanograd_runtime::Error>(())
//! ```

use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt;

use crate::{Error, Float, Module, Result};

/// Statistics over every gradient element of a model.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct GradStats {
    /// The L2 norm of all gradients together (NaN if any element is NaN).
    pub l2_norm: f64,
    /// The largest absolute gradient element, NaNs ignored (infinite if any is).
    pub inf_norm: f64,
    /// The number of NaN elements.
    pub num_nan: usize,
    /// The number of infinite elements.
    pub num_inf: usize,
    /// The number of elements that are exactly zero.
    pub num_zero: usize,
    /// The number of gradient elements.
    pub num_elements: usize,
    /// The parameter whose gradient has the largest L2 norm, and that norm.
    pub largest: Option<(String, f64)>,
}

/// Computes [`GradStats`] over all parameters of `model`.
pub fn grad_stats<T: Float, M: Module<T> + ?Sized>(model: &M) -> GradStats {
    let mut s = GradStats::default();
    let mut sum_sq = 0.0;
    model.visit_params(&mut |name, p| {
        let mut param_sq = 0.0;
        for g in p.grad().iter().map(|g| g.to_f64()) {
            param_sq += g * g;
            if g.is_nan() {
                s.num_nan += 1;
                continue;
            }
            if g.is_infinite() {
                s.num_inf += 1;
            }
            if g == 0.0 {
                s.num_zero += 1;
            }
            s.inf_norm = s.inf_norm.max(g.abs());
        }
        s.num_elements += p.len();
        sum_sq += param_sq;
        let norm = param_sq.sqrt();
        if s.largest.as_ref().is_none_or(|(_, best)| norm > *best) {
            s.largest = Some((name.to_string(), norm));
        }
    });
    s.l2_norm = sum_sq.sqrt();
    s
}

/// Where gradients count as exploding or vanishing.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct HealthThresholds {
    /// An L2 norm above this is exploding (default 1e3).
    pub exploding: f64,
    /// An L2 norm below this is vanishing (default 1e-8).
    pub vanishing: f64,
}

impl Default for HealthThresholds {
    fn default() -> Self {
        HealthThresholds {
            exploding: 1e3,
            vanishing: 1e-8,
        }
    }
}

/// A problem found by [`check_grad_health`].
#[derive(Clone, Debug, PartialEq)]
pub enum GradIssue {
    /// Some gradient elements are NaN or infinite.
    NonFinite {
        /// NaN gradient entries.
        num_nan: usize,
        /// Infinite gradient entries.
        num_inf: usize,
    },
    /// The total L2 norm exceeds the threshold.
    Exploding {
        /// The global L2 norm of the gradients.
        norm: f64,
        /// The threshold it exceeds.
        threshold: f64,
    },
    /// The total L2 norm is below the threshold.
    Vanishing {
        /// The global L2 norm of the gradients.
        norm: f64,
        /// The threshold it is under.
        threshold: f64,
    },
}

impl fmt::Display for GradIssue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GradIssue::NonFinite { num_nan, num_inf } => {
                write!(f, "non-finite gradients: {num_nan} NaN, {num_inf} infinite")
            }
            GradIssue::Exploding { norm, threshold } => {
                write!(f, "exploding gradients: norm {norm:e} above {threshold:e}")
            }
            GradIssue::Vanishing { norm, threshold } => {
                write!(f, "vanishing gradients: norm {norm:e} below {threshold:e}")
            }
        }
    }
}

impl GradStats {
    /// The problems these statistics show; empty when the gradients look healthy.
    pub fn issues(&self, thresholds: &HealthThresholds) -> Vec<GradIssue> {
        if self.num_nan > 0 || self.num_inf > 0 {
            return vec![GradIssue::NonFinite {
                num_nan: self.num_nan,
                num_inf: self.num_inf,
            }];
        }
        let norm = self.l2_norm;
        if norm > thresholds.exploding {
            vec![GradIssue::Exploding {
                norm,
                threshold: thresholds.exploding,
            }]
        } else if norm < thresholds.vanishing {
            vec![GradIssue::Vanishing {
                norm,
                threshold: thresholds.vanishing,
            }]
        } else {
            Vec::new()
        }
    }
}

/// The health check: the [`GradIssue`]s of `model`'s gradients, empty when healthy.
pub fn check_grad_health<T: Float, M: Module<T> + ?Sized>(
    model: &M,
    thresholds: &HealthThresholds,
) -> Vec<GradIssue> {
    grad_stats(model).issues(thresholds)
}

/// The NaN guard: errors with [`Error::NonFinite`] naming the first parameter value,
/// gradient or buffer element of `model` that is NaN or infinite.
pub fn ensure_finite<T: Float, M: Module<T> + ?Sized>(model: &M) -> Result<()> {
    let mut found: Option<String> = None;
    let mut check = |kind: &str, name: &str, data: &[T]| {
        if found.is_none() {
            if let Some((i, v)) = data.iter().enumerate().find(|(_, v)| !v.is_finite()) {
                found = Some(format!("{kind} of `{name}` at index {i} ({v})"));
            }
        }
    };
    model.visit_params(&mut |name, p| {
        check("value", name, p.value());
        check("gradient", name, p.grad());
    });
    model.visit_buffers(&mut |name, b| check("buffer", name, b.data()));
    match found {
        Some(what) => Err(Error::NonFinite { what }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layers::{BatchNorm2d, Dense};
    use crate::Module;
    use rand::{rngs::StdRng, SeedableRng};

    fn dense() -> Dense<f64> {
        Dense::new(2, 2, &mut StdRng::seed_from_u64(1)).unwrap()
    }

    #[test]
    fn stats_by_hand() {
        let mut d = dense();
        d.weight.grad_mut().copy_from_slice(&[1.0, -2.0, 0.0, 2.0]);
        d.bias.grad_mut().copy_from_slice(&[0.0, 4.0]);
        let s = grad_stats(&d);
        // sqrt(1 + 4 + 0 + 4 + 0 + 16) = 5; weight norm 3 < bias norm 4
        assert_eq!(s.l2_norm, 5.0);
        assert_eq!(s.inf_norm, 4.0);
        assert_eq!(
            (s.num_nan, s.num_inf, s.num_zero, s.num_elements),
            (0, 0, 2, 6)
        );
        assert_eq!(s.largest, Some(("bias".to_string(), 4.0)));
        assert!(s.issues(&HealthThresholds::default()).is_empty());
    }

    #[test]
    fn health_flags_each_problem() {
        let t = HealthThresholds {
            exploding: 10.0,
            vanishing: 1e-3,
        };
        let mut d = dense();
        d.weight.grad_mut().fill(20.0);
        // norm sqrt(4 * 400) = 40 > 10
        assert_eq!(
            check_grad_health(&d, &t),
            [GradIssue::Exploding {
                norm: 40.0,
                threshold: 10.0
            }]
        );
        d.zero_grad();
        let issues = check_grad_health(&d, &t);
        assert_eq!(
            issues,
            [GradIssue::Vanishing {
                norm: 0.0,
                threshold: 1e-3
            }]
        );
        assert_eq!(
            issues[0].to_string(),
            "vanishing gradients: norm 0e0 below 1e-3"
        );
        d.weight.grad_mut()[1] = f64::NAN;
        d.bias.grad_mut()[0] = f64::NEG_INFINITY;
        let s = grad_stats(&d);
        assert!(s.l2_norm.is_nan());
        assert_eq!((s.num_nan, s.num_inf, s.inf_norm), (1, 1, f64::INFINITY));
        let issues = s.issues(&t);
        assert_eq!(
            issues,
            [GradIssue::NonFinite {
                num_nan: 1,
                num_inf: 1
            }]
        );
        assert_eq!(
            issues[0].to_string(),
            "non-finite gradients: 1 NaN, 1 infinite"
        );
    }

    #[test]
    fn ensure_finite_names_the_parameter() {
        let mut d = dense();
        assert!(ensure_finite(&d).is_ok());
        d.bias.grad_mut()[1] = f64::NAN;
        let err = ensure_finite(&d).unwrap_err();
        assert!(matches!(err, Error::NonFinite { .. }));
        assert_eq!(
            err.to_string(),
            "non-finite value in gradient of `bias` at index 1 (NaN)"
        );
        d.weight.value_mut()[3] = f64::INFINITY;
        assert_eq!(
            ensure_finite(&d).unwrap_err().to_string(),
            "non-finite value in value of `weight` at index 3 (inf)"
        );
        let mut bn = BatchNorm2d::<f32>::new(2).unwrap();
        bn.running_var.data_mut()[0] = f32::NAN;
        assert_eq!(
            ensure_finite(&bn).unwrap_err().to_string(),
            "non-finite value in buffer of `running_var` at index 0 (NaN)"
        );
    }
}
