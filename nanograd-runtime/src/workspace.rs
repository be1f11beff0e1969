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

/// One thread's workspaces of one element type: the one of the model served last, which a
/// model called again and again takes and puts back without searching or moving anything,
/// then up to [`THREAD_CACHE`]` - 1` others, most recently used first. A workspace a call has
/// is in neither.
#[cfg(feature = "std")]
struct Cache<T: Float> {
    /// The owner served last and its workspace (`(0, None)` while a call has it: no owner's
    /// address is 0).
    recent: core::cell::Cell<(usize, Option<Box<Workspace<T>>>)>,
    older: core::cell::RefCell<Vec<(usize, Box<Workspace<T>>)>>,
}

#[cfg(feature = "std")]
impl<T: Float> Cache<T> {
    const fn new() -> Self {
        Cache {
            recent: core::cell::Cell::new((0, None)),
            older: core::cell::RefCell::new(Vec::new()),
        }
    }

    /// `key`'s workspace, taken out of the cache.
    fn take(&self, key: usize) -> Option<Box<Workspace<T>>> {
        match self.recent.take() {
            (k, Some(ws)) if k == key => Some(ws),
            other => {
                self.recent.set(other);
                let mut older = self.older.try_borrow_mut().ok()?;
                let at = older.iter().position(|(k, _)| *k == key)?;
                Some(older.remove(at).1)
            }
        }
    }

    /// Keeps `ws` as `key`'s workspace, the most recent; the one it displaces moves to the
    /// front of the older ones (the least recently used beyond [`THREAD_CACHE`] is dropped),
    /// unless it is `key`'s own (a workspace lent to a call made inside another call).
    fn put(&self, key: usize, ws: Box<Workspace<T>>) {
        if let (k, Some(displaced)) = self.recent.replace((key, Some(ws))) {
            if k != key {
                if let Ok(mut older) = self.older.try_borrow_mut() {
                    older.insert(0, (k, displaced));
                    older.truncate(THREAD_CACHE - 1);
                }
            }
        }
    }

    fn clear(&self) {
        self.recent.set((0, None));
        if let Ok(mut older) = self.older.try_borrow_mut() {
            older.clear();
        }
    }
}

#[cfg(feature = "std")]
std::thread_local! {
    /// The `f32` workspaces of this thread's allocating calls.
    static CACHED_F32: Cache<f32> = const { Cache::new() };
    /// The `f64` workspaces of this thread's allocating calls.
    static CACHED_F64: Cache<f64> = const { Cache::new() };
}

/// Runs `g` on this thread's cache of `Workspace<T>` (`None` while the thread is being torn
/// down). Each element type has a cache of its own, so that a lookup compares owners only:
/// the `Any` cast below names one concrete type on each side and resolves while compiling.
#[cfg(feature = "std")]
fn with_cache<T: Float, R>(g: impl FnOnce(&Cache<T>) -> R) -> Option<R> {
    fn on<U: Float, T: Float, R>(
        cache: &'static std::thread::LocalKey<Cache<U>>,
        g: impl FnOnce(&Cache<T>) -> R,
    ) -> Option<R> {
        cache
            .try_with(|c| (c as &dyn core::any::Any).downcast_ref::<Cache<T>>().map(g))
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

    /// The workspace the thread keeps for `key`, taken out of the cache, or a new one.
    #[cfg(feature = "std")]
    fn lend(key: usize) -> Box<Workspace<T>> {
        with_cache::<T, _>(|c| c.take(key))
            .flatten()
            .unwrap_or_else(|| Box::new(Workspace::new()))
    }

    /// Puts `ws` back as `key`'s workspace, the most recently used.
    #[cfg(feature = "std")]
    fn give_back(key: usize, ws: Box<Workspace<T>>) {
        with_cache::<T, _>(|c| c.put(key, ws));
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
            with_cache::<f32, _>(Cache::clear);
            with_cache::<f64, _>(Cache::clear);
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
        // and so does the other, served before the last one
        Workspace::<f32>::with_thread_cache(b, |ws| assert_eq!(ws.capacity(), 8));
        Workspace::<f32>::with_thread_cache(a, |ws| assert_eq!(ws.capacity(), 64));
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
