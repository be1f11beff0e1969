//! From the syntax tree to the validated model: names resolved, layers configured, every
//! shape inferred and checked, every mistake reported on the token that made it.
//!
//! The checks, each a `compile_error!` naming both sides:
//! - a layer's input does not fit it (size, conv channels, a kernel larger than the padded input);
//! - elementwise operands that do not broadcast (the shorter shape must end the longer one);
//! - matmul inner dimensions, reshape element counts, slice bounds;
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
use syn::{Attribute, Expr, Ident, Lit, Visibility};

use crate::ast::{
    DimSyn, FnDef, LayerArg, LayerField, LayerSig, ModelInput, ShapeSyn, SigKind, StructDef,
};
use crate::ir::{Binary, ConvGeom, Graph, Node, NodeId, Op, PoolGeom, Unary};
use crate::ops;
use crate::shape::{Dim, Shape};

/// The validated model.
pub struct Model {
    pub consts: Vec<(Vec<Attribute>, Visibility, Ident, usize)>,
    pub strukt: Option<StructModel>,
    pub fns: Vec<FnModel>,
}

pub struct StructModel {
    pub attrs: Vec<Attribute>,
    pub vis: Visibility,
    pub name: Ident,
    pub layers: Vec<Layer>,
}

pub struct Layer {
    pub attrs: Vec<Attribute>,
    pub name: Ident,
    pub kind: LayerKind,
}

#[derive(Clone, Debug)]
pub enum LayerKind {
    Dense {
        in_f: usize,
        out_f: usize,
        bias: bool,
    },
    Conv2d {
        c_in: usize,
        c_out: usize,
        kernel: usize,
        stride: usize,
        padding: usize,
        bias: bool,
    },
    BatchNorm2d {
        c: usize,
        eps: f64,
        momentum: f64,
    },
    MaxPool2d(PoolCfg),
    AvgPool2d(PoolCfg),
    Dropout {
        p: f64,
    },
    Param {
        shape: Vec<usize>,
        init: Init,
    },
    /// A model declared by another `model!`: `blk: Block`.
    Struct {
        ty: Ident,
        input: Shape,
        output: Shape,
        ws_per_row: usize,
        ws_fixed: usize,
    },
}

#[derive(Clone, Copy, Debug)]
pub struct PoolCfg {
    pub kernel: usize,
    pub stride: usize,
    pub padding: usize,
}

/// How a `Param([dims])` starts.
#[derive(Clone, Copy, Debug)]
pub enum Init {
    Zeros,
    Ones,
    /// `normal(std)`: N(0, std²); the default is `normal(1.0)`, like `torch.randn`.
    Normal(f64),
    /// `uniform(lo, hi)`.
    Uniform(f64, f64),
    Xavier,
    Kaiming,
}

pub const LAYER_KINDS: &[&str] = &[
    "Dense",
    "Conv2d",
    "BatchNorm2d",
    "MaxPool2d",
    "AvgPool2d",
    "Dropout",
    "Param",
];

pub struct FnModel {
    pub attrs: Vec<Attribute>,
    pub vis: Visibility,
    pub name: Ident,
    pub inputs: Vec<(Ident, Shape)>,
    pub ret: Shape,
    pub graph: Graph,
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
    let mut fns = Vec::new();
    for f in &input.fns {
        let mut cx = Lower {
            errs: &mut errs,
            consts: &consts,
            layers: &layers,
            layer_map: &layer_map,
            used: &mut used,
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
// numbers written in the DSL

/// A dimension: an integer literal, a const, or `+ - * /` of those.
fn eval_usize(e: &Expr, consts: &HashMap<String, usize>, errs: &mut Errors) -> Option<usize> {
    match e {
        Expr::Lit(l) => match &l.lit {
            Lit::Int(i) => match i.base10_parse::<usize>() {
                Ok(v) => Some(v),
                Err(_) if i.base10_digits().bytes().all(|b| b.is_ascii_digit()) => {
                    errs.at(i, format!("`{i}` is too large for a dimension"));
                    None
                }
                Err(_) => {
                    errs.at(i, "expected a non-negative integer");
                    None
                }
            },
            _ => {
                errs.at(l, "expected an integer");
                None
            }
        },
        Expr::Path(p) => {
            let Some(id) = p.path.get_ident() else {
                errs.at(p, "expected an integer or a const name");
                return None;
            };
            match consts.get(&id.to_string()) {
                Some(&v) => Some(v),
                None if errs.failed_consts.contains(&id.to_string()) => None,
                None => {
                    let hint = ops::closest(&id.to_string(), consts.keys().map(|k| k.as_str()))
                        .map(|c| format!("; did you mean `{c}`?"))
                        .unwrap_or_else(|| {
                            "; declare it with `const NAME: usize = ..;` in the model".into()
                        });
                    errs.at(id, format!("unknown const `{id}`{hint}"));
                    None
                }
            }
        }
        Expr::Paren(p) => eval_usize(&p.expr, consts, errs),
        Expr::Group(g) => eval_usize(&g.expr, consts, errs),
        Expr::Binary(b) => {
            let l = eval_usize(&b.left, consts, errs)?;
            let r = eval_usize(&b.right, consts, errs)?;
            let v = match b.op {
                syn::BinOp::Add(_) => l.checked_add(r),
                syn::BinOp::Sub(_) => l.checked_sub(r),
                syn::BinOp::Mul(_) => l.checked_mul(r),
                syn::BinOp::Div(_) if r != 0 => Some(l / r),
                syn::BinOp::Div(_) => {
                    errs.at(b, "this dimension divides by zero");
                    return None;
                }
                _ => {
                    errs.at(b, "a dimension may use only + - * / of integers and consts");
                    return None;
                }
            };
            if v.is_none() {
                errs.at(b, "this dimension overflows or goes below zero");
            }
            v
        }
        other => {
            errs.at(other, "expected an integer or a const name");
            None
        }
    }
}

/// A number: a float or integer literal, possibly negated.
fn eval_f64(e: &Expr, errs: &mut Errors) -> Option<f64> {
    match e {
        Expr::Lit(l) => match &l.lit {
            Lit::Float(f) => f.base10_parse().ok(),
            Lit::Int(i) => i.base10_parse::<f64>().ok(),
            _ => None,
        },
        Expr::Unary(u) if matches!(u.op, syn::UnOp::Neg(_)) => {
            eval_f64(&u.expr, &mut Errors::default()).map(|v| -v)
        }
        Expr::Paren(p) => eval_f64(&p.expr, errs),
        Expr::Group(g) => eval_f64(&g.expr, errs),
        _ => None,
    }
    .or_else(|| {
        errs.at(e, "expected a number");
        None
    })
}

fn eval_bool(e: &Expr, errs: &mut Errors) -> Option<bool> {
    if let Expr::Lit(l) = e {
        if let Lit::Bool(b) = &l.lit {
            return Some(b.value);
        }
    }
    errs.at(e, "expected `true` or `false`");
    None
}

/// Kernel, stride and padding stay below 2^16, so window arithmetic cannot overflow.
fn window_limit(e: &Expr, what: &str, v: usize, errs: &mut Errors) -> Option<usize> {
    if v > 1 << 16 {
        errs.at(e, format!("`{what}` = {v} is too large (at most 65536)"));
        return None;
    }
    Some(v)
}

/// A count that must be a positive integer, given as a number (`kernel = 3`).
fn eval_count(
    e: &Expr,
    what: &str,
    consts: &HashMap<String, usize>,
    errs: &mut Errors,
) -> Option<usize> {
    let v = eval_usize(e, consts, errs)?;
    if v == 0 {
        errs.at(e, format!("{what} must be at least 1"));
        return None;
    }
    Some(v)
}

// ---------------------------------------------------------------------------------------
// layers

/// The keyword arguments of one call, consumed one by one; what is left is unknown.
struct Keywords<'a> {
    list: Vec<(&'a Ident, &'a Expr)>,
}

impl<'a> Keywords<'a> {
    fn new(list: Vec<(&'a Ident, &'a Expr)>, errs: &mut Errors) -> Self {
        let mut seen = HashSet::new();
        let list = list
            .into_iter()
            .filter(|(k, _)| {
                let first = seen.insert(k.to_string());
                if !first {
                    errs.at(k, format!("the keyword `{k}` is given twice"));
                }
                first
            })
            .collect();
        Keywords { list }
    }
    fn take(&mut self, name: &str) -> Option<&'a Expr> {
        let i = self.list.iter().position(|(k, _)| *k == name)?;
        Some(self.list.remove(i).1)
    }
    /// Reports every keyword not taken, suggesting the closest of `known`.
    fn finish(self, what: &str, known: &[&str], errs: &mut Errors) {
        for (k, _) in self.list {
            let hint = ops::closest(&k.to_string(), known.iter().copied())
                .map(|c| format!("; did you mean `{c}`?"))
                .unwrap_or_else(|| {
                    if known.is_empty() {
                        format!("; {what} takes no keyword arguments")
                    } else {
                        format!(
                            "; {what} takes {}",
                            known
                                .iter()
                                .map(|k| format!("`{k}`"))
                                .collect::<Vec<_>>()
                                .join(", ")
                        )
                    }
                });
            errs.at(k, format!("unknown keyword `{k}` for {what}{hint}"));
        }
    }
}

fn lower_layers(
    s: &StructDef,
    sigs: &[LayerSig],
    consts: &HashMap<String, usize>,
    errs: &mut Errors,
) -> Vec<Layer> {
    let mut out: Vec<Layer> = Vec::new();
    for f in &s.fields {
        if out.iter().any(|l| l.name == f.name) {
            errs.at(&f.name, format!("the layer `{}` is declared twice", f.name));
            continue;
        }
        let sig = sigs.iter().find(|g| g.name == f.kind);
        let kind = match (sig, &f.args) {
            (Some(sig), None) => struct_layer(f, sig, errs),
            _ => lower_layer(f, consts, errs),
        };
        if let Some(kind) = kind {
            out.push(Layer {
                attrs: f.attrs.clone(),
                name: f.name.clone(),
                kind,
            });
        }
    }
    out
}

/// The layer kind of a model used as a layer, from the signature its macro passed in.
fn struct_layer(f: &LayerField, sig: &LayerSig, errs: &mut Errors) -> Option<LayerKind> {
    let (input, output, ws_per_row, ws_fixed) = match &sig.kind {
        SigKind::Layer {
            input,
            output,
            ws_per_row,
            ws_fixed,
        } => (input, output, *ws_per_row, *ws_fixed),
        SigKind::Failed => {
            // its own model! reported why; stay silent here
            errs.silent_failure = true;
            return None;
        }
        SigKind::NoForward => {
            errs.at(
                &f.kind,
                format!(
                    "`{}` cannot be used as a layer: its model! has no `fn forward` of one input",
                    f.kind
                ),
            );
            return None;
        }
    };
    let shape = |s: &ShapeSyn, errs: &mut Errors| -> Option<Shape> {
        let mut dims = Vec::new();
        for (i, d) in s.dims.iter().enumerate() {
            dims.push(match d {
                DimSyn::Lit(l) => match l.base10_parse() {
                    Ok(v) => Dim::Fixed(v),
                    Err(_) => {
                        errs.at(
                            l,
                            "a struct layer's signature has a dimension that does not fit",
                        );
                        return None;
                    }
                },
                DimSyn::Name(_) if i == 0 => Dim::Batch,
                DimSyn::Name(n) => {
                    errs.at(
                        n,
                        "a struct layer's signature has numbers after the batch dimension",
                    );
                    return None;
                }
            });
        }
        Some(Shape {
            dims,
            batch_name: None,
        })
    };
    Some(LayerKind::Struct {
        ty: sig.name.clone(),
        input: shape(input, errs)?,
        output: shape(output, errs)?,
        ws_per_row,
        ws_fixed,
    })
}

fn lower_layer(
    f: &LayerField,
    consts: &HashMap<String, usize>,
    errs: &mut Errors,
) -> Option<LayerKind> {
    let kind = f.kind.to_string();
    if !LAYER_KINDS.contains(&kind.as_str()) {
        let hint = ops::closest(&kind, LAYER_KINDS.iter().copied())
            .map(|c| format!("; did you mean `{c}`?"))
            .unwrap_or_else(|| format!("; the layers are {}", LAYER_KINDS.join(", ")));
        errs.at(&f.kind, format!("unknown layer `{kind}`{hint}"));
        return None;
    }
    let Some(args) = &f.args else {
        errs.at(
            &f.kind,
            format!(
                "the layer `{kind}` needs arguments, e.g. {}",
                layer_example(&kind)
            ),
        );
        return None;
    };
    let mut positional = Vec::new();
    let mut keywords = Vec::new();
    for a in args {
        match a {
            LayerArg::Keyword(k, v) => keywords.push((k, v)),
            other => positional.push(other),
        }
    }
    let mut kw = Keywords::new(keywords, errs);
    let wrong = |errs: &mut Errors| {
        errs.at(
            &f.kind,
            format!(
                "wrong arguments for `{kind}`: write {}",
                layer_example(&kind)
            ),
        );
    };
    let arrow = |errs: &mut Errors| -> Option<(usize, usize)> {
        match positional.as_slice() {
            [LayerArg::Arrow(a, b)] => {
                let a = eval_count(a, "a layer size", consts, errs);
                let b = eval_count(b, "a layer size", consts, errs);
                Some((a?, b?))
            }
            _ => {
                wrong(errs);
                None
            }
        }
    };
    let single = |errs: &mut Errors| -> Option<&Expr> {
        match positional.as_slice() {
            [LayerArg::Positional(e)] => Some(e),
            _ => {
                wrong(errs);
                None
            }
        }
    };
    let bool_kw = |kw: &mut Keywords, name: &str, errs: &mut Errors| -> Option<bool> {
        kw.take(name).map_or(Some(true), |e| eval_bool(e, errs))
    };
    let count_kw = |kw: &mut Keywords,
                    name: &str,
                    default: Option<usize>,
                    errs: &mut Errors|
     -> Option<usize> {
        match kw.take(name) {
            Some(e) => {
                eval_count(e, name, consts, errs).and_then(|v| window_limit(e, name, v, errs))
            }
            None => {
                if default.is_none() {
                    errs.at(&f.kind, format!("`{kind}` needs `{name} = ..`"));
                }
                default
            }
        }
    };
    let f64_kw = |kw: &mut Keywords, name: &str, default: f64, errs: &mut Errors| -> Option<f64> {
        kw.take(name).map_or(Some(default), |e| eval_f64(e, errs))
    };
    let result =
        match kind.as_str() {
            "Dense" => {
                let sizes = arrow(errs);
                let bias = bool_kw(&mut kw, "bias", errs);
                kw.finish("Dense", &["bias"], errs);
                let (in_f, out_f) = sizes?;
                LayerKind::Dense {
                    in_f,
                    out_f,
                    bias: bias?,
                }
            }
            "Conv2d" => {
                let sizes = arrow(errs);
                let kernel = count_kw(&mut kw, "kernel", None, errs);
                let stride = count_kw(&mut kw, "stride", Some(1), errs);
                let padding = match kw.take("padding") {
                    Some(e) => eval_usize(e, consts, errs)
                        .and_then(|v| window_limit(e, "padding", v, errs)),
                    None => Some(0),
                };
                let bias = bool_kw(&mut kw, "bias", errs);
                kw.finish("Conv2d", &["kernel", "stride", "padding", "bias"], errs);
                let (c_in, c_out) = sizes?;
                LayerKind::Conv2d {
                    c_in,
                    c_out,
                    kernel: kernel?,
                    stride: stride?,
                    padding: padding?,
                    bias: bias?,
                }
            }
            "BatchNorm2d" => {
                let c = single(errs).and_then(|e| eval_count(e, "the channel count", consts, errs));
                let eps = f64_kw(&mut kw, "eps", 1e-5, errs);
                let momentum = f64_kw(&mut kw, "momentum", 0.1, errs);
                kw.finish("BatchNorm2d", &["eps", "momentum"], errs);
                LayerKind::BatchNorm2d {
                    c: c?,
                    eps: eps?,
                    momentum: momentum?,
                }
            }
            "MaxPool2d" | "AvgPool2d" => {
                if !positional.is_empty() {
                    wrong(errs);
                }
                let kernel = count_kw(&mut kw, "kernel", None, errs);
                let stride = match kw.take("stride") {
                    Some(e) => eval_count(e, "stride", consts, errs),
                    None => kernel,
                };
                let padding = match kw.take("padding") {
                    Some(e) => eval_usize(e, consts, errs)
                        .and_then(|v| window_limit(e, "padding", v, errs)),
                    None => Some(0),
                };
                kw.finish(&kind, &["kernel", "stride", "padding"], errs);
                let cfg = PoolCfg {
                    kernel: kernel?,
                    stride: stride?,
                    padding: padding?,
                };
                if kind == "MaxPool2d" {
                    LayerKind::MaxPool2d(cfg)
                } else {
                    LayerKind::AvgPool2d(cfg)
                }
            }
            "Dropout" => {
                let p = single(errs).and_then(|e| {
                    let p = eval_f64(e, errs)?;
                    if !(0.0..1.0).contains(&p) {
                        errs.at(e, format!("a dropout probability is in [0, 1), not {p}"));
                        return None;
                    }
                    Some(p)
                });
                kw.finish("Dropout", &[], errs);
                LayerKind::Dropout { p: p? }
            }
            "Param" => {
                let shape = match positional.as_slice() {
                    [LayerArg::Positional(Expr::Array(a))] => {
                        let dims: Vec<Option<usize>> = a
                            .elems
                            .iter()
                            .map(|d| eval_count(d, "a dimension", consts, errs))
                            .collect();
                        dims.into_iter().collect::<Option<Vec<usize>>>()
                    }
                    _ => {
                        wrong(errs);
                        None
                    }
                };
                let init = match kw.take("init") {
                    Some(e) => lower_init(e, errs),
                    None => Some(Init::Normal(1.0)),
                };
                kw.finish("Param", &["init"], errs);
                LayerKind::Param {
                    shape: shape?,
                    init: init?,
                }
            }
            _ => return None,
        };
    Some(result)
}

fn layer_example(kind: &str) -> &'static str {
    match kind {
        "Dense" => "`Dense(784 -> 128)`",
        "Conv2d" => "`Conv2d(1 -> 8, kernel = 3, stride = 1, padding = 1)`",
        "BatchNorm2d" => "`BatchNorm2d(8, eps = 1e-5, momentum = 0.1)`",
        "MaxPool2d" => "`MaxPool2d(kernel = 2, stride = 2)`",
        "AvgPool2d" => "`AvgPool2d(kernel = 2, stride = 2)`",
        "Dropout" => "`Dropout(0.5)`",
        "Param" => "`Param([10])` or `Param([4, 4], init = xavier)`",
        _ => "",
    }
}

/// `zeros`, `ones`, `normal(0.02)`, `uniform(-0.1, 0.1)`, `xavier`, `kaiming`.
fn lower_init(e: &Expr, errs: &mut Errors) -> Option<Init> {
    const KNOWN: &[&str] = &["zeros", "ones", "normal", "uniform", "xavier", "kaiming"];
    let (name, args): (&Ident, Vec<&Expr>) = match e {
        Expr::Path(p) if p.path.get_ident().is_some() => (p.path.get_ident()?, vec![]),
        Expr::Call(c) => match &*c.func {
            Expr::Path(p) if p.path.get_ident().is_some() => {
                (p.path.get_ident()?, c.args.iter().collect())
            }
            _ => {
                errs.at(e, "expected an initialiser such as `normal(0.02)`");
                return None;
            }
        },
        _ => {
            errs.at(e, "expected an initialiser: zeros, ones, normal(std), uniform(lo, hi), xavier, kaiming");
            return None;
        }
    };
    let nums: Vec<Option<f64>> = args.iter().map(|a| eval_f64(a, errs)).collect();
    let init = match (name.to_string().as_str(), nums.as_slice()) {
        ("zeros", []) => Init::Zeros,
        ("ones", []) => Init::Ones,
        ("xavier", []) => Init::Xavier,
        ("kaiming", []) => Init::Kaiming,
        ("normal", [s]) => Init::Normal((*s)?),
        ("uniform", [lo, hi]) => Init::Uniform((*lo)?, (*hi)?),
        (other, _) => {
            let hint = if KNOWN.contains(&other) {
                let form = match other {
                    "normal" => "normal(std)",
                    "uniform" => "uniform(lo, hi)",
                    _ => "no arguments",
                };
                format!("wrong arguments for the initialiser `{other}`: it takes {form}")
            } else {
                ops::closest(other, KNOWN.iter().copied())
                    .map(|c| format!("unknown initialiser `{other}`; did you mean `{c}`?"))
                    .unwrap_or_else(|| format!("unknown initialiser `{other}`; the initialisers are zeros, ones, normal(std), uniform(lo, hi), xavier, kaiming"))
            };
            errs.at(e, hint);
            return None;
        }
    };
    Some(init)
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
                    let id = self.push(Op::Input(i), vec![], shape.clone());
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
                let name = match &*c.func {
                    Expr::Path(p) if p.path.get_ident().is_some() => p.path.get_ident()?,
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
                self.call(e, name, pos, kws, env)
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

    /// The node of a parameter: `self.<layer>` for a `Param`, `self.<layer>.<sub>` otherwise.
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
            _ => vec![],
        };
        let op = Op::Param {
            field: layer.name.clone(),
            sub: sub.map(|s| Ident::new(s, layer.name.span())),
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
        pos: Vec<&Expr>,
        kws: Vec<(&Ident, &Expr)>,
        env: &Env,
    ) -> Option<NodeId> {
        let key = name.to_string();
        if let Some(&li) = self.layer_map.get(&key) {
            return self.layer_call(e, li, name, pos, kws, env);
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

    fn layer_call(
        &mut self,
        e: &Expr,
        li: usize,
        name: &Ident,
        pos: Vec<&Expr>,
        kws: Vec<(&Ident, &Expr)>,
        env: &Env,
    ) -> Option<NodeId> {
        self.used[li] = true;
        let kind = self.layers[li].kind.clone();
        if let LayerKind::Param { .. } = kind {
            self.errs.at(
                name,
                format!("`{name}` is a parameter, not a layer: use it as a value, as in `mul(x, {name})`"),
            );
            return None;
        }
        if pos.len() != 1 || !kws.is_empty() {
            self.errs.at(
                e,
                format!("the layer `{name}` takes one input: `{name}(x)`"),
            );
            return None;
        }
        let xe = pos[0];
        let x = self.expr(xe, env)?;
        let xs = self.shape(x).clone();
        match kind {
            LayerKind::Dense { in_f, out_f, bias } => {
                if xs.last() != Some(in_f) {
                    let want = if xs.rank() == 0 {
                        format!("[.., {in_f}]")
                    } else {
                        xs.with_last(in_f).to_string()
                    };
                    self.errs.at(
                        xe,
                        format!(
                            "dense `{name}` expects {want} but `{}` is {xs}",
                            describe(xe)
                        ),
                    );
                    return None;
                }
                let w = self.param_leaf(li, Some("weight"));
                let mut inputs = vec![x, w];
                if bias {
                    inputs.push(self.param_leaf(li, Some("bias")));
                }
                Some(self.push(Op::Dense { bias }, inputs, xs.with_last(out_f)))
            }
            LayerKind::Conv2d {
                c_in,
                c_out,
                kernel,
                stride,
                padding,
                bias,
            } => {
                let geom =
                    self.conv_geom(xe, name, &xs, c_in, c_out, kernel, kernel, stride, padding)?;
                let w = self.param_leaf(li, Some("weight"));
                let mut inputs = vec![x, w];
                if bias {
                    inputs.push(self.param_leaf(li, Some("bias")));
                }
                let out = spatial_out(&xs, c_out, geom.out_h(), geom.out_w());
                Some(self.push(Op::Conv2d { geom, bias }, inputs, out))
            }
            LayerKind::BatchNorm2d { c, eps, momentum } => {
                let got_c = self.image_dims(xe, "batch_norm2d", name, &xs)?.0;
                if got_c != c {
                    self.errs.at(
                        xe,
                        format!(
                            "batch_norm2d `{name}` expects {} ({c} channels) but `{}` is {xs}",
                            expect_channels(&xs, c),
                            describe(xe)
                        ),
                    );
                    return None;
                }
                let w = self.param_leaf(li, Some("weight"));
                let b = self.param_leaf(li, Some("bias"));
                let op = Op::BatchNorm2d {
                    layer: name.clone(),
                    eps,
                    momentum,
                };
                Some(self.push(op, vec![x, w, b], xs))
            }
            LayerKind::MaxPool2d(cfg) | LayerKind::AvgPool2d(cfg) => {
                let max = matches!(kind, LayerKind::MaxPool2d(_));
                let op_name = if max { "max_pool2d" } else { "avg_pool2d" };
                let g = self.pool_geom(xe, op_name, name, &xs, cfg)?;
                let out = spatial_out(&xs, g.c, g.out_h(), g.out_w());
                let op = if max {
                    Op::MaxPool2d(g)
                } else {
                    Op::AvgPool2d(g)
                };
                Some(self.push(op, vec![x], out))
            }
            LayerKind::Dropout { p } => Some(self.push(Op::Dropout(p), vec![x], xs)),
            LayerKind::Param { .. } => None,
            LayerKind::Struct {
                ty,
                input,
                output,
                ws_per_row,
                ws_fixed,
            } => {
                // the block's batch dimension takes whatever leads the argument
                let fits = xs.rank() == input.rank()
                    && xs.rank() > 0
                    && xs.dims[1..] == input.dims[1..]
                    && (input.dims[0] == Dim::Batch || input.dims[0] == xs.dims[0]);
                if !fits {
                    let want = if input.is_batched() && xs.rank() > 0 {
                        let mut d = input.dims.clone();
                        d[0] = xs.dims[0];
                        xs.with_dims(d).to_string()
                    } else {
                        input.to_string()
                    };
                    self.errs.at(
                        xe,
                        format!(
                            "the struct layer `{name}` ({ty}) expects {want} but `{}` is {xs}",
                            describe(xe)
                        ),
                    );
                    return None;
                }
                let mut out_dims = output.dims.clone();
                if output.is_batched() {
                    out_dims[0] = xs.dims[0];
                }
                let op = Op::SubModel {
                    layer: name.clone(),
                    in_row: input.numel_fixed(),
                    ws_per_row,
                    ws_fixed,
                };
                Some(self.push(op, vec![x], xs.with_dims(out_dims)))
            }
        }
    }

    /// `(c, h, w)` of an image input `[C, H, W]` or `[N, C, H, W]`.
    fn image_dims(
        &mut self,
        xe: &Expr,
        op: &str,
        name: &Ident,
        xs: &Shape,
    ) -> Option<(usize, usize, usize)> {
        let r = xs.rank();
        let dims = if r == 3 || r == 4 {
            match (xs.fixed_at(r - 3), xs.fixed_at(r - 2), xs.fixed_at(r - 1)) {
                (Some(c), Some(h), Some(w)) => Some((c, h, w)),
                _ => None,
            }
        } else {
            None
        };
        if dims.is_none() {
            self.errs.at(
                xe,
                format!(
                    "{op} `{name}` expects an image [C, H, W] or a batch [B, C, H, W] but `{}` is {xs}",
                    describe(xe)
                ),
            );
        }
        dims
    }

    /// Kernel, stride and padding stay below 2^16, so window arithmetic cannot overflow.
    fn window_limits(&mut self, xe: &Expr, op: &str, name: &Ident, values: &[usize]) -> Option<()> {
        if let Some(v) = values.iter().find(|&&v| v > 1 << 16) {
            self.errs.at(
                xe,
                format!("{op} `{name}`: {v} is too large for a kernel, stride or padding (at most 65536)"),
            );
            return None;
        }
        Some(())
    }

    #[allow(clippy::too_many_arguments)]
    fn conv_geom(
        &mut self,
        xe: &Expr,
        name: &Ident,
        xs: &Shape,
        c_in: usize,
        c_out: usize,
        kh: usize,
        kw: usize,
        stride: usize,
        padding: usize,
    ) -> Option<ConvGeom> {
        let (c, h, w) = self.image_dims(xe, "conv2d", name, xs)?;
        self.window_limits(xe, "conv2d", name, &[kh, kw, stride, padding])?;
        if c != c_in {
            self.errs.at(
                xe,
                format!(
                    "conv2d `{name}` expects {} ({c_in} input channels) but `{}` is {xs}",
                    expect_channels(xs, c_in),
                    describe(xe)
                ),
            );
            return None;
        }
        if kh > h + 2 * padding || kw > w + 2 * padding {
            self.errs.at(
                xe,
                format!(
                    "conv2d `{name}`: the {kh}x{kw} kernel is larger than `{}` {xs} padded by {padding} ({}x{})",
                    describe(xe),
                    h + 2 * padding,
                    w + 2 * padding
                ),
            );
            return None;
        }
        let geom = ConvGeom {
            c_in,
            h,
            w,
            c_out,
            kh,
            kw,
            stride,
            padding,
        };
        let col = [c_in, kh, kw, geom.out_h(), geom.out_w()]
            .iter()
            .try_fold(1usize, |a, &d| a.checked_mul(d));
        if col.is_none_or(|n| n > crate::shape::MAX_ELEMENTS) {
            self.errs.at(
                xe,
                format!("conv2d `{name}`: its unfolded input (im2col) would exceed 2^40 elements"),
            );
            return None;
        }
        Some(geom)
    }

    fn pool_geom(
        &mut self,
        xe: &Expr,
        op: &str,
        name: &Ident,
        xs: &Shape,
        cfg: PoolCfg,
    ) -> Option<PoolGeom> {
        let (c, h, w) = self.image_dims(xe, op, name, xs)?;
        self.window_limits(xe, op, name, &[cfg.kernel, cfg.stride, cfg.padding])?;
        let PoolCfg {
            kernel,
            stride,
            padding,
        } = cfg;
        if kernel > h + 2 * padding || kernel > w + 2 * padding {
            self.errs.at(
                xe,
                format!(
                    "{op} `{name}`: the {kernel}x{kernel} window is larger than `{}` {xs} padded by {padding}",
                    describe(xe)
                ),
            );
            return None;
        }
        if 2 * padding > kernel {
            self.errs.at(
                xe,
                format!("{op} `{name}`: padding {padding} is more than half the kernel {kernel}"),
            );
            return None;
        }
        Some(PoolGeom {
            c,
            h,
            w,
            kernel,
            stride,
            padding,
        })
    }

    fn op_call(
        &mut self,
        e: &Expr,
        spec: &ops::OpSpec,
        name: &Ident,
        pos: Vec<&Expr>,
        kws: Vec<(&Ident, &Expr)>,
        env: &Env,
    ) -> Option<NodeId> {
        let required = spec.args.len() - spec.optional;
        if pos.len() < required || pos.len() > spec.args.len() {
            self.errs.at(
                e,
                format!(
                    "`{name}` takes {} argument{}, got {}: {}",
                    if spec.optional > 0 {
                        format!("{required} to {}", spec.args.len())
                    } else {
                        required.to_string()
                    },
                    if spec.args.len() == 1 { "" } else { "s" },
                    pos.len(),
                    spec.signature()
                ),
            );
            return None;
        }
        let mut kw = Keywords::new(kws, self.errs);
        let num = |kw: &mut Keywords, key: &str, errs: &mut Errors| -> Option<f64> {
            match kw.take(key) {
                Some(v) => eval_f64(v, errs),
                None => spec.kwargs.iter().find(|(k, _)| *k == key).map(|(_, d)| *d),
            }
        };
        let op = name.to_string();
        // Arguments that are not tensors are read by the op's own arm below.
        let tensor_args = match op.as_str() {
            "scale" | "reduce" | "slice" | "reshape" => 1,
            _ => pos.len(),
        };
        let args: Vec<Option<NodeId>> = pos[..tensor_args]
            .iter()
            .map(|a| self.expr(a, env))
            .collect();
        let known: Vec<&str> = spec.kwargs.iter().map(|(k, _)| *k).collect();
        let result = match op.as_str() {
            "reduce" => {
                let x = args[0];
                let init = eval_f64(pos[1], self.errs);
                let f = pos[2].to_token_stream();
                let rule = kw.take("grad").map(|g| g.to_token_stream());
                kw.finish("reduce", &known, self.errs);
                let x = x?;
                Some(self.push(
                    Op::Reduce {
                        init: init?,
                        f,
                        rule,
                    },
                    vec![x],
                    Shape::scalar(),
                ))
            }
            _ => {
                let nums: HashMap<&str, Option<f64>> = known
                    .iter()
                    .map(|k| (*k, num(&mut kw, k, self.errs)))
                    .collect();
                kw.finish(&format!("`{op}`"), &known, self.errs);
                let args: Vec<NodeId> = args.into_iter().collect::<Option<_>>()?;
                let nums: HashMap<&str, f64> = nums
                    .into_iter()
                    .map(|(k, v)| v.map(|v| (k, v)))
                    .collect::<Option<_>>()?;
                self.op_shape(e, &op, name, &pos, &args, &nums)
            }
        };
        result
    }

    /// Shape rule and node of each op, once its arguments are lowered.
    fn op_shape(
        &mut self,
        e: &Expr,
        op: &str,
        name: &Ident,
        pos: &[&Expr],
        args: &[NodeId],
        nums: &HashMap<&str, f64>,
    ) -> Option<NodeId> {
        let s: Vec<Shape> = args.iter().map(|&a| self.shape(a).clone()).collect();
        let d = |i: usize| describe(pos[i]);
        let same = |me: &mut Self, rule: Op| -> Option<NodeId> {
            let shape = s[0].clone();
            Some(me.push(rule, args.to_vec(), shape))
        };
        match op {
            "add" | "sub" | "mul" | "div" => {
                let b = match op {
                    "add" => Binary::Add,
                    "sub" => Binary::Sub,
                    "mul" => Binary::Mul,
                    _ => Binary::Div,
                };
                self.binary(e, b, pos[0], args[0], pos[1], args[1])
            }
            "safe_div" => {
                let shape = self.broadcast_or_err(e, op, pos, &s)?;
                Some(self.push(Op::SafeDiv(nums["eps"]), args.to_vec(), shape))
            }
            "scale" => {
                let f = eval_f64(pos[1], self.errs)?;
                same(self, Op::Scale(f))
            }
            "relu" | "tanh" | "sigmoid" | "sigmoid_stable" | "gelu" | "silu" => {
                let u = match op {
                    "relu" => Unary::Relu,
                    "tanh" => Unary::Tanh,
                    "sigmoid" => Unary::Sigmoid,
                    "sigmoid_stable" => Unary::SigmoidStable,
                    "gelu" => Unary::Gelu,
                    _ => Unary::Silu,
                };
                same(self, Op::Unary(u))
            }
            "leaky_relu" => same(self, Op::LeakyRelu(nums["alpha"])),
            "softplus" => same(self, Op::Softplus(nums["beta"])),
            "softmax" | "log_softmax" => {
                if s[0].is_scalar() {
                    self.errs.at(
                        pos[0],
                        format!(
                            "`{op}` works over the last dimension, but `{}` is a scalar",
                            d(0)
                        ),
                    );
                    return None;
                }
                same(
                    self,
                    if op == "softmax" {
                        Op::Softmax
                    } else {
                        Op::LogSoftmax
                    },
                )
            }
            "sum" | "mean" | "product" => {
                let o = match op {
                    "sum" => Op::Sum,
                    "mean" => Op::Mean,
                    _ => Op::Product,
                };
                Some(self.push(o, args.to_vec(), Shape::scalar()))
            }
            "mse_loss" | "cross_entropy_loss" | "softmax_cross_entropy" => {
                if s[0].dims != s[1].dims {
                    self.errs.at(
                        e,
                        format!(
                            "`{op}` needs `{}` and `{}` of one shape, but they are {} and {}",
                            d(0),
                            d(1),
                            s[0],
                            s[1]
                        ),
                    );
                    return None;
                }
                if op == "softmax_cross_entropy" && s[0].is_scalar() {
                    self.errs.at(
                        pos[0],
                        "`softmax_cross_entropy` needs logits with a class dimension",
                    );
                    return None;
                }
                let o = match op {
                    "mse_loss" => Op::MseLoss,
                    "cross_entropy_loss" => Op::CrossEntropyLoss,
                    _ => Op::SoftmaxCrossEntropy,
                };
                Some(self.push(o, args.to_vec(), Shape::scalar()))
            }
            "dot" => {
                if s[0].rank() != 1 || s[0].dims != s[1].dims {
                    self.errs.at(
                        e,
                        format!(
                            "`dot` needs two vectors of one length, but `{}` is {} and `{}` is {}",
                            d(0),
                            s[0],
                            d(1),
                            s[1]
                        ),
                    );
                    return None;
                }
                Some(self.push(Op::Dot, args.to_vec(), Shape::scalar()))
            }
            "matmul" => self.matmul(e, pos, args, &s),
            "dense" => {
                let (in_f, out_f) = match (s[1].rank(), s[1].fixed_at(0), s[1].fixed_at(1)) {
                    (2, Some(o), Some(i)) => (i, o),
                    _ => {
                        self.errs.at(
                            pos[1],
                            format!(
                                "`dense` needs a weight [out, in], but `{}` is {}",
                                d(1),
                                s[1]
                            ),
                        );
                        return None;
                    }
                };
                if s[0].last() != Some(in_f) {
                    self.errs.at(
                        pos[0],
                        format!(
                            "`dense` with weight {} expects [.., {in_f}] but `{}` is {}",
                            s[1],
                            d(0),
                            s[0]
                        ),
                    );
                    return None;
                }
                if args.len() == 3 && s[2].dims != [Dim::Fixed(out_f)] {
                    self.errs.at(
                        pos[2],
                        format!(
                            "`dense` expects a bias [{out_f}] but `{}` is {}",
                            d(2),
                            s[2]
                        ),
                    );
                    return None;
                }
                let shape = s[0].with_last(out_f);
                Some(self.push(
                    Op::Dense {
                        bias: args.len() == 3,
                    },
                    args.to_vec(),
                    shape,
                ))
            }
            "slice" => {
                let start = eval_usize(pos[1], self.consts, self.errs);
                let len = eval_usize(pos[2], self.consts, self.errs);
                let (start, len) = (start?, len?);
                let Some(rows) = s[0].fixed_at(0) else {
                    self.errs.at(
                        pos[0],
                        format!(
                            "`slice` cuts a fixed first dimension, but `{}` is {}",
                            d(0),
                            s[0]
                        ),
                    );
                    return None;
                };
                if len == 0 || start.saturating_add(len) > rows {
                    self.errs.at(
                        e,
                        format!(
                            "slice {start}..{} is out of range for `{}` {}, whose first dimension is {rows}",
                            start as u128 + len as u128,
                            d(0),
                            s[0]
                        ),
                    );
                    return None;
                }
                let mut dims = s[0].dims.clone();
                dims[0] = Dim::Fixed(len);
                let shape = s[0].with_dims(dims);
                Some(self.push(Op::Slice { start, len }, args.to_vec(), shape))
            }
            "reshape" => {
                let Expr::Array(arr) = pos[1] else {
                    self.errs.at(
                        pos[1],
                        "`reshape` takes the new shape as a list: `reshape(x, [2, 3])`",
                    );
                    return None;
                };
                let mut dims = Vec::new();
                for (i, el) in arr.elems.iter().enumerate() {
                    match el {
                        Expr::Path(p)
                            if i == 0
                                && s[0].is_batched()
                                && p.path.get_ident().is_some_and(|id| {
                                    !self.consts.contains_key(&id.to_string())
                                }) =>
                        {
                            dims.push(Dim::Batch)
                        }
                        other => dims.push(Dim::Fixed(eval_count(
                            other,
                            "a dimension",
                            self.consts,
                            self.errs,
                        )?)),
                    }
                }
                let shape = s[0].with_dims(dims);
                if shape.is_batched() != s[0].is_batched()
                    || shape.numel_fixed() != s[0].numel_fixed()
                {
                    self.errs.at(
                        pos[1],
                        format!(
                            "cannot reshape `{}` {} ({} elements{}) to {shape} ({} elements{})",
                            d(0),
                            s[0],
                            s[0].numel_fixed(),
                            if s[0].is_batched() {
                                " per batch row"
                            } else {
                                ""
                            },
                            shape.numel_fixed(),
                            if shape.is_batched() {
                                " per batch row"
                            } else {
                                ""
                            },
                        ),
                    );
                    return None;
                }
                Some(self.push(Op::Reshape, args.to_vec(), shape))
            }
            "flatten" => {
                let n = s[0].numel_fixed();
                let shape = s[0].batch_then(&[n]);
                Some(self.push(Op::Reshape, args.to_vec(), shape))
            }
            "conv2d" => {
                let w = &s[1];
                let (c_out, c_in, kh, kw) = match (
                    w.rank(),
                    w.fixed_at(0),
                    w.fixed_at(1),
                    w.fixed_at(2),
                    w.fixed_at(3),
                ) {
                    (4, Some(a), Some(b), Some(c), Some(dd)) => (a, b, c, dd),
                    _ => {
                        self.errs.at(
                            pos[1],
                            format!(
                                "`conv2d` needs a weight [C_out, C_in, KH, KW], but `{}` is {w}",
                                d(1)
                            ),
                        );
                        return None;
                    }
                };
                if args.len() == 3 && s[2].dims != [Dim::Fixed(c_out)] {
                    self.errs.at(
                        pos[2],
                        format!(
                            "`conv2d` expects a bias [{c_out}] but `{}` is {}",
                            d(2),
                            s[2]
                        ),
                    );
                    return None;
                }
                let stride = self.count_num(e, "stride", nums["stride"])?;
                let padding = self.index_num(e, "padding", nums["padding"])?;
                let geom =
                    self.conv_geom(pos[0], name, &s[0], c_in, c_out, kh, kw, stride, padding)?;
                let out = spatial_out(&s[0], c_out, geom.out_h(), geom.out_w());
                Some(self.push(
                    Op::Conv2d {
                        geom,
                        bias: args.len() == 3,
                    },
                    args.to_vec(),
                    out,
                ))
            }
            "max_pool2d" | "avg_pool2d" => {
                let kernel = self.count_num(e, "kernel", nums["kernel"])?;
                let stride = if nums["stride"].is_nan() {
                    kernel
                } else {
                    self.count_num(e, "stride", nums["stride"])?
                };
                let padding = self.index_num(e, "padding", nums["padding"])?;
                let g = self.pool_geom(
                    pos[0],
                    op,
                    name,
                    &s[0],
                    PoolCfg {
                        kernel,
                        stride,
                        padding,
                    },
                )?;
                let out = spatial_out(&s[0], g.c, g.out_h(), g.out_w());
                let o = if op == "max_pool2d" {
                    Op::MaxPool2d(g)
                } else {
                    Op::AvgPool2d(g)
                };
                Some(self.push(o, args.to_vec(), out))
            }
            "global_avg_pool2d" => {
                let (c, _, _) = self.image_dims(pos[0], op, name, &s[0])?;
                let mut dims = s[0].dims.clone();
                dims.truncate(dims.len() - 3);
                dims.push(Dim::Fixed(c));
                let shape = s[0].with_dims(dims);
                Some(self.push(Op::GlobalAvgPool2d, args.to_vec(), shape))
            }
            "rmsnorm" | "layer_norm" => {
                let Some(cols) = s[0].last() else {
                    self.errs.at(
                        pos[0],
                        format!(
                            "`{op}` normalises the last dimension, but `{}` is a scalar",
                            d(0)
                        ),
                    );
                    return None;
                };
                for i in 1..args.len() {
                    if s[i].dims != [Dim::Fixed(cols)] {
                        self.errs.at(
                            pos[i],
                            format!(
                                "`{op}` of `{}` {} expects `{}` to be [{cols}] but it is {}",
                                d(0),
                                s[0],
                                d(i),
                                s[i]
                            ),
                        );
                        return None;
                    }
                }
                let eps = nums["eps"];
                let o = if op == "rmsnorm" {
                    Op::RmsNorm(eps)
                } else {
                    Op::LayerNorm {
                        eps,
                        weight: args.len() > 1,
                        bias: args.len() > 2,
                    }
                };
                same(self, o)
            }
            "l2_normalize" => {
                if s[0].is_scalar() {
                    self.errs.at(
                        pos[0],
                        format!(
                            "`l2_normalize` works over the last dimension, but `{}` is a scalar",
                            d(0)
                        ),
                    );
                    return None;
                }
                same(self, Op::L2Normalize(nums["eps"]))
            }
            "cosine_similarity" => {
                if s[0].is_scalar() || s[0].dims != s[1].dims {
                    self.errs.at(
                        e,
                        format!("`cosine_similarity` needs `{}` and `{}` of one shape with a last dimension, but they are {} and {}", d(0), d(1), s[0], s[1]),
                    );
                    return None;
                }
                let mut dims = s[0].dims.clone();
                dims.pop();
                let shape = s[0].with_dims(dims);
                Some(self.push(Op::CosineSimilarity, args.to_vec(), shape))
            }
            _ => None,
        }
    }

    fn broadcast_or_err(
        &mut self,
        e: &Expr,
        op: &str,
        pos: &[&Expr],
        s: &[Shape],
    ) -> Option<Shape> {
        let r = s[0].broadcast(&s[1]);
        if r.is_none() {
            self.errs.at(
                e,
                format!(
                    "cannot {op} `{}` {} and `{}` {}: the shapes do not broadcast (the shorter must match the end of the longer)",
                    describe(pos[0]),
                    s[0],
                    describe(pos[1]),
                    s[1]
                ),
            );
        }
        r
    }

    fn count_num(&mut self, e: &Expr, what: &str, v: f64) -> Option<usize> {
        if v >= 1.0 && v.fract() == 0.0 && v < 1e9 {
            Some(v as usize)
        } else {
            self.errs
                .at(e, format!("`{what}` must be a positive integer, not {v}"));
            None
        }
    }

    fn index_num(&mut self, e: &Expr, what: &str, v: f64) -> Option<usize> {
        if v >= 0.0 && v.fract() == 0.0 && v < 1e9 {
            Some(v as usize)
        } else {
            self.errs.at(
                e,
                format!("`{what}` must be a non-negative integer, not {v}"),
            );
            None
        }
    }

    fn matmul(&mut self, e: &Expr, pos: &[&Expr], args: &[NodeId], s: &[Shape]) -> Option<NodeId> {
        let (a, b) = (&s[0], &s[1]);
        let inner_err = |me: &mut Self, ka: String, kb: String| {
            me.errs.at(
                e,
                format!(
                    "matmul inner dimensions differ: `{}` is {a} and `{}` is {b} ({ka} vs {kb})",
                    describe(pos[0]),
                    describe(pos[1])
                ),
            );
        };
        if b.is_batched() {
            self.errs.at(
                pos[1],
                format!(
                    "the right operand of `matmul` cannot have a batch dimension, but `{}` is {b}",
                    describe(pos[1])
                ),
            );
            return None;
        }
        let show = |d: Option<&Dim>| match d {
            Some(Dim::Fixed(n)) => n.to_string(),
            _ => a.batch_name.clone().unwrap_or_else(|| "B".into()),
        };
        match (a.rank(), b.rank()) {
            (2, 2) => {
                if a.dims[1] != b.dims[0] {
                    inner_err(self, show(a.dims.get(1)), show(b.dims.first()));
                    return None;
                }
                let shape = a.with_dims(vec![a.dims[0], b.dims[1]]);
                Some(self.push(Op::MatMul, args.to_vec(), shape))
            }
            (2, 1) => {
                if a.dims[1] != b.dims[0] {
                    inner_err(self, show(a.dims.get(1)), show(b.dims.first()));
                    return None;
                }
                let shape = a.with_dims(vec![a.dims[0]]);
                Some(self.push(Op::MatVec, args.to_vec(), shape))
            }
            (1, 2) => {
                if a.dims[0] != b.dims[0] || a.is_batched() {
                    inner_err(self, show(a.dims.first()), show(b.dims.first()));
                    return None;
                }
                let shape = Shape::fixed(&[]).with_dims(vec![b.dims[1]]);
                Some(self.push(Op::VecMat, args.to_vec(), shape))
            }
            (1, 1) => {
                if a.dims != b.dims || a.is_batched() {
                    inner_err(self, show(a.dims.first()), show(b.dims.first()));
                    return None;
                }
                Some(self.push(Op::Dot, args.to_vec(), Shape::scalar()))
            }
            _ => {
                self.errs.at(
                    e,
                    format!(
                        "`matmul` takes vectors and matrices, but `{}` is {a} and `{}` is {b}",
                        describe(pos[0]),
                        describe(pos[1])
                    ),
                );
                None
            }
        }
    }
}

/// `[B, C, H, W]` with `c`, `h`, `w` replaced (or `[C, H, W]`).
fn spatial_out(xs: &Shape, c: usize, h: usize, w: usize) -> Shape {
    let mut dims = xs.dims.clone();
    let r = dims.len();
    dims[r - 3] = Dim::Fixed(c);
    dims[r - 2] = Dim::Fixed(h);
    dims[r - 1] = Dim::Fixed(w);
    xs.with_dims(dims)
}

/// `[B, 8, _, _]`-style pattern naming the expected channel count.
fn expect_channels(xs: &Shape, c: usize) -> String {
    let mut parts = Vec::new();
    if xs.rank() == 4 {
        parts.push(match xs.dims[0] {
            Dim::Batch => xs.batch_name.clone().unwrap_or_else(|| "B".into()),
            Dim::Fixed(n) => n.to_string(),
        });
    }
    parts.push(c.to_string());
    parts.push("_".into());
    parts.push("_".into());
    format!("[{}]", parts.join(", "))
}
