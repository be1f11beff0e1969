// checks: indexing a layer that is not an array
use nanograd::prelude::*;

model! {
    pub struct Net {
        fc: Dense(8 -> 8),
    }
    fn forward(x: [B, 8]) -> [B, 8] {
        fc[0](x)
    }
}

fn main() {}
