// checks: a LayerNorm called on another width
use nanograd::prelude::*;

model! {
    pub struct Norm {
        ln: LayerNorm(64),
    }
    fn forward(x: [B, 16, 32]) -> [B, 16, 32] {
        ln(x)
    }
}

fn main() {}
