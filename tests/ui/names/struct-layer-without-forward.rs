// checks: a struct layer whose model has no one-input `forward` (lib.rs callback)
use nanograd::prelude::*;

model! {
    pub struct Block {
        a: Dense(4 -> 4),
    }
    fn forward(x: [B, 4], y: [B, 4]) -> [B, 4] {
        a(x) + y
    }
}

model! {
    pub struct Net {
        blk: Block,
    }
    fn forward(x: [B, 4]) -> [B, 4] {
        blk(x)
    }
}

fn main() {}
