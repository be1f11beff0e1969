//! Activations against PyTorch (fixtures: tests/fixtures/gen_activations.py): the forward
//! output and the input gradient of every case, in f64 (to 1e-12) and in f32 (to 1e-5).

mod common;

use nanograd_runtime::{assert_close, ops, Float, Result};

/// Checks a unary elementwise op, `op(x, y)` and `op_backward(x, y, dy, dx)`, against one
/// fixture case in the element type `T`, to the tolerance `tol`.
fn check_unary<T: Float>(
    name: &str,
    tol: f64,
    forward: impl Fn(&[T], &mut [T]) -> Result<()>,
    backward: impl Fn(&[T], &[T], &[T], &mut [T]) -> Result<()>,
) {
    let c = common::case("activations", name);
    let x = c.input("x").to::<T>();
    let mut y = vec![T::zero(); x.len()];
    forward(&x, &mut y).unwrap();
    assert_close!(y, c.output.data, tol);
    let mut dx = vec![T::zero(); x.len()];
    backward(&x, &y, &c.upstream.to::<T>(), &mut dx).unwrap();
    assert_close!(dx, c.grad("x").data, tol);
}

/// [`check_unary`] in f64 and in f32, for ops given as generic functions.
macro_rules! unary_matches_torch {
    ($test:ident, $case:literal, $op:ident, $op_backward:ident) => {
        #[test]
        fn $test() {
            check_unary::<f64>($case, 1e-12, ops::$op, ops::$op_backward);
            check_unary::<f32>($case, 1e-5, ops::$op, ops::$op_backward);
        }
    };
}

#[test]
fn relu_matches_torch() {
    let c = common::case("activations", "relu");
    let x = c.input("x").to::<f64>();
    let mut y = vec![0.0; x.len()];
    ops::relu(&x, &mut y).unwrap();
    assert_close!(y, c.output.data, 1e-12);
    let mut dx = vec![0.0; x.len()];
    ops::relu_backward(&x, &y, &c.upstream.data, &mut dx).unwrap();
    assert_close!(dx, c.grad("x").data, 1e-12);
}

unary_matches_torch!(tanh_matches_torch, "tanh", tanh, tanh_backward);
unary_matches_torch!(sigmoid_matches_torch, "sigmoid", sigmoid, sigmoid_backward);
unary_matches_torch!(
    sigmoid_stable_matches_torch,
    "sigmoid_stable",
    sigmoid_stable,
    sigmoid_stable_backward
);
unary_matches_torch!(
    sigmoid_stable_matches_torch_at_extremes,
    "sigmoid_stable_extreme",
    sigmoid_stable,
    sigmoid_stable_backward
);
unary_matches_torch!(gelu_matches_torch, "gelu", gelu, gelu_backward);
unary_matches_torch!(silu_matches_torch, "silu", silu, silu_backward);
unary_matches_torch!(
    silu_matches_torch_at_extremes,
    "silu_extreme",
    silu,
    silu_backward
);

/// leaky_relu with the fixture's `alpha`.
fn check_leaky_relu<T: Float>(name: &str, tol: f64) {
    let alpha = T::from_f64(common::case("activations", name).arg("alpha"));
    check_unary::<T>(
        name,
        tol,
        |x, y| ops::leaky_relu(x, alpha, y),
        |x, y, dy, dx| ops::leaky_relu_backward(x, y, dy, alpha, dx),
    );
}

#[test]
fn leaky_relu_matches_torch() {
    for name in ["leaky_relu", "leaky_relu_alpha"] {
        check_leaky_relu::<f64>(name, 1e-12);
        check_leaky_relu::<f32>(name, 1e-5);
    }
}

/// softplus with the fixture's `beta`.
fn check_softplus<T: Float>(name: &str, tol: f64) {
    let beta = T::from_f64(common::case("activations", name).arg("beta"));
    check_unary::<T>(
        name,
        tol,
        |x, y| ops::softplus(x, beta, y),
        |x, y, dy, dx| ops::softplus_backward(x, y, dy, beta, dx),
    );
}

#[test]
fn softplus_matches_torch() {
    // PyTorch returns x outright where beta·x > 20; we keep ln(1 + e^-|beta·x|) / beta
    // there, which differs by under 1e-9 relative: well inside these tolerances.
    for name in ["softplus", "softplus_beta_extreme"] {
        check_softplus::<f64>(name, 1e-12);
        check_softplus::<f32>(name, 1e-5);
    }
}

/// Checks an op over the last dimension, `op(x, cols, y)` and `op_backward(y, dy, cols, dx)`.
fn check_rows<T: Float>(
    name: &str,
    tol: f64,
    forward: impl Fn(&[T], usize, &mut [T]) -> Result<()>,
    backward: impl Fn(&[T], &[T], usize, &mut [T]) -> Result<()>,
) {
    let c = common::case("activations", name);
    let x = c.input("x");
    let cols = *x.shape.last().unwrap();
    let x = x.to::<T>();
    let mut y = vec![T::zero(); x.len()];
    forward(&x, cols, &mut y).unwrap();
    assert_close!(y, c.output.data, tol);
    let mut dx = vec![T::zero(); x.len()];
    backward(&y, &c.upstream.to::<T>(), cols, &mut dx).unwrap();
    assert_close!(dx, c.grad("x").data, tol);
}

#[test]
fn softmax_matches_torch() {
    for name in ["softmax", "softmax_extreme"] {
        check_rows::<f64>(name, 1e-12, ops::softmax, ops::softmax_backward);
        check_rows::<f32>(name, 1e-5, ops::softmax, ops::softmax_backward);
    }
}

#[test]
fn log_softmax_matches_torch() {
    for name in ["log_softmax", "log_softmax_extreme"] {
        check_rows::<f64>(name, 1e-12, ops::log_softmax, ops::log_softmax_backward);
        check_rows::<f32>(name, 1e-5, ops::log_softmax, ops::log_softmax_backward);
    }
}
