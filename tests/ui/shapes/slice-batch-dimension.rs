// checks: slice of a value whose first dimension is the batch (lower.rs)
use nanograd::prelude::*;

model! {
    pub struct Mlp {
        fc: Dense(4 -> 4),
    }
    fn forward(x: [B, 4]) -> [B, 4] {
        fc(slice(x, 0, 2))
    }
}

fn main() {}
