// checks: a pooling window larger than its padded input (lower.rs)
use nanograd::prelude::*;

model! {
    pub struct Net {
        pool: MaxPool2d(kernel = 4),
    }
    fn forward(x: [B, 1, 3, 3]) -> [B, 1, 1, 1] {
        pool(x)
    }
}

fn main() {}
