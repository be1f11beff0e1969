//! matmul (all four rank cases), dot and dense against PyTorch, in f64 and f32
//! (fixtures: tests/fixtures/gen_linalg.py).

mod common;

use nanograd_runtime::blas::PackedWeight;
use nanograd_runtime::{assert_close, ops, Float, Param};

/// Agreement asked of each element type: f64 to rounding, f32 to its precision.
fn tol<T: Float>() -> f64 {
    if T::DTYPE == "f64" {
        1e-12
    } else {
        1e-5
    }
}

fn zeros<T: Float>(n: usize) -> Vec<T> {
    vec![T::zero(); n]
}

fn matmul_case<T: Float>() {
    let c = common::case("linalg", "matmul");
    let (a, b) = (c.input("input"), c.input("other"));
    let (m, k, n) = (a.shape[0], a.shape[1], b.shape[1]);
    let (a, b, dy) = (a.to::<T>(), b.to::<T>(), c.upstream.to::<T>());
    let mut y = zeros::<T>(m * n);
    ops::matmul(&a, &b, m, k, n, &mut y).unwrap();
    assert_close!(y, c.output.data, tol::<T>());
    let (mut da, mut db) = (zeros::<T>(m * k), zeros::<T>(k * n));
    ops::matmul_backward(&a, &b, &dy, m, k, n, Some(&mut da), Some(&mut db)).unwrap();
    assert_close!(da, c.grad("input").data, tol::<T>());
    assert_close!(db, c.grad("other").data, tol::<T>());
}

fn matvec_case<T: Float>() {
    let c = common::case("linalg", "matvec");
    let (m, n) = (c.input("input").shape[0], c.input("input").shape[1]);
    let (a, x, dy) = (
        c.input("input").to::<T>(),
        c.input("other").to::<T>(),
        c.upstream.to::<T>(),
    );
    let mut y = zeros::<T>(m);
    ops::matvec(&a, &x, m, n, &mut y).unwrap();
    assert_close!(y, c.output.data, tol::<T>());
    let (mut da, mut dx) = (zeros::<T>(m * n), zeros::<T>(n));
    ops::matvec_backward(&a, &x, &dy, m, n, Some(&mut da), Some(&mut dx)).unwrap();
    assert_close!(da, c.grad("input").data, tol::<T>());
    assert_close!(dx, c.grad("other").data, tol::<T>());
}

fn vecmat_case<T: Float>() {
    let c = common::case("linalg", "vecmat");
    let (m, n) = (c.input("other").shape[0], c.input("other").shape[1]);
    let (x, b, dy) = (
        c.input("input").to::<T>(),
        c.input("other").to::<T>(),
        c.upstream.to::<T>(),
    );
    let mut y = zeros::<T>(n);
    ops::vecmat(&x, &b, m, n, &mut y).unwrap();
    assert_close!(y, c.output.data, tol::<T>());
    let (mut dx, mut db) = (zeros::<T>(m), zeros::<T>(m * n));
    ops::vecmat_backward(&x, &b, &dy, m, n, Some(&mut dx), Some(&mut db)).unwrap();
    assert_close!(dx, c.grad("input").data, tol::<T>());
    assert_close!(db, c.grad("other").data, tol::<T>());
}

/// `torch.matmul` of two vectors and `torch.dot` are both our `dot`.
fn dot_case<T: Float>(name: &str, other: &str) {
    let c = common::case("linalg", name);
    let (a, b) = (c.input("input").to::<T>(), c.input(other).to::<T>());
    assert_eq!(c.output.shape, Vec::<usize>::new(), "a scalar");
    assert_close!(ops::dot(&a, &b).unwrap(), c.output.data, tol::<T>());
    let dy = T::from_f64(c.upstream.data[0]);
    let (mut da, mut db) = (zeros::<T>(a.len()), zeros::<T>(b.len()));
    ops::dot_backward(&a, &b, dy, Some(&mut da), Some(&mut db)).unwrap();
    assert_close!(da, c.grad("input").data, tol::<T>());
    assert_close!(db, c.grad(other).data, tol::<T>());
}

/// `ops::dense_cached` on a fixture, three calls with the same weight: the first computes
/// as `dense`, the second packs the weight, the third reads the packed weight.
fn dense_cached_case<T: Float>(name: &str) {
    let c = common::case("linalg", name);
    let (batch, in_f) = (c.input("x").shape[0], c.input("x").shape[1]);
    let out_f = c.input("w").shape[0];
    let x = c.input("x").to::<T>();
    let w = Param::new(&[out_f, in_f], c.input("w").to::<T>()).unwrap();
    let b = c.inputs.get("b").map(|b| b.to::<T>());
    let mut pack = PackedWeight::new();
    for call in 0..3 {
        let mut y = vec![T::from_f64(f64::NAN); batch * out_f];
        ops::dense_cached(&x, &w, b.as_deref(), batch, in_f, out_f, &mut y, &mut pack).unwrap();
        assert_close!(y, c.output.data, tol::<T>());
        assert_eq!(
            pack.holds(&w),
            call >= 1 && PackedWeight::<T>::available(),
            "call {call}"
        );
    }
}

fn dense_case<T: Float>(name: &str) {
    let c = common::case("linalg", name);
    let (batch, in_f) = (c.input("x").shape[0], c.input("x").shape[1]);
    let out_f = c.input("w").shape[0];
    let (x, w, dy) = (
        c.input("x").to::<T>(),
        c.input("w").to::<T>(),
        c.upstream.to::<T>(),
    );
    let b = c.inputs.get("b").map(|b| b.to::<T>());
    let mut y = zeros::<T>(batch * out_f);
    ops::dense(&x, &w, b.as_deref(), batch, in_f, out_f, &mut y).unwrap();
    assert_close!(y, c.output.data, tol::<T>());
    let (mut dx, mut dw, mut db) = (zeros::<T>(x.len()), zeros::<T>(w.len()), zeros::<T>(out_f));
    let db_arg = b.is_some().then_some(&mut db[..]);
    ops::dense_backward(
        &x,
        &w,
        &dy,
        batch,
        in_f,
        out_f,
        Some(&mut dx),
        Some(&mut dw),
        db_arg,
    )
    .unwrap();
    assert_close!(dx, c.grad("x").data, tol::<T>());
    assert_close!(dw, c.grad("w").data, tol::<T>());
    if b.is_some() {
        assert_close!(db, c.grad("b").data, tol::<T>());
    }
}

#[test]
fn matmul_matches_torch() {
    matmul_case::<f64>();
    matmul_case::<f32>();
}

#[test]
fn matvec_matches_torch() {
    matvec_case::<f64>();
    matvec_case::<f32>();
}

#[test]
fn vecmat_matches_torch() {
    vecmat_case::<f64>();
    vecmat_case::<f32>();
}

#[test]
fn vector_times_vector_and_dot_match_torch() {
    dot_case::<f64>("vecvec", "other");
    dot_case::<f32>("vecvec", "other");
    dot_case::<f64>("dot", "tensor");
    dot_case::<f32>("dot", "tensor");
}

#[test]
fn dense_matches_torch() {
    for name in [
        "dense_batch1_bias",
        "dense_batch1_nobias",
        "dense_batch4_bias",
        "dense_batch4_nobias",
        "dense_packed_batch1",
        "dense_packed_batch17_nobias",
        "dense_small_batch1_bias",
        "dense_small_batch1_row",
        "dense_packed_odd_batch1",
    ] {
        dense_case::<f64>(name);
        dense_case::<f32>(name);
    }
}

#[test]
fn dense_with_packed_weights_matches_torch() {
    for name in [
        "dense_packed_batch1",
        "dense_packed_batch17_nobias",
        "dense_packed_odd_batch1",
    ] {
        dense_cached_case::<f64>(name);
        dense_cached_case::<f32>(name);
    }
}
