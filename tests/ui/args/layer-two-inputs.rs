// checks: a layer called with more than one input (lower.rs)
use nanograd::prelude::*;

model! {
    pub struct Mlp {
        fc: Dense(4 -> 4),
    }
    fn forward(x: [B, 4], y: [B, 4]) -> [B, 4] {
        fc(x, y)
    }
}

fn main() {}
