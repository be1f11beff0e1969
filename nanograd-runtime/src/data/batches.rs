//! Shuffled mini-batches: [`Batches`] hands out slices of a permutation of `0..n`, reshuffled
//! each epoch from a caller's seeded RNG; [`gather`] copies the rows they name into a batch
//! buffer. Neither allocates once the [`Batches`] exists.

use rand::{Rng, RngExt};

use crate::{check_len, invalid, Result};

/// The mini-batches of a data set of `n` samples: index slices of at most `batch_size`, each
/// index of `0..n` in exactly one batch per epoch.
///
/// Each call to [`Batches::epoch`] puts the order back to `0..n` and shuffles it with
/// Fisher–Yates, so an epoch's order depends on the RNG's state only: reseeding (or restoring a
/// checkpointed RNG) replays it. The last batch is partial when `batch_size` does not divide
/// `n`, unless [`Batches::drop_last`] drops it, as PyTorch's `DataLoader(drop_last=True)`.
///
/// ```
/// use nanograd_runtime::data::{gather, Batches};
/// use nanograd_runtime::rand::{rngs::StdRng, SeedableRng};
///
/// let images = vec![[0.5f32; 4]; 10]; // 10 samples of 4 features
/// let labels = vec![3u8; 10];
/// let mut rng = StdRng::seed_from_u64(0);
/// let mut batches = Batches::new(images.len(), 4)?;
/// let (mut x, mut y) = (vec![[0.0f32; 4]; 4], vec![0usize; 4]); // batch buffers, made once
/// let mut seen = 0;
/// for _epoch in 0..2 {
///     for idx in batches.epoch(&mut rng) {
///         let (x, y) = (&mut x[..idx.len()], &mut y[..idx.len()]); // 4, 4, then 2
///         gather(&images, idx, x)?;
///         gather(&labels, idx, y)?; // u8 labels widen to usize
///         seen += idx.len();
///     }
/// }
/// assert_eq!(seen, 20);
/// # Ok::<(), nanograd_runtime::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Batches {
    order: Vec<usize>,
    batch_size: usize,
    drop_last: bool,
}

impl Batches {
    /// Batches of `batch_size` over `n` samples, in the order `0..n` until the first
    /// [`Batches::epoch`]; the last partial batch is kept.
    ///
    /// # Errors
    /// [`crate::Error::InvalidArgument`] if `batch_size` is 0.
    pub fn new(n: usize, batch_size: usize) -> Result<Self> {
        if batch_size == 0 {
            return Err(invalid(
                "Batches::new",
                "batch_size is 0, expected at least 1",
            ));
        }
        Ok(Batches {
            order: (0..n).collect(),
            batch_size,
            drop_last: false,
        })
    }

    /// Whether to drop the last batch when it is smaller than `batch_size` (default: keep it).
    #[must_use]
    pub fn drop_last(mut self, drop_last: bool) -> Self {
        self.drop_last = drop_last;
        self
    }

    /// Number of samples, `n`.
    pub fn samples(&self) -> usize {
        self.order.len()
    }

    /// The largest batch size.
    pub fn batch_size(&self) -> usize {
        self.batch_size
    }

    /// Number of batches in an epoch.
    pub fn len(&self) -> usize {
        let n = self.order.len();
        if self.drop_last {
            n / self.batch_size
        } else {
            n.div_ceil(self.batch_size)
        }
    }

    /// Whether an epoch has no batch at all.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Starts an epoch: shuffles `0..n` with Fisher–Yates from `rng` and returns its batches.
    pub fn epoch<R: Rng + ?Sized>(&mut self, rng: &mut R) -> std::slice::Chunks<'_, usize> {
        self.reset();
        for i in (1..self.order.len()).rev() {
            let j = rng.random_range(0..=i);
            self.order.swap(i, j);
        }
        self.batches()
    }

    /// The batches in the order `0..n`, e.g. for evaluation.
    pub fn in_order(&mut self) -> std::slice::Chunks<'_, usize> {
        self.reset();
        self.batches()
    }

    /// The current order of all samples: `0..n` or the last epoch's permutation.
    pub fn order(&self) -> &[usize] {
        &self.order
    }

    fn reset(&mut self) {
        for (i, o) in self.order.iter_mut().enumerate() {
            *o = i;
        }
    }

    fn batches(&self) -> std::slice::Chunks<'_, usize> {
        let kept = self.len().saturating_mul(self.batch_size);
        let end = kept.min(self.order.len());
        self.order[..end].chunks(self.batch_size)
    }
}

/// `dst[k] = src[indices[k]]` for every `k`: the rows of a batch, copied into a buffer the
/// caller owns. Rows convert on the way with [`From`] (e.g. `u8` labels into `usize`).
///
/// ```
/// use nanograd_runtime::data::gather;
/// let mut dst = [0usize; 2];
/// gather(&[7u8, 8, 9], &[2, 0], &mut dst)?;
/// assert_eq!(dst, [9, 7]);
/// assert!(gather(&[7u8, 8, 9], &[3, 0], &mut dst).is_err());
/// # Ok::<(), nanograd_runtime::Error>(())
/// ```
///
/// # Errors
/// [`crate::Error::LengthMismatch`] if `dst` has not one row per index;
/// [`crate::Error::InvalidArgument`] if an index is out of range for `src`.
pub fn gather<S: Copy, D: From<S>>(src: &[S], indices: &[usize], dst: &mut [D]) -> Result<()> {
    check_len("gather", "dst", indices.len(), dst.len())?;
    for (k, (&i, d)) in indices.iter().zip(dst.iter_mut()).enumerate() {
        let row = src.get(i).ok_or_else(|| {
            invalid(
                "gather",
                format!(
                    "index {i} at position {k} is out of range for {} rows",
                    src.len()
                ),
            )
        })?;
        *d = D::from(*row);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{rngs::StdRng, SeedableRng};

    fn epoch_of(b: &mut Batches, rng: &mut StdRng) -> Vec<Vec<usize>> {
        b.epoch(rng).map(|s| s.to_vec()).collect()
    }

    #[test]
    fn literal_sizes() {
        // 10 samples in batches of 4: 4 + 4 + 2, or 4 + 4 when the partial batch is dropped
        let mut b = Batches::new(10, 4).unwrap();
        assert_eq!((b.len(), b.samples(), b.batch_size()), (3, 10, 4));
        let sizes: Vec<usize> = b.in_order().map(<[usize]>::len).collect();
        assert_eq!(sizes, [4, 4, 2]);
        let first: Vec<&[usize]> = b.in_order().collect();
        assert_eq!(first, [&[0, 1, 2, 3][..], &[4, 5, 6, 7], &[8, 9]]);
        let mut b = b.drop_last(true);
        assert_eq!(b.len(), 2);
        let mut rng = StdRng::seed_from_u64(1);
        let sizes: Vec<usize> = b.epoch(&mut rng).map(<[usize]>::len).collect();
        assert_eq!(sizes, [4, 4]);
        // batch larger than the data set: one partial batch, or none
        let mut b = Batches::new(3, 8).unwrap();
        assert_eq!(b.in_order().count(), 1);
        assert!(Batches::new(3, 8).unwrap().drop_last(true).is_empty());
        assert!(Batches::new(0, 8).unwrap().is_empty());
    }

    #[test]
    fn fisher_yates_draws_from_the_rng() {
        // n = 3: swap(2, j2) with j2 = random_range(0..=2), then swap(1, j1) with j1 = random_range(0..=1)
        let mut b = Batches::new(3, 3).unwrap();
        let mut rng = StdRng::seed_from_u64(5);
        let got = b.epoch(&mut rng).next().unwrap().to_vec();
        let mut draw = StdRng::seed_from_u64(5);
        let (j2, j1) = (draw.random_range(0..=2usize), draw.random_range(0..=1usize));
        let mut want = [0, 1, 2];
        want.swap(2, j2);
        want.swap(1, j1);
        assert_eq!(got, want);
    }

    #[test]
    fn every_index_once_per_epoch_and_reproducible() {
        let mut b = Batches::new(103, 10).unwrap();
        let mut rng = StdRng::seed_from_u64(42);
        let e1 = epoch_of(&mut b, &mut rng);
        let e2 = epoch_of(&mut b, &mut rng);
        for e in [&e1, &e2] {
            let mut all: Vec<usize> = e.concat();
            all.sort_unstable();
            assert_eq!(all, (0..103).collect::<Vec<_>>());
            assert_eq!(e.len(), 11);
        }
        assert_ne!(e1, e2, "two epochs in the same order");
        let mut again = Batches::new(103, 10).unwrap();
        let mut rng = StdRng::seed_from_u64(42);
        assert_eq!(epoch_of(&mut again, &mut rng), e1);
        assert_eq!(epoch_of(&mut again, &mut rng), e2);
        let mut other = StdRng::seed_from_u64(43);
        assert_ne!(epoch_of(&mut again, &mut other), e1);
    }

    #[test]
    fn gather_rows_and_errors() {
        let src = [[1.0f64, 2.0], [3.0, 4.0], [5.0, 6.0]];
        let mut dst = [[0.0f64; 2]; 2];
        gather(&src, &[2, 2], &mut dst).unwrap();
        assert_eq!(dst, [[5.0, 6.0], [5.0, 6.0]]);
        let mut f32s = [[0.0f32; 2]; 1];
        gather(&[[0.5f32, 1.5]], &[0], &mut f32s).unwrap();
        assert_eq!(f32s, [[0.5, 1.5]]);
        assert_eq!(
            gather(&src, &[0, 1, 2], &mut dst).unwrap_err().to_string(),
            "length mismatch in gather: `dst` has 2 elements, expected 3"
        );
        assert_eq!(
            gather(&src, &[1, 3], &mut dst).unwrap_err().to_string(),
            "invalid argument to gather: index 3 at position 1 is out of range for 3 rows"
        );
        assert_eq!(
            Batches::new(5, 0).unwrap_err().to_string(),
            "invalid argument to Batches::new: batch_size is 0, expected at least 1"
        );
    }
}
