//! conv2d, max/avg pooling and global average pooling against PyTorch, in f64 and f32
//! (fixtures: tests/fixtures/gen_conv.py).

mod common;

use common::Case;
use nanograd_runtime::ops::{self, Conv2dCols, Conv2dGeom, Pool2dGeom};
use nanograd_runtime::{assert_close, Float};

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

fn conv_case<T: Float>(c: &Case) {
    let (xs, ws) = (&c.input("x").shape, &c.input("weight").shape);
    let (stride, padding) = (c.arg("stride") as usize, c.arg("padding") as usize);
    let g = Conv2dGeom::new(xs[1], xs[2], xs[3], ws[0], ws[2], ws[3], stride, padding).unwrap();
    assert_eq!(c.output.shape, [xs[0], ws[0], g.out_h(), g.out_w()]);
    let n = xs[0];
    let (x, w, dy) = (
        c.input("x").to::<T>(),
        c.input("weight").to::<T>(),
        c.upstream.to::<T>(),
    );
    let bias = c.inputs.get("bias").map(|b| b.to::<T>());
    let mut workspace = zeros::<T>(g.workspace_len(n));
    let mut y = zeros::<T>(n * g.output_len());
    ops::conv2d(&g, &x, &w, bias.as_deref(), n, &mut workspace, &mut y).unwrap();
    assert_close!(y, c.output.data, tol::<T>());
    let (mut dx, mut dw, mut db) = (zeros::<T>(x.len()), zeros::<T>(w.len()), zeros::<T>(ws[0]));
    let db_arg = bias.is_some().then_some(&mut db[..]);
    ops::conv2d_backward(
        &g,
        &x,
        &w,
        &dy,
        n,
        &mut workspace,
        Conv2dCols::Kept,
        Some(&mut dx),
        Some(&mut dw),
        db_arg,
    )
    .unwrap();
    assert_close!(dx, c.grad("x").data, tol::<T>());
    assert_close!(dw, c.grad("weight").data, tol::<T>());
    if bias.is_some() {
        assert_close!(db, c.grad("bias").data, tol::<T>());
    }
}

#[test]
fn conv2d_matches_torch() {
    let cases = common::load("conv");
    let mut seen = 0;
    for (name, c) in cases.iter().filter(|(name, _)| name.starts_with("conv_")) {
        eprintln!("{name}");
        conv_case::<f64>(c);
        conv_case::<f32>(c);
        seen += 1;
    }
    assert_eq!(seen, 7, "every conv2d fixture ran");
}

#[test]
fn shifted_conv2d_matches_torch() {
    // stride 1 and 8 input channels or more: the shifted kernels, and for f32 on AVX-512
    // their direct loops (fixtures: tests/fixtures/gen_conv_shifted.py)
    let cases = common::load("conv_shifted");
    for (name, c) in &cases {
        eprintln!("{name}");
        let xs = &c.input("x").shape;
        assert!(xs[1] >= 8 && c.arg("stride") == 1.0, "{name}");
        conv_case::<f64>(c);
        conv_case::<f32>(c);
    }
    assert_eq!(cases.len(), 3, "every shifted conv2d fixture ran");
}

fn pool_geom(c: &Case) -> (usize, Pool2dGeom) {
    let s = &c.input("x").shape;
    let arg = |k| c.arg(k) as usize;
    let g = Pool2dGeom::new(
        s[1],
        s[2],
        s[3],
        arg("kernel_size"),
        arg("stride"),
        arg("padding"),
    )
    .unwrap();
    assert_eq!(c.output.shape, [s[0], s[1], g.out_h(), g.out_w()]);
    (s[0], g)
}

fn max_pool_case<T: Float>(c: &Case) {
    let (n, g) = pool_geom(c);
    let (x, dy) = (c.input("x").to::<T>(), c.upstream.to::<T>());
    let mut y = zeros::<T>(n * g.output_len());
    ops::max_pool2d(&g, &x, n, &mut y).unwrap();
    assert_close!(y, c.output.data, tol::<T>());
    let mut dx = zeros::<T>(x.len());
    ops::max_pool2d_backward(&g, &x, &y, &dy, n, &mut dx).unwrap();
    assert_close!(dx, c.grad("x").data, tol::<T>());
}

fn avg_pool_case<T: Float>(c: &Case) {
    let (n, g) = pool_geom(c);
    let (x, dy) = (c.input("x").to::<T>(), c.upstream.to::<T>());
    let mut y = zeros::<T>(n * g.output_len());
    ops::avg_pool2d(&g, &x, n, &mut y).unwrap();
    assert_close!(y, c.output.data, tol::<T>());
    let mut dx = zeros::<T>(x.len());
    ops::avg_pool2d_backward(&g, &dy, n, &mut dx).unwrap();
    assert_close!(dx, c.grad("x").data, tol::<T>());
}

#[test]
fn max_pool2d_matches_torch() {
    for name in ["max_k2_s2_p0", "max_k3_s2_p1", "max_k3_s1_p1"] {
        let c = common::case("conv", name);
        max_pool_case::<f64>(&c);
        max_pool_case::<f32>(&c);
    }
}

#[test]
fn avg_pool2d_matches_torch() {
    for name in ["avg_k2_s2_p0", "avg_k3_s2_p1", "avg_k3_s1_p1"] {
        let c = common::case("conv", name);
        avg_pool_case::<f64>(&c);
        avg_pool_case::<f32>(&c);
    }
}

fn global_avg_case<T: Float>(c: &Case) {
    let s = &c.input("x").shape;
    let (n, ch, hw) = (s[0], s[1], s[2] * s[3]);
    let (x, dy) = (c.input("x").to::<T>(), c.upstream.to::<T>());
    let mut y = zeros::<T>(n * ch);
    ops::global_avg_pool2d(&x, n, ch, hw, &mut y).unwrap();
    assert_close!(y, c.output.data, tol::<T>());
    let mut dx = zeros::<T>(x.len());
    ops::global_avg_pool2d_backward(&dy, n, ch, hw, &mut dx).unwrap();
    assert_close!(dx, c.grad("x").data, tol::<T>());
}

#[test]
fn global_avg_pool2d_matches_torch() {
    let c = common::case("conv", "global_avg");
    global_avg_case::<f64>(&c);
    global_avg_case::<f32>(&c);
}
