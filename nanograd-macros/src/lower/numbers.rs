//! Numbers written in the DSL: dimensions, consts, keyword values.

use std::collections::HashMap;

use syn::{Expr, Lit};

use super::Errors;
use crate::ops;

/// A dimension: an integer literal, a const, or `+ - * /` of those.
pub(super) fn eval_usize(
    e: &Expr,
    consts: &HashMap<String, usize>,
    errs: &mut Errors,
) -> Option<usize> {
    match e {
        Expr::Lit(l) => match &l.lit {
            Lit::Int(i) => match i.base10_parse::<usize>() {
                Ok(v) => Some(v),
                Err(_) if i.base10_digits().bytes().all(|b| b.is_ascii_digit()) => {
                    errs.at(i, format!("`{i}` is too large for a dimension"));
                    None
                }
                Err(_) => {
                    errs.at(i, "expected a non-negative integer");
                    None
                }
            },
            _ => {
                errs.at(l, "expected an integer");
                None
            }
        },
        Expr::Path(p) => {
            let Some(id) = p.path.get_ident() else {
                errs.at(p, "expected an integer or a const name");
                return None;
            };
            match consts.get(&id.to_string()) {
                Some(&v) => Some(v),
                None if errs.failed_consts.contains(&id.to_string()) => None,
                None => {
                    let hint = ops::closest(&id.to_string(), consts.keys().map(|k| k.as_str()))
                        .map(|c| format!("; did you mean `{c}`?"))
                        .unwrap_or_else(|| {
                            "; declare it with `const NAME: usize = ..;` in the model".into()
                        });
                    errs.at(id, format!("unknown const `{id}`{hint}"));
                    None
                }
            }
        }
        Expr::Paren(p) => eval_usize(&p.expr, consts, errs),
        Expr::Group(g) => eval_usize(&g.expr, consts, errs),
        Expr::Binary(b) => {
            let l = eval_usize(&b.left, consts, errs)?;
            let r = eval_usize(&b.right, consts, errs)?;
            let v = match b.op {
                syn::BinOp::Add(_) => l.checked_add(r),
                syn::BinOp::Sub(_) => l.checked_sub(r),
                syn::BinOp::Mul(_) => l.checked_mul(r),
                syn::BinOp::Div(_) if r != 0 => Some(l / r),
                syn::BinOp::Div(_) => {
                    errs.at(b, "this dimension divides by zero");
                    return None;
                }
                _ => {
                    errs.at(b, "a dimension may use only + - * / of integers and consts");
                    return None;
                }
            };
            if v.is_none() {
                errs.at(b, "this dimension overflows or goes below zero");
            }
            v
        }
        other => {
            errs.at(other, "expected an integer or a const name");
            None
        }
    }
}

/// A number: a float or integer literal, possibly negated.
pub(super) fn eval_f64(e: &Expr, errs: &mut Errors) -> Option<f64> {
    match e {
        Expr::Lit(l) => match &l.lit {
            Lit::Float(f) => f.base10_parse().ok(),
            Lit::Int(i) => i.base10_parse::<f64>().ok(),
            _ => None,
        },
        Expr::Unary(u) if matches!(u.op, syn::UnOp::Neg(_)) => {
            eval_f64(&u.expr, &mut Errors::default()).map(|v| -v)
        }
        Expr::Paren(p) => eval_f64(&p.expr, errs),
        Expr::Group(g) => eval_f64(&g.expr, errs),
        _ => None,
    }
    .or_else(|| {
        errs.at(e, "expected a number");
        None
    })
}

pub(super) fn eval_bool(e: &Expr, errs: &mut Errors) -> Option<bool> {
    if let Expr::Lit(l) = e {
        if let Lit::Bool(b) = &l.lit {
            return Some(b.value);
        }
    }
    errs.at(e, "expected `true` or `false`");
    None
}

/// `gelu`'s `approximate`: `"none"` (the exact GELU: `true`) or `"tanh"` (the
/// approximation: `false`), PyTorch's two spellings.
pub(super) fn eval_gelu_approximate(e: &Expr, errs: &mut Errors) -> Option<bool> {
    if let Expr::Lit(l) = e {
        if let Lit::Str(s) = &l.lit {
            return match s.value().as_str() {
                "none" => Some(true),
                "tanh" => Some(false),
                other => {
                    errs.at(
                        s,
                        format!("`approximate` is \"none\" (the exact GELU) or \"tanh\" (its tanh approximation), not {other:?}"),
                    );
                    None
                }
            };
        }
    }
    errs.at(
        e,
        "`approximate` takes a string: \"none\" (the exact GELU) or \"tanh\" (its tanh approximation)",
    );
    None
}

/// Kernel, stride and padding stay below 2^16, so window arithmetic cannot overflow.
pub(super) fn window_limit(e: &Expr, what: &str, v: usize, errs: &mut Errors) -> Option<usize> {
    if v > 1 << 16 {
        errs.at(e, format!("`{what}` = {v} is too large (at most 65536)"));
        return None;
    }
    Some(v)
}

/// A count that must be a positive integer, given as a number (`kernel = 3`).
pub(super) fn eval_count(
    e: &Expr,
    what: &str,
    consts: &HashMap<String, usize>,
    errs: &mut Errors,
) -> Option<usize> {
    let v = eval_usize(e, consts, errs)?;
    if v == 0 {
        errs.at(e, format!("{what} must be at least 1"));
        return None;
    }
    Some(v)
}
