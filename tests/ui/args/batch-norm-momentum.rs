// checks: a BatchNorm2d momentum outside [0, 1] (lower/layers.rs)
use nanograd::prelude::*;

model! {
    pub struct Net {
        bn: BatchNorm2d(2, momentum = 1.5),
    }
    fn forward(x: [B, 2, 4, 4]) -> [B, 2, 4, 4] {
        bn(x)
    }
}

fn main() {}
