//! Dense-layer weights packed once for inference ([`PackedWeight`]); the AVX-512 products
//! that read them are in `avx512.rs`.

use crate::param::Param;
use crate::Float;
use alloc::vec::Vec;

/// Below this many weight elements the unpacked product is as fast: nothing is packed (the
/// `model!` macro mirrors it, to give such layers no cache slot).
pub const MIN_PACK: usize = 4096;

/// One dense layer's weight packed for inference, cached in a [`crate::Workspace`] slot.
///
/// `ops::dense` computes `y = x·Wᵀ + b` with `W: [out, in]` row-major. A general GEMM
/// repacks `W` into its own layout on every call, and a row-by-row GEMV reads `W` as several
/// interleaved streams; both cost more than the arithmetic when the same `W` serves call
/// after call. A `PackedWeight` keeps `W` rearranged into panels of
/// [`Avx512::NR`](crate::blas::Avx512::NR) output columns (two AVX-512 registers wide):
/// panel `p` holds, for every `k` in `0..in`, the row `W[p·NR .. p·NR + NR][k]`
/// contiguously, zero-padded past `out`. The products stream each panel once per block of
/// 96 rows of `x`, in order: tiles of 12 (then 8, 4) rows against one panel, `x[i][k]`
/// broadcast and two panel registers loaded per `k`; the `batch % 4` rows left, batch 1
/// among them, one by one with four independent accumulator pairs.
///
/// The panels start on a 64-byte boundary (a cache line): a heap block of this size is only
/// 16-byte aligned, and every two-register load of a panel at 16 bytes past a line's start
/// touches two lines; the batch-1 product, which streams the whole weight from L2 once per
/// call, took 1.8 times as long on such panels.
///
/// The panels are valid for one state of the weight: every [`Param`] carries a stamp that
/// changes on each mutable access ([`Param::value_mut`], an optimizer step, a load), and a
/// `PackedWeight` remembers the stamp it packed. It packs on the *second* call that sees the
/// same stamp, so a training loop, whose weights change every step, never pays for it, and
/// a one-off call does not either.
#[derive(Clone, Default)]
pub struct PackedWeight<T> {
    /// The panels, from `start` on, with up to [`line_pad`] elements before them.
    data: Vec<T>,
    /// Where the panels start in `data`: the first element on a 64-byte boundary.
    start: usize,
    /// The stamp of the weight `data` holds, 0 for none.
    packed: u64,
    /// The stamp of the weight seen on the last call, for the pack-on-second-use rule.
    seen: u64,
    /// `(out, in)` of the packed weight.
    dims: (usize, usize),
}

impl<T: Float> PackedWeight<T> {
    /// An empty cache.
    pub fn new() -> Self {
        PackedWeight {
            data: Vec::new(),
            start: 0,
            packed: 0,
            seen: 0,
            dims: (0, 0),
        }
    }

    /// Whether this CPU packs weights at all (AVX-512): elsewhere [`crate::ops::dense_cached`]
    /// always computes as [`crate::ops::dense`] does.
    pub fn available() -> bool {
        T::available()
    }

    /// Whether this cache holds panels of `w` as it is now.
    pub fn holds(&self, w: &Param<T>) -> bool {
        self.packed != 0 && self.packed == w.stamp()
    }

    /// The panels of `w: [out_f, in_f]` (`w.len() == out_f * in_f`, checked by the caller)
    /// if the packed product applies: the CPU has AVX-512, `w` is not tiny, and this is at
    /// least the second call with `w` in its current state. The first sight of a state
    /// reserves the memory, so that packing on the next call does not allocate.
    pub(crate) fn panels(&mut self, w: &Param<T>, out_f: usize, in_f: usize) -> Option<&[T]> {
        if out_f * in_f < MIN_PACK || !T::available() {
            return None;
        }
        let stamp = w.stamp();
        let len = packed_len::<T>(out_f, in_f);
        if self.packed == stamp && self.dims == (out_f, in_f) {
            return Some(&self.data[self.start..][..len]);
        }
        if self.seen == stamp {
            self.data.resize(len + line_pad::<T>(), T::zero());
            // at most `line_pad` elements on: the address of an `f32` or `f64` has a multiple
            // of their size, so some element below the pad is on the boundary
            self.start = self.data.as_ptr().align_offset(64).min(line_pad::<T>());
            T::pack(w.value(), out_f, in_f, &mut self.data[self.start..][..len]);
            self.packed = stamp;
            self.dims = (out_f, in_f);
            return Some(&self.data[self.start..][..len]);
        }
        self.seen = stamp;
        let need = len + line_pad::<T>();
        self.data.reserve(need.saturating_sub(self.data.len()));
        None
    }
}

impl<T> core::fmt::Debug for PackedWeight<T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("PackedWeight")
            .field("dims", &self.dims)
            .field("packed", &(self.packed != 0))
            .finish_non_exhaustive()
    }
}

/// Elements of `T` in a 64-byte cache line: the most a [`PackedWeight`] skips to start its
/// panels on a line.
fn line_pad<T>() -> usize {
    64 / core::mem::size_of::<T>().max(1)
}

/// Rearranges `w: [out_f, in_f]` into panels of `NR` columns (see [`PackedWeight`]).
/// `dst` only grows when it holds less than the panels need.
#[cfg(test)]
pub(crate) fn pack<T: Float>(w: &[T], out_f: usize, in_f: usize, dst: &mut Vec<T>) {
    dst.resize(packed_len::<T>(out_f, in_f), T::zero());
    T::pack(w, out_f, in_f, dst);
}

/// The length of `w: [out_f, in_f]` packed: whole panels of
/// [`Avx512::NR`](crate::blas::Avx512::NR) columns.
pub fn packed_len<T: Float>(out_f: usize, in_f: usize) -> usize {
    out_f.div_ceil(T::NR) * T::NR * in_f
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::blas::Avx512;
    use crate::ops::{dense, dense_cached, dense_packing, dense_scratch_len};
    use crate::testing::random_vec;
    use crate::{assert_close, Workspace};

    #[test]
    fn pack_lays_out_panels_of_nr_columns_zero_padded() {
        // W = [[1, 2], [3, 4], [5, 6]]: out 3, in 2. Panel 0, row k holds W[..][k] in its
        // first three slots and zeros up to NR.
        let w = [1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0];
        let mut dst = vec![f32::NAN; 7];
        pack(&w, 3, 2, &mut dst);
        let nr = f32::NR;
        assert_eq!(dst.len(), nr * 2);
        assert_eq!(dst[..3], [1.0, 3.0, 5.0]);
        assert_eq!(dst[nr..nr + 3], [2.0, 4.0, 6.0]);
        assert!(dst[3..nr].iter().chain(&dst[nr + 3..]).all(|&v| v == 0.0));
    }

    #[test]
    fn pack_splits_columns_over_panels() {
        // out = NR + 1: column NR lands in slot 0 of the second panel.
        let (out_f, in_f) = (f64::NR + 1, 3);
        let w: Vec<f64> = (0..out_f * in_f).map(|i| i as f64).collect();
        let mut dst = Vec::new();
        pack(&w, out_f, in_f, &mut dst);
        let nr = f64::NR;
        assert_eq!(dst.len(), 2 * nr * in_f);
        for k in 0..in_f {
            assert_eq!(dst[nr * in_f + k * nr], w[nr * in_f + k], "k = {k}");
            assert_eq!(dst[k * nr + 5], w[5 * in_f + k], "k = {k}");
        }
    }

    #[test]
    fn packing_in_registers_matches_the_layout_element_by_element() {
        // f32 packs whole panels by 16x16 transposes: two whole panels and a partial one,
        // k in whole blocks of 16 and a tail of 5
        for (out_f, in_f) in [(64, 37), (70, 48), (32, 16), (33, 3)] {
            let w: Vec<f32> = (0..out_f * in_f).map(|i| i as f32).collect();
            let mut fast = Vec::new();
            pack(&w, out_f, in_f, &mut fast);
            let nr = f32::NR;
            assert_eq!(fast.len(), out_f.div_ceil(nr) * nr * in_f);
            for (i, &v) in fast.iter().enumerate() {
                let (p, k, j) = (i / (nr * in_f), i % (nr * in_f) / nr, i % nr);
                let o = p * nr + j;
                let want = if o < out_f { w[o * in_f + k] } else { 0.0 };
                assert_eq!(v, want, "{out_f}x{in_f}: panel {p}, k {k}, column {j}");
            }
        }
    }

    /// `dense_cached` called three times against `dense`, for one shape.
    fn agrees<T: Float>(batch: usize, in_f: usize, out_f: usize, bias: bool, tol: f64) {
        let x = random_vec::<T>(1, batch * in_f, -1.0, 1.0);
        let w = Param::new(&[out_f, in_f], random_vec::<T>(2, out_f * in_f, -1.0, 1.0)).unwrap();
        let b = bias.then(|| random_vec::<T>(3, out_f, -1.0, 1.0));
        let mut want = vec![T::zero(); batch * out_f];
        dense(&x, w.value(), b.as_deref(), batch, in_f, out_f, &mut want).unwrap();
        let mut pack = PackedWeight::new();
        for call in 0..3 {
            let mut y = vec![T::from_f64(f64::NAN); batch * out_f];
            dense_cached(&x, &w, b.as_deref(), batch, in_f, out_f, &mut y, &mut pack).unwrap();
            assert_close!(y, want, tol);
            let packs = call >= 1 && out_f * in_f >= MIN_PACK && T::available();
            assert_eq!(
                pack.holds(&w),
                packs,
                "{batch}x{in_f}->{out_f}, call {call}"
            );
        }
    }

    #[test]
    fn packed_product_matches_dense_for_every_tile_and_panel_shape() {
        // batches: the one-row GEMV, 12/4/1-row tiles and their mixes, blocks of rows;
        // widths: one panel, a padded panel, several panels; depths: odd, below and above
        // the 4-step unroll
        for &(batch, in_f, out_f) in &[
            (1, 784, 128),
            (1, 4097, 1),
            (1, 130, 33),
            (2, 130, 33),
            (12, 64, 64),
            (17, 100, 45),
            (64, 784, 128),
            (5, 1, 4096),
            (29, 257, 70),
            // blocks of 96 rows, a last block of 108, three rows left
            (303, 130, 97),
        ] {
            for bias in [true, false] {
                agrees::<f64>(batch, in_f, out_f, bias, 1e-12);
                agrees::<f32>(batch, in_f, out_f, bias, 2e-4);
            }
        }
    }

    #[test]
    fn packed_rows_one_by_one_match_dense_for_every_batch_and_panel_count() {
        // the rows no tile takes run two panels at a time, an odd last panel alone: batches
        // 1 to 13 (every remainder of 4, with and without tiles before it), panel counts
        // from one to eight (f32 panels of 32 columns, f64 of 16), partial last panels
        for batch in 1..=13 {
            for &(in_f, out_f) in &[(67, 97), (130, 65), (4096, 1), (33, 128), (41, 130)] {
                agrees::<f32>(batch, in_f, out_f, batch % 2 == 0, 2e-4);
                agrees::<f64>(batch, in_f, out_f, batch % 2 == 1, 1e-12);
            }
        }
    }

    /// `y = x·Wᵀ + b` in the packed tiles' order: each element one chain of fused
    /// multiply-adds along `k` from zero, then its bias added.
    fn fma_chains<T: Float>(x: &[T], w: &[T], b: Option<&[T]>, in_f: usize) -> Vec<T> {
        let mut y = Vec::new();
        for row in x.chunks_exact(in_f) {
            for (o, wo) in w.chunks_exact(in_f).enumerate() {
                let s = row
                    .iter()
                    .zip(wo)
                    .fold(T::zero(), |s, (&a, &w)| a.mul_add(w, s));
                y.push(b.map_or(s, |b| s + b[o]));
            }
        }
        y
    }

    /// `dense_cached` at `batch` rows (every one a tile's: `batch % 4 == 0`), bit for bit
    /// against [`fma_chains`].
    fn tiles_match_fma_chains<T: Float>(batch: usize, in_f: usize, out_f: usize, bias: bool) {
        let x = random_vec::<T>(21, batch * in_f, -1.0, 1.0);
        let w = Param::new(&[out_f, in_f], random_vec::<T>(22, out_f * in_f, -1.0, 1.0)).unwrap();
        let b = bias.then(|| random_vec::<T>(23, out_f, -1.0, 1.0));
        let want = fma_chains(&x, w.value(), b.as_deref(), in_f);
        let mut pack = PackedWeight::new();
        let mut y = vec![T::from_f64(f64::NAN); batch * out_f];
        for _ in 0..2 {
            dense_cached(&x, &w, b.as_deref(), batch, in_f, out_f, &mut y, &mut pack).unwrap();
        }
        assert!(pack.holds(&w));
        for (i, (&y, &want)) in y.iter().zip(&want).enumerate() {
            let (r, o) = (i / out_f, i % out_f);
            assert!(
                y == want,
                "{batch}x{in_f}->{out_f}: y[{r}][{o}] = {y:?}, want {want:?}"
            );
        }
    }

    #[test]
    fn packed_tiles_are_fma_chains_along_k_for_every_batch_and_depth_block() {
        if !f32::available() {
            return;
        }
        // tiles of 12, 8 and 4 rows; blocks of 96 rows and a last longer one (200 rows: 96
        // and 104); odd depths; widths of one panel, a partial panel, several
        for &(batch, in_f, out_f) in &[
            (4, 64, 64),
            (8, 129, 75),
            (12, 255, 33),
            (16, 256, 97),
            (20, 257, 64),
            (28, 600, 45),
            (64, 784, 128),
            (64, 128, 384),
            (200, 70, 65),
            (768, 128, 75),
        ] {
            tiles_match_fma_chains::<f32>(batch, in_f, out_f, true);
            tiles_match_fma_chains::<f64>(batch, in_f, out_f, false);
        }
    }

    #[test]
    fn a_row_of_a_tile_has_the_same_bits_whatever_the_batch() {
        // rows 0..4 of a 4-row call, of an 8-row tile (batch 16), of a 12-row tile (batch
        // 64 and 768: the GPT's shapes), through the k blocks of a 512-deep product
        let (in_f, out_f) = (512, 128);
        let x = random_vec::<f32>(31, 768 * in_f, -1.0, 1.0);
        let w = Param::new(&[out_f, in_f], random_vec(32, out_f * in_f, -1.0, 1.0)).unwrap();
        let b = random_vec::<f32>(33, out_f, -1.0, 1.0);
        let mut first: Option<Vec<f32>> = None;
        for batch in [4, 16, 64, 768] {
            let (mut y, mut pack) = (vec![0.0; batch * out_f], PackedWeight::new());
            for _ in 0..2 {
                let x = &x[..batch * in_f];
                dense_cached(x, &w, Some(&b), batch, in_f, out_f, &mut y, &mut pack).unwrap();
            }
            let rows = y[..4 * out_f].to_vec();
            match &first {
                None => first = Some(rows),
                Some(want) => assert!(rows == *want, "batch {batch}"),
            }
        }
    }

    #[test]
    fn packing_on_every_call_matches_dense() {
        // the training forward: f32 packs in registers from batch 8 up, f64 and small
        // batches compute as dense does
        for &(batch, in_f, out_f) in &[(64, 784, 128), (8, 100, 45), (17, 130, 33), (7, 784, 128)] {
            for bias in [true, false] {
                check_packing::<f32>(batch, in_f, out_f, bias, 2e-4);
                check_packing::<f64>(batch, in_f, out_f, bias, 1e-12);
            }
        }
        let mut scratch = vec![0.0f32; dense_scratch_len(64, 64) - 1];
        let e = dense_packing(
            &[0.0; 64],
            &[0.0; 64 * 64],
            None,
            1,
            64,
            64,
            &mut [0.0; 64],
            &mut scratch,
        );
        assert!(e.unwrap_err().to_string().contains("scratch"));
    }

    fn check_packing<T: Float>(batch: usize, in_f: usize, out_f: usize, bias: bool, tol: f64) {
        let x = random_vec::<T>(11, batch * in_f, -1.0, 1.0);
        let w = random_vec::<T>(12, out_f * in_f, -1.0, 1.0);
        let b = bias.then(|| random_vec::<T>(13, out_f, -1.0, 1.0));
        let mut want = vec![T::zero(); batch * out_f];
        dense(&x, &w, b.as_deref(), batch, in_f, out_f, &mut want).unwrap();
        let mut scratch = vec![T::from_f64(f64::NAN); dense_scratch_len(in_f, out_f)];
        let mut y = vec![T::from_f64(f64::NAN); batch * out_f];
        dense_packing(
            &x,
            &w,
            b.as_deref(),
            batch,
            in_f,
            out_f,
            &mut y,
            &mut scratch,
        )
        .unwrap();
        assert_close!(y, want, tol);
    }

    #[test]
    fn panels_start_on_a_cache_line() {
        // whatever the heap gave, for both types and after a repack to another shape
        fn check<T: Float>(shapes: &[(usize, usize)]) {
            let mut cache = PackedWeight::<T>::new();
            for &(out_f, in_f) in shapes {
                let w = Param::new(&[out_f, in_f], random_vec::<T>(9, out_f * in_f, -1.0, 1.0))
                    .unwrap();
                assert!(cache.panels(&w, out_f, in_f).is_none());
                let Some(panels) = cache.panels(&w, out_f, in_f) else {
                    assert!(!T::available());
                    return;
                };
                assert_eq!(panels.len(), packed_len::<T>(out_f, in_f));
                assert_eq!(panels.as_ptr() as usize % 64, 0, "{out_f}x{in_f}");
                let mut want = Vec::new();
                pack(w.value(), out_f, in_f, &mut want);
                assert!(panels == want.as_slice(), "{out_f}x{in_f}");
            }
        }
        check::<f32>(&[(128, 784), (64, 128), (70, 100), (128, 784)]);
        check::<f64>(&[(128, 784), (33, 130), (64, 64)]);
    }

    #[test]
    fn small_weights_are_never_packed() {
        agrees::<f32>(3, 8, 2, true, 1e-6);
        agrees::<f64>(1, 63, 64, false, 1e-12);
    }

    #[test]
    fn a_changed_weight_is_repacked_before_it_is_used() {
        let (batch, in_f, out_f) = (3, 80, 60);
        let x = random_vec::<f64>(4, batch * in_f, -1.0, 1.0);
        let mut w = Param::new(&[out_f, in_f], random_vec(5, out_f * in_f, -1.0, 1.0)).unwrap();
        let mut pack = PackedWeight::new();
        let mut y = vec![0.0; batch * out_f];
        for _ in 0..3 {
            dense_cached(&x, &w, None, batch, in_f, out_f, &mut y, &mut pack).unwrap();
        }
        assert_eq!(pack.holds(&w), f64::available());
        // a step of an optimizer, or any mutable access, makes the panels stale
        w.value_mut()[7] += 1.0;
        assert!(!pack.holds(&w));
        let mut want = vec![0.0; batch * out_f];
        for _ in 0..3 {
            dense_cached(&x, &w, None, batch, in_f, out_f, &mut y, &mut pack).unwrap();
            dense(&x, w.value(), None, batch, in_f, out_f, &mut want).unwrap();
            assert_close!(y, want, 1e-12);
        }
        // a clone holds the same value under the same stamp until either changes
        let mut w2 = w.clone();
        assert!(pack.holds(&w2) == pack.holds(&w));
        w2.value_and_grad_mut().0[0] = 9.0;
        assert!(!pack.holds(&w2));
        dense_cached(&x, &w, None, batch, in_f, out_f, &mut y, &mut pack).unwrap();
        dense(&x, w.value(), None, batch, in_f, out_f, &mut want).unwrap();
        assert_close!(y, want, 1e-12);
    }

    #[test]
    fn a_slot_shared_by_two_weights_follows_the_last_one() {
        let (in_f, out_f) = (70, 70);
        let x = random_vec::<f32>(6, in_f, -1.0, 1.0);
        let wa = Param::new(&[out_f, in_f], random_vec(7, in_f * out_f, -1.0, 1.0)).unwrap();
        let wb = Param::new(&[out_f, in_f], random_vec(8, in_f * out_f, -1.0, 1.0)).unwrap();
        let mut ws = Workspace::<f32>::new();
        let (mut y, mut want) = (vec![0.0; out_f], vec![0.0; out_f]);
        for w in [&wa, &wb, &wa, &wa, &wa, &wb, &wb, &wb, &wa] {
            let (_, _, packs) = ws.split_packed(0, 1);
            dense_cached(&x, w, None, 1, in_f, out_f, &mut y, &mut packs[0]).unwrap();
            dense(&x, w.value(), None, 1, in_f, out_f, &mut want).unwrap();
            assert_close!(y, want, 1e-5);
        }
    }

    #[test]
    fn bad_shapes_are_errors_before_anything_is_packed() {
        let w = Param::new(&[64, 64], vec![0.5f32; 64 * 64]).unwrap();
        let mut pack = PackedWeight::new();
        let mut y = vec![0.0; 64];
        for _ in 0..3 {
            let e = dense_cached(&[1.0; 63], &w, None, 1, 64, 64, &mut y, &mut pack);
            assert!(e.unwrap_err().to_string().contains("x"));
            let e = dense_cached(&[1.0; 64], &w, None, 1, 32, 128, &mut y, &mut pack);
            assert!(e.is_err());
        }
        assert!(!pack.holds(&w));
    }
}
