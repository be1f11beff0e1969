//! ResNet-18 for 3x32x32 images (the CIFAR variant of He et al.: a 3x3 stem, no stem pool)
//! in one `model!` block: 20 convolutions, each followed by batch norm, 8 basic blocks with
//! residual `+`, 1x1 convolution shortcuts where the shape changes, global average pooling,
//! a dense classifier to 10 classes: 11,173,962 parameters, as PyTorch's model of this shape.
//!
//! The file is also the workload of `scripts/compile-time.sh`, which times how long
//! `cargo check` takes to expand and check this model.
//!
//! Run: `cargo run --release --example resnet18`.

use std::time::Instant;

use nanograd::prelude::*;
use nanograd::rand::{rngs::StdRng, Rng, RngExt, SeedableRng};

model! {
    /// The number of classes (`scripts/compile-time.sh` edits this line to time a rebuild).
    pub const CLASSES: usize = 10;

    /// ResNet-18, CIFAR variant: stages of 64, 128, 256, 512 channels at 32, 16, 8, 4 pixels.
    pub struct ResNet18 {
        conv1: Conv2d(3 -> 64, kernel = 3, padding = 1, bias = false),
        bn1: BatchNorm2d(64),

        // stage 1: 64 channels, 32x32
        l1b1_conv1: Conv2d(64 -> 64, kernel = 3, padding = 1, bias = false),
        l1b1_bn1: BatchNorm2d(64),
        l1b1_conv2: Conv2d(64 -> 64, kernel = 3, padding = 1, bias = false),
        l1b1_bn2: BatchNorm2d(64),
        l1b2_conv1: Conv2d(64 -> 64, kernel = 3, padding = 1, bias = false),
        l1b2_bn1: BatchNorm2d(64),
        l1b2_conv2: Conv2d(64 -> 64, kernel = 3, padding = 1, bias = false),
        l1b2_bn2: BatchNorm2d(64),

        // stage 2: 128 channels, 16x16
        l2b1_conv1: Conv2d(64 -> 128, kernel = 3, stride = 2, padding = 1, bias = false),
        l2b1_bn1: BatchNorm2d(128),
        l2b1_conv2: Conv2d(128 -> 128, kernel = 3, padding = 1, bias = false),
        l2b1_bn2: BatchNorm2d(128),
        l2b1_down: Conv2d(64 -> 128, kernel = 1, stride = 2, bias = false),
        l2b1_down_bn: BatchNorm2d(128),
        l2b2_conv1: Conv2d(128 -> 128, kernel = 3, padding = 1, bias = false),
        l2b2_bn1: BatchNorm2d(128),
        l2b2_conv2: Conv2d(128 -> 128, kernel = 3, padding = 1, bias = false),
        l2b2_bn2: BatchNorm2d(128),

        // stage 3: 256 channels, 8x8
        l3b1_conv1: Conv2d(128 -> 256, kernel = 3, stride = 2, padding = 1, bias = false),
        l3b1_bn1: BatchNorm2d(256),
        l3b1_conv2: Conv2d(256 -> 256, kernel = 3, padding = 1, bias = false),
        l3b1_bn2: BatchNorm2d(256),
        l3b1_down: Conv2d(128 -> 256, kernel = 1, stride = 2, bias = false),
        l3b1_down_bn: BatchNorm2d(256),
        l3b2_conv1: Conv2d(256 -> 256, kernel = 3, padding = 1, bias = false),
        l3b2_bn1: BatchNorm2d(256),
        l3b2_conv2: Conv2d(256 -> 256, kernel = 3, padding = 1, bias = false),
        l3b2_bn2: BatchNorm2d(256),

        // stage 4: 512 channels, 4x4
        l4b1_conv1: Conv2d(256 -> 512, kernel = 3, stride = 2, padding = 1, bias = false),
        l4b1_bn1: BatchNorm2d(512),
        l4b1_conv2: Conv2d(512 -> 512, kernel = 3, padding = 1, bias = false),
        l4b1_bn2: BatchNorm2d(512),
        l4b1_down: Conv2d(256 -> 512, kernel = 1, stride = 2, bias = false),
        l4b1_down_bn: BatchNorm2d(512),
        l4b2_conv1: Conv2d(512 -> 512, kernel = 3, padding = 1, bias = false),
        l4b2_bn1: BatchNorm2d(512),
        l4b2_conv2: Conv2d(512 -> 512, kernel = 3, padding = 1, bias = false),
        l4b2_bn2: BatchNorm2d(512),

        fc: Dense(512 -> CLASSES),
    }

    fn forward(x: [B, 3, 32, 32]) -> [B, CLASSES] {
        let h: [B, 64, 32, 32] = relu(bn1(conv1(x)));

        let r = relu(l1b1_bn1(l1b1_conv1(h)));
        let h = relu(l1b1_bn2(l1b1_conv2(r)) + h);
        let r = relu(l1b2_bn1(l1b2_conv1(h)));
        let h: [B, 64, 32, 32] = relu(l1b2_bn2(l1b2_conv2(r)) + h);

        let r = relu(l2b1_bn1(l2b1_conv1(h)));
        let h = relu(l2b1_bn2(l2b1_conv2(r)) + l2b1_down_bn(l2b1_down(h)));
        let r = relu(l2b2_bn1(l2b2_conv1(h)));
        let h: [B, 128, 16, 16] = relu(l2b2_bn2(l2b2_conv2(r)) + h);

        let r = relu(l3b1_bn1(l3b1_conv1(h)));
        let h = relu(l3b1_bn2(l3b1_conv2(r)) + l3b1_down_bn(l3b1_down(h)));
        let r = relu(l3b2_bn1(l3b2_conv1(h)));
        let h: [B, 256, 8, 8] = relu(l3b2_bn2(l3b2_conv2(r)) + h);

        let r = relu(l4b1_bn1(l4b1_conv1(h)));
        let h = relu(l4b1_bn2(l4b1_conv2(r)) + l4b1_down_bn(l4b1_down(h)));
        let r = relu(l4b2_bn1(l4b2_conv1(h)));
        let h: [B, 512, 4, 4] = relu(l4b2_bn2(l4b2_conv2(r)) + h);

        fc(global_avg_pool2d(h))
    }

    fn loss(x: [B, 3, 32, 32], target: [B, CLASSES]) -> [] {
        softmax_cross_entropy(forward(x), target)
    }
}

/// `n` images of uniform noise in [-1, 1).
fn random_images(n: usize, rng: &mut impl Rng) -> Vec<[[[f32; 32]; 32]; 3]> {
    let mut images = vec![[[[0.0f32; 32]; 32]; 3]; n];
    let pixels = images.as_flattened_mut().as_flattened_mut();
    for v in pixels.as_flattened_mut() {
        *v = rng.random_range(-1.0..1.0);
    }
    images
}

fn main() -> Result<()> {
    let mut rng = StdRng::seed_from_u64(18);
    let t = Instant::now();
    let mut model = ResNet18::<f32>::new(&mut rng);
    let build = t.elapsed();
    println!("{}", model.summary());
    println!("built in {:.1} ms", build.as_secs_f64() * 1e3);

    let x = random_images(2, &mut rng);
    let mut target = [[0.0f32; CLASSES]; 2];
    target[0][3] = 1.0;
    target[1][7] = 1.0;

    // training mode: batch norm normalises with the statistics of this batch
    let t = Instant::now();
    let logits = model.forward(&x)?;
    let forward = t.elapsed();
    for (i, row) in logits.iter().enumerate() {
        println!("logits[{i}] = {row:.4?}");
    }
    println!("forward, batch 2: {:.1} ms", forward.as_secs_f64() * 1e3);

    model.zero_grad();
    let t = Instant::now();
    let loss = model.loss_backward(&x, &target)?;
    let backward = t.elapsed();
    let mut grad_sq = 0.0f64;
    model.visit_params(&mut |_, p| {
        grad_sq += p.grad().iter().map(|&g| f64::from(g).powi(2)).sum::<f64>();
    });
    println!("loss = {loss:.4}, gradient norm = {:.4}", grad_sq.sqrt());
    println!(
        "loss_backward (forward + backward), batch 2: {:.1} ms",
        backward.as_secs_f64() * 1e3
    );
    Ok(())
}
