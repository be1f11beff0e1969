//! The workloads of the root crate's `benches/models.rs` in candle (`candle-core` and
//! `candle-nn` on the CPU), float32, one thread, with the same benchmark ids, so that
//! `scripts/bench-compare.sh` can set them beside nanograd, PyTorch and ONNX Runtime:
//!
//! - `mlp_infer/{1,64}`: the MLP 784-128-64-10 (ReLU) on plain tensors (no `Var`, no graph);
//! - `mlp_train_adam/64`: forward, softmax cross-entropy against one-hot targets, backward
//!   and candle-nn's `AdamW` with weight decay 0 (Adam, lr 1e-3);
//! - `cnn_infer/1`: conv 1→8 3×3 pad 1, ReLU, conv 8→16 3×3 stride 2 pad 1, ReLU, global
//!   average pool, dense 16→10 on 1×28×28;
//! - `cnn_train_sgd/32`: one training step of that CNN, SGD lr 0.01 momentum 0.9
//!   (`SgdMomentum`: PyTorch's update in candle tensor ops, candle-nn's `SGD` has none);
//! - `tiny_infer/1`: dense 2→8, ReLU, dense 8→1 at batch 1;
//! - `gpt/train_step/12`: one training step of the character-level GPT at batch 12
//!   (`GptTrainer`: cross-entropy, backward, clipping at norm 1.0, AdamW lr 1e-3, betas
//!   0.9/0.99, weight decay 0.1 on matrices only); `gpt/forward/1`: its forward pass over one
//!   sequence of 64 tokens (fused layer norm and softmax, no graph).
//!
//! Calls are plain, as a user writes them, without `Device::Cpu.with_context` (which runs the
//! work inside candle's own rayon pool): tried here, around each call it added some 10 µs
//! (`tiny_infer/1` 1.4 → 12 µs), around the whole run it made `mlp_train_adam/64` about 4×
//! slower while `cnn_infer/1` gained a fifth.
//!
//! Inputs are built once, outside the timed loops. Before timing, every workload is checked
//! once (output shapes; training loss lower after a few steps) and candle is held to one
//! thread, checked by candle's own setting and by CPU time over wall time (see the crate doc
//! in `src/lib.rs`).
//!
//! ```sh
//! cargo bench --manifest-path benches/candle/Cargo.toml -- --warm-up-time 1 --measurement-time 3
//! ```

use candle_core::{Module, Result, Tensor};
use candle_nn::{AdamW, Optimizer, ParamsAdamW};
use criterion::{BenchmarkId, Criterion, SamplingMode, Throughput};
use nanograd_bench_candle::{
    cpu_per_wall, frozen, one_hot, single_thread, softmax_cross_entropy, token_ids, train_losses,
    trainable, uniform, Cnn, Gpt, GptTrainer, Mlp, Mode, SgdMomentum, SgdMomentumConfig, Tiny,
    CNN_FLOPS, GPT_CTX, GPT_FLOPS, GPT_TRAIN_FLOPS, GPT_VOCAB, MLP_FLOPS, MLP_TRAIN_FLOPS,
};
use std::hint::black_box;

/// Adam with lr 1e-3 and PyTorch's defaults: candle-nn's `AdamW` without weight decay.
fn adam() -> ParamsAdamW {
    ParamsAdamW {
        lr: 1e-3,
        weight_decay: 0.0,
        ..Default::default()
    }
}

/// The GPT example's AdamW: lr 1e-3, betas 0.9/0.99, weight decay 0.1 (on matrices only:
/// `GptTrainer` gives the other parameters a second AdamW without decay).
fn gpt_adamw() -> ParamsAdamW {
    ParamsAdamW {
        lr: 1e-3,
        beta1: 0.9,
        beta2: 0.99,
        weight_decay: 0.1,
        ..Default::default()
    }
}

fn sgd_momentum() -> SgdMomentumConfig {
    SgdMomentumConfig {
        lr: 0.01,
        momentum: 0.9,
    }
}

/// One training step: forward, loss, backward (fresh gradients) and the optimizer's update.
fn train_step(model: &impl Module, opt: &mut impl Optimizer, x: &Tensor, t: &Tensor) -> Tensor {
    let loss = softmax_cross_entropy(&model.forward(x).unwrap(), t).unwrap();
    opt.backward_step(&loss).unwrap();
    loss
}

/// Runs each workload once on fresh models and checks what it computes, then checks that
/// the busiest workloads keep one core busy, not more.
fn check() -> Result<()> {
    let mlp = frozen(Mlp::new)?;
    for b in [1, 64] {
        assert_eq!(mlp.forward(&uniform(1, &[b, 784])?)?.dims(), [b, 10]);
    }
    let cnn = frozen(Cnn::new)?;
    assert_eq!(cnn.forward(&uniform(3, &[1, 1, 28, 28])?)?.dims(), [1, 10]);
    let tiny = frozen(Tiny::new)?;
    assert_eq!(tiny.forward(&uniform(5, &[1, 2])?)?.dims(), [1, 1]);

    let (x, t) = (uniform(2, &[64, 784])?, one_hot(64)?);
    let (mlp_train, vars) = trainable(Mlp::new)?;
    let losses = train_losses(&mlp_train, &mut AdamW::new(vars, adam())?, &x, &t, 5)?;
    assert!(losses[4] < losses[0], "mlp_train_adam: loss {losses:?}");
    let (x, t) = (uniform(4, &[32, 1, 28, 28])?, one_hot(32)?);
    let (cnn_train, vars) = trainable(Cnn::new)?;
    let mut opt = SgdMomentum::new(vars, sgd_momentum())?;
    let losses = train_losses(&cnn_train, &mut opt, &x, &t, 5)?;
    assert!(losses[4] < losses[0], "cnn_train_sgd: loss {losses:?}");

    let gpt = frozen(|vb| Gpt::new(vb, Mode::Inference))?;
    let idx = token_ids(6, 1)?;
    let logits = gpt.forward(&idx)?;
    assert_eq!(logits.dims(), [1, GPT_CTX, GPT_VOCAB]);
    let (idx, targets) = (token_ids(7, 12)?, token_ids(8, 12)?);
    let (gpt_train, vars) = trainable(|vb| Gpt::new(vb, Mode::Training))?;
    let mut gpt_opt = GptTrainer::new(vars, gpt_adamw(), 1.0)?;
    let losses = (0..5)
        .map(|_| gpt_opt.step(&gpt_train, &idx, &targets)?.to_scalar::<f32>())
        .collect::<Result<Vec<_>>>()?;
    assert!(losses[4] < losses[0], "gpt/train_step: loss {losses:?}");

    let x64 = uniform(1, &[64, 784])?;
    for (name, ratio) in [
        (
            "cnn_train_sgd/32",
            cpu_per_wall(0.5, || drop(train_step(&cnn_train, &mut opt, &x, &t))),
        ),
        (
            "gpt/train_step/12",
            cpu_per_wall(0.5, || {
                drop(gpt_opt.step(&gpt_train, &idx, &targets).unwrap());
            }),
        ),
        (
            "mlp_infer/64",
            cpu_per_wall(0.5, || drop(mlp.forward(&x64).unwrap())),
        ),
    ] {
        if let Some(ratio) = ratio {
            eprintln!("candle: {name}: {ratio:.2} CPU s per wall s (one thread: ≤ 1)");
            assert!(ratio <= 1.25, "{name} keeps {ratio:.2} cores busy, not one");
        }
    }
    Ok(())
}

fn mlp(c: &mut Criterion) {
    let model = frozen(Mlp::new).unwrap();
    let mut group = c.benchmark_group("mlp_infer");
    for b in [1usize, 64] {
        let x = uniform(1, &[b, 784]).unwrap();
        group.throughput(Throughput::Elements(MLP_FLOPS * b as u64));
        group.bench_function(BenchmarkId::from_parameter(b), |bench| {
            bench.iter(|| model.forward(black_box(&x)).unwrap())
        });
    }
    group.finish();

    let mut group = c.benchmark_group("mlp_train_adam");
    group.sampling_mode(SamplingMode::Flat).sample_size(50);
    let b = 64;
    let (x, t) = (uniform(2, &[b, 784]).unwrap(), one_hot(b).unwrap());
    let (model, vars) = trainable(Mlp::new).unwrap();
    let mut opt = AdamW::new(vars, adam()).unwrap();
    group.throughput(Throughput::Elements(MLP_TRAIN_FLOPS * b as u64));
    group.bench_function(BenchmarkId::from_parameter(b), |bench| {
        bench.iter(|| train_step(&model, &mut opt, black_box(&x), &t))
    });
    group.finish();
}

fn cnn(c: &mut Criterion) {
    let model = frozen(Cnn::new).unwrap();
    let mut group = c.benchmark_group("cnn_infer");
    let x = uniform(3, &[1, 1, 28, 28]).unwrap();
    group.throughput(Throughput::Elements(CNN_FLOPS));
    group.bench_function(BenchmarkId::from_parameter(1), |bench| {
        bench.iter(|| model.forward(black_box(&x)).unwrap())
    });
    group.finish();

    let mut group = c.benchmark_group("cnn_train_sgd");
    group.sampling_mode(SamplingMode::Flat).sample_size(50);
    let b = 32;
    let (x, t) = (uniform(4, &[b, 1, 28, 28]).unwrap(), one_hot(b).unwrap());
    let (model, vars) = trainable(Cnn::new).unwrap();
    let mut opt = SgdMomentum::new(vars, sgd_momentum()).unwrap();
    group.bench_function(BenchmarkId::from_parameter(b), |bench| {
        bench.iter(|| train_step(&model, &mut opt, black_box(&x), &t))
    });
    group.finish();
}

fn tiny(c: &mut Criterion) {
    let model = frozen(Tiny::new).unwrap();
    let x = Tensor::new(&[[0.3f32, -0.7]], &candle_core::Device::Cpu).unwrap();
    let mut group = c.benchmark_group("tiny_infer");
    group.bench_function(BenchmarkId::from_parameter(1), |bench| {
        bench.iter(|| model.forward(black_box(&x)).unwrap())
    });
    group.finish();
}

fn gpt(c: &mut Criterion) {
    let model = frozen(|vb| Gpt::new(vb, Mode::Inference)).unwrap();
    let mut group = c.benchmark_group("gpt");
    let idx = token_ids(6, 1).unwrap();
    group.throughput(Throughput::Elements(GPT_FLOPS));
    group.bench_function("forward/1", |bench| {
        bench.iter(|| model.forward(black_box(&idx)).unwrap())
    });

    group.sampling_mode(SamplingMode::Flat).sample_size(20);
    let b = 12;
    let (idx, targets) = (token_ids(7, b).unwrap(), token_ids(8, b).unwrap());
    let (model, vars) = trainable(|vb| Gpt::new(vb, Mode::Training)).unwrap();
    let mut opt = GptTrainer::new(vars, gpt_adamw(), 1.0).unwrap();
    group.throughput(Throughput::Elements(GPT_TRAIN_FLOPS * b as u64));
    group.bench_function(format!("train_step/{b}"), |bench| {
        bench.iter(|| opt.step(&model, black_box(&idx), &targets).unwrap())
    });
    group.finish();
}

/// `criterion_main!` with candle held to one thread and the workloads checked first.
fn main() {
    single_thread();
    check().unwrap();
    let mut c = Criterion::default().configure_from_args();
    mlp(&mut c);
    cnn(&mut c);
    tiny(&mut c);
    gpt(&mut c);
    c.final_summary();
}
