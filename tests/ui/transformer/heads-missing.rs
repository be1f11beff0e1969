// checks: a MultiHeadAttention without heads
use nanograd::prelude::*;

model! {
    pub struct Attn {
        attn: MultiHeadAttention(64),
    }
    fn forward(x: [B, 16, 64]) -> [B, 16, 64] {
        attn(x)
    }
}

fn main() {}
