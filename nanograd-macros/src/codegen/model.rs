//! The struct form: a model with layers, its fns as methods.
//!
//! ```text
//! pub struct Mlp { fc1: Dense(784 -> 128), fc2: Dense(128 -> 10) }
//! fn forward(x: [B, 784]) -> [B, 10] { fc2(relu(fc1(x))) }
//! fn loss(x: [B, 784], t: [B, 10]) -> [] { softmax_cross_entropy(forward(x), t) }
//! ```
//! expands to
//! ```text
//! #[derive(Clone, Debug)]
//! pub struct Mlp<T: Float = f32> { pub fc1: Dense<T>, pub fc2: Dense<T>, /* mode, workspace */ }
//! impl<T: Float> Mlp<T> {
//!     pub fn new(rng: &mut impl Rng) -> Self;
//!     pub fn forward(&self, x: &[[T; 784]]) -> Result<Vec<[T; 10]>>;
//!     pub fn forward_into(&self, x: &[[T; 784]], out: &mut [[T; 10]], ws: &mut Workspace<T>) -> Result<()>;
//!     pub fn loss(&self, x: &[[T; 784]], t: &[[T; 10]]) -> Result<T>;
//!     pub fn loss_into(&self, x: .., t: .., ws: &mut Workspace<T>) -> Result<T>;
//!     pub fn loss_backward(&mut self, x: .., t: ..) -> Result<T>;   // accumulates every gradient
//! }
//! impl<T: Float> Module<T> for Mlp<T> { .. }
//! ```

use std::collections::HashMap;

use proc_macro2::{Ident, TokenStream};
use quote::{format_ident, quote};
use syn::Visibility;

use super::graph::{GraphGen, Mode};
use super::{array_type, array_zero, flatten_mut};
use crate::ast::{DimSyn, FnDef, StructDef};
use crate::lower::{FnModel, Init, Layer, LayerKind, StructModel};
use crate::shape::Shape;

/// The field type of a layer.
fn layer_type(kind: &LayerKind) -> TokenStream {
    match kind {
        LayerKind::Dense { .. } => quote!(::nanograd::layers::Dense<T>),
        LayerKind::Conv2d { .. } => quote!(::nanograd::layers::Conv2d<T>),
        LayerKind::BatchNorm2d { .. } => quote!(::nanograd::layers::BatchNorm2d<T>),
        LayerKind::MaxPool2d(_) => quote!(::nanograd::layers::MaxPool2d),
        LayerKind::AvgPool2d(_) => quote!(::nanograd::layers::AvgPool2d),
        LayerKind::Dropout { .. } => quote!(::nanograd::layers::Dropout),
        LayerKind::Embedding { .. } => quote!(::nanograd::layers::Embedding<T>),
        LayerKind::LayerNorm { .. } => quote!(::nanograd::layers::LayerNorm<T>),
        LayerKind::MultiHeadAttention { .. } => {
            quote!(::nanograd::layers::MultiHeadAttention<T>)
        }
        LayerKind::Param { .. } => quote!(::nanograd::Param<T>),
        LayerKind::Struct {
            ty, count: None, ..
        } => quote!(#ty<T>),
        LayerKind::Struct {
            ty, count: Some(n), ..
        } => quote!([#ty<T>; #n]),
    }
}

/// The expression that builds a layer in `new`.
fn layer_new(l: &Layer) -> TokenStream {
    let what = format!("nanograd: model! validated the layer `{}`", l.name);
    let layers = quote!(::nanograd::layers);
    match &l.kind {
        LayerKind::Dense { in_f, out_f, bias } => {
            let ctor = if *bias {
                quote!(new)
            } else {
                quote!(without_bias)
            };
            quote!(#layers::Dense::#ctor(#in_f, #out_f, rng).expect(#what))
        }
        LayerKind::Conv2d {
            c_in,
            c_out,
            kernel,
            stride,
            padding,
            bias,
        } => {
            let ctor = if *bias {
                quote!(new)
            } else {
                quote!(without_bias)
            };
            quote!(#layers::Conv2d::#ctor(#c_in, #c_out, #kernel, #stride, #padding, rng).expect(#what))
        }
        LayerKind::BatchNorm2d { c, eps, momentum } => quote! {{
            let mut __l = #layers::BatchNorm2d::new(#c).expect(#what);
            __l.set_eps(#eps).expect(#what);
            __l.set_momentum(#momentum).expect(#what);
            __l
        }},
        LayerKind::MaxPool2d(p) => {
            let (k, s) = (p.kernel, p.stride);
            quote!(#layers::MaxPool2d::new(#k, #s).expect(#what))
        }
        LayerKind::AvgPool2d(p) => {
            let (k, s) = (p.kernel, p.stride);
            quote!(#layers::AvgPool2d::new(#k, #s).expect(#what))
        }
        LayerKind::Dropout { p } => quote!(#layers::Dropout::new(#p).expect(#what)),
        LayerKind::Embedding { vocab, dim } => {
            quote!(#layers::Embedding::new(#vocab, #dim, rng).expect(#what))
        }
        LayerKind::LayerNorm { dim, eps, affine } => {
            let ctor = if *affine {
                quote!(new)
            } else {
                quote!(without_affine)
            };
            quote! {{
                let mut __l = #layers::LayerNorm::#ctor(#dim).expect(#what);
                __l.set_eps(#eps).expect(#what);
                __l
            }}
        }
        LayerKind::MultiHeadAttention {
            dim, heads, bias, ..
        } => quote!(#layers::MultiHeadAttention::new(#dim, #heads, #bias, rng).expect(#what)),
        LayerKind::Struct {
            ty, count: None, ..
        } => quote!(#ty::new(rng)),
        LayerKind::Struct {
            ty, count: Some(_), ..
        } => quote!(::core::array::from_fn(|_| #ty::new(&mut *rng))),
        LayerKind::Param { shape, init } => {
            let n: usize = shape.iter().product();
            let init_fns = quote!(::nanograd::init);
            let fill = match *init {
                Init::Zeros => quote!(),
                Init::Ones => quote!(__v.fill(T::one());),
                Init::Normal(std) => {
                    quote!(#init_fns::normal(0.0, #std, rng, &mut __v).expect(#what);)
                }
                Init::Uniform(lo, hi) => {
                    quote!(#init_fns::uniform(#lo, #hi, rng, &mut __v).expect(#what);)
                }
                Init::Xavier => quote! {
                    let (__fi, __fo) = #init_fns::fans(&[#(#shape),*]).expect(#what);
                    #init_fns::xavier_uniform(__fi, __fo, rng, &mut __v).expect(#what);
                },
                Init::Kaiming => quote! {
                    let (__fi, _) = #init_fns::fans(&[#(#shape),*]).expect(#what);
                    #init_fns::kaiming_normal(__fi, rng, &mut __v).expect(#what);
                },
            };
            quote! {{
                let mut __v = ::nanograd::__private::vec![T::zero(); #n];
                #fill
                ::nanograd::Param::new(&[#(#shape),*], __v).expect(#what)
            }}
        }
    }
}

/// Dims after the batch dimension (all of them for an unbatched shape).
pub(super) fn sample_dims(s: &Shape) -> Vec<usize> {
    let start = usize::from(s.is_batched());
    (start..s.rank()).filter_map(|i| s.fixed_at(i)).collect()
}

/// The parameter type of an input: `&[[T; 784]]` batched, `&[T; 3]` fixed, `T` scalar.
/// `u32` in place of `T` for an input of indices: `&[[u32; 64]]`.
fn input_type(s: &Shape, index: bool) -> TokenStream {
    let elem = if index { quote!(u32) } else { quote!(T) };
    let t = super::array_type_of(&sample_dims(s), elem);
    if s.is_batched() {
        quote!(&[#t])
    } else if s.is_scalar() {
        quote!(T)
    } else {
        quote!(&#t)
    }
}

/// Binds `__b` (the batch size, checked across inputs) and `__x{i}: &[T]` for each input.
pub(super) fn bind_inputs(model: &str, f: &FnModel) -> TokenStream {
    let fn_name = format!("{model}::{}", f.name);
    let batched: Vec<&Ident> = f
        .inputs
        .iter()
        .filter(|(_, s)| s.is_batched())
        .map(|(n, _)| n)
        .collect();
    let batch = match batched.split_first() {
        Some((first, rest)) => {
            let checks = rest.iter().map(|n| {
                let what = n.to_string();
                quote! { ::nanograd::check_batch(#fn_name, #what, __b, #n.len())?; }
            });
            quote! { let __b = #first.len(); #(#checks)* }
        }
        None => quote! { let __b = 1usize; },
    };
    let binds = super::func::bind_inputs(f);
    quote! { #batch #binds }
}

/// The method visibility: the fn's own, or the struct's when the fn has none.
pub(super) fn method_vis(f: &FnModel, s: &StructModel) -> Visibility {
    match f.vis {
        Visibility::Inherited => s.vis.clone(),
        ref v => v.clone(),
    }
}

/// How a fn's two methods return its result, for models of element type `elem` (`T`, or
/// `f32` for the int8 form): the `_into` form's trailing parameters, its last statements (which
/// copy `result`, the value's buffer, out) and its return type; the allocating form's return
/// type and body, which calls the `_into` form in the thread's workspace for the model
/// ([`Workspace::with_thread_cache`]) and allocates only what it returns.
pub(super) struct Returns {
    pub into_sig: TokenStream,
    pub into_tail: TokenStream,
    pub into_ret: TokenStream,
    pub plain_ret: TokenStream,
    pub plain_body: TokenStream,
}

/// The statement that takes an `_into` method's scratch (`__ws`), random stream (`__rng`) and,
/// when the model has `slots` packed dense weights, their slots (`__packs`) from `ws`.
pub(super) fn split_workspace(total: &TokenStream, slots: usize) -> TokenStream {
    match slots {
        0 => quote! { let (__ws, __rng) = ws.split(#total); },
        n => quote! { let (__ws, __rng, __packs) = ws.split_packed(#total, #n); },
    }
}

pub(super) fn returns(
    model: &str,
    f: &FnModel,
    into_name: &Ident,
    elem: TokenStream,
    result: &TokenStream,
) -> Returns {
    let (name, ret) = (&f.name, &f.ret);
    let arg_names: Vec<&Ident> = f.inputs.iter().map(|(n, _)| n).collect();
    let ws = quote!(::nanograd::Workspace<#elem>);
    let cached = |out: TokenStream| {
        quote! {
            ::nanograd::Workspace::with_thread_cache(self as *const Self as *const (), |__ws| {
                self.#into_name(#(#arg_names,)* #out __ws)
            })
        }
    };
    if ret.is_scalar() {
        return Returns {
            into_sig: quote!(ws: &mut #ws),
            into_tail: quote!(Ok((#result)[0])),
            into_ret: elem.clone(),
            plain_ret: elem,
            plain_body: cached(quote!()),
        };
    }
    let sample = super::array_type_of(&sample_dims(ret), elem);
    let zero = array_zero(&sample_dims(ret));
    let out_flat = flatten_mut(quote!(out), ret.rank());
    let call = cached(quote!(&mut __out,));
    if ret.is_batched() {
        let first = f
            .inputs
            .iter()
            .find(|(_, sh)| sh.is_batched())
            .map(|(n, _)| n);
        Returns {
            into_sig: quote!(out: &mut [#sample], ws: &mut #ws),
            into_tail: quote! {
                ::nanograd::check_batch(concat!(#model, "::", stringify!(#name)), "out", __b, out.len())?;
                (#out_flat).copy_from_slice(#result);
                Ok(())
            },
            into_ret: quote!(()),
            plain_ret: quote!(::nanograd::__private::Vec<#sample>),
            // filled rather than `vec![zero; n]`, which asks the allocator for zeroed memory:
            // glibc serves that outside its per-thread cache, at a cost that was a quarter of
            // a 2->8->1 network's `forward`
            plain_body: quote! {
                let mut __out = ::nanograd::__private::Vec::with_capacity(#first.len());
                __out.resize(#first.len(), #zero);
                #call?;
                Ok(__out)
            },
        }
    } else {
        Returns {
            into_sig: quote!(out: &mut #sample, ws: &mut #ws),
            into_tail: quote! {
                (#out_flat).copy_from_slice(#result);
                Ok(())
            },
            into_ret: quote!(()),
            plain_ret: sample,
            plain_body: quote! {
                let mut __out = #zero;
                #call?;
                Ok(__out)
            },
        }
    }
}

fn fn_methods(s: &StructModel, f: &FnModel) -> TokenStream {
    let FnModel {
        attrs,
        name,
        inputs,
        ret,
        graph,
        ..
    } = f;
    let vis = method_vis(f, s);
    let model = s.name.to_string();
    let args: Vec<TokenStream> = inputs
        .iter()
        .enumerate()
        .map(|(i, (n, sh))| {
            let t = input_type(sh, f.is_index(i));
            quote!(#n: #t)
        })
        .collect();
    let bind = bind_inputs(&model, f);
    let into_name = format_ident!("{}_into", name);

    let fwd = GraphGen::new(graph, Mode::Infer, false, false);
    let total = fwd.total().tokens();
    let split = split_workspace(&total, fwd.pack_slots());
    let (carve, consts, body) = (fwd.carve(), fwd.consts(), fwd.forward());
    let result = fwd.value(graph.output);
    let ws_doc = if fwd.pack_slots() > 0 {
        "Like the method without `_into`, computing in `ws`: no allocation once `ws` has grown to the largest batch seen. From the second call with the same weights on, the large dense layers read their weights packed in `ws` (repacked whenever a weight changes)."
    } else {
        "Like the method without `_into`, computing in `ws`: no allocation once `ws` has grown to the largest batch seen."
    };

    // the allocation-free form, then the convenient one
    let Returns {
        into_sig,
        into_tail,
        into_ret,
        plain_ret,
        plain_body,
    } = returns(&model, f, &into_name, quote!(T), &result);
    let mut out = quote! {
        #(#attrs)*
        #[allow(clippy::all)]
        #vis fn #name(&self, #(#args),*) -> ::nanograd::Result<#plain_ret> {
            #plain_body
        }

        #[doc = #ws_doc]
        #[allow(dead_code, unused_mut, unused_variables, clippy::all)]
        #vis fn #into_name(&self, #(#args,)* #into_sig) -> ::nanograd::Result<#into_ret> {
            #[allow(unused_imports)]
                use ::nanograd::Float as _;
            #bind
            #split
            #carve
            #consts
            #body
            #into_tail
        }
    };

    if ret.is_scalar() {
        // one training step's backward: value, and every parameter's gradient accumulated
        let back_name = format_ident!("{}_backward", name);
        let bwd = GraphGen::new(graph, Mode::Train, true, false);
        let total = bwd.total().tokens();
        let (carve, consts, body, zero, back) = (
            bwd.carve(),
            bwd.consts(),
            bwd.forward(),
            bwd.zero_grads(),
            bwd.backward(),
        );
        let result = bwd.value(graph.output);
        let seed = super::func::seed(&bwd, quote!(&[T::one()][..]));
        let doc = format!(
            "Computes `{name}` and adds its gradient to every parameter's `grad` (call `zero_grad` between steps). In training mode, batch norm updates its running statistics. Allocates only while the model's workspace grows to the largest batch seen."
        );
        out.extend(quote! {
            #[doc = #doc]
            #[allow(dead_code, unused_mut, unused_variables, clippy::all)]
            #vis fn #back_name(&mut self, #(#args),*) -> ::nanograd::Result<T> {
                #[allow(unused_imports)]
                use ::nanograd::Float as _;
                #bind
                let (__ws, __rng) = self.__workspace.split(#total);
                #carve
                #consts
                #body
                let __result = (#result)[0];
                #zero
                #seed
                #back
                Ok(__result)
            }
        });
    }
    out
}

/// Calls of the `Module` visitor helpers for every layer with parameters or buffers.
fn module_impl(s: &StructModel, fns: &[FnModel]) -> TokenStream {
    let name = &s.name;
    let summary = summary_fn(s, fns);
    let module = quote!(::nanograd::module);
    let mut params = TokenStream::new();
    let mut params_mut = TokenStream::new();
    let mut buffers = TokenStream::new();
    let mut buffers_mut = TokenStream::new();
    let mut modes = TokenStream::new();
    for l in &s.layers {
        let (f, key) = (&l.name, l.name.to_string());
        match &l.kind {
            LayerKind::Param { .. } => {
                params.extend(quote! { f(#key, &self.#f); });
                params_mut.extend(quote! { f(#key, &mut self.#f); });
            }
            _ => {
                params.extend(quote! { #module::visit_child_params(#key, &self.#f, f); });
                params_mut
                    .extend(quote! { #module::visit_child_params_mut(#key, &mut self.#f, f); });
                buffers.extend(quote! { #module::visit_child_buffers(#key, &self.#f, f); });
                buffers_mut
                    .extend(quote! { #module::visit_child_buffers_mut(#key, &mut self.#f, f); });
                modes.extend(
                    quote! { ::nanograd::Module::<T>::set_training_mode(&mut self.#f, training); },
                );
            }
        }
    }
    quote! {
        impl<T: ::nanograd::Float> ::nanograd::Module<T> for #name<T> {
            fn visit_params(&self, f: &mut dyn FnMut(&str, &::nanograd::Param<T>)) {
                #params
            }
            fn visit_params_mut(&mut self, f: &mut dyn FnMut(&str, &mut ::nanograd::Param<T>)) {
                #params_mut
            }
            fn visit_buffers(&self, f: &mut dyn FnMut(&str, &::nanograd::Tensor<T>)) {
                #buffers
            }
            fn visit_buffers_mut(&mut self, f: &mut dyn FnMut(&str, &mut ::nanograd::Tensor<T>)) {
                #buffers_mut
            }
            fn set_training_mode(&mut self, training: bool) {
                self.__training = training;
                #modes
            }
            fn is_training(&self) -> bool {
                self.__training
            }
            fn rng(&self) -> Option<&::nanograd::WorkspaceRng> {
                Some(self.__workspace.rng())
            }
            fn rng_mut(&mut self) -> Option<&mut ::nanograd::WorkspaceRng> {
                Some(self.__workspace.rng_mut())
            }
            #summary
        }
    }
}

/// `Module::summary`: a torchinfo-like table of the layers, each with the output shape of
/// its first call (known while compiling) and its parameter count (counted at run time).
fn summary_fn(s: &StructModel, fns: &[FnModel]) -> TokenStream {
    let model = s.name.to_string();
    let output = fns
        .iter()
        .find(|f| f.name == "forward")
        .or(fns.first())
        .map_or_else(|| "--".to_string(), |f| f.ret.to_string());
    let rows = s.layers.iter().zip(&s.outputs).map(|(l, out)| {
        let (field, key) = (&l.name, l.name.to_string());
        let kind = match &l.kind {
            LayerKind::Dense { .. } => "Dense".to_string(),
            LayerKind::Conv2d { .. } => "Conv2d".to_string(),
            LayerKind::BatchNorm2d { .. } => "BatchNorm2d".to_string(),
            LayerKind::MaxPool2d(_) => "MaxPool2d".to_string(),
            LayerKind::AvgPool2d(_) => "AvgPool2d".to_string(),
            LayerKind::Dropout { .. } => "Dropout".to_string(),
            LayerKind::Embedding { .. } => "Embedding".to_string(),
            LayerKind::LayerNorm { .. } => "LayerNorm".to_string(),
            LayerKind::MultiHeadAttention { .. } => "MultiHeadAttention".to_string(),
            LayerKind::Param { .. } => "Param".to_string(),
            LayerKind::Struct {
                ty, count: None, ..
            } => ty.to_string(),
            LayerKind::Struct {
                ty,
                count: Some(n),
                ..
            } => format!("[{ty}; {n}]"),
        };
        let out = out.as_ref().map_or_else(|| "--".to_string(), |o| o.to_string());
        let count = match &l.kind {
            LayerKind::Param { .. } => quote!(self.#field.len()),
            _ => quote! {{
                let mut __n = 0;
                ::nanograd::module::visit_child_params::<T, _>(#key, &self.#field, &mut |_, p| __n += p.len());
                __n
            }},
        };
        quote! {
            ::nanograd::module::LayerRow {
                name: ::nanograd::__private::String::from(#key),
                kind: ::nanograd::__private::String::from(#kind),
                output: ::nanograd::__private::String::from(#out),
                params: #count,
            },
        }
    });
    quote! {
        fn summary(&self) -> ::nanograd::__private::String {
            let __rows = [#(#rows)*];
            let mut __buffers = 0;
            ::nanograd::Module::<T>::visit_buffers(self, &mut |_, b| __buffers += b.len());
            ::nanograd::module::layer_table(#model, #output, &__rows, __buffers)
        }
    }
}

pub fn expand(s: &StructModel, fns: &[FnModel]) -> TokenStream {
    let StructModel {
        attrs,
        vis,
        name,
        layers,
        ..
    } = s;
    let fields = layers.iter().map(|l| {
        let (lattrs, lname, ty) = (&l.attrs, &l.name, layer_type(&l.kind));
        quote! { #(#lattrs)* pub #lname: #ty, }
    });
    let inits = layers.iter().map(|l| {
        let (lname, init) = (&l.name, layer_new(l));
        quote! { #lname: #init, }
    });
    let methods = fns.iter().map(|f| fn_methods(s, f));
    let module = module_impl(s, fns);
    let (layer_methods, layer_macro) = layer_api(s, fns);
    let int8 = super::quantized::expand(s, fns);
    let new_doc = "A new model with freshly initialised parameters (Xavier for dense layers, He for convolutions), in training mode.";
    quote! {
        #(#attrs)*
        #[derive(Clone, Debug)]
        #vis struct #name<T: ::nanograd::Float = f32> {
            #(#fields)*
            __training: bool,
            __workspace: ::nanograd::Workspace<T>,
        }

        impl<T: ::nanograd::Float> #name<T> {
            #[doc = #new_doc]
            #[allow(dead_code)]
            #vis fn new(rng: &mut impl ::nanograd::rand::Rng) -> Self {
                #[allow(unused_imports)]
                use ::nanograd::Float as _;
                Self {
                    #(#inits)*
                    __training: true,
                    __workspace: ::nanograd::Workspace::with_seed(rng.next_u64()),
                }
            }

            #(#methods)*
            #layer_methods
        }

        #module
        #layer_macro
        #int8
    }
}

/// What lets another model use this one as a layer, when it has `fn forward` of one input:
/// hidden methods over flat slices, and the macro `__nanograd_layer_<Name>!` that hands
/// this model's signature to the `model!` that uses it:
///
/// ```text
/// macro_rules! __nanograd_layer_Block {
///     ($($tt:tt)*) => { ::nanograd::model! { @layer Block [B, 64] -> [B, 64] (160, 0, 2); $($tt)* } };
/// }
/// ```
fn layer_api(s: &StructModel, fns: &[FnModel]) -> (TokenStream, TokenStream) {
    // a forward of indices (a language model) takes no values from a model around it
    let Some(f) = fns
        .iter()
        .find(|f| f.name == "forward" && f.inputs.len() == 1 && !f.is_index(0))
    else {
        return (quote!(), signature_macro(&s.name, quote!(no_forward)));
    };
    let graph = &f.graph;
    let input = &f.inputs[0].1;
    let sig_dims = |sh: &Shape| -> Vec<TokenStream> {
        sh.dims
            .iter()
            .map(|d| match d {
                crate::shape::Dim::Batch => quote!(B),
                crate::shape::Dim::Fixed(n) => {
                    let lit = proc_macro2::Literal::usize_unsuffixed(*n);
                    quote!(#lit)
                }
            })
            .collect()
    };
    let (in_dims, out_dims) = (sig_dims(input), sig_dims(&f.ret));

    // the training layout, shared by the forward of a training step and the backward
    let train = GraphGen::new(graph, Mode::Train, true, true);
    let in_size = super::graph::Size::of(input);
    let total = train.total();
    let ws = super::graph::Size {
        b: total.b + in_size.b,
        f: total.f + in_size.f,
    };
    let (ws_b, ws_f) = (
        proc_macro2::Literal::usize_unsuffixed(ws.b),
        proc_macro2::Literal::usize_unsuffixed(ws.f),
    );
    let (t_carve, t_consts, t_forward, t_zero, t_back) = (
        train.carve(),
        train.consts(),
        train.forward(),
        train.zero_grads(),
        train.backward(),
    );
    let t_out = train.value(graph.output);
    let seed = super::func::seed(&train, quote!(__dy));

    let infer = GraphGen::new(graph, Mode::Infer, false, false);
    let (i_carve, i_consts, i_forward) = (infer.carve(), infer.consts(), infer.forward());
    let packs = proc_macro2::Literal::usize_unsuffixed(infer.pack_slots());
    let i_out = infer.value(graph.output);

    let name = &s.name;
    let methods = quote! {
        #[doc(hidden)]
        #[allow(dead_code, unused_mut, unused_variables, clippy::all)]
        pub fn __layer_forward_infer(
            &self, __b: usize, __x0: &[T], __y: &mut [T], __ws: &mut [T],
            __rng: &mut impl ::nanograd::rand::Rng,
            __packs: &mut [::nanograd::blas::PackedWeight<T>],
        ) -> ::nanograd::Result<()> {
            #[allow(unused_imports)]
            use ::nanograd::Float as _;
            #i_carve
            #i_consts
            #i_forward
            ::nanograd::check_len(stringify!(#name), "output", __y.len(), (#i_out).len())?;
            __y.copy_from_slice(#i_out);
            Ok(())
        }

        #[doc(hidden)]
        #[allow(dead_code, unused_mut, unused_variables, clippy::all)]
        pub fn __layer_forward_train(
            &mut self, __b: usize, __x0: &[T], __y: &mut [T], __ws: &mut [T],
            __rng: &mut impl ::nanograd::rand::Rng,
        ) -> ::nanograd::Result<()> {
            #[allow(unused_imports)]
            use ::nanograd::Float as _;
            #t_carve
            #t_consts
            #t_forward
            ::nanograd::check_len(stringify!(#name), "output", __y.len(), (#t_out).len())?;
            __y.copy_from_slice(#t_out);
            Ok(())
        }

        #[doc(hidden)]
        #[allow(dead_code, unused_mut, unused_variables, clippy::all)]
        pub fn __layer_backward(
            &mut self, __b: usize, __x0: &[T], __dy: &[T], __dx: Option<&mut [T]>, __ws: &mut [T],
        ) -> ::nanograd::Result<()> {
            #[allow(unused_imports)]
            use ::nanograd::Float as _;
            #t_carve
            let (__dx_scratch, __ws) = __ws.split_at_mut(__x0.len());
            let __gx0: &mut [T] = match __dx {
                Some(__d) => __d,
                None => __dx_scratch,
            };
            #t_consts
            #t_zero
            #seed
            #t_back
            Ok(())
        }
    };
    let layer_macro = signature_macro(
        name,
        quote!([#(#in_dims),*] -> [#(#out_dims),*] (#ws_b, #ws_f, #packs)),
    );
    (methods, layer_macro)
}

/// `macro_rules! __nanograd_layer_<Name>`: calls `model!` again with `@layer <Name> <sig>;`
/// in front of the tokens it is given (the model that uses this one as a layer).
fn signature_macro(name: &Ident, sig: TokenStream) -> TokenStream {
    let mac = format_ident!("__nanograd_layer_{}", name);
    quote! {
        #[doc(hidden)]
        #[allow(unused_macros)]
        macro_rules! #mac {
            ($($tt:tt)*) => {
                ::nanograd::model! { @layer #name #sig; $($tt)* }
            };
        }
    }
}

/// What stands in for a struct model that failed to check: the struct with the fields whose
/// layer kind is known, `new`, the `Module` impl, and the fns with the declared signatures
/// where those resolve, and the same for the quantized model (`quantize_int8`, `<Name>Int8`
/// with the fns in f32 and its file methods), all with `unimplemented!()` bodies, so that
/// code using the model reports no errors of its own.
pub fn fallback(s: &StructDef, fns: &[FnDef], consts: &HashMap<String, usize>) -> TokenStream {
    let StructDef {
        attrs, vis, name, ..
    } = s;
    let mut seen = std::collections::HashSet::new();
    let mut seen_fns = std::collections::HashSet::new();
    let fns: Vec<&FnDef> = fns
        .iter()
        .filter(|f| seen_fns.insert(f.name.to_string()))
        .collect();
    let fields = s.fields.iter().filter_map(|f| {
        if !seen.insert(f.name.to_string()) {
            return None;
        }
        let ty = match f.kind.to_string().as_str() {
            "Dense" => quote!(::nanograd::layers::Dense<T>),
            "Conv2d" => quote!(::nanograd::layers::Conv2d<T>),
            "BatchNorm2d" => quote!(::nanograd::layers::BatchNorm2d<T>),
            "MaxPool2d" => quote!(::nanograd::layers::MaxPool2d),
            "AvgPool2d" => quote!(::nanograd::layers::AvgPool2d),
            "Dropout" => quote!(::nanograd::layers::Dropout),
            "Embedding" => quote!(::nanograd::layers::Embedding<T>),
            "LayerNorm" => quote!(::nanograd::layers::LayerNorm<T>),
            "MultiHeadAttention" => quote!(::nanograd::layers::MultiHeadAttention<T>),
            "Param" => quote!(::nanograd::Param<T>),
            _ => return None,
        };
        let n = &f.name;
        Some(quote! { pub #n: #ty, })
    });
    let methods = fns.iter().map(|f| {
        let fname = &f.name;
        let vis = match f.vis {
            Visibility::Inherited => vis.clone(),
            ref v => v.clone(),
        };
        let shape = |sh: &crate::ast::ShapeSyn, batch: bool| -> Option<Shape> {
            let mut dims = Vec::new();
            for (i, d) in sh.dims.iter().enumerate() {
                match d {
                    DimSyn::Lit(l) => dims.push(crate::shape::Dim::Fixed(l.base10_parse().ok()?)),
                    DimSyn::Name(n) => match consts.get(&n.to_string()) {
                        Some(&v) => dims.push(crate::shape::Dim::Fixed(v)),
                        None if i == 0 && batch => dims.push(crate::shape::Dim::Batch),
                        None => return None,
                    },
                }
            }
            Some(Shape { dims, batch_name: None })
        };
        let mut seen_inputs = std::collections::HashSet::new();
        let inputs: Vec<_> = f
            .inputs
            .iter()
            .filter(|(n, _)| seen_inputs.insert(n.to_string()))
            .collect();
        let ins: Option<Vec<Shape>> = inputs.iter().map(|(_, sh)| shape(sh, true)).collect();
        let ret = shape(&f.ret, true);
        match (ins, ret) {
            (Some(ins), Some(ret)) => {
                let args = inputs.iter().zip(&ins).map(|((n, syn_sh), sh)| {
                    let t = input_type(sh, syn_sh.index.is_some());
                    quote!(#n: #t)
                });
                let sample = array_type(&sample_dims(&ret));
                let rt = if ret.is_scalar() {
                    quote!(T)
                } else if ret.is_batched() {
                    quote!(::nanograd::__private::Vec<#sample>)
                } else {
                    sample
                };
                let back = format_ident!("{}_backward", fname);
                let backward = ret.is_scalar().then(|| {
                    let args = inputs.iter().zip(&ins).map(|((n, syn_sh), sh)| {
                        let t = input_type(sh, syn_sh.index.is_some());
                        quote!(#n: #t)
                    });
                    quote! { #vis fn #back(&mut self, #(#args),*) -> ::nanograd::Result<T> { unimplemented!() } }
                });
                // the quantized model's method: the same in f32
                let q_args = inputs.iter().zip(&ins).map(|((n, syn_sh), sh)| {
                    let t = super::quantized::input_type_f32(sh, syn_sh.index.is_some());
                    quote!(#n: #t)
                });
                let q_sample = super::array_type_of(&sample_dims(&ret), quote!(f32));
                let q_rt = if ret.is_scalar() {
                    quote!(f32)
                } else if ret.is_batched() {
                    quote!(::nanograd::__private::Vec<#q_sample>)
                } else {
                    q_sample
                };
                (
                    quote! {
                        #vis fn #fname(&self, #(#args),*) -> ::nanograd::Result<#rt> { unimplemented!() }
                        #backward
                    },
                    quote! {
                        #vis fn #fname(&self, #(#q_args),*) -> ::nanograd::Result<#q_rt> { unimplemented!() }
                    },
                )
            }
            _ => {
                let any = quote! {
                    #vis fn #fname<R>(&self, _: impl ::core::any::Any) -> R { unimplemented!() }
                };
                (any.clone(), any)
            }
        }
    });
    let (methods, int8_methods): (Vec<_>, Vec<_>) = methods.unzip();
    let qname = format_ident!("{}Int8", name, span = name.span());
    let callback = signature_macro(name, quote!(failed));
    quote! {
        #callback
        #(#attrs)*
        #[derive(Clone, Debug)]
        #vis struct #name<T: ::nanograd::Float = f32> {
            #(#fields)*
            __marker: ::core::marker::PhantomData<T>,
        }
        #[allow(unused_variables, clippy::all)]
        impl<T: ::nanograd::Float> #name<T> {
            #vis fn new(rng: &mut impl ::nanograd::rand::Rng) -> Self { unimplemented!() }
            #(#methods)*
        }
        impl<T: ::nanograd::Float> ::nanograd::Module<T> for #name<T> {
            fn visit_params(&self, f: &mut dyn FnMut(&str, &::nanograd::Param<T>)) { unimplemented!() }
            fn visit_params_mut(&mut self, f: &mut dyn FnMut(&str, &mut ::nanograd::Param<T>)) { unimplemented!() }
            fn set_training_mode(&mut self, training: bool) { unimplemented!() }
            fn is_training(&self) -> bool { unimplemented!() }
        }
        #[allow(unused_variables, clippy::all)]
        impl<T: ::nanograd::Float> #name<T> {
            #vis fn quantize_int8(&self) -> ::nanograd::Result<#qname> { unimplemented!() }
        }
        #[derive(Clone, Debug)]
        #vis struct #qname {}
        #[allow(unused_variables, clippy::all)]
        impl #qname {
            #(#int8_methods)*
            #vis fn int8_weights(&self) -> &'static [&'static str] { unimplemented!() }
            #vis fn quantized_layers(&self) -> &[::nanograd::quant::QuantizedLayer] { unimplemented!() }
            #vis fn float_part(&self) -> &#name<f32> { unimplemented!() }
        }
        #[allow(unused_variables, clippy::all)]
        impl ::nanograd::quant::QuantizedSafetensors for #qname {
            fn to_safetensors_bytes(&self) -> ::nanograd::Result<::nanograd::__private::Vec<u8>> { unimplemented!() }
            fn from_safetensors_bytes_of(bytes: &[u8], origin: &::nanograd::quant::Origin) -> ::nanograd::Result<Self> { unimplemented!() }
        }
    }
}
