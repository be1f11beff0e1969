// checks: a layer size of zero (lower.rs)
use nanograd::prelude::*;

model! {
    pub struct Mlp {
        fc: Dense(4 -> 0),
    }
    fn forward(x: [B, 4]) -> [B, 2] {
        fc(x)
    }
}

fn main() {}
