// checks: a name after the batch dimension that is not a const (lower.rs)
use nanograd::prelude::*;

model! {
    pub struct Mlp {
        fc: Dense(4 -> 2),
    }
    fn forward(x: [B, N]) -> [B, 2] {
        fc(x)
    }
}

fn main() {}
