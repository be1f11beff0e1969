//! The models, data and optimizers of `benches/candle.rs`: the workloads of the root crate's
//! `benches/models.rs` written with candle (`candle-core` and `candle-nn`), float32, CPU.
//!
//! - `Mlp`: dense 784→128, ReLU, dense 128→64, ReLU, dense 64→10;
//! - `Cnn`: conv 1→8 3×3 pad 1, ReLU, conv 8→16 3×3 stride 2 pad 1, ReLU, global average
//!   pool, dense 16→10 on 1×28×28;
//! - `Tiny`: dense 2→8, ReLU, dense 8→1;
//! - `Gpt`: the character-level GPT of the root crate's `examples/shared/gpt.rs`: token
//!   embedding and a `[64, 128]` position embedding, four pre-norm blocks of width 128 (layer
//!   norm, causal self-attention with 4 heads, written here from candle tensor ops on a
//!   packed q/k/v projection as PyTorch's `nn.MultiheadAttention`; layer norm, dense
//!   128→512, tanh GELU, dense 512→128; each added to the residual stream), a final layer
//!   norm and a dense 128→75 head without bias; trained by [`GptTrainer`] (cross-entropy over
//!   every position, gradient clipping at norm 1.0, AdamW with weight decay on matrices only).
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
use candle_nn::{
    conv2d, embedding, layer_norm, linear, linear_no_bias, AdamW, Conv2d, Conv2dConfig, Embedding,
    LayerNorm, Linear, Optimizer, ParamsAdamW, VarBuilder, VarMap,
};

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

/// The GPT's context (tokens per sequence), width, heads, feed-forward width, blocks and
/// vocabulary, as in the root crate's `examples/shared/gpt.rs`.
pub const GPT_CTX: usize = 64;
pub const GPT_EMB: usize = 128;
pub const GPT_HEADS: usize = 4;
pub const GPT_FF: usize = 512;
pub const GPT_LAYERS: usize = 4;
pub const GPT_VOCAB: usize = 75;
/// Useful flops of the GPT's forward pass over one sequence, as `GPT_FLOPS` of the root
/// crate's `benches/models.rs`: per block the q/k/v and output projections, the scores and
/// their product with v over all 64 × 64 pairs, the feed-forward layer; then the head.
pub const GPT_FLOPS: u64 = {
    let (t, c, ff, v) = (
        GPT_CTX as u64,
        GPT_EMB as u64,
        GPT_FF as u64,
        GPT_VOCAB as u64,
    );
    2 * (GPT_LAYERS as u64 * (t * c * 3 * c + t * c * c + 2 * t * t * c + 2 * t * c * ff)
        + t * c * v)
};
/// Useful flops of one sequence's training step: forward, and for every product both
/// gradients (`GPT_TRAIN_FLOPS` of `benches/models.rs`).
pub const GPT_TRAIN_FLOPS: u64 = 3 * GPT_FLOPS;

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

/// Layer norm over the last dimension. candle-nn's `LayerNorm::forward` and `softmax_last_dim`
/// are fused kernels without a backward pass (their results carry no gradient), so a model
/// built for training uses the composed versions (`layer_norm_slow`, `softmax`) instead;
/// inference uses the fused ones, as a candle user would.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Mode {
    Inference,
    Training,
}

fn norm(ln: &LayerNorm, x: &Tensor, mode: Mode) -> Result<Tensor> {
    match (mode, ln.bias()) {
        (Mode::Training, Some(bias)) => candle_nn::ops::layer_norm_slow(x, ln.weight(), bias, 1e-5),
        _ => ln.forward(x),
    }
}

fn softmax(x: &Tensor, mode: Mode) -> Result<Tensor> {
    match mode {
        Mode::Training => candle_nn::ops::softmax(x, D::Minus1),
        Mode::Inference => candle_nn::ops::softmax_last_dim(x),
    }
}

/// Causal multi-head self-attention as PyTorch's `nn.MultiheadAttention` computes it with a
/// mask above the diagonal: one packed `C → 3C` projection to queries, keys and values,
/// `softmax(q·kᵀ / √d + mask)·v` per head, the heads side by side, an output projection.
pub struct CausalSelfAttention {
    in_proj: Linear,
    out_proj: Linear,
}

impl CausalSelfAttention {
    pub fn new(vb: VarBuilder) -> Result<Self> {
        Ok(Self {
            in_proj: linear(GPT_EMB, 3 * GPT_EMB, vb.pp("in_proj"))?,
            out_proj: linear(GPT_EMB, GPT_EMB, vb.pp("out_proj"))?,
        })
    }

    /// `[B, T, C]` → `[B, T, C]`; `mask` is `[T, T]`, −∞ above the diagonal, 0 elsewhere.
    pub fn forward(&self, x: &Tensor, mask: &Tensor, mode: Mode) -> Result<Tensor> {
        let (b, t, c) = x.dims3()?;
        let d = c / GPT_HEADS;
        // [B, T, 3C] → [3, B, H, T, D]
        let qkv = x
            .apply(&self.in_proj)?
            .reshape((b, t, 3, GPT_HEADS, d))?
            .permute((2, 0, 3, 1, 4))?;
        let (q, k, v) = (
            qkv.get(0)?.contiguous()?,
            qkv.get(1)?.contiguous()?,
            qkv.get(2)?.contiguous()?,
        );
        let scores = (q.matmul(&k.t()?)? * (1.0 / (d as f64).sqrt()))?.broadcast_add(mask)?;
        softmax(&scores, mode)?
            .matmul(&v)?
            .transpose(1, 2)?
            .reshape((b, t, c))?
            .apply(&self.out_proj)
    }
}

/// One pre-norm transformer block.
pub struct Block {
    ln_1: LayerNorm,
    attn: CausalSelfAttention,
    ln_2: LayerNorm,
    fc: Linear,
    proj: Linear,
}

impl Block {
    pub fn new(vb: VarBuilder) -> Result<Self> {
        Ok(Self {
            ln_1: layer_norm(GPT_EMB, 1e-5, vb.pp("ln_1"))?,
            attn: CausalSelfAttention::new(vb.pp("attn"))?,
            ln_2: layer_norm(GPT_EMB, 1e-5, vb.pp("ln_2"))?,
            fc: linear(GPT_EMB, GPT_FF, vb.pp("fc"))?,
            proj: linear(GPT_FF, GPT_EMB, vb.pp("proj"))?,
        })
    }

    /// `x + attn(ln_1(x))`, then `x + proj(gelu(fc(ln_2(x))))` (tanh GELU).
    pub fn forward(&self, x: &Tensor, mask: &Tensor, mode: Mode) -> Result<Tensor> {
        let x = (x + self.attn.forward(&norm(&self.ln_1, x, mode)?, mask, mode)?)?;
        let h = norm(&self.ln_2, &x, mode)?.apply(&self.fc)?.gelu()?;
        x + h.apply(&self.proj)?
    }
}

/// The character-level GPT (see the crate doc).
pub struct Gpt {
    wte: Embedding,
    wpe: Tensor,
    h: Vec<Block>,
    ln_f: LayerNorm,
    lm_head: Linear,
    mask: Tensor,
    mode: Mode,
}

impl Gpt {
    pub fn new(vb: VarBuilder, mode: Mode) -> Result<Self> {
        let wpe = vb.get_with_hints(
            (GPT_CTX, GPT_EMB),
            "wpe",
            candle_nn::Init::Randn {
                mean: 0.0,
                stdev: 1.0,
            },
        )?;
        let mask: Vec<f32> = (0..GPT_CTX * GPT_CTX)
            .map(|i| {
                if i % GPT_CTX > i / GPT_CTX {
                    f32::NEG_INFINITY
                } else {
                    0.0
                }
            })
            .collect();
        Ok(Self {
            wte: embedding(GPT_VOCAB, GPT_EMB, vb.pp("wte"))?,
            wpe,
            h: (0..GPT_LAYERS)
                .map(|i| Block::new(vb.pp("h").pp(i)))
                .collect::<Result<_>>()?,
            ln_f: layer_norm(GPT_EMB, 1e-5, vb.pp("ln_f"))?,
            lm_head: linear_no_bias(GPT_EMB, GPT_VOCAB, vb.pp("lm_head"))?,
            mask: Tensor::from_vec(mask, (GPT_CTX, GPT_CTX), vb.device())?,
            mode,
        })
    }

    /// The cross-entropy of the next-token logits at every position of `idx` `[B, T]`
    /// against `targets` `[B, T]` (u32 ids), averaged over all `B·T` positions.
    pub fn loss(&self, idx: &Tensor, targets: &Tensor) -> Result<Tensor> {
        let logits = self.forward(idx)?;
        candle_nn::loss::cross_entropy(&logits.flatten_to(1)?, &targets.flatten_all()?)
    }
}

impl Module for Gpt {
    /// Token ids `[B, T]` (u32) → logits `[B, T, 75]`.
    fn forward(&self, idx: &Tensor) -> Result<Tensor> {
        let mut x = self.wte.forward(idx)?.broadcast_add(&self.wpe)?;
        for block in &self.h {
            x = block.forward(&x, &self.mask, self.mode)?;
        }
        norm(&self.ln_f, &x, self.mode)?.apply(&self.lm_head)
    }
}

/// The GPT's training step as the root crate's example makes it: loss, backward, the
/// gradients scaled to a total norm of at most `clip` (PyTorch's `clip_grad_norm_`, which
/// multiplies by `clip / (norm + 1e-6)` when that is below 1), then candle-nn's `AdamW` on
/// two groups: the parameters of two or more dimensions with weight decay, the others
/// without (candle-nn's `AdamW` has one decay for all its parameters).
pub struct GptTrainer {
    vars: Vec<Var>,
    decay: AdamW,
    no_decay: AdamW,
    clip: f64,
}

impl GptTrainer {
    pub fn new(vars: Vec<Var>, params: ParamsAdamW, clip: f64) -> Result<Self> {
        let (matrices, others): (Vec<Var>, Vec<Var>) =
            vars.iter().cloned().partition(|v| v.rank() >= 2);
        let no_decay = ParamsAdamW {
            weight_decay: 0.0,
            ..params.clone()
        };
        Ok(Self {
            vars,
            decay: AdamW::new(matrices, params)?,
            no_decay: AdamW::new(others, no_decay)?,
            clip,
        })
    }

    /// One step on a batch; returns the loss (before the update).
    pub fn step(&mut self, model: &Gpt, idx: &Tensor, targets: &Tensor) -> Result<Tensor> {
        let loss = model.loss(idx, targets)?;
        let mut grads = loss.backward()?;
        let squares = self
            .vars
            .iter()
            .filter_map(|v| grads.get(v).map(|g| g.sqr()?.sum_all()))
            .collect::<Result<Vec<_>>>()?;
        let norm = Tensor::stack(&squares, 0)?
            .sum_all()?
            .sqrt()?
            .to_scalar::<f32>()? as f64;
        let scale = self.clip / (norm + 1e-6);
        if scale < 1.0 {
            for v in &self.vars {
                if let Some(g) = grads.remove(v) {
                    grads.insert(v, (g * scale)?);
                }
            }
        }
        self.decay.step(&grads)?;
        self.no_decay.step(&grads)?;
        Ok(loss)
    }
}

/// `b` sequences of `GPT_CTX` seeded token ids below `GPT_VOCAB` (xorshift64*), `[b, 64]`
/// u32.
pub fn token_ids(seed: u64, b: usize) -> Result<Tensor> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let ids: Vec<u32> = (0..b * GPT_CTX)
        .map(|_| {
            s ^= s >> 12;
            s ^= s << 25;
            s ^= s >> 27;
            ((s.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 32) % GPT_VOCAB as u64) as u32
        })
        .collect();
    Tensor::from_vec(ids, (b, GPT_CTX), &Device::Cpu)
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
    fn gpt_fused_and_composed_layers_agree() -> Result<()> {
        // one VarMap: the second model gets the first one's parameters
        let varmap = VarMap::new();
        let vb = || VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
        let fused = Gpt::new(vb(), Mode::Inference)?;
        let composed = Gpt::new(vb(), Mode::Training)?;
        let idx = token_ids(1, 2)?;
        let (a, b) = (fused.forward(&idx)?, composed.forward(&idx)?);
        assert_eq!(a.dims(), [2, GPT_CTX, GPT_VOCAB]);
        let gap = (a - b)?.abs()?.max_all()?.to_scalar::<f32>()?;
        assert!(gap < 1e-4, "{gap}");
        Ok(())
    }

    #[test]
    fn gpt_gradients_reach_every_parameter() -> Result<()> {
        // candle's fused layer norm and softmax carry no gradient: Mode::Training avoids them
        let (model, vars) = trainable(|vb| Gpt::new(vb, Mode::Training))?;
        assert_eq!(vars.len(), 2 + 4 * 12 + 3);
        let grads = model
            .loss(&token_ids(3, 2)?, &token_ids(4, 2)?)?
            .backward()?;
        for v in &vars {
            let g = grads.get(v).expect("every parameter has a gradient");
            assert!(
                g.abs()?.max_all()?.to_scalar::<f32>()? > 0.0,
                "{:?}",
                v.dims()
            );
        }
        Ok(())
    }

    #[test]
    fn gpt_position_attends_to_none_after_it() -> Result<()> {
        // changing the last token changes no logits before the last position
        let (model, _) = trainable(|vb| Gpt::new(vb, Mode::Inference))?;
        let mut ids = token_ids(2, 1)?.flatten_all()?.to_vec1::<u32>()?;
        let a = model.forward(&Tensor::from_vec(ids.clone(), (1, GPT_CTX), &Device::Cpu)?)?;
        ids[GPT_CTX - 1] = (ids[GPT_CTX - 1] + 1) % GPT_VOCAB as u32;
        let b = model.forward(&Tensor::from_vec(ids, (1, GPT_CTX), &Device::Cpu)?)?;
        let head = |t: &Tensor| t.narrow(1, 0, GPT_CTX - 1);
        let gap = (head(&a)? - head(&b)?)?
            .abs()?
            .max_all()?
            .to_scalar::<f32>()?;
        assert_eq!(gap, 0.0);
        let last = (a.narrow(1, GPT_CTX - 1, 1)? - b.narrow(1, GPT_CTX - 1, 1)?)?
            .abs()?
            .max_all()?
            .to_scalar::<f32>()?;
        assert!(last > 0.0);
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
