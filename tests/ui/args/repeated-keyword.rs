// checks: a keyword given twice (lower.rs)
use nanograd::prelude::*;

model! {
    pub struct Cnn {
        conv: Conv2d(1 -> 4, kernel = 3, kernel = 5),
    }
    fn forward(x: [B, 1, 8, 8]) -> [B, 4, 6, 6] {
        conv(x)
    }
}

fn main() {}
