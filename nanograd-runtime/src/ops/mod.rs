//! Op kernels: one file per op, forward and backward side by side.
//!
//! The conventions every kernel follows, so that generated code can call any of them the
//! same way:
//!
//! - Data is row-major; a batch is the leading dimension. Dimensions that a slice length
//!   cannot tell are passed as arguments (or a small geometry struct such as
//!   [`Conv2dGeom`]).
//! - The forward kernel `op(inputs.., out)` **overwrites** `out`.
//! - The backward kernel `op_backward(.., dy, grads..)` **accumulates** (`+=`) into each
//!   input's gradient, so a value used twice simply receives two contributions. An op with
//!   several inputs takes `Option<&mut [T]>` per input gradient: `None` skips that input.
//! - Unary elementwise ops share one shape: `op(x, y)` and `op_backward(x, y, dy, dx)`,
//!   where `y` is the forward output (some derivatives are cheaper from `y` than from `x`).
//! - Every length is checked first; a mismatch is an [`Error`](crate::Error) naming the op,
//!   the buffer, and both sizes. No kernel allocates.
//!
//! Each file's doc comment states the formula and its derivative; its tests check a
//! hand-derived literal and a central-difference gradient, and `tests/torch_*.rs` compares
//! with PyTorch.

use crate::{check_len, Float, Result};

// elementwise and broadcasting
mod add;
mod broadcast;
mod div;
mod mul;
mod safe_div;
mod scale;
mod sub;
// reductions
mod mean;
mod product;
mod reduce;
mod sum;
// shape
mod concat;
mod flatten;
mod reshape;
mod slice;
mod transpose;
// linear algebra
mod attention;
mod batched_matmul;
mod causal_mask;
mod dense;
mod dot;
mod matmul;
// activations
mod gelu;
mod leaky_relu;
mod log_softmax;
mod relu;
mod sigmoid;
mod sigmoid_stable;
mod silu;
mod softmax;
mod softplus;
mod tanh;
// losses
mod cross_entropy_loss;
mod mse_loss;
mod softmax_cross_entropy;
// convolution and pooling
mod avg_pool2d;
mod conv2d;
mod global_avg_pool2d;
mod max_pool2d;
// normalisation
mod batch_norm2d;
mod cosine_similarity;
mod l2_normalize;
mod layer_norm;
mod rmsnorm;
// regularisation
mod dropout;
// lookup
mod embedding;

pub use add::*;
pub use attention::*;
pub use avg_pool2d::*;
pub use batch_norm2d::*;
pub use batched_matmul::*;
pub use broadcast::*;
pub use causal_mask::*;
pub use concat::*;
pub use conv2d::*;
pub use cosine_similarity::*;
pub use cross_entropy_loss::*;
pub use dense::*;
pub use div::*;
pub use dot::*;
pub use dropout::*;
pub use embedding::*;
pub use flatten::*;
pub use gelu::*;
pub use global_avg_pool2d::*;
pub use l2_normalize::*;
pub use layer_norm::*;
pub use leaky_relu::*;
pub use log_softmax::*;
pub use matmul::*;
pub use max_pool2d::*;
pub use mean::*;
pub use mse_loss::*;
pub use mul::*;
pub use product::*;
pub use reduce::*;
pub use relu::*;
pub use reshape::*;
pub use rmsnorm::*;
pub use safe_div::*;
pub use scale::*;
pub use sigmoid::*;
pub use sigmoid_stable::*;
pub use silu::*;
pub use slice::*;
pub use softmax::*;
pub use softmax_cross_entropy::*;
pub use softplus::*;
pub use sub::*;
pub use sum::*;
pub use tanh::*;
pub use transpose::*;

/// The number of rows of a row-major `[rows, cols]` buffer of `len` elements: an error when
/// `cols` is 0 or does not divide `len`. Shared by the ops over the last dimension.
pub(crate) fn row_count(op: &'static str, what: &str, len: usize, cols: usize) -> Result<usize> {
    if cols == 0 {
        return Err(crate::invalid(
            op,
            format!("the row length of `{what}` must be positive, got 0"),
        ));
    }
    if !len.is_multiple_of(cols) {
        return Err(crate::invalid(
            op,
            format!("`{what}` has {len} elements, not a multiple of the row length {cols}"),
        ));
    }
    Ok(len / cols)
}

/// `y[i] = f(x[i])`: the forward pass of a unary elementwise op.
#[inline]
pub(crate) fn unary<T: Float>(
    op: &'static str,
    x: &[T],
    y: &mut [T],
    f: impl Fn(T) -> T,
) -> Result<()> {
    check_len(op, "y", x.len(), y.len())?;
    for (yi, &xi) in y.iter_mut().zip(x) {
        *yi = f(xi);
    }
    Ok(())
}

/// `dx[i] += df(x[i], y[i], dy[i])`: the backward pass of a unary elementwise op, where
/// `df` returns the upstream gradient times the local derivative.
#[inline]
pub(crate) fn unary_backward<T: Float>(
    op: &'static str,
    x: &[T],
    y: &[T],
    dy: &[T],
    dx: &mut [T],
    df: impl Fn(T, T, T) -> T,
) -> Result<()> {
    let n = x.len();
    check_len(op, "y", n, y.len())?;
    check_len(op, "dy", n, dy.len())?;
    check_len(op, "dx", n, dx.len())?;
    for i in 0..n {
        dx[i] += df(x[i], y[i], dy[i]);
    }
    Ok(())
}
