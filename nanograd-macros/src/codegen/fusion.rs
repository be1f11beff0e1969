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
//! is written by its user through relu's derivative, so the backward pass is unchanged.

use super::graph::{v, GraphGen, Mode, Size};
use crate::ir::{NodeId, Op, Unary};

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
        let mut users = (0..self.g.nodes.len())
            .filter(|&u| self.g.nodes[u].inputs.iter().any(|&i| self.root[i] == id));
        let relu = users.next()?;
        let only = users.next().is_none();
        let node = &self.g.nodes[relu];
        (only
            && matches!(node.op, Op::Unary(Unary::Relu))
            && node.inputs[0] == id
            && self.folded_relu[relu])
            .then_some(relu)
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
