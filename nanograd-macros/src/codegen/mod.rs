//! Code generation: reads the validated model only and cannot fail.
//!
//! - [`func`]: the function form (`pub fn energy(x: [3], y: [3]) -> []`);
//! - [`model`]: the struct form (`pub struct Mlp { .. }` with its fns as methods);
//! - [`quantized`]: its int8 form (`Mlp::quantize_int8`, `MlpInt8`);
//! - [`graph`]: the buffer plan of one fn, shared by both; [`forward`] and [`backward`]: its
//!   kernel calls; [`fusion`]: batch norm writing the relu after it in a training step.

mod backward;
mod forward;
mod func;
mod fusion;
mod graph;
mod model;
mod quantized;

use proc_macro2::TokenStream;
use quote::quote;

use crate::ast::ModelInput;
use crate::lower::Model;

/// The expansion of a validated model.
pub fn expand(m: &Model) -> TokenStream {
    let consts = m.consts.iter().map(|(attrs, vis, name, v)| {
        quote! { #(#attrs)* #vis const #name: usize = #v; }
    });
    let body = match &m.strukt {
        Some(s) => model::expand(s, &m.fns),
        None => m.fns.iter().map(func::expand).collect(),
    };
    quote! { #(#consts)* #body }
}

/// What is emitted beside the errors of a model that does not check: the struct with its
/// layers and fns of the declared signatures whose bodies are `unimplemented!()`, so that
/// the rest of the user's crate still type-checks and only the real errors show.
pub fn fallback(input: &ModelInput) -> TokenStream {
    match input.structs.first() {
        Some(s) => model::fallback(s, &input.fns, &crate::lower::const_values(input)),
        None => input.fns.iter().map(func::fallback).collect(),
    }
}

/// The Rust type of one sample of the given fixed dims: `T`, `[T; 3]`, `[[T; 3]; 2]`.
pub fn array_type(dims: &[usize]) -> TokenStream {
    array_type_of(dims, quote!(T))
}

/// Like [`array_type`] with another element type: `[[u32; 64]; 2]`.
pub fn array_type_of(dims: &[usize], elem: TokenStream) -> TokenStream {
    dims.iter()
        .rev()
        .fold(elem, |inner, d| quote!([#inner; #d]))
}

/// A zero value of [`array_type`].
pub fn array_zero(dims: &[usize]) -> TokenStream {
    dims.iter()
        .rev()
        .fold(quote!(T::zero()), |inner, d| quote!([#inner; #d]))
}

/// `&[T]` over the elements of `value`, an array nested `depth` deep (`depth` >= 1).
pub fn flatten(value: TokenStream, depth: usize) -> TokenStream {
    let mut out = quote!(#value);
    for _ in 1..depth {
        out = quote!(#out.as_flattened());
    }
    if depth <= 1 {
        quote!(&#out[..])
    } else {
        out
    }
}

/// `&mut [T]` over the elements of `value`, an array nested `depth` deep (`depth` >= 1).
pub fn flatten_mut(value: TokenStream, depth: usize) -> TokenStream {
    let mut out = quote!(#value);
    for _ in 1..depth {
        out = quote!(#out.as_flattened_mut());
    }
    if depth <= 1 {
        quote!(&mut #out[..])
    } else {
        out
    }
}
