//! From the syntax tree to the validated model: names resolved, layers configured, every
//! shape inferred and checked, every mistake reported on the token that made it.
//!
//! The checks, each a `compile_error!` naming both sides:
//! - a layer's input does not fit it (size, conv channels, a kernel larger than the padded input);
//! - elementwise operands that do not broadcast (the shorter shape must end the longer one);
//! - matmul inner and leading dimensions, reshape element counts, slice bounds;
//! - transpose and concat dimensions (never the batch's), attention widths and lengths, the
//!   causal mask's square, heads dividing an attention layer's width, layer arrays whose
//!   block changes the shape (`sequence_rules.rs`, `sequence_layers.rs`);
//! - `u32` indices anywhere but an `Embedding` layer or the targets of
//!   `softmax_cross_entropy`, and integer targets whose shape does not fit the logits;
//! - a `let` annotation or the declared return shape that disagrees with the value;
//! - an unknown op, layer, fn or name (with the closest known name), a wrong number of
//!   arguments, an unknown or repeated keyword;
//! - a name used before it is defined, a recursive fn;
//! - a declared layer never used, a duplicate name;
//! - a gradient asked of a fn whose result is not a scalar.
//!
//! Errors are collected, not returned early; an expression that failed yields `None`, and
//! whatever depends on it is not checked again, so one mistake gives one message.

use std::collections::{HashMap, HashSet};

use proc_macro2::Span;
use quote::ToTokens;
use syn::{Attribute, Expr, Ident, Visibility};

use crate::ast::{
    DimSyn, FnDef, LayerArg, LayerField, LayerSig, ModelInput, ShapeSyn, SigKind, StructDef,
};
use crate::ir::{Binary, ConvGeom, Graph, Node, NodeId, Op, PoolGeom, Unary};
use crate::ops;
use crate::shape::{Dim, Shape};

mod layers;
mod numbers;
mod op_rules;
mod sequence_layers;
mod sequence_rules;

use layers::*;
pub use layers::{Init, Layer, LayerKind, PoolCfg, LAYER_KINDS};
use numbers::*;

/// The validated model.
pub struct Model {
    pub consts: Vec<(Vec<Attribute>, Visibility, Ident, usize)>,
    pub strukt: Option<StructModel>,
    pub fns: Vec<FnModel>,
}

pub struct StructModel {
    /// The output shape of each layer where a fn first calls it (`None` if never called).
    pub outputs: Vec<Option<Shape>>,
    pub attrs: Vec<Attribute>,
    pub vis: Visibility,
    pub name: Ident,
    pub layers: Vec<Layer>,
}

pub struct FnModel {
    pub attrs: Vec<Attribute>,
    pub vis: Visibility,
    pub name: Ident,
    pub inputs: Vec<(Ident, Shape)>,
    pub ret: Shape,
    pub graph: Graph,
}

impl FnModel {
    /// Whether input `i` is declared `u32[..]` (its node is the `i`-th: inputs come first).
    pub fn is_index(&self, i: usize) -> bool {
        self.graph.nodes.get(i).is_some_and(|n| n.op.is_index())
    }
}

/// Collected errors.
#[derive(Default)]
struct Errors {
    list: Vec<syn::Error>,
    /// Consts whose definition failed: their uses are not reported again.
    failed_consts: HashSet<String>,
    /// Something failed whose error was reported elsewhere (a struct layer's own model!).
    silent_failure: bool,
    /// While > 0 (inside an inlined call), errors are dropped: the callee reports its own.
    quiet: usize,
}

impl Errors {
    fn at<T: ToTokens>(&mut self, tokens: T, msg: impl std::fmt::Display) {
        if self.quiet == 0 {
            self.list.push(syn::Error::new_spanned(tokens, msg));
        }
    }
    fn span(&mut self, span: Span, msg: impl std::fmt::Display) {
        if self.quiet == 0 {
            self.list.push(syn::Error::new(span, msg));
        }
    }
}

/// Validates `input` into a [`Model`], or returns every error found.
/// `Err(None)`: the model failed only because of errors reported elsewhere (a struct layer
/// whose own model! failed), so nothing is to be reported here.
pub fn lower(input: ModelInput) -> Result<Model, Option<syn::Error>> {
    let mut errs = Errors::default();

    // consts, in order: a const may use the ones before it
    let mut consts = HashMap::new();
    let mut const_out = Vec::new();
    for c in &input.consts {
        if consts.contains_key(&c.name.to_string()) {
            errs.at(&c.name, format!("the const `{}` is defined twice", c.name));
            continue;
        }
        match eval_usize(&c.value, &consts, &mut errs) {
            Some(v) => {
                consts.insert(c.name.to_string(), v);
                const_out.push((c.attrs.clone(), c.vis.clone(), c.name.clone(), v));
            }
            None => {
                errs.failed_consts.insert(c.name.to_string());
            }
        }
    }

    for extra in input.structs.iter().skip(1) {
        errs.at(
            &extra.name,
            format!(
                "one model! declares one struct; put `{}` in a model! of its own",
                extra.name
            ),
        );
    }
    let strukt_def = input.structs.first();
    let mut layers = Vec::new();
    if let Some(s) = strukt_def {
        layers = lower_layers(s, &input.sigs, &consts, &mut errs);
    }

    if input.fns.is_empty() {
        let span = strukt_def.map_or_else(Span::call_site, |s| s.name.span());
        errs.span(
            span,
            "a model needs at least one fn, such as `fn forward(x: [B, 784]) -> [B, 10] { .. }`",
        );
    }
    let mut seen = HashSet::new();
    for f in &input.fns {
        if !seen.insert(f.name.to_string()) {
            errs.at(&f.name, format!("the fn `{}` is defined twice", f.name));
        }
        if let Some(l) = layers.iter().find(|l| l.name == f.name) {
            errs.at(
                &f.name,
                format!("`{}` is both a layer and a fn; rename one", l.name),
            );
        }
    }

    let failed_layers: HashSet<String> = strukt_def
        .map(|s| {
            s.fields
                .iter()
                .map(|f| f.name.to_string())
                .filter(|n| !layers.iter().any(|l| l.name == n.as_str()))
                .collect()
        })
        .unwrap_or_default();
    let layer_map: HashMap<String, usize> = layers
        .iter()
        .enumerate()
        .map(|(i, l)| (l.name.to_string(), i))
        .collect();
    let mut used = vec![false; layers.len()];
    let mut outputs: Vec<Option<Shape>> = vec![None; layers.len()];
    let mut fns = Vec::new();
    for f in &input.fns {
        let mut cx = Lower {
            errs: &mut errs,
            consts: &consts,
            layers: &layers,
            layer_map: &layer_map,
            used: &mut used,
            outputs: &mut outputs,
            fns: &input.fns,
            failed_layers: &failed_layers,
            nodes: Vec::new(),
            params: HashMap::new(),
            stack: Vec::new(),
            in_struct: strukt_def.is_some(),
        };
        if let Some(fm) = cx.lower_fn(f) {
            fns.push(fm);
        }
    }
    for (l, used) in layers.iter().zip(&used) {
        if !used && !input.fns.is_empty() {
            errs.at(
                &l.name,
                format!(
                    "the layer `{}` is declared but never used; use it in a fn or remove it",
                    l.name
                ),
            );
        }
    }

    let silent = errs.silent_failure;
    let mut list = errs.list.into_iter();
    if let Some(mut first) = list.next() {
        for e in list {
            first.combine(e);
        }
        return Err(Some(first));
    }
    if silent {
        return Err(None);
    }
    Ok(Model {
        consts: const_out,
        strukt: strukt_def.map(|s| StructModel {
            attrs: s.attrs.clone(),
            vis: s.vis.clone(),
            name: s.name.clone(),
            outputs: layers
                .iter()
                .zip(outputs)
                .map(|(l, o)| match (&l.kind, o) {
                    (LayerKind::Param { shape, .. }, _) => Some(Shape::fixed(shape)),
                    (_, o) => o,
                })
                .collect(),
            layers,
        }),
        fns,
    })
}

/// A struct layer whose signature has not been passed in yet (`blk: Block` with no
/// `@layer Block ..` in front of the input).
pub fn missing_signature(input: &ModelInput) -> Option<&Ident> {
    let s = input.structs.first()?;
    s.fields
        .iter()
        .filter(|f| f.args.is_none() && !LAYER_KINDS.contains(&f.kind.to_string().as_str()))
        .map(|f| &f.kind)
        .find(|k| !input.sigs.iter().any(|sig| sig.name == **k))
}

/// The values of the consts that evaluate, ignoring errors (for the fallback stub).
pub fn const_values(input: &ModelInput) -> HashMap<String, usize> {
    let mut consts = HashMap::new();
    for c in &input.consts {
        if let Some(v) = eval_usize(&c.value, &consts, &mut Errors::default()) {
            consts.insert(c.name.to_string(), v);
        }
    }
    consts
}

// ---------------------------------------------------------------------------------------
// fn bodies

/// A name in scope: its node, or `None` if its definition failed (uses stay silent).
type Env = HashMap<String, Option<NodeId>>;

struct Lower<'a> {
    errs: &'a mut Errors,
    consts: &'a HashMap<String, usize>,
    layers: &'a [Layer],
    layer_map: &'a HashMap<String, usize>,
    used: &'a mut Vec<bool>,
    /// The output shape of each layer's first call, for the model's summary.
    outputs: &'a mut Vec<Option<Shape>>,
    fns: &'a [FnDef],
    /// Layers whose declaration failed: their uses are not reported again.
    failed_layers: &'a HashSet<String>,
    nodes: Vec<Node>,
    /// Parameter leaves by path (`fc1.weight`), so each parameter is one node.
    params: HashMap<String, NodeId>,
    /// The fns being lowered, innermost last, with the names their later `let`s define.
    stack: Vec<(String, HashSet<String>)>,
    in_struct: bool,
}

/// How an argument is described in messages: `h` for a name, the expression otherwise.
fn describe(e: &Expr) -> String {
    let text = e.to_token_stream().to_string();
    let text = text
        .replace(" (", "(")
        .replace("( ", "(")
        .replace(" )", ")")
        .replace(" ,", ",");
    if text.len() > 40 {
        format!(
            "{}..",
            &text[..text.char_indices().nth(37).map_or(text.len(), |(i, _)| i)]
        )
    } else {
        text
    }
}

impl Lower<'_> {
    fn push(&mut self, op: Op, inputs: Vec<NodeId>, shape: Shape) -> NodeId {
        self.nodes.push(Node { op, inputs, shape });
        self.nodes.len() - 1
    }

    fn shape(&self, id: NodeId) -> &Shape {
        &self.nodes[id].shape
    }

    /// Reports `e` (node `id`) if it holds `u32` indices, which `consumer` cannot take.
    fn reject_index(&mut self, e: &Expr, id: NodeId, consumer: &str) -> bool {
        if !self.nodes[id].op.is_index() {
            return false;
        }
        self.errs.at(
            e,
            format!(
                "`{}` holds u32 indices, which go only into an `Embedding` layer or the targets of `softmax_cross_entropy`, not into {consumer}",
                describe(e)
            ),
        );
        true
    }

    /// Resolves a written shape; `batch` allows a leading batch dimension.
    fn resolve_shape(&mut self, s: &ShapeSyn, batch: bool) -> Option<Shape> {
        let mut dims = Vec::new();
        let mut batch_name = None;
        let mut ok = true;
        for (i, d) in s.dims.iter().enumerate() {
            match d {
                DimSyn::Lit(l) => match l.base10_parse::<usize>() {
                    Err(_) if l.base10_digits().bytes().all(|b| b.is_ascii_digit()) => {
                        self.errs
                            .at(l, format!("`{l}` is too large for a dimension"));
                        ok = false;
                    }
                    Ok(0) | Err(_) => {
                        self.errs.at(l, "a dimension is a positive integer");
                        ok = false;
                    }
                    Ok(v) => dims.push(Dim::Fixed(v)),
                },
                DimSyn::Name(n) => {
                    if let Some(&v) = self.consts.get(&n.to_string()) {
                        dims.push(Dim::Fixed(v));
                    } else if self.errs.failed_consts.contains(&n.to_string()) {
                        ok = false;
                    } else if i == 0 && batch {
                        dims.push(Dim::Batch);
                        batch_name = Some(n.to_string());
                    } else {
                        let why = if !self.in_struct {
                            "; declare it with `const NAME: usize = ..;` (a fn without a struct has no batch dimension)"
                        } else if i > 0 {
                            "; only the first dimension can be the batch dimension, and other names must be consts"
                        } else {
                            "; declare it with `const NAME: usize = ..;`"
                        };
                        self.errs.at(n, format!("unknown dimension `{n}`{why}"));
                        ok = false;
                    }
                }
            }
        }
        let shape = Shape { dims, batch_name };
        if ok && shape.too_large() {
            self.errs.span(
                s.span,
                format!(
                    "{shape} has {} elements per sample, more than a model can hold (2^40)",
                    shape.numel_fixed()
                ),
            );
            return None;
        }
        ok.then_some(shape)
    }

    fn lower_fn(&mut self, f: &FnDef) -> Option<FnModel> {
        let mut inputs = Vec::new();
        let mut env = Env::new();
        let mut batch_names: Vec<(&Ident, String)> = Vec::new();
        let mut ok = true;
        for (i, (name, s)) in f.inputs.iter().enumerate() {
            if env.contains_key(&name.to_string()) {
                self.errs
                    .at(name, format!("the input `{name}` is declared twice"));
                ok = false;
                continue;
            }
            match self.resolve_shape(s, self.in_struct) {
                Some(shape) => {
                    if let Some(b) = &shape.batch_name {
                        batch_names.push((name, b.clone()));
                    }
                    if let (Some(ty), true) = (&s.index, shape.is_scalar()) {
                        self.errs.at(
                            ty,
                            format!("`{name}` holds no index: a `u32` input has at least one dimension, as in `u32[B]`"),
                        );
                        ok = false;
                    }
                    let op = if s.index.is_some() {
                        Op::IndexInput(i)
                    } else {
                        Op::Input(i)
                    };
                    if let (Some(ty), false) = (&s.index, self.in_struct) {
                        self.errs.at(
                            ty,
                            format!("`{name}` is declared `u32`: indices feed an `Embedding` layer or the targets of `softmax_cross_entropy`, so they belong to a model with a struct"),
                        );
                        ok = false;
                    }
                    let id = self.push(op, vec![], shape.clone());
                    env.insert(name.to_string(), Some(id));
                    inputs.push((name.clone(), shape));
                }
                None => {
                    env.insert(name.to_string(), None);
                    ok = false;
                }
            }
        }
        if let Some((first, b0)) = batch_names.first() {
            for (name, b) in &batch_names[1..] {
                if b != b0 {
                    self.errs.at(
                        *name,
                        format!("all inputs share one batch dimension: `{first}` uses `{b0}` but `{name}` uses `{b}`"),
                    );
                    ok = false;
                }
            }
        }
        if let Some(ty) = &f.ret.index {
            self.errs.at(
                ty,
                format!(
                    "`{}` returns values: a result cannot be `u32` indices; remove `u32`",
                    f.name
                ),
            );
            ok = false;
        }
        let mut ret = self.resolve_shape(&f.ret, self.in_struct);
        if ok && batch_names.is_empty() && ret.as_ref().is_some_and(|r| r.is_batched()) {
            if let Some(DimSyn::Name(b)) = f.ret.dims.first() {
                self.errs.at(
                    b,
                    format!(
                        "`{}` returns a batch dimension `{b}` but no input has one",
                        f.name
                    ),
                );
            }
            ret = None;
        }
        let wants_grad = f.attrs.iter().any(|a| a.path().is_ident("grad"));
        if let (true, Some(r)) = (wants_grad, &ret) {
            if !r.is_scalar() {
                self.errs.at(
                    f.ret.dims.first().map_or_else(|| f.name.to_token_stream(), |d| match d {
                        DimSyn::Lit(l) => l.to_token_stream(),
                        DimSyn::Name(n) => n.to_token_stream(),
                    }),
                    format!(
                        "`{}` returns {r}, so it has no gradient: `#[grad]` needs a scalar result `[]` (a non-scalar fn has `{}_vjp` instead)",
                        f.name, f.name
                    ),
                );
                ok = false;
            }
        }
        let out = self.lower_body(f, env);
        let ret = ret?;
        let out = out?;
        if self.reject_index(&f.tail, out, "a fn's result") {
            return None;
        }
        let got = self.shape(out).clone();
        if got.dims != ret.dims {
            self.errs.at(
                &f.tail,
                format!(
                    "`{}` is declared to return {ret} but `{}` is {got}",
                    f.name,
                    describe(&f.tail)
                ),
            );
            return None;
        }
        if !ok {
            return None;
        }
        let attrs = f
            .attrs
            .iter()
            .filter(|a| !a.path().is_ident("grad"))
            .cloned()
            .collect();
        Some(FnModel {
            attrs,
            vis: f.vis.clone(),
            name: f.name.clone(),
            inputs,
            ret,
            graph: Graph {
                nodes: std::mem::take(&mut self.nodes),
                output: out,
            },
        })
    }

    /// Lowers the `let`s and the tail of `f` with `env` holding its inputs.
    fn lower_body(&mut self, f: &FnDef, mut env: Env) -> Option<NodeId> {
        let later: HashSet<String> = f.stmts.iter().map(|s| s.name.to_string()).collect();
        self.stack.push((f.name.to_string(), later));
        for s in &f.stmts {
            let v = self.expr(&s.value, &env);
            if let Some(ty) = s.ann.as_ref().and_then(|a| a.index.as_ref()) {
                self.errs.at(
                    ty,
                    "only fn inputs are declared `u32`; annotate a `let` with its shape alone",
                );
            }
            let v = match (v, &s.ann) {
                (Some(v), Some(ann)) => match self.resolve_shape(ann, true) {
                    Some(want) if want.dims != self.shape(v).dims => {
                        let got = self.shape(v).clone();
                        self.errs.span(
                            ann.span,
                            format!(
                                "`{}` is annotated {want} but `{}` is {got}",
                                s.name,
                                describe(&s.value)
                            ),
                        );
                        None
                    }
                    Some(_) => Some(v),
                    None => None,
                },
                (v, _) => v,
            };
            env.insert(s.name.to_string(), v);
            if let Some(top) = self.stack.last_mut() {
                top.1.remove(&s.name.to_string());
            }
        }
        let out = self.expr(&f.tail, &env);
        self.stack.pop();
        out
    }

    fn expr(&mut self, e: &Expr, env: &Env) -> Option<NodeId> {
        let id = self.expr_unchecked(e, env)?;
        let shape = self.shape(id);
        if shape.too_large() {
            let msg = format!(
                "`{}` is {shape}: {} elements per sample, more than a model can hold (2^40)",
                describe(e),
                shape.numel_fixed()
            );
            self.errs.at(e, msg);
            return None;
        }
        Some(id)
    }

    fn expr_unchecked(&mut self, e: &Expr, env: &Env) -> Option<NodeId> {
        match e {
            Expr::Paren(p) => self.expr(&p.expr, env),
            Expr::Group(g) => self.expr(&g.expr, env),
            Expr::Lit(_) => {
                let v = eval_f64(e, self.errs)?;
                Some(self.push(Op::Const(v), vec![], Shape::scalar()))
            }
            Expr::Unary(u) if matches!(u.op, syn::UnOp::Neg(_)) => {
                if let Expr::Lit(_) = &*u.expr {
                    let v = eval_f64(e, self.errs)?;
                    return Some(self.push(Op::Const(v), vec![], Shape::scalar()));
                }
                let x = self.expr(&u.expr, env)?;
                if self.reject_index(&u.expr, x, "`-`") {
                    return None;
                }
                let shape = self.shape(x).clone();
                Some(self.push(Op::Scale(-1.0), vec![x], shape))
            }
            Expr::Path(p) => {
                let Some(id) = p.path.get_ident() else {
                    self.errs.at(p, "expected a name");
                    return None;
                };
                self.name(id, env)
            }
            Expr::Binary(b) => {
                let op = match b.op {
                    syn::BinOp::Add(_) => Binary::Add,
                    syn::BinOp::Sub(_) => Binary::Sub,
                    syn::BinOp::Mul(_) => Binary::Mul,
                    syn::BinOp::Div(_) => Binary::Div,
                    _ => {
                        self.errs.at(
                            b.op,
                            "only + - * / are tensor operators; use an op such as `matmul(a, b)`",
                        );
                        return None;
                    }
                };
                let l = self.expr(&b.left, env);
                let r = self.expr(&b.right, env);
                self.binary(e, op, &b.left, l?, &b.right, r?)
            }
            Expr::Call(c) => {
                let (name, index) = match &*c.func {
                    Expr::Path(p) if p.path.get_ident().is_some() => (p.path.get_ident()?, None),
                    // `h[2](x)`: one element of a layer array
                    Expr::Index(ix) => match &*ix.expr {
                        Expr::Path(p) if p.path.get_ident().is_some() => {
                            let i = eval_usize(&ix.index, self.consts, self.errs)?;
                            (p.path.get_ident()?, Some((i, &*ix.index)))
                        }
                        other => {
                            self.errs
                                .at(other, "index a layer array by its name: `h[2](x)`");
                            return None;
                        }
                    },
                    other => {
                        self.errs
                            .at(other, "call a layer, an op or a fn by its name");
                        return None;
                    }
                };
                let mut pos = Vec::new();
                let mut kws = Vec::new();
                for a in &c.args {
                    match a {
                        Expr::Assign(asg) => match &*asg.left {
                            Expr::Path(p) if p.path.get_ident().is_some() => {
                                kws.push((p.path.get_ident()?, &*asg.right))
                            }
                            other => {
                                self.errs.at(other, "a keyword argument is `name = value`");
                                return None;
                            }
                        },
                        other => pos.push(other),
                    }
                }
                self.call(e, name, index, pos, kws, env)
            }
            Expr::MethodCall(m) => {
                self.errs.at(
                    &m.method,
                    format!(
                        "methods are not part of the model language; write `{}(..)` as a call",
                        m.method
                    ),
                );
                None
            }
            other => {
                self.errs.at(
                    other,
                    "unsupported expression: a model expression is a name, a number, a call, or + - * /",
                );
                None
            }
        }
    }

    fn name(&mut self, id: &Ident, env: &Env) -> Option<NodeId> {
        let key = id.to_string();
        if let Some(v) = env.get(&key) {
            return *v;
        }
        if let Some(&li) = self.layer_map.get(&key) {
            if let LayerKind::Param { .. } = self.layers[li].kind {
                self.used[li] = true;
                return Some(self.param_leaf(li, None));
            }
            self.used[li] = true;
            self.errs.at(
                id,
                format!("`{id}` is a layer: call it on an input, as in `{id}(x)`"),
            );
            return None;
        }
        if self.failed_layers.contains(&key) {
            return None;
        }
        if self
            .stack
            .last()
            .is_some_and(|(_, later)| later.contains(&key))
        {
            self.errs
                .at(id, format!("`{id}` is used before it is defined"));
            return None;
        }
        let mut names: Vec<&str> = env.keys().map(|k| k.as_str()).collect();
        names.extend(self.layer_map.keys().map(|k| k.as_str()));
        let hint = ops::closest(&key, names)
            .map(|c| format!("; did you mean `{c}`?"))
            .unwrap_or_default();
        self.errs
            .at(id, format!("cannot find `{id}` in this model{hint}"));
        None
    }

    /// The node of a parameter: `self.<layer>` for a `Param`, `self.<layer>.<sub>` otherwise
    /// (`sub` may be a path: `out_proj.weight`).
    fn param_leaf(&mut self, li: usize, sub: Option<&str>) -> NodeId {
        let layer = &self.layers[li];
        let key = match sub {
            Some(s) => format!("{}.{s}", layer.name),
            None => layer.name.to_string(),
        };
        if let Some(&id) = self.params.get(&key) {
            return id;
        }
        let dims: Vec<usize> = match (&layer.kind, sub) {
            (LayerKind::Param { shape, .. }, _) => shape.clone(),
            (LayerKind::Dense { in_f, out_f, .. }, Some("weight")) => vec![*out_f, *in_f],
            (LayerKind::Dense { out_f, .. }, _) => vec![*out_f],
            (
                LayerKind::Conv2d {
                    c_in,
                    c_out,
                    kernel,
                    ..
                },
                Some("weight"),
            ) => vec![*c_out, *c_in, *kernel, *kernel],
            (LayerKind::Conv2d { c_out, .. }, _) => vec![*c_out],
            (LayerKind::BatchNorm2d { c, .. }, _) => vec![*c],
            (LayerKind::Embedding { vocab, dim }, _) => vec![*vocab, *dim],
            (LayerKind::LayerNorm { dim, .. }, _) => vec![*dim],
            (LayerKind::MultiHeadAttention { dim, .. }, Some("in_proj_weight")) => {
                vec![3 * dim, *dim]
            }
            (LayerKind::MultiHeadAttention { dim, .. }, Some("in_proj_bias")) => vec![3 * dim],
            (LayerKind::MultiHeadAttention { dim, .. }, Some("out_proj.weight")) => {
                vec![*dim, *dim]
            }
            (LayerKind::MultiHeadAttention { dim, .. }, _) => vec![*dim],
            _ => vec![],
        };
        let op = Op::Param {
            field: layer.name.clone(),
            sub: sub
                .map(|s| {
                    s.split('.')
                        .map(|part| Ident::new(part, layer.name.span()))
                        .collect()
                })
                .unwrap_or_default(),
        };
        let id = self.push(op, vec![], Shape::fixed(&dims));
        self.params.insert(key, id);
        id
    }

    fn binary(
        &mut self,
        e: &Expr,
        op: Binary,
        le: &Expr,
        l: NodeId,
        re: &Expr,
        r: NodeId,
    ) -> Option<NodeId> {
        let what = format!("`{}`", op.name());
        if self.reject_index(le, l, &what) | self.reject_index(re, r, &what) {
            return None;
        }
        let (ls, rs) = (self.shape(l).clone(), self.shape(r).clone());
        match ls.broadcast(&rs) {
            Some(shape) => Some(self.push(Op::Binary(op), vec![l, r], shape)),
            None => {
                self.errs.at(
                    e,
                    format!(
                        "cannot {} `{}` {ls} and `{}` {rs}: the shapes do not broadcast (the shorter must match the end of the longer)",
                        op.name(),
                        describe(le),
                        describe(re)
                    ),
                );
                None
            }
        }
    }

    fn call(
        &mut self,
        e: &Expr,
        name: &Ident,
        index: Option<(usize, &Expr)>,
        pos: Vec<&Expr>,
        kws: Vec<(&Ident, &Expr)>,
        env: &Env,
    ) -> Option<NodeId> {
        let key = name.to_string();
        if let Some((_, ie)) = index {
            if !self.layer_map.contains_key(&key) {
                if !self.failed_layers.contains(&key) {
                    self.errs.at(
                        ie,
                        format!("`{name}` is not a layer array: only a layer declared `{name}: [Block; N]` is indexed"),
                    );
                }
                return None;
            }
        }
        if let Some(&li) = self.layer_map.get(&key) {
            let out = self.layer_call(e, li, name, index, pos, kws, env);
            if let Some(id) = out {
                if self.outputs[li].is_none() {
                    self.outputs[li] = Some(self.shape(id).clone());
                }
            }
            return out;
        }
        if let Some(fi) = self.fns.iter().position(|f| f.name == key) {
            return self.inline_call(e, fi, name, pos, kws, env);
        }
        if let Some(spec) = ops::find(&key) {
            return self.op_call(e, spec, name, pos, kws, env);
        }
        if self.failed_layers.contains(&key) {
            // the declaration is wrong and already reported
            return None;
        }
        let fn_names: Vec<String> = self.fns.iter().map(|f| f.name.to_string()).collect();
        let names = ops::OPS
            .iter()
            .map(|s| s.name)
            .chain(self.layer_map.keys().map(|k| k.as_str()))
            .chain(fn_names.iter().map(|s| s.as_str()));
        let hint = ops::closest(&key, names)
            .map(|c| format!("; did you mean `{c}`?"))
            .unwrap_or_default();
        self.errs
            .at(name, format!("unknown op, layer or fn `{name}`{hint}"));
        None
    }

    fn inline_call(
        &mut self,
        e: &Expr,
        fi: usize,
        name: &Ident,
        pos: Vec<&Expr>,
        kws: Vec<(&Ident, &Expr)>,
        env: &Env,
    ) -> Option<NodeId> {
        let callee = &self.fns[fi];
        if self.stack.iter().any(|(n, _)| name == n) {
            self.errs.at(
                name,
                format!("`{name}` calls itself; a model fn cannot be recursive"),
            );
            return None;
        }
        if let Some((k, _)) = kws.first() {
            self.errs
                .at(*k, format!("`{name}` takes no keyword arguments"));
            return None;
        }
        if pos.len() != callee.inputs.len() {
            self.errs.at(
                e,
                format!(
                    "`{name}` takes {} argument{} ({}), got {}",
                    callee.inputs.len(),
                    if callee.inputs.len() == 1 { "" } else { "s" },
                    callee
                        .inputs
                        .iter()
                        .map(|(n, _)| n.to_string())
                        .collect::<Vec<_>>()
                        .join(", "),
                    pos.len()
                ),
            );
            return None;
        }
        let args: Vec<Option<NodeId>> = pos.iter().map(|a| self.expr(a, env)).collect();
        let args: Vec<NodeId> = args.into_iter().collect::<Option<_>>()?;
        let mut inner = Env::new();
        let mut ok = true;
        for ((pname, pshape), (&arg, a)) in callee.inputs.iter().zip(args.iter().zip(&pos)) {
            match (pshape.index.is_some(), self.nodes[arg].op.is_index()) {
                (true, false) => {
                    self.errs.at(
                        *a,
                        format!(
                            "`{name}` expects `{pname}` to hold u32 indices, but `{}` holds values",
                            describe(a)
                        ),
                    );
                    ok = false;
                    continue;
                }
                (false, true) => {
                    self.reject_index(a, arg, &format!("`{name}`'s input `{pname}`"));
                    ok = false;
                    continue;
                }
                _ => {}
            }
            self.errs.quiet += 1;
            let want = self.resolve_shape(pshape, self.in_struct);
            self.errs.quiet -= 1;
            let want = want?;
            let got = self.shape(arg).clone();
            if want.dims != got.dims {
                self.errs.at(
                    *a,
                    format!(
                        "`{name}` expects `{pname}` to be {want} but `{}` is {got}",
                        describe(a)
                    ),
                );
                ok = false;
            }
            inner.insert(pname.to_string(), Some(arg));
        }
        if !ok {
            return None;
        }
        self.errs.quiet += 1;
        let out = self.lower_body(callee, inner);
        self.errs.quiet -= 1;
        out
    }
}
