// checks: an unknown initialiser with no close name (lower.rs)
use nanograd::prelude::*;

model! {
    pub struct Net {
        scale: Param([4], init = glorot),
    }
    fn forward(x: [B, 4]) -> [B, 4] {
        x * scale
    }
}

fn main() {}
