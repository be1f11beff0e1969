//! The digit classifier that `mnist_cnn` trains: two convolution blocks with batch norm and a
//! dense layer. One declaration, included by the example, by `tests/quantized.rs` (which
//! loads the example's shipped weights into it) and by the benchmarks (`cnn_bn_train`), so
//! all three measure and load the same network.

use nanograd::prelude::*;

model! {
    /// Two convolution blocks and a dense classifier: 1x28x28 -> 16x14x14 -> 32x7x7 -> 10.
    pub struct Cnn {
        conv1: Conv2d(1 -> 16, kernel = 3, padding = 1),
        bn1: BatchNorm2d(16),
        pool1: MaxPool2d(kernel = 2),
        conv2: Conv2d(16 -> 32, kernel = 3, padding = 1),
        bn2: BatchNorm2d(32),
        pool2: MaxPool2d(kernel = 2),
        fc: Dense(1568 -> 10),
    }

    fn forward(x: [B, 1, 28, 28]) -> [B, 10] {
        let h: [B, 16, 14, 14] = pool1(relu(bn1(conv1(x))));
        let h: [B, 32, 7, 7] = pool2(relu(bn2(conv2(h))));
        fc(flatten(h))
    }

    fn loss(x: [B, 1, 28, 28], target: [B, 10]) -> [] {
        softmax_cross_entropy(forward(x), target)
    }
}
