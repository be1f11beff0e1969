// checks: a layer array whose block changes the shape
use nanograd::prelude::*;

model! {
    pub struct Shrink {
        fc: Dense(8 -> 4),
    }
    fn forward(x: [B, 8]) -> [B, 4] {
        fc(x)
    }
}

model! {
    pub struct Net {
        h: [Shrink; 2],
    }
    fn forward(x: [B, 8]) -> [B, 4] {
        h(x)
    }
}

fn main() {}
