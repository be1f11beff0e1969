//! `model!` never panics: malformed and random token streams, and valid models with tokens
//! deleted, repeated or swapped, all come back as code or as `compile_error!`.

use proc_macro2::{Delimiter, Group, Ident, Literal, Punct, Spacing, Span, TokenStream, TokenTree};
use std::str::FromStr;

/// A small deterministic generator (xorshift64*), so failures reproduce.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

const WORDS: &[&str] = &[
    "fn",
    "let",
    "struct",
    "pub",
    "const",
    "usize",
    "Dense",
    "Conv2d",
    "BatchNorm2d",
    "Param",
    "Dropout",
    "MaxPool2d",
    "relu",
    "matmul",
    "dot",
    "reshape",
    "slice",
    "conv2d",
    "reduce",
    "softmax_cross_entropy",
    "Embedding",
    "LayerNorm",
    "MultiHeadAttention",
    "heads",
    "causal",
    "u32",
    "transpose",
    "concat",
    "attention",
    "causal_mask",
    "forward",
    "loss",
    "x",
    "h",
    "B",
    "N",
    "kernel",
    "stride",
    "eps",
    "grad",
    "self",
    "true",
];
const PUNCTS: &[&str] = &[
    ":", ",", ";", "->", "=", "+", "-", "*", "/", "|", ".", "#", "&", "<", ">",
];
const LITERALS: &[&str] = &[
    "0",
    "1",
    "3",
    "784",
    "1e-5",
    "0.5",
    "-2",
    "18446744073709551615",
    "\"s\"",
];

fn random_tokens(rng: &mut Rng, depth: usize) -> TokenStream {
    let n = rng.below(12);
    let mut out = TokenStream::new();
    for _ in 0..n {
        let tt = match rng.below(if depth < 3 { 5 } else { 3 }) {
            0 => TokenTree::Ident(Ident::new(WORDS[rng.below(WORDS.len())], Span::call_site())),
            1 => TokenStream::from_str(PUNCTS[rng.below(PUNCTS.len())])
                .unwrap()
                .into_iter()
                .next()
                .unwrap_or_else(|| TokenTree::Punct(Punct::new('+', Spacing::Alone))),
            2 => {
                TokenTree::Literal(Literal::from_str(LITERALS[rng.below(LITERALS.len())]).unwrap())
            }
            _ => {
                let delim =
                    [Delimiter::Parenthesis, Delimiter::Bracket, Delimiter::Brace][rng.below(3)];
                TokenTree::Group(Group::new(delim, random_tokens(rng, depth + 1)))
            }
        };
        out.extend(std::iter::once(tt));
    }
    out
}

/// Runs the expansion, failing the test if it panics.
fn expand_must_not_panic(input: TokenStream) -> TokenStream {
    let text = input.to_string();
    match std::panic::catch_unwind(|| crate::expand(input)) {
        Ok(out) => out,
        Err(_) => panic!("model! panicked on: {text}"),
    }
}

const VALID: &[&str] = &[
    "pub fn energy(x: [3], y: [3]) -> [] { let z = x + y; dot(z, z) }",
    "const H: usize = 8; pub struct Mlp { fc1: Dense(4 -> H), fc2: Dense(H -> 2), s: Param([2]) } \
     fn forward(x: [B, 4]) -> [B, 2] { let h: [B, H] = relu(fc1(x)); mul(fc2(h), s) } \
     fn loss(x: [B, 4], t: [B, 2]) -> [] { softmax_cross_entropy(forward(x), t) }",
    "pub struct Cnn { c: Conv2d(1 -> 4, kernel = 3, padding = 1), bn: BatchNorm2d(4), \
     p: MaxPool2d(kernel = 2), d: Dropout(0.5), fc: Dense(4 -> 3) } \
     fn forward(x: [B, 1, 8, 8]) -> [B, 3] { fc(global_avg_pool2d(d(p(relu(bn(c(x))))))) }",
    "fn f(a: [2, 3], b: [3, 4]) -> [] { sum(reshape(matmul(a, b), [8])) + reduce(a, 0.0, |p, q| p + q) }",
    "const T: usize = 4; pub struct Lm { wte: Embedding(9 -> 8), wpe: Param([T, 8]), ln: LayerNorm(8), \
     attn: MultiHeadAttention(8, heads = 2, causal = true), head: Dense(8 -> 9, bias = false) } \
     fn forward(idx: u32[B, T]) -> [B, T, 9] { let x = wte(idx) + wpe; head(ln(x + attn(ln(x)))) } \
     fn loss(idx: u32[B, T], t: u32[B, T]) -> [] { softmax_cross_entropy(forward(idx), t) }",
    "pub struct S { p: Param([4]) } fn forward(q: [B, 2, 3, 4], k: [B, 2, 3, 4]) -> [B, 2, 3, 7] { \
     let s = causal_mask(matmul(q * p, transpose(k, -1, -2))); \
     concat(s, attention(q, k, k, causal = true), dim = 3) }",
];

#[test]
fn random_token_streams_are_errors() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for _ in 0..3000 {
        let input = random_tokens(&mut rng, 0);
        let out = expand_must_not_panic(input.clone()).to_string();
        // anything that is not a complete model must be rejected
        if !input.is_empty() {
            assert!(
                out.contains("compile_error"),
                "model! accepted random tokens: {input}"
            );
        }
    }
}

#[test]
fn mutated_models_never_panic() {
    let mut rng = Rng(42);
    for src in VALID {
        let tokens: Vec<TokenTree> = TokenStream::from_str(src).unwrap().into_iter().collect();
        // the model itself expands without errors
        let out = expand_must_not_panic(tokens.iter().cloned().collect()).to_string();
        assert!(!out.contains("compile_error"), "{src}: {out}");
        for _ in 0..600 {
            let mut t = tokens.clone();
            match rng.below(4) {
                0 => {
                    let i = rng.below(t.len());
                    t.remove(i);
                }
                1 => {
                    let i = rng.below(t.len());
                    let c = t[i].clone();
                    t.insert(i, c);
                }
                2 => {
                    let (i, j) = (rng.below(t.len()), rng.below(t.len()));
                    t.swap(i, j);
                }
                _ => {
                    let i = rng.below(t.len());
                    t[i] = random_tokens(&mut rng, 2)
                        .into_iter()
                        .next()
                        .unwrap_or_else(|| TokenTree::Ident(Ident::new("x", Span::call_site())));
                }
            }
            expand_must_not_panic(t.into_iter().collect());
        }
        // and so does every prefix of it
        for n in 0..tokens.len() {
            expand_must_not_panic(tokens[..n].iter().cloned().collect());
        }
    }
}

#[test]
fn hostile_numbers_are_errors() {
    for src in [
        "fn f(x: [18446744073709551615, 18446744073709551615]) -> [] { sum(x) }",
        "fn f(x: [0]) -> [] { sum(x) }",
        "const A: usize = 18446744073709551615 * 2; fn f(x: [A]) -> [] { sum(x) }",
        "fn f(x: [4]) -> [] { sum(slice(x, 18446744073709551615, 2)) }",
        "pub struct M { c: Conv2d(1 -> 1, kernel = 0) } fn forward(x: [B, 1, 4, 4]) -> [B, 1, 4, 4] { c(x) }",
        "pub struct M { c: Conv2d(1 -> 1, kernel = 3, stride = 0) } fn forward(x: [B, 1, 4, 4]) -> [B, 1, 2, 2] { c(x) }",
        "fn f(x: [1, 1, 2, 2]) -> [1, 1, 1, 1] { max_pool2d(x, kernel = 2, stride = 1e300) }",
        "fn f(x: [3]) -> [3] { leaky_relu(x, alpha = \"a\") }",
        "pub struct M { p: Param([2]) } fn forward(x: [B, 2, 2]) -> [B, 2, 2] { transpose(x * p, 18446744073709551615, 1) }",
        "pub struct M { p: Param([2]) } fn forward(x: [B, 2, 2]) -> [B, 2, 2] { transpose(x * p, -18446744073709551615, 1) }",
        "pub struct M { p: Param([2]) } fn forward(x: [B, 2, 2]) -> [B, 2, 4] { concat(x * p, x, dim = -1e300) }",
        "pub struct M { a: MultiHeadAttention(18446744073709551615, heads = 1) } fn forward(x: [B, 2, 2]) -> [B, 2, 2] { a(x) }",
        "pub struct M { a: MultiHeadAttention(8, heads = 0) } fn forward(x: [B, 2, 8]) -> [B, 2, 8] { a(x) }",
        "pub struct M { a: MultiHeadAttention(1, heads = 1) } fn forward(x: [B, 1099511627776, 1]) -> [B, 1099511627776, 1] { a(x) }",
        "pub struct M { p: Param([1]) } fn forward(q: [B, 1099511627776, 1]) -> [B, 1099511627776, 1] { attention(q * p, q, q) }",
        "pub struct M { e: Embedding(18446744073709551615 -> 2) } fn forward(i: u32[B, 2]) -> [B, 2, 2] { e(i) }",
        "pub struct M { e: Embedding(4 -> 2) } fn forward(i: u32[]) -> [B, 2] { e(i) }",
    ] {
        let out = expand_must_not_panic(TokenStream::from_str(src).unwrap()).to_string();
        assert!(out.contains("compile_error"), "{src} was accepted");
    }
}
