//! The struct form (to be written).
use proc_macro2::TokenStream;
use crate::ast::{FnDef, StructDef};
use crate::lower::{FnModel, StructModel};
pub fn expand(_s: &StructModel, _f: &[FnModel]) -> TokenStream { TokenStream::new() }
pub fn fallback(_s: &StructDef, _f: &[FnDef]) -> TokenStream { TokenStream::new() }
