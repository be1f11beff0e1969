// checks: an initialiser called through a path (lower.rs)
use nanograd::prelude::*;

model! {
    pub struct Net {
        scale: Param([4], init = nn::normal(0.02)),
    }
    fn forward(x: [B, 4]) -> [B, 4] {
        x * scale
    }
}

fn main() {}
