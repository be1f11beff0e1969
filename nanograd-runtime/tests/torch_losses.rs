//! Losses against PyTorch (fixtures: tests/fixtures/gen_losses.py): the loss and the
//! gradient of every differentiable input of every case, in f64 (to 1e-12) and in f32 (to 1e-5).

mod common;

use nanograd_runtime::{assert_close, ops, Float, Result};

/// The signatures shared by the kernels of the two-input losses, with `cols` bound by the
/// caller where the op needs it.
type Forward<'a, T> = &'a dyn Fn(&[T], &[T]) -> Result<T>;
type Backward<'a, T> = &'a dyn Fn(&[T], &[T], T, Option<&mut [T]>, Option<&mut [T]>) -> Result<()>;

/// Checks a loss of `(a, b)` against one fixture case whose inputs are named `a` and `b`.
fn check_pair<T: Float>(
    name: &str,
    (a, b): (&str, &str),
    tol: f64,
    forward: Forward<T>,
    backward: Backward<T>,
) {
    let c = common::case("losses", name);
    let (x, t) = (c.input(a).to::<T>(), c.input(b).to::<T>());
    assert_close!(forward(&x, &t).unwrap(), c.output.data, tol);
    let dy = T::from_f64(c.upstream.data[0]);
    let (mut da, mut db) = (vec![T::zero(); x.len()], vec![T::zero(); t.len()]);
    backward(&x, &t, dy, Some(&mut da), Some(&mut db)).unwrap();
    assert_close!(da, c.grad(a).data, tol);
    assert_close!(db, c.grad(b).data, tol);
}

#[test]
fn mse_loss_matches_torch() {
    let pair = ("pred", "target");
    check_pair::<f64>(
        "mse_loss",
        pair,
        1e-12,
        &ops::mse_loss,
        &ops::mse_loss_backward,
    );
    check_pair::<f32>(
        "mse_loss",
        pair,
        1e-5,
        &ops::mse_loss,
        &ops::mse_loss_backward,
    );
}

#[test]
fn cross_entropy_loss_matches_torch() {
    let pair = ("pred", "target");
    for name in ["cross_entropy_loss", "cross_entropy_loss_clamped"] {
        check_pair::<f64>(
            name,
            pair,
            1e-12,
            &ops::cross_entropy_loss,
            &ops::cross_entropy_loss_backward,
        );
        check_pair::<f32>(
            name,
            pair,
            1e-5,
            &ops::cross_entropy_loss,
            &ops::cross_entropy_loss_backward,
        );
    }
}

fn check_softmax_cross_entropy<T: Float>(name: &str, tol: f64) {
    let cols = *common::case("losses", name)
        .input("logits")
        .shape
        .last()
        .unwrap();
    check_pair::<T>(
        name,
        ("logits", "target"),
        tol,
        &|x, t| ops::softmax_cross_entropy(x, t, cols),
        &|x, t, dy, dx, dt| ops::softmax_cross_entropy_backward(x, t, cols, dy, dx, dt),
    );
}

#[test]
fn softmax_cross_entropy_matches_torch() {
    for name in [
        "softmax_cross_entropy",
        "softmax_cross_entropy_one_hot",
        "softmax_cross_entropy_unnormalised",
        "softmax_cross_entropy_extreme",
    ] {
        check_softmax_cross_entropy::<f64>(name, 1e-12);
        check_softmax_cross_entropy::<f32>(name, 1e-5);
    }
}

fn check_softmax_cross_entropy_labels<T: Float>(name: &str, tol: f64) {
    let c = common::case("losses", name);
    let logits = c.input("logits");
    let cols = *logits.shape.last().unwrap();
    let x = logits.to::<T>();
    let labels: Vec<usize> = c.input("labels").data.iter().map(|&l| l as usize).collect();
    let loss = ops::softmax_cross_entropy_labels(&x, &labels, cols).unwrap();
    assert_close!(loss, c.output.data, tol);
    let dy = T::from_f64(c.upstream.data[0]);
    let mut dx = vec![T::zero(); x.len()];
    ops::softmax_cross_entropy_labels_backward(&x, &labels, cols, dy, &mut dx).unwrap();
    assert_close!(dx, c.grad("logits").data, tol);
}

#[test]
fn softmax_cross_entropy_labels_matches_torch() {
    for name in [
        "softmax_cross_entropy_labels",
        "softmax_cross_entropy_labels_extreme",
    ] {
        check_softmax_cross_entropy_labels::<f64>(name, 1e-12);
        check_softmax_cross_entropy_labels::<f32>(name, 1e-5);
    }
}
