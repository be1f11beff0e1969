// checks: an unknown const in a layer size (lower.rs)
use nanograd::prelude::*;

model! {
    const HIDDEN: usize = 16;
    pub struct Mlp {
        fc: Dense(4 -> HIDEN),
    }
    fn forward(x: [B, 4]) -> [B, 16] {
        fc(x)
    }
}

fn main() {}
