//! Whole models, float32, one thread: the workloads of the "Speed" issue, measured against
//! PyTorch and ONNX Runtime by `scripts/bench-compare.sh` (the reference side is
//! `benches/reference/bench_reference.py`, same models, same batch sizes).
//!
//! - `mlp_infer/{1,64}`: MLP 784-128-64-10 (ReLU), `forward_into` with a reused `Workspace`
//!   and output buffer (the allocation-free path);
//! - `mlp_int8_infer/{1,64}`: the same MLP after `quantize_int8` (int8 weights, activations
//!   quantized per row), `forward_into`; `mlp_forward/{1,64}` and `mlp_int8_forward/{1,64}`:
//!   float32 and int8 `forward`, which allocates its result (see `scripts/bench-int8.sh`);
//! - `mlp_train_adam/64`: one training step, `zero_grad` + `loss_backward`
//!   (`softmax_cross_entropy`) + `Adam::step` (lr 1e-3);
//! - `cnn_infer/1`: conv 1→8 3×3 pad 1, ReLU, conv 8→16 3×3 stride 2 pad 1, ReLU, global
//!   average pool, dense 16→10 on 1×28×28;
//! - `cnn_train_sgd/32`: one training step of that CNN, SGD lr 0.01 momentum 0.9;
//! - `cnn_bn_train/64`: one training step of the network of `examples/mnist_cnn.rs` (conv
//!   1→16, batch norm, ReLU, 2×2 max pool, conv 16→32, batch norm, ReLU, 2×2 max pool, dense
//!   1568→10; batch norm in training mode), SGD lr 0.05 momentum 0.9, at batch 64;
//! - `tiny_infer/1`: dense 2→8, ReLU, dense 8→1 at batch 1 (the per-call overhead);
//! - `tiny_forward/1`: the tiny model through `forward`, the call a user makes first (it
//!   returns a new `Vec` and computes in the workspace the model keeps for the calling thread);
//!   `tiny_forward/result_alloc` allocates, fills and drops that `Vec` alone (what `forward`
//!   cannot avoid: it sets the floor under `tiny_forward/1 - tiny_infer/1`);
//! - `gpt/*`: the character-level GPT of `examples/shared/gpt.rs` (4 pre-norm blocks of
//!   width 128, 4 causal heads, context 64, vocabulary `VOCAB` = 75, feed-forward 512, tanh
//!   GELU) on seeded random token ids below `VOCAB`: `gpt/train_step/12`, one training step
//!   at batch 12 as `examples/gpt_shakespeare.rs` makes it (`zero_grad`, `loss_backward`,
//!   `clip_grad_norm(1.0)`, AdamW lr 1e-3, betas 0.9/0.99, weight decay 0.1 on matrices
//!   only); `gpt/forward/1`, `forward` of one sequence of 64 tokens (allocating its output,
//!   the first call a user makes); `gpt/forward_into/1`, the same through `forward_into`
//!   with a kept `Workspace` and output buffer.
//!
//! The MLP, CNN and GPT benchmarks set criterion's throughput to their useful floating-point
//! operations per call (see `MLP_FLOPS`, `CNN_FLOPS`, `GPT_FLOPS`), so `Gelem/s` reads as
//! GFLOP/s.
//!
//! ```sh
//! cargo bench --bench models -- --warm-up-time 1 --measurement-time 3
//! cargo bench --bench models -- gpt --warm-up-time 1 --measurement-time 3   # the GPT only
//! ```

mod common;
#[path = "../examples/shared/gpt.rs"]
mod gpt;

use common::{
    images, one_hot, rows, Cnn, CnnBn, Mlp, Tiny, CNN_BN_TRAIN_FLOPS, CNN_FLOPS, MLP_FLOPS,
    MLP_TRAIN_FLOPS,
};
use criterion::{
    criterion_group, criterion_main, BenchmarkId, Criterion, SamplingMode, Throughput,
};
use gpt::{Gpt, CTX, VOCAB};
use nanograd::optim::clip_grad_norm;
use nanograd::prelude::*;
use nanograd::rand::{rngs::StdRng, Rng, SeedableRng};
use std::hint::black_box;

/// Multiply-adds of the GPT's forward pass over one sequence of `CTX` = 64 tokens: per block
/// the attention's packed q/k/v projection (`T·C·3C`) and output projection (`T·C·C`), the
/// scores `q·kᵀ` and their product with `v` over all `T·T` pairs of each head (`2·T·T·C`,
/// the causally masked half included), and the feed-forward layer (`2·T·C·FF`); then the
/// head (`T·C·VOCAB`). Embeddings, layer norms, softmax and GELU are not counted.
const GPT_MACS: u64 = {
    let (t, c, ff, v) = (CTX as u64, 128, 512, VOCAB as u64);
    4 * (t * c * 3 * c + t * c * c + 2 * t * t * c + 2 * t * c * ff) + t * c * v
};
/// Useful flops of the GPT's forward pass over one sequence (2 per multiply-add).
const GPT_FLOPS: u64 = 2 * GPT_MACS;
/// Useful flops of one sequence's training step: the forward pass, then every product's
/// weight (or second operand's) gradient and input gradient, each as many multiply-adds as
/// the forward product.
const GPT_TRAIN_FLOPS: u64 = 3 * GPT_FLOPS;

/// `b` sequences of `CTX` seeded random token ids below `VOCAB`.
fn token_ids(seed: u64, b: usize) -> Vec<[u32; CTX]> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..b)
        .map(|_| std::array::from_fn(|_| rng.next_u32() % VOCAB as u32))
        .collect()
}

fn mlp(c: &mut Criterion) {
    let mut rng = StdRng::seed_from_u64(0);
    let mut model = Mlp::<f32>::new(&mut rng);
    let mut ws = Workspace::new();
    let mut group = c.benchmark_group("mlp_infer");
    for b in [1usize, 64] {
        let x = rows::<784>(1, b);
        let mut out = vec![[0.0f32; 10]; b];
        group.throughput(Throughput::Elements(MLP_FLOPS * b as u64));
        group.bench_function(BenchmarkId::from_parameter(b), |bench| {
            bench.iter(|| {
                model
                    .forward_into(black_box(&x), &mut out, &mut ws)
                    .unwrap();
                black_box(&mut out);
            })
        });
    }
    group.finish();

    // int8: the same perceptron quantized (`quantize_int8`), beside float32 in this run.
    // `forward` allocates its result, as a user's first call does; `forward_into` reuses a
    // workspace and an output buffer (`mlp_int8_infer` against `mlp_infer`).
    let q = model.quantize_int8().unwrap();
    let mut group = c.benchmark_group("mlp_int8_infer");
    for b in [1usize, 64] {
        let x = rows::<784>(1, b);
        let mut out = vec![[0.0f32; 10]; b];
        group.throughput(Throughput::Elements(MLP_FLOPS * b as u64));
        group.bench_function(BenchmarkId::from_parameter(b), |bench| {
            bench.iter(|| {
                q.forward_into(black_box(&x), &mut out, &mut ws).unwrap();
                black_box(&mut out);
            })
        });
    }
    group.finish();
    for (name, int8) in [("mlp_forward", false), ("mlp_int8_forward", true)] {
        let mut group = c.benchmark_group(name);
        for b in [1usize, 64] {
            let x = rows::<784>(1, b);
            group.throughput(Throughput::Elements(MLP_FLOPS * b as u64));
            group.bench_function(BenchmarkId::from_parameter(b), |bench| {
                bench.iter(|| {
                    if int8 {
                        black_box(q.forward(black_box(&x)).unwrap())
                    } else {
                        black_box(model.forward(black_box(&x)).unwrap())
                    }
                })
            });
        }
        group.finish();
    }

    let mut group = c.benchmark_group("mlp_train_adam");
    // Flat sampling: the same iteration count per sample, for calls of hundreds of µs.
    group.sampling_mode(SamplingMode::Flat).sample_size(50);
    let b = 64;
    let (x, t) = (rows::<784>(2, b), one_hot(b));
    let mut opt = Adam::new(1e-3);
    group.throughput(Throughput::Elements(MLP_TRAIN_FLOPS * b as u64));
    group.bench_function(BenchmarkId::from_parameter(b), |bench| {
        bench.iter(|| {
            model.zero_grad();
            let loss = model.loss_backward(black_box(&x), &t).unwrap();
            opt.step(&mut model).unwrap();
            black_box(loss)
        })
    });
    group.finish();
}

fn cnn(c: &mut Criterion) {
    let mut rng = StdRng::seed_from_u64(1);
    let mut model = Cnn::<f32>::new(&mut rng);
    let mut ws = Workspace::new();
    let mut group = c.benchmark_group("cnn_infer");
    let x = images(3, 1);
    let mut out = vec![[0.0f32; 10]; 1];
    group.throughput(Throughput::Elements(CNN_FLOPS));
    group.bench_function(BenchmarkId::from_parameter(1), |bench| {
        bench.iter(|| {
            model
                .forward_into(black_box(&x), &mut out, &mut ws)
                .unwrap();
            black_box(&mut out);
        })
    });
    group.finish();

    let mut group = c.benchmark_group("cnn_train_sgd");
    group.sampling_mode(SamplingMode::Flat).sample_size(50);
    let b = 32;
    let (x, t) = (images(4, b), one_hot(b));
    let mut opt = Sgd::new(0.01).momentum(0.9);
    group.bench_function(BenchmarkId::from_parameter(b), |bench| {
        bench.iter(|| {
            model.zero_grad();
            let loss = model.loss_backward(black_box(&x), &t).unwrap();
            opt.step(&mut model).unwrap();
            black_box(loss)
        })
    });
    group.finish();

    // the network of examples/mnist_cnn.rs, batch norm in training mode, SGD as there
    let mut model = CnnBn::<f32>::new(&mut StdRng::seed_from_u64(5));
    let mut group = c.benchmark_group("cnn_bn_train");
    group.sampling_mode(SamplingMode::Flat).sample_size(30);
    let b = 64;
    group.throughput(Throughput::Elements(b as u64 * CNN_BN_TRAIN_FLOPS));
    let (x, t) = (images(6, b), one_hot(b));
    let mut opt = Sgd::new(0.05).momentum(0.9);
    group.bench_function(BenchmarkId::from_parameter(b), |bench| {
        bench.iter(|| {
            model.zero_grad();
            let loss = model.loss_backward(black_box(&x), &t).unwrap();
            opt.step(&mut model).unwrap();
            black_box(loss)
        })
    });
    group.finish();
}

fn tiny(c: &mut Criterion) {
    let model = Tiny::<f32>::new(&mut StdRng::seed_from_u64(2));
    let mut ws = Workspace::new();
    let x = [[0.3f32, -0.7]];
    let mut out = [[0.0f32; 1]];
    let mut group = c.benchmark_group("tiny_infer");
    group.bench_function(BenchmarkId::from_parameter(1), |bench| {
        bench.iter(|| {
            model
                .forward_into(black_box(&x), &mut out, &mut ws)
                .unwrap();
            black_box(&mut out);
        })
    });
    group.finish();

    let mut group = c.benchmark_group("tiny_forward");
    group.bench_function(BenchmarkId::from_parameter(1), |bench| {
        bench.iter(|| black_box(model.forward(black_box(&x)).unwrap()))
    });
    group.bench_function("result_alloc", |bench| {
        bench.iter(|| {
            let x = black_box(&x);
            let mut out = Vec::with_capacity(x.len());
            out.resize(x.len(), [0.0f32; 1]);
            black_box(out)
        })
    });
    group.finish();
}

fn gpt(c: &mut Criterion) {
    let mut model = Gpt::<f32>::new(&mut StdRng::seed_from_u64(5));
    let mut ws = Workspace::new();
    let mut group = c.benchmark_group("gpt");
    let idx = token_ids(6, 1);
    let mut out = vec![[[0.0f32; VOCAB]; CTX]; 1];
    // both forward paths compute the same logits (up to rounding: their products may differ)
    model.forward_into(&idx, &mut out, &mut ws).unwrap();
    let logits = model.forward(&idx).unwrap();
    let flat = |v: &[[[f32; VOCAB]; CTX]]| v.as_flattened().as_flattened().to_vec();
    let gap = flat(&logits)
        .iter()
        .zip(flat(&out))
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    assert!(gap < 1e-4, "forward and forward_into differ by {gap}");
    group.throughput(Throughput::Elements(GPT_FLOPS));
    group.bench_function("forward/1", |bench| {
        bench.iter(|| model.forward(black_box(&idx)).unwrap())
    });
    group.bench_function("forward_into/1", |bench| {
        bench.iter(|| {
            model
                .forward_into(black_box(&idx), &mut out, &mut ws)
                .unwrap();
            black_box(&mut out);
        })
    });

    // Tens of ms per step: flat sampling, 20 samples (at least 20 steps per measurement).
    group.sampling_mode(SamplingMode::Flat).sample_size(20);
    let b = 12;
    let (idx, targets) = (token_ids(7, b), token_ids(8, b));
    let mut opt = AdamW::new(1e-3)
        .betas(0.9, 0.99)
        .weight_decay(0.1)
        .decay_matrices_only();
    group.throughput(Throughput::Elements(GPT_TRAIN_FLOPS * b as u64));
    group.bench_function(format!("train_step/{b}"), |bench| {
        bench.iter(|| {
            model.zero_grad();
            let loss = model.loss_backward(black_box(&idx), &targets).unwrap();
            clip_grad_norm(&mut model, 1.0);
            opt.step(&mut model).unwrap();
            black_box(loss)
        })
    });
    group.finish();
}

criterion_group!(benches, mlp, cnn, tiny, gpt);
criterion_main!(benches);
