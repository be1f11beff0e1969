//! The exact GELU against PyTorch's `F.gelu(x)` (fixtures: tests/fixtures/gen_gelu_erf.py):
//! the forward output and the input gradient, in f64 (to 1e-12) and in f32 (to 1e-6), on
//! random inputs and on the tails (x down to -12, where PyTorch's `1 + erf(x/√2)` and our
//! `erfc(-x/√2)` both give values below 1e-12).

mod common;

use nanograd_runtime::{assert_close, ops, Float};

fn check<T: Float>(name: &str, tol: f64) {
    let c = common::case("gelu_erf", name);
    let x = c.input("x").to::<T>();
    let mut y = vec![T::zero(); x.len()];
    ops::gelu_erf(&x, &mut y).unwrap();
    assert_close!(y, c.output.data, tol);
    // accumulating onto 1, and overwriting
    let mut dx = vec![T::one(); x.len()];
    ops::gelu_erf_backward(&x, &y, &c.upstream.to::<T>(), &mut dx).unwrap();
    let plus_one: Vec<f64> = c.grad("x").data.iter().map(|g| g + 1.0).collect();
    assert_close!(dx, plus_one, tol);
    ops::gelu_erf_backward_overwrite(&x, &y, &c.upstream.to::<T>(), &mut dx).unwrap();
    assert_close!(dx, c.grad("x").data, tol);
}

#[test]
fn gelu_erf_matches_torch() {
    check::<f64>("gelu_erf", 1e-12);
    check::<f32>("gelu_erf", 1e-6);
}

#[test]
fn gelu_erf_matches_torch_in_the_tails() {
    check::<f64>("gelu_erf_tails", 1e-12);
    check::<f32>("gelu_erf_tails", 1e-6);
}
