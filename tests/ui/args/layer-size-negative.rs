// checks: a layer size that is not a number or a const (lower.rs)
use nanograd::prelude::*;

model! {
    pub struct Mlp {
        fc: Dense(-4 -> 2),
    }
    fn forward(x: [B, 4]) -> [B, 2] {
        fc(x)
    }
}

fn main() {}
