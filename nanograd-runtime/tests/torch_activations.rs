//! Activations against PyTorch (fixtures: tests/fixtures/gen_activations.py).

mod common;

use nanograd_runtime::assert_close;
use nanograd_runtime::ops;

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
