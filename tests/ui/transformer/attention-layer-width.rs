// checks: a sequence whose width is not the attention layer's
use nanograd::prelude::*;

model! {
    pub struct Attn {
        attn: MultiHeadAttention(64, heads = 4, causal = true),
    }
    fn forward(x: [B, 16, 32]) -> [B, 16, 32] {
        attn(x)
    }
}

fn main() {}
