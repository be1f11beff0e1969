//! The models, data and optimizers of `benches/candle.rs`: the workloads of the root crate's
//! `benches/models.rs` written with candle (`candle-core` and `candle-nn`), float32, CPU.
//!
//! - `Mlp`: dense 784→128, ReLU, dense 128→64, ReLU, dense 64→10;
//! - `Cnn`: conv 1→8 3×3 pad 1, ReLU, conv 8→16 3×3 stride 2 pad 1, ReLU, global average
//!   pool, dense 16→10 on 1×28×28;
//! - `Tiny`: dense 2→8, ReLU, dense 8→1.
//!
//! Parameters use candle-nn's own initialisation (`candle_nn::linear`, `candle_nn::conv2d`).
//! Training models hold `Var`s (built from a `VarMap`); inference models hold plain tensors
//! (detached copies), so that no op records a backward graph: candle's no-grad mode.
//!
//! # One thread
//!
//! candle's CPU backend runs work on three pools, all sized from the environment:
//! rayon's global pool (`RAYON_NUM_THREADS`: the convolutions' `into_par_iter`), candle's
//! own rayon pool and the `gemm` crate's `Parallelism::Rayon(n)` (both
//! `candle_core::utils::get_num_threads()`, which reads `RAYON_NUM_THREADS`; at 1, matmul runs
//! with `Parallelism::None`), and a barrier pool for large element-wise maps
//! (`CANDLE_NUM_THREADS`, else `RAYON_NUM_THREADS`; n − 1 workers). [`single_thread`] sets both
//! variables to 1 before candle is first used and checks `get_num_threads() == 1`; the bench
//! then measures, with [`cpu_per_wall`], the process's CPU time over wall time while running
//! the CNN training step (whose convolutions are split over the batch when more threads are
//! allowed) and the MLP at batch 64, and fails above 1.25. With 2 threads allowed instead
//! (the variables set to 2) the same check reads 1.58 for the CNN step on this 2-core machine.

use candle_core::{DType, Device, Module, Result, Tensor, Var, D};
use candle_nn::{conv2d, linear, Conv2d, Conv2dConfig, Linear, Optimizer, VarBuilder, VarMap};

// Useful flops of the workloads, copied from the root crate's `benches/common/mod.rs`
// (`MLP_MACS`, `MLP_FLOPS`, `MLP_TRAIN_FLOPS`, `CNN_FLOPS`), so that criterion's throughput
// reads as GFLOP/s as in `benches/models.rs`.

/// Multiply-adds of one MLP sample's forward pass: the three dense layers.
pub const MLP_MACS: u64 = 784 * 128 + 128 * 64 + 64 * 10;
/// Useful flops of one MLP sample's forward pass (2 per multiply-add).
pub const MLP_FLOPS: u64 = 2 * MLP_MACS;
/// Useful flops of one MLP sample's training step: forward, weight gradients, and the input
/// gradients of `fc2` and `fc3`.
pub const MLP_TRAIN_FLOPS: u64 = 2 * (3 * MLP_MACS - 784 * 128);
/// Useful flops of one CNN sample's forward pass: conv1, conv2 and the dense layer.
pub const CNN_FLOPS: u64 = 2 * (8 * 28 * 28 * 9 + 16 * 14 * 14 * 8 * 9 + 16 * 10);

/// The MLP: 784-128-64-10 with ReLU.
pub struct Mlp {
    fc1: Linear,
    fc2: Linear,
    fc3: Linear,
}

impl Mlp {
    pub fn new(vb: VarBuilder) -> Result<Self> {
        Ok(Self {
            fc1: linear(784, 128, vb.pp("fc1"))?,
            fc2: linear(128, 64, vb.pp("fc2"))?,
            fc3: linear(64, 10, vb.pp("fc3"))?,
        })
    }
}

impl Module for Mlp {
    /// `[B, 784]` → `[B, 10]`.
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        x.apply(&self.fc1)?
            .relu()?
            .apply(&self.fc2)?
            .relu()?
            .apply(&self.fc3)
    }
}

/// The small CNN, on 1×28×28 images.
pub struct Cnn {
    conv1: Conv2d,
    conv2: Conv2d,
    fc: Linear,
}

impl Cnn {
    pub fn new(vb: VarBuilder) -> Result<Self> {
        let pad1 = Conv2dConfig {
            padding: 1,
            ..Default::default()
        };
        let pad1_stride2 = Conv2dConfig {
            padding: 1,
            stride: 2,
            ..Default::default()
        };
        Ok(Self {
            conv1: conv2d(1, 8, 3, pad1, vb.pp("conv1"))?,
            conv2: conv2d(8, 16, 3, pad1_stride2, vb.pp("conv2"))?,
            fc: linear(16, 10, vb.pp("fc"))?,
        })
    }
}

impl Module for Cnn {
    /// `[B, 1, 28, 28]` → `[B, 8, 28, 28]` → `[B, 16, 14, 14]` → `[B, 16]` → `[B, 10]`.
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        x.apply(&self.conv1)?
            .relu()?
            .apply(&self.conv2)?
            .relu()?
            .mean((2, 3))?
            .apply(&self.fc)
    }
}

/// The seed's regression network: dense 2→8, ReLU, dense 8→1.
pub struct Tiny {
    hidden: Linear,
    out: Linear,
}

impl Tiny {
    pub fn new(vb: VarBuilder) -> Result<Self> {
        Ok(Self {
            hidden: linear(2, 8, vb.pp("hidden"))?,
            out: linear(8, 1, vb.pp("out"))?,
        })
    }
}

impl Module for Tiny {
    /// `[B, 2]` → `[B, 1]`.
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        x.apply(&self.hidden)?.relu()?.apply(&self.out)
    }
}

/// A freshly initialised model for training, and its parameters.
pub fn trainable<M>(build: impl Fn(VarBuilder) -> Result<M>) -> Result<(M, Vec<Var>)> {
    let varmap = VarMap::new();
    let model = build(VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu))?;
    Ok((model, varmap.all_vars()))
}

/// A freshly initialised model for inference: its parameters are plain tensors, not `Var`s,
/// so its forward pass records no backward graph.
pub fn frozen<M>(build: impl Fn(VarBuilder) -> Result<M>) -> Result<M> {
    let varmap = VarMap::new();
    build(VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu))?;
    let tensors = varmap
        .data()
        .lock()
        .expect("no thread panicked holding the VarMap")
        .iter()
        .map(|(name, var)| (name.clone(), var.as_tensor().detach()))
        .collect();
    build(VarBuilder::from_tensors(tensors, DType::F32, &Device::Cpu))
}

/// Mean over the batch of `-Σ target · log_softmax(logits)`: the cross-entropy of `[B, C]`
/// logits against `[B, C]` probability targets (one-hot here), as nanograd's
/// `softmax_cross_entropy` and PyTorch's `cross_entropy` with probability targets.
pub fn softmax_cross_entropy(logits: &Tensor, target: &Tensor) -> Result<Tensor> {
    (candle_nn::ops::log_softmax(logits, D::Minus1)? * target)?
        .sum(1)?
        .mean(0)?
        .neg()
}

/// SGD with momentum as PyTorch computes it (no dampening, no Nesterov):
/// `v ← momentum · v + g`, `p ← p − lr · v`, `v` starting at zero. candle-nn's `SGD` has no
/// momentum; this is the same update written with candle tensor ops.
pub struct SgdMomentum {
    vars: Vec<(Var, Tensor)>,
    lr: f64,
    momentum: f64,
}

/// The configuration of [`SgdMomentum`]: learning rate and momentum.
pub struct SgdMomentumConfig {
    pub lr: f64,
    pub momentum: f64,
}

impl Optimizer for SgdMomentum {
    type Config = SgdMomentumConfig;

    fn new(vars: Vec<Var>, config: SgdMomentumConfig) -> Result<Self> {
        let vars = vars
            .into_iter()
            .map(|var| {
                let velocity = var.zeros_like()?;
                Ok((var, velocity))
            })
            .collect::<Result<_>>()?;
        Ok(Self {
            vars,
            lr: config.lr,
            momentum: config.momentum,
        })
    }

    fn step(&mut self, grads: &candle_core::backprop::GradStore) -> Result<()> {
        for (var, velocity) in &mut self.vars {
            if let Some(g) = grads.get(var) {
                *velocity = velocity.affine(self.momentum, 0.0)?.add(g)?;
                var.set(&var.sub(&velocity.affine(self.lr, 0.0)?)?)?;
            }
        }
        Ok(())
    }

    fn learning_rate(&self) -> f64 {
        self.lr
    }

    fn set_learning_rate(&mut self, lr: f64) {
        self.lr = lr
    }
}

/// `n` seeded values in [-1, 1) (xorshift64*), as a tensor of `shape`.
pub fn uniform(seed: u64, shape: &[usize]) -> Result<Tensor> {
    let n = shape.iter().product();
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let values: Vec<f32> = (0..n)
        .map(|_| {
            s ^= s >> 12;
            s ^= s << 25;
            s ^= s >> 27;
            let bits = s.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 40; // 24 random bits
            bits as f32 / (1u64 << 23) as f32 - 1.0
        })
        .collect();
    Tensor::from_vec(values, shape, &Device::Cpu)
}

/// `b` one-hot targets of 10 classes, class `(3i + 1) mod 10` for row `i` (as the root
/// crate's `benches/common/mod.rs` and `benches/reference/bench_reference.py`).
pub fn one_hot(b: usize) -> Result<Tensor> {
    let mut t = vec![0.0f32; b * 10];
    for i in 0..b {
        t[i * 10 + (3 * i + 1) % 10] = 1.0;
    }
    Tensor::from_vec(t, (b, 10), &Device::Cpu)
}

/// Restricts candle to one thread (see the crate doc): sets `RAYON_NUM_THREADS` and
/// `CANDLE_NUM_THREADS` to 1 and checks that candle reads 1. Call it first thing in `main`,
/// before any other thread exists and before candle builds its pools.
pub fn single_thread() {
    std::env::set_var("RAYON_NUM_THREADS", "1");
    std::env::set_var("CANDLE_NUM_THREADS", "1");
    assert_eq!(candle_core::utils::get_num_threads(), 1);
}

/// CPU time of this process (all threads, user + system) over wall time while `f` runs
/// repeatedly for at least `seconds`: about 1 when one thread works, up to the number of
/// cores when several do. Linux only (`/proc/self/stat`); `None` elsewhere.
pub fn cpu_per_wall(seconds: f64, mut f: impl FnMut()) -> Option<f64> {
    let cpu_start = process_cpu_seconds()?;
    let start = std::time::Instant::now();
    while start.elapsed().as_secs_f64() < seconds {
        f();
    }
    let wall = start.elapsed().as_secs_f64();
    Some((process_cpu_seconds()? - cpu_start) / wall)
}

/// `utime + stime` of `/proc/self/stat`, in seconds (clock ticks of 1/100 s, the fixed
/// USER_HZ of Linux's user interface).
fn process_cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name, which is in parentheses and may hold spaces: state is
    // field 3, utime field 14 and stime field 15.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(ticks as f64 / 100.0)
}

/// The losses of `steps` training steps of `model` on one batch, each step
/// `opt.backward_step(loss)` (candle computes fresh gradients on every backward, so there
/// is nothing to zero).
pub fn train_losses(
    model: &impl Module,
    opt: &mut impl Optimizer,
    x: &Tensor,
    t: &Tensor,
    steps: usize,
) -> Result<Vec<f32>> {
    (0..steps)
        .map(|_| {
            let loss = softmax_cross_entropy(&model.forward(x)?, t)?;
            opt.backward_step(&loss)?;
            loss.to_scalar::<f32>()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_nn::{AdamW, ParamsAdamW};

    fn adam() -> ParamsAdamW {
        ParamsAdamW {
            lr: 1e-3,
            weight_decay: 0.0,
            ..Default::default()
        }
    }

    #[test]
    fn models_have_the_output_shapes() -> Result<()> {
        let mlp = frozen(Mlp::new)?;
        assert_eq!(mlp.forward(&uniform(1, &[64, 784])?)?.dims(), [64, 10]);
        let cnn = frozen(Cnn::new)?;
        assert_eq!(cnn.forward(&uniform(3, &[1, 1, 28, 28])?)?.dims(), [1, 10]);
        let tiny = frozen(Tiny::new)?;
        assert_eq!(tiny.forward(&uniform(5, &[1, 2])?)?.dims(), [1, 1]);
        Ok(())
    }

    #[test]
    fn frozen_models_record_no_graph() -> Result<()> {
        let mlp = frozen(Mlp::new)?;
        assert!(!mlp.forward(&uniform(1, &[1, 784])?)?.track_op());
        let (mlp, _) = trainable(Mlp::new)?;
        assert!(mlp.forward(&uniform(1, &[1, 784])?)?.track_op());
        Ok(())
    }

    #[test]
    fn cross_entropy_of_uniform_logits_is_log_classes() -> Result<()> {
        // softmax of equal logits is 1/10 everywhere, so the loss is -log(1/10) = ln 10.
        let loss = softmax_cross_entropy(
            &Tensor::zeros((4, 10), DType::F32, &Device::Cpu)?,
            &one_hot(4)?,
        )?;
        assert!((loss.to_scalar::<f32>()? - 10f32.ln()).abs() < 1e-6);
        Ok(())
    }

    #[test]
    fn sgd_momentum_matches_pytorch_by_hand() -> Result<()> {
        // loss = 2p, so g = 2 at every step. Step 1: v = 2, p = 1 - 0.01·2 = 0.98.
        // Step 2: v = 0.9·2 + 2 = 3.8, p = 0.98 - 0.01·3.8 = 0.942.
        let p = Var::new(&[1.0f32], &Device::Cpu)?;
        let mut opt = SgdMomentum::new(
            vec![p.clone()],
            SgdMomentumConfig {
                lr: 0.01,
                momentum: 0.9,
            },
        )?;
        let mut values = vec![];
        for _ in 0..2 {
            opt.backward_step(&(p.as_tensor() * 2.0)?.sum_all()?)?;
            values.push(p.as_tensor().to_vec1::<f32>()?[0]);
        }
        assert!((values[0] - 0.98).abs() < 1e-6, "{values:?}");
        assert!((values[1] - 0.942).abs() < 1e-6, "{values:?}");
        Ok(())
    }

    #[test]
    fn adamw_without_weight_decay_takes_an_adam_step() -> Result<()> {
        // Adam's first step is lr · m̂ / (√v̂ + ε) = lr · g / (|g| + ε) ≈ lr for g > 0.
        let p = Var::new(&[1.0f32], &Device::Cpu)?;
        let mut opt = AdamW::new(vec![p.clone()], adam())?;
        opt.backward_step(&(p.as_tensor() * 3.0)?.sum_all()?)?;
        assert!((p.as_tensor().to_vec1::<f32>()?[0] - 0.999).abs() < 1e-6);
        Ok(())
    }

    #[test]
    fn training_lowers_the_loss() -> Result<()> {
        let (mlp, vars) = trainable(Mlp::new)?;
        let mut opt = AdamW::new(vars, adam())?;
        let losses = train_losses(&mlp, &mut opt, &uniform(2, &[64, 784])?, &one_hot(64)?, 5)?;
        assert!(losses[4] < losses[0], "{losses:?}");

        let (cnn, vars) = trainable(Cnn::new)?;
        let config = SgdMomentumConfig {
            lr: 0.01,
            momentum: 0.9,
        };
        let mut opt = SgdMomentum::new(vars, config)?;
        let losses = train_losses(
            &cnn,
            &mut opt,
            &uniform(4, &[32, 1, 28, 28])?,
            &one_hot(32)?,
            5,
        )?;
        assert!(losses[4] < losses[0], "{losses:?}");
        Ok(())
    }
}
