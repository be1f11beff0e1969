//! The generated source of the MLP and the CNN, line by line where it matters: the sizes
//! as consts named by their role, layer declarations with PyTorch's module names, the
//! inferred shapes, the folded batch norm, the shape arithmetic of a `view` folded to one
//! `flatten`, and the weights' names.

use std::path::PathBuf;

fn convert(stem: &str, name: &str) -> nanograd_onnx::Converted {
    let bytes = std::fs::read(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("tests/fixtures/{stem}.onnx")),
    )
    .unwrap();
    nanograd_onnx::convert(&bytes, name).unwrap()
}

fn lines(source: &str) -> Vec<&str> {
    source.lines().map(str::trim).collect()
}

fn tensor_names(st: &[u8]) -> Vec<(String, Vec<usize>)> {
    let t = safetensors::SafeTensors::deserialize(st).unwrap();
    let mut v: Vec<(String, Vec<usize>)> = t
        .tensors()
        .into_iter()
        .map(|(n, v)| (n, v.shape().to_vec()))
        .collect();
    v.sort();
    v
}

#[test]
fn mlp_source_and_weights() {
    for stem in ["mlp_ts17", "mlp_dynamo18"] {
        let c = convert(stem, "MlpNet");
        let l = lines(&c.source);
        let body: Vec<&str> = l
            .iter()
            .skip_while(|s| !s.starts_with("const "))
            .filter(|s| !s.starts_with("///"))
            .copied()
            .collect();
        // fc2 and fc3 are both 12 wide but in two roles: two consts
        assert_eq!(
            body,
            [
                "const IN: usize = 8;",
                "const FC1: usize = 16;",
                "const FC2: usize = 12;",
                "const FC3: usize = 12;",
                "const OUT: usize = 5;",
                "",
                "pub struct MlpNet {",
                "fc1: Dense(IN -> FC1),",
                "fc2: Dense(FC1 -> FC2),",
                "fc3: Dense(FC2 -> FC3),",
                "head: Dense(FC3 -> OUT),",
                "}",
                "",
                "fn forward(x: [B, IN]) -> [B, OUT] {",
                "let h1: [B, FC1] = relu(fc1(x));",
                "let h2: [B, FC2] = tanh(fc2(h1));",
                "let h3: [B, FC3] = sigmoid(fc3(h2));",
                "log_softmax(head(h3))",
                "}",
                "}",
            ],
            "{stem}"
        );
        assert!(l.contains(&"use nanograd::prelude::*;"));
        assert!(c.source.contains("`mlp_net.safetensors`"));
        let names = tensor_names(&c.safetensors);
        assert_eq!(
            names,
            [
                ("fc1.bias".to_string(), vec![16]),
                ("fc1.weight".to_string(), vec![16, 8]),
                ("fc2.bias".to_string(), vec![12]),
                ("fc2.weight".to_string(), vec![12, 16]),
                ("fc3.bias".to_string(), vec![12]),
                ("fc3.weight".to_string(), vec![12, 12]),
                ("head.bias".to_string(), vec![5]),
                ("head.weight".to_string(), vec![5, 12]),
            ]
        );
    }
}

#[test]
fn cnn_source() {
    // TorchScript: batch norm folded into the convolutions (named from the node scopes,
    // as the folded weights are `onnx::Conv_32`), GlobalAveragePool + Flatten
    let ts = convert("cnn_ts17", "Cnn").source;
    // dynamo: ReduceMean over the spatial axes + Reshape
    let dynamo = convert("cnn_dynamo18", "Cnn").source;
    for source in [&ts, &dynamo] {
        let l = lines(source);
        // the input's channels and size, each convolution's channels and the classes
        // are consts; the pooled sizes (8, 4) belong to no layer and stay literals
        let consts: Vec<&str> = l
            .iter()
            .copied()
            .filter(|s| s.starts_with("const "))
            .collect();
        assert_eq!(
            consts,
            [
                "const IN_CHANNELS: usize = 1;",
                "const IN_H: usize = 16;",
                "const IN_W: usize = 16;",
                "const CONV1: usize = 4;",
                "const CONV2: usize = 6;",
                "const CONV3: usize = 8;",
                "const OUT: usize = 10;",
            ]
        );
        for want in [
            "conv1: Conv2d(IN_CHANNELS -> CONV1, kernel = 3, padding = 1),",
            "conv2: Conv2d(CONV1 -> CONV2, kernel = 3, padding = 1),",
            "conv3: Conv2d(CONV2 -> CONV3, kernel = 3, stride = 2, padding = 1),",
            "fc: Dense(CONV3 -> OUT),",
            "fn forward(x: [B, IN_CHANNELS, IN_H, IN_W]) -> [B, OUT] {",
            "let h1: [B, CONV1, 8, 8] = max_pool2d(relu(conv1(x)), kernel = 2);",
            "let h2: [B, CONV2, 4, 4] = avg_pool2d(relu(conv2(h1)), kernel = 2);",
            "let h3: [B, CONV3] = global_avg_pool2d(relu(conv3(h2)));",
            "fc(h3)",
        ] {
            assert!(l.contains(&want), "missing `{want}` in\n{source}");
        }
    }
    let bn = convert("cnn_bn_ts17", "Cnn");
    let l = lines(&bn.source);
    for want in [
        "bn1: BatchNorm2d(CONV1),",
        "conv2: Conv2d(CONV1 -> CONV2, kernel = 3, padding = 1, bias = false),",
        "let h1: [B, CONV1, 8, 8] = max_pool2d(relu(bn1(conv1(x))), kernel = 2);",
    ] {
        assert!(l.contains(&want), "missing `{want}` in\n{}", bn.source);
    }
    let names: Vec<String> = tensor_names(&bn.safetensors)
        .into_iter()
        .map(|(n, _)| n)
        .filter(|n| n.starts_with("bn1"))
        .collect();
    assert_eq!(
        names,
        [
            "bn1.bias",
            "bn1.running_mean",
            "bn1.running_var",
            "bn1.weight"
        ]
    );
}

#[test]
fn a_views_shape_arithmetic_folds_to_flatten() {
    // h.view(h.size(0), -1): Shape, Gather, Unsqueeze, Concat, Reshape in TorchScript;
    // the flattened size (3·3·3) belongs to no layer and stays a literal
    let source = convert("cnn_flat_ts17", "Net").source;
    let l = lines(&source);
    assert!(
        l.contains(&"let h1: [B, 27] = flatten(max_pool2d(relu(conv(x)), kernel = 2));"),
        "{source}"
    );
    assert!(l.contains(&"fc: Dense(27 -> OUT),"), "{source}");
    assert!(
        !source.contains("Shape") && !source.contains("reshape"),
        "{source}"
    );
}

/// The generated GPT, whole: both exporters give the same `model!` block, with
/// `nn.MultiheadAttention` as one `MultiHeadAttention` layer per block, the Erf chain as
/// `gelu(.., approximate = "none")` (the Tanh chain as `gelu(..)`), and the layers named
/// after PyTorch's modules. The residual width is one const (`EMB`, the embedding's width,
/// which every block's `+` and layer norm keep), so is each block's feed-forward width
/// (`H_FC`: `h_0_fc` and `h_1_fc`, the same 32) and the heads; the vocabulary (11) and the
/// logits' width (11) are two roles, two consts.
const GPT: &[&str] = &[
    "const SEQ: usize = 8;",
    "const VOCAB: usize = 11;",
    "const EMB: usize = 16;",
    "const HEADS: usize = 2;",
    "const H_FC: usize = 32;",
    "const OUT: usize = 11;",
    "",
    "pub struct Gpt {",
    "wte: Embedding(VOCAB -> EMB),",
    "wpe: Param([SEQ, EMB]),",
    "h_0_ln_1: LayerNorm(EMB),",
    "h_0_attn: MultiHeadAttention(EMB, heads = HEADS, causal = true),",
    "h_0_ln_2: LayerNorm(EMB),",
    "h_0_fc: Dense(EMB -> H_FC),",
    "h_0_proj: Dense(H_FC -> EMB),",
    "h_1_ln_1: LayerNorm(EMB),",
    "h_1_attn: MultiHeadAttention(EMB, heads = HEADS, causal = true),",
    "h_1_ln_2: LayerNorm(EMB),",
    "h_1_fc: Dense(EMB -> H_FC),",
    "h_1_proj: Dense(H_FC -> EMB),",
    "ln_f: LayerNorm(EMB),",
    "lm_head: Dense(EMB -> OUT, bias = false),",
    "}",
    "",
    "fn forward(x: u32[B, SEQ]) -> [B, SEQ, OUT] {",
    "let h1: [B, SEQ, EMB] = wte(x) + wpe;",
    "let h2: [B, SEQ, EMB] = h_0_ln_1(h1);",
    "let h3: [B, SEQ, EMB] = h1 + h_0_attn(h2);",
    "let h4: [B, SEQ, EMB] = h_0_ln_2(h3);",
    "let h5: [B, SEQ, H_FC] = h_0_fc(h4);",
    "let h6: [B, SEQ, H_FC] = GELU(h5);",
    "let h7: [B, SEQ, EMB] = h3 + h_0_proj(h6);",
    "let h8: [B, SEQ, EMB] = h_1_ln_1(h7);",
    "let h9: [B, SEQ, EMB] = h7 + h_1_attn(h8);",
    "let h10: [B, SEQ, EMB] = h_1_ln_2(h9);",
    "let h11: [B, SEQ, H_FC] = h_1_fc(h10);",
    "let h12: [B, SEQ, H_FC] = GELU(h11);",
    "let h13: [B, SEQ, EMB] = ln_f(h9 + h_1_proj(h12));",
    "lm_head(h13)",
    "}",
    "}",
];

#[test]
fn gpt_source_and_weights() {
    for (model, gelu) in [
        ("gpt", "gelu(h5, approximate = \"none\")"),
        ("gpt_tanh", "gelu(h5)"),
    ] {
        for exporter in ["ts17", "ts18", "dynamo17", "dynamo18"] {
            let stem = format!("{model}_{exporter}");
            let c = convert(&stem, "Gpt");
            let l = lines(&c.source);
            let body: Vec<&str> = l
                .iter()
                .skip_while(|s| !s.starts_with("const "))
                .filter(|s| !s.starts_with("///"))
                .copied()
                .collect();
            // the default exporter's conversion to opset 17 drops the nodes' metadata (their
            // module paths), and `lm_head` has no named parameter: the name says `fc`
            let head = if exporter == "dynamo17" {
                "fc"
            } else {
                "lm_head"
            };
            let want: Vec<String> = GPT
                .iter()
                .map(|s| {
                    s.replace("GELU(h5)", gelu)
                        .replace("GELU(h11)", &gelu.replace("h5", "h11"))
                        .replace("lm_head", head)
                })
                .collect();
            assert_eq!(body, want, "{stem}");
            let names = tensor_names(&c.safetensors);
            let block: Vec<(String, Vec<usize>)> = names
                .iter()
                .filter(|(n, _)| n.starts_with("h_0_attn."))
                .cloned()
                .collect();
            assert_eq!(
                block,
                [
                    ("h_0_attn.in_proj_bias".to_string(), vec![48]),
                    ("h_0_attn.in_proj_weight".to_string(), vec![48, 16]),
                    ("h_0_attn.out_proj.bias".to_string(), vec![16]),
                    ("h_0_attn.out_proj.weight".to_string(), vec![16, 16]),
                ],
                "{stem}"
            );
            assert_eq!(names.len(), 2 + 2 * 12 + 2 + 1, "{stem}: {names:?}");
        }
    }
}

#[test]
fn scaled_dot_product_attention_source() {
    // q, k and v split into two heads by `view` + `transpose(1, 2)`: the exporters reach kᵀ
    // through a transpose of three dimensions (TorchScript) or reshapes merging the batch
    // into the heads (dynamo); both become one `attention` call on [B, 2, 8, 8]. The
    // sequence and the head width are both 8 but two roles: `SEQ` and `HEAD_DIM`; the
    // merge of the heads back gives the width they were split from (`V`)
    for stem in ["sdpa_ts17", "sdpa_ts18", "sdpa_dynamo17", "sdpa_dynamo18"] {
        let source = convert(stem, "Sdpa").source;
        let l = lines(&source);
        let k = if stem.starts_with("sdpa_ts") {
            "transpose(h2, 1, 2)"
        } else {
            "transpose(reshape(k(h1), [B, SEQ, HEADS, HEAD_DIM]), 1, 2)"
        };
        let out = if stem.starts_with("sdpa_ts") {
            "h3"
        } else {
            "h2"
        };
        let want = format!(
            "let {out}: [B, SEQ, V] = reshape(transpose(attention(transpose(reshape(q(h1), [B, SEQ, HEADS, HEAD_DIM]), 1, 2), {k}, transpose(reshape(v(h1), [B, SEQ, HEADS, HEAD_DIM]), 1, 2), causal = true), 1, 2), [B, SEQ, V]);"
        );
        assert!(
            l.contains(&want.as_str()),
            "{stem}: missing `{want}` in\n{source}"
        );
        assert!(!source.contains("softmax"), "{source}");
        for want in [
            "const SEQ: usize = 8;",
            "const HEADS: usize = 2;",
            "const HEAD_DIM: usize = 8;",
            "q: Dense(EMB -> Q),",
            "k: Dense(EMB -> Q),",
            "v: Dense(EMB -> V),",
            "out: Dense(V -> OUT),",
        ] {
            assert!(l.contains(&want), "{stem}: missing `{want}` in\n{source}");
        }
    }
}
