//! The digit classifier that `mnist_mlp` trains and `infer` ships: a 784-128-64-10
//! perceptron. One declaration, included by both (and by `tests/examples_smoke.rs`), so the
//! weights one writes are the weights the other reads.

use nanograd::prelude::*;

model! {
    /// Three-layer perceptron for 28x28 digits flattened to 784 pixels in [0, 1].
    pub struct Mlp {
        fc1: Dense(784 -> 128),
        fc2: Dense(128 -> 64),
        fc3: Dense(64 -> 10),
    }

    fn forward(x: [B, 784]) -> [B, 10] {
        let h = relu(fc1(x));
        let h: [B, 64] = relu(fc2(h));
        fc3(h)
    }

    fn probabilities(x: [B, 784]) -> [B, 10] {
        softmax(forward(x))
    }

    fn loss(x: [B, 784], target: [B, 10]) -> [] {
        softmax_cross_entropy(forward(x), target)
    }
}
