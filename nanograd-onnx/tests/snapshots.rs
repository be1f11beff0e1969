//! The generated source of the MLP and the CNN, line by line where it matters: layer
//! declarations with PyTorch's module names, the inferred shapes, the folded batch norm,
//! the shape arithmetic of a `view` folded to one `flatten`, and the weights' names.

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
            .skip_while(|s| !s.starts_with("pub struct"))
            .copied()
            .collect();
        assert_eq!(
            body,
            [
                "pub struct MlpNet {",
                "fc1: Dense(8 -> 16),",
                "fc2: Dense(16 -> 12),",
                "fc3: Dense(12 -> 12),",
                "head: Dense(12 -> 5),",
                "}",
                "",
                "fn forward(x: [B, 8]) -> [B, 5] {",
                "let h1: [B, 16] = relu(fc1(x));",
                "let h2: [B, 12] = tanh(fc2(h1));",
                "let h3: [B, 12] = sigmoid(fc3(h2));",
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
        for want in [
            "conv1: Conv2d(1 -> 4, kernel = 3, padding = 1),",
            "conv2: Conv2d(4 -> 6, kernel = 3, padding = 1),",
            "conv3: Conv2d(6 -> 8, kernel = 3, stride = 2, padding = 1),",
            "fc: Dense(8 -> 10),",
            "fn forward(x: [B, 1, 16, 16]) -> [B, 10] {",
            "let h1: [B, 4, 8, 8] = max_pool2d(relu(conv1(x)), kernel = 2);",
            "let h2: [B, 6, 4, 4] = avg_pool2d(relu(conv2(h1)), kernel = 2);",
            "let h3: [B, 8] = global_avg_pool2d(relu(conv3(h2)));",
            "fc(h3)",
        ] {
            assert!(l.contains(&want), "missing `{want}` in\n{source}");
        }
    }
    let bn = convert("cnn_bn_ts17", "Cnn");
    let l = lines(&bn.source);
    for want in [
        "bn1: BatchNorm2d(4),",
        "conv2: Conv2d(4 -> 6, kernel = 3, padding = 1, bias = false),",
        "let h1: [B, 4, 8, 8] = max_pool2d(relu(bn1(conv1(x))), kernel = 2);",
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
    // h.view(h.size(0), -1): Shape, Gather, Unsqueeze, Concat, Reshape in TorchScript
    let source = convert("cnn_flat_ts17", "Net").source;
    let l = lines(&source);
    assert!(
        l.contains(&"let h1: [B, 27] = flatten(max_pool2d(relu(conv(x)), kernel = 2));"),
        "{source}"
    );
    assert!(
        !source.contains("Shape") && !source.contains("reshape"),
        "{source}"
    );
}
