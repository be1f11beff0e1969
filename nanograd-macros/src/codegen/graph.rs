//! Forward and backward code of one graph: the buffer plan and one kernel call per node.
//!
//! Every value lives in one region of a flat workspace whose length is
//! `batch * PER_ROW + FIXED`, both constants; regions are carved once with `split_at_mut`:
//!
//! ```text
//! let (__v3, __ws) = __ws.split_at_mut(__b * 128);   // relu(fc1(x))
//! ::nanograd::ops::dense(__x0, self.fc1.weight.value(), Some(self.fc1.bias.value()),
//!                        __b * 1, 784, 128, &mut *__v2)?;
//! ::nanograd::ops::relu(&*__v2, &mut *__v3)?;
//! ```
//!
//! The backward pass walks the nodes in reverse definition order and calls each op's
//! `_backward` kernel, which accumulates into its inputs' gradients; a value used twice
//! receives two contributions.

use std::collections::HashMap;

use proc_macro2::{Ident, TokenStream};
use quote::{format_ident, quote};

use crate::ir::{Binary, Graph, NodeId, Op, Unary};
use crate::shape::Shape;

/// A length `batch * b + f`.
#[derive(Clone, Copy, Default, PartialEq, Eq, Debug)]
pub struct Size {
    pub b: usize,
    pub f: usize,
}

impl Size {
    pub fn of(shape: &Shape) -> Size {
        if shape.is_batched() {
            Size {
                b: shape.numel_fixed(),
                f: 0,
            }
        } else {
            Size {
                b: 0,
                f: shape.numel_fixed(),
            }
        }
    }

    pub fn fixed(f: usize) -> Size {
        Size { b: 0, f }
    }

    /// The size divided by `d` (which divides it exactly: checked shapes guarantee it).
    fn div(self, d: usize) -> Size {
        Size {
            b: self.b / d.max(1),
            f: self.f / d.max(1),
        }
    }

    fn add(self, o: Size) -> Size {
        Size {
            b: self.b + o.b,
            f: self.f + o.f,
        }
    }

    pub fn tokens(self) -> TokenStream {
        let (b, f) = (self.b, self.f);
        match (b, f) {
            (0, f) => quote!(#f),
            (1, 0) => quote!(__b),
            (b, 0) => quote!(__b * #b),
            (b, f) => quote!(__b * #b + #f),
        }
    }
}

/// Where the code runs.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// The function form: no `self`, no layers.
    Func,
    /// `&self`: inference or evaluation; batch norm in training mode uses batch statistics
    /// but leaves the running statistics alone.
    Infer,
    /// `&mut self`: a training step; batch norm updates its running statistics.
    Train,
}

/// The buffer plan and code of one graph.
pub struct GraphGen<'a> {
    g: &'a Graph,
    mode: Mode,
    /// Whether the backward pass is generated (regions for gradients are planned).
    backward: bool,
    /// The node whose data a node shares (itself unless it is a reshape).
    root: Vec<NodeId>,
    needs_grad: Vec<bool>,
    regions: Vec<(Ident, Size)>,
    /// Gradient regions, carved after the forward ones.
    grad_regions: Vec<(Ident, Size)>,
}

fn v(id: NodeId) -> Ident {
    format_ident!("__v{}", id)
}
fn gr(id: NodeId) -> Ident {
    format_ident!("__g{}", id)
}
fn aux(name: &str, id: NodeId) -> Ident {
    format_ident!("__{}{}", name, id)
}

impl<'a> GraphGen<'a> {
    pub fn new(g: &'a Graph, mode: Mode, backward: bool, input_grads: bool) -> Self {
        let n = g.nodes.len();
        let mut root: Vec<NodeId> = (0..n).collect();
        let mut needs_grad = vec![false; n];
        for (id, node) in g.nodes.iter().enumerate() {
            if node.op.is_alias() {
                root[id] = root[node.inputs[0]];
            }
            needs_grad[id] = backward
                && match node.op {
                    Op::Input(_) => input_grads,
                    // a model used as a layer has parameters of its own
                    Op::Param { .. } | Op::SubModel { .. } => true,
                    Op::Const(_) => false,
                    _ => node.inputs.iter().any(|&i| needs_grad[i]),
                };
        }
        let mut gen = GraphGen {
            g,
            mode,
            backward,
            root,
            needs_grad,
            regions: Vec::new(),
            grad_regions: Vec::new(),
        };
        gen.plan();
        gen
    }

    fn shape(&self, id: NodeId) -> &Shape {
        &self.g.nodes[id].shape
    }

    fn size(&self, id: NodeId) -> Size {
        Size::of(self.shape(id))
    }

    fn has_buffer(&self, id: NodeId) -> bool {
        !matches!(
            self.g.nodes[id].op,
            Op::Input(_) | Op::Param { .. } | Op::Const(_) | Op::Reshape
        )
    }

    fn plan(&mut self) {
        for (id, node) in self.g.nodes.iter().enumerate() {
            if !self.has_buffer(id) {
                continue;
            }
            self.regions.push((v(id), self.size(id)));
            match &node.op {
                Op::Conv2d { geom, .. } => {
                    self.regions
                        .push((aux("cols", id), Size::fixed(geom.col_len())));
                }
                Op::BatchNorm2d { .. } => {
                    let c = self.bn_dims(id).1;
                    for name in ["mean", "invstd", "rmean", "rvar"] {
                        self.regions.push((aux(name, id), Size::fixed(c)));
                    }
                }
                Op::Dropout(_) => {
                    self.regions.push((aux("mask", id), self.size(id)));
                }
                Op::SubModel {
                    in_row,
                    ws_per_row,
                    ws_fixed,
                    ..
                } => {
                    let rows = Size::of(self.shape(node.inputs[0])).div(*in_row);
                    let ws = Size {
                        b: rows.b * ws_per_row,
                        f: rows.f * ws_per_row + ws_fixed,
                    };
                    self.regions.push((aux("sub", id), ws));
                }
                _ => {}
            }
            if self.needs_grad[id] {
                self.grad_regions.push((gr(id), self.size(id)));
            }
        }
        // a value passed twice to one op gets its second gradient in a temporary
        for (id, node) in self.g.nodes.iter().enumerate() {
            if !self.needs_grad[id] {
                continue;
            }
            for (j, &i) in node.inputs.iter().enumerate() {
                if self.needs_grad[i] && self.duplicate_at(id, j) {
                    self.grad_regions
                        .push((aux(&format!("t{j}_"), id), self.size(i)));
                }
            }
        }
    }

    /// Whether input `j` of `id` shares its gradient with an earlier input of the same call.
    fn duplicate_at(&self, id: NodeId, j: usize) -> bool {
        let ins = &self.g.nodes[id].inputs;
        let key = self.root[ins[j]];
        ins[..j]
            .iter()
            .any(|&i| self.needs_grad[i] && self.root[i] == key)
    }

    /// The workspace length this graph needs.
    pub fn total(&self) -> Size {
        self.regions
            .iter()
            .chain(if self.backward {
                &self.grad_regions[..]
            } else {
                &[]
            })
            .fold(Size::default(), |acc, (_, s)| acc.add(*s))
    }

    /// `let (__v3, __ws) = __ws.split_at_mut(..);` for every region, out of `__ws`.
    pub fn carve(&self) -> TokenStream {
        let regions = self.regions.iter().chain(if self.backward {
            &self.grad_regions[..]
        } else {
            &[]
        });
        let lines = regions.map(|(name, size)| {
            let len = size.tokens();
            quote! { let (#name, __ws) = __ws.split_at_mut(#len); }
        });
        quote! { #(#lines)* let _ = __ws; }
    }

    /// The gradient regions as one `fill(0)`: intermediate gradients start at zero.
    pub fn zero_grads(&self) -> TokenStream {
        let lines = self.grad_regions.iter().map(|(name, _)| {
            quote! { #name.fill(T::zero()); }
        });
        quote! { #(#lines)* }
    }

    /// `&[T]` of a node's value.
    pub fn value(&self, id: NodeId) -> TokenStream {
        let id = self.root[id];
        match &self.g.nodes[id].op {
            Op::Input(i) => {
                let x = format_ident!("__x{}", i);
                quote!(#x)
            }
            Op::Param { field, sub } => match sub {
                Some(s) => quote!(self.#field.#s.value()),
                None => quote!(self.#field.value()),
            },
            Op::Const(_) => {
                let c = aux("c", id);
                quote!(&#c[..])
            }
            _ => {
                let name = v(id);
                quote!(&*#name)
            }
        }
    }

    /// `&mut [T]` of a node's buffer.
    fn out(&self, id: NodeId) -> TokenStream {
        let name = v(id);
        quote!(&mut *#name)
    }

    /// `let __c4 = [T::from_f64(2.0)];` for the numbers written in the source.
    pub fn consts(&self) -> TokenStream {
        let lines = self
            .g
            .nodes
            .iter()
            .enumerate()
            .filter_map(|(id, n)| match n.op {
                Op::Const(c) => {
                    let name = aux("c", id);
                    Some(quote! { let #name = [T::from_f64(#c)]; })
                }
                _ => None,
            });
        quote! { #(#lines)* }
    }

    /// `(n, c, h * w)` of a batch-norm input.
    fn bn_dims(&self, id: NodeId) -> (Size, usize, usize) {
        let xs = self.shape(self.g.nodes[id].inputs[0]);
        let r = xs.rank();
        let c = xs.fixed_at(r - 3).unwrap_or(1);
        let hw = xs.fixed_at(r - 2).unwrap_or(1) * xs.fixed_at(r - 1).unwrap_or(1);
        (Size::of(xs).div(c * hw), c, hw)
    }

    /// The running statistic `name` of batch-norm layer `layer`.
    fn bn_stat(layer: &Ident, name: &str, mutable: bool) -> TokenStream {
        let f = format_ident!("{}", name);
        if mutable {
            quote!(self.#layer.#f.data_mut())
        } else {
            quote!(self.#layer.#f.data())
        }
    }

    fn f64_lit(x: f64) -> TokenStream {
        quote!(T::from_f64(#x))
    }

    /// The forward pass: one kernel call per node, in definition order.
    pub fn forward(&self) -> TokenStream {
        let mut out = TokenStream::new();
        for id in 0..self.g.nodes.len() {
            out.extend(self.forward_node(id));
        }
        out
    }

    fn forward_node(&self, id: NodeId) -> TokenStream {
        let node = &self.g.nodes[id];
        let x = |j: usize| self.value(node.inputs[j]);
        let y = self.out(id);
        let ops = quote!(::nanograd::ops);
        let ins = |j: usize| self.shape(node.inputs[j]);
        let last = |j: usize| ins(j).last().unwrap_or(1);
        let rows = |j: usize, cols: usize| Size::of(ins(j)).div(cols).tokens();
        let yn = v(id);
        match &node.op {
            Op::Input(_) | Op::Param { .. } | Op::Const(_) | Op::Reshape => quote!(),
            Op::Binary(b) => {
                let f = format_ident!("{}", b.name());
                let (a, bb) = (x(0), x(1));
                quote! { #ops::#f(#a, #bb, #y)?; }
            }
            Op::SafeDiv(eps) => {
                let (a, b, e) = (x(0), x(1), Self::f64_lit(*eps));
                quote! { #ops::safe_div(#a, #b, #e, #y)?; }
            }
            Op::Scale(s) => {
                let (a, s) = (x(0), Self::f64_lit(*s));
                quote! { #ops::scale(#a, #s, #y)?; }
            }
            Op::MatMul => {
                let (k, n) = (last(0), last(1));
                let m = rows(0, k);
                let (a, b) = (x(0), x(1));
                quote! { #ops::matmul(#a, #b, #m, #k, #n, #y)?; }
            }
            Op::MatVec => {
                let n = last(1);
                let m = rows(0, n);
                let (a, b) = (x(0), x(1));
                quote! { #ops::matvec(#a, #b, #m, #n, #y)?; }
            }
            Op::VecMat => {
                let (m, n) = (ins(0).numel_fixed(), last(1));
                let (a, b) = (x(0), x(1));
                quote! { #ops::vecmat(#a, #b, #m, #n, #y)?; }
            }
            Op::Dot => {
                let (a, b) = (x(0), x(1));
                quote! { #yn[0] = #ops::dot(#a, #b)?; }
            }
            Op::Dense { bias } => {
                let (in_f, out_f) = (last(0), last(1).max(1));
                let out_f = ins(1).fixed_at(0).unwrap_or(out_f);
                let rows = rows(0, in_f);
                let (a, w) = (x(0), x(1));
                let b = if *bias {
                    let b = x(2);
                    quote!(Some(#b))
                } else {
                    quote!(None)
                };
                quote! { #ops::dense(#a, #w, #b, #rows, #in_f, #out_f, #y)?; }
            }
            Op::Sum => {
                let a = x(0);
                quote! { #yn[0] = #ops::sum(#a); }
            }
            Op::Mean => {
                let a = x(0);
                quote! { #yn[0] = #ops::mean(#a)?; }
            }
            Op::Product => {
                let a = x(0);
                quote! { #yn[0] = #ops::product(#a); }
            }
            Op::Reduce { init, f, .. } => {
                let (a, init) = (x(0), Self::f64_lit(*init));
                quote! { #yn[0] = #ops::reduce(#a, #init, #f); }
            }
            Op::Slice { start, len } => {
                let row_len = ins(0).numel_fixed() / ins(0).fixed_at(0).unwrap_or(1);
                let a = x(0);
                quote! { #ops::slice(#a, #row_len, #start, #len, #y)?; }
            }
            Op::Unary(u) => {
                let f = format_ident!("{}", u.name());
                let a = x(0);
                quote! { #ops::#f(#a, #y)?; }
            }
            Op::LeakyRelu(alpha) => {
                let (a, al) = (x(0), Self::f64_lit(*alpha));
                quote! { #ops::leaky_relu(#a, #al, #y)?; }
            }
            Op::Softplus(beta) => {
                let (a, be) = (x(0), Self::f64_lit(*beta));
                quote! { #ops::softplus(#a, #be, #y)?; }
            }
            Op::Softmax | Op::LogSoftmax => {
                let f = if matches!(node.op, Op::Softmax) {
                    quote!(softmax)
                } else {
                    quote!(log_softmax)
                };
                let (a, cols) = (x(0), last(0));
                quote! { #ops::#f(#a, #cols, #y)?; }
            }
            Op::MseLoss | Op::CrossEntropyLoss => {
                let f = if matches!(node.op, Op::MseLoss) {
                    quote!(mse_loss)
                } else {
                    quote!(cross_entropy_loss)
                };
                let (p, t) = (x(0), x(1));
                quote! { #yn[0] = #ops::#f(#p, #t)?; }
            }
            Op::SoftmaxCrossEntropy => {
                let (p, t, cols) = (x(0), x(1), last(0));
                quote! { #yn[0] = #ops::softmax_cross_entropy(#p, #t, #cols)?; }
            }
            Op::Conv2d { geom, bias } => {
                let g = conv_geom(geom);
                let n = rows(0, geom.c_in * geom.h * geom.w);
                let (a, w) = (x(0), x(1));
                let b = if *bias {
                    let b = x(2);
                    quote!(Some(#b))
                } else {
                    quote!(None)
                };
                let cols = aux("cols", id);
                quote! { #ops::conv2d(&#g, #a, #w, #b, #n, &mut *#cols, #y)?; }
            }
            Op::MaxPool2d(pg) | Op::AvgPool2d(pg) => {
                let f = if matches!(node.op, Op::MaxPool2d(_)) {
                    quote!(max_pool2d)
                } else {
                    quote!(avg_pool2d)
                };
                let g = pool_geom(pg);
                let n = rows(0, pg.c * pg.h * pg.w);
                let a = x(0);
                quote! { #ops::#f(&#g, #a, #n, #y)?; }
            }
            Op::GlobalAvgPool2d => {
                let xs = ins(0);
                let r = xs.rank();
                let c = xs.fixed_at(r - 3).unwrap_or(1);
                let hw = xs.fixed_at(r - 2).unwrap_or(1) * xs.fixed_at(r - 1).unwrap_or(1);
                let n = rows(0, c * hw);
                let a = x(0);
                quote! { #ops::global_avg_pool2d(#a, #n, #c, #hw, #y)?; }
            }
            Op::BatchNorm2d {
                layer,
                eps,
                momentum,
            } => {
                let (n, c, hw) = self.bn_dims(id);
                let n = n.tokens();
                let (a, w, b) = (x(0), x(1), x(2));
                let (eps, mom) = (Self::f64_lit(*eps), Self::f64_lit(*momentum));
                let (sm, si) = (aux("mean", id), aux("invstd", id));
                let rm_ro = Self::bn_stat(layer, "running_mean", false);
                let rv_ro = Self::bn_stat(layer, "running_var", false);
                let train = if self.mode == Mode::Train {
                    let rm = Self::bn_stat(layer, "running_mean", true);
                    let rv = Self::bn_stat(layer, "running_var", true);
                    quote! {
                        #ops::batch_norm2d_train(#a, #n, #c, #hw, #w, #b, #eps, #mom,
                            #rm, #rv, &mut *#sm, &mut *#si, #y)?;
                    }
                } else {
                    // batch statistics, with the running statistics updated in a scratch copy
                    let (rm, rv) = (aux("rmean", id), aux("rvar", id));
                    quote! {
                        #rm.copy_from_slice(#rm_ro);
                        #rv.copy_from_slice(#rv_ro);
                        #ops::batch_norm2d_train(#a, #n, #c, #hw, #w, #b, #eps, #mom,
                            &mut *#rm, &mut *#rv, &mut *#sm, &mut *#si, #y)?;
                    }
                };
                quote! {
                    if self.__training {
                        #train
                    } else {
                        #ops::batch_norm2d_eval(#a, #n, #c, #hw, #w, #b, #rm_ro, #rv_ro, #eps, #y)?;
                    }
                }
            }
            Op::RmsNorm(eps) => {
                let (a, w, cols, e) = (x(0), x(1), last(0), Self::f64_lit(*eps));
                quote! { #ops::rmsnorm(#a, #w, #cols, #e, #y)?; }
            }
            Op::LayerNorm { eps, weight, bias } => {
                let (a, cols, e) = (x(0), last(0), Self::f64_lit(*eps));
                let w = if *weight {
                    let w = x(1);
                    quote!(Some(#w))
                } else {
                    quote!(None)
                };
                let b = if *bias {
                    let b = x(2);
                    quote!(Some(#b))
                } else {
                    quote!(None)
                };
                quote! { #ops::layer_norm(#a, #w, #b, #cols, #e, #y)?; }
            }
            Op::L2Normalize(eps) => {
                let (a, cols, e) = (x(0), last(0), Self::f64_lit(*eps));
                quote! { #ops::l2_normalize(#a, #cols, #e, #y)?; }
            }
            Op::CosineSimilarity => {
                let (a, b, cols) = (x(0), x(1), last(0));
                quote! { #ops::cosine_similarity(#a, #b, #cols, #y)?; }
            }
            Op::SubModel { layer, in_row, .. } => {
                let (a, nb) = (x(0), rows(0, *in_row));
                let sub = aux("sub", id);
                if self.mode == Mode::Train {
                    quote! { self.#layer.__layer_forward_train(#nb, #a, #y, &mut *#sub, &mut *__rng)?; }
                } else {
                    quote! { self.#layer.__layer_forward_infer(#nb, #a, #y, &mut *#sub, &mut *__rng)?; }
                }
            }
            Op::Dropout(p) => {
                let (a, p) = (x(0), Self::f64_lit(*p));
                let mask = aux("mask", id);
                quote! {
                    if self.__training {
                        #ops::dropout(#a, #p, &mut *__rng, &mut *#mask, #y)?;
                    } else {
                        #yn.copy_from_slice(#a);
                    }
                }
            }
        }
    }

    /// `&mut [T]` of the gradient of node `id` (resolved through reshapes).
    fn grad_target(&self, id: NodeId) -> TokenStream {
        let id = self.root[id];
        match &self.g.nodes[id].op {
            Op::Input(i) => {
                let g = format_ident!("__gx{}", i);
                quote!(&mut *#g)
            }
            Op::Param { .. } => {
                let g = aux("pg", id);
                quote!(&mut *#g)
            }
            _ => {
                let g = gr(id);
                quote!(&mut *#g)
            }
        }
    }

    /// `&mut [T]` of the output's gradient, or `None` when nothing upstream of the output
    /// needs a gradient.
    pub fn output_grad(&self) -> Option<TokenStream> {
        let out = self.g.output;
        if !self.needs_grad[out] {
            return None;
        }
        let r = self.root[out];
        Some(match &self.g.nodes[r].op {
            Op::Param { field, sub } => match sub {
                Some(s) => quote!(self.#field.#s.grad_mut()),
                None => quote!(self.#field.grad_mut()),
            },
            _ => self.grad_target(out),
        })
    }

    /// Every node's backward call, in reverse definition order.
    pub fn backward(&self) -> TokenStream {
        let mut out = TokenStream::new();
        for id in (0..self.g.nodes.len()).rev() {
            if self.needs_grad[id] && self.has_buffer(id) {
                out.extend(self.backward_node(id));
            }
        }
        out
    }

    fn backward_node(&self, id: NodeId) -> TokenStream {
        let node = &self.g.nodes[id];
        let ops = quote!(::nanograd::ops);
        // parameters of this call: value and gradient borrowed together
        let mut binds = TokenStream::new();
        let mut param_vals: HashMap<NodeId, TokenStream> = HashMap::new();
        for &i in &node.inputs {
            let r = self.root[i];
            if let Op::Param { field, sub } = &self.g.nodes[r].op {
                if param_vals.contains_key(&r) {
                    continue;
                }
                let (pv, pg) = (aux("pv", r), aux("pg", r));
                let path = match sub {
                    Some(s) => quote!(self.#field.#s),
                    None => quote!(self.#field),
                };
                binds.extend(quote! { let (#pv, #pg) = #path.value_and_grad_mut(); });
                param_vals.insert(r, quote!(#pv));
            }
        }
        let x = |j: usize| -> TokenStream {
            let r = self.root[node.inputs[j]];
            param_vals
                .get(&r)
                .cloned()
                .unwrap_or_else(|| self.value(node.inputs[j]))
        };
        // gradients of inputs: Some(target), a temporary for a repeated one, None if unneeded
        let mut after = TokenStream::new();
        let grads: Vec<Option<TokenStream>> = node
            .inputs
            .iter()
            .enumerate()
            .map(|(j, &i)| {
                if !self.needs_grad[i] {
                    return None;
                }
                if self.duplicate_at(id, j) {
                    let t = aux(&format!("t{j}_"), id);
                    let target = self.grad_target(i);
                    after.extend(quote! {
                        for (__a, __d) in (#target).iter_mut().zip(#t.iter()) { *__a += *__d; }
                    });
                    Some(quote!(&mut *#t))
                } else {
                    Some(self.grad_target(i))
                }
            })
            .collect();
        let opt = |j: usize| -> TokenStream {
            match &grads[j] {
                Some(g) => quote!(Some(#g)),
                None => quote!(None),
            }
        };
        let y = self.value(id);
        let dyn_ = gr(id);
        let dy = quote!(&*#dyn_);
        let dy0 = quote!(#dyn_[0]);
        let ins = |j: usize| self.shape(node.inputs[j]);
        let last = |j: usize| ins(j).last().unwrap_or(1);
        let rows = |j: usize, cols: usize| Size::of(ins(j)).div(cols).tokens();
        // single-input kernels take `dx: &mut [T]`: called only when the input needs it
        let plain = |call: &dyn Fn(TokenStream) -> TokenStream| -> TokenStream {
            match &grads[0] {
                Some(g) => call(g.clone()),
                None => quote!(),
            }
        };
        let call = match &node.op {
            Op::Input(_) | Op::Param { .. } | Op::Const(_) | Op::Reshape => quote!(),
            Op::Binary(b) => {
                let (ga, gb) = (opt(0), opt(1));
                match b {
                    Binary::Add | Binary::Sub => {
                        let f = format_ident!("{}_backward", b.name());
                        quote! { #ops::#f(#dy, #ga, #gb)?; }
                    }
                    Binary::Mul | Binary::Div => {
                        let f = format_ident!("{}_backward", b.name());
                        let (a, bb) = (x(0), x(1));
                        quote! { #ops::#f(#a, #bb, #dy, #ga, #gb)?; }
                    }
                }
            }
            Op::SafeDiv(eps) => {
                let (a, b, e, ga, gb) = (x(0), x(1), Self::f64_lit(*eps), opt(0), opt(1));
                quote! { #ops::safe_div_backward(#a, #b, #e, #dy, #ga, #gb)?; }
            }
            Op::Scale(s) => {
                let s = Self::f64_lit(*s);
                plain(&|g| quote! { #ops::scale_backward(#s, #dy, #g)?; })
            }
            Op::MatMul => {
                let (k, n) = (last(0), last(1));
                let m = rows(0, k);
                let (a, b, ga, gb) = (x(0), x(1), opt(0), opt(1));
                quote! { #ops::matmul_backward(#a, #b, #dy, #m, #k, #n, #ga, #gb)?; }
            }
            Op::MatVec => {
                let n = last(1);
                let m = rows(0, n);
                let (a, b, ga, gb) = (x(0), x(1), opt(0), opt(1));
                quote! { #ops::matvec_backward(#a, #b, #dy, #m, #n, #ga, #gb)?; }
            }
            Op::VecMat => {
                let (m, n) = (ins(0).numel_fixed(), last(1));
                let (a, b, ga, gb) = (x(0), x(1), opt(0), opt(1));
                quote! { #ops::vecmat_backward(#a, #b, #dy, #m, #n, #ga, #gb)?; }
            }
            Op::Dot => {
                let (a, b, ga, gb) = (x(0), x(1), opt(0), opt(1));
                quote! { #ops::dot_backward(#a, #b, #dy0, #ga, #gb)?; }
            }
            Op::Dense { bias } => {
                let in_f = last(0);
                let out_f = ins(1).fixed_at(0).unwrap_or(1);
                let r = rows(0, in_f);
                let (a, w, ga, gw) = (x(0), x(1), opt(0), opt(1));
                let gb = if *bias { opt(2) } else { quote!(None) };
                quote! { #ops::dense_backward(#a, #w, #dy, #r, #in_f, #out_f, #ga, #gw, #gb)?; }
            }
            Op::Sum => plain(&|g| quote! { #ops::sum_backward(#dy0, #g)?; }),
            Op::Mean => plain(&|g| quote! { #ops::mean_backward(#dy0, #g)?; }),
            Op::Product => {
                let a = x(0);
                plain(&|g| quote! { #ops::product_backward(#a, #dy0, #g)?; })
            }
            Op::Reduce { rule, .. } => {
                let a = x(0);
                // the rule's type is named: inside a bare `Some(..)` rustc cannot infer the
                // closure's signature (its `&[T]` for every lifetime) and rejects it
                let rule = match rule {
                    Some(r) => quote!(Some::<#ops::GradientRule<T>>(#r)),
                    None => quote!(None::<#ops::GradientRule<T>>),
                };
                plain(&|g| quote! { #ops::reduce_backward(#a, #dy0, #rule, #g)?; })
            }
            Op::Slice { start, .. } => {
                let row_len = ins(0).numel_fixed() / ins(0).fixed_at(0).unwrap_or(1);
                plain(&|g| quote! { #ops::slice_backward(#row_len, #start, #dy, #g)?; })
            }
            Op::Unary(u) => {
                let f = format_ident!("{}_backward", u.name());
                let a = x(0);
                let _ = Unary::Relu;
                plain(&|g| quote! { #ops::#f(#a, #y, #dy, #g)?; })
            }
            Op::LeakyRelu(alpha) => {
                let (a, al) = (x(0), Self::f64_lit(*alpha));
                plain(&|g| quote! { #ops::leaky_relu_backward(#a, #y, #dy, #al, #g)?; })
            }
            Op::Softplus(beta) => {
                let (a, be) = (x(0), Self::f64_lit(*beta));
                plain(&|g| quote! { #ops::softplus_backward(#a, #y, #dy, #be, #g)?; })
            }
            Op::Softmax | Op::LogSoftmax => {
                let f = if matches!(node.op, Op::Softmax) {
                    quote!(softmax_backward)
                } else {
                    quote!(log_softmax_backward)
                };
                let cols = last(0);
                plain(&|g| quote! { #ops::#f(#y, #dy, #cols, #g)?; })
            }
            Op::MseLoss | Op::CrossEntropyLoss => {
                let f = if matches!(node.op, Op::MseLoss) {
                    quote!(mse_loss_backward)
                } else {
                    quote!(cross_entropy_loss_backward)
                };
                let (p, t, gp, gt) = (x(0), x(1), opt(0), opt(1));
                quote! { #ops::#f(#p, #t, #dy0, #gp, #gt)?; }
            }
            Op::SoftmaxCrossEntropy => {
                let (p, t, gp, gt, cols) = (x(0), x(1), opt(0), opt(1), last(0));
                quote! { #ops::softmax_cross_entropy_backward(#p, #t, #cols, #dy0, #gp, #gt)?; }
            }
            Op::Conv2d { geom, bias } => {
                let g = conv_geom(geom);
                let n = rows(0, geom.c_in * geom.h * geom.w);
                let (a, w, ga, gw) = (x(0), x(1), opt(0), opt(1));
                let gb = if *bias { opt(2) } else { quote!(None) };
                let cols = aux("cols", id);
                quote! { #ops::conv2d_backward(&#g, #a, #w, #dy, #n, &mut *#cols, #ga, #gw, #gb)?; }
            }
            Op::MaxPool2d(pg) => {
                let g = pool_geom(pg);
                let n = rows(0, pg.c * pg.h * pg.w);
                let a = x(0);
                plain(&|gx| quote! { #ops::max_pool2d_backward(&#g, #a, #y, #dy, #n, #gx)?; })
            }
            Op::AvgPool2d(pg) => {
                let g = pool_geom(pg);
                let n = rows(0, pg.c * pg.h * pg.w);
                plain(&|gx| quote! { #ops::avg_pool2d_backward(&#g, #dy, #n, #gx)?; })
            }
            Op::GlobalAvgPool2d => {
                let xs = ins(0);
                let r = xs.rank();
                let c = xs.fixed_at(r - 3).unwrap_or(1);
                let hw = xs.fixed_at(r - 2).unwrap_or(1) * xs.fixed_at(r - 1).unwrap_or(1);
                let n = rows(0, c * hw);
                plain(&|g| quote! { #ops::global_avg_pool2d_backward(#dy, #n, #c, #hw, #g)?; })
            }
            Op::BatchNorm2d { layer, eps, .. } => {
                let (n, c, hw) = self.bn_dims(id);
                let n = n.tokens();
                let (a, w) = (x(0), x(1));
                let (ga, gw, gb) = (opt(0), opt(1), opt(2));
                let (sm, si) = (aux("mean", id), aux("invstd", id));
                let eps = Self::f64_lit(*eps);
                let rm = Self::bn_stat(layer, "running_mean", false);
                let rv = Self::bn_stat(layer, "running_var", false);
                quote! {
                    if self.__training {
                        #ops::batch_norm2d_train_backward(#a, #n, #c, #hw, #w, &*#sm, &*#si, #dy, #ga, #gw, #gb)?;
                    } else {
                        #ops::batch_norm2d_eval_backward(#a, #n, #c, #hw, #w, #rm, #rv, #eps, #dy, #ga, #gw, #gb)?;
                    }
                }
            }
            Op::RmsNorm(eps) => {
                let (a, w, cols, e, ga, gw) =
                    (x(0), x(1), last(0), Self::f64_lit(*eps), opt(0), opt(1));
                quote! { #ops::rmsnorm_backward(#a, #w, #dy, #cols, #e, #ga, #gw)?; }
            }
            Op::LayerNorm { eps, weight, bias } => {
                let (a, cols, e, ga) = (x(0), last(0), Self::f64_lit(*eps), opt(0));
                let w = if *weight {
                    let w = x(1);
                    quote!(Some(#w))
                } else {
                    quote!(None)
                };
                let gw = if *weight { opt(1) } else { quote!(None) };
                let gb = if *bias { opt(2) } else { quote!(None) };
                quote! { #ops::layer_norm_backward(#a, #w, #dy, #cols, #e, #ga, #gw, #gb)?; }
            }
            Op::L2Normalize(eps) => {
                let (a, cols, e) = (x(0), last(0), Self::f64_lit(*eps));
                plain(&|g| quote! { #ops::l2_normalize_backward(#a, #y, #dy, #cols, #e, #g)?; })
            }
            Op::CosineSimilarity => {
                let (a, b, cols, ga, gb) = (x(0), x(1), last(0), opt(0), opt(1));
                quote! { #ops::cosine_similarity_backward(#a, #b, #dy, #cols, #ga, #gb)?; }
            }
            Op::SubModel { layer, in_row, .. } => {
                let (a, nb, ga) = (x(0), rows(0, *in_row), opt(0));
                let sub = aux("sub", id);
                quote! { self.#layer.__layer_backward(#nb, #a, #dy, #ga, &mut *#sub)?; }
            }
            Op::Dropout(_) => {
                let mask = aux("mask", id);
                plain(&|g| {
                    quote! {
                        if self.__training {
                            #ops::dropout_backward(&*#mask, #dy, #g)?;
                        } else {
                            for (__a, __d) in (#g).iter_mut().zip((#dy).iter()) { *__a += *__d; }
                        }
                    }
                })
            }
        };
        quote! { { #binds #call #after } }
    }
}

fn conv_geom(g: &crate::ir::ConvGeom) -> TokenStream {
    let crate::ir::ConvGeom {
        c_in,
        h,
        w,
        c_out,
        kh,
        kw,
        stride,
        padding,
    } = *g;
    quote! {
        ::nanograd::ops::Conv2dGeom {
            c_in: #c_in, h: #h, w: #w, c_out: #c_out, kh: #kh, kw: #kw,
            stride: #stride, padding: #padding,
        }
    }
}

fn pool_geom(g: &crate::ir::PoolGeom) -> TokenStream {
    let crate::ir::PoolGeom {
        c,
        h,
        w,
        kernel,
        stride,
        padding,
    } = *g;
    quote! {
        ::nanograd::ops::Pool2dGeom {
            c: #c, h: #h, w: #w, kernel: #kernel, stride: #stride, padding: #padding,
        }
    }
}
