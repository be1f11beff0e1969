// checks: a layer array of a built-in layer
use nanograd::prelude::*;

model! {
    pub struct Net {
        h: [Dense; 2],
    }
    fn forward(x: [B, 8]) -> [B, 8] {
        h(x)
    }
}

fn main() {}
