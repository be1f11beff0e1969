// checks: a fn that returns its u32 input
use nanograd::prelude::*;

model! {
    pub struct Lm {
        wte: Embedding(65 -> 32),
    }
    fn forward(idx: u32[B, 8]) -> [B, 8, 32] {
        wte(idx)
    }
    fn ids(idx: u32[B, 8]) -> [B, 8] {
        idx
    }
}

fn main() {}
