//! The models and data of the speed benchmarks, shared by `models.rs` (whole models) and
//! `kernels.rs` (the kernels those models call, one by one).

#![allow(dead_code)]

use nanograd::prelude::*;
use nanograd::testing::random_vec;

model! {
    /// The MLP of the issue: 784-128-64-10 with ReLU.
    pub struct Mlp {
        fc1: Dense(784 -> 128),
        fc2: Dense(128 -> 64),
        fc3: Dense(64 -> 10),
    }

    fn forward(x: [B, 784]) -> [B, 10] {
        fc3(relu(fc2(relu(fc1(x)))))
    }

    fn loss(x: [B, 784], target: [B, 10]) -> [] {
        softmax_cross_entropy(forward(x), target)
    }
}

model! {
    /// The small CNN of the issue, on 1×28×28 images.
    pub struct Cnn {
        conv1: Conv2d(1 -> 8, kernel = 3, padding = 1),
        conv2: Conv2d(8 -> 16, kernel = 3, stride = 2, padding = 1),
        fc: Dense(16 -> 10),
    }

    fn forward(x: [B, 1, 28, 28]) -> [B, 10] {
        let h: [B, 8, 28, 28] = relu(conv1(x));
        let h: [B, 16, 14, 14] = relu(conv2(h));
        fc(global_avg_pool2d(h))
    }

    fn loss(x: [B, 1, 28, 28], target: [B, 10]) -> [] {
        softmax_cross_entropy(forward(x), target)
    }
}

/// The network of `examples/mnist_cnn.rs` (`cnn_bn_train`): conv 1→16, batch norm, relu,
/// 2x2 max pool, conv 16→32, batch norm, relu, 2x2 max pool, dense 1568→10.
#[path = "../../examples/shared/cnn.rs"]
mod mnist_cnn;
pub use mnist_cnn::Cnn as CnnBn;

model! {
    /// The seed's regression network: dense 2→8, ReLU, dense 8→1.
    pub struct Tiny {
        hidden: Dense(2 -> 8),
        out: Dense(8 -> 1),
    }

    fn forward(x: [B, 2]) -> [B, 1] {
        out(relu(hidden(x)))
    }
}

/// Multiply-adds of one MLP sample's forward pass: the three dense layers.
pub const MLP_MACS: u64 = 784 * 128 + 128 * 64 + 64 * 10;
/// Useful flops of one MLP sample's forward pass (2 per multiply-add; biases and ReLU not
/// counted).
pub const MLP_FLOPS: u64 = 2 * MLP_MACS;
/// Useful flops of one MLP sample's training step: the forward pass, the weight gradients
/// (`dW = dYᵀ·X`, as many multiply-adds as the forward) and the input gradients of `fc2`
/// and `fc3` (the input gradient of `fc1` is not needed and not computed).
pub const MLP_TRAIN_FLOPS: u64 = 2 * (3 * MLP_MACS - 784 * 128);
/// Useful flops of one CNN sample's forward pass: conv1 (8·28·28 outputs of 1·3·3
/// multiply-adds), conv2 (16·14·14 outputs of 8·3·3) and the dense layer.
pub const CNN_FLOPS: u64 = 2 * (8 * 28 * 28 * 9 + 16 * 14 * 14 * 8 * 9 + 16 * 10);

/// Multiply-adds of one `CnnBn` sample's forward pass: conv1 (16·28·28 outputs of 1·3·3),
/// conv2 (32·14·14 outputs of 16·3·3) and the dense layer 1568→10.
pub const CNN_BN_MACS: u64 = 16 * 28 * 28 * 9 + 32 * 14 * 14 * 16 * 9 + 1568 * 10;
/// Useful flops of one `CnnBn` training sample: the forward products, then the backward
/// ones (conv1's weight gradient only, its input is the data; conv2's and the dense layer's
/// weight and input gradients). Batch norm, relu and pooling are not counted.
pub const CNN_BN_TRAIN_FLOPS: u64 =
    2 * (CNN_BN_MACS + 16 * 28 * 28 * 9 + 2 * (32 * 14 * 14 * 16 * 9 + 1568 * 10));

/// `b` rows of seeded inputs in [-1, 1).
pub fn rows<const N: usize>(seed: u64, b: usize) -> Vec<[f32; N]> {
    let mut x = vec![[0.0; N]; b];
    x.as_flattened_mut()
        .copy_from_slice(&random_vec(seed, b * N, -1.0, 1.0));
    x
}

/// `b` seeded single-channel 28×28 images in [-1, 1).
pub fn images(seed: u64, b: usize) -> Vec<[[[f32; 28]; 28]; 1]> {
    let mut x = vec![[[[0.0; 28]; 28]; 1]; b];
    x.as_flattened_mut()
        .as_flattened_mut()
        .as_flattened_mut()
        .copy_from_slice(&random_vec(seed, b * 28 * 28, -1.0, 1.0));
    x
}

/// `b` one-hot targets of 10 classes.
pub fn one_hot(b: usize) -> Vec<[f32; 10]> {
    (0..b)
        .map(|i| {
            let mut r = [0.0; 10];
            r[(3 * i + 1) % 10] = 1.0;
            r
        })
        .collect()
}
