//! What the converter refuses, and how: malformed bytes are an `Err` (never a panic),
//! every unsupported operator, attribute or missing input is reported with the node's
//! operator type and name, all of them in one error, and the command line exits with
//! status 1 and writes nothing.

use std::path::PathBuf;

use nanograd_onnx::proto::ModelProto;
use nanograd_onnx::{convert, Error, Problem};
use prost::Message;

fn fixture_bytes(stem: &str) -> Vec<u8> {
    std::fs::read(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("tests/fixtures/{stem}.onnx")),
    )
    .unwrap()
}

fn fixture(stem: &str) -> ModelProto {
    ModelProto::decode(fixture_bytes(stem).as_slice()).unwrap()
}

fn problems(model: &ModelProto) -> Vec<Problem> {
    match convert(&model.encode_to_vec(), "Net") {
        Err(Error::Unsupported(p)) => p,
        other => panic!("expected problems, got {other:?}"),
    }
}

/// The node of the graph whose operator is `op` (the first one).
fn node_mut<'m>(model: &'m mut ModelProto, op: &str) -> &'m mut nanograd_onnx::proto::NodeProto {
    let graph = model.graph.as_mut().unwrap();
    graph
        .node
        .iter_mut()
        .find(|n| n.op_type.as_deref() == Some(op))
        .unwrap()
}

#[test]
fn random_bytes_are_an_error() {
    // a fixed xorshift stream: 200 buffers of 0 to 2,000 bytes
    let mut s = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        s
    };
    for k in 0..200 {
        let len = (next() % 2000) as usize;
        let bytes: Vec<u8> = (0..len).map(|_| next() as u8).collect();
        assert!(
            convert(&bytes, "Net").is_err(),
            "buffer {k} of {len} random bytes converted"
        );
    }
    assert!(
        matches!(convert(b"", "Net"), Err(Error::Decode(_))),
        "no graph at all"
    );
}

#[test]
fn every_truncation_is_an_error() {
    let bytes = fixture_bytes("cnn_ts17");
    for len in 0..bytes.len() {
        let r = convert(&bytes[..len], "Net");
        assert!(
            r.is_err(),
            "the first {len} of {} bytes converted",
            bytes.len()
        );
    }
    assert!(convert(&bytes, "Net").is_ok());
}

#[test]
fn a_missing_initializer_names_the_node_and_the_input() {
    let mut m = fixture("mlp_ts17");
    m.graph
        .as_mut()
        .unwrap()
        .initializer
        .retain(|t| t.name.as_deref() != Some("fc2.weight"));
    assert_eq!(
        problems(&m),
        [Problem {
            op_type: "Gemm".into(),
            node: "/fc2/Gemm".into(),
            message: "input `fc2.weight` is not produced by any node, initializer or graph input"
                .into(),
        }]
    );
}

#[test]
fn an_unsupported_operator_is_named_with_its_node() {
    let mut m = fixture("mlp_ts17");
    node_mut(&mut m, "Tanh").op_type = Some("Celu".into());
    let p = problems(&m);
    assert_eq!(p.len(), 1, "{p:?}");
    assert_eq!(
        p[0].to_string(),
        "Celu `/Tanh`: the operator `Celu` is not supported"
    );
}

#[test]
fn several_problems_are_reported_together() {
    let mut m = fixture("cnn_ts17");
    let graph = m.graph.as_mut().unwrap();
    let by_name = |g: &mut nanograd_onnx::proto::GraphProto, name: &str| {
        let i = g
            .node
            .iter()
            .position(|n| n.name.as_deref() == Some(name))
            .unwrap();
        i
    };
    let i = by_name(graph, "/Relu");
    graph.node[i].op_type = Some("HardSwish".into());
    let i = by_name(graph, "/Relu_1");
    graph.node[i].op_type = Some("Celu".into());
    let i = by_name(graph, "/fc/Gemm");
    graph.node[i]
        .attribute
        .push(nanograd_onnx::proto::AttributeProto {
            name: Some("transA".into()),
            i: Some(1),
            r#type: Some(2),
            ..Default::default()
        });
    let err = convert(&m.encode_to_vec(), "Net").unwrap_err();
    // an elementwise operator that cannot be converted keeps its input's shape, so the
    // nodes after it are still checked
    assert_eq!(
        err.to_string(),
        "cannot convert the graph: 3 problems\n  \
         HardSwish `/Relu`: the operator `HardSwish` is not supported\n  \
         Celu `/Relu_1`: the operator `Celu` is not supported\n  \
         Gemm `/fc/Gemm`: transA = 1 (a transposed input) is not supported"
    );
}

#[test]
fn a_conv_with_unsupported_attributes_lists_each() {
    let mut m = fixture("cnn_flat_ts17");
    let conv = node_mut(&mut m, "Conv");
    for a in conv.attribute.iter_mut() {
        match a.name.as_deref() {
            Some("group") => a.i = Some(2),
            Some("strides") => a.ints = vec![1, 2],
            _ => {}
        }
    }
    let p = problems(&m);
    assert_eq!(p.len(), 1, "{p:?}");
    assert_eq!(
        p[0].message,
        "group = 2 (grouped convolution), strides = [1, 2] (only equal strides) not supported"
    );
}

#[test]
fn external_data_is_an_error() {
    let mut m = fixture("mlp_ts17");
    let t = &mut m.graph.as_mut().unwrap().initializer[0];
    t.data_location = Some(1);
    let p = problems(&m);
    assert_eq!(p[0].op_type, "initializer");
    assert!(p[0].message.contains("EXTERNAL"), "{}", p[0].message);
}

#[test]
fn an_unknown_non_batch_dimension_is_an_error() {
    use nanograd_onnx::proto::tensor_shape_proto::dimension::Value;
    use nanograd_onnx::proto::type_proto;
    let mut m = fixture("mlp_ts17");
    let input = &mut m.graph.as_mut().unwrap().input[0];
    let Some(type_proto::Value::TensorType(t)) =
        input.r#type.as_mut().and_then(|t| t.value.as_mut())
    else {
        panic!()
    };
    t.shape.as_mut().unwrap().dim[1].value = Some(Value::DimParam("features".into()));
    let p = problems(&m);
    assert_eq!(
        p[0].to_string(),
        "input `x`: dimension 1 is the symbol `features`; every dimension but the first (the batch) must be a fixed size"
    );
}

#[test]
fn the_command_line_exits_1_and_writes_nothing() {
    let dir = std::env::temp_dir().join(format!("nanograd-onnx-errors-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut m = fixture("mlp_ts17");
    node_mut(&mut m, "Sigmoid").op_type = Some("Celu".into());
    node_mut(&mut m, "Tanh").op_type = Some("Erf".into());
    std::fs::create_dir_all(&dir).unwrap();
    let model = dir.join("bad.onnx");
    std::fs::write(&model, m.encode_to_vec()).unwrap();
    let out = dir.join("out");
    let run = std::process::Command::new(env!("CARGO_BIN_EXE_nanograd-onnx"))
        .arg(&model)
        .args(["--name", "MlpNet", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(run.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(stderr.contains("2 problems"), "{stderr}");
    assert!(stderr.contains("Erf `/Tanh`: the operator `Erf` is not supported outside a GELU (x·Φ(x), which becomes `gelu(x, approximate = \"none\")`)"), "{stderr}");
    assert!(stderr.contains("Celu `/Sigmoid`"), "{stderr}");
    assert!(!out.exists(), "nothing is written");

    let ok = std::process::Command::new(env!("CARGO_BIN_EXE_nanograd-onnx"))
        .arg(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/mlp_ts17.onnx"))
        .args(["--name", "MlpNet", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let source = std::fs::read_to_string(out.join("mlp_net.rs")).unwrap();
    assert!(source.contains("pub struct MlpNet {"), "{source}");
    assert!(out.join("mlp_net.safetensors").exists());
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The `Constant` node named `name` of a TorchScript export, holding a float scalar.
fn set_float_constant(m: &mut ModelProto, name: &str, value: f32) {
    let node = m
        .graph
        .as_mut()
        .unwrap()
        .node
        .iter_mut()
        .find(|n| n.name.as_deref() == Some(name))
        .unwrap();
    let t = node.attribute[0].t.as_mut().unwrap();
    t.raw_data = Some(value.to_le_bytes().to_vec());
    t.float_data.clear();
}

#[test]
fn a_gelu_chain_with_another_constant_is_not_a_gelu() {
    // x·0.5·(1 + erf(x/√2)) with 0.6 in place of 0.5 (TorchScript's `/h.0/Constant_3`
    // scales the product): no GELU, so its Erf is reported, in each block that has it
    let mut m = fixture("gpt_ts17");
    let graph = m.graph.as_ref().unwrap();
    let half = graph
        .node
        .iter()
        .filter(|n| {
            n.name
                .as_deref()
                .is_some_and(|s| s.starts_with("/h.0/Constant"))
        })
        .find(|n| {
            n.attribute[0]
                .t
                .as_ref()
                .is_some_and(|t| t.raw_data.as_deref() == Some(&0.5f32.to_le_bytes()[..]))
        })
        .and_then(|n| n.name.clone())
        .expect("the GELU's 0.5");
    set_float_constant(&mut m, &half, 0.6);
    let p = problems(&m);
    assert_eq!(p.len(), 1, "{p:?}");
    assert_eq!(
        p[0].to_string(),
        "Erf `/h.0/Erf`: the operator `Erf` is not supported outside a GELU (x·Φ(x), which becomes `gelu(x, approximate = \"none\")`)"
    );
}

#[test]
fn an_attention_mask_other_than_the_causal_one_is_reported() {
    // Trilu with upper = 0 masks the lower triangle instead: the attention is not taken as
    // `MultiHeadAttention`, its batch-merging ops are reported, and why it was not taken
    for stem in ["gpt_ts17", "gpt_tanh_ts18"] {
        let mut m = fixture(stem);
        let trilu = node_mut(&mut m, "Trilu");
        trilu.attribute[0].i = Some(0);
        let p = problems(&m);
        let why: Vec<String> = p
            .iter()
            .map(|p| p.to_string())
            .filter(|s| s.contains("not converted as `nn.MultiheadAttention`"))
            .collect();
        assert_eq!(
            why,
            ["Transpose `/h.0/attn/Transpose`: not converted as `nn.MultiheadAttention`: the attention mask is neither absent nor the causal one (-inf above the diagonal)"],
            "{stem}: {p:?}"
        );
        assert!(
            p.iter()
                .any(|p| p.node == "/h.0/attn/Transpose" && p.message.contains("perm [1, 0, 2]")),
            "{stem}: {p:?}"
        );
    }
}

#[test]
fn scaled_dot_product_attention_with_another_scale_is_reported() {
    // the TorchScript export scales q and k by √(1/√d) each, computed from the shape; the
    // numerator 1 of 1/√d made 2: the scores are scaled by 2/√8, which is not attention,
    // so the problems the nodes had on their own are reported, with why
    let mut m = fixture("sdpa_ts17");
    let graph = m.graph.as_ref().unwrap();
    let div = graph
        .node
        .iter()
        .find(|n| n.name.as_deref() == Some("/Div"))
        .unwrap();
    let one = div.input[0].clone();
    let name = graph
        .node
        .iter()
        .find(|n| n.output.first() == Some(&one))
        .and_then(|n| n.name.clone())
        .unwrap();
    set_float_constant(&mut m, &name, 2.0);
    let p = problems(&m);
    let text: Vec<String> = p.iter().map(|p| p.to_string()).collect();
    assert!(
        text.iter().any(|t| t
            .contains("not converted as scaled dot-product attention: the scores are scaled by")),
        "{text:?}"
    );
    assert!(
        text.iter()
            .any(|t| t.starts_with("Transpose `/Transpose_3`: perm [0, 2, 3, 1]")),
        "{text:?}"
    );
}

#[test]
fn corrupted_models_never_panic() {
    // a few bytes changed at random in real models: many still decode, into graphs with odd
    // dimensions, attributes and names, which must come back as Ok or Err, never a panic
    let mut s = 0x2545_f491_4f6c_dd1du64;
    let mut next = || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        s
    };
    let mut converted = 0;
    for stem in [
        "cnn_ts17",
        "cnn_flat_ts17",
        "cnn_dynamo18",
        "mlp_ts17",
        "cnn_bn_ts17",
        "gpt_ts17",
        "gpt_tanh_dynamo18",
        "sdpa_dynamo17",
    ] {
        let original = fixture_bytes(stem);
        for _ in 0..600 {
            let mut bytes = original.clone();
            for _ in 0..1 + next() % 4 {
                let i = (next() % bytes.len() as u64) as usize;
                bytes[i] = next() as u8;
            }
            if convert(&bytes, "Net").is_ok() {
                converted += 1;
            }
        }
    }
    // some changes hit only weights or names, and those models still convert
    assert!(converted > 0);
}
