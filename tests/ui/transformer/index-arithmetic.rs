// checks: arithmetic on u32 indices
use nanograd::prelude::*;

model! {
    pub struct Lm {
        wte: Embedding(65 -> 32),
    }
    fn forward(idx: u32[B, 8]) -> [B, 8, 32] {
        wte(idx) + idx
    }
}

fn main() {}
