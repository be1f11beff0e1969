//! The backward pass: each node's `_backward` kernel, in reverse definition order. Kernels
//! accumulate into their inputs' gradients (the first writer of an intermediate gradient
//! overwrites it instead where its kernel can, see `GraphGen::first_write`); a parameter's
//! value and gradient are borrowed together, and a value passed twice to one op gets its
//! second gradient in a temporary:
//!
//! ```text
//! {
//!     let (__pv6, __pg6) = self.fc2.weight.value_and_grad_mut();
//!     let (__pv7, __pg7) = self.fc2.bias.value_and_grad_mut();
//!     ::nanograd::ops::dense_backward(&*__v5, __pv6, &*__g8, __b, 3, 2,
//!                                     Some(&mut *__g5), Some(&mut *__pg6), Some(&mut *__pg7))?;
//! }
//! ```

use std::collections::HashMap;

use proc_macro2::TokenStream;
use quote::{format_ident, quote};

use super::forward::{conv_geom, pool_geom};
use super::graph::{aux, layer_path, param_path, GraphGen, Size};
use crate::ir::{Binary, NodeId, Op};

impl GraphGen<'_> {
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
                let g = self.grad_region(id);
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
            Op::Param { field, sub } => {
                let path = param_path(field, sub);
                quote!(#path.grad_mut())
            }
            _ => self.grad_target(out),
        })
    }

    /// Every node's backward call, in reverse definition order.
    pub fn backward(&self) -> TokenStream {
        let mut out = TokenStream::new();
        for id in (0..self.g.nodes.len()).rev() {
            if self.needs_grad[id] && self.has_buffer(id) && !self.folded_relu[id] {
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
                let path = param_path(field, sub);
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
                if !self.needs_grad[i] || self.shares_grad(id, j) {
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
        let dyn_ = self.grad_region(id);
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
            Op::Input(_) | Op::IndexInput(_) | Op::Param { .. } | Op::Const(_) | Op::Reshape => {
                quote!()
            }
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
            Op::BatchedMatMul => {
                let (batch, m, k, n) = self.batched_dims(id);
                let (a, b, ga, gb) = (x(0), x(1), opt(0), opt(1));
                quote! { #ops::batched_matmul_backward(#a, #b, #dy, #batch, #m, #k, #n, #ga, #gb)?; }
            }
            Op::Transpose { a, b } => {
                let shape = self.shape_tokens(node.inputs[0]);
                plain(&|g| quote! { #ops::transpose_backward(#dy, &#shape, #a, #b, #g)?; })
            }
            Op::Concat { dim } => {
                let (outer, ai, bi) = self.concat_dims(id, *dim);
                let (ga, gb) = (opt(0), opt(1));
                quote! { #ops::concat_backward(#dy, #outer, #ai, #bi, #ga, #gb)?; }
            }
            Op::CausalMask => {
                let t = last(0);
                plain(&|g| quote! { #ops::causal_mask_backward(#dy, #t, #g)?; })
            }
            Op::Attention { causal } => {
                let (groups, tq, tk, d, dv) = self.attention_dims(id);
                let groups = groups.tokens();
                let (q, k, vv) = (x(0), x(1), x(2));
                let (gq, gk, gv) = (opt(0), opt(1), opt(2));
                let (lse, scr) = (aux("lse", id), aux("scr", id));
                quote! {
                    #ops::attention_backward(#q, #k, #vv, #y, &*#lse, #dy, #groups, #tq, #tk, #d, #dv,
                        #causal, #gq, #gk, #gv, &mut *#scr)?;
                }
            }
            Op::MhaAttention { heads, causal } => {
                let (n, t, c) = self.mha_dims(id);
                let n = n.tokens();
                let qkv = x(0);
                let (lse, scr) = (aux("lse", id), aux("scr", id));
                let f = if self.overwrites(id, 0) {
                    quote!(mha_attention_backward_overwrite)
                } else {
                    quote!(mha_attention_backward)
                };
                plain(&|g| {
                    quote! {
                        #ops::#f(#qkv, #y, &*#lse, #dy, #n, #t, #c, #heads,
                            #causal, #g, &mut *#scr)?;
                    }
                })
            }
            Op::Embedding => {
                let ids = x(0);
                let (vocab, dim) = (ins(1).fixed_at(0).unwrap_or(1), last(1));
                match &grads[1] {
                    Some(g) => quote! { #ops::embedding_backward(#ids, #dy, #vocab, #dim, #g)?; },
                    None => quote!(),
                }
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
                let f = if self.overwrites(id, 0) {
                    quote!(dense_backward_overwrite)
                } else {
                    quote!(dense_backward)
                };
                quote! { #ops::#f(#a, #w, #dy, #r, #in_f, #out_f, #ga, #gw, #gb)?; }
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
                let f = if self.overwrites(id, 0) {
                    format_ident!("{}_backward_overwrite", u.name())
                } else {
                    format_ident!("{}_backward", u.name())
                };
                let a = x(0);
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
            Op::SoftmaxCrossEntropyIndices => {
                let (p, t, cols) = (x(0), x(1), last(0));
                plain(&|g| {
                    quote! { #ops::softmax_cross_entropy_indices_backward(#p, #t, #cols, #dy0, #g)?; }
                })
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
                let (f, ga) = match self.through_relu(id, 0) {
                    Some(r) => {
                        let gh = self.grad_target(self.g.nodes[r].inputs[0]);
                        (quote!(conv2d_backward_through_relu), quote!(Some(#gh)))
                    }
                    None if self.overwrites(id, 0) => (quote!(conv2d_backward_overwrite), ga),
                    None => (quote!(conv2d_backward), ga),
                };
                // the forward pass of this node left x's columns in its workspace
                quote! {
                    #ops::#f(&#g, #a, #w, #dy, #n, &mut *#cols,
                        #ops::Conv2dCols::Kept, #ga, #gw, #gb)?;
                }
            }
            Op::MaxPool2d(pg) => {
                let g = pool_geom(pg);
                let n = rows(0, pg.c * pg.h * pg.w);
                let a = x(0);
                match self.through_relu(id, 0) {
                    Some(r) => {
                        let gh = self.grad_target(self.g.nodes[r].inputs[0]);
                        let call = quote! {
                            #ops::max_pool2d_backward_through_relu(&#g, #a, #y, #dy, #n, #gh)?;
                        };
                        if self.is_fused_pool(id) {
                            // batch norm does it in a training step (`fusion.rs`)
                            quote! { if !self.__training { #call } }
                        } else {
                            call
                        }
                    }
                    None => {
                        let f = if self.overwrites(id, 0) {
                            quote!(max_pool2d_backward_overwrite)
                        } else {
                            quote!(max_pool2d_backward)
                        };
                        plain(&|gx| quote! { #ops::#f(&#g, #a, #y, #dy, #n, #gx)?; })
                    }
                }
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
                match self.through_relu(id, 0) {
                    Some(r) => {
                        let (a, gh) = (x(0), self.grad_target(self.g.nodes[r].inputs[0]));
                        quote! {
                            #ops::global_avg_pool2d_backward_through_relu(#a, #dy, #n, #c, #hw, #gh)?;
                        }
                    }
                    None => {
                        let f = if self.overwrites(id, 0) {
                            quote!(global_avg_pool2d_backward_overwrite)
                        } else {
                            quote!(global_avg_pool2d_backward)
                        };
                        plain(&|g| quote! { #ops::#f(#dy, #n, #c, #hw, #g)?; })
                    }
                }
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
                let (train, eval) = if self.overwrites(id, 0) {
                    (
                        quote!(batch_norm2d_train_backward_overwrite),
                        quote!(batch_norm2d_eval_backward_overwrite),
                    )
                } else {
                    (
                        quote!(batch_norm2d_train_backward),
                        quote!(batch_norm2d_eval_backward),
                    )
                };
                let train = match self.fused_pool(id) {
                    // the pooling's backward pass too, from the winners (`fusion.rs`)
                    Some((p, pg)) => {
                        let f = if self.overwrites(id, 0) {
                            quote!(batch_norm2d_train_relu_max_pool2d_backward_overwrite)
                        } else {
                            quote!(batch_norm2d_train_relu_max_pool2d_backward)
                        };
                        let g = pool_geom(&pg);
                        let relu = self.value(self.g.nodes[p].inputs[0]);
                        let pdy = self.grad_region(p);
                        quote! {
                            #ops::#f(#a, #n, &#g, #w, &*#sm, &*#si,
                                #ops::workspace_bytes(#relu), &*#pdy, #ga, #gw, #gb)?;
                        }
                    }
                    None => quote! {
                        #ops::#train(#a, #n, #c, #hw, #w, &*#sm, &*#si, #dy, #ga, #gw, #gb)?;
                    },
                };
                quote! {
                    if self.__training {
                        #train
                    } else {
                        #ops::#eval(#a, #n, #c, #hw, #w, #rm, #rv, #eps, #dy, #ga, #gw, #gb)?;
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
            Op::SubModel {
                layer,
                index,
                in_row,
                ..
            } => {
                let (a, nb, ga) = (x(0), rows(0, *in_row), opt(0));
                let sub = aux("sub", id);
                let layer = layer_path(layer, *index);
                quote! { #layer.__layer_backward(#nb, #a, #dy, #ga, &mut *#sub)?; }
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
