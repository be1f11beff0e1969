// checks: an index past the end of a layer array
use nanograd::prelude::*;

model! {
    pub struct Block {
        fc: Dense(8 -> 8),
    }
    fn forward(x: [B, 8]) -> [B, 8] {
        fc(x)
    }
}

model! {
    pub struct Net {
        h: [Block; 2],
    }
    fn forward(x: [B, 8]) -> [B, 8] {
        h[2](x)
    }
}

fn main() {}
