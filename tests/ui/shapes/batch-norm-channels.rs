// checks: a batch norm whose channel count differs from its input's (lower.rs)
use nanograd::prelude::*;

model! {
    pub struct Cnn {
        conv: Conv2d(1 -> 8, kernel = 3, padding = 1),
        bn: BatchNorm2d(16),
    }
    fn forward(x: [B, 1, 8, 8]) -> [B, 8, 8, 8] {
        bn(conv(x))
    }
}

fn main() {}
