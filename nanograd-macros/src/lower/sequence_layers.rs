//! Calls of the transformer layers (`wte(idx)`, `ln_1(x)`, `attn(x)`): their shape checks
//! and the nodes they lower to. A `MultiHeadAttention` call is three nodes: the packed
//! in-projection (a dense layer to `[.., t, 3·dim]`), the heads (`Op::MhaAttention`, one
//! fused kernel) and the out-projection.

use super::*;

impl Lower<'_> {
    /// `wte(idx)`: `u32[.., n]` to `[.., n, dim]` (the input was checked to hold indices).
    pub(super) fn embedding_call(&mut self, li: usize, x: NodeId, dim: usize) -> NodeId {
        let xs = self.shape(x).clone();
        let w = self.param_leaf(li, Some("weight"));
        let mut dims = xs.dims.clone();
        dims.push(Dim::Fixed(dim));
        self.push(Op::Embedding, vec![x, w], xs.with_dims(dims))
    }

    /// `ln(x)`: normalises the last dimension, which must be the layer's width.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn layer_norm_call(
        &mut self,
        li: usize,
        name: &Ident,
        xe: &Expr,
        x: NodeId,
        dim: usize,
        eps: f64,
        affine: bool,
    ) -> Option<NodeId> {
        let xs = self.shape(x).clone();
        if xs.last() != Some(dim) {
            self.errs.at(
                xe,
                format!(
                    "layer norm `{name}` normalises a last dimension of {dim}, but `{}` is {xs}",
                    describe(xe)
                ),
            );
            return None;
        }
        let mut inputs = vec![x];
        if affine {
            inputs.push(self.param_leaf(li, Some("weight")));
            inputs.push(self.param_leaf(li, Some("bias")));
        }
        let op = Op::LayerNorm {
            eps,
            weight: affine,
            bias: affine,
        };
        Some(self.push(op, inputs, xs))
    }

    /// `attn(x)`: self-attention on `[B, t, dim]` (or `[t, dim]`).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn attention_call(
        &mut self,
        li: usize,
        name: &Ident,
        xe: &Expr,
        x: NodeId,
        dim: usize,
        heads: usize,
        causal: bool,
        bias: bool,
    ) -> Option<NodeId> {
        let xs = self.shape(x).clone();
        let fits = xs.last() == Some(dim)
            && (xs.rank() == 3 && xs.is_batched() || xs.rank() == 2 && !xs.is_batched());
        let t = xs.fixed_at(xs.rank().saturating_sub(2)).unwrap_or(0);
        if fits && !super::sequence_rules::scores_fit(t, t) {
            self.errs.at(
                xe,
                format!(
                    "attention `{name}` over {t} positions: its scores would exceed 2^40 elements"
                ),
            );
            return None;
        }
        if !fits {
            let want = if xs.is_batched() || xs.rank() != 2 {
                let b = xs.batch_name.clone().unwrap_or_else(|| "B".into());
                format!("[{b}, t, {dim}] (any length t)")
            } else {
                format!("[t, {dim}] (any length t)")
            };
            self.errs.at(
                xe,
                format!(
                    "attention `{name}` expects a sequence {want} but `{}` is {xs}",
                    describe(xe)
                ),
            );
            return None;
        }
        // in-projection, the heads, out-projection
        let w = self.param_leaf(li, Some("in_proj_weight"));
        let mut inputs = vec![x, w];
        if bias {
            inputs.push(self.param_leaf(li, Some("in_proj_bias")));
        }
        let qkv = self.push(Op::Dense { bias }, inputs, xs.with_last(3 * dim));
        let heads_out = self.push(Op::MhaAttention { heads, causal }, vec![qkv], xs.clone());
        let w = self.param_leaf(li, Some("out_proj.weight"));
        let mut inputs = vec![heads_out, w];
        if bias {
            inputs.push(self.param_leaf(li, Some("out_proj.bias")));
        }
        Some(self.push(Op::Dense { bias }, inputs, xs))
    }
}
