//! The `model!` macro of nanograd: parse, check every shape, generate forward and
//! backward code that calls `nanograd::ops`.
//!
//! Stages: `ast` (the grammar) -> `lower` (names, shapes, every check; yields `ir`)
//! -> `codegen` (cannot fail). Every error becomes a `compile_error!` at the token that
//! caused it, next to a stub of the model so that no cascade of secondary errors follows.

mod ast;
mod codegen;
mod ir;
mod lower;
mod ops;
mod shape;
#[cfg(test)]
mod tests;

use proc_macro::TokenStream;

/// Declares a model: layers, and fns of tensor expressions whose shapes are checked while
/// compiling. See the crate `nanograd` for the language.
#[proc_macro]
pub fn model(input: TokenStream) -> TokenStream {
    expand(input.into()).into()
}

/// The whole expansion, usable as a library (the robustness tests feed it arbitrary tokens).
fn expand(input: proc_macro2::TokenStream) -> proc_macro2::TokenStream {
    let parsed: ast::ModelInput = match syn::parse2(input.clone()) {
        Ok(p) => p,
        Err(e) => return e.to_compile_error(),
    };
    if let Some(kind) = lower::missing_signature(&parsed) {
        // Ask the struct layer's own macro for its signature; it calls model! again with
        // `@layer Kind [..] -> [..] (..);` in front of this same input.
        let callback = quote::format_ident!("__nanograd_layer_{}", kind, span = kind.span());
        return quote::quote_spanned! {kind.span()=> #callback! { #input } };
    }
    let stub = codegen::fallback(&parsed);
    match lower::lower(parsed) {
        Ok(model) => codegen::expand(&model),
        Err(e) => {
            let err = e.map(|e| e.to_compile_error());
            quote::quote! { #err #stub }
        }
    }
}
