//! Inference and training allocate nothing per call once warmed up, counted by a global
//! allocator (this test binary's own): `forward_into` with a reused `Workspace` and output
//! buffer, and a whole training step (`zero_grad`, `loss_backward`, `Optimizer::step`) after
//! the first one, which grows the model's workspace and allocates the optimizer's state.
//!
//! Every provider is covered, the default one included: its GEMM (`blas/blocked.rs`) packs
//! into per-thread buffers that the warm-up grows. `checks/user-alloc/` counts the same in a
//! crate outside this workspace, as a user's crate depends on nanograd.

#[path = "support/counting_alloc.rs"]
mod counting_alloc;

use counting_alloc::allocations_of;
use nanograd::assert_close;
use nanograd::prelude::*;
use nanograd::rand::{rngs::StdRng, SeedableRng};
use nanograd::testing::random_vec;

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
    /// A small CNN: conv, batch norm, relu, max pool, strided conv, global average pool, dense.
    pub struct Cnn {
        conv1: Conv2d(1 -> 8, kernel = 3, padding = 1),
        bn1: BatchNorm2d(8),
        pool: MaxPool2d(kernel = 2, stride = 2),
        conv2: Conv2d(8 -> 16, kernel = 3, stride = 2, padding = 1),
        fc: Dense(16 -> 10),
    }

    fn forward(x: [B, 1, 12, 12]) -> [B, 10] {
        let h: [B, 8, 6, 6] = pool(relu(bn1(conv1(x))));
        let h: [B, 16, 3, 3] = relu(conv2(h));
        fc(global_avg_pool2d(h))
    }

    fn loss(x: [B, 1, 12, 12], target: [B, 10]) -> [] {
        softmax_cross_entropy(forward(x), target)
    }
}

model! {
    const T: usize = 16;
    const C: usize = 64;
    /// A transformer block, large enough that its dense weights are packed.
    pub struct Block {
        ln_1: LayerNorm(C),
        attn: MultiHeadAttention(C, heads = 4, causal = true),
        ln_2: LayerNorm(C),
        fc: Dense(C -> 128),
        proj: Dense(128 -> C),
    }
    fn forward(x: [B, T, C]) -> [B, T, C] {
        let x = x + attn(ln_1(x));
        x + proj(gelu(fc(ln_2(x))))
    }
}

model! {
    const CTX: usize = 16;
    /// A small GPT: embeddings, two blocks, a head over 20 tokens.
    pub struct Gpt {
        wte: Embedding(20 -> 64),
        wpe: Param([CTX, 64]),
        h: [Block; 2],
        ln_f: LayerNorm(64),
        lm_head: Dense(64 -> 20, bias = false),
    }
    fn forward(idx: u32[B, CTX]) -> [B, CTX, 20] {
        let x = wte(idx) + wpe;
        lm_head(ln_f(h(x)))
    }
    fn loss(idx: u32[B, CTX], targets: u32[B, CTX]) -> [] {
        softmax_cross_entropy(forward(idx), targets)
    }
}

// ---------------------------------------------------------------------------------------
// data

/// `b` rows of seeded inputs in [-1, 1).
fn rows<T: Float, const N: usize>(seed: u64, b: usize) -> Vec<[T; N]> {
    let mut x = vec![[T::zero(); N]; b];
    x.as_flattened_mut()
        .copy_from_slice(&random_vec(seed, b * N, -1.0, 1.0));
    x
}

/// `b` one-hot rows of 10 classes.
fn one_hot(b: usize) -> Vec<[f32; 10]> {
    (0..b)
        .map(|i| {
            let mut r = [0.0; 10];
            r[(3 * i + 1) % 10] = 1.0;
            r
        })
        .collect()
}

/// `b` seeded single-channel 12x12 images.
fn images(seed: u64, b: usize) -> Vec<[[[f32; 12]; 12]; 1]> {
    let mut x = vec![[[[0.0; 12]; 12]; 1]; b];
    x.as_flattened_mut()
        .as_flattened_mut()
        .as_flattened_mut()
        .copy_from_slice(&random_vec(seed, b * 144, -1.0, 1.0));
    x
}

// ---------------------------------------------------------------------------------------
// inference

/// Calls `forward_into` once to warm `ws` up for `b` rows, then returns the allocations of
/// five more calls, after checking the output against the allocating `forward`. The second
/// call packs the dense weights into `ws` and the later ones read them packed (on AVX-512
/// CPUs), which adds in another order than `forward`'s unpacked product: equal to rounding.
fn mlp_inference_allocations<T: Float>(model: &Mlp<T>, ws: &mut Workspace<T>, b: usize) -> usize {
    let x = rows::<T, 784>(10 + b as u64, b);
    let mut out = vec![[T::zero(); 10]; b];
    model.forward_into(&x, &mut out, ws).unwrap();
    let (n, r) = allocations_of(|| (0..5).try_for_each(|_| model.forward_into(&x, &mut out, ws)));
    r.unwrap();
    assert_close!(
        out.as_flattened(),
        model.forward(&x).unwrap().as_flattened(),
        1e-5
    );
    n
}

#[test]
fn mlp_inference_at_batch_1_allocates_nothing() {
    let model = Mlp::<f32>::new(&mut StdRng::seed_from_u64(1));
    let mut ws = Workspace::new();
    let (n, _) = allocations_of(|| mlp_inference_allocations(&model, &mut ws, 1));
    assert!(
        n > 0,
        "the warm-up and the reference `forward` allocate (the counter counts)"
    );
    assert_eq!(mlp_inference_allocations(&model, &mut ws, 1), 0, "f32");
    let model = Mlp::<f64>::new(&mut StdRng::seed_from_u64(2));
    assert_eq!(
        mlp_inference_allocations(&model, &mut Workspace::new(), 1),
        0,
        "f64"
    );
}

#[test]
fn mlp_inference_at_batch_64_allocates_nothing() {
    let model = Mlp::<f32>::new(&mut StdRng::seed_from_u64(1));
    let n = mlp_inference_allocations(&model, &mut Workspace::new(), 64);
    assert_eq!(n, 0, "f32: forward_into allocated {n} times in 5 calls");
    let model = Mlp::<f64>::new(&mut StdRng::seed_from_u64(2));
    let n = mlp_inference_allocations(&model, &mut Workspace::new(), 64);
    assert_eq!(n, 0, "f64: forward_into allocated {n} times in 5 calls");
}

#[test]
fn a_workspace_grown_for_64_rows_serves_1_without_growing() {
    let model = Mlp::<f32>::new(&mut StdRng::seed_from_u64(3));
    let mut ws = Workspace::new();
    let mut out = vec![[0.0f32; 10]; 64];
    model.forward_into(&rows(4, 64), &mut out, &mut ws).unwrap();
    let capacity = ws.capacity();
    let x = rows::<f32, 784>(5, 1);
    let (n, r) = allocations_of(|| model.forward_into(&x, &mut out[..1], &mut ws));
    r.unwrap();
    assert_eq!(n, 0, "a smaller batch allocated {n} times");
    assert_eq!(ws.capacity(), capacity);
}

#[test]
fn cnn_eval_inference_allocates_nothing() {
    let mut model = Cnn::<f32>::new(&mut StdRng::seed_from_u64(4));
    model.set_eval_mode();
    let mut ws = Workspace::new();
    for b in [1, 16] {
        let x = images(20 + b as u64, b);
        let t = one_hot(b);
        let mut out = vec![[0.0f32; 10]; b];
        model.forward_into(&x, &mut out, &mut ws).unwrap();
        let (n, r) =
            allocations_of(|| (0..3).try_for_each(|_| model.forward_into(&x, &mut out, &mut ws)));
        r.unwrap();
        assert_eq!(n, 0, "batch {b}: CNN forward_into allocated {n} times");
        assert_close!(
            out.as_flattened(),
            model.forward(&x).unwrap().as_flattened(),
            0.0
        );
        // evaluating the loss in a reused workspace does not allocate either
        model.loss_into(&x, &t, &mut ws).unwrap();
        let (n, r) = allocations_of(|| model.loss_into(&x, &t, &mut ws));
        assert_eq!(r.unwrap(), model.loss(&x, &t).unwrap());
        assert_eq!(n, 0, "batch {b}: CNN loss_into allocated {n} times");
    }
}

// ---------------------------------------------------------------------------------------
// training

/// Runs `steps` training steps of `step`, the first as a warm-up, and asserts that the
/// others allocate nothing; returns the losses.
fn assert_steps_allocate_nothing(
    what: &str,
    steps: usize,
    mut step: impl FnMut() -> nanograd::Result<f32>,
) -> Vec<f32> {
    let (n, first) = allocations_of(&mut step);
    assert!(
        n > 0,
        "{what}: the first step allocates (the counter counts)"
    );
    let mut losses = vec![first.unwrap()];
    let mut rest = Vec::with_capacity(steps);
    let (n, r) = allocations_of(|| {
        (1..steps).try_for_each(|_| {
            rest.push(step()?);
            Ok::<(), Error>(())
        })
    });
    r.unwrap();
    assert_eq!(n, 0, "{what}: {} steps allocated {n} times", steps - 1);
    losses.extend(rest);
    assert!(
        losses[steps - 1] < losses[0],
        "{what}: training lowers the loss: {losses:?}"
    );
    losses
}

fn optimizers() -> Vec<(&'static str, Box<dyn Optimizer<f32>>)> {
    vec![
        ("Adam", Box::new(Adam::new(1e-3))),
        (
            "Adam with weight decay",
            Box::new(Adam::new(1e-3).weight_decay(1e-4)),
        ),
        ("Sgd with momentum", Box::new(Sgd::new(0.05).momentum(0.9))),
    ]
}

#[test]
fn mlp_training_step_allocates_nothing_after_the_first() {
    let x = rows::<f32, 784>(30, 64);
    let t = one_hot(64);
    for (name, mut opt) in optimizers() {
        let mut model = Mlp::<f32>::new(&mut StdRng::seed_from_u64(5));
        assert_steps_allocate_nothing(&format!("MLP, {name}"), 5, || {
            model.zero_grad();
            let loss = model.loss_backward(&x, &t)?;
            opt.step(&mut model)?;
            Ok(loss)
        });
    }
}

#[test]
fn cnn_training_step_allocates_nothing_after_the_first() {
    let x = images(40, 8);
    let t = one_hot(8);
    for (name, mut opt) in optimizers() {
        let mut model = Cnn::<f32>::new(&mut StdRng::seed_from_u64(6));
        assert!(model.is_training(), "batch norm uses batch statistics");
        assert_steps_allocate_nothing(&format!("CNN, {name}"), 5, || {
            model.zero_grad();
            let loss = model.loss_backward(&x, &t)?;
            opt.step(&mut model)?;
            Ok(loss)
        });
    }
}

/// `b` windows of 17 seeded token ids: the inputs, and the targets one step ahead.
fn tokens(seed: u64, b: usize) -> (Vec<[u32; 16]>, Vec<[u32; 16]>) {
    let v = random_vec::<f64>(seed, b * 17, 0.0, 20.0);
    let w: Vec<[u32; 17]> = v
        .chunks(17)
        .map(|c| std::array::from_fn(|i| c[i] as u32))
        .collect();
    (
        w.iter().map(|r| std::array::from_fn(|i| r[i])).collect(),
        w.iter()
            .map(|r| std::array::from_fn(|i| r[i + 1]))
            .collect(),
    )
}

#[test]
fn gpt_inference_allocates_nothing() {
    let model = Gpt::<f32>::new(&mut StdRng::seed_from_u64(7));
    let (idx, _) = tokens(50, 3);
    let mut out = vec![[[0.0f32; 20]; 16]; 3];
    let mut ws = Workspace::new();
    // the first call grows the workspace, the second packs the large dense weights
    for _ in 0..2 {
        model.forward_into(&idx, &mut out, &mut ws).unwrap();
    }
    let first = out.clone();
    let (n, r) =
        allocations_of(|| (0..3).try_for_each(|_| model.forward_into(&idx, &mut out, &mut ws)));
    r.unwrap();
    assert_eq!(n, 0, "GPT forward_into allocated {n} times");
    assert_eq!(out, first);
}

#[test]
fn gpt_training_step_allocates_nothing_after_the_first() {
    let (idx, targets) = tokens(51, 4);
    let mut model = Gpt::<f32>::new(&mut StdRng::seed_from_u64(8));
    let mut opt = AdamW::new(1e-3)
        .betas(0.9, 0.99)
        .weight_decay(0.1)
        .decay_matrices_only();
    assert_steps_allocate_nothing("GPT, AdamW on matrices with clipping", 5, || {
        model.zero_grad();
        let loss = model.loss_backward(&idx, &targets)?;
        nanograd::optim::clip_grad_norm(&mut model, 1.0);
        opt.step(&mut model)?;
        Ok(loss)
    });
}

#[test]
fn forward_allocates_only_its_result_from_the_second_call() {
    let mlp = Mlp::<f32>::new(&mut StdRng::seed_from_u64(9));
    let gpt = Gpt::<f32>::new(&mut StdRng::seed_from_u64(10));
    let x = rows::<f32, 784>(60, 64);
    let (idx, targets) = tokens(61, 2);
    // the first calls grow the thread's workspaces and pack the weights
    for _ in 0..2 {
        mlp.forward(&x).unwrap();
        gpt.forward(&idx).unwrap();
        gpt.loss(&idx, &targets).unwrap();
    }
    let (n, y) = allocations_of(|| mlp.forward(&x).unwrap());
    assert_eq!(
        n, 1,
        "MLP forward: {n} allocations, the result only expected"
    );
    assert_eq!(y.len(), 64);
    let (n, _) = allocations_of(|| gpt.forward(&idx).unwrap());
    assert_eq!(
        n, 1,
        "GPT forward: {n} allocations, the result only expected"
    );
    let (n, _) = allocations_of(|| gpt.loss(&idx, &targets).unwrap());
    assert_eq!(n, 0, "GPT loss returns a number: {n} allocations");
}

// ---------------------------------------------------------------------------------------
// int8 inference (`quantize_int8`)

/// The quantized MLP, CNN (batch norm folded into its convolution) and GPT (its head and
/// the dense layers of its blocks int8): `forward_into` allocates nothing once its workspace has grown,
/// at batch 1 and 64, and gives the same bits as `forward`.
#[test]
fn int8_inference_allocates_nothing() {
    let mut rng = StdRng::seed_from_u64(11);
    let mlp = Mlp::<f32>::new(&mut rng).quantize_int8().unwrap();
    let mut cnn = Cnn::<f32>::new(&mut rng);
    cnn.set_eval_mode();
    let cnn = cnn.quantize_int8().unwrap();
    let gpt = Gpt::<f32>::new(&mut rng).quantize_int8().unwrap();
    let mut int8 = vec!["lm_head.weight".to_string()];
    for i in 0..2 {
        for w in [
            "attn.in_proj_weight",
            "attn.out_proj.weight",
            "fc.weight",
            "proj.weight",
        ] {
            int8.push(format!("h.{i}.{w}"));
        }
    }
    assert_eq!(gpt.int8_weights(), int8);
    for b in [1usize, 64] {
        let x = rows::<f32, 784>(3, b);
        let mut ws = Workspace::new();
        let mut out = vec![[0f32; 10]; b];
        for _ in 0..2 {
            mlp.forward_into(&x, &mut out, &mut ws).unwrap();
        }
        let (n, r) = allocations_of(|| mlp.forward_into(&x, &mut out, &mut ws));
        r.unwrap();
        assert_eq!(n, 0, "int8 MLP at batch {b}");
        assert_eq!(out, mlp.forward(&x).unwrap());

        let x = images(4, b);
        for _ in 0..2 {
            cnn.forward_into(&x, &mut out, &mut ws).unwrap();
        }
        let (n, r) = allocations_of(|| cnn.forward_into(&x, &mut out, &mut ws));
        r.unwrap();
        assert_eq!(n, 0, "int8 CNN at batch {b}");
        assert_eq!(out, cnn.forward(&x).unwrap());

        let (idx, _) = tokens(5, b.min(4));
        let mut logits = vec![[[0f32; 20]; 16]; idx.len()];
        for _ in 0..2 {
            gpt.forward_into(&idx, &mut logits, &mut ws).unwrap();
        }
        let (n, r) = allocations_of(|| gpt.forward_into(&idx, &mut logits, &mut ws));
        r.unwrap();
        assert_eq!(n, 0, "int8 GPT at batch {}", idx.len());
        assert_eq!(logits, gpt.forward(&idx).unwrap());
    }
}
