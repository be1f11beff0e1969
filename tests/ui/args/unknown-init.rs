// checks: an unknown initialiser close to a known one (lower.rs)
use nanograd::prelude::*;

model! {
    pub struct Net {
        scale: Param([4], init = xavir),
    }
    fn forward(x: [B, 4]) -> [B, 4] {
        x * scale
    }
}

fn main() {}
