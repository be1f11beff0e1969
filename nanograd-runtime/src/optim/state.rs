//! What every optimizer's state shares: the names and lengths of the parameters it was built
//! for ([`ParamKeys`]), the checks that a model still has them, and the loop that hands each
//! parameter to an update rule.

use alloc::string::{String, ToString};
use alloc::vec::Vec;
use serde::{Deserialize, Serialize};

use crate::{invalid, Float, Module, Result};

/// The parameters an optimizer's state belongs to, in visiting order.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct ParamKeys {
    names: Vec<String>,
    lens: Vec<usize>,
}

impl ParamKeys {
    /// The names and lengths of `model`'s parameters.
    pub(crate) fn of<T: Float>(model: &dyn Module<T>) -> Self {
        let (mut names, mut lens) = (Vec::new(), Vec::new());
        model.visit_params(&mut |name, p| {
            names.push(name.to_string());
            lens.push(p.len());
        });
        ParamKeys { names, lens }
    }

    /// One zero buffer per parameter, of its length.
    pub(crate) fn zeros<T: Float>(&self) -> Vec<Vec<T>> {
        self.lens.iter().map(|&n| vec![T::zero(); n]).collect()
    }

    fn matches(&self, i: usize, name: &str, len: usize) -> bool {
        self.names.get(i).is_some_and(|n| n == name) && self.lens.get(i) == Some(&len)
    }

    /// Errors unless `model` has exactly these parameters, in this order.
    pub(crate) fn check<T: Float>(&self, op: &'static str, model: &dyn Module<T>) -> Result<()> {
        let mut i = 0;
        let mut first_bad: Option<String> = None;
        model.visit_params(&mut |name, p| {
            if first_bad.is_none() && !self.matches(i, name, p.len()) {
                first_bad = Some(match (self.names.get(i), self.lens.get(i)) {
                    (Some(n), Some(l)) => format!(
                        "parameter {i} is `{name}` with {} elements, but the optimizer state was built for `{n}` with {l}",
                        p.len()
                    ),
                    _ => format!(
                        "the model has a parameter `{name}` beyond the {} the optimizer state was built for",
                        self.names.len()
                    ),
                });
            }
            i += 1;
        });
        if let Some(msg) = first_bad {
            return Err(invalid(op, msg));
        }
        if i != self.names.len() {
            return Err(invalid(
                op,
                format!(
                    "the model has {i} parameters, but the optimizer state was built for {}",
                    self.names.len()
                ),
            ));
        }
        Ok(())
    }

    /// Errors unless `buffers` holds one buffer per parameter, of its length (a state read
    /// from a checkpoint may not).
    pub(crate) fn check_buffers<T>(
        &self,
        op: &'static str,
        what: &str,
        buffers: &[Vec<T>],
    ) -> Result<()> {
        if buffers.len() != self.lens.len() {
            return Err(invalid(
                op,
                format!(
                    "state `{what}` has {} buffers for {} parameters",
                    buffers.len(),
                    self.lens.len()
                ),
            ));
        }
        for ((b, &len), name) in buffers.iter().zip(&self.lens).zip(&self.names) {
            if b.len() != len {
                return Err(invalid(
                    op,
                    format!(
                        "state `{what}` of `{name}` has {} elements, expected {len}",
                        b.len()
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Calls `update(i, value, grad)` for every parameter `i` of `model`, after checking that
    /// the model matches these keys (nothing is updated if it does not).
    pub(crate) fn for_each_param<T: Float>(
        &self,
        op: &'static str,
        model: &mut dyn Module<T>,
        mut update: impl FnMut(usize, &mut [T], &[T]),
    ) -> Result<()> {
        self.for_each_param_with_ndim(op, model, |i, _, value, grad| update(i, value, grad))
    }

    /// Like [`ParamKeys::for_each_param`], and also tells `update` the parameter's number of
    /// dimensions: `update(i, ndim, value, grad)`.
    pub(crate) fn for_each_param_with_ndim<T: Float>(
        &self,
        op: &'static str,
        model: &mut dyn Module<T>,
        mut update: impl FnMut(usize, usize, &mut [T], &[T]),
    ) -> Result<()> {
        self.check(op, &*model)?;
        let mut i = 0;
        let mut consistent = true;
        model.visit_params_mut(&mut |name, p| {
            if self.matches(i, name, p.len()) {
                let ndim = p.shape().len();
                let (value, grad) = p.value_and_grad_mut();
                update(i, ndim, value, grad);
            } else {
                consistent = false;
            }
            i += 1;
        });
        if consistent && i == self.names.len() {
            Ok(())
        } else {
            Err(invalid(
                op,
                "the model's visit_params_mut does not visit the parameters of visit_params in the same order",
            ))
        }
    }
}
