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

use proc_macro2::{Ident, TokenStream};
use quote::{format_ident, quote};

use crate::ir::{Binary, Graph, Node, NodeId, Op, Unary};
use crate::shape::{Dim, Shape};

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

    /// The size times `k`.
    pub(super) fn times(self, k: usize) -> Size {
        Size {
            b: self.b * k,
            f: self.f * k,
        }
    }

    /// The size divided by `d` (which divides it exactly: checked shapes guarantee it).
    pub(super) fn div(self, d: usize) -> Size {
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
    pub(super) g: &'a Graph,
    pub(super) mode: Mode,
    /// Whether the backward pass is generated (regions for gradients are planned).
    pub(super) backward: bool,
    /// The node whose data a node shares (itself unless it is a reshape).
    pub(super) root: Vec<NodeId>,
    pub(super) needs_grad: Vec<bool>,
    pub(super) regions: Vec<(Ident, Size)>,
    /// Gradient regions, carved after the forward ones.
    pub(super) grad_regions: Vec<(Ident, Size)>,
    /// Whether dense layers read their weights through the workspace's packed-weight
    /// caches (`ops::dense_cached`, slot `i` for the `i`-th), and models used as layers get
    /// slots of their own: inference (`Mode::Infer`), whose weights stay put.
    pub(super) packs: bool,
    /// The call `(node, input)` whose backward kernel writes first into the gradient region
    /// of each node, when that kernel can overwrite it: the region is then not zeroed.
    pub(super) overwritten_by: Vec<Option<(NodeId, usize)>>,
    /// Relu nodes whose backward pass their only user does (see [`GraphGen::folds_relu`]).
    pub(super) folded_relu: Vec<bool>,
    /// The sum whose gradient region a node's gradient shares (see [`GraphGen::alias_of`]).
    pub(super) grad_alias: Vec<Option<NodeId>>,
}

pub(super) fn v(id: NodeId) -> Ident {
    format_ident!("__v{}", id)
}
pub(super) fn gr(id: NodeId) -> Ident {
    format_ident!("__g{}", id)
}
pub(super) fn aux(name: &str, id: NodeId) -> Ident {
    format_ident!("__{}{}", name, id)
}

/// `self.fc1.weight`, `self.attn.out_proj.weight`: the place of a parameter.
pub(super) fn param_path(field: &Ident, sub: &[Ident]) -> TokenStream {
    quote!(self.#field #(.#sub)*)
}

/// `self.blk`, or `self.h[2]` for an element of a layer array.
pub(super) fn layer_path(layer: &Ident, index: Option<usize>) -> TokenStream {
    match index {
        Some(i) => quote!(self.#layer[#i]),
        None => quote!(self.#layer),
    }
}

/// Dense weights with fewer elements are never packed at run time (the runtime's
/// `blas::packed::MIN_PACK`): their layers call `ops::dense` and take no cache slot.
const MIN_PACKED: usize = 4096;

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
                    Op::Const(_) | Op::IndexInput(_) => false,
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
            packs: mode == Mode::Infer,
            overwritten_by: vec![None; n],
            folded_relu: vec![false; n],
            grad_alias: vec![None; n],
        };
        if backward {
            gen.grad_alias = (0..n).map(|id| gen.alias_of(id)).collect();
        }
        gen.plan();
        if backward {
            gen.overwritten_by = (0..n).map(|id| gen.first_write(id)).collect();
            gen.folded_relu = (0..n).map(|id| gen.folds_relu(id)).collect();
            gen.empty_fused_regions();
        }
        gen
    }

    /// The layer weight (`&self.fc1.weight`) of a dense node whose weight is a parameter of
    /// the model with at least `MIN_PACKED` elements: the layers worth packing.
    fn packable_weight(&self, id: NodeId) -> Option<TokenStream> {
        let node = &self.g.nodes[id];
        if !matches!(node.op, Op::Dense { .. }) {
            return None;
        }
        match &self.g.nodes[self.root[node.inputs[1]]] {
            w if w.shape.numel_fixed() < MIN_PACKED => None,
            Node {
                op: Op::Param { field, sub },
                ..
            } => {
                let path = param_path(field, sub);
                Some(quote!(&#path))
            }
            _ => None,
        }
    }

    /// The layer weight of a dense node with its cache slot, when the caches are on.
    pub(super) fn packed_weight(&self, id: NodeId) -> Option<(TokenStream, usize)> {
        let w = self.packable_weight(id)?;
        self.packs.then(|| (w, self.first_slot(id)))
    }

    /// How many packed-weight caches node `id` reads: one for a dense layer worth packing,
    /// a model used as a layer its own count; none when the caches are off.
    fn slots_of(&self, id: NodeId) -> usize {
        if !self.packs {
            return 0;
        }
        match &self.g.nodes[id].op {
            Op::SubModel { packs, .. } => *packs,
            _ => usize::from(self.packable_weight(id).is_some()),
        }
    }

    /// The first cache slot of node `id`: the slots of the nodes before it come first.
    fn first_slot(&self, id: NodeId) -> usize {
        (0..id).map(|i| self.slots_of(i)).sum()
    }

    /// `&mut __packs[start..end]`: the caches of a model used as a layer (node `id`).
    pub(super) fn sub_packs(&self, id: NodeId) -> TokenStream {
        let (start, n) = (self.first_slot(id), self.slots_of(id));
        let end = start + n;
        if n == 0 {
            quote!(&mut [])
        } else {
            quote!(&mut __packs[#start..#end])
        }
    }

    /// Whether a dense node packs its weight into a scratch region on every call
    /// (`ops::dense_packing`): in a training step, whose weights change every time.
    pub(super) fn packs_per_call(&self, id: NodeId) -> bool {
        self.mode == Mode::Train && self.packable_weight(id).is_some()
    }

    /// The number of packed-weight cache slots the forward pass uses.
    pub fn pack_slots(&self) -> usize {
        (0..self.g.nodes.len()).map(|id| self.slots_of(id)).sum()
    }

    /// Whether relu node `id` leaves its backward pass to its only user, a convolution, a
    /// global average pooling or a max pooling, which then writes the gradient of the relu's
    /// input through relu's derivative (`conv2d_backward_through_relu`,
    /// `global_avg_pool2d_backward_through_relu`, `max_pool2d_backward_through_relu`): one
    /// pass over the gradient instead of two. Only when the relu is the first writer of its input's gradient and overwrites it,
    /// and the user's call is the only contribution to the relu's own gradient.
    ///
    /// ```text
    /// ::nanograd::ops::conv2d_backward_through_relu(&G, &*__v3, __pv4, &*__g6, __b, ..,
    ///     Some(&mut *__g2), Some(&mut *__pg4), Some(&mut *__pg5))?;   // no relu_backward
    /// ```
    fn folds_relu(&self, id: NodeId) -> bool {
        if !matches!(self.g.nodes[id].op, Op::Unary(Unary::Relu)) || !self.needs_grad[id] {
            return false;
        }
        let Some((user, 0)) = self.overwritten_by[id] else {
            return false;
        };
        let input = self.g.nodes[id].inputs[0];
        let contributions: usize = (0..self.g.nodes.len())
            .filter(|&c| self.needs_grad[c] && self.has_buffer(c))
            .map(|c| {
                let ins = &self.g.nodes[c].inputs;
                ins.iter().filter(|&&i| self.root[i] == id).count()
            })
            .sum();
        contributions == 1
            && self.overwritten_by[self.root[input]] == Some((id, 0))
            && matches!(
                self.g.nodes[user].op,
                Op::Conv2d { .. } | Op::GlobalAvgPool2d | Op::MaxPool2d(_)
            )
    }

    /// Whether input `j` of `id` is a relu whose backward pass this call does.
    pub(super) fn through_relu(&self, id: NodeId, j: usize) -> Option<NodeId> {
        let r = self.root[self.g.nodes[id].inputs[j]];
        (self.folded_relu[r] && self.overwritten_by[r] == Some((id, j))).then_some(r)
    }

    /// The call that writes first into the gradient region of `id`, if it can overwrite it:
    /// the backward pass runs in reverse definition order, so the first writer is the last
    /// node that takes `id` (or a reshape of it) as an input, at its first such input. Not
    /// for the output's gradient (seeded before the backward pass), inputs and parameters
    /// (their gradients belong to the caller and accumulate), or a node whose first writer
    /// has no overwriting kernel: relu, gelu, global average pooling, max pooling, batch norm,
    /// multi-head attention (its packed projection's gradient), and the `dx` of conv2d and
    /// dense have one.
    ///
    /// ```text
    /// ::nanograd::ops::relu_backward_overwrite(&*__v4, &*__v5, &*__g5, &mut *__g4)?;
    /// ```
    fn first_write(&self, id: NodeId) -> Option<(NodeId, usize)> {
        if !self.owns_grad_region(id) || self.grad_alias[id].is_some() {
            return None;
        }
        let (user, j) = self.first_user(id)?;
        let can = match self.g.nodes[user].op {
            Op::Unary(Unary::Relu | Unary::Gelu | Unary::GeluErf)
            | Op::GlobalAvgPool2d
            | Op::Conv2d { .. }
            | Op::Dense { .. }
            | Op::MaxPool2d(_)
            | Op::BatchNorm2d { .. }
            | Op::MhaAttention { .. } => j == 0,
            _ => false,
        };
        can.then_some((user, j))
    }

    /// Whether `id` is an intermediate value whose gradient the backward pass keeps in a
    /// region of its own (not an input's, a parameter's or the output's).
    fn owns_grad_region(&self, id: NodeId) -> bool {
        self.needs_grad[id]
            && self.has_buffer(id)
            && self.root[id] == id
            && id != self.root[self.g.output]
    }

    /// The call whose backward kernel contributes first to the gradient of `id`: the last
    /// node that takes `id` (or a reshape of it) as an input, at its first such input.
    fn first_user(&self, id: NodeId) -> Option<(NodeId, usize)> {
        (0..self.g.nodes.len()).rev().find_map(|c| {
            if !self.needs_grad[c] || !self.has_buffer(c) {
                return None;
            }
            let ins = &self.g.nodes[c].inputs;
            let j = (0..ins.len()).find(|&j| self.needs_grad[ins[j]] && self.root[ins[j]] == id)?;
            Some((c, j))
        })
    }

    /// The sum `z` whose gradient region the gradient of `id` shares, when `z = id + b` (or
    /// `b + id`, or `id - b`) of one shape is the first contribution to it: the gradient of
    /// `id` starts as `z`'s, so it is kept in `z`'s region, which `z`'s own backward pass has
    /// finished reading; the later contributions add to it there. No region, no zeroing, no
    /// copy: a residual connection's gradient passes through for free.
    ///
    /// ```text
    /// ::nanograd::ops::add_backward(&*__g22, None, Some(&mut *__g21))?;  // x's gradient is __g22
    /// ```
    ///
    /// One operand per sum (the left one when both qualify).
    fn alias_of(&self, id: NodeId) -> Option<NodeId> {
        let eligible = |a: NodeId, z: NodeId, j: usize| -> bool {
            let node = &self.g.nodes[z];
            let ok_op = match node.op {
                Op::Binary(Binary::Add) => true,
                Op::Binary(Binary::Sub) => j == 0,
                _ => false,
            };
            ok_op
                && self.owns_grad_region(a)
                && node.inputs[j] == a
                && self.root[node.inputs[1 - j]] != a
                && self.shape(a).dims == self.shape(z).dims
                && self.first_user(a) == Some((z, j))
        };
        let (z, j) = self.first_user(id)?;
        if !eligible(id, z, j) {
            return None;
        }
        if j == 1 && eligible(self.g.nodes[z].inputs[0], z, 0) {
            return None;
        }
        Some(z)
    }

    /// The gradient region of `id`: its own, or that of the sum it shares one with.
    pub(super) fn grad_region(&self, id: NodeId) -> Ident {
        let mut g = self.root[id];
        while let Some(z) = self.grad_alias[g] {
            g = self.root[z];
        }
        gr(g)
    }

    /// Whether input `j` of `id` shares its gradient region with `id` (nothing to add).
    pub(super) fn shares_grad(&self, id: NodeId, j: usize) -> bool {
        self.grad_alias[self.root[self.g.nodes[id].inputs[j]]] == Some(id)
    }

    /// Whether input `j` of `id` overwrites its gradient (see [`GraphGen::first_write`]).
    pub(super) fn overwrites(&self, id: NodeId, j: usize) -> bool {
        let r = self.root[self.g.nodes[id].inputs[j]];
        self.overwritten_by[r] == Some((id, j))
    }

    pub(super) fn shape(&self, id: NodeId) -> &Shape {
        &self.g.nodes[id].shape
    }

    pub(super) fn size(&self, id: NodeId) -> Size {
        Size::of(self.shape(id))
    }

    pub(super) fn has_buffer(&self, id: NodeId) -> bool {
        !matches!(
            self.g.nodes[id].op,
            Op::Input(_) | Op::IndexInput(_) | Op::Param { .. } | Op::Const(_) | Op::Reshape
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
                    // every image's columns (kept for the backward pass) and fixed scratch
                    let images =
                        Size::of(self.shape(node.inputs[0])).div(geom.c_in * geom.h * geom.w);
                    let ws = Size {
                        b: images.b * geom.workspace_per_image(),
                        f: images.f * geom.workspace_per_image() + geom.workspace_fixed(),
                    };
                    self.regions.push((aux("cols", id), ws));
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
                Op::Dense { .. } if self.packs_per_call(id) => {
                    // the weight packed on every call: the runtime's `dense_scratch_len`
                    let (out_f, in_f) = match self.shape(node.inputs[1]).dims[..] {
                        [Dim::Fixed(o), Dim::Fixed(i)] => (o, i),
                        _ => (0, 0),
                    };
                    let len = out_f.div_ceil(32) * 32 * in_f;
                    self.regions.push((aux("pk", id), Size::fixed(len)));
                }
                Op::Attention { .. } => {
                    // each query row's log-sum-exp, and the kernel's scratch
                    let (groups, tq, tk, _, _) = self.attention_dims(id);
                    self.regions.push((aux("lse", id), groups.times(tq)));
                    // the runtime's `attention_scratch_len`
                    self.regions
                        .push((aux("scr", id), Size::fixed(2 * tq * tk + tq)));
                }
                Op::MhaAttention { heads, .. } => {
                    let (n, t, c) = self.mha_dims(id);
                    self.regions.push((aux("lse", id), n.times(heads * t)));
                    // the runtime's `mha_attention_scratch_len`
                    let len = 2 * t * t + t + 8 * t * (c / heads.max(&1));
                    self.regions.push((aux("scr", id), Size::fixed(len)));
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
            if self.needs_grad[id] && self.grad_alias[id].is_none() {
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
    pub(super) fn duplicate_at(&self, id: NodeId, j: usize) -> bool {
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

    /// The gradient regions as one `fill(0)` each: intermediate gradients start at zero,
    /// except those whose first contribution overwrites them.
    pub fn zero_grads(&self) -> TokenStream {
        let mut skipped: Vec<Ident> = (0..self.g.nodes.len())
            .filter(|&id| self.overwritten_by[id].is_some())
            .map(gr)
            .collect();
        if self.seeds_by_copy() {
            skipped.push(gr(self.root[self.g.output]));
        }
        let lines = self
            .grad_regions
            .iter()
            .filter(|(name, _)| !skipped.contains(name))
            .map(|(name, _)| {
                quote! { #name.fill(T::zero()); }
            });
        quote! { #(#lines)* }
    }

    /// Whether the output's gradient is a region of the backward pass (not an input's or a
    /// parameter's, which accumulate), so that seeding it copies the upstream gradient in
    /// rather than zeroing it first and adding.
    pub fn seeds_by_copy(&self) -> bool {
        let out = self.root[self.g.output];
        self.needs_grad[out] && self.has_buffer(out)
    }

    /// `&[T]` of a node's value.
    pub fn value(&self, id: NodeId) -> TokenStream {
        let id = self.root[id];
        match &self.g.nodes[id].op {
            Op::Input(i) | Op::IndexInput(i) => {
                let x = format_ident!("__x{}", i);
                quote!(#x)
            }
            Op::Param { field, sub } => {
                let path = param_path(field, sub);
                quote!(#path.value())
            }
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
    pub(super) fn out(&self, id: NodeId) -> TokenStream {
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
    pub(super) fn bn_dims(&self, id: NodeId) -> (Size, usize, usize) {
        let xs = self.shape(self.g.nodes[id].inputs[0]);
        let r = xs.rank();
        let c = xs.fixed_at(r - 3).unwrap_or(1);
        let hw = xs.fixed_at(r - 2).unwrap_or(1) * xs.fixed_at(r - 1).unwrap_or(1);
        (Size::of(xs).div(c * hw), c, hw)
    }

    /// The running statistic `name` of batch-norm layer `layer`.
    pub(super) fn bn_stat(layer: &Ident, name: &str, mutable: bool) -> TokenStream {
        let f = format_ident!("{}", name);
        if mutable {
            quote!(self.#layer.#f.data_mut())
        } else {
            quote!(self.#layer.#f.data())
        }
    }

    /// `[__b, 4, 64, 32]`: a value's whole shape, the batch as the run-time `__b`.
    pub(super) fn shape_tokens(&self, id: NodeId) -> TokenStream {
        let dims = self.shape(id).dims.iter().map(|d| match d {
            Dim::Batch => quote!(__b),
            Dim::Fixed(n) => quote!(#n),
        });
        quote!([#(#dims),*])
    }

    /// `(batch, m, k, n)` of a batched matmul node: `[.., m, k] x [.., k, n]`.
    pub(super) fn batched_dims(&self, id: NodeId) -> (TokenStream, usize, usize, usize) {
        let node = &self.g.nodes[id];
        let (a, b) = (self.shape(node.inputs[0]), self.shape(node.inputs[1]));
        let r = a.rank();
        let (m, k) = (a.fixed_at(r - 2).unwrap_or(1), a.last().unwrap_or(1));
        let n = b.last().unwrap_or(1);
        (Size::of(a).div(m * k).tokens(), m, k, n)
    }

    /// `(outer, a_inner, b_inner)` of a concat node along `dim`.
    pub(super) fn concat_dims(&self, id: NodeId, dim: usize) -> (TokenStream, usize, usize) {
        let node = &self.g.nodes[id];
        let (a, b) = (self.shape(node.inputs[0]), self.shape(node.inputs[1]));
        let inner = |s: &Shape| {
            (dim..s.rank())
                .map(|i| s.fixed_at(i).unwrap_or(1))
                .product()
        };
        let (ai, bi): (usize, usize) = (inner(a), inner(b));
        (Size::of(a).div(ai).tokens(), ai, bi)
    }

    /// `(groups, tq, tk, d, dv)` of an attention node.
    pub(super) fn attention_dims(&self, id: NodeId) -> (Size, usize, usize, usize, usize) {
        let node = &self.g.nodes[id];
        let (q, k, v) = (
            self.shape(node.inputs[0]),
            self.shape(node.inputs[1]),
            self.shape(node.inputs[2]),
        );
        let r = q.rank();
        let (tq, d) = (q.fixed_at(r - 2).unwrap_or(1), q.last().unwrap_or(1));
        let (tk, dv) = (k.fixed_at(r - 2).unwrap_or(1), v.last().unwrap_or(1));
        (Size::of(q).div(tq * d), tq, tk, d, dv)
    }

    /// `(n, t, c)` of a multi-head attention core: its output is `[n, t, c]`.
    pub(super) fn mha_dims(&self, id: NodeId) -> (Size, usize, usize) {
        let out = self.shape(id);
        let r = out.rank();
        let (t, c) = (out.fixed_at(r - 2).unwrap_or(1), out.last().unwrap_or(1));
        (Size::of(out).div(t * c), t, c)
    }

    pub(super) fn f64_lit(x: f64) -> TokenStream {
        quote!(T::from_f64(#x))
    }
}
