//! Whole models, float32, one thread: the workloads of the "Speed" issue, measured against
//! PyTorch and ONNX Runtime by `scripts/bench-compare.sh` (the reference side is
//! `benches/reference/bench_reference.py`, same models, same batch sizes).
//!
//! - `mlp_infer/{1,64}`: MLP 784-128-64-10 (ReLU), `forward_into` with a reused `Workspace`
//!   and output buffer (the allocation-free path);
//! - `mlp_train_adam/64`: one training step, `zero_grad` + `loss_backward`
//!   (`softmax_cross_entropy`) + `Adam::step` (lr 1e-3);
//! - `cnn_infer/1`: conv 1→8 3×3 pad 1, ReLU, conv 8→16 3×3 stride 2 pad 1, ReLU, global
//!   average pool, dense 16→10 on 1×28×28;
//! - `cnn_train_sgd/32`: one training step of that CNN, SGD lr 0.01 momentum 0.9;
//! - `tiny_infer/1`: dense 2→8, ReLU, dense 8→1 at batch 1 (the per-call overhead).
//!
//! The MLP and CNN benchmarks set criterion's throughput to their useful floating-point
//! operations per call (see `MLP_FLOPS`, `CNN_FLOPS`), so `Gelem/s` reads as GFLOP/s.
//!
//! ```sh
//! cargo bench --bench models -- --warm-up-time 1 --measurement-time 3
//! ```

mod common;

use common::{images, one_hot, rows, Cnn, Mlp, Tiny, CNN_FLOPS, MLP_FLOPS, MLP_TRAIN_FLOPS};
use criterion::{
    criterion_group, criterion_main, BenchmarkId, Criterion, SamplingMode, Throughput,
};
use nanograd::prelude::*;
use nanograd::rand::{rngs::StdRng, SeedableRng};
use std::hint::black_box;

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
}

criterion_group!(benches, mlp, cnn, tiny);
criterion_main!(benches);
