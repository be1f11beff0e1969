// checks: a result declared u32
use nanograd::prelude::*;

model! {
    pub struct Lm {
        wte: Embedding(65 -> 32),
    }
    fn forward(idx: u32[B, 8]) -> u32[B, 8, 32] {
        wte(idx)
    }
}

fn main() {}
