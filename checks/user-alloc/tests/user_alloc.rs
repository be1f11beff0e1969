//! Zero allocation after warm-up, counted where a user meets it: in a crate of its own that
//! depends on `nanograd` by path, so that nothing of the nanograd workspace (its `[patch]`
//! section, its profiles) applies here. `forward_into` with a kept workspace, the training
//! step (`zero_grad`, `loss_backward`, the optimizer's `step`) and `loss_into`, for an MLP,
//! a small CNN (conv, batch norm, max pool, conv, global average pool, dense) and the GPT of
//! `examples/gpt_shakespeare.rs`.

use nanograd::prelude::*;
use nanograd::rand::{rngs::StdRng, SeedableRng};
use nanograd::testing::random_vec;

#[path = "../../../tests/support/counting_alloc.rs"]
mod counting_alloc;
#[path = "../../../examples/shared/gpt.rs"]
mod gpt;

use counting_alloc::allocations_of;

model! {
    /// The MLP of the benchmarks: 784-128-64-10.
    pub struct Mlp {
        fc1: Dense(784 -> 128),
        fc2: Dense(128 -> 64),
        fc3: Dense(64 -> 10),
    }

    fn forward(x: [B, 784]) -> [B, 10] {
        let h = relu(fc1(x));
        let h = relu(fc2(h));
        fc3(h)
    }

    fn loss(x: [B, 784], target: [B, 10]) -> [] {
        softmax_cross_entropy(forward(x), target)
    }
}

model! {
    /// The small CNN on 28x28 digits: conv, batch norm, max pool, conv, global pool, dense.
    pub struct Cnn {
        conv1: Conv2d(1 -> 8, kernel = 3, padding = 1),
        bn1: BatchNorm2d(8),
        pool: MaxPool2d(kernel = 2, stride = 2),
        conv2: Conv2d(8 -> 16, kernel = 3, stride = 2, padding = 1),
        fc: Dense(16 -> 10),
    }

    fn forward(x: [B, 1, 28, 28]) -> [B, 10] {
        let h: [B, 8, 14, 14] = pool(relu(bn1(conv1(x))));
        let h: [B, 16, 7, 7] = relu(conv2(h));
        fc(global_avg_pool2d(h))
    }

    fn loss(x: [B, 1, 28, 28], target: [B, 10]) -> [] {
        softmax_cross_entropy(forward(x), target)
    }
}

// ---------------------------------------------------------------------------------------
// counting

/// Runs `f` twice to warm up (grow the workspace, pack weights, grow the GEMM's packing
/// buffers, create the optimizer's state), checks that the warm-up allocated (the counter
/// counts), then returns the allocations of three more calls.
fn after_warm_up<R>(mut f: impl FnMut() -> nanograd::Result<R>) -> usize {
    let (n, r) = allocations_of(|| (0..2).try_for_each(|_| f().map(drop)));
    r.unwrap();
    assert!(n > 0, "the warm-up allocates, and the counter counts it");
    let (n, r) = allocations_of(|| (0..3).try_for_each(|_| f().map(drop)));
    r.unwrap();
    n
}

// ---------------------------------------------------------------------------------------
// data

fn rows<T: Float, const N: usize>(seed: u64, b: usize) -> Vec<[T; N]> {
    let mut x = vec![[T::zero(); N]; b];
    x.as_flattened_mut()
        .copy_from_slice(&random_vec(seed, b * N, -1.0, 1.0));
    x
}

fn one_hot<T: Float>(b: usize) -> Vec<[T; 10]> {
    (0..b)
        .map(|i| {
            let mut r = [T::zero(); 10];
            r[(3 * i + 1) % 10] = T::one();
            r
        })
        .collect()
}

fn images(seed: u64, b: usize) -> Vec<[[[f32; 28]; 28]; 1]> {
    let mut x = vec![[[[0.0; 28]; 28]; 1]; b];
    x.as_flattened_mut()
        .as_flattened_mut()
        .as_flattened_mut()
        .copy_from_slice(&random_vec(seed, b * 784, -1.0, 1.0));
    x
}

/// `b` windows of `CTX + 1` seeded token ids: the inputs and the targets one step ahead.
fn tokens(seed: u64, b: usize) -> (Vec<[u32; gpt::CTX]>, Vec<[u32; gpt::CTX]>) {
    let v = random_vec::<f64>(seed, b * (gpt::CTX + 1), 0.0, gpt::VOCAB as f64);
    let w: Vec<&[f64]> = v.chunks(gpt::CTX + 1).collect();
    let ids = |off: usize| {
        w.iter()
            .map(|r| std::array::from_fn(|i| r[i + off] as u32))
            .collect()
    };
    (ids(0), ids(1))
}

// ---------------------------------------------------------------------------------------
// the models

fn mlp<T: Float>(what: &str) {
    for b in [1, 64] {
        let x = rows::<T, 784>(1 + b as u64, b);
        let t = one_hot::<T>(b);
        let mut model = Mlp::<T>::new(&mut StdRng::seed_from_u64(1));
        let mut ws = Workspace::new();
        let mut out = vec![[T::zero(); 10]; b];
        let n = after_warm_up(|| model.forward_into(&x, &mut out, &mut ws));
        assert_eq!(n, 0, "{what} MLP batch {b}: forward_into allocated {n} times");
        let n = after_warm_up(|| model.loss_into(&x, &t, &mut ws));
        assert_eq!(n, 0, "{what} MLP batch {b}: loss_into allocated {n} times");
        let mut opt = Adam::new(1e-3);
        let n = after_warm_up(|| {
            model.zero_grad();
            let loss = model.loss_backward(&x, &t)?;
            opt.step(&mut model)?;
            Ok(loss)
        });
        assert_eq!(n, 0, "{what} MLP batch {b}: a training step allocated {n} times");
    }
}

#[test]
fn mlp_f32_allocates_nothing_after_warm_up() {
    mlp::<f32>("f32");
}

#[test]
fn mlp_f64_allocates_nothing_after_warm_up() {
    mlp::<f64>("f64");
}

#[test]
fn cnn_allocates_nothing_after_warm_up() {
    let b = 32;
    let x = images(3, b);
    let t = one_hot::<f32>(b);
    let mut model = Cnn::<f32>::new(&mut StdRng::seed_from_u64(2));
    let mut opt = Sgd::new(0.05).momentum(0.9);
    let n = after_warm_up(|| {
        model.zero_grad();
        let loss = model.loss_backward(&x, &t)?;
        opt.step(&mut model)?;
        Ok(loss)
    });
    assert_eq!(n, 0, "CNN: a training step allocated {n} times");
    model.set_eval_mode();
    let mut ws = Workspace::new();
    let mut out = vec![[0.0f32; 10]; b];
    let n = after_warm_up(|| model.forward_into(&x, &mut out, &mut ws));
    assert_eq!(n, 0, "CNN: forward_into allocated {n} times");
}

#[test]
fn gpt_allocates_nothing_after_warm_up() {
    let b = 2;
    let (idx, targets) = tokens(4, b);
    let mut model = gpt::Gpt::<f32>::new(&mut StdRng::seed_from_u64(5));
    let mut opt = AdamW::new(1e-3)
        .betas(0.9, 0.99)
        .weight_decay(0.1)
        .decay_matrices_only();
    let n = after_warm_up(|| {
        model.zero_grad();
        let loss = model.loss_backward(&idx, &targets)?;
        nanograd::optim::clip_grad_norm(&mut model, 1.0);
        opt.step(&mut model)?;
        Ok(loss)
    });
    assert_eq!(n, 0, "GPT: a training step allocated {n} times");
    let mut ws = Workspace::new();
    let mut out = vec![[[0.0f32; gpt::VOCAB]; gpt::CTX]; b];
    let n = after_warm_up(|| model.forward_into(&idx, &mut out, &mut ws));
    assert_eq!(n, 0, "GPT: forward_into allocated {n} times");
}
