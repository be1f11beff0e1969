// checks: a LayerNorm eps the layer would refuse (lower/layers.rs)
use nanograd::prelude::*;

model! {
    pub struct Norm {
        ln: LayerNorm(8, eps = 0.0),
    }
    fn forward(x: [B, 8]) -> [B, 8] {
        ln(x)
    }
}

fn main() {}
