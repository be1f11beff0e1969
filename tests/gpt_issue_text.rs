//! The transformer as the language reference writes it, word for word (a block of four
//! causal heads, a GPT over 65 tokens with four such blocks): it compiles, its shapes are
//! what the declarations say, and a few AdamW steps on one batch lower its loss.

use nanograd::prelude::*;
use nanograd::rand::{rngs::StdRng, RngExt, SeedableRng};

model! {
    const T: usize = 64;
    const C: usize = 128;
    const H: usize = 4;
    const FF: usize = 512;
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
    const VOCAB: usize = 65;
    const CTX: usize = 64;
    const EMB: usize = 128;
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

#[test]
fn the_reference_gpt_trains() {
    let mut model = Gpt::<f32>::new(&mut StdRng::seed_from_u64(0));
    // 4 blocks of 198,272 parameters (ln_1 256, attn 66,048, ln_2 256, fc 66,048, proj 65,664), the embeddings, the final norm and the head
    assert_eq!(
        model.num_parameters(),
        4 * 198_272 + 65 * 128 + 64 * 128 + 256 + 65 * 128
    );
    let mut rng = StdRng::seed_from_u64(1);
    let text: Vec<u32> = (0..2 * 65).map(|_| rng.random_range(0..65)).collect();
    let idx = [
        std::array::from_fn(|i| text[i]),
        std::array::from_fn(|i| text[i + 60]),
    ];
    let targets = [
        std::array::from_fn(|i| text[i + 1]),
        std::array::from_fn(|i| text[i + 61]),
    ];
    let logits = model.forward(&idx).unwrap();
    assert_eq!(logits.len(), 2);
    let mut opt = AdamW::new(1e-3).betas(0.9, 0.99).decay_matrices_only();
    let first = model.loss(&idx, &targets).unwrap();
    // near log(65) at the start
    assert!((first - 65f32.ln()).abs() < 1.5, "initial loss {first}");
    for _ in 0..5 {
        model.zero_grad();
        model.loss_backward(&idx, &targets).unwrap();
        opt.step(&mut model).unwrap();
    }
    let last = model.loss(&idx, &targets).unwrap();
    assert!(last < first - 0.1, "the loss went from {first} to {last}");
}
