// checks: a known initialiser with the wrong arguments (lower.rs)
use nanograd::prelude::*;

model! {
    pub struct Net {
        scale: Param([4], init = normal(0.0, 0.02)),
    }
    fn forward(x: [B, 4]) -> [B, 4] {
        x * scale
    }
}

fn main() {}
