// checks: a pooling padding more than half its kernel (lower.rs)
use nanograd::prelude::*;

model! {
    pub struct Net {
        pool: MaxPool2d(kernel = 2, padding = 2),
    }
    fn forward(x: [B, 1, 8, 8]) -> [B, 1, 6, 6] {
        pool(x)
    }
}

fn main() {}
