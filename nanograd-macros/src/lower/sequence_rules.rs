//! Shape rules of the sequence ops that transformers are made of: `transpose`, `concat`,
//! `attention` and the batched case of `matmul`. Dimensions are counted as PyTorch counts
//! them: the batch dimension, when there is one, is dimension 0, and a negative index counts
//! from the end.

use super::*;

/// A dimension index as written: an integer, a const, or a negated one (`-1`).
fn eval_index(e: &Expr, consts: &HashMap<String, usize>, errs: &mut Errors) -> Option<i64> {
    match e {
        Expr::Unary(u) if matches!(u.op, syn::UnOp::Neg(_)) => {
            let v = eval_usize(&u.expr, consts, errs)?;
            Some(-(v.min(i64::MAX as usize) as i64))
        }
        _ => eval_usize(e, consts, errs).map(|v| v.min(i64::MAX as usize) as i64),
    }
}

/// The leading dimensions of `s`: all but its last `keep`.
fn leading(s: &Shape, keep: usize) -> Shape {
    s.with_dims(s.dims[..s.rank().saturating_sub(keep)].to_vec())
}

/// Whether a `[tq, tk]` block of attention scores (twice, in the kernels' scratch) stays
/// within the elements a model may hold, so that no size computed from it overflows.
pub(super) fn scores_fit(tq: usize, tk: usize) -> bool {
    tq.checked_mul(tk)
        .and_then(|n| n.checked_mul(2))
        .is_some_and(|n| n <= crate::shape::MAX_ELEMENTS)
}

impl Lower<'_> {
    /// `i` as a dimension of a value of rank `rank` (negative counts from the end), or an
    /// error naming the value.
    fn dim_of(&mut self, at: &Expr, i: i64, op: &str, xe: &Expr, xs: &Shape) -> Option<usize> {
        let r = xs.rank() as i64;
        let d = if i < 0 { r + i } else { i };
        if d < 0 || d >= r {
            self.errs.at(
                at,
                format!(
                    "`{op}`: dimension {i} is out of range for `{}` {xs}, which has {r} dimension{}",
                    describe(xe),
                    if r == 1 { "" } else { "s" }
                ),
            );
            return None;
        }
        Some(d as usize)
    }

    /// `transpose(x, a, b)`: swaps two dimensions; the batch dimension stays first.
    pub(super) fn transpose(
        &mut self,
        pos: &[&Expr],
        args: &[NodeId],
        s: &[Shape],
    ) -> Option<NodeId> {
        let xs = &s[0];
        let a = eval_index(pos[1], self.consts, self.errs);
        let b = eval_index(pos[2], self.consts, self.errs);
        let a = self.dim_of(pos[1], a?, "transpose", pos[0], xs);
        let b = self.dim_of(pos[2], b?, "transpose", pos[0], xs);
        let (a, b) = (a?, b?);
        if a != b && xs.is_batched() && (a == 0 || b == 0) {
            let at = if a == 0 { pos[1] } else { pos[2] };
            self.errs.at(
                at,
                format!(
                    "`transpose` cannot move the batch dimension: dimension 0 of `{}` {xs} is the batch `{}`; swap two of the others",
                    describe(pos[0]),
                    xs.batch_name.as_deref().unwrap_or("B")
                ),
            );
            return None;
        }
        if a == b {
            return Some(self.push(Op::Reshape, args.to_vec(), xs.clone()));
        }
        let mut dims = xs.dims.clone();
        dims.swap(a, b);
        let (a, b) = (a.min(b), a.max(b));
        Some(self.push(Op::Transpose { a, b }, args.to_vec(), xs.with_dims(dims)))
    }

    /// `concat(a, b, dim = d)`: every other dimension must match.
    pub(super) fn concat(
        &mut self,
        e: &Expr,
        pos: &[&Expr],
        args: &[NodeId],
        s: &[Shape],
        dim: f64,
    ) -> Option<NodeId> {
        let (a, b) = (&s[0], &s[1]);
        if a.rank() != b.rank() || a.is_scalar() || a.is_batched() != b.is_batched() {
            self.errs.at(
                e,
                format!(
                    "`concat` joins values of one rank, but `{}` is {a} and `{}` is {b}",
                    describe(pos[0]),
                    describe(pos[1])
                ),
            );
            return None;
        }
        if dim.fract() != 0.0 || dim.abs() > 1e9 {
            self.errs
                .at(e, format!("`dim` must be an integer, not {dim}"));
            return None;
        }
        let d = self.dim_of(e, dim as i64, "concat", pos[0], a)?;
        if d == 0 && a.is_batched() {
            self.errs.at(
                e,
                format!(
                    "`concat` cannot join along the batch dimension: dimension 0 of `{}` {a} is the batch",
                    describe(pos[0])
                ),
            );
            return None;
        }
        let others_match = (0..a.rank()).all(|i| i == d || a.dims[i] == b.dims[i]);
        if !others_match {
            self.errs.at(
                e,
                format!(
                    "`concat` along dimension {d} needs every other dimension equal, but `{}` is {a} and `{}` is {b}",
                    describe(pos[0]),
                    describe(pos[1])
                ),
            );
            return None;
        }
        let (Some(da), Some(db)) = (a.fixed_at(d), b.fixed_at(d)) else {
            return None;
        };
        let mut dims = a.dims.clone();
        dims[d] = Dim::Fixed(da + db);
        Some(self.push(Op::Concat { dim: d }, args.to_vec(), a.with_dims(dims)))
    }

    /// `attention(q, k, v)`: `[.., tq, d]`, `[.., tk, d]`, `[.., tk, dv]` to `[.., tq, dv]`.
    pub(super) fn attention(
        &mut self,
        e: &Expr,
        pos: &[&Expr],
        args: &[NodeId],
        s: &[Shape],
        causal: bool,
    ) -> Option<NodeId> {
        let (q, k, v) = (&s[0], &s[1], &s[2]);
        let min_rank = if q.is_batched() { 3 } else { 2 };
        for (i, x) in s.iter().enumerate() {
            if x.rank() < min_rank || x.is_batched() != q.is_batched() {
                self.errs.at(
                    pos[i],
                    format!(
                        "`attention` takes sequences [.., t, d], but `{}` is {x}",
                        describe(pos[i])
                    ),
                );
                return None;
            }
        }
        let r = q.rank();
        if k.rank() != r
            || v.rank() != r
            || leading(q, 2) != leading(k, 2)
            || leading(q, 2) != leading(v, 2)
        {
            self.errs.at(
                e,
                format!(
                    "`attention` needs q, k and v with the same leading dimensions, but `{}` is {q}, `{}` is {k} and `{}` is {v}",
                    describe(pos[0]),
                    describe(pos[1]),
                    describe(pos[2])
                ),
            );
            return None;
        }
        if q.dims[r - 1] != k.dims[r - 1] {
            self.errs.at(
                e,
                format!(
                    "`attention` compares queries with keys, so they need one width, but `{}` is {q} and `{}` is {k}",
                    describe(pos[0]),
                    describe(pos[1])
                ),
            );
            return None;
        }
        if k.dims[r - 2] != v.dims[r - 2] {
            self.errs.at(
                e,
                format!(
                    "`attention` needs one value per key, but `{}` is {k} and `{}` is {v} ({} keys, {} values)",
                    describe(pos[1]),
                    describe(pos[2]),
                    k.fixed_at(r - 2).unwrap_or(0),
                    v.fixed_at(r - 2).unwrap_or(0)
                ),
            );
            return None;
        }
        let (tq, tk) = (
            q.fixed_at(r - 2).unwrap_or(0),
            k.fixed_at(r - 2).unwrap_or(0),
        );
        if !scores_fit(tq, tk) {
            self.errs.at(
                e,
                format!("`attention` of {tq} queries by {tk} keys: its scores would exceed 2^40 elements"),
            );
            return None;
        }
        let mut dims = q.dims.clone();
        dims[r - 1] = v.dims[r - 1];
        Some(self.push(Op::Attention { causal }, args.to_vec(), q.with_dims(dims)))
    }

    /// `matmul(a, b)` where `b` has a batch or more than two dimensions:
    /// `[.., m, k] x [.., k, n]` with equal leading dimensions.
    pub(super) fn batched_matmul(
        &mut self,
        e: &Expr,
        pos: &[&Expr],
        args: &[NodeId],
        s: &[Shape],
    ) -> Option<NodeId> {
        let (a, b) = (&s[0], &s[1]);
        let r = a.rank();
        if r < 3 || b.rank() != r || leading(a, 2) != leading(b, 2) {
            self.errs.at(
                e,
                format!(
                    "batched `matmul` multiplies [.., m, k] by [.., k, n] with the same leading dimensions, but `{}` is {a} and `{}` is {b}",
                    describe(pos[0]),
                    describe(pos[1])
                ),
            );
            return None;
        }
        if a.dims[r - 1] != b.dims[r - 2] {
            self.errs.at(
                e,
                format!(
                    "matmul inner dimensions differ: `{}` is {a} and `{}` is {b} ({} vs {})",
                    describe(pos[0]),
                    describe(pos[1]),
                    a.fixed_at(r - 1).unwrap_or(0),
                    b.fixed_at(r - 2).unwrap_or(0)
                ),
            );
            return None;
        }
        let mut dims = a.dims.clone();
        dims[r - 1] = b.dims[r - 1];
        Some(self.push(Op::BatchedMatMul, args.to_vec(), a.with_dims(dims)))
    }
}
