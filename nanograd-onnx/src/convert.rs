//! The graph walk: every node in order, each either folded to a constant (`fold`) or turned
//! into a `model!` layer or op on a run-time tensor, with every problem collected.

use std::collections::{HashMap, HashSet};

use crate::consts::{dim_src, dims_src, Role, Sym, Syms};
use crate::fold;
use crate::names::{layer_base, Names};

mod patterns;
mod sdpa;
use crate::proto::{AttributeProto, NodeProto};
use crate::tensor::{bounded, Const, Int, MAX_ELEMENTS};
use crate::Problem;

/// A dimension of a run-time tensor. A fixed size carries the symbol of its role (see
/// `consts`); two dimensions are equal when their sizes are, whatever their symbols.
#[derive(Clone, Copy, Debug)]
pub enum Dim {
    Batch,
    Fixed(usize, Sym),
}

impl PartialEq for Dim {
    fn eq(&self, other: &Dim) -> bool {
        match (self, other) {
            (Dim::Batch, Dim::Batch) => true,
            (Dim::Fixed(a, _), Dim::Fixed(b, _)) => a == b,
            _ => false,
        }
    }
}

impl Eq for Dim {}

impl Dim {
    /// A size with no role (written as a literal).
    pub fn fixed(n: usize) -> Dim {
        Dim::Fixed(n, Sym::NONE)
    }
}

/// A shape as numbers, for messages.
pub fn fmt_dims(dims: &[Dim]) -> String {
    let parts: Vec<String> = dims
        .iter()
        .map(|d| match d {
            Dim::Batch => "B".to_string(),
            Dim::Fixed(n, _) => n.to_string(),
        })
        .collect();
    format!("[{}]", parts.join(", "))
}

/// A run-time tensor: a source expression, its ONNX shape, and the shape the expression
/// has in the DSL (they differ where ONNX keeps size-1 dimensions the DSL drops, as
/// `GlobalAveragePool`'s `[B, C, 1, 1]` against `global_avg_pool2d`'s `[B, C]`).
#[derive(Clone, Debug)]
pub struct Act {
    pub expr: String,
    pub shape: Vec<Dim>,
    pub dsl: Vec<Dim>,
    /// The expression is a plain name.
    pub var: bool,
    /// The expression is `a op b` (parenthesised when it is an operand).
    pub binary: bool,
    /// The tensor holds indices (a `u32` input).
    pub index: bool,
}

impl Act {
    fn new(expr: String, shape: Vec<Dim>) -> Act {
        Act {
            expr,
            dsl: shape.clone(),
            shape,
            var: false,
            binary: false,
            index: false,
        }
    }
}

#[derive(Clone, Debug)]
pub enum Value {
    Const(Const),
    Act(Act),
    /// The output of a node that could not be converted (its problem is already reported).
    Poison,
}

/// A field of the generated struct.
pub struct Layer {
    pub name: String,
    pub decl: String,
}

/// A tensor of the safetensors file.
pub struct Weight {
    pub name: String,
    pub dims: Vec<usize>,
    pub data: Vec<f32>,
}

pub struct Converter<'a> {
    nodes: &'a [NodeProto],
    pub values: HashMap<String, Value>,
    /// Names of the initializers (layer names and `Param`s are taken from them).
    uses: HashMap<String, usize>,
    consumers: HashMap<String, Vec<usize>>,
    absorbed: HashSet<usize>,
    pub problems: Vec<Problem>,
    pub layers: Vec<Layer>,
    pub weights: Vec<Weight>,
    pub lets: Vec<String>,
    pub names: Names,
    /// The symbols of the fixed dimensions, named as consts at the end.
    pub syms: Syms,
    next_var: usize,
    /// The ONNX opset of the default domain.
    opset: i64,
    /// The graph's outputs.
    graph_outputs: Vec<String>,
    /// Subgraphs recognised whole (`patterns`), and the region of each of their nodes.
    regions: Vec<patterns::Region>,
    in_region: HashMap<usize, usize>,
    /// The problems of speculative regions' nodes so far, with the region and the node of
    /// each.
    held_back: Vec<(usize, usize, Problem)>,
}

type Out = Result<Vec<Value>, String>;

/// The largest kernel, stride or padding accepted (larger ones are not real models, and
/// keep the size arithmetic far from overflowing).
const MAX_WINDOW: i64 = 1 << 16;

/// Operators whose output has their first input's shape: when one cannot be converted, the
/// nodes after it are still checked.
const SHAPE_PRESERVING: &[&str] = &[
    "Abs",
    "Celu",
    "Clip",
    "Elu",
    "Erf",
    "Exp",
    "Gelu",
    "HardSigmoid",
    "HardSwish",
    "LeakyRelu",
    "Log",
    "Mish",
    "Neg",
    "PRelu",
    "Reciprocal",
    "Relu",
    "Selu",
    "Sigmoid",
    "Sign",
    "Softplus",
    "Softsign",
    "Sqrt",
    "Tanh",
    "ThresholdedRelu",
    "Softmax",
    "LogSoftmax",
    "Dropout",
    "BatchNormalization",
    "LayerNormalization",
    "InstanceNormalization",
];

fn attr<'n>(node: &'n NodeProto, name: &str) -> Option<&'n AttributeProto> {
    node.attribute
        .iter()
        .find(|a| a.name.as_deref() == Some(name))
}
fn attr_i(node: &NodeProto, name: &str, default: i64) -> i64 {
    attr(node, name).and_then(|a| a.i).unwrap_or(default)
}
fn attr_f(node: &NodeProto, name: &str, default: f32) -> f32 {
    attr(node, name).and_then(|a| a.f).unwrap_or(default)
}
fn attr_ints(node: &NodeProto, name: &str) -> Option<Vec<i64>> {
    attr(node, name).map(|a| a.ints.clone())
}
fn attr_s(node: &NodeProto, name: &str) -> Option<String> {
    attr(node, name)
        .and_then(|a| a.s.as_ref())
        .map(|s| String::from_utf8_lossy(s).into_owned())
}

/// Errors naming every attribute of `node` outside `allowed`.
fn only_attrs(node: &NodeProto, allowed: &[&str]) -> Result<(), String> {
    let extra: Vec<String> = node
        .attribute
        .iter()
        .filter_map(|a| a.name.clone())
        .filter(|n| !allowed.contains(&n.as_str()))
        .map(|n| format!("`{n}`"))
        .collect();
    if extra.is_empty() {
        Ok(())
    } else {
        Err(format!("attribute {} is not supported", extra.join(", ")))
    }
}

fn fixed(dims: &[Dim], what: &str) -> Result<Vec<usize>, String> {
    dims.iter()
        .map(|d| match d {
            Dim::Fixed(n, _) => Ok(*n),
            Dim::Batch => Err(format!(
                "{what} has the batch dimension where a fixed size is needed"
            )),
        })
        .collect()
}

/// The PyTorch module a node came from, as the default exporter records it in the node's
/// `namespace` metadata (`: Gpt/h.0: Block/h.0.fc: Linear/linear_2: aten.linear.default`
/// → `h.0.fc`): the last module before the operator.
fn module_path(node: &NodeProto) -> Option<String> {
    let ns = node
        .metadata_props
        .iter()
        .find(|p| p.key.as_deref() == Some("namespace"))?
        .value
        .as_deref()?;
    let parts: Vec<&str> = ns.split('/').collect();
    let module = parts.len().checked_sub(2).map(|k| parts[k])?;
    let name = module.split(':').next()?.trim();
    (!name.is_empty()).then(|| name.to_string())
}

/// The size a convolution or pool gives a spatial dimension: the input's own (and its
/// symbol) when kept, else a new size with no role.
fn kept_size(d: Dim, n: usize) -> Dim {
    if d == Dim::fixed(n) {
        d
    } else {
        Dim::fixed(n)
    }
}

/// A float literal that reads back as the same f32.
pub fn literal(v: f32) -> String {
    let s = format!("{v:?}");
    if s.contains(['.', 'e', 'E']) || s.contains("inf") || s.contains("NaN") {
        s
    } else {
        format!("{s}.0")
    }
}

impl<'a> Converter<'a> {
    pub fn new(nodes: &'a [NodeProto], outputs: &[String], opset: i64) -> Self {
        let mut uses: HashMap<String, usize> = HashMap::new();
        let mut consumers: HashMap<String, Vec<usize>> = HashMap::new();
        for (i, n) in nodes.iter().enumerate() {
            for input in n.input.iter().filter(|s| !s.is_empty()) {
                // `Shape` reads only the (known) dimensions, not the values
                if n.op_type.as_deref() != Some("Shape") {
                    *uses.entry(input.clone()).or_default() += 1;
                }
                consumers.entry(input.clone()).or_default().push(i);
            }
        }
        for o in outputs {
            *uses.entry(o.clone()).or_default() += 1;
        }
        Converter {
            nodes,
            values: HashMap::new(),
            uses,
            consumers,
            absorbed: HashSet::new(),
            problems: Vec::new(),
            layers: Vec::new(),
            weights: Vec::new(),
            lets: Vec::new(),
            names: Names::default(),
            syms: Syms::default(),
            next_var: 0,
            opset,
            graph_outputs: outputs.to_vec(),
            regions: Vec::new(),
            in_region: HashMap::new(),
            held_back: Vec::new(),
        }
    }

    pub fn run(&mut self) {
        self.find_regions();
        for i in 0..self.nodes.len() {
            if self.absorbed.contains(&i) {
                continue;
            }
            // a region is converted at its last node, when every value it reads is known
            match self.in_region.get(&i) {
                Some(&k) if self.regions[k].speculative() => {
                    let before = self.problems.len();
                    self.node(i);
                    let new: Vec<Problem> = self.problems.drain(before..).collect();
                    self.held_back.extend(new.into_iter().map(|p| (k, i, p)));
                    if self.regions[k].nodes.last() == Some(&i) {
                        self.region(k);
                    }
                }
                Some(&k) if self.regions[k].nodes.last() == Some(&i) => self.region(k),
                Some(_) => {}
                None => self.node(i),
            }
        }
        // (a region always ends at a node converted above; nothing held back is lost)
        let rest = std::mem::take(&mut self.held_back);
        self.problems.extend(rest.into_iter().map(|(_, _, p)| p));
    }

    fn problem(&mut self, node: &NodeProto, message: String) {
        self.problems.push(Problem {
            op_type: node.op_type.clone().unwrap_or_default(),
            node: node.name.clone().unwrap_or_default(),
            message,
        });
    }

    fn node(&mut self, i: usize) {
        let node = &self.nodes[i];
        let mut ins = Vec::with_capacity(node.input.len());
        let mut missing = Vec::new();
        let mut poisoned = false;
        for name in &node.input {
            if name.is_empty() {
                ins.push(None);
                continue;
            }
            match self.values.get(name) {
                Some(Value::Poison) => poisoned = true,
                Some(v) => ins.push(Some(v.clone())),
                None => missing.push(format!("`{name}`")),
            }
        }
        let result = if !missing.is_empty() {
            Err(format!(
                "input {} is not produced by any node, initializer or graph input",
                missing.join(", ")
            ))
        } else if poisoned {
            Ok(vec![])
        } else if !matches!(node.domain.as_deref(), None | Some("") | Some("ai.onnx")) {
            Err(format!(
                "operators of the domain `{}` are not supported",
                node.domain.clone().unwrap_or_default()
            ))
        } else {
            self.op(node, &ins)
        };
        match result {
            Ok(outs) if !outs.is_empty() || poisoned => {
                for (k, name) in node.output.iter().enumerate() {
                    let v = outs.get(k).cloned().unwrap_or(Value::Poison);
                    if k > 0
                        && outs.get(k).is_none()
                        && self.uses.get(name).copied().unwrap_or(0) > 0
                        && !poisoned
                    {
                        self.problem(node, format!("output {k} (`{name}`) is used, but only the first output is supported"));
                    }
                    let v = match v {
                        Value::Act(a) => Value::Act(self.finish(name, a)),
                        v => v,
                    };
                    self.values.insert(name.clone(), v);
                }
            }
            Ok(_) => {
                for name in &node.output {
                    self.values.insert(name.clone(), Value::Poison);
                }
            }
            Err(message) => {
                self.problem(node, message);
                // an elementwise operator keeps its input's shape, so the nodes after it
                // are still checked (and their problems reported in the same run)
                let op = node.op_type.as_deref().unwrap_or("");
                let keep = match ins.first() {
                    Some(Some(Value::Act(a))) if SHAPE_PRESERVING.contains(&op) => {
                        Value::Act(a.clone())
                    }
                    _ => Value::Poison,
                };
                for (k, name) in node.output.iter().enumerate() {
                    self.values.insert(
                        name.clone(),
                        if k == 0 { keep.clone() } else { Value::Poison },
                    );
                }
            }
        }
    }

    /// Binds a tensor used more than once to a `let`, so its expression is not repeated.
    fn finish(&mut self, name: &str, a: Act) -> Act {
        if self.uses.get(name).copied().unwrap_or(0) > 1 && !a.var {
            self.bind(a)
        } else {
            a
        }
    }

    /// `let hN: [dims] = expr;` and the name in its place.
    fn bind(&mut self, a: Act) -> Act {
        self.next_var += 1;
        let var = format!("h{}", self.next_var);
        self.lets
            .push(format!("let {var}: {} = {};", dims_src(&a.dsl), a.expr));
        Act {
            expr: var,
            var: true,
            binary: false,
            ..a
        }
    }

    /// The expression with the ONNX shape (a reshape where the DSL's shape differs).
    fn materialize(&self, a: &Act) -> Act {
        if a.dsl == a.shape {
            return a.clone();
        }
        let expr = format!("reshape({}, {})", a.expr, dims_src(&a.shape));
        Act {
            expr,
            dsl: a.shape.clone(),
            var: false,
            binary: false,
            ..a.clone()
        }
    }

    /// A layer's argument: a plain name, bound first if needed.
    fn operand(&mut self, a: &Act) -> String {
        let m = self.materialize(a);
        if m.var {
            m.expr
        } else {
            self.bind(m).expr
        }
    }

    fn float_act(&self, v: &Option<Value>, what: &str) -> Result<Act, String> {
        match v {
            Some(Value::Act(a)) if a.index => Err(format!(
                "{what} holds integer indices, which only an embedding table can take"
            )),
            Some(Value::Act(a)) => Ok(a.clone()),
            Some(Value::Const(_)) => Err(format!(
                "{what} is a constant where a run-time tensor was expected"
            )),
            _ => Err(format!("{what} is missing")),
        }
    }

    fn konst<'v>(&self, v: &'v Option<Value>, what: &str) -> Result<&'v Const, String> {
        match v {
            Some(Value::Const(c)) => Ok(c),
            Some(Value::Act(_)) => Err(format!(
                "{what} depends on the model's input, so it cannot be folded to a constant"
            )),
            _ => Err(format!("{what} is missing")),
        }
    }

    fn ints_of(&self, v: &Option<Value>, what: &str) -> Result<Vec<i64>, String> {
        self.konst(v, what)?
            .known_ints()
            .ok_or_else(|| format!("{what} is not a list of known integers"))
    }

    fn layer_name(&mut self, weight_input: &str, node: &NodeProto, fallback: &str) -> String {
        let base = layer_base(weight_input, node.name.as_deref().unwrap_or(""))
            .or_else(|| module_path(node));
        self.names.fresh(base.as_deref().unwrap_or(fallback))
    }

    fn weight(&mut self, name: String, dims: Vec<usize>, data: Vec<f32>) {
        self.weights.push(Weight { name, dims, data });
    }

    fn op(&mut self, node: &NodeProto, ins: &[Option<Value>]) -> Out {
        let op = node.op_type.as_deref().unwrap_or("");
        let all_const = ins
            .iter()
            .all(|v| matches!(v, Some(Value::Const(_)) | None))
            && !ins.is_empty();
        // absent trailing inputs read as missing ones, never out of bounds
        let mut padded = ins.to_vec();
        padded.resize(padded.len().max(6), None);
        let ins = padded.as_slice();
        let input = |k: usize| ins.get(k).cloned().flatten();
        match op {
            "Constant" => {
                only_attrs(
                    node,
                    &[
                        "value",
                        "value_float",
                        "value_floats",
                        "value_int",
                        "value_ints",
                    ],
                )?;
                let c = if let Some(t) = attr(node, "value").and_then(|a| a.t.as_ref()) {
                    crate::tensor::from_proto(t)?
                } else if let Some(f) = attr(node, "value_float").and_then(|a| a.f) {
                    Const::float(vec![], vec![f])
                } else if let Some(a) = attr(node, "value_floats") {
                    Const::float(vec![a.floats.len()], a.floats.clone())
                } else if let Some(v) = attr(node, "value_int").and_then(|a| a.i) {
                    Const::ints(vec![], vec![Int::Known(v)])
                } else if let Some(a) = attr(node, "value_ints") {
                    Const::ints(
                        vec![a.ints.len()],
                        a.ints.iter().map(|&i| Int::Known(i)).collect(),
                    )
                } else {
                    return Err("it has no supported value attribute".into());
                };
                Ok(vec![Value::Const(c)])
            }
            "Identity" | "Dropout" => {
                if op == "Dropout"
                    && matches!(input(2), Some(Value::Const(ref c)) if c.known_ints() != Some(vec![0]))
                {
                    return Err("dropout in training mode (export the model in eval mode)".into());
                }
                Ok(vec![input(0).ok_or("its input is missing")?])
            }
            "Shape" => {
                only_attrs(node, &["start", "end"])?;
                let dims: Vec<Int> = match input(0) {
                    Some(Value::Act(a)) => a
                        .shape
                        .iter()
                        .map(|d| match d {
                            Dim::Batch => Int::Batch,
                            Dim::Fixed(n, _) => Int::Known(*n as i64),
                        })
                        .collect(),
                    Some(Value::Const(c)) => c.dims.iter().map(|&d| Int::Known(d as i64)).collect(),
                    _ => return Err("its input is missing".into()),
                };
                let r = dims.len() as i64;
                let clamp = |v: i64| (if v < 0 { v + r } else { v }).clamp(0, r) as usize;
                let (s, e) = (
                    clamp(attr_i(node, "start", 0)),
                    clamp(attr_i(node, "end", r)),
                );
                let picked = dims[s..e.max(s)].to_vec();
                Ok(vec![Value::Const(Const::ints(vec![picked.len()], picked))])
            }
            "Gather" if all_const => {
                only_attrs(node, &["axis"])?;
                let (d, idx) = (
                    self.konst(&ins[0], "the data")?,
                    self.konst(&ins[1], "the indices")?,
                );
                Ok(vec![Value::Const(fold::gather(
                    d,
                    idx,
                    attr_i(node, "axis", 0),
                )?)])
            }
            "Gather" => self.embedding(node, ins),
            "Unsqueeze" | "Squeeze" if all_const => {
                let axes = if self.opset >= 13 {
                    only_attrs(node, &[])?;
                    match input(1) {
                        Some(_) => Some(self.ints_of(&ins[1], "the axes")?),
                        None => None,
                    }
                } else {
                    only_attrs(node, &["axes"])?;
                    attr_ints(node, "axes")
                };
                let data = self.konst(&ins[0], "the data")?;
                let c = if op == "Unsqueeze" {
                    fold::unsqueeze(data, &axes.ok_or("the axes are missing")?)?
                } else {
                    fold::squeeze(data, axes.as_deref())?
                };
                Ok(vec![Value::Const(c)])
            }
            "Concat" if all_const => {
                only_attrs(node, &["axis"])?;
                let parts: Vec<&Const> = ins
                    .iter()
                    .flatten()
                    .map(|v| self.konst(&Some(v.clone()), "an input").map(|_| v))
                    .filter_map(|v| match v {
                        Ok(Value::Const(c)) => Some(c),
                        _ => None,
                    })
                    .collect();
                Ok(vec![Value::Const(fold::concat(
                    &parts,
                    attr_i(node, "axis", 0),
                )?)])
            }
            "Slice" if all_const => {
                only_attrs(node, &[])?;
                let starts = self.ints_of(&ins[1], "the starts")?;
                let ends = self.ints_of(&ins[2], "the ends")?;
                let axes = input(3)
                    .map(|_| self.ints_of(&ins[3], "the axes"))
                    .transpose()?;
                let steps = input(4)
                    .map(|_| self.ints_of(&ins[4], "the steps"))
                    .transpose()?;
                let data = self.konst(&ins[0], "the data")?;
                Ok(vec![Value::Const(fold::slice(
                    data,
                    &starts,
                    &ends,
                    axes.as_deref(),
                    steps.as_deref(),
                )?)])
            }
            "Cast" => {
                only_attrs(node, &["to", "saturate", "round_mode"])?;
                let to = attr_i(node, "to", 0);
                // 1 float, 10 float16, 11 double, 16 bfloat16; 6 int32, 7 int64, 9 bool
                let to_float = match to {
                    1 | 10 | 11 | 16 => true,
                    2..=9 | 12 | 13 => false,
                    _ => return Err(format!("a cast to element type {to} is not supported")),
                };
                match input(0) {
                    Some(Value::Const(c)) => Ok(vec![Value::Const(fold::cast(&c, to_float)?)]),
                    Some(Value::Act(a)) if to_float && !a.index => Ok(vec![Value::Act(a)]),
                    _ => Err(
                        "a cast of a run-time tensor to an integer type is not supported".into(),
                    ),
                }
            }
            "Transpose" if all_const => {
                only_attrs(node, &["perm"])?;
                let data = self.konst(&ins[0], "the data")?;
                let perm: Vec<usize> = match attr_ints(node, "perm") {
                    Some(p) => p
                        .iter()
                        .map(|&a| fold::axis(a, data.dims.len()))
                        .collect::<Result<_, _>>()?,
                    None => (0..data.dims.len()).rev().collect(),
                };
                Ok(vec![Value::Const(fold::transpose(data, &perm)?)])
            }
            "Add" | "Sub" | "Mul" | "Div" | "Pow" | "Equal" | "Mod" if all_const => {
                only_attrs(node, &[])?;
                let (a, b) = (
                    self.konst(&ins[0], "the first input")?,
                    self.konst(&ins[1], "the second input")?,
                );
                Ok(vec![Value::Const(fold::binary(op, a, b)?)])
            }
            "ConstantOfShape" if all_const => {
                only_attrs(node, &["value"])?;
                let value = match attr(node, "value").and_then(|a| a.t.as_ref()) {
                    Some(t) => Some(crate::tensor::from_proto(t)?),
                    None => None,
                };
                let shape = self.konst(&ins[0], "the shape")?;
                Ok(vec![Value::Const(fold::constant_of_shape(
                    shape,
                    value.as_ref(),
                )?)])
            }
            "Trilu" if all_const => {
                only_attrs(node, &["upper"])?;
                let k = match input(1) {
                    Some(_) => match self.ints_of(&ins[1], "the diagonal k")?.as_slice() {
                        [k] => *k,
                        _ => return Err("the diagonal k is not one integer".into()),
                    },
                    None => 0,
                };
                let data = self.konst(&ins[0], "the data")?;
                Ok(vec![Value::Const(fold::trilu(
                    data,
                    k,
                    attr_i(node, "upper", 1) != 0,
                )?)])
            }
            "Expand" if all_const => {
                only_attrs(node, &[])?;
                let shape = self.ints_of(&ins[1], "the shape")?;
                let data = self.konst(&ins[0], "the data")?;
                Ok(vec![Value::Const(fold::expand(data, &shape)?)])
            }
            "Sqrt" if all_const => {
                only_attrs(node, &[])?;
                let data = self.konst(&ins[0], "the data")?;
                let v = data.floats().ok_or("the batch size under a square root")?;
                Ok(vec![Value::Const(crate::tensor::Const::float(
                    data.dims.clone(),
                    v.iter().map(|x| x.sqrt()).collect(),
                ))])
            }
            "Where" if all_const => {
                only_attrs(node, &[])?;
                let (c, a, b) = (
                    self.konst(&ins[0], "the condition")?,
                    self.konst(&ins[1], "the first choice")?,
                    self.konst(&ins[2], "the second choice")?,
                );
                Ok(vec![Value::Const(fold::where_(c, a, b)?)])
            }
            "Reshape" => self.reshape(node, ins),
            "Flatten" => self.flatten(node, ins),
            "Gemm" => self.gemm(node, ins),
            "MatMul" => self.matmul(node, ins),
            "Conv" => self.conv(node, ins),
            "BatchNormalization" => self.batch_norm(node, ins),
            "LayerNormalization" => self.layer_norm(node, ins),
            "Transpose" => self.transpose(node, ins),
            "MaxPool" | "AveragePool" => self.pool(node, ins),
            "GlobalAveragePool" => {
                only_attrs(node, &[])?;
                let x = self.float_act(&ins[0], "the input")?;
                self.global_pool(x)
            }
            "ReduceMean" => self.reduce_mean(node, ins),
            "Relu" | "Sigmoid" | "Tanh" => {
                only_attrs(node, &[])?;
                let x = self.materialize(&self.float_act(&ins[0], "the input")?);
                let f = op.to_ascii_lowercase();
                Ok(vec![Value::Act(Act::new(
                    format!("{f}({})", x.expr),
                    x.shape,
                ))])
            }
            "Softmax" | "LogSoftmax" => {
                only_attrs(node, &["axis"])?;
                let x = self.materialize(&self.float_act(&ins[0], "the input")?);
                let default = if self.opset >= 13 { -1 } else { 1 };
                let ax = fold::axis(attr_i(node, "axis", default), x.shape.len())?;
                if ax + 1 != x.shape.len() {
                    return Err(format!(
                        "axis {ax} of {} is supported only as the last axis",
                        fmt_dims(&x.shape)
                    ));
                }
                let f = if op == "Softmax" {
                    "softmax"
                } else {
                    "log_softmax"
                };
                Ok(vec![Value::Act(Act::new(
                    format!("{f}({})", x.expr),
                    x.shape,
                ))])
            }
            "Add" | "Sub" | "Mul" | "Div" => self.elementwise(node, ins),
            _ => Err(format!(
                "the operator `{op}` is not supported{}",
                match op {
                    "Erf" =>
                        " outside a GELU (x·Φ(x), which becomes `gelu(x, approximate = \"none\")`)",
                    "Gather" | "Unsqueeze" | "Squeeze" | "Concat" | "Slice" | "Transpose"
                    | "Pow" | "Equal" => " on a run-time tensor",
                    _ => "",
                }
            )),
        }
    }

    /// `Gemm(A, B, C)` → `Dense`: `y = alpha·A·op(B) + beta·C`, folded into PyTorch's
    /// `weight [out, in]` and `bias [out]`.
    fn gemm(&mut self, node: &NodeProto, ins: &[Option<Value>]) -> Out {
        only_attrs(node, &["alpha", "beta", "transA", "transB"])?;
        if attr_i(node, "transA", 0) != 0 {
            return Err("transA = 1 (a transposed input) is not supported".into());
        }
        let x = self.float_act(&ins[0], "the input A")?;
        if x.shape.len() != 2 {
            return Err(format!(
                "the input A is {}, not a matrix",
                fmt_dims(&x.shape)
            ));
        }
        let b = self.konst(&ins[1], "the weight B")?.clone();
        if b.dims.len() != 2 {
            return Err(format!("the weight B has dims {:?}, not a matrix", b.dims));
        }
        let mut w = b.floats().ok_or("the weight B is not a float tensor")?;
        let (alpha, beta) = (attr_f(node, "alpha", 1.0), attr_f(node, "beta", 1.0));
        let (out, inp) = if attr_i(node, "transB", 0) != 0 {
            (b.dims[0], b.dims[1])
        } else {
            w = fold::transpose(&b, &[1, 0])?.floats().unwrap_or_default();
            (b.dims[1], b.dims[0])
        };
        if x.shape[1] != Dim::fixed(inp) {
            return Err(format!(
                "the input A is {} but the weight takes {inp} features",
                fmt_dims(&x.shape)
            ));
        }
        if alpha != 1.0 {
            w.iter_mut().for_each(|v| *v *= alpha);
        }
        let bias = match ins.get(2).cloned().flatten() {
            None => None,
            Some(_) => {
                let c = self.konst(&ins[2], "the bias C")?;
                let v = c.floats().ok_or("the bias C is not a float tensor")?;
                let v = match v.len() {
                    1 => vec![v[0] * beta; out],
                    n if n == out && c.dims.iter().rev().skip(1).all(|&d| d == 1) => {
                        v.iter().map(|x| x * beta).collect()
                    }
                    _ => {
                        return Err(format!(
                            "the bias C has dims {:?}; only [{out}] (one per output) is supported",
                            c.dims
                        ))
                    }
                };
                Some(v)
            }
        };
        let weight_name = node.input.get(1).cloned().unwrap_or_default();
        Ok(vec![Value::Act(self.dense(
            &weight_name,
            node,
            &x,
            inp,
            out,
            w,
            bias,
        ))])
    }

    #[allow(clippy::too_many_arguments)]
    fn dense(
        &mut self,
        weight_name: &str,
        node: &NodeProto,
        x: &Act,
        inp: usize,
        out: usize,
        w: Vec<f32>,
        bias: Option<Vec<f32>>,
    ) -> Act {
        let name = self.layer_name(weight_name, node, "fc");
        let no_bias = if bias.is_none() { ", bias = false" } else { "" };
        let inp_dim = match x.shape.last() {
            Some(d) if *d == Dim::fixed(inp) => *d,
            _ => Dim::fixed(inp),
        };
        let out_dim = self.syms.fresh(out, Some(Role::layer(&name)));
        self.layers.push(Layer {
            name: name.clone(),
            decl: format!(
                "Dense({} -> {}{no_bias})",
                dim_src(&inp_dim),
                dim_src(&out_dim)
            ),
        });
        self.weight(format!("{name}.weight"), vec![out, inp], w);
        if let Some(b) = bias {
            self.weight(format!("{name}.bias"), vec![out], b);
        }
        let arg = self.operand(x);
        let mut shape = x.shape.clone();
        if let Some(last) = shape.last_mut() {
            *last = out_dim;
        }
        Act::new(format!("{name}({arg})"), shape)
    }

    /// `MatMul(x, W)` with a constant `W [in, out]` → `Dense` (with the bias of a following
    /// `Add` of a constant `[out]`); two run-time tensors → `matmul`.
    fn matmul(&mut self, node: &NodeProto, ins: &[Option<Value>]) -> Out {
        only_attrs(node, &[])?;
        let x = self.materialize(&self.float_act(&ins[0], "the first input")?);
        match &ins[1] {
            Some(Value::Const(w)) => {
                if w.dims.len() != 2 {
                    return Err(format!(
                        "the weight has dims {:?}; only a matrix is supported",
                        w.dims
                    ));
                }
                let (inp, out) = (w.dims[0], w.dims[1]);
                if x.shape.last() != Some(&Dim::fixed(inp)) {
                    return Err(format!(
                        "the input is {} but the weight takes {inp} features",
                        fmt_dims(&x.shape)
                    ));
                }
                let wt = fold::transpose(w, &[1, 0])?
                    .floats()
                    .ok_or("the weight is not a float tensor")?;
                let out_name = node.output.first().cloned().unwrap_or_default();
                let mut bias = None;
                let mut bias_name: Option<String> = None;
                if let (Some(1), Some([j])) = (
                    self.uses.get(&out_name),
                    self.consumers.get(&out_name).map(Vec::as_slice),
                ) {
                    let add = &self.nodes[*j];
                    if add.op_type.as_deref() == Some("Add") && add.input.len() == 2 {
                        let other = if add.input[0] == out_name {
                            &add.input[1]
                        } else {
                            &add.input[0]
                        };
                        if let Some(Value::Const(c)) = self.values.get(other) {
                            if c.len() == out
                                && c.dims.iter().rev().skip(1).all(|&d| d == 1)
                                && c.dims.len() <= x.shape.len()
                            {
                                bias = c.floats();
                                bias_name = Some(other.clone());
                                if bias.is_some() {
                                    self.absorbed.insert(*j);
                                }
                            }
                        }
                    }
                }
                let mut weight_name = node.input.get(1).cloned().unwrap_or_default();
                // an anonymous weight (`val_98`, the default exporter's) but a named bias
                // (`h.0.fc.bias`): the layer is named from the bias
                if layer_base(&weight_name, node.name.as_deref().unwrap_or("")).is_none() {
                    if let Some(b) = bias_name.filter(|b| b.ends_with(".bias") && !b.contains("::"))
                    {
                        weight_name = b.replace(".bias", ".weight");
                    }
                }
                let act = self.dense(&weight_name, node, &x, inp, out, wt, bias.clone());
                if bias.is_some() {
                    let j = self.consumers[&out_name][0];
                    let add_out = self.nodes[j].output.first().cloned().unwrap_or_default();
                    let act = self.finish(&add_out, act);
                    self.values.insert(add_out, Value::Act(act));
                    return Ok(vec![Value::Poison]);
                }
                Ok(vec![Value::Act(act)])
            }
            Some(Value::Act(_)) => {
                let y = self.materialize(&self.float_act(&ins[1], "the second input")?);
                let (r1, r2) = (x.shape.len(), y.shape.len());
                if r1 < 2 || r2 < 2 {
                    return Err("matmul of vectors is not supported".into());
                }
                if x.shape[r1 - 1] != y.shape[r2 - 2]
                    || (r2 > 2 && x.shape[..r1 - 2] != y.shape[..r2 - 2])
                {
                    return Err(format!(
                        "matmul of {} and {} is not supported",
                        fmt_dims(&x.shape),
                        fmt_dims(&y.shape)
                    ));
                }
                self.syms.unify(x.shape[r1 - 1], y.shape[r2 - 2]);
                for (a, b) in x.shape[..r1 - 2]
                    .iter()
                    .rev()
                    .zip(y.shape[..r2 - 2].iter().rev())
                {
                    self.syms.unify(*a, *b);
                }
                let mut shape = x.shape.clone();
                shape[r1 - 1] = y.shape[r2 - 1];
                Ok(vec![Value::Act(Act::new(
                    format!("matmul({}, {})", x.expr, y.expr),
                    shape,
                ))])
            }
            _ => Err("the second input is missing".into()),
        }
    }

    /// `Conv` → `Conv2d(in -> out, kernel = k, stride = s, padding = p)`.
    fn conv(&mut self, node: &NodeProto, ins: &[Option<Value>]) -> Out {
        only_attrs(
            node,
            &[
                "auto_pad",
                "dilations",
                "group",
                "kernel_shape",
                "pads",
                "strides",
            ],
        )?;
        let x = self.materialize(&self.float_act(&ins[0], "the input")?);
        let w = self.konst(&ins[1], "the weight")?.clone();
        if x.shape.len() != 4 || w.dims.len() != 4 {
            return Err(format!(
                "only 2-D convolutions are supported (input {}, weight {:?})",
                fmt_dims(&x.shape),
                w.dims
            ));
        }
        let (o, c, kh, kw) = (w.dims[0], w.dims[1], w.dims[2], w.dims[3]);
        let mut missing = Vec::new();
        if attr_i(node, "group", 1) != 1 {
            missing.push(format!(
                "group = {} (grouped convolution)",
                attr_i(node, "group", 1)
            ));
        }
        if attr_ints(node, "dilations").is_some_and(|d| d.iter().any(|&v| v != 1)) {
            missing.push(format!(
                "dilations = {:?}",
                attr_ints(node, "dilations").unwrap_or_default()
            ));
        }
        let auto = attr_s(node, "auto_pad").unwrap_or_else(|| "NOTSET".into());
        if auto != "NOTSET" && auto != "VALID" {
            missing.push(format!("auto_pad = {auto}"));
        }
        if kh != kw {
            missing.push(format!("a {kh}x{kw} kernel (only square kernels)"));
        }
        let strides = attr_ints(node, "strides").unwrap_or_else(|| vec![1, 1]);
        if strides.len() != 2 || strides[0] != strides[1] || !(1..=MAX_WINDOW).contains(&strides[0])
        {
            missing.push(format!("strides = {strides:?} (only equal strides)"));
        }
        let pads = if auto == "VALID" {
            vec![0; 4]
        } else {
            attr_ints(node, "pads").unwrap_or_else(|| vec![0; 4])
        };
        if pads.len() != 4
            || pads.iter().any(|&p| p != pads[0])
            || !(0..=MAX_WINDOW).contains(&pads[0])
        {
            missing.push(format!(
                "pads = {pads:?} (only the same padding on every side)"
            ));
        }
        if !missing.is_empty() {
            return Err(format!("{} not supported", missing.join(", ")));
        }
        let (s, p) = (strides[0] as usize, pads[0] as usize);
        if x.shape[1] != Dim::fixed(c) {
            return Err(format!(
                "the input {} does not have the weight's {c} channels",
                fmt_dims(&x.shape)
            ));
        }
        let [h, wd] = [
            fixed(&x.shape[2..3], "the height")?[0],
            fixed(&x.shape[3..4], "the width")?[0],
        ];
        if h + 2 * p < kh || wd + 2 * p < kw || s == 0 {
            return Err(format!(
                "a {kh}x{kw} kernel does not fit the input {}",
                fmt_dims(&x.shape)
            ));
        }
        let (oh, ow) = ((h + 2 * p - kh) / s + 1, (wd + 2 * p - kw) / s + 1);
        let weight_name = node.input.get(1).cloned().unwrap_or_default();
        let name = self.layer_name(&weight_name, node, "conv");
        let out_dim = self.syms.fresh(o, Some(Role::layer(&name)));
        let mut decl = format!(
            "Conv2d({} -> {}, kernel = {kh}",
            dim_src(&x.shape[1]),
            dim_src(&out_dim)
        );
        if s != 1 {
            decl += &format!(", stride = {s}");
        }
        if p != 0 {
            decl += &format!(", padding = {p}");
        }
        let bias = match ins.get(2).cloned().flatten() {
            Some(_) => Some(
                self.konst(&ins[2], "the bias")?
                    .floats()
                    .ok_or("the bias is not a float tensor")?,
            ),
            None => {
                decl += ", bias = false";
                None
            }
        };
        decl += ")";
        self.layers.push(Layer {
            name: name.clone(),
            decl,
        });
        self.weight(
            format!("{name}.weight"),
            w.dims.clone(),
            w.floats().ok_or("the weight is not a float tensor")?,
        );
        if let Some(b) = bias {
            if b.len() != o {
                return Err(format!(
                    "the bias has {} values for {o} output channels",
                    b.len()
                ));
            }
            self.weight(format!("{name}.bias"), vec![o], b);
        }
        let arg = self.operand(&x);
        Ok(vec![Value::Act(Act::new(
            format!("{name}({arg})"),
            vec![
                x.shape[0],
                out_dim,
                kept_size(x.shape[2], oh),
                kept_size(x.shape[3], ow),
            ],
        ))])
    }

    /// `BatchNormalization` (inference) → `BatchNorm2d(c, eps = ..)`.
    fn batch_norm(&mut self, node: &NodeProto, ins: &[Option<Value>]) -> Out {
        only_attrs(node, &["epsilon", "momentum", "training_mode", "spatial"])?;
        if attr_i(node, "training_mode", 0) != 0 {
            return Err("training_mode = 1 (export the model in eval mode)".into());
        }
        let x = self.materialize(&self.float_act(&ins[0], "the input")?);
        if x.shape.len() != 4 {
            return Err(format!(
                "only [N, C, H, W] inputs are supported, not {}",
                fmt_dims(&x.shape)
            ));
        }
        let c = fixed(&x.shape[1..2], "the channel dimension")?[0];
        let mut tensors = Vec::new();
        for (k, what) in ["weight", "bias", "running_mean", "running_var"]
            .iter()
            .enumerate()
        {
            let t = self.konst(&ins[k + 1], what)?;
            let v = t
                .floats()
                .filter(|v| v.len() == c)
                .ok_or_else(|| format!("the {what} does not hold {c} floats"))?;
            tensors.push((what, v));
        }
        let eps = attr_f(node, "epsilon", 1e-5);
        let scale_name = node.input.get(1).cloned().unwrap_or_default();
        let name = self.layer_name(&scale_name, node, "bn");
        let eps_kw = if (eps - 1e-5).abs() <= 1e-12 {
            String::new()
        } else {
            format!(", eps = {}", literal(eps))
        };
        self.layers.push(Layer {
            name: name.clone(),
            decl: format!("BatchNorm2d({}{eps_kw})", dim_src(&x.shape[1])),
        });
        for (what, v) in tensors {
            self.weight(format!("{name}.{what}"), vec![c], v);
        }
        Ok(vec![Value::Act(Act::new(
            format!("{name}({})", x.expr),
            x.shape,
        ))])
    }

    /// `MaxPool` / `AveragePool` → `max_pool2d(x, kernel = k, stride = s, padding = p)`.
    fn pool(&mut self, node: &NodeProto, ins: &[Option<Value>]) -> Out {
        let op = node.op_type.as_deref().unwrap_or("");
        only_attrs(
            node,
            &[
                "auto_pad",
                "ceil_mode",
                "count_include_pad",
                "dilations",
                "kernel_shape",
                "pads",
                "strides",
                "storage_order",
            ],
        )?;
        let x = self.materialize(&self.float_act(&ins[0], "the input")?);
        if x.shape.len() != 4 {
            return Err(format!(
                "only 2-D pooling of [N, C, H, W] is supported, not {}",
                fmt_dims(&x.shape)
            ));
        }
        let k = attr_ints(node, "kernel_shape").unwrap_or_default();
        let strides = attr_ints(node, "strides").unwrap_or_else(|| vec![1, 1]);
        let pads = attr_ints(node, "pads").unwrap_or_else(|| vec![0; 4]);
        let mut missing = Vec::new();
        if k.len() != 2 || k[0] != k[1] || !(1..=MAX_WINDOW).contains(&k[0]) {
            missing.push(format!("kernel_shape = {k:?} (only square kernels)"));
        }
        if strides.len() != 2 || strides[0] != strides[1] || !(1..=MAX_WINDOW).contains(&strides[0])
        {
            missing.push(format!("strides = {strides:?} (only equal strides)"));
        }
        if pads.len() != 4
            || pads.iter().any(|&p| p != pads[0])
            || !(0..=MAX_WINDOW).contains(&pads[0])
        {
            missing.push(format!(
                "pads = {pads:?} (only the same padding on every side)"
            ));
        }
        if attr_i(node, "ceil_mode", 0) != 0 {
            missing.push("ceil_mode = 1".into());
        }
        if attr_ints(node, "dilations").is_some_and(|d| d.iter().any(|&v| v != 1)) {
            missing.push("dilations other than 1".into());
        }
        if attr_s(node, "auto_pad").is_some_and(|a| a != "NOTSET") {
            missing.push("auto_pad".into());
        }
        if attr_i(node, "storage_order", 0) != 0 {
            missing.push("storage_order = 1".into());
        }
        if op == "AveragePool"
            && attr_i(node, "count_include_pad", 0) == 0
            && pads.iter().any(|&p| p != 0)
        {
            missing.push("count_include_pad = 0 with padding (nanograd's average counts the padding, as PyTorch's default)".into());
        }
        if !missing.is_empty() {
            return Err(format!("{} not supported", missing.join(", ")));
        }
        let (k, s, p) = (k[0] as usize, strides[0] as usize, pads[0] as usize);
        let h = fixed(&x.shape[2..4], "the spatial size")?;
        if h[0] + 2 * p < k || h[1] + 2 * p < k || 2 * p > k {
            return Err(format!(
                "a {k}x{k} window with padding {p} does not fit {}",
                fmt_dims(&x.shape)
            ));
        }
        let (oh, ow) = ((h[0] + 2 * p - k) / s + 1, (h[1] + 2 * p - k) / s + 1);
        let f = if op == "MaxPool" {
            "max_pool2d"
        } else {
            "avg_pool2d"
        };
        let mut call = format!("{f}({}, kernel = {k}", x.expr);
        if s != k {
            call += &format!(", stride = {s}");
        }
        if p != 0 {
            call += &format!(", padding = {p}");
        }
        call += ")";
        Ok(vec![Value::Act(Act::new(
            call,
            vec![
                x.shape[0],
                x.shape[1],
                kept_size(x.shape[2], oh),
                kept_size(x.shape[3], ow),
            ],
        ))])
    }

    fn global_pool(&mut self, x: Act) -> Out {
        let x = self.materialize(&x);
        if x.shape.len() != 4 {
            return Err(format!(
                "only [N, C, H, W] inputs are supported, not {}",
                fmt_dims(&x.shape)
            ));
        }
        let mut a = Act::new(
            format!("global_avg_pool2d({})", x.expr),
            vec![x.shape[0], x.shape[1], Dim::fixed(1), Dim::fixed(1)],
        );
        a.dsl = x.shape[..2].to_vec();
        Ok(vec![Value::Act(a)])
    }

    /// `ReduceMean` over the two spatial axes of `[N, C, H, W]` → `global_avg_pool2d`.
    fn reduce_mean(&mut self, node: &NodeProto, ins: &[Option<Value>]) -> Out {
        only_attrs(node, &["axes", "keepdims", "noop_with_empty_axes"])?;
        let x = self.float_act(&ins[0], "the input")?;
        let axes = match ins.get(1).cloned().flatten() {
            Some(_) => self.ints_of(&ins[1], "the axes")?,
            None => attr_ints(node, "axes").unwrap_or_default(),
        };
        let mut ax: Vec<usize> = axes
            .iter()
            .map(|&a| fold::axis(a, x.shape.len()))
            .collect::<Result<_, _>>()?;
        ax.sort_unstable();
        if x.shape.len() != 4 || ax != [2, 3] {
            return Err(format!("a mean over axes {axes:?} of {} is not supported (only over the spatial axes of [N, C, H, W])", fmt_dims(&x.shape)));
        }
        let mut out = self.global_pool(x)?;
        if attr_i(node, "keepdims", 1) == 0 {
            if let Some(Value::Act(a)) = out.first_mut() {
                a.shape = a.dsl.clone();
            }
        }
        Ok(out)
    }

    /// `Reshape` of a run-time tensor: the target folded, the batch dimension first.
    fn reshape(&mut self, node: &NodeProto, ins: &[Option<Value>]) -> Out {
        only_attrs(node, &["allowzero"])?;
        let allowzero = attr_i(node, "allowzero", 0) != 0;
        let target = self.konst(&ins[1], "the target shape")?.sym_ints();
        match &ins[0] {
            Some(Value::Const(c)) => {
                let t = self.ints_of(&ins[1], "the target shape")?;
                Ok(vec![Value::Const(fold::reshape(c, &t, allowzero)?)])
            }
            _ => {
                let x = self.float_act(&ins[0], "the input")?;
                let dims = self.resolve_target(&x.shape, &target, allowzero)?;
                Ok(vec![Value::Act(self.reshaped(x, dims))])
            }
        }
    }

    fn resolve_target(
        &self,
        input: &[Dim],
        target: &[Int],
        allowzero: bool,
    ) -> Result<Vec<Dim>, String> {
        let sizes = |dims: &[Dim]| -> Vec<usize> {
            dims.iter()
                .map(|d| if let Dim::Fixed(n, _) = d { *n } else { 1 })
                .collect()
        };
        let per_sample = bounded(&sizes(input))?;
        let batched = input.first() == Some(&Dim::Batch);
        let mut dims = Vec::new();
        let mut infer = None;
        for (i, t) in target.iter().enumerate() {
            dims.push(match *t {
                Int::Batch => Dim::Batch,
                Int::Known(0) if !allowzero => {
                    *input.get(i).ok_or("0 copies a dimension the input lacks")?
                }
                Int::Known(-1) if infer.is_none() => {
                    infer = Some(i);
                    Dim::fixed(1)
                }
                Int::Known(n) if n >= 0 && n as u64 <= MAX_ELEMENTS as u64 => {
                    Dim::fixed(n as usize)
                }
                Int::Known(n) => return Err(format!("target entry {n} is not valid")),
            });
        }
        let known = bounded(&sizes(&dims))?;
        let has_batch = dims.contains(&Dim::Batch);
        if let Some(i) = infer {
            if batched && !has_batch && known == per_sample {
                dims[i] = Dim::Batch;
            } else if known > 0 && per_sample.is_multiple_of(known) {
                dims[i] = Dim::fixed(per_sample / known);
            } else {
                return Err(format!(
                    "cannot resolve the target shape {target:?} for {}",
                    fmt_dims(input)
                ));
            }
        }
        let total = bounded(&sizes(&dims))?;
        let batch_ok = if batched {
            dims.first() == Some(&Dim::Batch)
                && dims.iter().filter(|d| **d == Dim::Batch).count() == 1
        } else {
            !dims.contains(&Dim::Batch)
        };
        if !batch_ok || total != per_sample {
            return Err(format!(
                "the target shape {} of {} must keep the batch as its first dimension and the same number of values per sample",
                fmt_dims(&dims),
                fmt_dims(input)
            ));
        }
        Ok(dims)
    }

    /// `x` viewed with `dims` (the same values per sample): nothing if the DSL already has
    /// that shape, `flatten` to `[B, n]`, else `reshape`.
    fn reshaped(&mut self, x: Act, dims: Vec<Dim>) -> Act {
        let dims = self.syms.reshape(&x.shape, dims);
        if x.dsl == dims {
            return Act { shape: dims, ..x };
        }
        let expr = if dims.len() == 2 && dims[0] == Dim::Batch && x.dsl.first() == Some(&Dim::Batch)
        {
            format!("flatten({})", x.expr)
        } else {
            format!("reshape({}, {})", x.expr, dims_src(&dims))
        };
        Act {
            expr,
            shape: dims.clone(),
            dsl: dims,
            var: false,
            binary: false,
            index: x.index,
        }
    }

    fn flatten(&mut self, node: &NodeProto, ins: &[Option<Value>]) -> Out {
        only_attrs(node, &["axis"])?;
        match &ins[0] {
            Some(Value::Const(c)) => {
                let ax = fold::axis(attr_i(node, "axis", 1), c.dims.len() + 1)?;
                let outer: usize = c.dims[..ax].iter().product();
                Ok(vec![Value::Const(fold::reshape(
                    c,
                    &[outer as i64, -1],
                    true,
                )?)])
            }
            _ => {
                let x = self.float_act(&ins[0], "the input")?;
                let ax = attr_i(node, "axis", 1);
                if ax != 1 || x.shape.first() != Some(&Dim::Batch) {
                    return Err(format!(
                        "only axis 1 of a batched input is supported (axis {ax} of {})",
                        fmt_dims(&x.shape)
                    ));
                }
                let n = bounded(&fixed(&x.shape[1..], "the input")?)?;
                Ok(vec![Value::Act(
                    self.reshaped(x, vec![Dim::Batch, Dim::fixed(n)]),
                )])
            }
        }
    }

    /// `Gather` of a constant table `[V, D]` by run-time indices → `Embedding(V -> D)`.
    fn embedding(&mut self, node: &NodeProto, ins: &[Option<Value>]) -> Out {
        only_attrs(node, &["axis"])?;
        let table = self.konst(&ins[0], "the table")?.clone();
        let idx =
            match &ins[1] {
                Some(Value::Act(a)) if a.index => a.clone(),
                _ => return Err(
                    "only a constant table indexed by an integer input (an embedding) is supported"
                        .into(),
                ),
            };
        if table.dims.len() != 2 || attr_i(node, "axis", 0) != 0 {
            return Err(format!(
                "only axis 0 of a [vocabulary, width] table is supported, not dims {:?}",
                table.dims
            ));
        }
        let (v, d) = (table.dims[0], table.dims[1]);
        let weight_name = node.input.first().cloned().unwrap_or_default();
        let name = self.layer_name(&weight_name, node, "embedding");
        let v_dim = self
            .syms
            .fresh(v, Some(Role::layer_part(&name, "VOCAB", "VOCAB")));
        let d_dim = self
            .syms
            .fresh(d, Some(Role::layer_part(&name, "EMB", "DIM")));
        self.layers.push(Layer {
            name: name.clone(),
            decl: format!("Embedding({} -> {})", dim_src(&v_dim), dim_src(&d_dim)),
        });
        self.weight(
            format!("{name}.weight"),
            vec![v, d],
            table.floats().ok_or("the table is not a float tensor")?,
        );
        let mut shape = idx.shape.clone();
        shape.push(d_dim);
        Ok(vec![Value::Act(Act::new(
            format!("{name}({})", idx.expr),
            shape,
        ))])
    }

    /// `LayerNormalization` over the last axis → `LayerNorm(dim, eps = ..)`.
    fn layer_norm(&mut self, node: &NodeProto, ins: &[Option<Value>]) -> Out {
        only_attrs(node, &["axis", "epsilon", "stash_type"])?;
        let x = self.materialize(&self.float_act(&ins[0], "the input")?);
        let rank = x.shape.len();
        if fold::axis(attr_i(node, "axis", -1), rank)? + 1 != rank {
            return Err(format!(
                "only the last axis is normalised by `LayerNorm` (axis {} of {})",
                attr_i(node, "axis", -1),
                fmt_dims(&x.shape)
            ));
        }
        let c = fixed(&x.shape[rank - 1..], "the normalised dimension")?[0];
        let weight = self
            .konst(&ins[1], "the scale")?
            .floats()
            .filter(|v| v.len() == c);
        let weight = weight.ok_or_else(|| format!("the scale does not hold {c} floats"))?;
        let bias = match &ins[2] {
            None => vec![0.0; c],
            b => self
                .konst(b, "the bias")?
                .floats()
                .filter(|v| v.len() == c)
                .ok_or_else(|| format!("the bias does not hold {c} floats"))?,
        };
        let eps = attr_f(node, "epsilon", 1e-5);
        let scale_name = node.input.get(1).cloned().unwrap_or_default();
        let name = self.layer_name(&scale_name, node, "ln");
        let eps_kw = if (eps - 1e-5).abs() <= 1e-12 {
            String::new()
        } else {
            format!(", eps = {}", literal(eps))
        };
        self.layers.push(Layer {
            name: name.clone(),
            decl: format!("LayerNorm({}{eps_kw})", dim_src(&x.shape[rank - 1])),
        });
        self.weight(format!("{name}.weight"), vec![c], weight);
        self.weight(format!("{name}.bias"), vec![c], bias);
        Ok(vec![Value::Act(Act::new(
            format!("{name}({})", x.expr),
            x.shape,
        ))])
    }

    /// `Transpose` of a run-time tensor that swaps two dimensions other than the batch →
    /// `transpose(x, a, b)`.
    fn transpose(&mut self, node: &NodeProto, ins: &[Option<Value>]) -> Out {
        only_attrs(node, &["perm"])?;
        let x = self.materialize(&self.float_act(&ins[0], "the input")?);
        let rank = x.shape.len();
        let perm: Vec<usize> = match attr_ints(node, "perm") {
            Some(p) => p
                .iter()
                .map(|&a| fold::axis(a, rank))
                .collect::<Result<_, _>>()?,
            None => (0..rank).rev().collect(),
        };
        let moved: Vec<usize> = (0..rank).filter(|&i| perm.get(i) != Some(&i)).collect();
        let swap = perm.len() == rank
            && moved.len() == 2
            && perm[moved[0]] == moved[1]
            && perm[moved[1]] == moved[0];
        if !swap || (x.shape[0] == Dim::Batch && moved[0] == 0) {
            return Err(format!(
                "perm {perm:?} of {} is not supported: only a swap of two dimensions other than the batch is",
                fmt_dims(&x.shape)
            ));
        }
        let mut shape = x.shape.clone();
        shape.swap(moved[0], moved[1]);
        Ok(vec![Value::Act(Act::new(
            format!("transpose({}, {}, {})", x.expr, moved[0], moved[1]),
            shape,
        ))])
    }

    /// `Add`/`Sub`/`Mul`/`Div` of run-time tensors (the shorter broadcasting over the
    /// longer's leading dimensions), or of one and a constant: a scalar becomes a literal,
    /// a tensor a `Param` field.
    fn elementwise(&mut self, node: &NodeProto, ins: &[Option<Value>]) -> Out {
        only_attrs(node, &[])?;
        let op = node.op_type.as_deref().unwrap_or("");
        let sym = match op {
            "Add" => "+",
            "Sub" => "-",
            "Mul" => "*",
            _ => "/",
        };
        let mut operands = Vec::new();
        let mut shapes = Vec::new();
        // a constant tensor's dimensions take the roles of the run-time operand's last ones
        let other: Vec<Dim> = ins
            .iter()
            .take(2)
            .find_map(|v| match v {
                Some(Value::Act(a)) => Some(a.shape.clone()),
                _ => None,
            })
            .unwrap_or_default();
        for (k, operand) in ins.iter().enumerate().take(2) {
            match operand {
                Some(Value::Act(_)) => {
                    let a = self.materialize(&self.float_act(operand, "an operand")?);
                    shapes.push(a.shape.clone());
                    operands.push(if a.binary {
                        format!("({})", a.expr)
                    } else {
                        a.expr
                    });
                }
                Some(Value::Const(c)) => {
                    if let (Some(v), true) = (c.scalar(), c.len() == 1) {
                        shapes.push(vec![]);
                        operands.push(literal(v));
                    } else {
                        let mut dims = c.dims.clone();
                        while dims.len() > 1 && dims[0] == 1 {
                            dims.remove(0);
                        }
                        let data = c
                            .floats()
                            .ok_or("a constant operand holds the batch size")?;
                        let name = self.names.fresh(&node.input[k]);
                        let offset = other.len().saturating_sub(dims.len());
                        let param: Vec<Dim> = dims
                            .iter()
                            .enumerate()
                            .map(|(i, &d)| match other.get(offset + i) {
                                Some(o) if other.len() >= dims.len() && *o == Dim::fixed(d) => *o,
                                _ => Dim::fixed(d),
                            })
                            .collect();
                        self.layers.push(Layer {
                            name: name.clone(),
                            decl: format!("Param({})", dims_src(&param)),
                        });
                        self.weight(name.clone(), dims.clone(), data);
                        shapes.push(param);
                        operands.push(name);
                    }
                }
                _ => return Err("an operand is missing".into()),
            }
        }
        let (a, b) = (&shapes[0], &shapes[1]);
        let (long, short) = if a.len() >= b.len() { (a, b) } else { (b, a) };
        if !long.ends_with(short) {
            return Err(format!(
                "operands {} and {} broadcast only where the shorter is the end of the longer",
                fmt_dims(a),
                fmt_dims(b)
            ));
        }
        for (x, y) in long.iter().rev().zip(short.iter().rev()) {
            self.syms.unify(*x, *y);
        }
        let mut act = Act::new(
            format!("{} {sym} {}", operands[0], operands[1]),
            long.clone(),
        );
        act.binary = true;
        Ok(vec![Value::Act(act)])
    }
}
