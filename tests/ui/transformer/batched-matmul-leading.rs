// checks: batched matmul whose leading dimensions differ
use nanograd::prelude::*;

model! {
    pub struct Scores {
        p: Param([8]),
    }
    fn forward(q: [B, 4, 8, 16], k: [B, 2, 16, 8]) -> [B, 4, 8, 8] {
        matmul(q, k) * p
    }
}

fn main() {}
