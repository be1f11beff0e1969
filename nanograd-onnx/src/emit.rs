//! From the decoded model to the generated source and weights: the graph's inputs, the
//! walk (`convert`), the output, then the text of the `model!` block and the safetensors
//! bytes.

use std::collections::HashMap;

use crate::consts::{dims_src, Role};
use crate::convert::{Act, Converter, Dim, Value};
use crate::names::{camel_case, input_var, snake_case};
use crate::proto::{tensor_shape_proto::dimension, type_proto, ModelProto, ValueInfoProto};
use crate::{Converted, Error, Problem, Result};

fn problem(op_type: &str, node: &str, message: String) -> Problem {
    Problem {
        op_type: op_type.into(),
        node: node.into(),
        message,
    }
}

/// The DSL's view of a graph input: its shape, and whether it holds indices.
fn input_shape(v: &ValueInfoProto) -> Result<(Vec<Dim>, bool), String> {
    let Some(type_proto::Value::TensorType(t)) = v.r#type.as_ref().and_then(|t| t.value.as_ref())
    else {
        return Err("it is not a tensor".into());
    };
    let index = match t.elem_type.unwrap_or(0) {
        1 => false,
        6 | 7 => true,
        e => {
            return Err(format!(
                "element type {e} is not supported (float32, int32 and int64 are)"
            ))
        }
    };
    let dims = t
        .shape
        .as_ref()
        .map(|s| s.dim.as_slice())
        .unwrap_or_default();
    if dims.is_empty() {
        return Err("its shape is not given".into());
    }
    let mut out = Vec::new();
    for (k, d) in dims.iter().enumerate() {
        out.push(match (k, &d.value) {
            (0, Some(dimension::Value::DimParam(_)) | None) => Dim::Batch,
            (0, Some(dimension::Value::DimValue(n))) if *n <= 0 => Dim::Batch,
            (_, Some(dimension::Value::DimValue(n)))
                if *n > 0 && *n as u64 <= crate::tensor::MAX_ELEMENTS as u64 =>
            {
                Dim::fixed(*n as usize)
            }
            (k, other) => {
                let what = match other {
                    Some(dimension::Value::DimParam(p)) => format!("the symbol `{p}`"),
                    Some(dimension::Value::DimValue(n)) => format!("{n}"),
                    None => "unknown".into(),
                };
                return Err(format!("dimension {k} is {what}; every dimension but the first (the batch) must be a fixed size"));
            }
        });
    }
    let sizes: Vec<usize> = out
        .iter()
        .map(|d| if let Dim::Fixed(n, _) = d { *n } else { 1 })
        .collect();
    crate::tensor::bounded(&sizes)?;
    Ok((out, index))
}

pub fn model(model: &ModelProto, name: &str) -> Result<Converted> {
    let graph = model
        .graph
        .as_ref()
        .ok_or_else(|| Error::Decode("the model has no graph".into()))?;
    let struct_name = camel_case(name)
        .ok_or_else(|| Error::Decode(format!("`{name}` is not a usable struct name")))?;
    let opset = model
        .opset_import
        .iter()
        .find(|o| matches!(o.domain.as_deref(), None | Some("") | Some("ai.onnx")))
        .and_then(|o| o.version)
        .ok_or_else(|| {
            Error::Decode("the model declares no opset of the default ONNX domain".into())
        })?;
    let outputs: Vec<String> = graph.output.iter().filter_map(|o| o.name.clone()).collect();
    let mut c = Converter::new(&graph.node, &outputs, opset);
    let mut problems = Vec::new();

    for t in &graph.initializer {
        let n = t.name.clone().unwrap_or_default();
        match crate::tensor::from_proto(t) {
            Ok(k) => {
                c.values.insert(n, Value::Const(k));
            }
            Err(m) => {
                problems.push(problem("initializer", &n, m));
                c.values.insert(n, Value::Poison);
            }
        }
    }
    let mut params = Vec::new();
    let inputs = graph
        .input
        .iter()
        .filter(|v| !c.values.contains_key(v.name.as_deref().unwrap_or_default()))
        .count();
    for v in &graph.input {
        let n = v.name.clone().unwrap_or_default();
        if c.values.contains_key(&n) {
            continue; // an initializer listed as an input (older IR versions)
        }
        match input_shape(v) {
            Ok((shape, index)) => {
                let var = input_var(&n);
                let prefix = (inputs > 1).then(|| var.to_ascii_uppercase());
                let shape: Vec<Dim> = input_roles(prefix.as_deref(), shape.len(), index)
                    .into_iter()
                    .zip(shape)
                    .map(|(role, d)| match (role, d) {
                        (Some(r), Dim::Fixed(n, _)) => c.syms.fresh(n, Some(Role::input(&r))),
                        (_, d) => d,
                    })
                    .collect();
                if !c.names.reserve(&var) {
                    problems.push(problem(
                        "input",
                        &n,
                        format!("its Rust name `{var}` is taken by another input"),
                    ));
                }
                let ty = if index { "u32" } else { "" };
                params.push(format!("{var}: {ty}{}", dims_src(&shape)));
                let act = Act {
                    expr: var,
                    dsl: shape.clone(),
                    shape,
                    var: true,
                    binary: false,
                    index,
                };
                c.values.insert(n, Value::Act(act));
            }
            Err(m) => {
                problems.push(problem("input", &n, m));
                c.values.insert(n, Value::Poison);
            }
        }
    }
    if params.is_empty() && problems.is_empty() {
        problems.push(problem(
            "graph",
            graph.name.as_deref().unwrap_or(""),
            "it has no input".into(),
        ));
    }
    c.run();
    problems.append(&mut c.problems);

    let mut tail = None;
    if outputs.len() != 1 {
        problems.push(problem(
            "graph",
            graph.name.as_deref().unwrap_or(""),
            format!(
                "it has {} outputs; a `forward` returns exactly one",
                outputs.len()
            ),
        ));
    } else {
        match c.values.get(&outputs[0]) {
            Some(Value::Act(a)) => {
                if let Some(&last) = a.shape.last() {
                    c.syms.name(last, Role::output("OUT"));
                }
                let m = if a.dsl == a.shape {
                    a.clone()
                } else {
                    Act {
                        expr: format!("reshape({}, {})", a.expr, dims_src(&a.shape)),
                        dsl: a.shape.clone(),
                        ..a.clone()
                    }
                };
                tail = Some(m);
            }
            Some(Value::Const(_)) => problems.push(problem(
                "output",
                &outputs[0],
                "it does not depend on the input".into(),
            )),
            Some(Value::Poison) => {}
            None => problems.push(problem("output", &outputs[0], "no node produces it".into())),
        }
    }
    let tail = match tail {
        Some(t) if problems.is_empty() => t,
        _ => return Err(Error::Unsupported(problems)),
    };

    let producer = format!(
        "{} {}",
        model.producer_name.as_deref().unwrap_or("unknown producer"),
        model.producer_version.as_deref().unwrap_or("")
    );
    let source = source(&struct_name, producer.trim(), opset, &c, &params, &tail);
    let safetensors = weights(&c)?;
    Ok(Converted {
        source,
        safetensors,
    })
}

/// The names of an input's dimensions (`None` for the batch): one input is `IN` (`[B, n]`),
/// `IN_CHANNELS`, `IN_H`, `IN_W` (`[B, C, H, W]`), `SEQ` and `IN` (`[B, T, n]`), `SEQ` for
/// token ids (`u32[B, T]`), else `IN_1`, `IN_2`, ... by position; with several inputs each
/// name starts with the input's (`X`, `X_CHANNELS`, `IDX_SEQ`, ...).
fn input_roles(prefix: Option<&str>, rank: usize, index: bool) -> Vec<Option<String>> {
    let words: Vec<&str> = match (rank, index) {
        (2, true) => vec!["SEQ"],
        (2, false) => vec![""],
        (3, false) => vec!["SEQ", ""],
        (4, false) => vec!["CHANNELS", "H", "W"],
        _ => Vec::new(),
    };
    let p = prefix.unwrap_or("IN");
    let name = |w: &str| match (w, prefix) {
        ("", _) => p.to_string(),
        ("SEQ", None) => "SEQ".to_string(),
        (w, _) => format!("{p}_{w}"),
    };
    let mut out = vec![None];
    for k in 1..rank {
        out.push(Some(match words.get(k - 1) {
            Some(w) => name(w),
            None => format!("{p}_{k}"),
        }));
    }
    out
}

fn source(
    struct_name: &str,
    producer: &str,
    opset: i64,
    c: &Converter,
    params: &[String],
    tail: &Act,
) -> String {
    let file = snake_case(struct_name);
    let inputs = params.join(", ");
    let result = dims_src(&tail.shape);
    let mut layers = String::new();
    for l in &c.layers {
        layers += &format!("        {}: {},\n", l.name, l.decl);
    }
    let mut body = String::new();
    for l in &c.lets {
        body += &format!("        {l}\n");
    }
    body += &format!("        {}\n", tail.expr);
    // the sizes as consts, declared in the order a reader meets them: the inputs', then
    // the layers' in order, then the rest of the body's and the result's
    let (consts, named) = c
        .syms
        .resolve(&[&inputs, &layers, &body, &result], &["B", struct_name]);
    let (inputs, layers, body, result) = (&named[0], &named[1], &named[2], &named[3]);

    let mut s = String::new();
    s +=
        &format!("// Generated by nanograd-onnx from an ONNX graph ({producer}, opset {opset}).\n");
    s += &format!("// The weights are in `{file}.safetensors`, under the field names below.\n");
    s += "use nanograd::prelude::*;\n\nmodel! {\n";
    for (name, value) in &consts {
        s += &format!("    const {name}: usize = {value};\n");
    }
    if !consts.is_empty() {
        s += "\n";
    }
    s += &format!("    /// Imported from ONNX ({producer}, opset {opset}).\n");
    s += &format!("    pub struct {struct_name} {{\n");
    s += layers;
    s += "    }\n\n";
    s += &format!("    fn forward({inputs}) -> {result} {{\n");
    s += body;
    s += "    }\n}\n";
    s
}

fn weights(c: &Converter) -> Result<Vec<u8>> {
    use safetensors::tensor::{Dtype, TensorView};
    let bytes: Vec<Vec<u8>> = c
        .weights
        .iter()
        .map(|w| w.data.iter().flat_map(|v| v.to_le_bytes()).collect())
        .collect();
    let mut views = Vec::new();
    for (w, b) in c.weights.iter().zip(&bytes) {
        let view = TensorView::new(Dtype::F32, w.dims.clone(), b)
            .map_err(|e| Error::Weights(format!("`{}`: {e}", w.name)))?;
        views.push((w.name.clone(), view));
    }
    views.sort_by(|a, b| a.0.cmp(&b.0));
    let meta = HashMap::from([("format".to_string(), "pt".to_string())]);
    safetensors::tensor::serialize(views, Some(meta)).map_err(|e| Error::Weights(e.to_string()))
}
