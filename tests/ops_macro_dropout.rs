//! Dropout through `model!`'s struct form, after a dense layer (so that its input gradient
//! reaches the layer's parameters) and called twice: in evaluation mode the identity, in
//! training mode the runtime kernel's mask from the workspace's random stream; the
//! generated backward is checked by central differences of a loss whose masks are fixed.

mod ops_macro_util;

use nanograd::assert_close;
use nanograd::ops;
use nanograd::prelude::*;
use nanograd::rand::{rngs::StdRng, SeedableRng};
use ops_macro_util::{check_param_grads, copy_to_f32, randomise_params, rnd};

fn dense_k(x: &[f64], l: &nanograd::layers::Dense<f64>, rows: usize) -> Vec<f64> {
    let (i, o) = (l.in_features(), l.out_features());
    let mut y = vec![0.0; rows * o];
    ops::dense(
        x,
        l.weight.value(),
        Some(l.bias.value()),
        rows,
        i,
        o,
        &mut y,
    )
    .unwrap();
    y
}

fn tanh_k(x: &[f64]) -> Vec<f64> {
    let mut y = vec![0.0; x.len()];
    ops::tanh(x, &mut y).unwrap();
    y
}

/// `n` samples of uniform values from `seed`.
fn batch<A: ops_macro_util::Arr>(n: u64, seed: u64) -> Vec<A> {
    (0..n).map(|i| rnd(seed + i, -1.0, 1.0)).collect()
}

model! {
    /// Dropout after a dense layer, and called twice.
    struct DropNet {
        fc: Dense(4 -> 6),
        drop: Dropout(0.5),
    }

    fn forward(x: [B, 4]) -> [B, 6] { drop(fc(x)) }
    fn twice(x: [B, 4]) -> [B, 6] { drop(tanh(drop(fc(x)))) }

    fn loss(x: [B, 4], u: [B, 6]) -> [] { sum(forward(x) * u) + sum(twice(x) * u) }
}

#[test]
fn dropout_in_eval_mode_is_the_identity() {
    let mut model = DropNet::<f64>::new(&mut StdRng::seed_from_u64(11));
    randomise_params(&mut model, 170, -1.0, 1.0);
    model.set_eval_mode();
    let x: Vec<[f64; 4]> = batch(3, 180);
    let u: Vec<[f64; 6]> = batch(3, 190);
    let h = dense_k(x.as_flattened(), &model.fc, 3);
    assert_close!(model.forward(&x).unwrap().as_flattened(), h, 1e-12);
    let t = tanh_k(&h);
    assert_close!(model.twice(&x).unwrap().as_flattened(), t, 1e-12);
    let base = model.clone();
    let want =
        ops_macro_util::dotv(&h, u.as_flattened()) + ops_macro_util::dotv(&t, u.as_flattened());
    assert_close!(model.loss_backward(&x, &u).unwrap(), want, 1e-12);
    let names = check_param_grads(&base, &model, |m| m.loss(&x, &u).unwrap(), 1e-6, &[]);
    assert_eq!(names, ["fc.weight", "fc.bias"]);

    let mut m32 = DropNet::<f32>::new(&mut StdRng::seed_from_u64(12));
    copy_to_f32(&base, &mut m32);
    let x32: Vec<[f32; 4]> = x.iter().map(|r| r.map(|v| v as f32)).collect();
    let u32: Vec<[f32; 6]> = u.iter().map(|r| r.map(|v| v as f32)).collect();
    assert_close!(m32.loss_backward(&x32, &u32).unwrap(), want, 1e-5);
    ops_macro_util::assert_grads_close(&model, &m32, 1e-4);
}

#[test]
fn dropout_in_training_mode() {
    let mut model = DropNet::<f64>::new(&mut StdRng::seed_from_u64(13));
    randomise_params(&mut model, 200, -1.0, 1.0);
    assert!(model.is_training());
    let x: Vec<[f64; 4]> = batch(3, 210);
    let u: Vec<[f64; 6]> = batch(3, 220);

    // the generated forward draws its mask from the workspace's stream, as the kernel does
    let h = dense_k(x.as_flattened(), &model.fc, 3);
    let mut rng = Workspace::<f64>::with_seed(7);
    let (mut mask, mut y) = (vec![0.0; 18], vec![0.0; 18]);
    ops::dropout(&h, 0.5, rng.rng_mut(), &mut mask, &mut y).unwrap();
    let mut out = [[0.0f64; 6]; 3];
    model
        .forward_into(&x, &mut out, &mut Workspace::with_seed(7))
        .unwrap();
    assert_close!(out.as_flattened(), y, 1e-12);
    let dropped = mask.iter().filter(|&&m| m == 0.0).count();
    assert!(0 < dropped && dropped < 18, "{dropped} of 18 dropped");
    assert!(mask.iter().all(|&m| m == 0.0 || m == 2.0));
    // the same in f32: the mask depends only on the stream
    let mut m32 = DropNet::<f32>::new(&mut StdRng::seed_from_u64(14));
    copy_to_f32(&model, &mut m32);
    let x32: Vec<[f32; 4]> = x.iter().map(|r| r.map(|v| v as f32)).collect();
    let mut out32 = [[0.0f32; 6]; 3];
    m32.forward_into(&x32, &mut out32, &mut Workspace::with_seed(7))
        .unwrap();
    assert_close!(out32.as_flattened(), y, 1e-5);

    // the backward pass uses the masks of its own forward pass: a clone of the model before
    // the step draws the same masks, so the loss is a fixed function of the parameters
    let base = model.clone();
    let loss = model.loss_backward(&x, &u).unwrap();
    assert_close!(loss, base.clone().loss_backward(&x, &u).unwrap(), 0.0);
    let names = check_param_grads(
        &base,
        &model,
        |m| {
            m.zero_grad();
            m.loss_backward(&x, &u).unwrap()
        },
        1e-6,
        &[],
    );
    assert_eq!(names, ["fc.weight", "fc.bias"]);
    // and the masks are not the identity: eval mode gives another loss and gradient
    let mut eval = base.clone();
    eval.set_eval_mode();
    assert!((eval.loss_backward(&x, &u).unwrap() - loss).abs() > 1e-3);
}
