// checks: batched matmul whose inner dimensions differ
use nanograd::prelude::*;

model! {
    pub struct Scores {
        p: Param([4]),
    }
    fn forward(q: [B, 4, 8, 16], k: [B, 4, 8, 16]) -> [B, 4, 8, 8] {
        matmul(q, k) * p
    }
}

fn main() {}
