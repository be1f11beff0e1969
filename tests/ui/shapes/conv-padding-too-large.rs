// checks: a kernel, stride or padding above 65536 (lower.rs)
use nanograd::prelude::*;

model! {
    pub struct Cnn {
        conv: Conv2d(1 -> 1, kernel = 3, padding = 70000),
    }
    fn forward(x: [B, 1, 8, 8]) -> [B, 1, 8, 8] {
        conv(x)
    }
}

fn main() {}
