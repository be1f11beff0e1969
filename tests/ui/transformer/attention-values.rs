// checks: attention with fewer values than keys
use nanograd::prelude::*;

model! {
    pub struct A {
        p: Param([16]),
    }
    fn forward(q: [B, 8, 16], k: [B, 8, 16], v: [B, 6, 16]) -> [B, 8, 16] {
        attention(q * p, k, v, causal = true)
    }
}

fn main() {}
