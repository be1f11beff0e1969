//! Batch norm and the relu after it as one pass in a training step.
//!
//! When a batch norm's only user is a relu whose backward pass the relu's own user does
//! (`GraphGen::folds_relu`: a max pooling, a convolution or a global average pooling, which
//! read the relu's output), nothing reads the batch norm's output but the relu. The batch
//! norm then writes the relu's output itself, and its own region is planned empty:
//!
//! ```text
//! if self.__training {
//!     ::nanograd::ops::batch_norm2d_train_relu(&*__v5, __b, 16, 784, .., &mut *__v7)?;
//! } else {
//!     ::nanograd::ops::batch_norm2d_eval(&*__v5, __b, 16, 784, .., &mut *__v7)?;
//!     ::nanograd::ops::relu_in_place(&mut *__v7);
//! }
//! // (the relu node: nothing)
//! ```
//!
//! Batch norm's backward pass reads its input, not its output, and the relu's gradient
//! is written by its user through relu's derivative. When that user is a 2×2 max pooling
//! of stride 2 over even planes and the relu's only user, a training step writes neither
//! the relu's plane nor its gradient: batch norm, relu and the pooling are one pass that
//! writes the pooled output and a winner byte per window into the relu's region, and the
//! pooling's backward pass is done inside batch norm's from those bytes
//! (`ops::batch_norm2d_train_relu_max_pool2d`); eval mode keeps the three ops:
//!
//! ```text
//! if self.__training {                                         // (the batch norm node)
//!     ::nanograd::ops::batch_norm2d_train_relu_max_pool2d(&*__v4, __b, &G, .., &mut *__v8,
//!         ::nanograd::ops::workspace_bytes_mut(&mut *__v7))?;
//! } else { /* batch_norm2d_eval into __v7, relu_in_place */ }
//! if !self.__training {                                        // (the pooling node)
//!     ::nanograd::ops::max_pool2d(&G, &*__v7, __b, &mut *__v8)?;
//! }
//! ..                                                           // (backward, the pooling)
//! if !self.__training {
//!     ::nanograd::ops::max_pool2d_backward_through_relu(&G, &*__v7, &*__v8, &*__g8, __b, &mut *__g5)?;
//! }
//! if self.__training {                                         // (the batch norm node)
//!     ::nanograd::ops::batch_norm2d_train_relu_max_pool2d_backward_overwrite(&*__v4, __b, &G,
//!         .., ::nanograd::ops::workspace_bytes(&*__v7), &*__g8, Some(&mut *__g4), ..)?;
//! } else {
//!     ::nanograd::ops::batch_norm2d_eval_backward_overwrite(.., &*__g5, ..)?;
//! }
//! ```

use super::graph::{v, GraphGen, Mode, Size};
use crate::ir::{NodeId, Op, PoolGeom, Unary};

impl GraphGen<'_> {
    /// The relu that batch norm node `id` writes in a training step (see the module's doc).
    pub(super) fn fused_relu(&self, id: NodeId) -> Option<NodeId> {
        if self.mode != Mode::Train
            || !self.backward
            || !matches!(self.g.nodes[id].op, Op::BatchNorm2d { .. })
            || self.root[self.g.output] == id
        {
            return None;
        }
        let relu = self.only_user(id)?;
        let node = &self.g.nodes[relu];
        (matches!(node.op, Op::Unary(Unary::Relu))
            && node.inputs[0] == id
            && self.folded_relu[relu])
            .then_some(relu)
    }

    /// The max pooling that batch norm node `id` does with its relu in a training step (see
    /// the module's doc): the relu's only user, a 2×2 pooling of stride 2 without padding
    /// over even planes that does the relu's backward pass.
    pub(super) fn fused_pool(&self, id: NodeId) -> Option<(NodeId, PoolGeom)> {
        let relu = self.fused_relu(id)?;
        let pool = self.only_user(relu)?;
        if self.through_relu(pool, 0) != Some(relu) {
            return None;
        }
        match self.g.nodes[pool].op {
            Op::MaxPool2d(pg)
                if pg.kernel == 2
                    && pg.stride == 2
                    && pg.padding == 0
                    && pg.h % 2 == 0
                    && pg.w % 2 == 0 =>
            {
                Some((pool, pg))
            }
            _ => None,
        }
    }

    /// The one node that reads node `id` (through any aliases of it), if exactly one does.
    fn only_user(&self, id: NodeId) -> Option<NodeId> {
        let mut users = (0..self.g.nodes.len())
            .filter(|&u| self.g.nodes[u].inputs.iter().any(|&i| self.root[i] == id));
        let user = users.next()?;
        users.next().is_none().then_some(user)
    }

    /// Whether max pooling node `id` leaves its training step, forward and backward, to the
    /// batch norm before its relu.
    pub(super) fn is_fused_pool(&self, id: NodeId) -> bool {
        let Some(relu) = self.through_relu(id, 0) else {
            return false;
        };
        let bn = self.g.nodes[relu].inputs[0];
        self.fused_pool(bn).map(|(p, _)| p) == Some(id)
    }

    /// Whether relu node `id` is written by the batch norm before it.
    pub(super) fn is_fused_relu(&self, id: NodeId) -> bool {
        let node = &self.g.nodes[id];
        matches!(node.op, Op::Unary(Unary::Relu)) && self.fused_relu(node.inputs[0]) == Some(id)
    }

    /// Plans the regions of the batch norms that write their relus' outputs empty: once
    /// [`GraphGen::folded_relu`] is known, after the plan.
    pub(super) fn empty_fused_regions(&mut self) {
        for id in 0..self.g.nodes.len() {
            if self.fused_relu(id).is_some() {
                let name = v(id);
                if let Some(region) = self.regions.iter_mut().find(|(r, _)| *r == name) {
                    region.1 = Size::fixed(0);
                }
            }
        }
    }
}
