// checks: a causal flag that is not true or false
use nanograd::prelude::*;

model! {
    pub struct A {
        p: Param([16]),
    }
    fn forward(q: [B, 8, 16]) -> [B, 8, 16] {
        attention(q * p, q, q, causal = 1)
    }
}

fn main() {}
