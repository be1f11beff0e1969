//! The forward pass: one kernel call per node, in definition order.
//!
//! ```text
//! ::nanograd::ops::dense(__x0, self.fc1.weight.value(), Some(self.fc1.bias.value()),
//!                        __b, 784, 128, &mut *__v2)?;
//! ::nanograd::ops::relu(&*__v2, &mut *__v3)?;
//! ```

use proc_macro2::TokenStream;
use quote::{format_ident, quote};

use super::graph::{aux, layer_path, v, GraphGen, Mode, Size};
use crate::ir::{NodeId, Op};

impl GraphGen<'_> {
    /// The forward pass: one kernel call per node, in definition order.
    pub fn forward(&self) -> TokenStream {
        let mut out = TokenStream::new();
        for id in 0..self.g.nodes.len() {
            out.extend(self.forward_node(id));
        }
        out
    }

    pub(super) fn forward_node(&self, id: NodeId) -> TokenStream {
        let node = &self.g.nodes[id];
        let x = |j: usize| self.value(node.inputs[j]);
        let y = self.out(id);
        let ops = quote!(::nanograd::ops);
        let ins = |j: usize| self.shape(node.inputs[j]);
        let last = |j: usize| ins(j).last().unwrap_or(1);
        let rows = |j: usize, cols: usize| Size::of(ins(j)).div(cols).tokens();
        let yn = v(id);
        match &node.op {
            Op::Input(_) | Op::IndexInput(_) | Op::Param { .. } | Op::Const(_) | Op::Reshape => {
                quote!()
            }
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
            Op::BatchedMatMul => {
                let (batch, m, k, n) = self.batched_dims(id);
                let (a, b) = (x(0), x(1));
                quote! { #ops::batched_matmul(#a, #b, #batch, #m, #k, #n, #y)?; }
            }
            Op::Transpose { a, b } => {
                let (xv, shape) = (x(0), self.shape_tokens(node.inputs[0]));
                quote! { #ops::transpose(#xv, &#shape, #a, #b, #y)?; }
            }
            Op::Concat { dim } => {
                let (outer, ai, bi) = self.concat_dims(id, *dim);
                let (a, b) = (x(0), x(1));
                quote! { #ops::concat(#a, #b, #outer, #ai, #bi, #y)?; }
            }
            Op::CausalMask => {
                let (a, t) = (x(0), last(0));
                quote! { #ops::causal_mask(#a, #t, #y)?; }
            }
            Op::Attention { causal } => {
                let (groups, tq, tk, d, dv) = self.attention_dims(id);
                let groups = groups.tokens();
                let (q, k, vv) = (x(0), x(1), x(2));
                let (lse, scr) = (aux("lse", id), aux("scr", id));
                quote! {
                    #ops::attention(#q, #k, #vv, #groups, #tq, #tk, #d, #dv, #causal, #y,
                        &mut *#lse, &mut *#scr)?;
                }
            }
            Op::MhaAttention { heads, causal } => {
                let (n, t, c) = self.mha_dims(id);
                let n = n.tokens();
                let qkv = x(0);
                let (lse, scr) = (aux("lse", id), aux("scr", id));
                quote! {
                    #ops::mha_attention(#qkv, #n, #t, #c, #heads, #causal, #y,
                        &mut *#lse, &mut *#scr)?;
                }
            }
            Op::Embedding => {
                let (ids, w) = (x(0), x(1));
                let (vocab, dim) = (ins(1).fixed_at(0).unwrap_or(1), last(1));
                quote! { #ops::embedding(#ids, #w, #vocab, #dim, #y)?; }
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
                if let Some((w, slot)) = self.packed_weight(id) {
                    quote! {
                        #ops::dense_cached(#a, #w, #b, #rows, #in_f, #out_f, #y, &mut __packs[#slot])?;
                    }
                } else if self.packs_per_call(id) {
                    let pk = aux("pk", id);
                    quote! {
                        #ops::dense_packing(#a, #w, #b, #rows, #in_f, #out_f, #y, &mut *#pk)?;
                    }
                } else {
                    quote! { #ops::dense(#a, #w, #b, #rows, #in_f, #out_f, #y)?; }
                }
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
            // written by the batch norm before it (codegen/fusion.rs)
            Op::Unary(_) if self.is_fused_relu(id) => quote!(),
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
            Op::SoftmaxCrossEntropyIndices => {
                let (p, t, cols) = (x(0), x(1), last(0));
                quote! { #yn[0] = #ops::softmax_cross_entropy_indices(#p, #t, #cols)?; }
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
                let call = quote! { #ops::#f(&#g, #a, #n, #y)?; };
                if self.is_fused_pool(id) {
                    // batch norm does it in a training step (codegen/fusion.rs)
                    quote! { if !self.__training { #call } }
                } else {
                    call
                }
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
                // writing the relu after it (codegen/fusion.rs), or its own output
                let fused = self.fused_relu(id);
                let (y, train_f) = match fused {
                    Some(r) => (self.out(r), quote!(batch_norm2d_train_relu)),
                    None => (y, quote!(batch_norm2d_train)),
                };
                let relu_after_eval = fused.map(|_| quote! { #ops::relu_in_place(#y); });
                let train = if self.mode == Mode::Train {
                    let rm = Self::bn_stat(layer, "running_mean", true);
                    let rv = Self::bn_stat(layer, "running_var", true);
                    match self.fused_pool(id) {
                        // the pooling too, the relu's region holding the winners
                        Some((p, pg)) => {
                            let (g, py) = (pool_geom(&pg), self.out(p));
                            quote! {
                                #ops::batch_norm2d_train_relu_max_pool2d(#a, #n, &#g, #w, #b,
                                    #eps, #mom, #rm, #rv, &mut *#sm, &mut *#si, #py,
                                    #ops::workspace_bytes_mut(#y))?;
                            }
                        }
                        None => quote! {
                            #ops::#train_f(#a, #n, #c, #hw, #w, #b, #eps, #mom,
                                #rm, #rv, &mut *#sm, &mut *#si, #y)?;
                        },
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
                        #relu_after_eval
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
            Op::SubModel {
                layer,
                index,
                in_row,
                ..
            } => {
                let (a, nb) = (x(0), rows(0, *in_row));
                let sub = aux("sub", id);
                let layer = layer_path(layer, *index);
                if self.mode == Mode::Train {
                    quote! { #layer.__layer_forward_train(#nb, #a, #y, &mut *#sub, &mut *__rng)?; }
                } else {
                    let packs = self.sub_packs(id);
                    quote! {
                        #layer.__layer_forward_infer(#nb, #a, #y, &mut *#sub, &mut *__rng, #packs)?;
                    }
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
}

pub(super) fn conv_geom(g: &crate::ir::ConvGeom) -> TokenStream {
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

pub(super) fn pool_geom(g: &crate::ir::PoolGeom) -> TokenStream {
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
