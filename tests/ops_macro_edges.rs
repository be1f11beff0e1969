//! Corner cases of the generated code: a result that is an input or a view of one, an input
//! that is not used, numbers only, fns calling fns, a scalar input returned as is, and a
//! whole CNN (the shape of DESIGN.md's example) on a batch, each against the runtime kernels
//! and central differences.

mod ops_macro_util;

use nanograd::assert_close;
use nanograd::ops::{self, Conv2dGeom};
use nanograd::prelude::*;
use nanograd::rand::{rngs::StdRng, SeedableRng};
use ops_macro_util::{check_param_grads, copy_to_f32, randomise_params, rnd, Arr, Vals};

model! {
    fn identity(x: [2, 3]) -> [2, 3] { x }
    fn view(x: [2, 3]) -> [6] { reshape(x, [6]) }
    fn unused(x: [3], y: [3]) -> [3] { x * 2.0 }
    fn numbers(x: [3]) -> [3] { x + 2.0 * 3.0 - -1 }
    fn pass(s: []) -> [] { s }
    fn inner(x: [3], w: [3]) -> [3] { tanh(x * w) }
    fn outer(x: [3], w: [3]) -> [] { sum(inner(x, w) * inner(w, x)) + dot(inner(x, x), w) }
}

#[test]
fn results_that_are_inputs_or_views() {
    let x: [[f64; 3]; 2] = rnd(1, -1.0, 1.0);
    let g = check_fn!(identity, identity_vjp, [x => gx], expected = x.vals(), tol = 1e-7);
    assert_eq!(g[0], ops_macro_util::random_like(&x, 0x5eed).vals());
    let g = check_fn!(view, view_vjp, [x => gx], expected = x.vals(), tol = 1e-7);
    assert_eq!(
        g[0],
        ops_macro_util::random_like(&[0.0f64; 6], 0x5eed).vals()
    );
    assert_eq!(pass(2.5f32), 2.5);
    assert_eq!(pass_grad(2.5f64), (2.5, 1.0));
    assert_eq!(pass_vjp(2.5f64, &-3.0), (2.5, -3.0));
}

#[test]
fn unused_inputs_and_numbers() {
    let x: [f64; 3] = rnd(2, -1.0, 1.0);
    let y: [f64; 3] = rnd(3, -1.0, 1.0);
    let mut want = vec![0.0; 3];
    ops::mul(&x.vals(), &[2.0], &mut want).unwrap();
    let g = check_fn!(unused, unused_vjp, [x => gx, y => gy], expected = want, tol = 1e-7);
    assert_eq!(g[1], [0.0; 3]);
    // x + 6 + 1
    let want: Vec<f64> = x.vals().iter().map(|v| v + 7.0).collect();
    let g = check_fn!(numbers, numbers_vjp, [x => gx], expected = want, tol = 1e-7);
    assert_eq!(g[0], ops_macro_util::random_like(&x, 0x5eed).vals());
}

#[test]
fn fns_calling_fns() {
    let x: [f64; 3] = rnd(4, -1.0, 1.0);
    let w: [f64; 3] = rnd(5, -1.0, 1.0);
    let t = |a: &[f64], b: &[f64]| -> Vec<f64> {
        let mut p = vec![0.0; 3];
        ops::mul(a, b, &mut p).unwrap();
        let mut y = vec![0.0; 3];
        ops::tanh(&p, &mut y).unwrap();
        y
    };
    let (xv, wv) = (x.vals(), w.vals());
    check_fn!(inner, inner_vjp, [x => gx, w => gw], expected = t(&xv, &wv), tol = 1e-7);
    let want =
        ops_macro_util::dotv(&t(&xv, &wv), &t(&wv, &xv)) + ops::dot(&t(&xv, &xv), &wv).unwrap();
    check_fn!(outer, outer_vjp, grad = outer_grad, [x => gx, w => gw], expected = vec![want], tol = 1e-6);
}

model! {
    const C1: usize = 4;

    /// Small CNN with batch norm, as in DESIGN.md.
    struct Cnn {
        conv1: Conv2d(1 -> C1, kernel = 3, padding = 1),
        bn1: BatchNorm2d(C1),
        conv2: Conv2d(C1 -> 6, kernel = 3, stride = 2, padding = 1),
        pool: MaxPool2d(kernel = 2),
        fc: Dense(6 -> 3),
        fc2: Dense(24 -> 3),
    }

    fn forward(x: [B, 1, 8, 8]) -> [B, 3] {
        let h = tanh(bn1(conv1(x)));          // [B, 4, 8, 8]
        let h = silu(conv2(h));               // [B, 6, 4, 4]
        fc(global_avg_pool2d(h)) + fc2(flatten(pool(h)))
    }

    fn loss(x: [B, 1, 8, 8], t: [B, 3]) -> [] { softmax_cross_entropy(forward(x), t) }
}

#[test]
fn a_whole_cnn() {
    let mut model = Cnn::<f64>::new(&mut StdRng::seed_from_u64(1));
    randomise_params(&mut model, 10, -0.5, 0.5);
    let x: Vec<[[[f64; 8]; 8]; 1]> = (0..3).map(|i| rnd(20 + i, -1.0, 1.0)).collect();
    let t: Vec<[f64; 3]> = vec![[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.2, 0.3, 0.5]];
    let xf: Vec<f64> = x.iter().flat_map(|r| r.vals()).collect();
    let conv = |x: &[f64], l: &nanograd::layers::Conv2d<f64>, hw: usize| -> Vec<f64> {
        let (k, s, p) = (l.kernel_size(), l.stride(), l.padding());
        let g = Conv2dGeom::new(l.in_channels(), hw, hw, l.out_channels(), k, k, s, p).unwrap();
        let (mut cols, mut y) = (vec![0.0; g.workspace_len(3)], vec![0.0; 3 * g.output_len()]);
        ops::conv2d(
            &g,
            x,
            l.weight.value(),
            Some(l.bias.value()),
            3,
            &mut cols,
            &mut y,
        )
        .unwrap();
        y
    };
    let h1 = conv(&xf, &model.conv1, 8);
    let bn = &model.bn1;
    let (mut rm, mut rv) = (bn.running_mean.to_vec(), bn.running_var.to_vec());
    let (mut sm, mut si, mut b1) = (vec![0.0; 4], vec![0.0; 4], vec![0.0; h1.len()]);
    ops::batch_norm2d_train(
        &h1,
        3,
        4,
        64,
        bn.weight.value(),
        bn.bias.value(),
        1e-5,
        0.1,
        &mut rm,
        &mut rv,
        &mut sm,
        &mut si,
        &mut b1,
    )
    .unwrap();
    let mut t1 = vec![0.0; b1.len()];
    ops::tanh(&b1, &mut t1).unwrap();
    let h2 = conv(&t1, &model.conv2, 8);
    let mut s2 = vec![0.0; h2.len()];
    ops::silu(&h2, &mut s2).unwrap();
    let mut gap = vec![0.0; 18];
    ops::global_avg_pool2d(&s2, 3, 6, 16, &mut gap).unwrap();
    let mut z1 = vec![0.0; 9];
    ops::dense(
        &gap,
        model.fc.weight.value(),
        Some(model.fc.bias.value()),
        3,
        6,
        3,
        &mut z1,
    )
    .unwrap();
    let pg = ops::Pool2dGeom::new(6, 4, 4, 2, 2, 0).unwrap();
    let mut pooled = vec![0.0; 3 * 24];
    ops::max_pool2d(&pg, &s2, 3, &mut pooled).unwrap();
    let mut z2 = vec![0.0; 9];
    ops::dense(
        &pooled,
        model.fc2.weight.value(),
        Some(model.fc2.bias.value()),
        3,
        24,
        3,
        &mut z2,
    )
    .unwrap();
    let z: Vec<f64> = z1.iter().zip(&z2).map(|(a, b)| a + b).collect();
    assert_close!(model.forward(&x).unwrap().as_flattened(), z, 1e-12);
    let want = ops::softmax_cross_entropy(&z, t.as_flattened(), 3).unwrap();

    let base = model.clone();
    assert_close!(model.loss_backward(&x, &t).unwrap(), want, 1e-12);
    assert_close!(model.bn1.running_mean.data(), rm, 1e-15);
    assert_close!(model.bn1.running_var.data(), rv, 1e-15);
    let names = check_param_grads(
        &base,
        &model,
        |m| m.loss(&x, &t).unwrap(),
        1e-6,
        &["conv1.bias"],
    );
    assert_eq!(
        names,
        [
            "conv1.weight",
            "conv1.bias",
            "bn1.weight",
            "bn1.bias",
            "conv2.weight",
            "conv2.bias",
            "fc.weight",
            "fc.bias",
            "fc2.weight",
            "fc2.bias"
        ]
    );

    let mut m32 = Cnn::<f32>::new(&mut StdRng::seed_from_u64(2));
    copy_to_f32(&base, &mut m32);
    let x32: Vec<_> = x
        .iter()
        .map(|r| r.map(|c| c.map(|row| row.map(|v| v as f32))))
        .collect();
    let t32: Vec<_> = t.iter().map(|r| r.map(|v| v as f32)).collect();
    assert_close!(m32.loss_backward(&x32, &t32).unwrap(), want, 1e-4);
    ops_macro_util::assert_grads_close(&model, &m32, 1e-3);
}

model! {
    /// A workspace past the stack limit of the function form (4096 elements): on the heap.
    fn big(x: [64, 80], w: [80]) -> [] { sum(tanh(x * w)) }
}

#[test]
fn a_large_function() {
    let x: [[f64; 80]; 64] = rnd(6, -1.0, 1.0);
    let w: [f64; 80] = rnd(7, -1.0, 1.0);
    let mut xw = vec![0.0; 5120];
    ops::mul(&x.vals(), &w.vals(), &mut xw).unwrap();
    let mut t = vec![0.0; 5120];
    ops::tanh(&xw, &mut t).unwrap();
    check_fn!(big, big_vjp, grad = big_grad, [x => gx, w => gw], expected = vec![ops::sum(&t)], tol = 1e-6);
    let (_, gx, _) = big_grad(&x, &w);
    // d tanh(x w)/dx = (1 - t²) w
    let want: Vec<f64> = (0..5120).map(|i| (1.0 - t[i] * t[i]) * w[i % 80]).collect();
    assert_close!(gx.vals(), want, 1e-12);
}

model! {
    /// A struct model whose inputs and result have no batch dimension.
    struct Fixed {
        w: Param([2, 3]),
    }

    fn forward(x: [3]) -> [2] { matmul(w, x) }
    fn loss(x: [3], s: []) -> [] { sum(forward(x) * s) }
}

#[test]
fn a_struct_model_without_a_batch() {
    let mut model = Fixed::<f64>::new(&mut StdRng::seed_from_u64(3));
    let x: [f64; 3] = rnd(8, -1.0, 1.0);
    let mut y = vec![0.0; 2];
    ops::matvec(model.w.value(), &x, 2, 3, &mut y).unwrap();
    let out: [f64; 2] = model.forward(&x).unwrap();
    assert_close!(out, y, 1e-12);
    let base = model.clone();
    assert_close!(
        model.loss_backward(&x, 1.5).unwrap(),
        1.5 * (y[0] + y[1]),
        1e-12
    );
    check_param_grads(&base, &model, |m| m.loss(&x, 1.5).unwrap(), 1e-6, &[]);
    let mut m32 = Fixed::<f32>::new(&mut StdRng::seed_from_u64(4));
    copy_to_f32(&base, &mut m32);
    assert_close!(m32.forward(&x.to32()).unwrap(), y, 1e-5);
}

#[test]
fn a_reused_workspace_holding_garbage_changes_nothing() {
    let mut model = Cnn::<f64>::new(&mut StdRng::seed_from_u64(5));
    randomise_params(&mut model, 30, -0.5, 0.5);
    let x: Vec<[[[f64; 8]; 8]; 1]> = (0..3).map(|i| rnd(40 + i, -1.0, 1.0)).collect();
    let t: Vec<[f64; 3]> = vec![[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.2, 0.3, 0.5]];
    let fresh = model.forward(&x).unwrap();
    let loss = model.loss(&x, &t).unwrap();
    let mut ws = Workspace::<f64>::new();
    ws.split(1 << 16).0.fill(f64::NAN);
    let mut out = vec![[0.0; 3]; 3];
    model.forward_into(&x, &mut out, &mut ws).unwrap();
    assert_eq!(out, fresh);
    ws.split(1 << 16).0.fill(f64::NAN);
    assert_eq!(model.loss_into(&x, &t, &mut ws).unwrap(), loss);
    // a smaller batch after a larger one, in the same workspace
    model.forward_into(&x[..1], &mut out[..1], &mut ws).unwrap();
    assert_eq!(out[0], model.forward(&x[..1]).unwrap()[0]);
    // the backward pass reuses the model's own workspace: a second step gives the same
    // gradients (accumulated twice)
    let mut twice = model.clone();
    model.loss_backward(&x, &t).unwrap();
    twice.loss_backward(&x[..2], &t[..2]).unwrap();
    twice.zero_grad();
    twice.loss_backward(&x, &t).unwrap();
    let mut again = model.clone();
    again.loss_backward(&x, &t).unwrap();
    let (p1, p2, p3) = (
        ops_macro_util::params(&model),
        ops_macro_util::params(&twice),
        ops_macro_util::params(&again),
    );
    for ((g1, g2), g3) in p1
        .iter()
        .map(|p| &p.2)
        .zip(p2.iter().map(|p| &p.2))
        .zip(p3.iter().map(|p| &p.2))
    {
        let doubled: Vec<f64> = g1.iter().map(|g| 2.0 * g).collect();
        assert_close!(g3, doubled, 1e-12);
        // `twice` ran one step on two samples first: batch norm's running statistics moved,
        // which training mode does not read
        assert_close!(g2, g1, 1e-12);
    }
}
