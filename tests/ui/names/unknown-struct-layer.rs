use nanograd::prelude::*;

model! {
    pub struct Block {
        a: Dense(4 -> 4),
    }
    fn forward(x: [B, 4]) -> [B, 4] {
        relu(a(x))
    }
}

model! {
    pub struct Net {
        blk: Blokc,
    }
    fn forward(x: [B, 4]) -> [B, 4] {
        blk(x)
    }
}

fn main() {}
