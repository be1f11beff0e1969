//! transpose, batched_matmul, concat, embedding and softmax_cross_entropy_indices against
//! PyTorch, in f64 and f32 (fixtures: tests/fixtures/gen_transformer_ops.py).

mod common;

use nanograd_runtime::{assert_close, ops, Float};

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

/// Integer inputs are recorded as whole f64 values.
fn ids(t: &common::TensorData) -> Vec<u32> {
    t.data
        .iter()
        .map(|&v| {
            assert!(v >= 0.0 && v.fract() == 0.0, "not an id: {v}");
            v as u32
        })
        .collect()
}

fn transpose_case<T: Float>(name: &str) {
    let c = common::case("transformer_ops", name);
    let (a, b) = (c.arg("a") as usize, c.arg("b") as usize);
    let x = c.input("x");
    let shape = x.shape.clone();
    let mut swapped = shape.clone();
    swapped.swap(a, b);
    assert_eq!(c.output.shape, swapped, "{name}: output shape");
    let (x, dy) = (x.to::<T>(), c.upstream.to::<T>());
    let mut y = zeros::<T>(x.len());
    ops::transpose(&x, &shape, a, b, &mut y).unwrap();
    assert_close!(y, c.output.data, tol::<T>());
    let mut dx = zeros::<T>(x.len());
    ops::transpose_backward(&dy, &shape, a, b, &mut dx).unwrap();
    assert_close!(dx, c.grad("x").data, tol::<T>());
}

#[test]
fn transpose_matches_torch() {
    for name in [
        "transpose_2d",
        "transpose_3d_0_2",
        "transpose_3d_last_two",
        "transpose_4d_1_2",
        "transpose_4d_last_two",
        "transpose_4d_3_0",
        "transpose_5d_1_3",
    ] {
        transpose_case::<f64>(name);
        transpose_case::<f32>(name);
    }
}

fn bmm_case<T: Float>(name: &str) {
    let c = common::case("transformer_ops", name);
    let (ia, ib) = (c.input("input"), c.input("other"));
    let r = ia.shape.len();
    // the leading dimensions merge into one batch
    let batch: usize = ia.shape[..r - 2].iter().product();
    let (m, k, n) = (ia.shape[r - 2], ia.shape[r - 1], ib.shape[r - 1]);
    assert_eq!(&ib.shape[..r - 2], &ia.shape[..r - 2]);
    let (a, b, dy) = (ia.to::<T>(), ib.to::<T>(), c.upstream.to::<T>());
    let mut y = zeros::<T>(batch * m * n);
    ops::batched_matmul(&a, &b, batch, m, k, n, &mut y).unwrap();
    assert_close!(y, c.output.data, tol::<T>());
    let (mut da, mut db) = (zeros::<T>(a.len()), zeros::<T>(b.len()));
    ops::batched_matmul_backward(&a, &b, &dy, batch, m, k, n, Some(&mut da), Some(&mut db))
        .unwrap();
    assert_close!(da, c.grad("input").data, tol::<T>());
    assert_close!(db, c.grad("other").data, tol::<T>());
}

#[test]
fn batched_matmul_matches_torch() {
    for name in ["bmm_3d", "bmm_4d"] {
        bmm_case::<f64>(name);
        bmm_case::<f32>(name);
    }
}

fn cat_case<T: Float>(name: &str) {
    let c = common::case("transformer_ops", name);
    let dim = c.arg("dim") as usize;
    let (ta, tb) = (c.input("a"), c.input("b"));
    let outer: usize = ta.shape[..dim].iter().product();
    let a_inner: usize = ta.shape[dim..].iter().product();
    let b_inner: usize = tb.shape[dim..].iter().product();
    let (a, b, dy) = (ta.to::<T>(), tb.to::<T>(), c.upstream.to::<T>());
    let mut y = zeros::<T>(a.len() + b.len());
    ops::concat(&a, &b, outer, a_inner, b_inner, &mut y).unwrap();
    assert_close!(y, c.output.data, tol::<T>());
    let (mut da, mut db) = (zeros::<T>(a.len()), zeros::<T>(b.len()));
    ops::concat_backward(&dy, outer, a_inner, b_inner, Some(&mut da), Some(&mut db)).unwrap();
    assert_close!(da, c.grad("a").data, tol::<T>());
    assert_close!(db, c.grad("b").data, tol::<T>());
}

#[test]
fn concat_matches_torch() {
    for name in ["cat_dim0", "cat_dim1", "cat_dim2"] {
        cat_case::<f64>(name);
        cat_case::<f32>(name);
    }
}

fn embedding_case<T: Float>() {
    let c = common::case("transformer_ops", "embedding");
    let ids = ids(c.input("ids"));
    let w = c.input("weight");
    let (vocab, dim) = (w.shape[0], w.shape[1]);
    let (w, dy) = (w.to::<T>(), c.upstream.to::<T>());
    let mut y = zeros::<T>(ids.len() * dim);
    ops::embedding(&ids, &w, vocab, dim, &mut y).unwrap();
    assert_close!(y, c.output.data, tol::<T>());
    let mut dw = zeros::<T>(w.len());
    ops::embedding_backward(&ids, &dy, vocab, dim, &mut dw).unwrap();
    assert_close!(dw, c.grad("weight").data, tol::<T>());
}

#[test]
fn embedding_matches_torch() {
    embedding_case::<f64>();
    embedding_case::<f32>();
}

fn cross_entropy_case<T: Float>(name: &str) {
    let c = common::case("transformer_ops", name);
    let logits = c.input("logits");
    let cols = *logits.shape.last().unwrap();
    let targets = ids(c.input("targets"));
    let x = logits.to::<T>();
    assert_eq!(c.output.shape, Vec::<usize>::new(), "a scalar");
    let loss = ops::softmax_cross_entropy_indices(&x, &targets, cols).unwrap();
    assert_close!(loss, c.output.data, tol::<T>());
    let dy = T::from_f64(c.upstream.data[0]);
    let mut dx = zeros::<T>(x.len());
    ops::softmax_cross_entropy_indices_backward(&x, &targets, cols, dy, &mut dx).unwrap();
    assert_close!(dx, c.grad("logits").data, tol::<T>());
}

#[test]
fn softmax_cross_entropy_indices_matches_torch() {
    for name in ["cross_entropy_2d", "cross_entropy_3d"] {
        cross_entropy_case::<f64>(name);
        cross_entropy_case::<f32>(name);
    }
}
