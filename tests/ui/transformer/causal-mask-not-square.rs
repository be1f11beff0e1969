// checks: a causal mask on scores that are not square
use nanograd::prelude::*;

model! {
    pub struct M {
        p: Param([8]),
    }
    fn forward(s: [B, 4, 6, 8]) -> [B, 4, 6, 8] {
        causal_mask(s * p)
    }
}

fn main() {}
