//! Layer declarations (`fc1: Dense(784 -> 128)`, `blk: Block`) and layer calls (`fc1(x)`),
//! with the checks of a layer's input shape.

use super::*;

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
    /// `Embedding(vocab -> dim)`.
    Embedding {
        vocab: usize,
        dim: usize,
    },
    /// `LayerNorm(dim, eps = 1e-5, affine = true)`.
    LayerNorm {
        dim: usize,
        eps: f64,
        affine: bool,
    },
    /// `MultiHeadAttention(dim, heads = h, causal = false, bias = true)`.
    MultiHeadAttention {
        dim: usize,
        heads: usize,
        causal: bool,
        bias: bool,
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
        /// The packed-weight caches its inference pass reads.
        packs: usize,
        /// The length of a layer array (`h: [Block; 4]`), `None` for one model.
        count: Option<usize>,
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
    "Embedding",
    "LayerNorm",
    "MultiHeadAttention",
    "Param",
];

/// The keyword arguments of one call, consumed one by one; what is left is unknown.
pub(super) struct Keywords<'a> {
    list: Vec<(&'a Ident, &'a Expr)>,
}

impl<'a> Keywords<'a> {
    pub(super) fn new(list: Vec<(&'a Ident, &'a Expr)>, errs: &mut Errors) -> Self {
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
    pub(super) fn take(&mut self, name: &str) -> Option<&'a Expr> {
        let i = self.list.iter().position(|(k, _)| *k == name)?;
        Some(self.list.remove(i).1)
    }
    /// Reports every keyword not taken, suggesting the closest of `known`.
    pub(super) fn finish(self, what: &str, known: &[&str], errs: &mut Errors) {
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

pub(super) fn lower_layers(
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
        let kind = match (sig, &f.args, &f.array) {
            (Some(sig), None, None) => struct_layer(f, sig, None, errs),
            (Some(sig), None, Some(len)) => eval_count(len, "a layer array's length", consts, errs)
                .and_then(|n| struct_layer(f, sig, Some(n), errs)),
            (_, _, Some(_)) => {
                errs.at(
                    &f.kind,
                    format!(
                        "a layer array repeats a model declared by an earlier model!, as in `{}: [Block; 4]`; `{}` is not one",
                        f.name, f.kind
                    ),
                );
                None
            }
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
pub(super) fn struct_layer(
    f: &LayerField,
    sig: &LayerSig,
    count: Option<usize>,
    errs: &mut Errors,
) -> Option<LayerKind> {
    let (input, output, ws_per_row, ws_fixed, packs) = match &sig.kind {
        SigKind::Layer {
            input,
            output,
            ws_per_row,
            ws_fixed,
            packs,
        } => (input, output, *ws_per_row, *ws_fixed, *packs),
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
    let (input, output) = (shape(input, errs)?, shape(output, errs)?);
    if count.is_some() && input.dims != output.dims {
        errs.at(
            &f.kind,
            format!(
                "the layer array `{}` runs its `{}`s one after another, so each must keep the shape, but `{}` maps {input} to {output}",
                f.name, f.kind, f.kind
            ),
        );
        return None;
    }
    Some(LayerKind::Struct {
        ty: sig.name.clone(),
        input,
        output,
        ws_per_row,
        ws_fixed,
        packs,
        count,
    })
}

pub(super) fn lower_layer(
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
    // a number the layer's constructor accepts: `ok` says which, `what` says so in the error
    let checked_kw = |kw: &mut Keywords,
                      name: &str,
                      default: f64,
                      ok: fn(f64) -> bool,
                      what: &str,
                      errs: &mut Errors|
     -> Option<f64> {
        let Some(e) = kw.take(name) else {
            return Some(default);
        };
        let v = eval_f64(e, errs)?;
        if !ok(v) {
            errs.at(e, format!("`{name}` must be {what}, not {v}"));
            return None;
        }
        Some(v)
    };
    let positive = |v: f64| v.is_finite() && v > 0.0;
    let result = match kind.as_str() {
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
                Some(e) => {
                    eval_usize(e, consts, errs).and_then(|v| window_limit(e, "padding", v, errs))
                }
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
            let eps = checked_kw(&mut kw, "eps", 1e-5, positive, "positive", errs);
            let momentum = checked_kw(
                &mut kw,
                "momentum",
                0.1,
                |m| (0.0..=1.0).contains(&m),
                "in [0, 1]",
                errs,
            );
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
                Some(e) => {
                    eval_usize(e, consts, errs).and_then(|v| window_limit(e, "padding", v, errs))
                }
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
        "Embedding" => {
            let sizes = arrow(errs);
            kw.finish("Embedding", &[], errs);
            let (vocab, dim) = sizes?;
            if vocab > u32::MAX as usize + 1 {
                errs.at(
                        &f.kind,
                        format!("an `Embedding` reads u32 ids, so its vocabulary is at most 2^32, not {vocab}"),
                    );
                return None;
            }
            LayerKind::Embedding { vocab, dim }
        }
        "LayerNorm" => {
            let dim = single(errs).and_then(|e| eval_count(e, "the width", consts, errs));
            let eps = checked_kw(&mut kw, "eps", 1e-5, positive, "positive", errs);
            let affine = bool_kw(&mut kw, "affine", errs);
            kw.finish("LayerNorm", &["eps", "affine"], errs);
            LayerKind::LayerNorm {
                dim: dim?,
                eps: eps?,
                affine: affine?,
            }
        }
        "MultiHeadAttention" => {
            let dim = single(errs).and_then(|e| eval_count(e, "the width", consts, errs));
            let heads_e = kw.take("heads");
            let heads = match heads_e {
                Some(e) => eval_count(e, "heads", consts, errs),
                None => {
                    errs.at(&f.kind, "`MultiHeadAttention` needs `heads = ..`");
                    None
                }
            };
            let causal = kw
                .take("causal")
                .map_or(Some(false), |e| eval_bool(e, errs));
            let bias = bool_kw(&mut kw, "bias", errs);
            kw.finish("MultiHeadAttention", &["heads", "causal", "bias"], errs);
            let (dim, heads) = (dim?, heads?);
            if dim > crate::shape::MAX_ELEMENTS {
                errs.at(
                    &f.kind,
                    format!(
                        "the width {dim} of `{}` is larger than a model can hold (2^40)",
                        f.name
                    ),
                );
                return None;
            }
            if dim % heads != 0 {
                errs.at(
                        heads_e?,
                        format!("{heads} heads do not divide the width {dim} of `{}`: each head takes an equal share of the width", f.name),
                    );
                return None;
            }
            LayerKind::MultiHeadAttention {
                dim,
                heads,
                causal: causal?,
                bias: bias?,
            }
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

pub(super) fn layer_example(kind: &str) -> &'static str {
    match kind {
        "Dense" => "`Dense(784 -> 128)`",
        "Conv2d" => "`Conv2d(1 -> 8, kernel = 3, stride = 1, padding = 1)`",
        "BatchNorm2d" => "`BatchNorm2d(8, eps = 1e-5, momentum = 0.1)`",
        "MaxPool2d" => "`MaxPool2d(kernel = 2, stride = 2)`",
        "AvgPool2d" => "`AvgPool2d(kernel = 2, stride = 2)`",
        "Dropout" => "`Dropout(0.5)`",
        "Embedding" => "`Embedding(65 -> 128)`",
        "LayerNorm" => "`LayerNorm(128, eps = 1e-5, affine = true)`",
        "MultiHeadAttention" => "`MultiHeadAttention(128, heads = 4, causal = true)`",
        "Param" => "`Param([10])` or `Param([4, 4], init = xavier)`",
        _ => "",
    }
}

/// `zeros`, `ones`, `normal(0.02)`, `uniform(-0.1, 0.1)`, `xavier`, `kaiming`.
pub(super) fn lower_init(e: &Expr, errs: &mut Errors) -> Option<Init> {
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

impl Lower<'_> {
    #[allow(clippy::too_many_arguments)]
    pub(super) fn layer_call(
        &mut self,
        e: &Expr,
        li: usize,
        name: &Ident,
        index: Option<(usize, &Expr)>,
        pos: Vec<&Expr>,
        kws: Vec<(&Ident, &Expr)>,
        env: &Env,
    ) -> Option<NodeId> {
        self.used[li] = true;
        let kind = self.layers[li].kind.clone();
        if let Some((i, ie)) = index {
            match kind {
                LayerKind::Struct { count: Some(n), .. } if i >= n => {
                    self.errs.at(
                        ie,
                        format!("`{name}` has {n} elements, so `{name}[{i}]` is out of range"),
                    );
                    return None;
                }
                LayerKind::Struct { count: Some(_), .. } => {}
                _ => {
                    self.errs.at(
                        ie,
                        format!("`{name}` is not a layer array: only a layer declared `{name}: [Block; N]` is indexed"),
                    );
                    return None;
                }
            }
        }
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
        match (&kind, self.nodes[x].op.is_index()) {
            (LayerKind::Embedding { .. }, false) => {
                self.errs.at(
                    xe,
                    format!(
                        "embedding `{name}` looks up u32 ids, but `{}` is a tensor of values {xs}; declare the input `u32[..]`",
                        describe(xe)
                    ),
                );
                return None;
            }
            (LayerKind::Embedding { .. }, true) => {}
            (_, true) => {
                self.reject_index(xe, x, &format!("the layer `{name}`"));
                return None;
            }
            _ => {}
        }
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
            LayerKind::Embedding { dim, .. } => Some(self.embedding_call(li, x, dim)),
            LayerKind::LayerNorm { dim, eps, affine } => {
                self.layer_norm_call(li, name, xe, x, dim, eps, affine)
            }
            LayerKind::MultiHeadAttention {
                dim,
                heads,
                causal,
                bias,
            } => self.attention_call(li, name, xe, x, dim, heads, causal, bias),
            LayerKind::Param { .. } => None,
            LayerKind::Struct {
                ty,
                input,
                output,
                ws_per_row,
                ws_fixed,
                packs,
                count,
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
                let out_shape = xs.with_dims(out_dims);
                // one element, or every element of an array in order
                let elements: Vec<Option<usize>> = match (count, index) {
                    (_, Some((i, _))) => vec![Some(i)],
                    (Some(n), None) => (0..n).map(Some).collect(),
                    (None, None) => vec![None],
                };
                let mut h = x;
                for index in elements {
                    let op = Op::SubModel {
                        layer: name.clone(),
                        index,
                        in_row: input.numel_fixed(),
                        ws_per_row,
                        ws_fixed,
                        packs,
                    };
                    h = self.push(op, vec![h], out_shape.clone());
                }
                Some(h)
            }
        }
    }

    /// `(c, h, w)` of an image input `[C, H, W]` or `[N, C, H, W]`.
    pub(super) fn image_dims(
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
    pub(super) fn window_limits(
        &mut self,
        xe: &Expr,
        op: &str,
        name: &Ident,
        values: &[usize],
    ) -> Option<()> {
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
    pub(super) fn conv_geom(
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

    pub(super) fn pool_geom(
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
}

/// `[B, C, H, W]` with `c`, `h`, `w` replaced (or `[C, H, W]`).
pub(super) fn spatial_out(xs: &Shape, c: usize, h: usize, w: usize) -> Shape {
    let mut dims = xs.dims.clone();
    let r = dims.len();
    dims[r - 3] = Dim::Fixed(c);
    dims[r - 2] = Dim::Fixed(h);
    dims[r - 1] = Dim::Fixed(w);
    xs.with_dims(dims)
}

/// `[B, 8, _, _]`-style pattern naming the expected channel count.
pub(super) fn expect_channels(xs: &Shape, c: usize) -> String {
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
