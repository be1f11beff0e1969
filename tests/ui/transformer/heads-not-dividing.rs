// checks: heads that do not divide the attention width
use nanograd::prelude::*;

model! {
    pub struct Attn {
        attn: MultiHeadAttention(128, heads = 3),
    }
    fn forward(x: [B, 16, 128]) -> [B, 16, 128] {
        attn(x)
    }
}

fn main() {}
