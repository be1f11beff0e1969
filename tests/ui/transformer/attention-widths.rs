// checks: attention whose queries and keys differ in width
use nanograd::prelude::*;

model! {
    pub struct A {
        p: Param([16]),
    }
    fn forward(q: [B, 4, 8, 16], k: [B, 4, 8, 32], v: [B, 4, 8, 16]) -> [B, 4, 8, 16] {
        attention(q * p, k, v)
    }
}

fn main() {}
