// checks: an embedding called on values instead of u32 ids
use nanograd::prelude::*;

model! {
    pub struct Lm {
        wte: Embedding(65 -> 32),
    }
    fn forward(x: [B, 8]) -> [B, 8, 32] {
        wte(x)
    }
}

fn main() {}
