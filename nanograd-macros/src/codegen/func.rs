//! The function form: a model with no struct is a set of differentiable functions.
//!
//! ```text
//! pub fn energy(x: [3], y: [3]) -> [] { let z = x + y; dot(z, z) }
//! ```
//! expands to
//! ```text
//! pub fn energy<T: Float>(x: &[T; 3], y: &[T; 3]) -> T { .. }
//! pub fn energy_vjp<T: Float>(x: &[T; 3], y: &[T; 3], upstream: &T) -> (T, [T; 3], [T; 3]) { .. }
//! pub fn energy_grad<T: Float>(x: &[T; 3], y: &[T; 3]) -> (T, [T; 3], [T; 3]) { .. }
//! ```
//! Every shape is fixed, so the buffers are one array on the stack (a `Vec` past 4096
//! elements) and no kernel can fail at run time.

use proc_macro2::TokenStream;
use quote::{format_ident, quote};

use super::graph::{GraphGen, Mode};
use super::{array_type, array_zero, flatten, flatten_mut};
use crate::ast::FnDef;
use crate::lower::FnModel;
use crate::shape::Shape;

/// Largest workspace kept on the stack, in elements.
const STACK_LIMIT: usize = 4096;

fn dims(s: &Shape) -> Vec<usize> {
    (0..s.rank()).filter_map(|i| s.fixed_at(i)).collect()
}

/// The parameter type of an input: `T` for a scalar, `&[T; 3]` otherwise.
fn input_type(s: &Shape) -> TokenStream {
    if s.is_scalar() {
        quote!(T)
    } else {
        let t = array_type(&dims(s));
        quote!(&#t)
    }
}

/// `let __x0: &[T] = x.as_flattened();` for each input of `f` (a scalar input goes through
/// a one-element array). Shared by both forms.
pub fn bind_inputs(f: &FnModel) -> TokenStream {
    let lines = f.inputs.iter().enumerate().map(|(i, (name, s))| {
        let x = format_ident!("__x{}", i);
        if f.is_index(i) {
            let flat = flatten(quote!(#name), s.rank());
            quote! { let #x: &[u32] = #flat; }
        } else if s.is_scalar() {
            let arr = format_ident!("__x{}_arr", i);
            quote! { let #arr = [#name]; let #x: &[T] = &#arr[..]; }
        } else {
            let flat = flatten(quote!(#name), s.rank());
            quote! { let #x: &[T] = #flat; }
        }
    });
    quote! { #(#lines)* }
}

/// The workspace: `let __ws: &mut [T] = ..;` of the graph's total length.
fn workspace(total: usize) -> TokenStream {
    if total <= STACK_LIMIT {
        quote! {
            let mut __buf = [T::zero(); #total];
            let __ws: &mut [T] = &mut __buf[..];
        }
    } else {
        quote! {
            let mut __buf = ::nanograd::__private::vec![T::zero(); #total];
            let __ws: &mut [T] = &mut __buf[..];
        }
    }
}

/// An output value of type [`array_type`] built from `&[T]` data.
fn output_value(ret: &Shape, data: TokenStream) -> TokenStream {
    if ret.is_scalar() {
        quote!((#data)[0])
    } else {
        let zero = array_zero(&dims(ret));
        let flat = flatten_mut(quote!(__out), ret.rank());
        quote! {{
            let mut __out = #zero;
            (#flat).copy_from_slice(#data);
            __out
        }}
    }
}

pub fn expand(f: &FnModel) -> TokenStream {
    let FnModel {
        attrs,
        vis,
        name,
        inputs,
        ret,
        graph,
    } = f;
    let args: Vec<TokenStream> = inputs
        .iter()
        .map(|(n, s)| {
            let t = input_type(s);
            quote!(#n: #t)
        })
        .collect();
    let arg_names: Vec<_> = inputs.iter().map(|(n, _)| n).collect();
    let out_ty = array_type(&dims(ret));
    let bind = bind_inputs(f);

    // forward
    let fwd = GraphGen::new(graph, Mode::Func, false, false);
    let ws = workspace(fwd.total().f);
    let (carve, consts, body) = (fwd.carve(), fwd.consts(), fwd.forward());
    let result = output_value(ret, fwd.value(graph.output));
    let forward_fn = quote! {
        #(#attrs)*
        #[allow(dead_code, unused_mut, unused_variables, clippy::all)]
        #vis fn #name<T: ::nanograd::Float>(#(#args),*) -> #out_ty {
            let __run = || -> ::nanograd::Result<#out_ty> {
                #bind
                #ws
                #carve
                #consts
                #body
                Ok(#result)
            };
            __run().expect("nanograd: a kernel rejected shapes that model! checked")
        }
    };

    // vector-Jacobian product
    let vjp_name = format_ident!("{}_vjp", name);
    let bwd = GraphGen::new(graph, Mode::Func, true, true);
    let ws = workspace(bwd.total().f);
    let (carve, consts, body, zero, back) = (
        bwd.carve(),
        bwd.consts(),
        bwd.forward(),
        bwd.zero_grads(),
        bwd.backward(),
    );
    let result = output_value(ret, bwd.value(graph.output));
    let grad_arrays: Vec<_> = (0..inputs.len())
        .map(|i| format_ident!("__gx{}_arr", i))
        .collect();
    let grad_types: Vec<TokenStream> = inputs.iter().map(|(_, s)| array_type(&dims(s))).collect();
    let grad_decl = inputs.iter().enumerate().map(|(i, (_, s))| {
        let arr = &grad_arrays[i];
        let zero = array_zero(
            &dims(s)
                .iter()
                .copied()
                .chain(s.is_scalar().then_some(1))
                .collect::<Vec<_>>(),
        );
        quote! { let mut #arr = #zero; }
    });
    let grad_bind = inputs.iter().enumerate().map(|(i, (_, s))| {
        let arr = &grad_arrays[i];
        let g = format_ident!("__gx{}", i);
        let flat = flatten_mut(quote!(#arr), s.rank().max(1));
        quote! { let #g: &mut [T] = #flat; }
    });
    let grad_results = inputs.iter().enumerate().map(|(i, (_, s))| {
        let arr = &grad_arrays[i];
        if s.is_scalar() {
            quote!(#arr[0])
        } else {
            quote!(#arr)
        }
    });
    let upstream_flat = if ret.is_scalar() {
        quote!(&[*upstream][..])
    } else {
        flatten(quote!(upstream), ret.rank())
    };
    let seed = seed(&bwd, upstream_flat);
    let doc_vjp = format!(
        "The vector-Jacobian product of [`{name}`]: its value, and the gradient of `<upstream, {name}(..)>` with respect to each input."
    );
    let vjp_fn = quote! {
        #[doc = #doc_vjp]
        #[allow(dead_code, unused_mut, unused_variables, clippy::all)]
        #vis fn #vjp_name<T: ::nanograd::Float>(#(#args,)* upstream: &#out_ty) -> (#out_ty, #(#grad_types),*) {
            #(#grad_decl)*
            let mut __run = || -> ::nanograd::Result<#out_ty> {
                #bind
                #(#grad_bind)*
                #ws
                #carve
                #consts
                #body
                let __result = #result;
                #zero
                #seed
                #back
                Ok(__result)
            };
            let __value = __run().expect("nanograd: a kernel rejected shapes that model! checked");
            drop(__run);
            (__value, #(#grad_results),*)
        }
    };

    let grad_fn = if ret.is_scalar() {
        let grad_name = format_ident!("{}_grad", name);
        let doc = format!("The value of [`{name}`] and its gradient with respect to each input.");
        quote! {
            #[doc = #doc]
            #[allow(dead_code, clippy::all)]
            #vis fn #grad_name<T: ::nanograd::Float>(#(#args),*) -> (T, #(#grad_types),*) {
                #vjp_name(#(#arg_names,)* &T::one())
            }
        }
    } else {
        quote!()
    };
    quote! { #forward_fn #vjp_fn #grad_fn }
}

/// Adds the upstream gradient (`&[T]`) into the output's gradient, if anything needs it.
pub fn seed(gen: &GraphGen, upstream: TokenStream) -> TokenStream {
    match gen.output_grad() {
        Some(target) if gen.seeds_by_copy() => quote! {
            (#target).copy_from_slice(#upstream);
        },
        Some(target) => quote! {
            for (__a, __u) in (#target).iter_mut().zip((#upstream).iter()) { *__a += *__u; }
        },
        None => quote!(),
    }
}

/// The signatures of a function-form fn that failed to check, with `unimplemented!()` bodies.
pub fn fallback(f: &FnDef) -> TokenStream {
    let FnDef { vis, name, .. } = f;
    let args = f
        .inputs
        .iter()
        .map(|(n, _)| quote!(#n: impl ::core::any::Any));
    quote! {
        #[allow(unused_variables, clippy::all)]
        #vis fn #name<T: ::nanograd::Float>(#(#args),*) -> T { unimplemented!() }
    }
}
