// checks: a batch dimension in the return shape of a fn with no batched input (lower.rs)
use nanograd::prelude::*;

model! {
    pub struct Mlp {
        fc: Dense(4 -> 2),
    }
    fn forward(x: [4]) -> [B, 2] {
        fc(x)
    }
}

fn main() {}
