//! Elementwise, reduction and shape ops against PyTorch (fixtures:
//! tests/fixtures/gen_elementwise.py). Every case runs in f64 (tolerance 1e-12) and, for the
//! elementwise ops, in f32 too (1e-5).

mod common;

use common::Case;
use nanograd_runtime::ops::{self, GradientRule};
use nanograd_runtime::{assert_close, Float, Result};

fn case(name: &str) -> Case {
    common::case("elementwise", name)
}

/// Runs a broadcast binary op on the case's `a` and `b`: the forward output, then the
/// backward pass with both gradients, then with each gradient alone (the other `None`).
fn check_binary<T: Float>(
    name: &str,
    tol: f64,
    fwd: impl Fn(&[T], &[T], &mut [T]) -> Result<()>,
    bwd: impl Fn(&[T], &[T], &[T], Option<&mut [T]>, Option<&mut [T]>) -> Result<()>,
) {
    let c = case(name);
    let (a, b) = (c.input("a").to::<T>(), c.input("b").to::<T>());
    let dy = c.upstream.to::<T>();
    let mut y = vec![T::zero(); c.output.data.len()];
    fwd(&a, &b, &mut y).unwrap();
    assert_close!(y, c.output.data, tol);
    let (mut da, mut db) = (vec![T::zero(); a.len()], vec![T::zero(); b.len()]);
    bwd(&a, &b, &dy, Some(&mut da), Some(&mut db)).unwrap();
    assert_close!(da, c.grad("a").data, tol);
    assert_close!(db, c.grad("b").data, tol);
    let (mut da, mut db) = (vec![T::zero(); a.len()], vec![T::zero(); b.len()]);
    bwd(&a, &b, &dy, Some(&mut da), None).unwrap();
    bwd(&a, &b, &dy, None, Some(&mut db)).unwrap();
    assert_close!(da, c.grad("a").data, tol);
    assert_close!(db, c.grad("b").data, tol);
}

fn check_add<T: Float>(tol: f64) {
    for name in ["add_same", "add_row", "add_scalar_first"] {
        check_binary::<T>(name, tol, ops::add, |_, _, dy, da, db| {
            ops::add_backward(dy, da, db)
        });
    }
}

fn check_sub<T: Float>(tol: f64) {
    for name in ["sub_short_first", "sub_matrix"] {
        check_binary::<T>(name, tol, ops::sub, |_, _, dy, da, db| {
            ops::sub_backward(dy, da, db)
        });
    }
}

fn check_mul<T: Float>(tol: f64) {
    for name in ["mul_scalar", "mul_same", "mul_row", "mul_short_first"] {
        check_binary::<T>(name, tol, ops::mul, ops::mul_backward);
    }
}

fn check_div<T: Float>(tol: f64) {
    for name in ["div_row", "div_short_first", "div_scalar"] {
        check_binary::<T>(name, tol, ops::div, ops::div_backward);
    }
}

fn check_safe_div<T: Float>(tol: f64) {
    for name in ["safe_div_default", "safe_div_eps"] {
        let eps = T::from_f64(case(name).arg("eps"));
        check_binary::<T>(
            name,
            tol,
            |a, b, y| ops::safe_div(a, b, eps, y),
            |a, b, dy, da, db| ops::safe_div_backward(a, b, eps, dy, da, db),
        );
    }
}

#[test]
fn add_matches_torch() {
    check_add::<f64>(1e-12);
    check_add::<f32>(1e-5);
}

#[test]
fn sub_matches_torch() {
    check_sub::<f64>(1e-12);
    check_sub::<f32>(1e-5);
}

#[test]
fn mul_matches_torch() {
    check_mul::<f64>(1e-12);
    check_mul::<f32>(1e-5);
}

#[test]
fn div_matches_torch() {
    check_div::<f64>(1e-12);
    check_div::<f32>(1e-5);
}

#[test]
fn safe_div_matches_torch() {
    check_safe_div::<f64>(1e-12);
    check_safe_div::<f32>(1e-5);
}

fn check_scale<T: Float>(tol: f64) {
    let c = case("scale");
    let (x, s) = (c.input("x").to::<T>(), T::from_f64(c.arg("s")));
    let mut y = vec![T::zero(); x.len()];
    ops::scale(&x, s, &mut y).unwrap();
    assert_close!(y, c.output.data, tol);
    let mut dx = vec![T::zero(); x.len()];
    ops::scale_backward(s, &c.upstream.to::<T>(), &mut dx).unwrap();
    assert_close!(dx, c.grad("x").data, tol);
}

#[test]
fn scale_matches_torch() {
    check_scale::<f64>(1e-12);
    check_scale::<f32>(1e-5);
}

/// The input, the scalar upstream gradient and a zeroed gradient buffer of a reduction case.
fn reduction(name: &str) -> (Case, Vec<f64>, f64, Vec<f64>) {
    let c = case(name);
    let x = c.input("x").to::<f64>();
    let dy = c.upstream.data[0];
    let dx = vec![0.0; x.len()];
    (c, x, dy, dx)
}

#[test]
fn sum_matches_torch() {
    let (c, x, dy, mut dx) = reduction("sum");
    assert_close!(ops::sum(&x), c.output.data, 1e-12);
    ops::sum_backward(dy, &mut dx).unwrap();
    assert_close!(dx, c.grad("x").data, 1e-12);
}

#[test]
fn mean_matches_torch() {
    let (c, x, dy, mut dx) = reduction("mean");
    assert_close!(ops::mean(&x).unwrap(), c.output.data, 1e-12);
    ops::mean_backward(dy, &mut dx).unwrap();
    assert_close!(dx, c.grad("x").data, 1e-12);
}

#[test]
fn product_matches_torch() {
    for name in ["product", "product_one_zero", "product_two_zeros"] {
        let (c, x, dy, mut dx) = reduction(name);
        assert_close!(ops::product(&x), c.output.data, 1e-12);
        ops::product_backward(&x, dy, &mut dx).unwrap();
        assert_close!(dx, c.grad("x").data, 1e-12);
    }
}

#[test]
fn reduce_max_matches_torch_amax() {
    let (c, x, dy, mut dx) = reduction("reduce_max");
    let max = ops::reduce(&x, f64::NEG_INFINITY, f64::max);
    assert_close!(max, c.output.data, 1e-12);
    // the seed's rule: the gradient flows only to the element equal to the maximum
    let rule = |g: f64, _: usize, v: f64, _: &[f64]| if v == max { g } else { 0.0 };
    ops::reduce_backward(&x, dy, Some(rule), &mut dx).unwrap();
    assert_close!(dx, c.grad("x").data, 1e-12);
}

#[test]
fn reduce_sum_matches_torch_sum() {
    // the uniform default rule is the gradient of a sum
    let (c, x, dy, mut dx) = reduction("sum");
    assert_close!(ops::reduce(&x, 0.0, |acc, v| acc + v), c.output.data, 1e-12);
    ops::reduce_backward(&x, dy, None::<GradientRule<f64>>, &mut dx).unwrap();
    assert_close!(dx, c.grad("x").data, 1e-12);
}

#[test]
fn row_reductions_match_torch() {
    type Fwd = fn(&[f64], usize, &mut [f64]) -> Result<()>;
    type Bwd = fn(usize, &[f64], &mut [f64]) -> Result<()>;
    let kernels: [(&str, Fwd, Bwd); 2] = [
        ("sum_rows", ops::sum_rows, ops::sum_rows_backward),
        ("mean_rows", ops::mean_rows, ops::mean_rows_backward),
    ];
    for (name, fwd, bwd) in kernels {
        let c = case(name);
        let x = c.input("x").to::<f64>();
        let cols = c.input("x").shape[1];
        let mut y = vec![0.0; c.output.data.len()];
        fwd(&x, cols, &mut y).unwrap();
        assert_close!(y, c.output.data, 1e-12);
        let mut dx = vec![0.0; x.len()];
        bwd(cols, &c.upstream.data, &mut dx).unwrap();
        assert_close!(dx, c.grad("x").data, 1e-12);
    }
}

#[test]
fn slice_matches_torch() {
    let c = case("slice");
    let x = c.input("x").to::<f64>();
    let shape = &c.input("x").shape;
    let row_len = shape[1..].iter().product();
    let (start, len) = (c.arg("start") as usize, c.arg("len") as usize);
    let mut y = vec![0.0; c.output.data.len()];
    ops::slice(&x, row_len, start, len, &mut y).unwrap();
    assert_close!(y, c.output.data, 1e-12);
    let mut dx = vec![0.0; x.len()];
    ops::slice_backward(row_len, start, &c.upstream.data, &mut dx).unwrap();
    assert_close!(dx, c.grad("x").data, 1e-12);
}

#[test]
fn reshape_and_flatten_match_torch() {
    let c = case("reshape");
    let x = c.input("x").to::<f64>();
    let mut y = vec![0.0; c.output.data.len()];
    ops::reshape(&x, &mut y).unwrap();
    assert_close!(y, c.output.data, 1e-12);
    let mut dx = vec![0.0; x.len()];
    ops::reshape_backward(&c.upstream.data, &mut dx).unwrap();
    assert_close!(dx, c.grad("x").data, 1e-12);

    let c = case("flatten");
    let x = c.input("x").to::<f64>();
    assert_eq!(
        ops::flatten_shape(&c.input("x").shape).unwrap().to_vec(),
        c.output.shape
    );
    let mut y = vec![0.0; c.output.data.len()];
    ops::flatten(&x, &mut y).unwrap();
    assert_close!(y, c.output.data, 1e-12);
    let mut dx = vec![0.0; x.len()];
    ops::flatten_backward(&c.upstream.data, &mut dx).unwrap();
    assert_close!(dx, c.grad("x").data, 1e-12);
}
