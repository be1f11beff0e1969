//! How the known sizes of a converted graph are named as consts, on small graphs built
//! here: two inputs (one named like the batch `B`), one size in several roles, a layer
//! whose name is another const's name, repeated blocks that share a width and blocks that
//! do not.

use nanograd_onnx::proto::{
    tensor_shape_proto::{dimension, Dimension},
    type_proto, AttributeProto, GraphProto, ModelProto, NodeProto, OperatorSetIdProto, TensorProto,
    TensorShapeProto, TypeProto, ValueInfoProto,
};
use prost::Message;

/// A float input `[batch, n]`.
fn input(name: &str, n: i64) -> ValueInfoProto {
    let dim = |v| Dimension {
        value: Some(v),
        ..Default::default()
    };
    ValueInfoProto {
        name: Some(name.into()),
        r#type: Some(TypeProto {
            value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                elem_type: Some(1),
                shape: Some(TensorShapeProto {
                    dim: vec![
                        dim(dimension::Value::DimParam("batch".into())),
                        dim(dimension::Value::DimValue(n)),
                    ],
                }),
            })),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn tensor(name: &str, dims: &[i64]) -> TensorProto {
    let len: i64 = dims.iter().product();
    TensorProto {
        name: Some(name.into()),
        dims: dims.to_vec(),
        data_type: Some(1),
        float_data: (0..len).map(|i| i as f32 * 0.01).collect(),
        ..Default::default()
    }
}

fn node(op: &str, name: &str, inputs: &[&str], output: &str) -> NodeProto {
    NodeProto {
        op_type: Some(op.into()),
        name: Some(name.into()),
        input: inputs.iter().map(|s| s.to_string()).collect(),
        output: vec![output.into()],
        ..Default::default()
    }
}

/// A graph of `nn.Linear` layers as the TorchScript exporter writes them (`Gemm` with
/// `transB = 1`, weights `MODULE.weight [out, in]`): `(module, input, output, in, out)`.
struct Graph {
    inputs: Vec<ValueInfoProto>,
    nodes: Vec<NodeProto>,
    init: Vec<TensorProto>,
}

impl Graph {
    fn new(inputs: &[(&str, i64)]) -> Graph {
        Graph {
            inputs: inputs.iter().map(|(n, d)| input(n, *d)).collect(),
            nodes: Vec::new(),
            init: Vec::new(),
        }
    }

    fn linear(mut self, module: &str, x: &str, y: &str, inp: i64, out: i64) -> Graph {
        let (w, b) = (format!("{module}.weight"), format!("{module}.bias"));
        let mut n = node("Gemm", &format!("/{module}/Gemm"), &[x, &w, &b], y);
        n.attribute.push(AttributeProto {
            name: Some("transB".into()),
            i: Some(1),
            r#type: Some(2),
            ..Default::default()
        });
        self.nodes.push(n);
        self.init.push(tensor(&w, &[out, inp]));
        self.init.push(tensor(&b, &[out]));
        self
    }

    fn op(mut self, op: &str, inputs: &[&str], y: &str) -> Graph {
        self.nodes
            .push(node(op, &format!("/{op}_{}", self.nodes.len()), inputs, y));
        self
    }

    fn source(self, output: &str) -> String {
        self.convert(output).source
    }

    /// The conversion, its source checked against the committed `tests/generated/STEM.rs`
    /// (which this file compiles; `NANOGRAD_ONNX_BLESS=1` rewrites it).
    fn committed(self, output: &str, stem: &str) -> nanograd_onnx::Converted {
        let c = self.convert(output);
        let path = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join(format!("tests/generated/{stem}.rs"));
        if std::env::var_os("NANOGRAD_ONNX_BLESS").is_some() {
            std::fs::write(&path, &c.source).unwrap();
        }
        let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
        assert_eq!(
            c.source,
            on_disk,
            "the source differs from {}",
            path.display()
        );
        c
    }

    fn convert(self, output: &str) -> nanograd_onnx::Converted {
        let model = ModelProto {
            ir_version: Some(8),
            producer_name: Some("test".into()),
            opset_import: vec![OperatorSetIdProto {
                domain: Some(String::new()),
                version: Some(17),
            }],
            graph: Some(GraphProto {
                name: Some("g".into()),
                node: self.nodes,
                initializer: self.init,
                input: self.inputs,
                output: vec![ValueInfoProto {
                    name: Some(output.into()),
                    ..Default::default()
                }],
                ..Default::default()
            }),
            ..Default::default()
        };
        nanograd_onnx::convert(&model.encode_to_vec(), "Net").unwrap_or_else(|e| panic!("{e}"))
    }
}

/// The lines of `source` from the first const to the end, trimmed, without doc comments.
fn body(source: &str) -> Vec<&str> {
    source
        .lines()
        .map(str::trim)
        .skip_while(|s| !s.starts_with("const "))
        .filter(|s| !s.starts_with("///") && !s.is_empty())
        .collect()
}

mod consts_two_inputs {
    include!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/generated/consts_two_inputs.rs"
    ));
}

mod consts_keyword_input {
    include!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/generated/consts_keyword_input.rs"
    ));
}

mod consts_named_like_a_const {
    include!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/generated/consts_named_like_a_const.rs"
    ));
}

/// `w·x + b` with the weights `tensor` writes (`[out, in]`, then the bias).
fn linear(x: &[f32], inp: usize, out: usize) -> Vec<f32> {
    let v = |i: usize| i as f32 * 0.01;
    (0..out)
        .map(|o| (0..inp).map(|i| v(o * inp + i) * x[i]).sum::<f32>() + v(o))
        .collect()
}

fn assert_close(got: &[f32], want: &[f32]) {
    assert_eq!(got.len(), want.len());
    for (g, w) in got.iter().zip(want) {
        assert!(
            (g - w).abs() <= 1e-5 * (1.0 + w.abs()),
            "{got:?} against {want:?}"
        );
    }
}

#[test]
fn two_inputs_are_named_after_their_inputs_and_b_is_the_batch() {
    use nanograd::prelude::*;
    use nanograd::rand::{rngs::StdRng, SeedableRng};
    // y = fc_a(a) + fc_b(b): the two outputs are one size (the `+` makes them one role, the
    // graph's output); the input `b`'s width cannot be `B`, the batch
    let c = Graph::new(&[("a", 8), ("b", 4)])
        .linear("fc_a", "a", "ya", 8, 16)
        .linear("fc_b", "b", "yb", 4, 16)
        .op("Add", &["ya", "yb"], "y")
        .committed("y", "consts_two_inputs");
    let source = c.source.clone();
    assert_eq!(
        body(&source),
        [
            "const A: usize = 8;",
            "const B_2: usize = 4;",
            "const OUT: usize = 16;",
            "pub struct Net {",
            "fc_a: Dense(A -> OUT),",
            "fc_b: Dense(B_2 -> OUT),",
            "}",
            "fn forward(a: [B, A], b: [B, B_2]) -> [B, OUT] {",
            "fc_a(a) + fc_b(b)",
            "}",
            "}",
        ],
        "{source}"
    );
    // the source compiles (above) and computes the graph
    let mut m = consts_two_inputs::Net::<f32>::new(&mut StdRng::seed_from_u64(0));
    m.load_safetensors_bytes(&c.safetensors).unwrap();
    m.set_eval_mode();
    let a: [f32; 8] = std::array::from_fn(|i| i as f32 - 3.0);
    let b: [f32; 4] = std::array::from_fn(|i| 1.0 - i as f32 * 0.5);
    let y = m.forward(&[a], &[b]).unwrap();
    let want: Vec<f32> = linear(&a, 8, 16)
        .iter()
        .zip(linear(&b, 4, 16))
        .map(|(p, q)| p + q)
        .collect();
    assert_close(&y[0], &want);
}

#[test]
fn one_size_in_three_roles_is_three_consts() {
    // 5 is the input's width, `hidden`'s width and the output's: three roles
    let source = Graph::new(&[("x", 5)])
        .linear("hidden", "x", "h", 5, 5)
        .op("Relu", &["h"], "r")
        .linear("head", "r", "y", 5, 5)
        .source("y");
    assert_eq!(
        body(&source),
        [
            "const IN: usize = 5;",
            "const HIDDEN: usize = 5;",
            "const OUT: usize = 5;",
            "pub struct Net {",
            "hidden: Dense(IN -> HIDDEN),",
            "head: Dense(HIDDEN -> OUT),",
            "}",
            "fn forward(x: [B, IN]) -> [B, OUT] {",
            "let h1: [B, HIDDEN] = relu(hidden(x));",
            "head(h1)",
            "}",
            "}",
        ],
        "{source}"
    );
}

#[test]
fn a_layer_named_like_another_const_does_not_take_its_name() {
    use nanograd::prelude::*;
    use nanograd::rand::{rngs::StdRng, SeedableRng};
    // a layer `in` (a keyword: the field is `in_layer`) and a hidden layer `out` as wide
    // as the graph's output: `OUT` is the layer's (met first), the output's is `OUT_2`
    let c = Graph::new(&[("x", 8)])
        .linear("in", "x", "h1", 8, 6)
        .linear("out", "h1", "h2", 6, 5)
        .op("Relu", &["h2"], "r")
        .linear("head", "r", "y", 5, 5)
        .committed("y", "consts_named_like_a_const");
    let source = c.source.clone();
    let mut m = consts_named_like_a_const::Net::<f32>::new(&mut StdRng::seed_from_u64(0));
    m.load_safetensors_bytes(&c.safetensors).unwrap();
    m.set_eval_mode();
    let x: [f32; 8] = std::array::from_fn(|i| 0.5 - i as f32 * 0.25);
    let h: Vec<f32> = linear(&linear(&x, 8, 6), 6, 5)
        .iter()
        .map(|v| v.max(0.0))
        .collect();
    assert_close(&m.forward(&[x]).unwrap()[0], &linear(&h, 5, 5));
    assert_eq!(
        body(&source),
        [
            "const IN: usize = 8;",
            "const IN_LAYER: usize = 6;",
            "const OUT: usize = 5;",
            "const OUT_2: usize = 5;",
            "pub struct Net {",
            "in_layer: Dense(IN -> IN_LAYER),",
            "out: Dense(IN_LAYER -> OUT),",
            "head: Dense(OUT -> OUT_2),",
            "}",
            "fn forward(x: [B, IN]) -> [B, OUT_2] {",
            "let h1: [B, IN_LAYER] = in_layer(x);",
            "let h2: [B, OUT] = relu(out(h1));",
            "head(h2)",
            "}",
            "}",
        ],
        "{source}"
    );
}

#[test]
fn repeated_blocks_share_a_width_only_when_it_is_the_same() {
    // blocks.0.fc and blocks.1.fc, both 12 wide: one role, one const without the index
    let same = Graph::new(&[("x", 8)])
        .linear("blocks.0.fc", "x", "h1", 8, 12)
        .linear("blocks.1.fc", "h1", "h2", 12, 12)
        .linear("head", "h2", "y", 12, 3)
        .source("y");
    let l = body(&same);
    for want in [
        "const BLOCKS_FC: usize = 12;",
        "blocks_0_fc: Dense(IN -> BLOCKS_FC),",
        "blocks_1_fc: Dense(BLOCKS_FC -> BLOCKS_FC),",
        "head: Dense(BLOCKS_FC -> OUT),",
    ] {
        assert!(l.contains(&want), "missing `{want}` in\n{same}");
    }
    // 12 and 10: two consts, each named with its block
    let differ = Graph::new(&[("x", 8)])
        .linear("blocks.0.fc", "x", "h1", 8, 12)
        .linear("blocks.1.fc", "h1", "h2", 12, 10)
        .linear("head", "h2", "y", 10, 3)
        .source("y");
    let l = body(&differ);
    for want in [
        "const BLOCKS_0_FC: usize = 12;",
        "const BLOCKS_1_FC: usize = 10;",
        "blocks_0_fc: Dense(IN -> BLOCKS_0_FC),",
        "blocks_1_fc: Dense(BLOCKS_0_FC -> BLOCKS_1_FC),",
    ] {
        assert!(l.contains(&want), "missing `{want}` in\n{differ}");
    }
    assert!(!differ.contains("BLOCKS_FC"), "{differ}");
}

#[test]
fn an_input_named_like_a_keyword_gets_a_rust_name_of_its_own() {
    use nanograd::prelude::*;
    use nanograd::rand::{rngs::StdRng, SeedableRng};
    // `type` and `relu` cannot be the fn's parameters as they are: `type_in`, `relu_in`
    let c = Graph::new(&[("type", 4), ("relu", 2)])
        .linear("fc_t", "type", "yt", 4, 3)
        .linear("fc_r", "relu", "yr", 2, 3)
        .op("Add", &["yt", "yr"], "y")
        .committed("y", "consts_keyword_input");
    let source = c.source.clone();
    assert!(
        source.contains("fn forward(type_in: [B, TYPE_IN], relu_in: [B, RELU_IN]) -> [B, OUT] {"),
        "{source}"
    );
    let mut m = consts_keyword_input::Net::<f32>::new(&mut StdRng::seed_from_u64(0));
    m.load_safetensors_bytes(&c.safetensors).unwrap();
    m.set_eval_mode();
    let t: [f32; 4] = std::array::from_fn(|i| i as f32 * 0.5 - 1.0);
    let r: [f32; 2] = [0.25, -2.0];
    let y = m.forward(&[t], &[r]).unwrap();
    let want: Vec<f32> = linear(&t, 4, 3)
        .iter()
        .zip(linear(&r, 2, 3))
        .map(|(p, q)| p + q)
        .collect();
    assert_close(&y[0], &want);
}
