// checks: an unknown layer kind with no close name (lower.rs)
use nanograd::prelude::*;

model! {
    pub struct Mlp {
        fc: Linear(4 -> 2),
    }
    fn forward(x: [B, 4]) -> [B, 2] {
        fc(x)
    }
}

fn main() {}
