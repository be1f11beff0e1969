// checks: a conv whose unfolded input would exceed 2^40 elements (lower.rs)
use nanograd::prelude::*;

model! {
    pub struct Cnn {
        conv: Conv2d(16 -> 1, kernel = 3, padding = 65536),
    }
    fn forward(x: [B, 16, 4, 4]) -> [B, 1, 131074, 131074] {
        conv(x)
    }
}

fn main() {}
