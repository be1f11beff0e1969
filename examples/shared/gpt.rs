//! The character-level GPT of `gpt_shakespeare`: four pre-norm transformer blocks of width
//! 128 with four causal attention heads, over a context of 64 characters. Shared by the
//! example and the benchmarks.

use nanograd::prelude::*;

model! {
    const T: usize = 64;
    const C: usize = 128;
    const H: usize = 4;
    const FF: usize = 512;
    /// One transformer block: attention and a feed-forward layer, each behind a layer norm
    /// and added to the residual stream.
    pub struct Block {
        ln_1: LayerNorm(C),
        attn: MultiHeadAttention(C, heads = H, causal = true),
        ln_2: LayerNorm(C),
        fc: Dense(C -> FF),
        proj: Dense(FF -> C),
    }
    fn forward(x: [B, T, C]) -> [B, T, C] {
        let x = x + attn(ln_1(x));
        x + proj(gelu(fc(ln_2(x))))
    }
}

model! {
    pub const VOCAB: usize = 75;
    pub const CTX: usize = 64;
    const EMB: usize = 128;
    /// Token and position embeddings, four blocks, a final layer norm and the logits of the
    /// next character at every position.
    pub struct Gpt {
        wte: Embedding(VOCAB -> EMB),
        wpe: Param([CTX, EMB]),
        h: [Block; 4],
        ln_f: LayerNorm(EMB),
        lm_head: Dense(EMB -> VOCAB, bias = false),
    }
    fn forward(idx: u32[B, CTX]) -> [B, CTX, VOCAB] {
        let x = wte(idx) + wpe;
        lm_head(ln_f(h(x)))
    }
    fn loss(idx: u32[B, CTX], targets: u32[B, CTX]) -> [] {
        softmax_cross_entropy(forward(idx), targets)
    }
}
