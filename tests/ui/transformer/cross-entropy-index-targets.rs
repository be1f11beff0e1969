// checks: integer targets whose shape does not fit the logits
use nanograd::prelude::*;

model! {
    pub struct Lm {
        wte: Embedding(65 -> 65),
    }
    fn forward(idx: u32[B, 8]) -> [B, 8, 65] {
        wte(idx)
    }
    fn loss(idx: u32[B, 8], targets: u32[B]) -> [] {
        softmax_cross_entropy(forward(idx), targets)
    }
}

fn main() {}
