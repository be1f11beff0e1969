//! Subgraphs recognised whole, found before the node-by-node walk: the two GELUs,
//! `nn.MultiheadAttention`'s self-attention, and scaled dot-product attention written by
//! hand (read back speculatively, see `sdpa`).
//!
//! - **GELU.** An `Erf` or `Tanh` node with the elementwise nodes around it (`Add`, `Sub`,
//!   `Mul`, `Div`, `Pow`, `Sqrt` of one run-time tensor `x` and one-element constants) that
//!   end in a single value. That value is evaluated at 49 points of `[-6, 6]` and compared
//!   with `x Φ(x)` (→ `gelu(x, approximate = "none")`) and with the tanh approximation
//!   (→ `gelu(x)`), to 1e-5: whatever order or spelling the exporter chose, only the two
//!   functions themselves are accepted.
//! - **Multi-head self-attention.** `nn.MultiheadAttention(batch_first=True)` called as
//!   `attn(x, x, x)`: both exporters transpose `x [B, T, C]` to `[T, B, C]`, project with one
//!   `[C, 3C]` weight and bias (`in_proj_*`), split the heads with reshapes that merge the
//!   batch into another dimension (which the DSL cannot write), run one softmax between two
//!   batched matmuls, project with `out_proj` and transpose back. The region is every node
//!   reachable from the first transpose up to the last one; it is taken for a
//!   `MultiHeadAttention(C, heads = h, causal = ..)` when it holds exactly that: the two
//!   projections, two run-time matmuls, one softmax over the last axis, only reshaping,
//!   scaling and shape arithmetic besides, a mask that is absent or exactly the causal one
//!   (0 on and below the diagonal, -∞ above), and a head split `[.., h, T, C/h]`. Anything
//!   else falls back to the node-by-node conversion, which reports what it cannot convert.
//!   The scale `1/√(C/h)` is the layer's own and is not checked separately (TorchScript
//!   computes it from run-time shapes inside the region); the fixtures' comparison with ONNX
//!   Runtime checks it.

use std::collections::{HashMap, HashSet};

use super::{attr_f, attr_i, attr_ints, fmt_dims, Act, Converter, Dim, Layer, Value};
use crate::consts::{dim_src, Role};
use crate::fold;
use crate::names::layer_base;
use crate::proto::NodeProto;

/// A recognised region: its nodes (in graph order) and what it may be.
pub struct Region {
    pub nodes: Vec<usize>,
    pub kind: Kind,
}

pub enum Kind {
    /// An elementwise function of the tensor `x`, whose value is `out`.
    Gelu { x: String, out: String },
    /// The attention of `nn.MultiheadAttention` between the transposes `start` and `end`.
    Attention { start: usize, end: usize },
    /// Scaled dot-product attention around the `softmax` between the products `m1`
    /// (`q·kᵀ`) and `m2` (`·v`); its nodes are converted speculatively (`sdpa`).
    Sdpa {
        softmax: usize,
        m1: usize,
        m2: usize,
    },
}

impl Region {
    /// Whether the region's nodes are converted as usual, their problems held back until
    /// the region is read at its last node (else they are skipped until then).
    pub fn speculative(&self) -> bool {
        matches!(self.kind, Kind::Sdpa { .. })
    }
}

/// The elementwise operators a GELU is written with.
const ELEMENTWISE: &[&str] = &["Add", "Sub", "Mul", "Div", "Pow", "Erf", "Tanh", "Sqrt"];

/// The operators an attention region may hold besides its projections, matmuls and
/// softmax: reshaping, head selection, scaling, the mask's add and shape arithmetic.
const ATTENTION_OPS: &[&str] = &[
    "Transpose",
    "Reshape",
    "Unsqueeze",
    "Squeeze",
    "Gather",
    "Slice",
    "Split",
    "Mul",
    "Div",
    "Add",
    "MatMul",
    "Gemm",
    "Softmax",
    "Shape",
    "Concat",
    "Cast",
    "Sqrt",
    "Constant",
    "Mod",
    "Identity",
];

fn op_of(n: &NodeProto) -> &str {
    n.op_type.as_deref().unwrap_or("")
}

/// `x Φ(x)`.
fn gelu_exact(x: f64) -> f64 {
    0.5 * x * libm::erfc(-x * std::f64::consts::FRAC_1_SQRT_2)
}

/// `x/2 · (1 + tanh(√(2/π) (x + 0.044715 x³)))`.
fn gelu_tanh(x: f64) -> f64 {
    let u = 0.797_884_560_802_865_4 * (x + 0.044_715 * x * x * x);
    0.5 * x * (1.0 + u.tanh())
}

impl Converter<'_> {
    /// The tensors that depend on a graph input (a `Shape` reads only known dimensions, so
    /// its output is a constant).
    fn runtime_tensors(&self) -> HashSet<String> {
        let mut rt: HashSet<String> = self
            .values
            .iter()
            .filter(|(_, v)| matches!(v, Value::Act(_)))
            .map(|(k, _)| k.clone())
            .collect();
        for n in self.nodes {
            if op_of(n) != "Shape" && n.input.iter().any(|i| rt.contains(i)) {
                rt.extend(n.output.iter().cloned());
            }
        }
        rt
    }

    /// Finds the regions of the graph; called once the initializers and inputs are known.
    pub fn find_regions(&mut self) {
        let rt = self.runtime_tensors();
        let mut producer: HashMap<&str, usize> = HashMap::new();
        for (i, n) in self.nodes.iter().enumerate() {
            for o in &n.output {
                producer.insert(o.as_str(), i);
            }
        }
        let mut claimed: HashSet<usize> = HashSet::new();
        let mut regions = Vec::new();
        for (i, n) in self.nodes.iter().enumerate() {
            if claimed.contains(&i) {
                continue;
            }
            let found = match op_of(n) {
                "Transpose" => self.attention_region(i, &rt),
                "Erf" | "Tanh" => self.gelu_region(i, &rt, &producer),
                "Softmax" => self.sdpa_region(i, &rt),
                _ => None,
            };
            if let Some(r) = found {
                if r.nodes.iter().all(|j| !claimed.contains(j)) {
                    claimed.extend(r.nodes.iter().copied());
                    regions.push(r);
                }
            }
        }
        for (k, r) in regions.iter().enumerate() {
            for &j in &r.nodes {
                self.in_region.insert(j, k);
            }
        }
        self.regions = regions;
    }

    /// Whether every output of `nodes` but `out` is read only inside `nodes`.
    fn closed(&self, nodes: &HashSet<usize>, out: &str) -> bool {
        nodes.iter().all(|&j| {
            self.nodes[j].output.iter().all(|o| {
                o == out
                    || self
                        .consumers
                        .get(o)
                        .is_none_or(|cs| cs.iter().all(|c| nodes.contains(c)))
                        && !self.graph_outputs.contains(o)
            })
        })
    }

    /// Whether every constant input of node `j` has one element (an initializer, or the
    /// value of a `Constant` node).
    fn scalar_constants(&self, j: usize, rt: &HashSet<String>) -> bool {
        self.nodes[j]
            .input
            .iter()
            .filter(|i| !rt.contains(*i))
            .all(|i| {
                if let Some(Value::Const(c)) = self.values.get(i) {
                    return c.len() == 1;
                }
                self.nodes.iter().any(|n| {
                    op_of(n) == "Constant"
                        && n.output.first() == Some(i)
                        && n.attribute.iter().any(|a| {
                            a.name.as_deref() == Some("value_float")
                                || a.t
                                    .as_ref()
                                    .is_some_and(|t| t.dims.iter().product::<i64>() == 1)
                        })
                })
            })
    }

    /// The GELU around the `Erf`/`Tanh` node `n`: the largest elementwise subgraph of one
    /// run-time tensor that contains `n` and ends in one value.
    fn gelu_region(
        &self,
        n: usize,
        rt: &HashSet<String>,
        producer: &HashMap<&str, usize>,
    ) -> Option<Region> {
        let elementwise = |j: usize| ELEMENTWISE.contains(&op_of(&self.nodes[j]));
        // the elementwise ancestors of n (a few levels up) and the run-time tensors they read
        let mut ancestors: HashSet<usize> = HashSet::from([n]);
        let mut frontier = vec![n];
        let mut candidates: Vec<String> = Vec::new();
        for _ in 0..8 {
            let mut next = Vec::new();
            for &j in &frontier {
                for input in self.nodes[j].input.iter().filter(|i| rt.contains(*i)) {
                    if !candidates.contains(input) {
                        candidates.push(input.clone());
                    }
                    if let Some(&p) = producer.get(input.as_str()) {
                        if elementwise(p) && self.scalar_constants(p, rt) && ancestors.insert(p) {
                            next.push(p);
                        }
                    }
                }
            }
            frontier = next;
        }
        // for each candidate x: the ancestors of n that descend from x, valid when every
        // run-time input they read is x or one of their own outputs
        let mut best: Option<(String, Vec<usize>)> = None;
        for x in candidates {
            let mut order: Vec<usize> = ancestors.iter().copied().collect();
            order.sort_unstable();
            let mut path: Vec<usize> = Vec::new();
            let mut made: HashSet<&str> = HashSet::new();
            for j in order {
                let node = &self.nodes[j];
                let reads = node
                    .input
                    .iter()
                    .any(|i| *i == x || made.contains(i.as_str()));
                if reads {
                    path.push(j);
                    made.extend(node.output.iter().map(String::as_str));
                }
            }
            let valid = path.contains(&n)
                && path.iter().all(|&j| {
                    self.nodes[j]
                        .input
                        .iter()
                        .filter(|i| rt.contains(*i))
                        .all(|i| *i == x || made.contains(i.as_str()))
                });
            if valid && best.as_ref().is_none_or(|(_, b)| path.len() > b.len()) {
                best = Some((x, path));
            }
        }
        let (x, path) = best?;
        // grow forward until the subgraph ends in one value
        let mut nodes: HashSet<usize> = path.into_iter().collect();
        for _ in 0..8 {
            let outs: HashSet<&str> = nodes
                .iter()
                .flat_map(|&j| self.nodes[j].output.iter().map(String::as_str))
                .collect();
            let escaping: Vec<&str> = outs
                .iter()
                .copied()
                .filter(|o| {
                    self.graph_outputs.iter().any(|g| g == o)
                        || self
                            .consumers
                            .get(*o)
                            .is_some_and(|cs| cs.iter().any(|c| !nodes.contains(c)))
                })
                .collect();
            let eligible: Vec<usize> = escaping
                .iter()
                .flat_map(|o| self.consumers.get(*o).cloned().unwrap_or_default())
                .filter(|&c| !nodes.contains(&c) && elementwise(c) && self.scalar_constants(c, rt))
                .filter(|&c| {
                    self.nodes[c]
                        .input
                        .iter()
                        .filter(|i| rt.contains(*i))
                        .all(|i| *i == x || outs.contains(i.as_str()))
                })
                .collect();
            if eligible.is_empty() {
                if let [out] = escaping.as_slice() {
                    let mut list: Vec<usize> = nodes.iter().copied().collect();
                    list.sort_unstable();
                    let last = *list.last()?;
                    if self.nodes[last].output.first().map(String::as_str) != Some(*out) {
                        return None;
                    }
                    return Some(Region {
                        nodes: list,
                        kind: Kind::Gelu {
                            x,
                            out: out.to_string(),
                        },
                    });
                }
                return None;
            }
            nodes.extend(eligible);
        }
        None
    }

    /// The attention region that starts at the transpose `s` (perm `[1, 0, 2]` of a run-time
    /// tensor): up to the transpose back after the output projection.
    fn attention_region(&self, s: usize, rt: &HashSet<String>) -> Option<Region> {
        let start = &self.nodes[s];
        if attr_ints(start, "perm")? != [1, 0, 2] || !rt.contains(start.input.first()?) {
            return None;
        }
        let s_out = start.output.first()?;
        let weight_dims = |name: &str| match self.values.get(name) {
            Some(Value::Const(c)) => Some(c.dims.clone()),
            _ => None,
        };
        // the input projection reads the transposed input: [C, 3C]
        let in_proj = *self.consumers.get(s_out)?.iter().find(|&&c| {
            let node = &self.nodes[c];
            op_of(node) == "MatMul"
                && node
                    .input
                    .get(1)
                    .and_then(|w| weight_dims(w))
                    .is_some_and(|d| matches!(d.as_slice(), [c, c3] if *c3 == 3 * *c && *c > 0))
        })?;
        let c = weight_dims(&self.nodes[in_proj].input[1])?[0];
        // everything reachable from the transpose, in graph order
        let mut reach: HashSet<usize> = HashSet::from([s]);
        let mut tensors: HashSet<&str> = HashSet::from([s_out.as_str()]);
        let mut out_proj = None;
        let mut end = None;
        for j in s + 1..self.nodes.len() {
            let node = &self.nodes[j];
            if !node.input.iter().any(|i| tensors.contains(i.as_str())) {
                continue;
            }
            reach.insert(j);
            tensors.extend(node.output.iter().map(String::as_str));
            let is_proj = j > in_proj
                && match op_of(node) {
                    "Gemm" | "MatMul" => node
                        .input
                        .get(1)
                        .and_then(|w| weight_dims(w))
                        .is_some_and(|d| d == [c, c]),
                    _ => false,
                };
            if out_proj.is_none() && is_proj {
                out_proj = Some(j);
            }
            if out_proj.is_some()
                && op_of(node) == "Transpose"
                && attr_ints(node, "perm").as_deref() == Some(&[1, 0, 2])
            {
                end = Some(j);
                break;
            }
        }
        let end = end?;
        let out = self.nodes[end].output.first()?;
        if !self.closed(&reach, out) {
            return None;
        }
        let mut nodes: Vec<usize> = reach.into_iter().collect();
        nodes.sort_unstable();
        Some(Region {
            nodes,
            kind: Kind::Attention { start: s, end },
        })
    }

    /// Converts region `k` at its last node: as a whole if it is what it seemed, else node
    /// by node (with a note saying why it was not taken whole, if that fails too).
    pub fn region(&mut self, k: usize) {
        let nodes = self.regions[k].nodes.clone();
        let result = match &self.regions[k].kind {
            Kind::Gelu { x, out } => {
                let (x, out) = (x.clone(), out.clone());
                self.gelu(&nodes, &x, &out)
            }
            &Kind::Attention { start, end } => self.attention(&nodes, start, end),
            &Kind::Sdpa { softmax, m1, m2 } => self.sdpa(&nodes, softmax, m1, m2),
        };
        let (held, others): (Vec<_>, Vec<_>) = std::mem::take(&mut self.held_back)
            .into_iter()
            .partition(|(r, _, _)| *r == k);
        self.held_back = others;
        let held: Vec<(usize, crate::Problem)> = held.into_iter().map(|(_, j, p)| (j, p)).collect();
        if self.regions[k].speculative() {
            // a problem of a node whose output leaves the region cannot be dropped
            let inside: HashSet<usize> = nodes.iter().copied().collect();
            let contained = held.iter().all(|(j, _)| {
                self.nodes[*j].output.iter().all(|o| {
                    self.consumers
                        .get(o)
                        .is_none_or(|cs| cs.iter().all(|c| inside.contains(c)))
                        && !self.graph_outputs.contains(o)
                })
            });
            match result {
                Ok((out, act)) if contained => {
                    let act = self.finish(&out, act);
                    self.values.insert(out, Value::Act(act));
                }
                Ok(_) => self.problems.extend(held.into_iter().map(|(_, p)| p)),
                Err(why) => {
                    let any = !held.is_empty();
                    self.problems.extend(held.into_iter().map(|(_, p)| p));
                    if let (true, Some(why)) = (any, why) {
                        let node = &self.nodes[nodes[0]];
                        self.problem(node, why);
                    }
                }
            }
            return;
        }
        match result {
            Ok((out, act)) => {
                let act = self.finish(&out, act);
                self.values.insert(out, Value::Act(act));
            }
            Err(why) => {
                let before = self.problems.len();
                for &j in &nodes {
                    if !self.absorbed.contains(&j) {
                        self.node(j);
                    }
                }
                if self.problems.len() > before {
                    if let Some(why) = why {
                        let node = &self.nodes[nodes[0]];
                        self.problem(node, why);
                    }
                }
            }
        }
    }

    /// The value of the elementwise region at `xs`, or `None` if a constant is missing or
    /// holds more than one element.
    fn evaluate(&self, nodes: &[usize], x: &str, out: &str, xs: &[f64]) -> Option<Vec<f64>> {
        let mut vals: HashMap<&str, Vec<f64>> = HashMap::from([(x, xs.to_vec())]);
        for &j in nodes {
            let node = &self.nodes[j];
            let mut args: Vec<Vec<f64>> = Vec::new();
            for i in &node.input {
                args.push(match vals.get(i.as_str()) {
                    Some(v) => v.clone(),
                    None => match self.values.get(i) {
                        Some(Value::Const(c)) => vec![c.scalar()? as f64; xs.len()],
                        _ => return None,
                    },
                });
            }
            let bin = |f: fn(f64, f64) -> f64| -> Option<Vec<f64>> {
                let (a, b) = (args.first()?, args.get(1)?);
                Some(a.iter().zip(b).map(|(&a, &b)| f(a, b)).collect())
            };
            let un = |f: fn(f64) -> f64| -> Option<Vec<f64>> {
                Some(args.first()?.iter().map(|&a| f(a)).collect())
            };
            let v = match op_of(node) {
                "Add" => bin(|a, b| a + b)?,
                "Sub" => bin(|a, b| a - b)?,
                "Mul" => bin(|a, b| a * b)?,
                "Div" => bin(|a, b| a / b)?,
                "Pow" => bin(f64::powf)?,
                "Erf" => un(libm::erf)?,
                "Tanh" => un(f64::tanh)?,
                "Sqrt" => un(f64::sqrt)?,
                _ => return None,
            };
            vals.insert(node.output.first()?.as_str(), v);
        }
        vals.remove(out)
    }

    /// `gelu(x, approximate = "none")` or `gelu(x)` if the region computes one of them.
    fn gelu(
        &mut self,
        nodes: &[usize],
        x: &str,
        out: &str,
    ) -> Result<(String, Act), Option<String>> {
        if !nodes.iter().all(|j| {
            self.nodes[*j].attribute.is_empty() && ELEMENTWISE.contains(&op_of(&self.nodes[*j]))
        }) {
            return Err(None);
        }
        let xs: Vec<f64> = (-24..=24).map(|i| f64::from(i) * 0.25).collect();
        let got = self.evaluate(nodes, x, out, &xs).ok_or(None)?;
        let close = |f: fn(f64) -> f64| {
            xs.iter()
                .zip(&got)
                .all(|(&x, &g)| (g - f(x)).abs() <= 1e-5 * (1.0 + f(x).abs()))
        };
        let exact = if close(gelu_exact) {
            true
        } else if close(gelu_tanh) {
            false
        } else {
            return Err(None);
        };
        let input = match self.values.get(x) {
            Some(Value::Act(a)) if !a.index => a.clone(),
            _ => return Err(None),
        };
        let input = self.materialize(&input);
        let call = if exact {
            format!("gelu({}, approximate = \"none\")", input.expr)
        } else {
            format!("gelu({})", input.expr)
        };
        Ok((out.to_string(), Act::new(call, input.shape)))
    }

    /// `MultiHeadAttention(C, heads = h, causal = ..)` if the region is
    /// `nn.MultiheadAttention`'s self-attention.
    fn attention(
        &mut self,
        nodes: &[usize],
        start: usize,
        end: usize,
    ) -> Result<(String, Act), Option<String>> {
        let fail = |m: String| {
            Err(Some(format!(
                "not converted as `nn.MultiheadAttention`: {m}"
            )))
        };
        let in_region: HashSet<usize> = nodes.iter().copied().collect();
        let s = &self.nodes[start];
        let x = match self.values.get(&s.input[0]) {
            Some(Value::Act(a)) if !a.index => self.materialize(a),
            _ => return Err(None),
        };
        let (t, c) = match x.shape.as_slice() {
            [Dim::Batch, Dim::Fixed(t, _), Dim::Fixed(c, _)] => (*t, *c),
            _ => {
                return fail(format!(
                    "its input is {}, not [B, T, C]",
                    fmt_dims(&x.shape)
                ))
            }
        };
        for &j in nodes {
            let op = op_of(&self.nodes[j]);
            if !ATTENTION_OPS.contains(&op) {
                return fail(format!("it holds the operator `{op}`"));
            }
        }
        let rt = self.runtime_tensors();
        let is_rt = |n: &str| rt.contains(n);
        let konst = |name: &str| match self.values.get(name) {
            Some(Value::Const(c)) => Some(c.clone()),
            _ => None,
        };
        // the projections: a constant weight each, and a bias added right after
        let mut projections = Vec::new();
        let mut act_matmuls = 0;
        let mut softmax = Vec::new();
        for &j in nodes {
            let node = &self.nodes[j];
            match op_of(node) {
                "MatMul" | "Gemm" if node.input.get(1).is_some_and(|w| !is_rt(w)) => {
                    projections.push(j)
                }
                "MatMul" => act_matmuls += 1,
                "Softmax" => softmax.push(j),
                _ => {}
            }
        }
        if projections.len() != 2 || act_matmuls != 2 || softmax.len() != 1 {
            return fail(format!(
                "it has {} projections, {} products of run-time tensors and {} softmax (2, 2 and 1 expected)",
                projections.len(),
                act_matmuls,
                softmax.len()
            ));
        }
        let bias_after = |j: usize, n: usize| -> Option<(usize, Vec<f32>)> {
            let o = self.nodes[j].output.first()?;
            let cs = self.consumers.get(o)?;
            let &a = cs
                .iter()
                .find(|&&a| op_of(&self.nodes[a]) == "Add" && in_region.contains(&a))?;
            let other = self.nodes[a].input.iter().find(|i| *i != o)?;
            let b = konst(other)?;
            (b.len() == n).then_some(())?;
            Some((a, b.floats()?))
        };
        let (pi, po) = (projections[0], projections[1]);
        let w_in = konst(&self.nodes[pi].input[1]).ok_or(None)?;
        if op_of(&self.nodes[pi]) != "MatMul" || w_in.dims != [c, 3 * c] {
            return fail(format!(
                "the input projection's weight has dims {:?}",
                w_in.dims
            ));
        }
        let in_proj_weight = fold::transpose(&w_in, &[1, 0])
            .ok()
            .and_then(|w| w.floats())
            .ok_or(None)?;
        let in_bias = bias_after(pi, 3 * c);
        let out_node = &self.nodes[po];
        let w_out = konst(&out_node.input[1]).ok_or(None)?;
        let (out_weight, mut out_bias) = if op_of(out_node) == "Gemm" {
            if attr_f(out_node, "alpha", 1.0) != 1.0
                || attr_f(out_node, "beta", 1.0) != 1.0
                || attr_i(out_node, "transA", 0) != 0
            {
                return fail("the output projection scales or transposes its input".into());
            }
            let w = if attr_i(out_node, "transB", 0) != 0 {
                w_out.floats()
            } else {
                fold::transpose(&w_out, &[1, 0])
                    .ok()
                    .and_then(|w| w.floats())
            };
            let b = match out_node.input.get(2).filter(|b| !b.is_empty()) {
                Some(b) => {
                    let b = konst(b).and_then(|b| b.floats()).filter(|b| b.len() == c);
                    Some(b.ok_or(Some("the output projection's bias is not [C]".to_string()))?)
                }
                None => None,
            };
            (w, b)
        } else {
            (
                fold::transpose(&w_out, &[1, 0])
                    .ok()
                    .and_then(|w| w.floats()),
                None,
            )
        };
        let out_weight = out_weight.ok_or(None)?;
        if out_bias.is_none() {
            out_bias = bias_after(po, c).map(|(_, b)| b);
        }
        let bias = match (in_bias, out_bias) {
            (Some((_, bi)), Some(bo)) => Some((bi, bo)),
            (Some((_, bi)), None) => Some((bi, vec![0.0; c])),
            (None, None) => None,
            (None, Some(_)) => {
                return fail("the input projection has no bias but the output one has".into())
            }
        };
        // the softmax over the last axis, and the mask added before it
        let sm = &self.nodes[softmax[0]];
        if attr_i(sm, "axis", -1) != -1
            && attr_i(sm, "axis", -1) != 2
            && attr_i(sm, "axis", -1) != 3
        {
            return fail("the softmax is not over the keys".into());
        }
        let scores = &sm.input[0];
        let mut causal = false;
        let producer = nodes
            .iter()
            .copied()
            .find(|&j| self.nodes[j].output.first() == Some(scores));
        if let Some(p) = producer.filter(|&p| op_of(&self.nodes[p]) == "Add") {
            let add = &self.nodes[p];
            let mask = add.input.iter().find(|i| !is_rt(i)).and_then(|m| konst(m));
            let Some(mask) = mask else {
                return fail("the scores are added to a run-time tensor".into());
            };
            let mut dims = mask.dims.clone();
            while dims.len() > 2 && dims[0] == 1 {
                dims.remove(0);
            }
            let v = mask.floats().ok_or(None)?;
            if dims != [t, t] {
                return fail(format!(
                    "the attention mask has dims {:?}, not [{t}, {t}]",
                    mask.dims
                ));
            }
            let is_causal = (0..t * t).all(|k| {
                let (i, j) = (k / t, k % t);
                if j > i {
                    v[k] <= f32::MIN // -inf, or the lowest float
                } else {
                    v[k] == 0.0
                }
            });
            if is_causal {
                causal = true;
            } else if v.iter().any(|&m| m != 0.0) {
                return fail("the attention mask is neither absent nor the causal one (-inf above the diagonal)".into());
            }
        }
        // the heads: the split of q, k or v into [.., h, T, C/h], with the shape arithmetic
        // around it folded (the transposed input's dimensions are [T, B, C])
        let mut local: HashMap<String, Value> = HashMap::new();
        let mut seen = Act::new(
            String::new(),
            vec![Dim::fixed(t), Dim::Batch, Dim::fixed(c)],
        );
        seen.dsl = seen.shape.clone();
        local.insert(s.output[0].clone(), Value::Act(seen));
        let mut heads = HashSet::new();
        for &j in nodes {
            let node = &self.nodes[j];
            if op_of(node) == "Reshape" {
                if let Some(Value::Const(target)) = node
                    .input
                    .get(1)
                    .and_then(|i| local.get(i).or_else(|| self.values.get(i)))
                {
                    if let [_, crate::tensor::Int::Known(h), crate::tensor::Int::Known(tt), crate::tensor::Int::Known(d)] =
                        target.sym_ints().as_slice()
                    {
                        if *tt == t as i64 && *h > 0 && h * d == c as i64 {
                            heads.insert(*h as usize);
                        }
                    }
                }
            }
            let ins: Option<Vec<Option<Value>>> = node
                .input
                .iter()
                .map(|i| {
                    if i.is_empty() {
                        return Some(None);
                    }
                    local
                        .get(i)
                        .or_else(|| self.values.get(i))
                        .cloned()
                        .map(Some)
                })
                .collect();
            let Some(ins) = ins else { continue };
            let all_const = ins.iter().all(|v| !matches!(v, Some(Value::Act(_))));
            let shape_of_input = op_of(node) == "Shape" && node.input[0] == s.output[0];
            if !(all_const || shape_of_input) {
                continue;
            }
            if let Ok(outs) = self.op(node, &ins) {
                for (o, v) in node.output.iter().zip(outs) {
                    local.insert(o.clone(), v);
                }
            }
        }
        let heads = match heads.into_iter().collect::<Vec<_>>().as_slice() {
            [h] => *h,
            [] => return fail("no reshape splits the width into heads [.., h, T, C/h]".into()),
            hs => return fail(format!("the head splits disagree: {hs:?}")),
        };
        // the layer, named by its parameters (`h.0.attn.in_proj_bias` → `h_0_attn`)
        let base = nodes
            .iter()
            .flat_map(|&j| self.nodes[j].input.iter())
            .find_map(|i| {
                i.strip_suffix(".in_proj_bias")
                    .or_else(|| i.strip_suffix(".out_proj.weight"))
                    .or_else(|| i.strip_suffix(".in_proj_weight"))
                    .map(str::to_string)
            })
            .or_else(|| layer_base("", self.nodes[end].name.as_deref().unwrap_or("")))
            .unwrap_or_else(|| "attn".into());
        let name = self.names.fresh(&base);
        let heads_dim = self
            .syms
            .fresh(heads, Some(Role::layer_part(&name, "HEADS", "HEADS")));
        let mut decl = format!(
            "MultiHeadAttention({}, heads = {}",
            dim_src(&x.shape[2]),
            dim_src(&heads_dim)
        );
        if causal {
            decl += ", causal = true";
        }
        if bias.is_none() {
            decl += ", bias = false";
        }
        decl += ")";
        self.layers.push(Layer {
            name: name.clone(),
            decl,
        });
        self.weight(
            format!("{name}.in_proj_weight"),
            vec![3 * c, c],
            in_proj_weight,
        );
        self.weight(format!("{name}.out_proj.weight"), vec![c, c], out_weight);
        if let Some((bi, bo)) = bias {
            self.weight(format!("{name}.in_proj_bias"), vec![3 * c], bi);
            self.weight(format!("{name}.out_proj.bias"), vec![c], bo);
        }
        let arg = self.operand(&x);
        let out = self.nodes[end].output[0].clone();
        Ok((out, Act::new(format!("{name}({arg})"), x.shape.clone())))
    }
}
