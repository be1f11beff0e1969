//! [`Workspace`]: the scratch memory of generated code, grown once and reused.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::blas::PackedWeight;
use crate::{Error, Float, Result};

/// The random stream of a workspace (dropout masks): ChaCha8, serialisable for checkpoints.
pub type WorkspaceRng = ChaCha8Rng;

/// Scratch memory for a model's forward and backward passes, and the random stream of its
/// dropout layers. Generated `_into` methods take one; it grows to the largest batch it has
/// served and is then reused without allocating.
#[derive(Clone, Serialize, Deserialize)]
pub struct Workspace<T: Float> {
    #[serde(skip)]
    buf: Vec<T>,
    rng: ChaCha8Rng,
    /// Dense weights packed for inference, one slot per dense layer of the model served.
    #[serde(skip)]
    packs: Vec<PackedWeight<T>>,
}

impl<T: Float> Workspace<T> {
    /// An empty workspace whose random stream starts from seed 0.
    pub fn new() -> Self {
        Self::with_seed(0)
    }

    /// An empty workspace whose random stream (dropout masks) starts from `seed`.
    pub fn with_seed(seed: u64) -> Self {
        Workspace {
            buf: Vec::new(),
            rng: ChaCha8Rng::seed_from_u64(seed),
            packs: Vec::new(),
        }
    }

    /// The number of elements the workspace holds now.
    pub fn capacity(&self) -> usize {
        self.buf.len()
    }

    /// `len` elements of scratch memory (growing the workspace if it is smaller) and the
    /// random stream. The memory holds whatever the last user left there.
    pub fn split(&mut self, len: usize) -> (&mut [T], &mut ChaCha8Rng) {
        if self.buf.len() < len {
            self.buf.resize(len, T::zero());
        }
        (&mut self.buf[..len], &mut self.rng)
    }

    /// Like [`Workspace::split`], with `packs` caches of packed dense weights (see
    /// [`PackedWeight`]), kept from call to call. A model's `_into` methods use slot `i` for
    /// their `i`-th dense layer; serving another model from the same workspace is correct,
    /// but repacks whenever the slot's weight changes.
    pub fn split_packed(
        &mut self,
        len: usize,
        packs: usize,
    ) -> (&mut [T], &mut ChaCha8Rng, &mut [PackedWeight<T>]) {
        if self.buf.len() < len {
            self.buf.resize(len, T::zero());
        }
        if self.packs.len() < packs {
            self.packs.resize_with(packs, PackedWeight::new);
        }
        (
            &mut self.buf[..len],
            &mut self.rng,
            &mut self.packs[..packs],
        )
    }

    /// The random stream of dropout masks.
    pub fn rng(&self) -> &WorkspaceRng {
        &self.rng
    }

    /// The random stream of dropout masks, mutably (to restore a checkpoint).
    pub fn rng_mut(&mut self) -> &mut WorkspaceRng {
        &mut self.rng
    }
}

impl<T: Float> Default for Workspace<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: Float> std::fmt::Debug for Workspace<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Workspace")
            .field("capacity", &self.buf.len())
            .finish_non_exhaustive()
    }
}

/// Checks that an argument of a generated method has the batch size of the first one.
pub fn check_batch(
    op: &'static str,
    what: &'static str,
    expected: usize,
    got: usize,
) -> Result<()> {
    if expected == got {
        Ok(())
    } else {
        Err(Error::BatchMismatch {
            op,
            what,
            expected,
            got,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_once_then_reuses() {
        let mut ws = Workspace::<f32>::new();
        assert_eq!(ws.split(10).0.len(), 10);
        let ptr = ws.split(100).0.as_ptr();
        assert_eq!(ws.capacity(), 100);
        // a smaller request reuses the same memory
        assert_eq!(ws.split(50).0.as_ptr(), ptr);
        assert_eq!(ws.capacity(), 100);
    }

    #[test]
    fn batch_mismatch_names_both_sizes() {
        let e = check_batch("Mlp::loss", "target", 64, 63).unwrap_err();
        assert_eq!(
            e.to_string(),
            "batch size mismatch in Mlp::loss: `target` has 63 rows, expected 64"
        );
    }
}
