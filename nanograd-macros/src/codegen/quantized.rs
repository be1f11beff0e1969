//! The int8 form of a struct model: `quantize_int8` and the quantized model type.
//!
//! ```text
//! pub struct Mlp { fc1: Dense(784 -> 128), fc2: Dense(128 -> 10) }
//! fn forward(x: [B, 784]) -> [B, 10] { fc2(relu(fc1(x))) }
//! ```
//! expands (beside the float model) to
//! ```text
//! #[derive(Clone, Debug)]
//! pub struct MlpInt8 { __float: Mlp<f32>, __q: Vec<QuantizedLayer> }   // fc1.weight, fc2.weight
//! impl<T: Float> Mlp<T> { pub fn quantize_int8(&self) -> Result<MlpInt8>; }
//! impl Mlp<f32> {   // hidden; what a model using this one as a layer calls too
//!     pub const __INT8_LAYERS: usize = 2;
//!     pub fn __int8_quantize(&self, out: &mut Vec<QuantizedLayer>) -> Result<()>;
//!     pub fn __int8_names(prefix: &str, out: &mut Vec<Int8Name>);    // file names
//!     pub fn __int8_unread(prefix: &str, out: &mut Vec<String>);     // float tensors not saved
//!     pub fn __layer_forward_int8(&self, q: &[QuantizedLayer], b, x, y, ws, rng, packs) -> Result<()>;
//! }
//! impl MlpInt8 {
//!     pub fn forward(&self, x: &[[f32; 784]]) -> Result<Vec<[f32; 10]>>;
//!     pub fn forward_into(&self, x: .., out: &mut [[f32; 10]], ws: &mut Workspace<f32>) -> Result<()>;
//!     pub fn to_safetensors_bytes(&self) -> Result<Vec<u8>>;   // and save_safetensors(path)
//!     pub fn load_safetensors(path) -> Result<Self>;           // and load_safetensors_bytes(bytes)
//! }
//! impl Mlp<f32> {
//!     fn __int8_forward_into(&self, __q: &[QuantizedLayer], x, out, ws) -> Result<()> {
//!         ::nanograd::quant::dense_int8(__x0, &__q[0], Some(self.fc1.bias.value()),
//!                                       __b, 784, 128, &mut *__v2, &mut *__qs2)?;
//!         ::nanograd::ops::relu(&*__v2, &mut *__v3)?;                        // f32 as before
//!         ..
//!     }
//! }
//! ```
//!
//! What becomes int8: every dense or convolution node whose weight is a parameter of this
//! model used only as such weights (a `Dense` or `Conv2d` layer, `dense(x, w, b)` on a
//! `Param`, a `MultiHeadAttention`'s projections). A convolution whose only user is a batch
//! norm has the batch norm folded in (the batch norm node then runs the convolution). Every
//! other node runs the float model's kernel in f32. A model used as a layer (`blk: Block`,
//! `h: [Block; N]`) runs its own int8 forward (`Block::<f32>::__layer_forward_int8`) on its
//! slice of `__q`: this model's int8 layers come first, then each such field's, element by
//! element (`Block::<f32>::__INT8_LAYERS` each), named in the file with the field's prefix
//! (`h.0.fc.weight`) as in the float model's file. The quantized model keeps the float
//! model, in evaluation mode, for the tensors that stay f32; the float weights that int8
//! ones replace are neither read nor saved.
//!
//! The quantized type's name is the model's with `Int8` appended: a struct of that name
//! in the same module is rustc's "defined multiple times" error at the model's name
//! (`tests/ui/names/int8-name-taken.rs`).

use std::collections::HashMap;

use proc_macro2::{Ident, TokenStream};
use quote::{format_ident, quote};

use super::array_type_of;
use super::forward::conv_geom;
use super::graph::{aux, layer_path, param_path, GraphGen, Mode, Size};
use super::model::{bind_inputs, method_vis, returns, sample_dims, split_workspace, Returns};
use crate::ir::{Graph, NodeId, Op};
use crate::lower::{FnModel, LayerKind, StructModel};
use crate::shape::Shape;

/// A parameter of the model: where it lives and its PyTorch name.
#[derive(Clone)]
struct ParamRef {
    path: TokenStream,
    name: String,
    shape: Vec<usize>,
}

/// A batch norm folded into the convolution before it.
struct Fold {
    layer: Ident,
    weight: ParamRef,
    bias: ParamRef,
    eps: f64,
}

/// One int8 weight of the quantized model: `__q[i]`.
struct Entry {
    weight: ParamRef,
    /// The convolution's own bias (read only when folding).
    conv_bias: Option<ParamRef>,
    fold: Option<Fold>,
}

impl Entry {
    /// The name a folded batch norm's bias is saved under: the convolution's bias name.
    fn bias_name(&self) -> String {
        match &self.conv_bias {
            Some(b) => b.name.clone(),
            None => match self.weight.name.strip_suffix(".weight") {
                Some(layer) => format!("{layer}.bias"),
                None => format!("{}_bias", self.weight.name),
            },
        }
    }
}

/// What the int8 forward of every fn does, node by node.
struct Plan {
    entries: Vec<Entry>,
    /// `(fn, node)` of a dense or convolution node computed in int8: its entry.
    quantized: HashMap<(usize, NodeId), usize>,
    /// `(fn, batch-norm node)` that runs a folded convolution: `(conv node, entry)`.
    folded_bn: HashMap<(usize, NodeId), (NodeId, usize)>,
    /// Parameters and buffers no emitted code reads: neither kept in the file nor loaded.
    unread: Vec<String>,
}

fn roots(g: &Graph) -> Vec<NodeId> {
    let mut root: Vec<NodeId> = (0..g.nodes.len()).collect();
    for (id, node) in g.nodes.iter().enumerate() {
        if node.op.is_alias() {
            root[id] = root[node.inputs[0]];
        }
    }
    root
}

/// The parameter at node `id` (through reshapes), if it is one.
fn param_at(g: &Graph, root: &[NodeId], id: NodeId) -> Option<ParamRef> {
    let r = root[id];
    match &g.nodes[r].op {
        Op::Param { field, sub } => {
            let name = std::iter::once(field.to_string())
                .chain(sub.iter().map(|s| s.to_string()))
                .collect::<Vec<_>>()
                .join(".");
            let shape = sample_dims(&g.nodes[r].shape);
            Some(ParamRef {
                path: param_path(field, sub),
                name,
                shape,
            })
        }
        _ => None,
    }
}

impl Plan {
    /// Whether node `id` of fn `fi` is a convolution that its batch norm runs.
    fn is_folded_conv(&self, fi: usize, id: NodeId) -> bool {
        self.folded_bn
            .iter()
            .any(|(&(ffi, _), &(c, _))| ffi == fi && c == id)
    }

    fn new(fns: &[FnModel]) -> Plan {
        // every use of every parameter: (fn, node, input position)
        let mut uses: HashMap<String, Vec<(usize, NodeId, usize)>> = HashMap::new();
        let mut all_params: Vec<String> = Vec::new();
        let mut bn_layers: Vec<String> = Vec::new();
        for (fi, f) in fns.iter().enumerate() {
            let root = roots(&f.graph);
            for (id, node) in f.graph.nodes.iter().enumerate() {
                if let Some(p) = param_at(&f.graph, &root, id).filter(|_| root[id] == id) {
                    if !all_params.contains(&p.name) {
                        all_params.push(p.name);
                    }
                }
                if let Op::BatchNorm2d { layer, .. } = &node.op {
                    if !bn_layers.contains(&layer.to_string()) {
                        bn_layers.push(layer.to_string());
                    }
                }
                for (j, &i) in node.inputs.iter().enumerate() {
                    if let Some(p) = param_at(&f.graph, &root, i) {
                        if !node.op.is_alias() {
                            uses.entry(p.name).or_default().push((fi, id, j));
                        }
                    }
                }
            }
        }
        let is_weight_op = |fi: usize, id: NodeId| {
            matches!(
                fns[fi].graph.nodes[id].op,
                Op::Dense { .. } | Op::Conv2d { .. }
            )
        };
        let weight_only = |name: &str| {
            uses.get(name)
                .is_some_and(|u| u.iter().all(|&(fi, id, j)| j == 1 && is_weight_op(fi, id)))
        };

        // candidates, then folds that hold in every fn
        let mut plan = Plan {
            entries: Vec::new(),
            quantized: HashMap::new(),
            folded_bn: HashMap::new(),
            unread: Vec::new(),
        };
        // (fn, conv node) -> batch-norm node, for convolutions whose only user is one
        let mut fold_at: HashMap<(usize, NodeId), NodeId> = HashMap::new();
        // weight name -> whether every node of it folds the same batch norm
        let mut fold_ok: HashMap<String, Option<String>> = HashMap::new();
        for (fi, f) in fns.iter().enumerate() {
            let g = &f.graph;
            let root = roots(g);
            for (id, node) in g.nodes.iter().enumerate() {
                if !is_weight_op(fi, id) {
                    continue;
                }
                let Some(w) = param_at(g, &root, node.inputs[1]) else {
                    continue;
                };
                if !weight_only(&w.name) {
                    continue;
                }
                let bn = if matches!(node.op, Op::Conv2d { .. }) {
                    let users: Vec<NodeId> = g
                        .nodes
                        .iter()
                        .enumerate()
                        .filter(|(_, n)| n.inputs.iter().any(|&i| root[i] == id))
                        .map(|(u, _)| u)
                        .collect();
                    match users[..] {
                        [u] if root[g.output] != id
                            && g.nodes[u].inputs[0] == id
                            && matches!(g.nodes[u].op, Op::BatchNorm2d { .. }) =>
                        {
                            Some(u)
                        }
                        _ => None,
                    }
                } else {
                    None
                };
                let bn_name = bn.map(|u| match &g.nodes[u].op {
                    Op::BatchNorm2d { layer, .. } => layer.to_string(),
                    _ => String::new(),
                });
                // the convolution's bias must feed only this layer's convolutions
                let bias_ok = match node.inputs.get(2).and_then(|&b| param_at(g, &root, b)) {
                    Some(b) => uses.get(&b.name).is_some_and(|u| {
                        u.iter().all(|&(ufi, uid, j)| {
                            let un = &fns[ufi].graph.nodes[uid];
                            let ur = roots(&fns[ufi].graph);
                            j == 2
                                && matches!(un.op, Op::Conv2d { .. })
                                && param_at(&fns[ufi].graph, &ur, un.inputs[1])
                                    .is_some_and(|p| p.name == w.name)
                        })
                    }),
                    None => true,
                };
                let bn_name = bn_name.filter(|_| bias_ok);
                match fold_ok.get(&w.name) {
                    Some(prev) if *prev != bn_name => {
                        fold_ok.insert(w.name.clone(), None);
                    }
                    Some(_) => {}
                    None => {
                        fold_ok.insert(w.name.clone(), bn_name.clone());
                    }
                }
                if let (Some(u), true) = (bn, bias_ok) {
                    fold_at.insert((fi, id), u);
                }
            }
        }
        for (fi, f) in fns.iter().enumerate() {
            let g = &f.graph;
            let root = roots(g);
            for (id, node) in g.nodes.iter().enumerate() {
                if !is_weight_op(fi, id) {
                    continue;
                }
                let Some(w) = param_at(g, &root, node.inputs[1]) else {
                    continue;
                };
                let Some(folds) = fold_ok.get(&w.name) else {
                    continue;
                };
                let fold = folds
                    .as_ref()
                    .and_then(|_| fold_at.get(&(fi, id)))
                    .and_then(|&u| match &g.nodes[u].op {
                        Op::BatchNorm2d { layer, eps, .. } => Some((
                            u,
                            Fold {
                                layer: layer.clone(),
                                weight: param_at(g, &root, g.nodes[u].inputs[1])?,
                                bias: param_at(g, &root, g.nodes[u].inputs[2])?,
                                eps: *eps,
                            },
                        )),
                        _ => None,
                    });
                let e = match plan.entries.iter().position(|e| e.weight.name == w.name) {
                    Some(e) => e,
                    None => {
                        let conv_bias = if matches!(node.op, Op::Conv2d { bias: true, .. }) {
                            param_at(g, &root, node.inputs[2])
                        } else {
                            None
                        };
                        plan.entries.push(Entry {
                            weight: w.clone(),
                            conv_bias,
                            fold: fold.as_ref().map(|(_, f)| Fold {
                                layer: f.layer.clone(),
                                weight: f.weight.clone(),
                                bias: f.bias.clone(),
                                eps: f.eps,
                            }),
                        });
                        plan.entries.len() - 1
                    }
                };
                plan.quantized.insert((fi, id), e);
                if let Some((u, _)) = fold {
                    plan.folded_bn.insert((fi, u), (id, e));
                }
            }
        }

        // what the emitted code reads: every parameter input of a node that runs in f32,
        // the bias of an int8 dense or unfolded convolution, and the running statistics of
        // a batch norm that runs in f32
        let mut read: Vec<String> = Vec::new();
        for (fi, f) in fns.iter().enumerate() {
            let g = &f.graph;
            let root = roots(g);
            for (id, node) in g.nodes.iter().enumerate() {
                if node.op.is_alias() {
                    continue;
                }
                let folded_conv = plan.is_folded_conv(fi, id);
                let inputs: Vec<usize> = if plan.folded_bn.contains_key(&(fi, id)) || folded_conv {
                    vec![]
                } else if plan.quantized.contains_key(&(fi, id)) {
                    vec![2]
                } else {
                    (0..node.inputs.len()).collect()
                };
                for j in inputs {
                    if let Some(p) = node.inputs.get(j).and_then(|&i| param_at(g, &root, i)) {
                        read.push(p.name);
                    }
                }
                if let Op::BatchNorm2d { layer, .. } = &node.op {
                    if !plan.folded_bn.contains_key(&(fi, id)) {
                        read.push(format!("{layer}.running_mean"));
                        read.push(format!("{layer}.running_var"));
                    }
                }
            }
        }
        let stats = bn_layers
            .iter()
            .flat_map(|l| [format!("{l}.running_mean"), format!("{l}.running_var")]);
        plan.unread = all_params
            .into_iter()
            .chain(stats)
            .filter(|n| !read.contains(n))
            .collect();
        plan
    }
}

/// The models used as layers (`blk: Block`, `h: [Block; N]`): their int8 layers follow this
/// model's own in `__q`, field by field and element by element, each model's
/// `__INT8_LAYERS` long.
struct Subs<'a> {
    own: usize,
    layers: Vec<(&'a Ident, &'a Ident, Option<usize>)>,
}

impl<'a> Subs<'a> {
    fn new(s: &'a StructModel, plan: &Plan) -> Self {
        let layers = s
            .layers
            .iter()
            .filter_map(|l| match &l.kind {
                LayerKind::Struct { ty, count, .. } => Some((&l.name, ty, *count)),
                _ => None,
            })
            .collect();
        Subs {
            own: plan.entries.len(),
            layers,
        }
    }

    /// `<Block<f32>>::__INT8_LAYERS`: the int8 layers of one element.
    fn count(ty: &impl quote::ToTokens) -> TokenStream {
        quote!(<#ty<f32>>::__INT8_LAYERS)
    }

    /// The int8 layers of this model and of every model it uses, as a constant expression.
    fn total(&self) -> TokenStream {
        let own = self.own;
        let subs = self.layers.iter().map(|(_, ty, n)| {
            let (c, n) = (Self::count(ty), n.unwrap_or(1));
            quote!(+ #c * #n)
        });
        quote!(#own #(#subs)*)
    }

    /// Where the int8 layers of `layer` (element `index`) start in `__q`, and its type.
    fn offset(&self, layer: &Ident, index: Option<usize>) -> (TokenStream, TokenStream) {
        let own = self.own;
        let mut terms = Vec::new();
        for (name, ty, n) in &self.layers {
            let c = Self::count(ty);
            if *name == layer {
                let i = index.unwrap_or(0);
                return (quote!(#own #(#terms)* + #c * #i), quote!(#ty));
            }
            let n = n.unwrap_or(1);
            terms.push(quote!(+ #c * #n));
        }
        // lowering only makes sub-model nodes of struct layers
        (quote!(#own), quote!(#layer))
    }
}

/// The int8 forward of fn `fi`: the float kernels, with int8 ones at the planned nodes.
fn int8_forward(gen: &GraphGen, plan: &Plan, subs: &Subs, fi: usize) -> TokenStream {
    let q = quote!(::nanograd::quant);
    let mut out = TokenStream::new();
    for id in 0..gen.g.nodes.len() {
        let node = &gen.g.nodes[id];
        let x = |j: usize| gen.value(node.inputs[j]);
        let y = gen.out(id);
        if let Some(&(conv, e)) = plan.folded_bn.get(&(fi, id)) {
            let cnode = &gen.g.nodes[conv];
            if let Op::Conv2d { geom, .. } = &cnode.op {
                let g = conv_geom(geom);
                let n = Size::of(gen.shape(cnode.inputs[0]))
                    .div(geom.c_in * geom.h * geom.w)
                    .tokens();
                let a = gen.value(cnode.inputs[0]);
                let qs = aux("qs", conv);
                out.extend(quote! {
                    #q::conv2d_int8(&#g, #a, &__q[#e], __q[#e].folded_bias(), #n, &mut *#qs, #y)?;
                });
            }
            continue;
        }
        if let Op::SubModel {
            layer,
            index,
            in_row,
            ..
        } = &node.op
        {
            // the model used as a layer runs its own int8 forward on its slice of `__q`
            let (off, ty) = subs.offset(layer, *index);
            let count = Subs::count(&ty);
            let nb = Size::of(gen.shape(node.inputs[0])).div(*in_row).tokens();
            let (a, path, qsub, packs) = (
                x(0),
                layer_path(layer, *index),
                aux("qsub", id),
                gen.sub_packs(id),
            );
            out.extend(quote! {
                #path.__layer_forward_int8(&__q[#off..][..#count], #nb, #a, #y, &mut *#qsub, &mut *__rng, #packs)?;
            });
            continue;
        }
        let Some(&e) = plan.quantized.get(&(fi, id)) else {
            out.extend(gen.forward_node(id));
            continue;
        };
        if plan.is_folded_conv(fi, id) {
            continue; // its batch norm runs it
        }
        let qs = aux("qs", id);
        match &node.op {
            Op::Dense { bias } => {
                let ins = gen.shape(node.inputs[0]);
                let in_f = ins.last().unwrap_or(1);
                let out_f = gen.shape(node.inputs[1]).fixed_at(0).unwrap_or(1);
                let rows = Size::of(ins).div(in_f).tokens();
                let a = x(0);
                let b = if *bias {
                    let b = x(2);
                    quote!(Some(#b))
                } else {
                    quote!(None)
                };
                out.extend(quote! {
                    #q::dense_int8(#a, &__q[#e], #b, #rows, #in_f, #out_f, #y, &mut *#qs)?;
                });
            }
            Op::Conv2d { geom, bias } => {
                let g = conv_geom(geom);
                let n = Size::of(gen.shape(node.inputs[0]))
                    .div(geom.c_in * geom.h * geom.w)
                    .tokens();
                let a = x(0);
                let b = if *bias {
                    let b = x(2);
                    quote!(Some(#b))
                } else {
                    quote!(None)
                };
                out.extend(quote! {
                    #q::conv2d_int8(&#g, #a, &__q[#e], #b, #n, &mut *#qs, #y)?;
                });
            }
            _ => out.extend(gen.forward_node(id)),
        }
    }
    out
}

/// The int8 kernels' scratch regions of fn `fi`, carved after the float ones.
fn scratch_regions(gen: &GraphGen, plan: &Plan, fi: usize) -> Vec<(Ident, Size)> {
    let mut regions = Vec::new();
    for id in 0..gen.g.nodes.len() {
        if !plan.quantized.contains_key(&(fi, id)) {
            continue;
        }
        let node = &gen.g.nodes[id];
        let size = match &node.op {
            Op::Dense { .. } => {
                let ins = gen.shape(node.inputs[0]);
                let in_f = ins.last().unwrap_or(1);
                // the runtime's `dense_int8_scratch_len`
                Size::of(ins).div(in_f).times(in_f.div_ceil(4) + 1)
            }
            Op::Conv2d { geom, .. } => {
                // the runtime's `conv2d_int8_scratch_len`
                let k4 = (geom.c_in * geom.kh * geom.kw).div_ceil(4) * 4;
                let ohw = geom.out_h() * geom.out_w();
                Size::fixed((geom.c_in * geom.h * geom.w).div_ceil(4) + ohw * k4 / 4)
            }
            _ => continue,
        };
        regions.push((aux("qs", id), size));
    }
    regions
}

/// The workspace of models used as layers in fn `fi`'s int8 forward: each gets
/// `<Block<f32>>::__int8_layer_ws_len(rows)` elements.
fn sub_regions(gen: &GraphGen, subs: &Subs) -> Vec<(Ident, TokenStream)> {
    let mut regions = Vec::new();
    for (id, node) in gen.g.nodes.iter().enumerate() {
        if let Op::SubModel {
            layer,
            index,
            in_row,
            ..
        } = &node.op
        {
            let (_, ty) = subs.offset(layer, *index);
            let nb = Size::of(gen.shape(node.inputs[0])).div(*in_row).tokens();
            regions.push((
                aux("qsub", id),
                quote!(<#ty<f32>>::__int8_layer_ws_len(#nb)),
            ));
        }
    }
    regions
}

/// The int8 forward of fn `fi` over a workspace slice `__ws`: its length in elements (an
/// expression of `__b`), and the code that carves `__ws` (the float regions, then the int8
/// kernels' scratch, then the workspaces of models used as layers) and runs the graph.
struct Int8Body {
    len: TokenStream,
    code: TokenStream,
}

fn int8_body(gen: &GraphGen, plan: &Plan, subs: &Subs, fi: usize) -> Int8Body {
    let float_total = gen.total();
    let scratch = scratch_regions(gen, plan, fi);
    let sub_ws = sub_regions(gen, subs);
    let q_total = scratch.iter().fold(Size::default(), |acc, (_, s)| Size {
        b: acc.b + s.b,
        f: acc.f + s.f,
    });
    let fixed = Size {
        b: float_total.b + q_total.b,
        f: float_total.f + q_total.f,
    }
    .tokens();
    let sub_lens = sub_ws.iter().map(|(_, len)| len);
    let len = quote!(#fixed #(+ #sub_lens)*);
    let float_total = float_total.tokens();
    let q_carve = scratch.iter().map(|(n, size)| {
        let len = size.tokens();
        quote! { let (#n, __qws) = __qws.split_at_mut(#len); }
    });
    let sub_carve = sub_ws.iter().map(|(n, len)| {
        quote! { let (#n, __qws) = __qws.split_at_mut(#len); }
    });
    let (carve, consts, body) = (gen.carve(), gen.consts(), int8_forward(gen, plan, subs, fi));
    let code = quote! {
        let (__ws, __qws) = __ws.split_at_mut(#float_total);
        #carve
        #(#q_carve)*
        #(#sub_carve)*
        let _ = __qws;
        #consts
        #body
    };
    Int8Body { len, code }
}

/// The parameter type of an input, in f32: `&[[f32; 784]]`, `&[f32; 3]`, `f32`.
pub(super) fn input_type_f32(s: &Shape, index: bool) -> TokenStream {
    let elem = if index { quote!(u32) } else { quote!(f32) };
    let t = array_type_of(&sample_dims(s), elem);
    if s.is_batched() {
        quote!(&[#t])
    } else if s.is_scalar() {
        quote!(f32)
    } else {
        quote!(&#t)
    }
}

/// The public methods of fn `fi` on the quantized type, and the hidden int8 body on the
/// float model that they call.
fn fn_methods(
    s: &StructModel,
    f: &FnModel,
    fi: usize,
    plan: &Plan,
    subs: &Subs,
) -> (TokenStream, TokenStream) {
    let FnModel {
        attrs,
        name,
        inputs,
        ret,
        graph,
        ..
    } = f;
    let vis = method_vis(f, s);
    let model = format!("{}Int8", s.name);
    let args: Vec<TokenStream> = inputs
        .iter()
        .enumerate()
        .map(|(i, (n, sh))| {
            let t = input_type_f32(sh, f.is_index(i));
            quote!(#n: #t)
        })
        .collect();
    let arg_names: Vec<&Ident> = inputs.iter().map(|(n, _)| n).collect();
    let bind = bind_inputs(&model, f);
    let into_name = format_ident!("{}_into", name);
    let hidden = format_ident!("__int8_{}_into", name);

    let fwd = GraphGen::new(graph, Mode::Infer, false, false);
    let Int8Body { len: total, code } = int8_body(&fwd, plan, subs, fi);
    let split = split_workspace(&total, fwd.pack_slots());
    let result = fwd.value(graph.output);

    let Returns {
        into_sig,
        into_tail,
        into_ret,
        plain_ret,
        plain_body,
    } = returns(&model, f, &into_name, quote!(f32), &result);
    // the allocating form's zero values are written `T::zero()`
    let plain_body = if ret.is_scalar() {
        plain_body
    } else {
        quote! {
            #[allow(unused_imports)]
            use ::nanograd::Float as _;
            type T = f32;
            #plain_body
        }
    };
    let out_arg = if ret.is_scalar() {
        quote!()
    } else {
        quote!(out,)
    };
    let doc = "Like the method without `_into`, computing in `ws`: no allocation once `ws` has grown to the largest batch seen.";
    let public = quote! {
        #(#attrs)*
        #[allow(clippy::all)]
        #vis fn #name(&self, #(#args),*) -> ::nanograd::Result<#plain_ret> {
            #plain_body
        }

        #[doc = #doc]
        #[allow(clippy::all)]
        #vis fn #into_name(&self, #(#args,)* #into_sig) -> ::nanograd::Result<#into_ret> {
            self.__float.#hidden(&self.__q, #(#arg_names,)* #out_arg ws)
        }
    };
    let hidden_fn = quote! {
        #[doc(hidden)]
        #[allow(dead_code, unused_mut, unused_variables, non_camel_case_types, clippy::all)]
        pub fn #hidden(&self, __q: &[::nanograd::quant::QuantizedLayer], #(#args,)* #into_sig)
            -> ::nanograd::Result<#into_ret>
        {
            #[allow(unused_imports)]
            use ::nanograd::Float as _;
            type T = f32;
            #bind
            #split
            #code
            #into_tail
        }
    };
    (public, hidden_fn)
}

pub fn expand(s: &StructModel, fns: &[FnModel]) -> TokenStream {
    let plan = Plan::new(fns);
    let subs = Subs::new(s, &plan);
    let (name, vis) = (&s.name, &s.vis);
    let qname = format_ident!("{}Int8", name, span = name.span());
    let model_name = qname.to_string();
    let (public, hidden): (Vec<_>, Vec<_>) = fns
        .iter()
        .enumerate()
        .map(|(fi, f)| fn_methods(s, f, fi, &plan, &subs))
        .unzip();

    let quantize = plan.entries.iter().map(|e| {
        let (w, shape) = (&e.weight.path, &e.weight.shape);
        match &e.fold {
            None => quote! {
                ::nanograd::quant::QuantizedLayer::new(#w.value(), &[#(#shape),*])?
            },
            Some(f) => {
                let (layer, gw, gb) = (&f.layer, &f.weight.path, &f.bias.path);
                let eps = f.eps as f32;
                let bias = match &e.conv_bias {
                    Some(b) => {
                        let p = &b.path;
                        quote!(Some(#p.value()))
                    }
                    None => quote!(None),
                };
                quote! {
                    ::nanograd::quant::QuantizedLayer::conv2d_folding_bn(
                        #w.value(), &[#(#shape),*], #bias, #gw.value(), #gb.value(),
                        self.#layer.running_mean.data(), self.#layer.running_var.data(), #eps)?
                }
            }
        }
    });
    let sub_quantize = subs.layers.iter().map(|(l, _, n)| match n {
        Some(_) => quote! {
            for __e in self.#l.iter() { __e.__int8_quantize(__out)?; }
        },
        None => quote! { self.#l.__int8_quantize(__out)?; },
    });
    let own_names = plan.entries.iter().map(|e| {
        let (w, b, shape) = (&e.weight.name, e.bias_name(), &e.weight.shape);
        let folded = match &e.fold {
            Some(f) => {
                let l = f.layer.to_string();
                quote!(Some(#l))
            }
            None => quote!(None),
        };
        quote! {
            __out.push(::nanograd::quant::Int8Name::new(__prefix, #w, #b, &[#(#shape),*], #folded));
        }
    });
    let sub_walk = |f: TokenStream| {
        let walks = subs.layers.iter().map(|(l, ty, n)| {
            let ls = l.to_string();
            match n {
                Some(n) => quote! {
                    for __i in 0..#n {
                        <#ty<f32>>::#f(&::nanograd::quant::sub_prefix(__prefix, #ls, Some(__i)), __out);
                    }
                },
                None => quote! {
                    <#ty<f32>>::#f(&::nanograd::quant::sub_prefix(__prefix, #ls, None), __out);
                },
            }
        });
        quote!(#(#walks)*)
    };
    let sub_names = sub_walk(quote!(__int8_names));
    let sub_unread = sub_walk(quote!(__int8_unread));
    let unread = &plan.unread;
    let total = subs.total();
    let layer_int8 = layer_forward_int8(s, fns, &plan, &subs);

    let q_doc = format!(
        "`{name}` with int8 dense and convolution weights (one scale per output channel), those of the models it uses as layers included, made by [`{name}::quantize_int8`] or loaded by `{qname}::load_safetensors`. Activations entering those layers are quantized on every call, one scale per row (per image for a convolution); every other op runs in f32. Same methods as `{name}`'s fns, on f32 inputs and outputs."
    );
    let quantize_doc = "This model for int8 inference: dense and convolution weights quantized per output channel (symmetric, `s = max|w| / 127`), those of the models used as layers too, batch norms that follow a convolution folded into it, everything else kept in f32. Errors if a weight is not finite.";
    quote! {
        #[doc = #q_doc]
        #[derive(Clone, Debug)]
        #vis struct #qname {
            __float: #name<f32>,
            __q: ::nanograd::__private::Vec<::nanograd::quant::QuantizedLayer>,
        }

        impl<T: ::nanograd::Float> #name<T> {
            #[doc = #quantize_doc]
            #[allow(dead_code)]
            #vis fn quantize_int8(&self) -> ::nanograd::Result<#qname> {
                let mut __f = #name::<f32>::new(&mut <::nanograd::rand::rngs::StdRng as ::nanograd::rand::SeedableRng>::seed_from_u64(0));
                ::nanograd::quant::copy_to_f32(self, &mut __f)?;
                ::nanograd::Module::<f32>::set_training_mode(&mut __f, false);
                let mut __q = ::nanograd::__private::Vec::with_capacity(<#name<f32>>::__INT8_LAYERS);
                __f.__int8_quantize(&mut __q)?;
                Ok(#qname { __float: __f, __q })
            }
        }

        #[allow(dead_code)]
        impl #name<f32> {
            #(#hidden)*

            /// The int8 layers of this model and of the models it uses as layers.
            #[doc(hidden)]
            pub const __INT8_LAYERS: usize = #total;

            /// Quantizes this model's dense and convolution weights, then those of the
            /// models it uses as layers, in the order of `__int8_names`.
            #[doc(hidden)]
            pub fn __int8_quantize(
                &self,
                __out: &mut ::nanograd::__private::Vec<::nanograd::quant::QuantizedLayer>,
            ) -> ::nanograd::Result<()> {
                #(__out.push(#quantize);)*
                #(#sub_quantize)*
                Ok(())
            }

            /// The file names of the int8 layers, under `__prefix`.
            #[doc(hidden)]
            pub fn __int8_names(
                __prefix: &str,
                __out: &mut ::nanograd::__private::Vec<::nanograd::quant::Int8Name>,
            ) {
                #(#own_names)*
                #sub_names
            }

            /// The tensors that stay f32 and are not saved, under `__prefix`: the float
            /// weights replaced by int8 ones, and the batch norms folded into convolutions.
            #[doc(hidden)]
            pub fn __int8_unread(
                __prefix: &str,
                __out: &mut ::nanograd::__private::Vec<::nanograd::__private::String>,
            ) {
                ::nanograd::quant::push_prefixed(__out, __prefix, &[#(#unread),*]);
                #sub_unread
            }

            #layer_int8
        }

        #[allow(dead_code)]
        impl #qname {
            #(#public)*

            fn __names() -> ::nanograd::__private::Vec<::nanograd::quant::Int8Name> {
                let mut __out = ::nanograd::__private::Vec::new();
                <#name<f32>>::__int8_names("", &mut __out);
                __out
            }

            fn __unread() -> ::nanograd::__private::Vec<::nanograd::__private::String> {
                let mut __out = ::nanograd::__private::Vec::new();
                <#name<f32>>::__int8_unread("", &mut __out);
                __out
            }

            /// The int8 weights, one line each (`fc1.weight`, `conv1.weight (with bn1 folded
            /// in)`, `h.0.fc.weight` in a model used as a layer).
            #vis fn int8_weights(&self) -> ::nanograd::__private::Vec<::nanograd::__private::String> {
                Self::__names().iter().map(|n| n.summary()).collect()
            }

            /// The quantized layers, in the order of [`Self::int8_weights`].
            #vis fn quantized_layers(&self) -> &[::nanograd::quant::QuantizedLayer] {
                &self.__q
            }

            /// The f32 model whose other tensors this one uses (in evaluation mode).
            #vis fn float_part(&self) -> &#name<f32> {
                &self.__float
            }
        }

        impl ::nanograd::quant::QuantizedSafetensors for #qname {
            fn to_safetensors_bytes(&self) -> ::nanograd::Result<::nanograd::__private::Vec<u8>> {
                let __unread = Self::__unread();
                let __skip: ::nanograd::__private::Vec<&str> = __unread.iter().map(|n| n.as_str()).collect();
                let mut __t = ::nanograd::quant::QuantizedTensors::new();
                __t.push_float_model(&self.__float, &__skip);
                for (__n, __l) in Self::__names().iter().zip(&self.__q) {
                    __t.push_layer(&__n.weight, &__n.bias, __l);
                }
                __t.to_bytes()
            }

            fn from_safetensors_bytes_of(bytes: &[u8], origin: &::nanograd::quant::Origin) -> ::nanograd::Result<Self> {
                let mut __f = #name::<f32>::new(&mut <::nanograd::rand::rngs::StdRng as ::nanograd::rand::SeedableRng>::seed_from_u64(0));
                ::nanograd::Module::<f32>::set_training_mode(&mut __f, false);
                let __unread = Self::__unread();
                let __skip: ::nanograd::__private::Vec<&str> = __unread.iter().map(|n| n.as_str()).collect();
                let __names = Self::__names();
                let mut __file = ::nanograd::quant::QuantizedFile::parse(bytes, origin)?;
                let __staged = __file.stage_float_model(&__f, &__skip);
                let __q: ::nanograd::__private::Vec<_> = __names
                    .iter()
                    .map(|__n| __file.layer(&__n.weight, &__n.shape, &__n.bias, __n.folded.is_some()))
                    .collect();
                __file.finish()?;
                ::nanograd::quant::QuantizedFile::commit_float_model(&mut __f, &__staged);
                let __q = __q.into_iter().flatten().collect::<::nanograd::__private::Vec<_>>();
                ::nanograd::check_len(#model_name, "int8 layers", __names.len(), __q.len())?;
                Ok(Self { __float: __f, __q })
            }
        }
    }
}

/// What lets a model that uses this one as a layer run it in int8, when it has `fn forward`
/// of one input (as `model::layer_api`): the forward over flat slices with this model's
/// slice of the int8 layers, and the workspace it needs.
///
/// ```text
/// impl Block<f32> {
///     pub fn __layer_forward_int8(&self, __q: &[QuantizedLayer], __b: usize, __x0: &[f32],
///                                 __y: &mut [f32], __ws: &mut [f32], __rng, __packs) -> Result<()>;
///     pub const fn __int8_layer_ws_len(__b: usize) -> usize;
/// }
/// ```
fn layer_forward_int8(s: &StructModel, fns: &[FnModel], plan: &Plan, subs: &Subs) -> TokenStream {
    let Some(fi) = fns
        .iter()
        .position(|f| f.name == "forward" && f.inputs.len() == 1 && !f.is_index(0))
    else {
        return quote!();
    };
    let graph = &fns[fi].graph;
    let gen = GraphGen::new(graph, Mode::Infer, false, false);
    let Int8Body { len, code } = int8_body(&gen, plan, subs, fi);
    let out = gen.value(graph.output);
    let name = &s.name;
    quote! {
        #[doc(hidden)]
        #[allow(dead_code, unused_mut, unused_variables, clippy::all)]
        pub fn __layer_forward_int8(
            &self, __q: &[::nanograd::quant::QuantizedLayer], __b: usize, __x0: &[f32],
            __y: &mut [f32], __ws: &mut [f32],
            __rng: &mut impl ::nanograd::rand::Rng,
            __packs: &mut [::nanograd::blas::PackedWeight<f32>],
        ) -> ::nanograd::Result<()> {
            #[allow(unused_imports)]
            use ::nanograd::Float as _;
            type T = f32;
            ::nanograd::check_len(stringify!(#name), "workspace", Self::__int8_layer_ws_len(__b), __ws.len())?;
            #code
            ::nanograd::check_len(stringify!(#name), "output", __y.len(), (#out).len())?;
            __y.copy_from_slice(#out);
            Ok(())
        }

        /// The workspace of `__layer_forward_int8` for `__b` rows, in f32 elements.
        #[doc(hidden)]
        #[allow(unused_variables, clippy::all)]
        pub const fn __int8_layer_ws_len(__b: usize) -> usize {
            #len
        }
    }
}
