// checks: a Param called like a layer (lower.rs)
use nanograd::prelude::*;

model! {
    pub struct Net {
        scale: Param([4]),
    }
    fn forward(x: [B, 4]) -> [B, 4] {
        scale(x)
    }
}

fn main() {}
