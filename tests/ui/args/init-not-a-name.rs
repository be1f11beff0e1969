// checks: an initialiser that is neither a name nor a call (lower.rs)
use nanograd::prelude::*;

model! {
    pub struct Net {
        scale: Param([4], init = 0.0),
    }
    fn forward(x: [B, 4]) -> [B, 4] {
        x * scale
    }
}

fn main() {}
