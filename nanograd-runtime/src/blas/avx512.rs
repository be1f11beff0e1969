//! The dense layer's inference product in AVX-512, against weights packed once by
//! [`super::PackedWeight`] into rows of output columns: `y = x·Wᵀ + b`.
//!
//! - the rows of `x` in blocks of 96; in a block, panel by panel, tiles of `R` rows (12,
//!   then 8, 4) by one panel, two registers of columns (32 `f32`, 16 `f64`), in `2·R`
//!   accumulators; each `k` loads two registers of the panel and broadcasts `R` elements
//!   of `x`. A panel stays in L1 along the block's tiles, the block's rows in L2 along the
//!   panels. Every tile sums each element as one chain of fused multiply-adds along `k` from
//!   zero, then adds the bias: a row's result does not depend on the tile or block it is in;
//! - the `batch % 4` rows left (batch 1 among them): one pass over the panels per row, two
//!   panels at a time (two streams in step, four accumulator pairs), from L2 at batch 1:
//!   the panels start on a cache line (see `PackedWeight`).
//!
//! Packing `f32` weights goes through 16×16 transposes in registers (`transpose` below),
//! fast enough for a training step to pack its weights on every call
//! (`ops::dense_packing`); `f64` packs element by element.

/// AVX-512 kernels of one element type. Implemented for `f32` and `f64`; every method but
/// [`Avx512::available`] is only called after it returned `true`.
pub trait Avx512: Sized + Copy {
    /// Elements in two AVX-512 registers: the column width of a tile (32 `f32`, 16 `f64`).
    const NR: usize;
    /// Whether this CPU runs AVX-512 (checked once, then cached by `pulp`).
    fn available() -> bool;
    /// Whether [`Avx512::pack`] transposes in registers (`f32`), rather than element by
    /// element: fast enough to pack a weight on every training step.
    const FAST_PACK: bool;
    /// Rearranges `w: [out_f, in_f]` into panels of `NR` columns, zero-padded, writing
    /// every element of `dst` (`out_f.div_ceil(NR) * NR * in_f` long; checked by the caller).
    #[doc(hidden)]
    fn pack(w: &[Self], out_f: usize, in_f: usize, dst: &mut [Self]);
    /// `y = x·Wᵀ + b` for `x: [batch, in_f]`, `W` packed by `PackedWeight`, `y: [batch,
    /// out_f]`. The caller has checked every length.
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

/// The panel layout element by element: panel `p`, row `k` holds `W[p·nr + j][k]` at `j`.
fn pack_scalar<T: Copy + Default>(nr: usize, w: &[T], in_f: usize, dst: &mut [T]) {
    for (p, panel) in dst.chunks_exact_mut(nr * in_f).enumerate() {
        panel.fill(T::default());
        for (j, row) in w.chunks_exact(in_f).skip(p * nr).take(nr).enumerate() {
            for (k, &v) in row.iter().enumerate() {
                panel[k * nr + j] = v;
            }
        }
    }
}

macro_rules! impl_avx512 {
    ($t:ident, $v:ident, $lanes:literal, $splat:ident, $fma:ident, $add:ident, $fast:literal, $fast_pack:path) => {
        impl Avx512 for $t {
            const NR: usize = 2 * $lanes;
            const FAST_PACK: bool = $fast;

            fn pack(w: &[$t], out_f: usize, in_f: usize, dst: &mut [$t]) {
                #[cfg(target_arch = "x86_64")]
                if $fast_pack(w, out_f, in_f, dst) {
                    return;
                }
                let _ = out_f;
                pack_scalar(Self::NR, w, in_f, dst)
            }

            #[inline]
            fn available() -> bool {
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
                let _ = (x, batch, in_f, panels, out_f, b, y);
                unreachable!("packed_dense without AVX-512: the caller checks `available`")
            }
        }

        #[cfg(target_arch = "x86_64")]
        mod $v {
            use pulp::x86::V4;
            use pulp::{$v as V, Simd};

            const LANES: usize = $lanes;
            const NR: usize = 2 * LANES;
            /// Rows of `x` per block, eight tiles of 12: at the GPT's 512-wide input 192 KB
            /// of `x` (48 pages, inside the L1 TLB with a panel's 16) beside all its panels
            /// in L2. Down all 768 rows of a training step, every panel read 1.5 MB of `x`
            /// from beyond L2.
            const MC: usize = 96;

            #[inline(always)]
            fn load(s: &[$t]) -> V {
                pulp::cast(*<&[$t; LANES]>::try_from(s).unwrap())
            }

            #[inline(always)]
            fn splat(simd: V4, v: $t) -> V {
                simd.$splat(v)
            }

            /// Writes one row of a tile, `y = sums + bias`: two registers into `y` (`y.len()`
            /// live columns, `bias` already offset to the same columns).
            #[inline(always)]
            fn store(simd: V4, acc: [V; 2], bias: Option<&[$t]>, y: &mut [$t]) {
                if y.len() == NR {
                    for (j, mut s) in acc.into_iter().enumerate() {
                        if let Some(bias) = bias {
                            s = simd.$add(s, load(&bias[j * LANES..][..LANES]));
                        }
                        let s: [$t; LANES] = pulp::cast(s);
                        y[j * LANES..][..LANES].copy_from_slice(&s);
                    }
                    return;
                }
                let sums: [[$t; LANES]; 2] = acc.map(pulp::cast);
                for (j, (yj, &s)) in y.iter_mut().zip(sums.as_flattened()).enumerate() {
                    *yj = s + bias.map_or(0.0, |b| b[j]);
                }
            }

            /// Rows `m0..m0 + R` of `x` (row stride `in_f`) against one panel (`NR` columns
            /// per `k`): `2·R` accumulators, then the epilogue into `y` (row stride `ldy`,
            /// `width` live columns).
            #[inline(always)]
            #[allow(clippy::too_many_arguments)]
            fn tile<const R: usize>(
                simd: V4,
                x: &[$t],
                in_f: usize,
                m0: usize,
                panel: &[$t],
                bias: Option<&[$t]>,
                y: &mut [$t],
                ldy: usize,
                width: usize,
            ) {
                let zero = splat(simd, 0.0);
                let mut acc = [[zero; 2]; R];
                let x = &x[m0 * in_f..];
                let rows: [&[$t]; R] = core::array::from_fn(|r| &x[r * in_f..][..in_f]);
                for k in 0..in_f {
                    let pk = &panel[k * NR..][..NR];
                    let (b0, b1) = (load(&pk[..LANES]), load(&pk[LANES..]));
                    for r in 0..R {
                        let a = splat(simd, rows[r][k]);
                        acc[r][0] = simd.$fma(a, b0, acc[r][0]);
                        acc[r][1] = simd.$fma(a, b1, acc[r][1]);
                    }
                }
                for (r, acc) in acc.into_iter().enumerate() {
                    store(simd, acc, bias, &mut y[(m0 + r) * ldy..][..width]);
                }
            }

            /// The rows of `x` against one panel, tile by tile: 12 rows, but 16 left as two
            /// tiles of 8, then 8, 4. The last `m % 4` rows are left to [`gemv`]: a tile of
            /// one row would hold only two accumulators, each a chain of `k` dependent FMAs.
            #[inline(always)]
            #[allow(clippy::too_many_arguments)]
            fn panel_rows(
                simd: V4,
                m: usize,
                x: &[$t],
                in_f: usize,
                panel: &[$t],
                bias: Option<&[$t]>,
                y: &mut [$t],
                ldy: usize,
                width: usize,
            ) {
                let mut i = 0;
                while i + 12 <= m && m - i != 16 {
                    tile::<12>(simd, x, in_f, i, panel, bias, y, ldy, width);
                    i += 12;
                }
                while i + 8 <= m {
                    tile::<8>(simd, x, in_f, i, panel, bias, y, ldy, width);
                    i += 8;
                }
                while i + 4 <= m {
                    tile::<4>(simd, x, in_f, i, panel, bias, y, ldy, width);
                    i += 4;
                }
            }

            /// `P` consecutive panels (`P·NR·in_f` elements from `panels`) against one row of
            /// `x`, `H` steps of `k` at a time: per `k` one broadcast of `x[k]` and `2·P`
            /// loads, in `H·2·P` accumulators (eight independent chains for `P·H = 4`). Two
            /// panels at once read two streams from L2 in step; the batch-1 product is bound
            /// by that read.
            #[inline(always)]
            fn gemv_panels<const P: usize, const H: usize>(
                simd: V4,
                x: &[$t],
                in_f: usize,
                panels: &[$t],
                bias: Option<&[$t]>,
                y: &mut [$t],
            ) {
                let zero = splat(simd, 0.0);
                let mut acc = [[[zero; 2]; P]; H];
                let streams: [&[$t]; P] =
                    core::array::from_fn(|p| &panels[p * NR * in_f..][..NR * in_f]);
                let mut k = 0;
                while k + H <= in_f {
                    let blocks: [&[$t]; P] =
                        core::array::from_fn(|p| &streams[p][k * NR..][..H * NR]);
                    for h in 0..H {
                        let a = splat(simd, x[k + h]);
                        for p in 0..P {
                            let pk = &blocks[p][h * NR..][..NR];
                            acc[h][p][0] = simd.$fma(a, load(&pk[..LANES]), acc[h][p][0]);
                            acc[h][p][1] = simd.$fma(a, load(&pk[LANES..]), acc[h][p][1]);
                        }
                    }
                    k += H;
                }
                for k in k..in_f {
                    let a = splat(simd, x[k]);
                    for p in 0..P {
                        let pk = &streams[p][k * NR..][..NR];
                        acc[0][p][0] = simd.$fma(a, load(&pk[..LANES]), acc[0][p][0]);
                        acc[0][p][1] = simd.$fma(a, load(&pk[LANES..]), acc[0][p][1]);
                    }
                }
                for p in 0..P {
                    let col0 = p * NR;
                    if col0 >= y.len() {
                        break;
                    }
                    let sum = |i: usize| {
                        let mut s = acc[0][p][i];
                        for acc in &acc[1..] {
                            s = simd.$add(s, acc[p][i]);
                        }
                        s
                    };
                    let w = NR.min(y.len() - col0);
                    let bias = bias.map(|bias| &bias[col0..col0 + w]);
                    store(simd, [sum(0), sum(1)], bias, &mut y[col0..col0 + w]);
                }
            }

            /// The batch-1 product against packed panels: one row of `x` against the panels
            /// two at a time, the last one alone if their number is odd.
            #[inline(always)]
            fn gemv(
                simd: V4,
                x: &[$t],
                in_f: usize,
                panels: &[$t],
                bias: Option<&[$t]>,
                y: &mut [$t],
            ) {
                let count = panels.len().checked_div(NR * in_f).unwrap_or(0);
                let mut p = 0;
                while p + 2 <= count {
                    let col0 = p * NR;
                    gemv_panels::<2, 2>(
                        simd,
                        x,
                        in_f,
                        &panels[col0 * in_f..],
                        bias.map(|b| &b[col0..]),
                        &mut y[col0..],
                    );
                    p += 2;
                }
                if p < count {
                    let col0 = p * NR;
                    gemv_panels::<1, 4>(
                        simd,
                        x,
                        in_f,
                        &panels[col0 * in_f..],
                        bias.map(|b| &b[col0..]),
                        &mut y[col0..],
                    );
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
                fn with_simd<S: Simd>(self, _: S) {
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
                    // blocks of `MC` rows (a rest under `MC + 16` as one block): each panel
                    // stays in L1 along a block's tiles, the block's rows of `x` in L2 along
                    // the panels
                    let full = batch / 4 * 4;
                    let mut m0 = 0;
                    while m0 < full {
                        let mc = if full - m0 < MC + 16 { full - m0 } else { MC };
                        let (xb, yb) = (&x[m0 * in_f..], &mut y[m0 * out_f..]);
                        for (p, panel) in panels.chunks_exact(NR * in_f).enumerate() {
                            let n0 = p * NR;
                            let width = NR.min(out_f - n0);
                            let bias = b.map(|b| &b[n0..n0 + width]);
                            panel_rows(
                                simd,
                                mc,
                                xb,
                                in_f,
                                panel,
                                bias,
                                &mut yb[n0..],
                                out_f,
                                width,
                            );
                        }
                        m0 += mc;
                    }
                    // the rows no tile took, one stream through the panels each
                    for r in batch / 4 * 4..batch {
                        let (xr, yr) = (&x[r * in_f..][..in_f], &mut y[r * out_f..][..out_f]);
                        gemv(simd, xr, in_f, panels, b, yr);
                    }
                }
            }
        }
    };
}

impl_avx512!(
    f32,
    f32x16,
    16,
    splat_f32x16,
    mul_add_f32x16,
    add_f32x16,
    true,
    transpose::pack_f32
);
impl_avx512!(
    f64,
    f64x8,
    8,
    splat_f64x8,
    mul_add_f64x8,
    add_f64x8,
    false,
    transpose::none
);

/// The `f32` panel packing by 16×16 transposes in registers: four butterfly stages, stage
/// `t` swapping bit `t` of the row index with bit `t` of the column index between rows `r`
/// and `r | 2^t` (two `vpermt2ps` per pair of rows).
#[cfg(target_arch = "x86_64")]
mod transpose {
    use core::arch::x86_64::{__m512, __m512i};
    use pulp::x86::V4;

    /// `f32` panel width: two registers.
    const NR: usize = 32;

    /// The two index vectors of stage `t`: the new row `r` takes its own element `c` where
    /// bit `t` of `c` is 0 and row `r | 2^t`'s element `c ^ 2^t` elsewhere; the new row
    /// `r | 2^t` the other way round (indices of 16 and up select the second operand).
    fn stage(t: usize) -> (__m512i, __m512i) {
        let d = 1 << t;
        let lo: [i32; 16] =
            core::array::from_fn(|c| (if c & d == 0 { c } else { 16 + (c ^ d) }) as i32);
        let hi: [i32; 16] =
            core::array::from_fn(|c| (if c & d != 0 { 16 + c } else { c ^ d }) as i32);
        (pulp::cast(lo), pulp::cast(hi))
    }

    #[inline(always)]
    fn transpose16(simd: V4, v: &mut [__m512; 16], idx: &[(__m512i, __m512i); 4]) {
        for (t, &(lo, hi)) in idx.iter().enumerate() {
            let d = 1 << t;
            for q in 0..8 {
                // the q-th row whose bit t is 0
                let r = ((q >> t) << (t + 1)) | (q & (d - 1));
                let (a, b) = (v[r], v[r | d]);
                v[r] = simd.avx512f._mm512_permutex2var_ps(a, lo, b);
                v[r | d] = simd.avx512f._mm512_permutex2var_ps(a, hi, b);
            }
        }
    }

    /// Packs `w` in registers when the CPU has AVX-512; `false` (nothing written) otherwise.
    pub(super) fn pack_f32(w: &[f32], out_f: usize, in_f: usize, dst: &mut [f32]) -> bool {
        let Some(simd) = V4::try_new() else {
            return false;
        };
        let op = Pack {
            simd,
            w,
            out_f,
            in_f,
            dst,
        };
        pulp::Simd::vectorize(simd, op);
        true
    }

    /// No packing in registers for this type.
    pub(super) fn none<T>(_: &[T], _: usize, _: usize, _: &mut [T]) -> bool {
        false
    }

    struct Pack<'a> {
        simd: V4,
        w: &'a [f32],
        out_f: usize,
        in_f: usize,
        dst: &'a mut [f32],
    }

    impl pulp::WithSimd for Pack<'_> {
        type Output = ();

        #[inline(always)]
        fn with_simd<S: pulp::Simd>(self, _: S) {
            let Pack {
                simd,
                w,
                out_f,
                in_f,
                dst,
            } = self;
            let idx = [stage(0), stage(1), stage(2), stage(3)];
            for (p, panel) in dst.chunks_exact_mut(NR * in_f).enumerate() {
                if out_f - p * NR < NR {
                    // the last, narrower panel: element by element, zero-padded
                    let rows = &w[p * NR * in_f..];
                    super::pack_scalar(NR, rows, in_f, panel);
                    continue;
                }
                // both 16-row halves of a k-block before the next, so that every 128-byte
                // row of the panel is written whole, once
                let src: [&[f32]; NR] = core::array::from_fn(|j| &w[(p * NR + j) * in_f..][..in_f]);
                let mut k0 = 0;
                while k0 + 16 <= in_f {
                    for half in 0..2 {
                        let mut v: [__m512; 16] = core::array::from_fn(|j| {
                            let row: [f32; 16] =
                                src[half * 16 + j][k0..k0 + 16].try_into().unwrap();
                            pulp::cast(row)
                        });
                        transpose16(simd, &mut v, &idx);
                        for (kk, col) in v.iter().enumerate() {
                            let col: [f32; 16] = pulp::cast(*col);
                            panel[(k0 + kk) * NR + half * 16..][..16].copy_from_slice(&col);
                        }
                    }
                    k0 += 16;
                }
                for k in k0..in_f {
                    for (j, row) in src.iter().enumerate() {
                        panel[k * NR + j] = row[k];
                    }
                }
            }
        }
    }
}
