//! Every ONNX fixture of `tests/fixtures/` (written by `gen_onnx.py` from PyTorch, both
//! exporters, opsets 17 and 18): the converter's source is exactly the committed
//! `tests/generated/STEM.rs` (so the two cannot drift; `NANOGRAD_ONNX_BLESS=1` rewrites
//! them), that source compiles here (`include!`), and the model it declares, loaded with
//! the converter's safetensors, reproduces ONNX Runtime's outputs to a relative error
//! below 1e-4. The `seq` fixtures take token ids (`u32[B, 4]`) through an embedding, layer
//! norm, a dense layer on `[B, 4, 6]` (MatMul + Add), batched matmuls, a transpose and a
//! softmax. The `gpt` and `gpt_tanh` fixtures are a two-block GPT (token and position
//! embeddings, `nn.MultiheadAttention` with the causal mask, the exact or the tanh GELU,
//! residual adds, `lm_head` without bias), `u32[B, 8]` to `[B, 8, 11]`; the `sdpa`
//! fixtures a hand-written `F.scaled_dot_product_attention(q, k, v, is_causal=True)` over
//! two heads, which becomes `attention(q, k, v, causal = true)`.

use std::path::PathBuf;

use nanograd::prelude::*;
use nanograd::rand::{rngs::StdRng, SeedableRng};

/// Nested fixed-size arrays built from and flattened to row-major values.
trait Nested: Sized {
    const LEN: usize;
    fn from_flat(v: &[f64]) -> Self;
    fn flat_into(&self, out: &mut Vec<f32>);
}

impl Nested for f32 {
    const LEN: usize = 1;
    fn from_flat(v: &[f64]) -> Self {
        v[0] as f32
    }
    fn flat_into(&self, out: &mut Vec<f32>) {
        out.push(*self);
    }
}

/// Token ids (the fixtures' int64 inputs).
impl Nested for u32 {
    const LEN: usize = 1;
    fn from_flat(v: &[f64]) -> Self {
        v[0] as u32
    }
    fn flat_into(&self, out: &mut Vec<f32>) {
        out.push(*self as f32);
    }
}

impl<A: Nested, const N: usize> Nested for [A; N] {
    const LEN: usize = N * A::LEN;
    fn from_flat(v: &[f64]) -> Self {
        std::array::from_fn(|i| A::from_flat(&v[i * A::LEN..]))
    }
    fn flat_into(&self, out: &mut Vec<f32>) {
        self.iter().for_each(|a| a.flat_into(out));
    }
}

fn samples<A: Nested>(flat: &[f64]) -> Vec<A> {
    assert_eq!(
        flat.len() % A::LEN,
        0,
        "the input does not split into samples"
    );
    flat.chunks_exact(A::LEN).map(A::from_flat).collect()
}

fn flat<A: Nested>(rows: &[A]) -> Vec<f32> {
    let mut out = Vec::new();
    rows.iter().for_each(|r| r.flat_into(&mut out));
    out
}

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests")
}

fn numbers(v: &serde_json::Value) -> Vec<f64> {
    v.as_array()
        .expect("an array")
        .iter()
        .map(|x| x.as_f64().expect("a number"))
        .collect()
}

/// The fixture's input, ONNX Runtime's output for `stem`, and the converter's result,
/// after checking the source against the committed file.
fn fixture(model: &str, stem: &str, name: &str) -> (Vec<f64>, Vec<f32>, nanograd_onnx::Converted) {
    let json: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir().join(format!("fixtures/{model}.json"))).unwrap(),
    )
    .unwrap();
    let input = numbers(&json["input"]["data"]);
    let expected: Vec<f32> = numbers(&json["outputs"][stem]["data"])
        .iter()
        .map(|&v| v as f32)
        .collect();
    assert!(!expected.is_empty(), "no ONNX Runtime output for {stem}");
    let bytes = std::fs::read(dir().join(format!("fixtures/{stem}.onnx"))).unwrap();
    let converted = nanograd_onnx::convert(&bytes, name).unwrap_or_else(|e| panic!("{stem}: {e}"));
    let committed = dir().join(format!("generated/{stem}.rs"));
    if std::env::var_os("NANOGRAD_ONNX_BLESS").is_some() {
        std::fs::write(&committed, &converted.source).unwrap();
    }
    let on_disk = std::fs::read_to_string(&committed).unwrap_or_default();
    assert_eq!(
        converted.source,
        on_disk,
        "{stem}: the converter's source differs from {}",
        committed.display()
    );
    consts_are_used(stem, &converted.source);
    (input, expected, converted)
}

/// Every const the source declares is used (rustc does not warn about a dead one inside
/// `model!`, so this is checked here), and no size is left unnamed by a placeholder.
fn consts_are_used(stem: &str, source: &str) {
    assert!(
        !source.contains(['\u{1}', '\u{2}']),
        "{stem}: a placeholder is left in\n{source}"
    );
    let words: Vec<&str> = source
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .collect();
    for line in source.lines().map(str::trim) {
        let Some(name) = line
            .strip_prefix("const ")
            .and_then(|l| l.split(':').next())
        else {
            continue;
        };
        let uses = words.iter().filter(|w| **w == name).count();
        assert!(
            uses >= 2,
            "{stem}: `{name}` is declared but never used\n{source}"
        );
    }
}

fn assert_matches(stem: &str, got: &[f32], expected: &[f32]) {
    assert_eq!(got.len(), expected.len(), "{stem}: output length");
    for (i, (g, e)) in got.iter().zip(expected).enumerate() {
        let err = (g - e).abs();
        assert!(
            err <= 1e-4 * e.abs() + 1e-6,
            "{stem}: output {i} is {g}, ONNX Runtime's {e} (error {err})"
        );
    }
}

macro_rules! fixture_tests {
    ($($model:literal: $($stem:ident => $ty:ident),+;)+) => {$($(
        mod $stem {
            include!(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/generated/", stringify!($stem), ".rs"));
        }

        #[test]
        fn $stem() {
            let stem = stringify!($stem);
            let (input, expected, converted) = fixture($model, stem, stringify!($ty));
            let mut model = $stem::$ty::<f32>::new(&mut StdRng::seed_from_u64(0));
            model.load_safetensors_bytes(&converted.safetensors).unwrap();
            model.set_eval_mode();
            let x = samples(&input);
            let y = model.forward(x.as_slice()).unwrap();
            assert_eq!(y.len(), 3, "the batch of three");
            assert_matches(stem, &flat(&y), &expected);
        }
    )+)+};
}

fixture_tests! {
    "mlp": mlp_ts17 => MlpTs17, mlp_ts18 => MlpTs18, mlp_dynamo17 => MlpDynamo17, mlp_dynamo18 => MlpDynamo18;
    "mlp_softmax": mlp_softmax_ts17 => MlpSoftmaxTs17, mlp_softmax_ts18 => MlpSoftmaxTs18,
        mlp_softmax_dynamo17 => MlpSoftmaxDynamo17, mlp_softmax_dynamo18 => MlpSoftmaxDynamo18;
    "cnn": cnn_ts17 => CnnTs17, cnn_ts18 => CnnTs18, cnn_dynamo17 => CnnDynamo17, cnn_dynamo18 => CnnDynamo18,
        cnn_bn_ts17 => CnnBnTs17, cnn_bn_ts18 => CnnBnTs18;
    "cnn_flat": cnn_flat_ts17 => CnnFlatTs17, cnn_flat_ts18 => CnnFlatTs18,
        cnn_flat_dynamo17 => CnnFlatDynamo17, cnn_flat_dynamo18 => CnnFlatDynamo18;
    "seq": seq_ts17 => SeqTs17, seq_ts18 => SeqTs18, seq_dynamo17 => SeqDynamo17, seq_dynamo18 => SeqDynamo18;
    "gpt": gpt_ts17 => GptTs17, gpt_ts18 => GptTs18, gpt_dynamo17 => GptDynamo17, gpt_dynamo18 => GptDynamo18;
    "gpt_tanh": gpt_tanh_ts17 => GptTanhTs17, gpt_tanh_ts18 => GptTanhTs18,
        gpt_tanh_dynamo17 => GptTanhDynamo17, gpt_tanh_dynamo18 => GptTanhDynamo18;
    "sdpa": sdpa_ts17 => SdpaTs17, sdpa_ts18 => SdpaTs18, sdpa_dynamo17 => SdpaDynamo17, sdpa_dynamo18 => SdpaDynamo18;
}
