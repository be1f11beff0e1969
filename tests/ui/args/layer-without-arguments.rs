// checks: a built-in layer kind with no parentheses (lower.rs)
use nanograd::prelude::*;

model! {
    pub struct Mlp {
        fc: Dense,
    }
    fn forward(x: [B, 4]) -> [B, 2] {
        fc(x)
    }
}

fn main() {}
