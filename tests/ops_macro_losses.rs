//! Losses through `model!`: mse_loss, cross_entropy_loss (on probabilities) and
//! softmax_cross_entropy (on logits), with the gradient of both the prediction and the
//! target, against the runtime kernels and central differences, in f64 and f32.

mod ops_macro_util;

use nanograd::assert_close;
use nanograd::ops;
use nanograd::prelude::*;
use nanograd::rand::{rngs::StdRng, SeedableRng};
use ops_macro_util::{check_param_grads, rnd, Vals};

model! {
    fn mse(p: [2, 3], t: [2, 3]) -> [] { mse_loss(p, t) }
    fn ce(p: [2, 3], t: [2, 3]) -> [] { cross_entropy_loss(p, t) }
    fn ce_of_softmax(z: [2, 3], t: [2, 3]) -> [] { cross_entropy_loss(softmax(z), t) }
    fn sce(z: [2, 3], t: [2, 3]) -> [] { softmax_cross_entropy(z, t) }
    fn sce_vec(z: [4], t: [4]) -> [] { softmax_cross_entropy(z, t) }
}

model! {
    // values used twice
    fn mse_self(p: [3]) -> [] { mse_loss(p, p * 0.5) + mse_loss(p, p) }
    fn ce_self(p: [3]) -> [] { cross_entropy_loss(p, p) }
    fn sce_self(z: [2, 3]) -> [] { softmax_cross_entropy(z, softmax(z)) + softmax_cross_entropy(z, z) }
}

#[test]
fn mse_and_cross_entropy() {
    let p: [[f64; 3]; 2] = rnd(1, -1.0, 1.0);
    let t: [[f64; 3]; 2] = rnd(2, -1.0, 1.0);
    let e = ops::mse_loss(&p.vals(), &t.vals()).unwrap();
    check_fn!(mse, mse_vjp, grad = mse_grad, [p => gp, t => gt], expected = vec![e], tol = 1e-7);

    // probabilities away from the clamp
    let q: [[f64; 3]; 2] = rnd(3, 0.1, 1.0);
    let w: [[f64; 3]; 2] = rnd(4, 0.0, 1.0);
    let e = ops::cross_entropy_loss(&q.vals(), &w.vals()).unwrap();
    check_fn!(ce, ce_vjp, grad = ce_grad, [q => gq, w => gw], expected = vec![e], tol = 1e-6);

    let z: [[f64; 3]; 2] = rnd(5, -2.0, 2.0);
    let mut sm = vec![0.0; 6];
    ops::softmax(&z.vals(), 3, &mut sm).unwrap();
    let e = ops::cross_entropy_loss(&sm, &w.vals()).unwrap();
    check_fn!(ce_of_softmax, ce_of_softmax_vjp, grad = ce_of_softmax_grad, [z => gz, w => gw], expected = vec![e], tol = 1e-6);

    // hand-derived: mean((p - t)²) of [1, 2] against [0, 0] and [3, 4] against [3, 6] is
    // (1 + 4 + 0 + 0 + ...) / 6; with p = [[1, 2, 0], [3, 4, 0]], t = [[0, 0, 0], [3, 6, 0]]:
    // (1 + 4 + 4) / 6 = 1.5, d/dp = 2 (p - t) / 6
    let (v, gp, gt) = mse_grad(
        &[[1.0f64, 2.0, 0.0], [3.0, 4.0, 0.0]],
        &[[0.0, 0.0, 0.0], [3.0, 6.0, 0.0]],
    );
    assert_eq!(v, 1.5);
    assert_close!(
        gp.as_flattened(),
        [1.0 / 3.0, 2.0 / 3.0, 0.0, 0.0, -2.0 / 3.0, 0.0],
        1e-15
    );
    assert_close!(
        gt.as_flattened(),
        [-1.0 / 3.0, -2.0 / 3.0, 0.0, 0.0, 2.0 / 3.0, 0.0],
        1e-15
    );
    // -Σ t ln p with p = [[0.5, 0.25, 0.25], ..] one-hot at 0 and 1: ln 2 + ln 4 = 3 ln 2
    let (v, gp, _) = ce_grad(
        &[[0.5f32, 0.25, 0.25], [0.5, 0.25, 0.25]],
        &[[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]],
    );
    assert_close!(v, 3.0 * 2.0f64.ln(), 1e-6);
    assert_eq!(gp, [[-2.0, 0.0, 0.0], [0.0, -4.0, 0.0]]);
}

#[test]
fn softmax_cross_entropy_on_logits() {
    let z: [[f64; 3]; 2] = rnd(6, -2.0, 2.0);
    let t: [[f64; 3]; 2] = rnd(7, 0.0, 1.0);
    let e = ops::softmax_cross_entropy(&z.vals(), &t.vals(), 3).unwrap();
    check_fn!(sce, sce_vjp, grad = sce_grad, [z => gz, t => gt], expected = vec![e], tol = 1e-7);
    let v: [f64; 4] = rnd(8, -2.0, 2.0);
    let s: [f64; 4] = [0.1, 0.2, 0.3, 0.4];
    let e = ops::softmax_cross_entropy(&v.vals(), &s.vals(), 4).unwrap();
    check_fn!(sce_vec, sce_vec_vjp, grad = sce_vec_grad, [v => gv, s => gs], expected = vec![e], tol = 1e-7);
    // hand-derived: equal logits, one-hot targets: ln 3 per row, mean ln 3;
    // d/dz = (1/3 - t) / 2
    let (l, g, _) = sce_grad(&[[0.0f64; 3]; 2], &[[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]);
    assert_close!(l, 3.0f64.ln(), 1e-15);
    let (a, b) = (1.0 / 6.0, -1.0 / 3.0);
    assert_close!(g.as_flattened(), [b, a, a, a, a, b], 1e-15);
}

#[test]
fn values_used_twice() {
    let p: [f64; 3] = rnd(9, -1.0, 1.0);
    let pv = p.vals();
    let half: Vec<f64> = pv.iter().map(|v| v * 0.5).collect();
    let e = ops::mse_loss(&pv, &half).unwrap() + ops::mse_loss(&pv, &pv).unwrap();
    let g = check_fn!(mse_self, mse_self_vjp, grad = mse_self_grad, [p => gp], expected = vec![e], tol = 1e-7);
    // mean((p/2)²) has gradient p/6 (n = 3); the second loss is 0 with gradient 0
    let u = ops_macro_util::random_like(&0.0f64, 0x5eed);
    assert_close!(
        g[0],
        pv.iter().map(|p| u * p / 6.0).collect::<Vec<_>>(),
        1e-12
    );

    let q: [f64; 3] = rnd(10, 0.1, 1.0);
    let e = ops::cross_entropy_loss(&q.vals(), &q.vals()).unwrap();
    let g = check_fn!(ce_self, ce_self_vjp, grad = ce_self_grad, [q => gq], expected = vec![e], tol = 1e-6);
    // d(-q ln q)/dq = -ln q - 1
    assert_close!(
        g[0],
        q.vals()
            .iter()
            .map(|q| u * (-q.ln() - 1.0))
            .collect::<Vec<_>>(),
        1e-12
    );

    let z: [[f64; 3]; 2] = rnd(11, -2.0, 2.0);
    let zv = z.vals();
    let mut sm = vec![0.0; 6];
    ops::softmax(&zv, 3, &mut sm).unwrap();
    let e = ops::softmax_cross_entropy(&zv, &sm, 3).unwrap()
        + ops::softmax_cross_entropy(&zv, &zv, 3).unwrap();
    check_fn!(sce_self, sce_self_vjp, grad = sce_self_grad, [z => gz], expected = vec![e], tol = 1e-6);
}

model! {
    /// A classifier head on a batch: every loss of its logits.
    struct Head {
        fc: Dense(3 -> 4),
    }

    fn loss(x: [B, 3], t: [B, 4]) -> [] {
        let z = fc(x);
        softmax_cross_entropy(z, t) + mse_loss(z, t) + cross_entropy_loss(softmax(z), t)
    }
}

#[test]
fn batched_losses_in_the_struct_form() {
    let mut model = Head::<f64>::new(&mut StdRng::seed_from_u64(1));
    ops_macro_util::randomise_params(&mut model, 3, -1.0, 1.0);
    let x: Vec<[f64; 3]> = (0..5).map(|i| rnd(20 + i, -1.0, 1.0)).collect();
    let t: Vec<[f64; 4]> = (0..5).map(|i| rnd(30 + i, 0.0, 1.0)).collect();
    let mut z = vec![0.0; 20];
    ops::dense(
        x.as_flattened(),
        model.fc.weight.value(),
        Some(model.fc.bias.value()),
        5,
        3,
        4,
        &mut z,
    )
    .unwrap();
    let tf = t.as_flattened();
    let mut sm = vec![0.0; 20];
    ops::softmax(&z, 4, &mut sm).unwrap();
    let want = ops::softmax_cross_entropy(&z, tf, 4).unwrap()
        + ops::mse_loss(&z, tf).unwrap()
        + ops::cross_entropy_loss(&sm, tf).unwrap();
    assert_close!(model.loss(&x, &t).unwrap(), want, 1e-12);
    let base = model.clone();
    assert_close!(model.loss_backward(&x, &t).unwrap(), want, 1e-12);
    let names = check_param_grads(&base, &model, |m| m.loss(&x, &t).unwrap(), 1e-6, &[]);
    assert_eq!(names, ["fc.weight", "fc.bias"]);

    let mut m32 = Head::<f32>::new(&mut StdRng::seed_from_u64(2));
    ops_macro_util::copy_to_f32(&base, &mut m32);
    let x32: Vec<[f32; 3]> = x.iter().map(|r| r.map(|v| v as f32)).collect();
    let t32: Vec<[f32; 4]> = t.iter().map(|r| r.map(|v| v as f32)).collect();
    assert_close!(m32.loss_backward(&x32, &t32).unwrap(), want, 1e-5);
    ops_macro_util::assert_grads_close(&model, &m32, 1e-4);
}
