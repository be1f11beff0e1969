//! Weight decay, the two ways PyTorch applies it.
//!
//! - **Coupled** (L2 regularisation, the seed's and PyTorch's `weight_decay` of SGD, Adam and
//!   RMSprop): the optimizer sees the gradient of `loss + w/2 · ‖p‖²`, that is `g + w·p`.
//! - **Decoupled** (AdamW, Loshchilov & Hutter): before the Adam update the parameter shrinks
//!   by `p ← p · (1 − lr·w)`, independently of the adaptive scaling.
//!
//! Either way, [`DecayScope`] says which parameters decay: all of them (PyTorch's single
//! parameter group), or only those with two or more dimensions (weight matrices,
//! convolution kernels, embedding tables), not biases or normalisation gains, as GPT
//! training recipes do with two parameter groups.

use serde::{Deserialize, Serialize};

use crate::Float;

/// Which parameters weight decay applies to.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum DecayScope {
    /// Every parameter (the default, as PyTorch with one parameter group).
    #[default]
    All,
    /// Only parameters with at least two dimensions (`param.shape().len() >= 2`): weights
    /// and embeddings decay, biases and LayerNorm / BatchNorm gains do not. PyTorch's
    /// equivalent is two parameter groups, `weight_decay = w` for the tensors with
    /// `dim() >= 2` and `0` for the rest.
    MatricesOnly,
}

impl DecayScope {
    /// Whether a parameter with `ndim` dimensions decays under this scope.
    pub fn decays(self, ndim: usize) -> bool {
        match self {
            DecayScope::All => true,
            DecayScope::MatricesOnly => ndim >= 2,
        }
    }
}

/// The gradient with coupled weight decay: `g + w·p` (PyTorch's `grad.add(param, alpha=w)`).
#[inline(always)]
pub(crate) fn coupled<T: Float>(g: T, p: T, w: T) -> T {
    if w == T::zero() {
        g
    } else {
        g + w * p
    }
}

/// The factor of decoupled weight decay: `1 − lr·w` (PyTorch's `param.mul_(1 - lr * w)`).
#[inline(always)]
pub(crate) fn decoupled_factor(lr: f64, w: f64) -> f64 {
    1.0 - lr * w
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scope_by_number_of_dimensions() {
        assert_eq!(DecayScope::default(), DecayScope::All);
        assert!((0..5).all(|n| DecayScope::All.decays(n)));
        let m = DecayScope::MatricesOnly;
        assert!(!m.decays(0) && !m.decays(1));
        assert!(m.decays(2) && m.decays(4));
        let json = serde_json::to_string(&m).unwrap();
        assert_eq!(json, r#""MatricesOnly""#);
        assert_eq!(serde_json::from_str::<DecayScope>(&json).unwrap(), m);
    }
}
