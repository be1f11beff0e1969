// checks: batched matmul of two [B, n] values, which have no matrix dimensions (sequence_rules.rs)
use nanograd::prelude::*;

model! {
    pub struct Mlp {
        fc: Dense(4 -> 4),
    }
    fn forward(x: [B, 4]) -> [B, 4] {
        matmul(fc(x), x)
    }
}

fn main() {}
