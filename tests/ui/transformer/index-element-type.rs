// checks: an element type other than u32 in front of a shape
use nanograd::prelude::*;

model! {
    pub struct Lm {
        wte: Embedding(65 -> 32),
    }
    fn forward(idx: i64[B, 8]) -> [B, 8, 32] {
        wte(idx)
    }
}

fn main() {}
