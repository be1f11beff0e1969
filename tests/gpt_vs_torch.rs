//! A small GPT against PyTorch in float64 (fixtures: tests/fixtures/gen_gpt.py): the state
//! dict PyTorch saved loads unchanged, and the logits, the loss and the gradient of every
//! parameter agree; the model's own weights file carries PyTorch's names back.

use std::collections::BTreeMap;

use nanograd::prelude::*;
use nanograd::rand::{rngs::StdRng, SeedableRng};

model! {
    const T: usize = 8;
    const C: usize = 16;
    const FF: usize = 32;
    pub struct SmallBlock {
        ln_1: LayerNorm(C),
        attn: MultiHeadAttention(C, heads = 2, causal = true),
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
    const VOCAB: usize = 11;
    const CTX: usize = 8;
    const EMB: usize = 16;
    pub struct SmallGpt {
        wte: Embedding(VOCAB -> EMB),
        wpe: Param([CTX, EMB]),
        h: [SmallBlock; 2],
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

/// `{shape, data}` of the fixture.
struct Tensor {
    shape: Vec<usize>,
    data: Vec<f64>,
}

impl Tensor {
    fn from_json(j: &serde_json::Value) -> Tensor {
        let shape = j["shape"]
            .as_array()
            .expect("a shape")
            .iter()
            .map(|d| d.as_u64().expect("a dimension") as usize)
            .collect();
        let data = j["data"]
            .as_array()
            .expect("data")
            .iter()
            .map(|v| v.as_f64().expect("a number"))
            .collect();
        Tensor { shape, data }
    }

    fn windows(&self) -> Vec<[u32; 8]> {
        assert_eq!(self.shape[1], 8);
        self.data
            .chunks(8)
            .map(|c| std::array::from_fn(|i| c[i] as u32))
            .collect()
    }
}

fn fixtures() -> (serde_json::Value, std::path::PathBuf) {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let text = std::fs::read_to_string(dir.join("gpt_small.json")).expect("gpt_small.json");
    let json = serde_json::from_str(&text).expect("valid JSON");
    (json, dir.join("gpt_small.safetensors"))
}

/// Every element of `got` within `rel` of `want` relative to the largest magnitude of `want`
/// (gradients that are zero in exact arithmetic are rounding noise in the fixture).
fn assert_all_close(what: &str, got: &[f64], want: &[f64], rel: f64) {
    assert_eq!(got.len(), want.len(), "{what}: lengths differ");
    let scale = want.iter().fold(1e-3f64, |m, w| m.max(w.abs()));
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g - w).abs() <= rel * scale,
            "{what}[{i}]: {g} vs PyTorch's {w} (scale {scale})"
        );
    }
}

#[test]
fn small_gpt_matches_pytorch() {
    let (json, weights) = fixtures();
    let mut model = SmallGpt::<f64>::new(&mut StdRng::seed_from_u64(0));
    model.load_safetensors(&weights).unwrap();
    let names: Vec<String> = {
        let mut v = Vec::new();
        model.visit_params(&mut |n, _| v.push(n.to_string()));
        v
    };
    let mut torch_names: Vec<String> = json["names"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap().to_string())
        .collect();
    let mut ours = names.clone();
    ours.sort();
    torch_names.sort();
    assert_eq!(
        ours, torch_names,
        "the parameter names differ from PyTorch's"
    );

    let idx = Tensor::from_json(&json["idx"]).windows();
    let targets = Tensor::from_json(&json["targets"]).windows();
    let logits = model.forward(&idx).unwrap();
    let want = Tensor::from_json(&json["logits"]);
    assert_eq!(want.shape, [3, 8, 11]);
    assert_all_close(
        "logits",
        logits.as_flattened().as_flattened(),
        &want.data,
        1e-8,
    );

    model.zero_grad();
    let loss = model.loss_backward(&idx, &targets).unwrap();
    let want_loss = json["loss"].as_f64().unwrap();
    assert!(
        (loss - want_loss).abs() < 1e-10,
        "loss {loss} vs {want_loss}"
    );
    let grads: BTreeMap<String, Tensor> = json["grads"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), Tensor::from_json(v)))
        .collect();
    let mut checked = 0;
    model.visit_params(&mut |name, p| {
        let want = &grads[name];
        assert_eq!(p.shape(), &want.shape[..], "{name}");
        assert_all_close(&format!("grad of {name}"), p.grad(), &want.data, 1e-8);
        checked += 1;
    });
    assert_eq!(checked, 29);
}

#[test]
fn weights_round_trip_under_pytorch_names() {
    let (_, weights) = fixtures();
    let mut a = SmallGpt::<f64>::new(&mut StdRng::seed_from_u64(1));
    a.load_safetensors(&weights).unwrap();
    let bytes = a.to_safetensors_bytes().unwrap();
    let mut b = SmallGpt::<f64>::new(&mut StdRng::seed_from_u64(2));
    b.load_safetensors_bytes(&bytes).unwrap();
    let idx = [[1u32, 2, 3, 4, 5, 6, 7, 8], [0, 10, 0, 10, 0, 10, 0, 10]];
    assert_eq!(a.forward(&idx).unwrap(), b.forward(&idx).unwrap());
    // a file for another vocabulary is refused, not loaded halfway
    let mut wrong = SmallGpt::<f64>::new(&mut StdRng::seed_from_u64(3));
    let before = wrong.forward(&idx).unwrap();
    let mut other = bytes.clone();
    let at = other
        .windows(b"\"wte.weight\"".len())
        .position(|w| w == b"\"wte.weight\"")
        .expect("wte.weight in the header");
    other[at + 1] = b'x'; // rename the tensor: xte.weight
    assert!(wrong.load_safetensors_bytes(&other).is_err());
    assert_eq!(wrong.forward(&idx).unwrap(), before);
}
