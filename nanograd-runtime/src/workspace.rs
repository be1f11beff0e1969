//! [`Workspace`]: the scratch memory of generated code, grown once and reused.

use alloc::vec::Vec;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
#[cfg(feature = "std")]
use serde::{Deserialize, Serialize};

use crate::blas::PackedWeight;
use crate::{Error, Float, Result};

/// The random stream of a workspace (dropout masks): ChaCha8, serialisable for checkpoints
/// (with `std`) as `{seed, stream, word_pos}`, the format rand_chacha has kept since 0.3.
pub type WorkspaceRng = ChaCha8Rng;

/// Scratch memory for a model's forward and backward passes, and the random stream of its
/// dropout layers. Generated `_into` methods take one; it grows to the largest batch it has
/// served and is then reused without allocating.
///
/// With `std` it is serialisable (its random stream only: the scratch memory is not saved).
#[derive(Clone)]
#[cfg_attr(feature = "std", derive(Serialize, Deserialize))]
pub struct Workspace<T: Float> {
    #[cfg_attr(feature = "std", serde(skip))]
    buf: Vec<T>,
    rng: ChaCha8Rng,
    /// Dense weights packed for inference, one slot per dense layer of the model served.
    #[cfg_attr(feature = "std", serde(skip))]
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

/// How many workspaces a thread keeps for the allocating methods, per element type: one per
/// model it served most recently.
#[cfg(feature = "std")]
const THREAD_CACHE: usize = 8;

/// One workspace of the thread cache: its owner's address, and the workspace itself unless a
/// call has it.
#[cfg(feature = "std")]
type CacheSlot<T> = (usize, Option<Box<Workspace<T>>>);

/// One thread's cache of `Workspace<T>`, most recently used first.
#[cfg(feature = "std")]
type Cache<T> = std::cell::RefCell<Vec<CacheSlot<T>>>;

#[cfg(feature = "std")]
std::thread_local! {
    /// The `f32` workspaces of this thread's allocating calls.
    static CACHED_F32: Cache<f32> = const { std::cell::RefCell::new(Vec::new()) };
    /// The `f64` workspaces of this thread's allocating calls.
    static CACHED_F64: Cache<f64> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Runs `g` on this thread's cache of `Workspace<T>` (`None` while the thread is being torn
/// down, or inside another `g`). Each element type has a list of its own, so that a lookup
/// compares owners only: the `Any` cast below names one concrete type on each side and
/// resolves while compiling, where a cache of `Box<dyn Any>` checked the type of every
/// workspace it lent.
#[cfg(feature = "std")]
fn with_cache<T: Float, R>(g: impl FnOnce(&mut Vec<CacheSlot<T>>) -> R) -> Option<R> {
    fn on<U: Float, T: Float, R>(
        cache: &'static std::thread::LocalKey<Cache<U>>,
        g: impl FnOnce(&mut Vec<CacheSlot<T>>) -> R,
    ) -> Option<R> {
        cache
            .try_with(|c| {
                let mut c = c.try_borrow_mut().ok()?;
                let slots: &mut dyn core::any::Any = &mut *c;
                slots.downcast_mut::<Vec<CacheSlot<T>>>().map(g)
            })
            .ok()
            .flatten()
    }
    if core::any::TypeId::of::<T>() == core::any::TypeId::of::<f32>() {
        on(&CACHED_F32, g)
    } else {
        on(&CACHED_F64, g)
    }
}

impl<T: Float> Workspace<T> {
    /// Runs `f` with the workspace this thread keeps for the model at `owner`: what the
    /// allocating methods of `model!` (`forward`, `loss`, ..) compute in, so that from their
    /// second call on they allocate only their result and read packed weights like the
    /// `_into` forms. A thread keeps, per element type, the workspaces of the 8 models it
    /// served last (and frees the least recently used beyond that);
    /// [`Workspace::release_thread_cache`] frees them all. Correct whatever the owner:
    /// buffers grow as needed, packed weights are checked against their parameter's stamp,
    /// so a workspace that served another model only costs a repack. A call made from inside
    /// `f` gets a fresh workspace.
    ///
    /// Without the `std` feature there are no thread-locals: every call gets a fresh
    /// workspace (the allocating methods then allocate their intermediates on each call; the
    /// `_into` forms with a workspace the caller keeps do not).
    #[cfg(feature = "std")]
    #[inline]
    pub fn with_thread_cache<R>(owner: *const (), f: impl FnOnce(&mut Workspace<T>) -> R) -> R {
        // inlined, with the cache's work out of line: `f`'s result (a `Result` of a few words
        // for a generated method) is then checked where `f` wrote it, not copied back through
        // this call, which on the 2->8->1 network was half of this function's time
        let key = owner as usize;
        let mut ws = Self::lend(key);
        let r = f(&mut ws);
        Self::give_back(key, ws);
        r
    }

    /// The workspace the thread keeps for `key`, taken out of its slot (which stays where it
    /// is: a model called again and again finds it first and puts it back without moving
    /// anything), or a new one.
    #[cfg(feature = "std")]
    fn lend(key: usize) -> Box<Workspace<T>> {
        let taken = with_cache::<T, _>(|c| c.iter_mut().find(|(k, _)| *k == key)?.1.take());
        taken
            .flatten()
            .unwrap_or_else(|| Box::new(Workspace::new()))
    }

    /// Puts `ws` back into `key`'s slot, first in the cache, dropping the least recently used
    /// slot beyond [`THREAD_CACHE`].
    #[cfg(feature = "std")]
    fn give_back(key: usize, ws: Box<Workspace<T>>) {
        with_cache::<T, _>(|c| match c.iter().position(|(k, _)| *k == key) {
            Some(0) => c[0].1 = Some(ws),
            Some(at) => {
                c.remove(at);
                c.insert(0, (key, Some(ws)));
            }
            None => {
                c.insert(0, (key, Some(ws)));
                c.truncate(THREAD_CACHE);
            }
        });
    }

    /// Runs `f` with a fresh workspace: without `std` there is no per-thread cache (see the
    /// `std` version of this function).
    #[cfg(not(feature = "std"))]
    pub fn with_thread_cache<R>(owner: *const (), f: impl FnOnce(&mut Workspace<T>) -> R) -> R {
        let _ = owner;
        f(&mut Workspace::new())
    }

    /// Frees every workspace this thread keeps for the allocating methods (see
    /// [`Workspace::with_thread_cache`]); their next calls grow new ones. Without `std`
    /// there is nothing to free.
    pub fn release_thread_cache() {
        #[cfg(feature = "std")]
        {
            with_cache::<f32, _>(Vec::clear);
            with_cache::<f64, _>(Vec::clear);
        }
    }
}

impl<T: Float> Default for Workspace<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: Float> core::fmt::Debug for Workspace<T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
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
    fn the_thread_cache_keeps_one_workspace_per_owner() {
        let (a, b) = (
            std::ptr::without_provenance::<()>(1),
            std::ptr::without_provenance::<()>(2),
        );
        Workspace::<f32>::release_thread_cache();
        let pa = Workspace::<f32>::with_thread_cache(a, |ws| ws.split(64).0.as_ptr() as usize);
        Workspace::<f32>::with_thread_cache(b, |ws| ws.split(8).0.len());
        // the same owner gets its workspace back, grown as it was
        Workspace::<f32>::with_thread_cache(a, |ws| {
            assert_eq!(ws.capacity(), 64);
            assert_eq!(ws.split(64).0.as_ptr() as usize, pa);
        });
        // another element type is another workspace
        Workspace::<f64>::with_thread_cache(a, |ws| assert_eq!(ws.capacity(), 0));
        // a call inside a call gets a fresh one
        Workspace::<f32>::with_thread_cache(a, |outer| {
            assert_eq!(outer.capacity(), 64);
            Workspace::<f32>::with_thread_cache(a, |inner| assert_eq!(inner.capacity(), 0));
        });
        // at most THREAD_CACHE owners are kept: the least recent goes
        for k in 10..10 + THREAD_CACHE {
            Workspace::<f32>::with_thread_cache(std::ptr::without_provenance(k), |ws| {
                ws.split(1).0.len()
            });
        }
        Workspace::<f32>::with_thread_cache(b, |ws| assert_eq!(ws.capacity(), 0));
        Workspace::<f32>::release_thread_cache();
        Workspace::<f32>::with_thread_cache(a, |ws| assert_eq!(ws.capacity(), 0));
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
