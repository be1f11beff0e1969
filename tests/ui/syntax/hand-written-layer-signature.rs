// checks: a struct layer's `@layer` signature with a named inner dimension (lower.rs)
use nanograd::prelude::*;

model! {
    @layer Block [B, N] -> [B, 4] (0, 0);
    pub struct Net {
        blk: Block,
    }
    fn forward(x: [B, 4]) -> [B, 4] {
        blk(x)
    }
}

fn main() {}
