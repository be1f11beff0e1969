use nanograd::prelude::*;

model! {
    pub struct Block {
        a: Dense(64 -> 64),
    }
    fn forward(x: [B, 64]) -> [B, 64] {
        relu(a(x))
    }
}

model! {
    pub struct Net {
        inp: Dense(10 -> 32),
        blk: Block,
    }
    fn forward(x: [B, 10]) -> [B, 64] {
        blk(inp(x))
    }
}

fn main() {}
