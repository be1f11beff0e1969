//! The `_into` methods of `model!` read large dense weights packed in the `Workspace`
//! (`ops::dense_cached`): the second call with unchanged weights packs them, later calls use
//! the packed copy, and any change to a weight (an optimizer step, a load, `value_mut`)
//! makes the copy stale. Every answer must equal the unpacked one (`forward_into` with a
//! fresh workspace), whatever the history of the workspace; so must `forward`, which keeps
//! a workspace per thread and model and packs as well.

use nanograd::assert_close;
use nanograd::ops;
use nanograd::prelude::*;
use nanograd::rand::{rngs::StdRng, SeedableRng};
use nanograd::testing::random_vec;

model! {
    /// Two dense layers large enough to be packed (70·100 and 64·70 weights), one too small.
    pub struct Wide {
        fc1: Dense(100 -> 70),
        fc2: Dense(70 -> 64),
        fc3: Dense(64 -> 3),
    }

    fn forward(x: [B, 100]) -> [B, 3] {
        fc3(relu(fc2(relu(fc1(x)))))
    }

    fn loss(x: [B, 100], target: [B, 3]) -> [] {
        mse_loss(forward(x), target)
    }
}

fn rows<T: Float, const N: usize>(seed: u64, b: usize) -> Vec<[T; N]> {
    let mut x = vec![[T::zero(); N]; b];
    x.as_flattened_mut()
        .copy_from_slice(&random_vec(seed, b * N, -1.0, 1.0));
    x
}

/// `forward_into` with a fresh workspace: the first call with a weight never reads it packed.
fn unpacked<T: Float>(model: &Wide<T>, x: &[[T; 100]]) -> Vec<[T; 3]> {
    let mut out = vec![[T::zero(); 3]; x.len()];
    model
        .forward_into(x, &mut out, &mut Workspace::new())
        .unwrap();
    out
}

/// `forward_into` with `ws`, and `forward` (which keeps a workspace per thread and packs
/// too), against the unpacked answer.
fn check_into<T: Float>(model: &Wide<T>, ws: &mut Workspace<T>, x: &[[T; 100]], tol: f64) {
    let mut out = vec![[T::zero(); 3]; x.len()];
    model.forward_into(x, &mut out, ws).unwrap();
    let want = unpacked(model, x);
    assert_close!(out.as_flattened(), want.as_flattened(), tol);
    assert_close!(
        model.forward(x).unwrap().as_flattened(),
        want.as_flattened(),
        tol
    );
}

fn calls_before_and_after_packing<T: Float>(tol: f64) {
    let model = Wide::<T>::new(&mut StdRng::seed_from_u64(1));
    let mut ws = Workspace::new();
    for b in [1, 17, 1, 64, 64, 1] {
        let x = rows::<T, 100>(b as u64, b);
        for _ in 0..3 {
            check_into(&model, &mut ws, &x, tol);
        }
    }
}

#[test]
fn packed_forward_equals_forward_at_every_call() {
    calls_before_and_after_packing::<f64>(1e-12);
    calls_before_and_after_packing::<f32>(1e-5);
}

#[test]
fn the_first_large_layer_by_hand() {
    // fc1 alone, through the kernels, against the second and third calls of the model
    let model = Wide::<f64>::new(&mut StdRng::seed_from_u64(2));
    let x = rows::<f64, 100>(3, 5);
    let mut h = vec![0.0; 5 * 70];
    ops::dense(
        x.as_flattened(),
        model.fc1.weight.value(),
        Some(model.fc1.bias.value()),
        5,
        100,
        70,
        &mut h,
    )
    .unwrap();
    let mut want = vec![0.0; 5 * 70];
    ops::relu(&h, &mut want).unwrap();
    let mut pack = nanograd::blas::PackedWeight::new();
    for _ in 0..3 {
        let mut y = vec![0.0; 5 * 70];
        let b = Some(model.fc1.bias.value());
        ops::dense_cached(
            x.as_flattened(),
            &model.fc1.weight,
            b,
            5,
            100,
            70,
            &mut y,
            &mut pack,
        )
        .unwrap();
        ops::relu(&y.clone(), &mut y).unwrap();
        assert_close!(y, want, 1e-12);
    }
}

#[test]
fn training_steps_between_calls_make_the_packed_copy_stale() {
    let mut model = Wide::<f64>::new(&mut StdRng::seed_from_u64(4));
    let mut ws = Workspace::new();
    let (x, t) = (rows::<f64, 100>(5, 8), rows::<f64, 3>(6, 8));
    let mut opt = Sgd::new(0.5);
    let mut before = vec![[0.0; 3]; 8];
    for step in 0..4 {
        for _ in 0..3 {
            check_into(&model, &mut ws, &x, 1e-12);
        }
        let mut out = vec![[0.0; 3]; 8];
        model.forward_into(&x, &mut out, &mut ws).unwrap();
        if step > 0 {
            // the step changed the answer: a stale packed copy would have kept it
            assert!(out != before, "step {step}");
        }
        before = out;
        // the loss through the same workspace, packed, against the allocating one
        let l = model.loss_into(&x, &t, &mut ws).unwrap();
        assert_close!([l], [model.loss(&x, &t).unwrap()], 1e-12);
        model.zero_grad();
        model.loss_backward(&x, &t).unwrap();
        opt.step(&mut model).unwrap();
    }
}

#[test]
fn weights_written_by_hand_or_loaded_are_repacked() {
    let mut model = Wide::<f32>::new(&mut StdRng::seed_from_u64(7));
    let mut ws = Workspace::new();
    let x = rows::<f32, 100>(8, 3);
    for _ in 0..3 {
        check_into(&model, &mut ws, &x, 1e-5);
    }
    model.fc1.weight.value_mut()[123] += 10.0;
    check_into(&model, &mut ws, &x, 1e-5);
    let other = Wide::<f32>::new(&mut StdRng::seed_from_u64(8));
    model
        .fc2
        .weight
        .value_mut()
        .copy_from_slice(other.fc2.weight.value());
    for _ in 0..3 {
        check_into(&model, &mut ws, &x, 1e-5);
    }
}

#[test]
fn two_models_can_share_a_workspace() {
    let a = Wide::<f32>::new(&mut StdRng::seed_from_u64(9));
    let b = Wide::<f32>::new(&mut StdRng::seed_from_u64(10));
    let mut ws = Workspace::new();
    let x = rows::<f32, 100>(11, 4);
    for m in [&a, &a, &a, &b, &b, &a, &b, &b, &b, &a] {
        check_into(m, &mut ws, &x, 1e-5);
    }
}

#[test]
fn a_training_step_packs_its_weights_and_agrees_with_float64() {
    // In f32, batches of 8 or more, the training forward packs fc1's and fc2's weights on
    // every call (ops::dense_packing); f64 computes as ops::dense. Same weights, same data:
    // the loss and every gradient agree to f32 precision.
    let mut m32 = Wide::<f32>::new(&mut StdRng::seed_from_u64(12));
    let mut m64 = Wide::<f64>::new(&mut StdRng::seed_from_u64(13));
    let mut names = Vec::new();
    m32.visit_params(&mut |name, p| names.push((name.to_string(), p.to_vec())));
    m64.visit_params_mut(&mut |name, p| {
        let (_, v) = names.iter().find(|(n, _)| n == name).unwrap();
        for (d, &s) in p.value_mut().iter_mut().zip(v) {
            *d = f64::from(s);
        }
    });
    let x64 = rows::<f64, 100>(14, 16);
    let t64 = rows::<f64, 3>(15, 16);
    let to32 = |r: &[f64]| r.iter().map(|&v| v as f32).collect::<Vec<f32>>();
    let x32: Vec<[f32; 100]> = x64.iter().map(|r| to32(r).try_into().unwrap()).collect();
    let t32: Vec<[f32; 3]> = t64.iter().map(|r| to32(r).try_into().unwrap()).collect();
    for _ in 0..2 {
        m32.zero_grad();
        m64.zero_grad();
        let l32 = m32.loss_backward(&x32, &t32).unwrap();
        let l64 = m64.loss_backward(&x64, &t64).unwrap();
        assert_close!([f64::from(l32)], [l64], 1e-5);
        let mut g64 = Vec::new();
        m64.visit_params(&mut |name, p| g64.push((name.to_string(), p.grad().to_vec())));
        m32.visit_params(&mut |name, p| {
            let (_, want) = g64.iter().find(|(n, _)| n == name).unwrap();
            let got: Vec<f64> = p.grad().iter().map(|&g| f64::from(g)).collect();
            assert_close!(got, want, 1e-4);
        });
    }
}

model! {
    /// A residual block whose dense weights are packed (64·70 and 70·64).
    pub struct Res {
        up: Dense(64 -> 70),
        down: Dense(70 -> 64),
    }
    fn forward(x: [B, 64]) -> [B, 64] {
        x + down(tanh(up(x)))
    }
}

model! {
    /// Models used as layers read their packed weights from the caller's workspace too.
    pub struct Stacked {
        h: [Res; 2],
        one: Res,
        head: Dense(64 -> 80),
    }
    fn forward(x: [B, 64]) -> [B, 80] {
        head(one(h(x)))
    }
    fn loss(x: [B, 64], t: [B, 80]) -> [] {
        mse_loss(forward(x), t)
    }
}

#[test]
fn blocks_pack_in_the_callers_workspace_and_repack_after_a_step() {
    let mut model = Stacked::<f32>::new(&mut StdRng::seed_from_u64(4));
    let mut ws = Workspace::new();
    let x = rows::<f32, 64>(7, 5);
    let t = rows::<f32, 80>(8, 5);
    let mut opt = Adam::new(1e-2);
    for step in 0..3 {
        let mut out = vec![[0.0f32; 80]; 5];
        for _ in 0..3 {
            model.forward_into(&x, &mut out, &mut ws).unwrap();
            let mut fresh = vec![[0.0f32; 80]; 5];
            model
                .forward_into(&x, &mut fresh, &mut Workspace::new())
                .unwrap();
            assert_close!(out.as_flattened(), fresh.as_flattened(), 1e-5);
            assert_close!(
                model.forward(&x).unwrap().as_flattened(),
                fresh.as_flattened(),
                1e-5
            );
        }
        // a step changes every weight: the caches of the blocks must not be read stale
        model.zero_grad();
        model.loss_backward(&x, &t).unwrap();
        opt.step(&mut model).unwrap();
        let mut after = vec![[0.0f32; 80]; 5];
        model.forward_into(&x, &mut after, &mut ws).unwrap();
        let mut fresh = vec![[0.0f32; 80]; 5];
        model
            .forward_into(&x, &mut fresh, &mut Workspace::new())
            .unwrap();
        assert_close!(after.as_flattened(), fresh.as_flattened(), 1e-5);
        assert!(after != out, "step {step} changed nothing");
    }
}
