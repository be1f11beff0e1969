//! The passes of [`super`] for `f32` in sixteen lanes: sixteen windows of an output row at
//! a time, the same operations in the same order as the portable loops, so the same bits.
//!
//! A group's two input rows are four vectors (32 columns each row: two registers); the four
//! positions of its windows are separated by `vpermt2ps` into `a0`, `a1` (upper row, even
//! and odd columns) and `b0`, `b1` (lower row), lane `l` holding window `l`. The winner
//! bytes go in and out as sixteen 32-bit lanes (`vpmovdb`, `vpmovzxbd`). The backward
//! pass's accumulators are lane `l` for window `j` with `j % 16 == l` within each row, as
//! the portable sums' are; the `dx` pass puts each window's gradient back at its position by
//! the inverse permutation.

use core::arch::x86_64::{
    __m128i, __m512, __m512i, _mm512_cvtepi32_epi8, _mm512_cvtepu8_epi32, _mm512_mask_storeu_ps,
    _mm512_maskz_loadu_ps, _mm_mask_storeu_epi8, _mm_maskz_loadu_epi8, _CMP_GT_OQ, _CMP_UNORD_Q,
};

use pulp::x86::V4;
use pulp::Simd;

use super::NO_WINNER;
use crate::simd::first_lanes;

/// Windows per group: one register of sixteen lanes.
const L: usize = 16;

/// Whether this CPU has AVX-512 (the passes below run only then).
pub(super) fn available() -> Option<V4> {
    V4::try_new()
}

/// Lanes `0, 2, .., 30` and `1, 3, .., 31` of two registers: even and odd columns.
const EVEN: [u32; L] = [0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30];
const ODD: [u32; L] = [1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31];
/// Two registers of window values back in column order: the first eight windows'
/// `(even, odd)` pairs, then the last eight's.
const LO: [u32; L] = [0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23];
const HI: [u32; L] = [8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31];

/// The lanes of `mask` loaded from `at`, zeros in the others; no load at all for an empty
/// mask (a masked load whose mask is empty still costs a fault-suppression assist when its
/// address is not mapped, which made rows of 7 windows 3x slower).
///
/// # Safety
///
/// AVX-512F is present, and the lanes of `mask` from `at` are readable `f32`s.
#[inline(always)]
unsafe fn load(at: *const f32, mask: u16) -> __m512 {
    if mask == 0 {
        return pulp::cast([0.0f32; L]);
    }
    // SAFETY: the caller's
    unsafe { _mm512_maskz_loadu_ps(mask, at) }
}

/// The lanes of `mask` of `v` stored from `at`.
///
/// # Safety
///
/// AVX-512F is present, and the lanes of `mask` from `at` are writable `f32`s.
#[inline(always)]
unsafe fn store(at: *mut f32, mask: u16, v: __m512) {
    // SAFETY: the caller's
    unsafe { _mm512_mask_storeu_ps(at, mask, v) }
}

/// The winner bytes of `mask` from `at` as 32-bit lanes, [`NO_WINNER`] in the others.
///
/// # Safety
///
/// AVX-512F/BW/VL are present (`V4`), and the bytes of `mask` from `at` are readable.
#[inline(always)]
unsafe fn load_winners(simd: V4, at: *const u8, mask: u16) -> __m512i {
    // SAFETY: the caller's
    let bytes: __m128i = unsafe { _mm_maskz_loadu_epi8(mask, at.cast()) };
    // SAFETY: AVX-512F is present
    let v = unsafe { _mm512_cvtepu8_epi32(bytes) };
    let f = simd.avx512f;
    f._mm512_mask_mov_epi32(f._mm512_set1_epi32(i32::from(NO_WINNER)), mask, v)
}

/// The lanes of `mask` of `v` (each below 256) stored as bytes from `at`.
///
/// # Safety
///
/// AVX-512F/BW/VL are present, and the bytes of `mask` from `at` are writable.
#[inline(always)]
unsafe fn store_winners(at: *mut u8, mask: u16, v: __m512i) {
    // narrowed in a register, then stored: `vpmovdb` with a memory operand is slower
    // SAFETY: the caller's
    unsafe { _mm_mask_storeu_epi8(at.cast(), mask, _mm512_cvtepi32_epi8(v)) }
}

/// The masks of a group of `count` windows (1..=16): its windows, and the columns of each
/// input row in its two registers.
#[inline(always)]
fn group_masks(count: usize) -> [u16; 3] {
    [
        first_lanes(count),
        first_lanes(2 * count),
        first_lanes(2 * count.saturating_sub(L / 2)),
    ]
}

/// The masks of every group of a row of `ow` windows but the last (full), of the last, and
/// the number of groups.
#[inline(always)]
fn row_masks(ow: usize) -> ([u16; 3], [u16; 3], usize) {
    let groups = ow.div_ceil(L);
    (group_masks(L), group_masks(ow - (groups - 1) * L), groups)
}

/// The four positions `(a0, a1, b0, b1)` of a group's windows, from its two input rows
/// (`x0`, `x1`: the rows from the group's first column), each mapped by `f` first.
///
/// # Safety
///
/// AVX-512F is present, and the columns of `m0` from each row and of `m1` from 16 further
/// are readable.
#[inline(always)]
unsafe fn windows(
    simd: V4,
    (x0, x1): (*const f32, *const f32),
    [_, m0, m1]: [u16; 3],
    f: impl Fn(__m512) -> __m512,
) -> [__m512; 4] {
    let s = simd.avx512f;
    let (even, odd) = (
        pulp::cast::<_, __m512i>(EVEN),
        pulp::cast::<_, __m512i>(ODD),
    );
    // SAFETY: the caller's
    let (u0, u1, l0, l1) = unsafe {
        (
            f(load(x0, m0)),
            f(load(x0.wrapping_add(L), m1)),
            f(load(x1, m0)),
            f(load(x1.wrapping_add(L), m1)),
        )
    };
    [
        s._mm512_permutex2var_ps(u0, even, u1),
        s._mm512_permutex2var_ps(u0, odd, u1),
        s._mm512_permutex2var_ps(l0, even, l1),
        s._mm512_permutex2var_ps(l0, odd, l1),
    ]
}

/// `x` at each window's winner byte `code` (as 32-bit lanes), from its four positions
/// `(a0, a1, b0, b1)`: as the portable `winning`, the last one for [`NO_WINNER`] and above.
#[inline(always)]
fn winning(simd: V4, code: __m512i, [a0, a1, b0, b1]: [__m512; 4]) -> __m512 {
    let s = simd.avx512f;
    let is_at = |p: i32| s._mm512_cmpeq_epi32_mask(code, s._mm512_set1_epi32(p));
    let (at0, at1, at2) = (is_at(0), is_at(1), is_at(2));
    let mut xv = a0;
    xv = s._mm512_mask_mov_ps(xv, at1, a1);
    xv = s._mm512_mask_mov_ps(xv, at2, b0);
    s._mm512_mask_mov_ps(xv, !(at0 | at1 | at2), b1)
}

/// The maximum of each window's four values `v` as `max_pool2d` takes it (`v` if `v > best`
/// or `v` is NaN), its position, and `raw` (`x`) there. The NaN test runs only when `NAN`:
/// without it, positions 1..=3 must hold no NaN, and the result is the same.
#[inline(always)]
fn maximum<const NAN: bool>(
    simd: V4,
    v: [__m512; 4],
    raw: [__m512; 4],
) -> (__m512, __m512i, __m512) {
    let s = simd.avx512f;
    let (mut best, mut at, mut x_at) = (v[0], s._mm512_setzero_si512(), raw[0]);
    for (pos, (&vi, &xi)) in (1..).zip(v[1..].iter().zip(&raw[1..])) {
        let mut win = s._mm512_cmp_ps_mask::<_CMP_GT_OQ>(vi, best);
        if NAN {
            win |= s._mm512_cmp_ps_mask::<_CMP_UNORD_Q>(vi, vi);
        }
        best = s._mm512_mask_mov_ps(best, win, vi);
        at = s._mm512_mask_mov_epi32(at, win, s._mm512_set1_epi32(pos));
        x_at = s._mm512_mask_mov_ps(x_at, win, xi);
    }
    (best, at, x_at)
}

/// The forward pass over channel `k`'s planes (`(n, c, h, w, k)`): `y` and the winners of
/// every window from `relu((x - mean)·scale + shift)`, and `x` at each winner into `kept`
/// (`f32`s as unaligned bytes, window for window) if given.
#[allow(clippy::too_many_arguments)]
pub(super) fn forward(
    simd: V4,
    x: &[f32],
    (n, c, h, w, k): (usize, usize, usize, usize, usize),
    (mean, scale, shift): (f32, f32, f32),
    y: &mut [f32],
    winners: &mut [u8],
    kept: Option<&mut [u8]>,
) {
    struct Op<'a> {
        simd: V4,
        x: &'a [f32],
        dims: (usize, usize, usize, usize, usize),
        affine: (f32, f32, f32),
        y: &'a mut [f32],
        winners: &'a mut [u8],
        kept: Option<&'a mut [u8]>,
    }
    impl pulp::WithSimd for Op<'_> {
        type Output = ();
        #[inline(always)]
        fn with_simd<S: Simd>(self, _: S) {
            let Self {
                simd,
                x,
                dims: (n, c, h, w, k),
                affine: (mean, scale, shift),
                y,
                winners,
                kept,
            } = self;
            let s = simd.avx512f;
            let (m, sc, sh) = (
                s._mm512_set1_ps(mean),
                s._mm512_set1_ps(scale),
                s._mm512_set1_ps(shift),
            );
            let zero = s._mm512_setzero_ps();
            // batch norm then relu: `v < 0` to zero, NaN and -0 kept (`vmaxps` returns its
            // second operand, `v`, when either is NaN or both are zeros)
            let r = |v: __m512| {
                let v = s._mm512_add_ps(s._mm512_mul_ps(s._mm512_sub_ps(v, m), sc), sh);
                s._mm512_max_ps(zero, v)
            };
            let (ow, out) = (w / 2, (h / 2) * (w / 2));
            let (full, last, groups) = row_masks(ow);
            let none = s._mm512_set1_epi32(i32::from(NO_WINNER));
            let size = core::mem::size_of::<f32>();
            let mut kept = kept;
            for p in (0..n).map(|b| b * c + k) {
                let xp = &x[p * h * w..][..h * w];
                let (yp, wp) = (&mut y[p * out..][..out], &mut winners[p * out..][..out]);
                let (xp, yp, wp) = (xp.as_ptr(), yp.as_mut_ptr(), wp.as_mut_ptr());
                let kp = kept
                    .as_deref_mut()
                    .map(|kept| kept[p * out * size..][..out * size].as_mut_ptr());
                for i in 0..h / 2 {
                    let x0 = xp.wrapping_add(2 * i * w);
                    for g in 0..groups {
                        let (j, masks) = (g * L, if g + 1 < groups { full } else { last });
                        let rows = (x0.wrapping_add(2 * j), x0.wrapping_add(w + 2 * j));
                        // SAFETY: AVX-512 is present (`V4`); a group's columns are in its
                        // plane's rows 2i and 2i + 1 (`2j + 2·count <= w`)
                        let raw = unsafe { windows(simd, rows, masks, |v| v) };
                        // relu after the permutation: the same bits, lane for lane
                        // (not `raw.map(r)`: `map` is not inlined into this function's
                        // AVX-512 context, and every intrinsic in `r` became a call)
                        let v = [r(raw[0]), r(raw[1]), r(raw[2]), r(raw[3])];
                        // a NaN at positions 1..=3 of any window: `v` is at least -0 or
                        // NaN (relu), so their sum is NaN exactly when one of them is
                        let nan =
                            s._mm512_cmp_ps_mask::<_CMP_UNORD_Q>(s._mm512_add_ps(v[1], v[2]), v[3]);
                        // `x_at`: `x` at the maximum, for `kept`
                        let (best, at, x_at) = if nan == 0 {
                            maximum::<false>(simd, v, raw)
                        } else {
                            maximum::<true>(simd, v, raw)
                        };
                        let positive = s._mm512_cmp_ps_mask::<_CMP_GT_OQ>(best, zero);
                        let code = s._mm512_mask_mov_epi32(none, positive, at);
                        let o = i * ow + j;
                        // SAFETY: windows `o .. o + count` are in the plane's `out`
                        unsafe {
                            store(yp.wrapping_add(o), masks[0], best);
                            store_winners(wp.wrapping_add(o), masks[0], code);
                        }
                        if let Some(kp) = kp {
                            let at = kp.wrapping_add(o * size).cast::<f32>();
                            // as `winning(code, raw)`: the last position without a winner
                            let xv = s._mm512_mask_mov_ps(raw[3], positive, x_at);
                            // SAFETY: the plane's `kept` holds `out` `f32`s from `kp`, and
                            // the store has no alignment requirement
                            unsafe { store(at, masks[0], xv) };
                        }
                    }
                }
            }
        }
    }
    let dims = (n, c, h, w, k);
    let affine = (mean, scale, shift);
    Simd::vectorize(
        simd,
        Op {
            simd,
            x,
            dims,
            affine,
            y,
            winners,
            kept,
        },
    )
}

/// The gradient of each window's four positions: `dy` where the winner is, zeros elsewhere.
#[inline(always)]
fn gradients(simd: V4, code: __m512i, dy: __m512) -> [__m512; 4] {
    let s = simd.avx512f;
    let at =
        |p: i32| s._mm512_maskz_mov_ps(s._mm512_cmpeq_epi32_mask(code, s._mm512_set1_epi32(p)), dy);
    [at(0), at(1), at(2), at(3)]
}

/// Channels per call of [`sums`] and [`dx`]: their accumulators or constants on the stack.
pub(super) const BLOCK: usize = 64;

/// The planes of channels `ks` (at most [`BLOCK`]) in memory order: image by image, then
/// channel by channel, with `i` the channel's place in `ks`.
#[inline(always)]
fn block_planes(
    n: usize,
    c: usize,
    ks: core::ops::Range<usize>,
) -> impl Iterator<Item = (usize, usize)> {
    (0..n).flat_map(move |b| ks.clone().enumerate().map(move |(i, k)| (i, b * c + k)))
}

/// The backward pass's `(Σ g, Σ g·x̂)` of channels `ks` (at most [`BLOCK`]; `stats` their
/// `(mean, invstd)`, `sums` the result) in sixteen lanes, with `x` at each winner from
/// `kept` (as [`forward`] wrote it) if given, else from `x`. The planes are read in memory
/// order, each channel's into its own accumulators, so each channel's terms are added in
/// the portable sums' order, plane by plane in image order.
#[allow(clippy::too_many_arguments)]
pub(super) fn sums(
    simd: V4,
    x: &[f32],
    (n, c, h, w): (usize, usize, usize, usize),
    ks: core::ops::Range<usize>,
    stats: &[(f32, f32)],
    (winners, kept): (&[u8], Option<&[u8]>),
    dy: &[f32],
    sums: &mut [(f32, f32)],
) {
    struct Op<'a> {
        simd: V4,
        x: &'a [f32],
        dims: (usize, usize, usize, usize),
        ks: core::ops::Range<usize>,
        stats: &'a [(f32, f32)],
        winners: &'a [u8],
        kept: Option<&'a [u8]>,
        dy: &'a [f32],
        sums: &'a mut [(f32, f32)],
    }
    impl pulp::WithSimd for Op<'_> {
        type Output = ();
        #[inline(always)]
        fn with_simd<S: Simd>(self, _: S) {
            let Self {
                simd,
                x,
                dims: (n, c, h, w),
                ks,
                stats,
                winners,
                kept,
                dy,
                sums,
            } = self;
            let s = simd.avx512f;
            let mut accs = [(s._mm512_setzero_ps(), s._mm512_setzero_ps()); BLOCK];
            let (ow, out) = (w / 2, (h / 2) * (w / 2));
            let (full, last, groups) = row_masks(ow);
            let none = s._mm512_set1_epi32(i32::from(NO_WINNER));
            let size = core::mem::size_of::<f32>();
            for (ki, p) in block_planes(n, c, ks) {
                let (mean, invstd) = stats[ki];
                let (m, is) = (s._mm512_set1_ps(mean), s._mm512_set1_ps(invstd));
                let (mut acc_g, mut acc_gx) = accs[ki];
                let xp = &x[p * h * w..][..h * w];
                let (wp, gp) = (&winners[p * out..][..out], &dy[p * out..][..out]);
                let (xp, wp, gp) = (xp.as_ptr(), wp.as_ptr(), gp.as_ptr());
                let kp = kept.map(|kept| kept[p * out * size..][..out * size].as_ptr());
                for i in 0..h / 2 {
                    let x0 = xp.wrapping_add(2 * i * w);
                    for g in 0..groups {
                        let (j, masks) = (g * L, if g + 1 < groups { full } else { last });
                        let o = i * ow + j;
                        // SAFETY: AVX-512 is present (`V4`); its windows `o .. o + count`
                        // are in `out`
                        let (code, dyv) = unsafe {
                            (
                                load_winners(simd, wp.wrapping_add(o), masks[0]),
                                load(gp.wrapping_add(o), masks[0]),
                            )
                        };
                        let xv = match kp {
                            // SAFETY: the plane's `kept` holds `out` `f32`s from `kp`, and
                            // the load has no alignment requirement
                            Some(kp) => unsafe {
                                load(kp.wrapping_add(o * size).cast::<f32>(), masks[0])
                            },
                            None => {
                                let rows = (x0.wrapping_add(2 * j), x0.wrapping_add(w + 2 * j));
                                // SAFETY: AVX-512 is present (`V4`); a group's columns are in
                                // its plane's rows 2i and 2i + 1
                                let four = unsafe { windows(simd, rows, masks, |v| v) };
                                winning(simd, code, four)
                            }
                        };
                        let some = s._mm512_cmplt_epu32_mask(code, none);
                        let g = s._mm512_maskz_mov_ps(some, dyv);
                        acc_g = s._mm512_add_ps(acc_g, g);
                        let xhat = s._mm512_mul_ps(s._mm512_sub_ps(xv, m), is);
                        acc_gx = s._mm512_add_ps(acc_gx, s._mm512_mul_ps(g, xhat));
                    }
                }
                accs[ki] = (acc_g, acc_gx);
            }
            for (sum, &(acc_g, acc_gx)) in sums.iter_mut().zip(&accs) {
                let (lanes, lanes_x): ([f32; L], [f32; L]) =
                    (pulp::cast(acc_g), pulp::cast(acc_gx));
                *sum = (lanes.iter().copied().sum(), lanes_x.iter().copied().sum());
            }
        }
    }
    let dims = (n, c, h, w);
    Simd::vectorize(
        simd,
        Op {
            simd,
            x,
            dims,
            ks,
            stats,
            winners,
            kept,
            dy,
            sums,
        },
    )
}

/// `dx = a·(N·g - Σ g - (x - mean)·invstd·Σ g·x̂)` over the planes of channels `ks` (at most
/// [`BLOCK`]) in memory order, `g` built from the winners (added onto `dx` when `ADD`).
/// `consts` holds each channel's `(a, N, Σ g, Σ g·x̂, mean, invstd)`.
pub(super) fn dx<const ADD: bool>(
    simd: V4,
    x: &[f32],
    (n, c, h, w): (usize, usize, usize, usize),
    ks: core::ops::Range<usize>,
    consts: &[[f32; 6]],
    (winners, dy): (&[u8], &[f32]),
    dx: &mut [f32],
) {
    struct Op<'a, const ADD: bool> {
        simd: V4,
        x: &'a [f32],
        dims: (usize, usize, usize, usize),
        ks: core::ops::Range<usize>,
        consts: &'a [[f32; 6]],
        winners: &'a [u8],
        dy: &'a [f32],
        dx: &'a mut [f32],
    }
    impl<const ADD: bool> pulp::WithSimd for Op<'_, ADD> {
        type Output = ();
        #[inline(always)]
        fn with_simd<S: Simd>(self, _: S) {
            let Self {
                simd,
                x,
                dims: (n, c, h, w),
                ks,
                consts,
                winners,
                dy,
                dx,
            } = self;
            let s = simd.avx512f;
            let (lo, hi) = (pulp::cast::<_, __m512i>(LO), pulp::cast::<_, __m512i>(HI));
            let (ow, out) = (w / 2, (h / 2) * (w / 2));
            let (full, last, groups) = row_masks(ow);
            for (ki, p) in block_planes(n, c, ks) {
                let v = |i: usize| s._mm512_set1_ps(consts[ki][i]);
                let (a, nf, sg, sgx, m, is) = (v(0), v(1), v(2), v(3), v(4), v(5));
                // as the portable `d`: a·(nf·g - Σg - (x - mean)·invstd·Σg·x̂)
                let d = |xv: __m512, g: __m512| {
                    let t = s._mm512_mul_ps(s._mm512_mul_ps(s._mm512_sub_ps(xv, m), is), sgx);
                    let u = s._mm512_sub_ps(s._mm512_sub_ps(s._mm512_mul_ps(nf, g), sg), t);
                    s._mm512_mul_ps(a, u)
                };
                let xp = &x[p * h * w..][..h * w];
                let dp = &mut dx[p * h * w..][..h * w];
                let (wp, gp) = (&winners[p * out..][..out], &dy[p * out..][..out]);
                let (xp, dp) = (xp.as_ptr(), dp.as_mut_ptr());
                let (wp, gp) = (wp.as_ptr(), gp.as_ptr());
                for i in 0..h / 2 {
                    for gi in 0..groups {
                        let (j, masks) = (gi * L, if gi + 1 < groups { full } else { last });
                        let o = i * ow + j;
                        // SAFETY: AVX-512 is present (`V4`); windows `o .. o + count` are in
                        // the plane's `out`
                        let (code, dyv) = unsafe {
                            (
                                load_winners(simd, wp.wrapping_add(o), masks[0]),
                                load(gp.wrapping_add(o), masks[0]),
                            )
                        };
                        let g = gradients(simd, code, dyv);
                        for (t, (ge, go)) in [(g[0], g[1]), (g[2], g[3])].into_iter().enumerate() {
                            let row = (2 * i + t) * w + 2 * j;
                            let halves = [
                                (0, masks[1], s._mm512_permutex2var_ps(ge, lo, go)),
                                (L, masks[2], s._mm512_permutex2var_ps(ge, hi, go)),
                            ];
                            for (off, mask, gv) in halves {
                                if mask == 0 {
                                    continue;
                                }
                                let at = row + off;
                                // SAFETY: the lanes of `mask` from `at` are columns of row
                                // 2i + t of the plane, in `x` and in `dx`
                                unsafe {
                                    let mut v = d(load(xp.wrapping_add(at), mask), gv);
                                    if ADD {
                                        v = s._mm512_add_ps(load(dp.wrapping_add(at), mask), v);
                                    }
                                    store(dp.wrapping_add(at), mask, v);
                                }
                            }
                        }
                    }
                }
            }
        }
    }
    let dims = (n, c, h, w);
    Simd::vectorize(
        simd,
        Op::<ADD> {
            simd,
            x,
            dims,
            ks,
            consts,
            winners,
            dy,
            dx,
        },
    )
}
