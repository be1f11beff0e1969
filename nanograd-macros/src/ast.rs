//! The grammar of `model!`: one struct per construct, each with the syntax it parses.
//!
//! Parsing only recognises the form; names, shapes and arities are checked later
//! (`lower.rs`), so that every mistake of that kind is reported, not just the first.

use proc_macro2::Span;
use syn::parse::{Parse, ParseStream};
use syn::punctuated::Punctuated;
use syn::{braced, bracketed, parenthesized, Attribute, Expr, Ident, LitInt, Token, Visibility};

/// The whole input of `model!`:
///
/// ```text
/// const HIDDEN: usize = 128;          // zero or more
/// /// docs
/// pub struct Mlp { fc1: Dense(784 -> HIDDEN), ... }   // at most one
/// fn forward(x: [B, 784]) -> [B, 10] { ... }          // one or more
/// ```
pub struct ModelInput {
    /// Signatures of struct layers, added by their models' callback macros (not written by
    /// users): `@layer Block [B, 64] -> [B, 64] (per_row, fixed);`.
    pub sigs: Vec<LayerSig>,
    pub consts: Vec<ConstDef>,
    pub structs: Vec<StructDef>,
    pub fns: Vec<FnDef>,
}

/// The signature of a model used as a layer, as its `__nanograd_layer_<Name>!` macro passes
/// it back: `@layer Block [B, 64] -> [B, 64] (96, 0, 2);` where `(96, 0)` is the workspace
/// the block needs, per batch row and fixed, and `2` the packed-weight caches its inference
/// pass reads (optional, 0 when left out); `@layer Block failed;` when the block's own
/// model! has errors (already reported), `@layer Block no_forward;` when it has no
/// `fn forward` of one input.
pub struct LayerSig {
    pub name: Ident,
    pub kind: SigKind,
}

pub enum SigKind {
    Layer {
        input: ShapeSyn,
        output: ShapeSyn,
        ws_per_row: usize,
        ws_fixed: usize,
        packs: usize,
    },
    Failed,
    NoForward,
}

impl Parse for LayerSig {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        input.parse::<Token![@]>()?;
        let kw: Ident = input.parse()?;
        if kw != "layer" {
            return Err(syn::Error::new(kw.span(), "expected `@layer`"));
        }
        let name: Ident = input.parse()?;
        if input.peek(Ident) {
            let what: Ident = input.parse()?;
            input.parse::<Token![;]>()?;
            let kind = match what.to_string().as_str() {
                "failed" => SigKind::Failed,
                "no_forward" => SigKind::NoForward,
                _ => return Err(syn::Error::new(what.span(), "expected a layer signature")),
            };
            return Ok(LayerSig { name, kind });
        }
        let sig_input: ShapeSyn = input.parse()?;
        input.parse::<Token![->]>()?;
        let output: ShapeSyn = input.parse()?;
        let sizes;
        parenthesized!(sizes in input);
        let per_row: LitInt = sizes.parse()?;
        sizes.parse::<Token![,]>()?;
        let fixed: LitInt = sizes.parse()?;
        let packs = if sizes.peek(Token![,]) {
            sizes.parse::<Token![,]>()?;
            sizes.parse::<LitInt>()?.base10_parse()?
        } else {
            0
        };
        input.parse::<Token![;]>()?;
        Ok(LayerSig {
            name,
            kind: SigKind::Layer {
                input: sig_input,
                output,
                ws_per_row: per_row.base10_parse()?,
                ws_fixed: fixed.base10_parse()?,
                packs,
            },
        })
    }
}

/// `const NAME: usize = 128;`
pub struct ConstDef {
    pub attrs: Vec<Attribute>,
    pub vis: Visibility,
    pub name: Ident,
    pub value: Expr,
}

/// `pub struct Mlp { fc1: Dense(784 -> 128), blk: Block }`
pub struct StructDef {
    pub attrs: Vec<Attribute>,
    pub vis: Visibility,
    pub name: Ident,
    pub fields: Vec<LayerField>,
}

/// `fc1: Dense(784 -> 128)`, `scale: Param([10])`, `blk: Block`, `h: [Block; 4]`.
pub struct LayerField {
    pub attrs: Vec<Attribute>,
    pub name: Ident,
    pub kind: Ident,
    /// `None` when the kind has no parentheses (`blk: Block`).
    pub args: Option<Vec<LayerArg>>,
    /// The length of a layer array, `4` in `h: [Block; 4]`.
    pub array: Option<Expr>,
}

/// One argument of a layer: `784 -> 128`, `8`, `[10]`, `kernel = 3`.
pub enum LayerArg {
    Positional(Expr),
    Arrow(Expr, Expr),
    Keyword(Ident, Expr),
}

/// `fn forward(x: [B, 784]) -> [B, 10] { let h = relu(fc1(x)); fc2(h) }`, with an optional
/// visibility (the function form: `pub fn energy(x: [3], y: [3]) -> [] { ... }`).
pub struct FnDef {
    pub attrs: Vec<Attribute>,
    pub vis: Visibility,
    pub name: Ident,
    pub inputs: Vec<(Ident, ShapeSyn)>,
    pub ret: ShapeSyn,
    pub stmts: Vec<LetStmt>,
    pub tail: Expr,
}

/// `let h: [B, 64] = relu(fc2(h));` (the annotation is optional and is a checked assertion).
pub struct LetStmt {
    pub name: Ident,
    pub ann: Option<ShapeSyn>,
    pub value: Expr,
}

/// `[B, 784]`, `[2, HIDDEN]`, `[]`, and for indices `u32[B, CTX]`.
#[derive(Clone)]
pub struct ShapeSyn {
    pub span: Span,
    pub dims: Vec<DimSyn>,
    /// The `u32` in front of a shape of indices.
    pub index: Option<Ident>,
}

/// One dimension as written: a literal or a name (a `const` or the batch dimension).
#[derive(Clone)]
pub enum DimSyn {
    Lit(LitInt),
    Name(Ident),
}

impl Parse for ModelInput {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let mut out = ModelInput {
            sigs: Vec::new(),
            consts: Vec::new(),
            structs: Vec::new(),
            fns: Vec::new(),
        };
        while input.peek(Token![@]) {
            out.sigs.push(input.parse()?);
        }
        while !input.is_empty() {
            let attrs = input.call(Attribute::parse_outer)?;
            let vis: Visibility = input.parse()?;
            let look = input.lookahead1();
            if look.peek(Token![const]) {
                input.parse::<Token![const]>()?;
                let name: Ident = input.parse()?;
                input.parse::<Token![:]>()?;
                let ty: Ident = input.parse()?;
                if ty != "usize" {
                    return Err(syn::Error::new(
                        ty.span(),
                        format!("a model const is a dimension and must be `usize`, not `{ty}`"),
                    ));
                }
                input.parse::<Token![=]>()?;
                let value: Expr = input.parse()?;
                input.parse::<Token![;]>()?;
                out.consts.push(ConstDef {
                    attrs,
                    vis,
                    name,
                    value,
                });
            } else if look.peek(Token![struct]) {
                out.structs.push(parse_struct(input, attrs, vis)?);
            } else if look.peek(Token![fn]) {
                out.fns.push(parse_fn(input, attrs, vis)?);
            } else {
                return Err(look.error());
            }
        }
        Ok(out)
    }
}

fn parse_struct(
    input: ParseStream,
    attrs: Vec<Attribute>,
    vis: Visibility,
) -> syn::Result<StructDef> {
    input.parse::<Token![struct]>()?;
    let name: Ident = input.parse()?;
    let body;
    braced!(body in input);
    let mut fields = Vec::new();
    while !body.is_empty() {
        let attrs = body.call(Attribute::parse_outer)?;
        let name: Ident = body.parse()?;
        body.parse::<Token![:]>()?;
        let (kind, array) = if body.peek(syn::token::Bracket) {
            let inner;
            bracketed!(inner in body);
            let kind: Ident = inner.parse()?;
            inner.parse::<Token![;]>()?;
            let len: Expr = inner.parse()?;
            if !inner.is_empty() {
                return Err(inner.error("expected `[Block; N]`"));
            }
            (kind, Some(len))
        } else {
            (body.parse()?, None)
        };
        let args = if body.peek(syn::token::Paren) {
            let inner;
            parenthesized!(inner in body);
            let list = Punctuated::<LayerArg, Token![,]>::parse_terminated(&inner)?;
            Some(list.into_iter().collect())
        } else {
            None
        };
        fields.push(LayerField {
            attrs,
            name,
            kind,
            args,
            array,
        });
        if body.is_empty() {
            break;
        }
        body.parse::<Token![,]>()?;
    }
    Ok(StructDef {
        attrs,
        vis,
        name,
        fields,
    })
}

impl Parse for LayerArg {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        if input.peek(Ident) && input.peek2(Token![=]) && !input.peek2(Token![==]) {
            let key: Ident = input.parse()?;
            input.parse::<Token![=]>()?;
            return Ok(LayerArg::Keyword(key, input.parse()?));
        }
        // `a -> b`: an expression parser would read `a - > b`, so split at `->` first
        let mut left = proc_macro2::TokenStream::new();
        while !input.is_empty() && !input.peek(Token![,]) {
            if input.peek(Token![->]) {
                let arrow: Token![->] = input.parse()?;
                if left.is_empty() {
                    return Err(syn::Error::new(
                        arrow.spans[0],
                        "expected a size before `->`",
                    ));
                }
                return Ok(LayerArg::Arrow(syn::parse2(left)?, input.parse()?));
            }
            let tt: proc_macro2::TokenTree = input.parse()?;
            left.extend([tt]);
        }
        Ok(LayerArg::Positional(syn::parse2(left)?))
    }
}

fn parse_fn(input: ParseStream, attrs: Vec<Attribute>, vis: Visibility) -> syn::Result<FnDef> {
    input.parse::<Token![fn]>()?;
    let name: Ident = input.parse()?;
    let args;
    parenthesized!(args in input);
    let mut inputs = Vec::new();
    while !args.is_empty() {
        let arg: Ident = args.parse()?;
        args.parse::<Token![:]>()?;
        inputs.push((arg, args.parse()?));
        if args.is_empty() {
            break;
        }
        args.parse::<Token![,]>()?;
    }
    input.parse::<Token![->]>()?;
    let ret: ShapeSyn = input.parse()?;
    let body;
    braced!(body in input);
    let mut stmts = Vec::new();
    while body.peek(Token![let]) {
        body.parse::<Token![let]>()?;
        let name: Ident = body.parse()?;
        let ann = if body.peek(Token![:]) {
            body.parse::<Token![:]>()?;
            Some(body.parse()?)
        } else {
            None
        };
        body.parse::<Token![=]>()?;
        let value: Expr = body.parse()?;
        body.parse::<Token![;]>()?;
        stmts.push(LetStmt { name, ann, value });
    }
    if body.is_empty() {
        return Err(syn::Error::new(
            body.span(),
            format!("`{name}` has no result: end its body with the expression it returns"),
        ));
    }
    let tail: Expr = body.parse()?;
    if body.peek(Token![;]) {
        let semi: Token![;] = body.parse()?;
        if body.is_empty() {
            return Err(syn::Error::new(
                semi.span,
                "remove this `;`: the last expression is the returned value",
            ));
        }
        if !body.peek(Token![let]) {
            return Err(syn::Error::new_spanned(
                &tail,
                "the value of this expression is discarded: bind it with `let` or remove it",
            ));
        }
    }
    if !body.is_empty() {
        return Err(body.error("expected `let` or the final expression"));
    }
    Ok(FnDef {
        attrs,
        vis,
        name,
        inputs,
        ret,
        stmts,
        tail,
    })
}

impl Parse for ShapeSyn {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let index = if input.peek(Ident) {
            let ty: Ident = input.parse()?;
            if ty != "u32" {
                return Err(syn::Error::new(
                    ty.span(),
                    format!(
                        "expected a shape: `[..]` for values or `u32[..]` for indices, not `{ty}`"
                    ),
                ));
            }
            Some(ty)
        } else {
            None
        };
        let inner;
        let bracket = bracketed!(inner in input);
        let mut dims = Vec::new();
        while !inner.is_empty() {
            dims.push(if inner.peek(LitInt) {
                DimSyn::Lit(inner.parse()?)
            } else {
                DimSyn::Name(inner.parse().map_err(|e| {
                    syn::Error::new(e.span(), "expected a dimension: a number or a const name")
                })?)
            });
            if inner.is_empty() {
                break;
            }
            inner.parse::<Token![,]>()?;
        }
        Ok(ShapeSyn {
            span: bracket.span.join(),
            dims,
            index,
        })
    }
}
