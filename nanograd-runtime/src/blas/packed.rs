//! Dense-layer weights packed once for inference, and the AVX-512 products that read them.
//!
//! `ops::dense` computes `y = x·Wᵀ + b` with `W: [out, in]` row-major. A general GEMM repacks
//! `W` into its own panel layout on every call, and a row-by-row GEMV reads `in`-long rows of
//! `W` as several interleaved streams; both cost more than the arithmetic when the same `W`
//! serves call after call. [`PackedWeight`] keeps `W` rearranged into panels of
//! [`Packable::NR`] output columns (two AVX-512 registers wide): panel `p` holds, for every
//! `k` in `0..in`, the row `W[p·NR .. p·NR + NR][k]` contiguously, zero-padded past `out`. The
//! products then stream each panel once, in order:
//!
//! - batch 1: `y[p·NR..] = Σ_k x[k] · panel[k]`, with four independent accumulator pairs;
//! - batch > 1: tiles of 12 (then 8, 4, 1) rows of `x` against one panel, 24 accumulator
//!   registers, `x[i][k]` broadcast and two panel vectors loaded per `k`.
//!
//! The panels are valid for one state of the weight: every [`Param`] carries a stamp that
//! changes on each mutable access ([`Param::value_mut`], an optimizer step, a load), and a
//! [`PackedWeight`] remembers the stamp it packed. It packs on the *second* call that sees
//! the same stamp, so a training loop, whose weights change every step, never pays for
//! packing, and a one-off call does not either.

use crate::param::Param;
use crate::Float;

/// Below this many weight elements the unpacked product is as fast: nothing is packed (the
/// `model!` macro mirrors it, to give such layers no cache slot).
const MIN_PACK: usize = 4096;

/// One dense layer's weight packed for inference, cached in a [`crate::Workspace`] slot.
/// See the [module documentation](self) for the layout and when it (re)packs.
#[derive(Clone, Default)]
pub struct PackedWeight<T> {
    data: Vec<T>,
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
            packed: 0,
            seen: 0,
            dims: (0, 0),
        }
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
        if out_f * in_f < MIN_PACK || !T::packed_available() {
            return None;
        }
        let stamp = w.stamp();
        let len = out_f.div_ceil(T::NR) * T::NR * in_f;
        if self.packed == stamp && self.dims == (out_f, in_f) {
            return Some(&self.data);
        }
        if self.seen == stamp {
            pack(w.value(), out_f, in_f, &mut self.data);
            self.packed = stamp;
            self.dims = (out_f, in_f);
            return Some(&self.data);
        }
        self.seen = stamp;
        self.data.reserve(len.saturating_sub(self.data.len()));
        None
    }
}

impl<T> std::fmt::Debug for PackedWeight<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PackedWeight")
            .field("dims", &self.dims)
            .field("packed", &(self.packed != 0))
            .finish_non_exhaustive()
    }
}

/// Rearranges `w: [out_f, in_f]` into panels of `NR` columns (see the module documentation).
/// `dst` only grows when it holds less than the panels need.
pub(crate) fn pack<T: Float>(w: &[T], out_f: usize, in_f: usize, dst: &mut Vec<T>) {
    let nr = T::NR;
    let panels = out_f.div_ceil(nr);
    dst.clear();
    dst.resize(panels * nr * in_f, T::zero());
    for (p, panel) in dst.chunks_exact_mut(nr * in_f).enumerate() {
        for (j, row) in w.chunks_exact(in_f).skip(p * nr).take(nr).enumerate() {
            for (k, &v) in row.iter().enumerate() {
                panel[k * nr + j] = v;
            }
        }
    }
}

/// The packed kernels of one element type, in AVX-512 registers.
pub trait Packable: Sized + Copy {
    /// Output columns per panel: two AVX-512 registers of the type (32 `f32`, 16 `f64`).
    const NR: usize;
    #[doc(hidden)]
    fn packed_available() -> bool;
    /// `y = x·Wᵀ + b` for `x: [batch, in_f]`, `W` packed by [`pack`], `y: [batch, out_f]`.
    /// The caller has checked every length.
    #[doc(hidden)]
    #[allow(clippy::too_many_arguments)]
    fn packed_dense(
        x: &[Self],
        batch: usize,
        in_f: usize,
        panels: &[Self],
        out_f: usize,
        b: Option<&[Self]>,
        y: &mut [Self],
    );
}

macro_rules! impl_packable {
    ($t:ident, $v:ident, $lanes:literal, $splat:ident, $fma:ident, $add:ident) => {
        impl Packable for $t {
            const NR: usize = 2 * $lanes;

            #[inline]
            fn packed_available() -> bool {
                #[cfg(target_arch = "x86_64")]
                return pulp::x86::V4::try_new().is_some();
                #[cfg(not(target_arch = "x86_64"))]
                return false;
            }

            fn packed_dense(
                x: &[$t],
                batch: usize,
                in_f: usize,
                panels: &[$t],
                out_f: usize,
                b: Option<&[$t]>,
                y: &mut [$t],
            ) {
                #[cfg(target_arch = "x86_64")]
                if let Some(simd) = pulp::x86::V4::try_new() {
                    let op = $v::Dense {
                        simd,
                        x,
                        batch,
                        in_f,
                        panels,
                        out_f,
                        b,
                        y,
                    };
                    return pulp::Simd::vectorize(simd, op);
                }
                unreachable!("packed_dense without AVX-512: PackedWeight::panels checks first")
            }
        }

        #[cfg(target_arch = "x86_64")]
        mod $v {
            use pulp::x86::V4;
            use pulp::$v as V;

            const LANES: usize = $lanes;
            const NR: usize = 2 * LANES;

            #[inline(always)]
            fn load(s: &[$t]) -> V {
                pulp::cast(*<&[$t; LANES]>::try_from(s).unwrap())
            }

            /// `y[..w] = acc (+ b[..w])` for the `w` live columns of a panel: whole registers
            /// for a whole panel, element by element for the last, narrower one.
            #[inline(always)]
            fn store(simd: V4, acc: [V; 2], b: Option<&[$t]>, y: &mut [$t]) {
                if y.len() == NR {
                    let acc = match b {
                        Some(b) => [
                            simd.$add(acc[0], load(&b[..LANES])),
                            simd.$add(acc[1], load(&b[LANES..NR])),
                        ],
                        None => acc,
                    };
                    let lo: [$t; LANES] = pulp::cast(acc[0]);
                    let hi: [$t; LANES] = pulp::cast(acc[1]);
                    y[..LANES].copy_from_slice(&lo);
                    y[LANES..].copy_from_slice(&hi);
                    return;
                }
                let lo: [$t; LANES] = pulp::cast(acc[0]);
                let hi: [$t; LANES] = pulp::cast(acc[1]);
                let all = lo.iter().chain(&hi);
                match b {
                    Some(b) => {
                        for ((yi, &a), &bi) in y.iter_mut().zip(all).zip(b) {
                            *yi = a + bi;
                        }
                    }
                    None => {
                        for (yi, &a) in y.iter_mut().zip(all) {
                            *yi = a;
                        }
                    }
                }
            }

            /// `R` rows of `x` (row stride `in_f`) against one panel: 2·R accumulators.
            #[inline(always)]
            #[allow(clippy::too_many_arguments)]
            fn tile<const R: usize>(
                simd: V4,
                x: &[$t],
                in_f: usize,
                panel: &[$t],
                b: Option<&[$t]>,
                y: &mut [$t],
                out_f: usize,
                col0: usize,
            ) {
                let zero = simd.$splat(0.0);
                let mut acc = [[zero; 2]; R];
                let rows: [&[$t]; R] = core::array::from_fn(|r| &x[r * in_f..][..in_f]);
                for k in 0..in_f {
                    let pk = &panel[k * NR..][..NR];
                    let (b0, b1) = (load(&pk[..LANES]), load(&pk[LANES..]));
                    for r in 0..R {
                        let a = simd.$splat(rows[r][k]);
                        acc[r][0] = simd.$fma(a, b0, acc[r][0]);
                        acc[r][1] = simd.$fma(a, b1, acc[r][1]);
                    }
                }
                let w = NR.min(out_f - col0);
                let b = b.map(|b| &b[col0..col0 + w]);
                for (r, acc) in acc.into_iter().enumerate() {
                    store(simd, acc, b, &mut y[r * out_f + col0..][..w]);
                }
            }

            /// One row of `x` against every panel, with four accumulator pairs over `k`.
            #[inline(always)]
            fn gemv(
                simd: V4,
                x: &[$t],
                in_f: usize,
                panels: &[$t],
                b: Option<&[$t]>,
                y: &mut [$t],
                out_f: usize,
            ) {
                const PH: usize = 4;
                for (p, panel) in panels.chunks_exact(NR * in_f).enumerate() {
                    let zero = simd.$splat(0.0);
                    let mut acc = [[zero; 2]; PH];
                    let mut steps = panel.chunks_exact(PH * NR);
                    let mut xs = x.chunks_exact(PH);
                    for (pk, xk) in (&mut steps).zip(&mut xs) {
                        for h in 0..PH {
                            let a = simd.$splat(xk[h]);
                            let pk = &pk[h * NR..][..NR];
                            acc[h][0] = simd.$fma(a, load(&pk[..LANES]), acc[h][0]);
                            acc[h][1] = simd.$fma(a, load(&pk[LANES..]), acc[h][1]);
                        }
                    }
                    for (pk, &xk) in steps.remainder().chunks_exact(NR).zip(xs.remainder()) {
                        let a = simd.$splat(xk);
                        acc[0][0] = simd.$fma(a, load(&pk[..LANES]), acc[0][0]);
                        acc[0][1] = simd.$fma(a, load(&pk[LANES..]), acc[0][1]);
                    }
                    let sum = |i: usize| {
                        let front = simd.$add(acc[0][i], acc[1][i]);
                        simd.$add(front, simd.$add(acc[2][i], acc[3][i]))
                    };
                    let col0 = p * NR;
                    let w = NR.min(out_f - col0);
                    let b = b.map(|b| &b[col0..col0 + w]);
                    store(simd, [sum(0), sum(1)], b, &mut y[col0..col0 + w]);
                }
            }

            pub(super) struct Dense<'a> {
                pub simd: V4,
                pub x: &'a [$t],
                pub batch: usize,
                pub in_f: usize,
                pub panels: &'a [$t],
                pub out_f: usize,
                pub b: Option<&'a [$t]>,
                pub y: &'a mut [$t],
            }

            impl pulp::WithSimd for Dense<'_> {
                type Output = ();

                #[inline(always)]
                fn with_simd<S: pulp::Simd>(self, _: S) {
                    let Dense {
                        simd,
                        x,
                        batch,
                        in_f,
                        panels,
                        out_f,
                        b,
                        y,
                    } = self;
                    if batch == 1 {
                        return gemv(simd, x, in_f, panels, b, y, out_f);
                    }
                    for (p, panel) in panels.chunks_exact(NR * in_f).enumerate() {
                        let col0 = p * NR;
                        let mut i = 0;
                        // 12-row tiles, but 16 left as two of 8 rather than 12 + 4
                        while i + 12 <= batch && batch - i != 16 {
                            let (xi, yi) = (&x[i * in_f..], &mut y[i * out_f..]);
                            tile::<12>(simd, xi, in_f, panel, b, yi, out_f, col0);
                            i += 12;
                        }
                        while i + 8 <= batch {
                            let (xi, yi) = (&x[i * in_f..], &mut y[i * out_f..]);
                            tile::<8>(simd, xi, in_f, panel, b, yi, out_f, col0);
                            i += 8;
                        }
                        while i + 4 <= batch {
                            let (xi, yi) = (&x[i * in_f..], &mut y[i * out_f..]);
                            tile::<4>(simd, xi, in_f, panel, b, yi, out_f, col0);
                            i += 4;
                        }
                        while i < batch {
                            let (xi, yi) = (&x[i * in_f..], &mut y[i * out_f..]);
                            tile::<1>(simd, xi, in_f, panel, b, yi, out_f, col0);
                            i += 1;
                        }
                    }
                }
            }
        }
    };
}

impl_packable!(f32, f32x16, 16, splat_f32x16, mul_add_f32x16, add_f32x16);
impl_packable!(f64, f64x8, 8, splat_f64x8, mul_add_f64x8, add_f64x8);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::{dense, dense_cached};
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
            let packs = call >= 1 && out_f * in_f >= MIN_PACK && T::packed_available();
            assert_eq!(
                pack.holds(&w),
                packs,
                "{batch}x{in_f}->{out_f}, call {call}"
            );
        }
    }

    #[test]
    fn packed_product_matches_dense_for_every_tile_and_panel_shape() {
        // batches: the one-row GEMV, 12/4/1-row tiles and their mixes; widths: one panel,
        // a padded panel, several panels; depths: odd, below and above the 4-step unroll
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
        ] {
            for bias in [true, false] {
                agrees::<f64>(batch, in_f, out_f, bias, 1e-12);
                agrees::<f32>(batch, in_f, out_f, bias, 2e-4);
            }
        }
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
        assert_eq!(pack.holds(&w), f64::packed_available());
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
