// checks: a name that is both a layer and a fn (lower.rs)
use nanograd::prelude::*;

model! {
    pub struct Mlp {
        fc: Dense(4 -> 4),
    }
    fn forward(x: [B, 4]) -> [B, 4] {
        fc(x)
    }
    fn fc(x: [B, 4]) -> [B, 4] {
        relu(x)
    }
}

fn main() {}
