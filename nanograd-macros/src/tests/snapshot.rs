//! The expansion of a small model, pinned. Run with `UPDATE_SNAPSHOTS=1` to rewrite the
//! snapshot after an intended change, then read the diff.

use std::str::FromStr;

fn check(name: &str, src: &str) {
    let tokens = proc_macro2::TokenStream::from_str(src).unwrap();
    let out = crate::expand(tokens);
    let file: syn::File = syn::parse2(out).expect("the expansion parses as a file");
    let pretty = prettyplease::unparse(&file);
    let path = format!("{}/snapshots/{name}.rs", env!("CARGO_MANIFEST_DIR"));
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
        std::fs::write(&path, &pretty).unwrap();
    }
    let want = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        want == pretty,
        "the expansion of {name} changed; rerun with UPDATE_SNAPSHOTS=1 and review snapshots/{name}.rs\n{pretty}"
    );
}

#[test]
fn function_form() {
    check(
        "energy",
        "pub fn energy(x: [3], y: [3]) -> [] { let z = x + y; dot(z, z) }",
    );
}

#[test]
fn struct_form() {
    check(
        "mlp",
        "pub struct Mlp { fc1: Dense(4 -> 3), fc2: Dense(3 -> 2) } \
         fn forward(x: [B, 4]) -> [B, 2] { fc2(relu(fc1(x))) } \
         fn loss(x: [B, 4], t: [B, 2]) -> [] { mse_loss(forward(x), t) }",
    );
}

#[test]
fn transformer_block() {
    check(
        "block",
        "const T: usize = 8; const C: usize = 16; \
         pub struct Block { ln_1: LayerNorm(C), attn: MultiHeadAttention(C, heads = 2, causal = true), \
         ln_2: LayerNorm(C), fc: Dense(C -> 64), proj: Dense(64 -> C) } \
         fn forward(x: [B, T, C]) -> [B, T, C] { \
         let x = x + attn(ln_1(x)); x + proj(gelu(fc(ln_2(x)))) }",
    );
}

#[test]
fn language_model() {
    check(
        "lm",
        "@layer Block [B, 8, 16] -> [B, 8, 16] (100, 10); \
         pub struct Lm { wte: Embedding(11 -> 16), wpe: Param([8, 16]), h: [Block; 2], \
         lm_head: Dense(16 -> 11, bias = false) } \
         fn forward(idx: u32[B, 8]) -> [B, 8, 11] { lm_head(h(wte(idx) + wpe)) } \
         fn loss(idx: u32[B, 8], t: u32[B, 8]) -> [] { softmax_cross_entropy(forward(idx), t) }",
    );
}

#[test]
fn quantized_cnn() {
    // the int8 form: conv1 with bn1 folded in, fc on int8 weights, relu and pooling in f32
    check(
        "cnn_int8",
        "pub struct Cnn { conv1: Conv2d(1 -> 4, kernel = 3, padding = 1), bn1: BatchNorm2d(4), \
         pool: MaxPool2d(kernel = 2), fc: Dense(64 -> 3) } \
         fn forward(x: [B, 1, 8, 8]) -> [B, 3] { fc(flatten(pool(relu(bn1(conv1(x)))))) }",
    );
}
