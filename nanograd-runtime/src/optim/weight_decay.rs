//! Weight decay, the two ways PyTorch applies it.
//!
//! - **Coupled** (L2 regularisation, the seed's and PyTorch's `weight_decay` of SGD, Adam and
//!   RMSprop): the optimizer sees the gradient of `loss + w/2 · ‖p‖²`, that is `g + w·p`.
//! - **Decoupled** (AdamW, Loshchilov & Hutter): before the Adam update the parameter shrinks
//!   by `p ← p · (1 − lr·w)`, independently of the adaptive scaling.

use crate::Float;

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
