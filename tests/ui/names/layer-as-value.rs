// checks: a layer used as a value instead of called (lower.rs)
use nanograd::prelude::*;

model! {
    pub struct Mlp {
        fc: Dense(4 -> 4),
    }
    fn forward(x: [B, 4]) -> [B, 4] {
        relu(fc)
    }
}

fn main() {}
