// checks: a conv layer applied to a value that is not an image (lower.rs)
use nanograd::prelude::*;

model! {
    pub struct Cnn {
        conv: Conv2d(1 -> 8, kernel = 3),
    }
    fn forward(x: [B, 784]) -> [B, 8, 26, 26] {
        conv(x)
    }
}

fn main() {}
