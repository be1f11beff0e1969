//! The shifted convolutions (`shifted.rs`) for `f32` in sixteen lanes, as direct loops whose
//! sums stay in registers instead of GEMMs whose products go through memory once per tap.
//!
//! - Forward and input gradient: one direct convolution over padded planes. A block of
//!   eight output channels by three output rows of sixteen columns keeps its 24
//!   accumulators in registers over every source channel and tap: per tap it loads the
//!   three source rows, shifted by the tap, broadcasts each channel's weight and adds the
//!   products; the block is then written once (with the bias, or onto `dx`, or through
//!   relu's mask). The forward pass reads the padded input `P` with the taps' shifts
//!   `d_t = u·pw + v`; the input gradient is the same loop over the widened `dYw` with the
//!   weight's channels swapped and the shifts reversed, `max_shift - d_t`.
//! - Weight gradient: with the output channels in the lanes instead (`weight_grad.rs`).
//! - All three passes of a 3 × 3 kernel with padding 1 and even output sides: Winograd's
//!   F(2 × 2, 3 × 3) instead (`winograd.rs` for the forward pass and the input gradient,
//!   `winograd_grad.rs` for the weight gradient), 16 products per 2 × 2 outputs where the
//!   loops above take 36; the loops remain for every other geometry.
//!
//! Every load and store is masked to the columns that exist, so nothing outside a row's
//! valid lanes is read; the entry points check the buffers' lengths against the furthest
//! element they reach and leave the work to the GEMMs (returning `false`) when they do not
//! fit, which the callers' layouts never cause.

use core::arch::x86_64::{__m512, _CMP_GT_OQ};
use core::arch::x86_64::{_mm512_mask_storeu_ps, _mm512_maskz_loadu_ps};

use pulp::x86::V4;
use pulp::Simd;

use super::{Conv2dGeom, Dx};
use crate::float::{as_f32, as_f32_mut};
use crate::simd::first_lanes;
use crate::Float;

mod single;
mod weight_grad;
mod winograd;
mod winograd_grad;
pub(super) use single::{single_forward, single_weight_grad};
pub(super) use weight_grad::add_weight_grad;
pub(super) use winograd::{winograd_forward, winograd_input_grad_dy};
pub(super) use winograd_grad::winograd_weight_grad;

/// `f32` lanes in one register.
const L: usize = 16;
/// Output channels of one block of accumulators.
const CHANNELS: usize = 8;
/// Output rows of one block of accumulators: with [`CHANNELS`], 24 accumulators, three
/// source rows and a broadcast weight in 32 registers.
const ROWS: usize = 3;

/// The lanes of `mask` loaded from `p`, zeros in the others.
///
/// # Safety
///
/// AVX-512F is present, and `p.add(l)` is readable for each lane `l` of `mask` (the others
/// are not accessed).
#[inline(always)]
unsafe fn load(mask: u16, p: *const f32) -> __m512 {
    // SAFETY: the caller's contract
    unsafe { _mm512_maskz_loadu_ps(mask, p) }
}

/// The lanes of `mask` of `v` stored at `p`.
///
/// # Safety
///
/// AVX-512F is present, and `p.add(l)` is writable for each lane `l` of `mask`.
#[inline(always)]
unsafe fn store(mask: u16, p: *mut f32, v: __m512) {
    // SAFETY: the caller's contract
    unsafe { _mm512_mask_storeu_ps(p, mask, v) }
}

/// One direct convolution over padded planes: output `(k, d, r, j)` (image, channel, row,
/// column) is `Σ_{s, u, v} weight[d·w_dst + s·w_src + u·kw + v]·src[s·ld + k·plane + first
/// + r·pw + j + shift(u, v)]`, with `shift = u·pw + v`, or `max_shift - (u·pw + v)` when
/// `flip`.
struct Direct<'a> {
    src: &'a [f32],
    ld: usize,
    c_src: usize,
    weight: &'a [f32],
    w_dst: usize,
    w_src: usize,
    c_dst: usize,
    rows: usize,
    cols: usize,
    plane: usize,
    first: usize,
    pw: usize,
    kh: usize,
    kw: usize,
    flip: bool,
    max_shift: usize,
    /// The weight packed by [`Direct::pack`] when the kernel is 3 × 3: the loops then take
    /// [`Direct::block3`].
    packed: Option<&'a [f32]>,
}

/// Where and how a direct convolution writes its outputs `[n, c_dst, rows, cols]`.
enum Sink<'a> {
    /// `y = sums + bias`.
    Forward {
        y: &'a mut [f32],
        bias: Option<&'a [f32]>,
    },
    /// `dx` as [`Dx`] says, `x` the convolution's input (for [`Dx::ThroughRelu`]).
    Input {
        dx: &'a mut [f32],
        x: &'a [f32],
        how: Dx,
    },
}

impl Sink<'_> {
    /// Whether the sink holds `out` outputs (`[n, c_dst, rows, cols]`), with a bias of
    /// `c_dst` if any (forward), or with an input `x` of `out` when relu's mask reads it.
    fn fits(&self, out: usize, c_dst: usize) -> bool {
        match self {
            Sink::Forward { y, bias } => y.len() == out && bias.is_none_or(|b| b.len() == c_dst),
            Sink::Input { dx, x, how } => {
                dx.len() == out && (*how != Dx::ThroughRelu || x.len() == out)
            }
        }
    }

    /// Writes `v`'s lanes `mask` at element `at` of channel `d`'s outputs: `y` with the
    /// channel's bias, or `dx` as [`Dx`] says.
    ///
    /// # Safety
    ///
    /// AVX-512F is present, and the lanes of `mask` from `at` lie in one output row of
    /// channel `d < c_dst`, inside the sink's buffers of `[n, c_dst, rows, cols]` (after
    /// [`Sink::fits`]).
    #[inline(always)]
    unsafe fn put(&mut self, simd: V4, d: usize, at: usize, mask: u16, v: __m512) {
        let f = simd.avx512f;
        // SAFETY (every access): the caller's contract
        match self {
            Sink::Forward { y, bias } => {
                let b = bias.map_or(0.0, |b| b[d]);
                let v = f._mm512_add_ps(v, f._mm512_set1_ps(b));
                unsafe { store(mask, y.as_mut_ptr().add(at), v) }
            }
            Sink::Input { dx, x, how } => {
                let p = dx.as_mut_ptr();
                let v = match how {
                    Dx::Overwrite => v,
                    Dx::Add => f._mm512_add_ps(v, unsafe { load(mask, p.add(at)) }),
                    Dx::ThroughRelu => {
                        let xv = unsafe { load(mask, x.as_ptr().add(at)) };
                        let keep = f._mm512_cmp_ps_mask::<_CMP_GT_OQ>(xv, f._mm512_setzero_ps());
                        f._mm512_maskz_mov_ps(keep, v)
                    }
                };
                unsafe { store(mask, p.add(at), v) }
            }
        }
    }
}

impl<'a> Direct<'a> {
    /// Whether every element the loops reach lies inside the buffers, for `n` images.
    fn fits(&self, n: usize, sink: &Sink) -> bool {
        let reach = || -> Option<bool> {
            let taps = self.kh.checked_mul(self.kw)?;
            let span = (self.kh - 1)
                .checked_mul(self.pw)?
                .checked_add(self.kw - 1)?;
            let shift = if self.flip { self.max_shift } else { span };
            let last_src = (self.c_src - 1)
                .checked_mul(self.ld)?
                .checked_add((n - 1).checked_mul(self.plane)?)?
                .checked_add(self.first)?
                .checked_add((self.rows - 1).checked_mul(self.pw)?)?
                .checked_add(self.cols - 1)?
                .checked_add(shift)?;
            let last_weight = (self.c_dst - 1)
                .checked_mul(self.w_dst)?
                .checked_add((self.c_src - 1).checked_mul(self.w_src)?)?
                .checked_add(taps - 1)?;
            let out = n
                .checked_mul(self.c_dst)?
                .checked_mul(self.rows)?
                .checked_mul(self.cols)?;
            let sink_fits = sink.fits(out, self.c_dst);
            // reversed shifts `max_shift - (u·pw + v)` do not wrap
            let shifts_fit = !self.flip || self.max_shift >= span;
            Some(
                last_src < self.src.len()
                    && last_weight < self.weight.len()
                    && sink_fits
                    && shifts_fit,
            )
        };
        n > 0
            && self.c_src > 0
            && self.c_dst > 0
            && self.rows > 0
            && self.cols > 0
            && self.kh > 0
            && self.kw > 0
            && reach() == Some(true)
    }

    /// `self` reading its weight packed in `buffer` when the kernel is 3 × 3 and `buffer`
    /// holds it (after [`Direct::fits`]), else as it is.
    fn packed_into<'b>(self, buffer: &'b mut [f32]) -> Direct<'b>
    where
        'a: 'b,
    {
        if !self.packs_into(buffer.len()) {
            return self;
        }
        self.pack(buffer);
        Direct {
            packed: Some(buffer),
            ..self
        }
    }

    /// Runs the convolution over `n` images into `sink` (after [`Direct::fits`]).
    fn run(&self, simd: V4, n: usize, sink: &mut Sink) {
        struct Op<'a, 'b, 'c> {
            simd: V4,
            d: &'a Direct<'b>,
            n: usize,
            sink: &'a mut Sink<'c>,
        }
        impl pulp::WithSimd for Op<'_, '_, '_> {
            type Output = ();
            #[inline(always)]
            fn with_simd<S: Simd>(self, _: S) {
                let Self { simd, d, n, sink } = self;
                for k in 0..n {
                    let mut d0 = 0;
                    while d0 < d.c_dst {
                        d0 += match d.block_width(d0) {
                            CHANNELS => d.channels::<CHANNELS>(simd, k, d0, sink),
                            4 => d.channels::<4>(simd, k, d0, sink),
                            _ => d.channels::<1>(simd, k, d0, sink),
                        };
                    }
                }
            }
        }
        Simd::vectorize(
            simd,
            Op {
                simd,
                d: self,
                n,
                sink,
            },
        );
    }

    /// Every row and column of channels `d0..d0 + C` of image `k`; returns `C`.
    #[inline(always)]
    fn channels<const C: usize>(&self, simd: V4, k: usize, d0: usize, sink: &mut Sink) -> usize {
        let mut r = 0;
        while r < self.rows {
            let rows = (self.rows - r).min(ROWS);
            for j in (0..self.cols).step_by(L) {
                let mask = first_lanes(self.cols - j);
                let base = k * self.plane + self.first + r * self.pw + j;
                let at = (k, d0, r, j);
                match rows {
                    3 => self.block_and_write::<C, 3>(simd, sink, at, base, mask),
                    2 => self.block_and_write::<C, 2>(simd, sink, at, base, mask),
                    _ => self.block_and_write::<C, 1>(simd, sink, at, base, mask),
                }
            }
            r += rows;
        }
        C
    }

    /// [`Direct::block`] then [`Direct::write`], with the flip a constant of the loops.
    #[inline(always)]
    fn block_and_write<const C: usize, const R: usize>(
        &self,
        simd: V4,
        sink: &mut Sink,
        at: (usize, usize, usize, usize),
        base: usize,
        mask: u16,
    ) {
        let acc = match (self.packed, self.flip) {
            (Some(w), true) => self.block3::<C, R, true>(simd, w, at.1, base, mask),
            (Some(w), false) => self.block3::<C, R, false>(simd, w, at.1, base, mask),
            (None, true) => self.block::<C, R, true>(simd, at.1, base, mask),
            (None, false) => self.block::<C, R, false>(simd, at.1, base, mask),
        };
        self.write(simd, sink, at, mask, &acc);
    }

    /// The sums of channels `d0..d0 + C` over `R` rows of the lanes `mask` from source
    /// column `base` (of image plane 0, row 0, no shift).
    #[inline(always)]
    fn block<const C: usize, const R: usize, const FLIP: bool>(
        &self,
        simd: V4,
        d0: usize,
        base: usize,
        mask: u16,
    ) -> [[__m512; R]; C] {
        let f = simd.avx512f;
        let mut acc = [[f._mm512_setzero_ps(); R]; C];
        let (src, weight) = (self.src.as_ptr(), self.weight.as_ptr());
        for s in 0..self.c_src {
            let row = s * self.ld + base;
            let w = d0 * self.w_dst + s * self.w_src;
            for u in 0..self.kh {
                for v in 0..self.kw {
                    let d = u * self.pw + v;
                    let at = row + if FLIP { self.max_shift - d } else { d };
                    // SAFETY: AVX-512F is present (under `V4`); the masked lanes are columns
                    // below `cols` of rows below `rows`, inside `src` by `fits`
                    let x: [__m512; R] =
                        core::array::from_fn(|i| unsafe { load(mask, src.add(at + i * self.pw)) });
                    for (c, acc) in acc.iter_mut().enumerate() {
                        // SAFETY: channel `d0 + c < c_dst`, source `s < c_src` and tap
                        // `u·kw + v < kh·kw`: inside `weight` by `fits`
                        let wv = unsafe { *weight.add(w + c * self.w_dst + u * self.kw + v) };
                        let wv = f._mm512_set1_ps(wv);
                        for (a, &x) in acc.iter_mut().zip(&x) {
                            *a = f._mm512_fmadd_ps(wv, x, *a);
                        }
                    }
                }
            }
        }
        acc
    }

    /// The blocks' widths in output channels, as [`Direct::run`] walks them from `d0`.
    fn block_width(&self, d0: usize) -> usize {
        match self.c_dst - d0 {
            left if left >= CHANNELS => CHANNELS,
            left if left >= 4 => 4,
            _ => 1,
        }
    }

    /// Whether `len` elements hold the weight packed for a 3 × 3 kernel.
    fn packs_into(&self, len: usize) -> bool {
        self.kh == 3
            && self.kw == 3
            && self
                .c_dst
                .checked_mul(self.c_src)
                .and_then(|v| v.checked_mul(9))
                .is_some_and(|v| v <= len)
    }

    /// Packs the 3 × 3 weight for [`Direct::block3`] into `out` (after
    /// [`Direct::packs_into`]): the block of `C` channels from `d0` (as [`Direct::run`] cuts
    /// them) at `d0·c_src·9`, within it source channel `s` then tap `t` then channel `c`, so
    /// that the `C` weights of one tap are one contiguous line:
    /// `out[d0·c_src·9 + (s·9 + t)·C + c] = weight[(d0 + c)·w_dst + s·w_src + t]`.
    fn pack(&self, out: &mut [f32]) {
        let mut d0 = 0;
        while d0 < self.c_dst {
            let width = self.block_width(d0);
            let block = &mut out[d0 * self.c_src * 9..][..width * self.c_src * 9];
            for (e, o) in block.iter_mut().enumerate() {
                let (st, c) = (e / width, e % width);
                let (s, t) = (st / 9, st % 9);
                *o = self.weight[(d0 + c) * self.w_dst + s * self.w_src + t];
            }
            d0 += width;
        }
    }

    /// [`Direct::block`] for a 3 × 3 kernel, from the weight `packed` by [`Direct::pack`]:
    /// for each source channel and kernel column `v`, the `R + 2` source rows that the three
    /// kernel rows reach are loaded once, and each tap's `C` weights are read from one line.
    /// Output row `i` and kernel row `u` read source row `m = i + u` (`i + 2 - u` when
    /// flipped: the shift `max_shift - u·pw - v` is `(2 - u)·pw + 2 - v`).
    #[inline(always)]
    fn block3<const C: usize, const R: usize, const FLIP: bool>(
        &self,
        simd: V4,
        packed: &[f32],
        d0: usize,
        base: usize,
        mask: u16,
    ) -> [[__m512; R]; C] {
        let f = simd.avx512f;
        let mut acc = [[f._mm512_setzero_ps(); R]; C];
        let (pw, ld) = (self.pw, self.ld);
        let mut src = self.src.as_ptr().wrapping_add(base);
        let mut w = packed.as_ptr().wrapping_add(d0 * self.c_src * 9);
        for _ in 0..self.c_src {
            for v in 0..3 {
                let at = src.wrapping_add(if FLIP { 2 - v } else { v });
                // SAFETY: AVX-512F is present (under `V4`); the masked lanes are columns
                // below `cols` of source rows reached by rows below `rows` and the kernel's
                // three rows, inside `src` by `fits` (rows past `R + 2` are not loaded)
                let x: [__m512; ROWS + 2] = core::array::from_fn(|m| {
                    if m < R + 2 {
                        unsafe { load(mask, at.add(m * pw)) }
                    } else {
                        f._mm512_setzero_ps()
                    }
                });
                for u in 0..3 {
                    for (c, acc) in acc.iter_mut().enumerate() {
                        // SAFETY: tap `u·3 + v < 9` of channel `d0 + c < c_dst` and the
                        // current source channel: inside `packed` by `packs_into`
                        let wv = f._mm512_set1_ps(unsafe { *w.add((u * 3 + v) * C + c) });
                        for (i, a) in acc.iter_mut().enumerate() {
                            let m = if FLIP { i + 2 - u } else { i + u };
                            *a = f._mm512_fmadd_ps(wv, x[m], *a);
                        }
                    }
                }
            }
            src = src.wrapping_add(ld);
            w = w.wrapping_add(9 * C);
        }
        acc
    }

    /// Writes the sums of channels `d0..` and rows `r..` at column `j` of image `k`.
    #[inline(always)]
    fn write<const C: usize, const R: usize>(
        &self,
        simd: V4,
        sink: &mut Sink,
        (k, d0, r, j): (usize, usize, usize, usize),
        mask: u16,
        acc: &[[__m512; R]; C],
    ) {
        let plane = self.rows * self.cols;
        for (c, acc) in acc.iter().enumerate() {
            let at = (k * self.c_dst + d0 + c) * plane + r * self.cols + j;
            for (i, &v) in acc.iter().enumerate() {
                let at = at + i * self.cols;
                // SAFETY: the lanes of `mask` are columns `j..cols` of row `r + i < rows` of
                // channel `d0 + c < c_dst` of image `k < n` (`fits`)
                unsafe { sink.put(simd, d0 + c, at, mask, v) }
            }
        }
    }
}

/// `y = conv2d(x) + bias` from the padded planes `p: [c_in, ld_p]` (`shifted.rs`'s `P`) for
/// `f32` on AVX-512; `false` (nothing written) otherwise.
#[allow(clippy::too_many_arguments)]
pub(super) fn forward<T: Float>(
    g: &Conv2dGeom,
    p: &[T],
    ld_p: usize,
    (weight, packed): (&[T], &mut [T]),
    bias: Option<&[T]>,
    n: usize,
    y: &mut [T],
) -> bool {
    let (Some(simd), Some(p), Some(weight), Some(packed), Some(y)) = (
        V4::try_new(),
        as_f32(p),
        as_f32(weight),
        as_f32_mut(packed),
        as_f32_mut(y),
    ) else {
        return false;
    };
    let bias = match bias.map(|b| as_f32(b)) {
        Some(None) => return false,
        Some(Some(b)) => Some(b),
        None => None,
    };
    let taps = g.kh * g.kw;
    let d = Direct {
        src: p,
        ld: ld_p,
        c_src: g.c_in,
        weight,
        w_dst: g.c_in * taps,
        w_src: taps,
        c_dst: g.c_out,
        rows: g.out_h(),
        cols: g.out_w(),
        plane: g.padded_plane(),
        first: 0,
        pw: g.padded_w(),
        kh: g.kh,
        kw: g.kw,
        flip: false,
        max_shift: g.max_shift(),
        packed: None,
    };
    let mut sink = Sink::Forward { y, bias };
    if !d.fits(n, &sink) {
        return false;
    }
    let d = d.packed_into(packed);
    d.run(simd, n, &mut sink);
    true
}

/// `dx` (as `how` says) from the widened output gradient `dyw: [c_out, ld_dy]`
/// (`shifted.rs`'s `dYw`, its margin included) for `f32` on AVX-512; `false` (nothing
/// written) otherwise.
#[allow(clippy::too_many_arguments)]
pub(super) fn input_grad<T: Float>(
    g: &Conv2dGeom,
    dyw: &[T],
    ld_dy: usize,
    (weight, packed): (&[T], &mut [T]),
    n: usize,
    x: &[T],
    dx: &mut [T],
    how: Dx,
) -> bool {
    let (Some(simd), Some(dyw), Some(weight), Some(packed), Some(x), Some(dx)) = (
        V4::try_new(),
        as_f32(dyw),
        as_f32(weight),
        as_f32_mut(packed),
        as_f32(x),
        as_f32_mut(dx),
    ) else {
        return false;
    };
    let (taps, pad, pw) = (g.kh * g.kw, g.padding, g.padded_w());
    let d = Direct {
        src: dyw,
        ld: ld_dy,
        c_src: g.c_out,
        weight,
        w_dst: taps,
        w_src: g.c_in * taps,
        c_dst: g.c_in,
        rows: g.h,
        cols: g.w,
        plane: g.padded_plane(),
        first: pad * pw + pad,
        pw,
        kh: g.kh,
        kw: g.kw,
        flip: true,
        max_shift: g.max_shift(),
        packed: None,
    };
    let mut sink = Sink::Input { dx, x, how };
    if !d.fits(n, &sink) {
        return false;
    }
    let d = d.packed_into(packed);
    d.run(simd, n, &mut sink);
    true
}

/// `dst[r·pw + j] = src[r·w + j - a]` for `a ≤ j < a + w` and 0 for the other `j < pw`, for
/// every row `r` of `src` (`w` wide; `dst` holds as many rows of `pw`): the padded planes'
/// rows (`a` = the padding) and the widened output gradient's (`a` = 0), one masked load
/// and store per 16 columns instead of a copy and a fill per row, for `f32` on AVX-512;
/// `false` (nothing written) otherwise.
pub(super) fn pad_rows<T: Float>(src: &[T], w: usize, a: usize, dst: &mut [T], pw: usize) -> bool {
    let (Some(simd), Some(src), Some(dst)) = (V4::try_new(), as_f32(src), as_f32_mut(dst)) else {
        return false;
    };
    let fits = w > 0
        && src.len() % w == 0
        && a.checked_add(w).is_some_and(|end| end <= pw)
        && (src.len() / w).checked_mul(pw) == Some(dst.len());
    if !fits {
        return false;
    }
    struct Op<'a> {
        src: &'a [f32],
        w: usize,
        a: usize,
        dst: &'a mut [f32],
        pw: usize,
    }
    impl pulp::WithSimd for Op<'_> {
        type Output = ();
        #[inline(always)]
        fn with_simd<S: Simd>(self, _: S) {
            let Self { src, w, a, dst, pw } = self;
            for (from, to) in src.chunks_exact(w).zip(dst.chunks_exact_mut(pw)) {
                for j0 in (0..pw).step_by(L) {
                    // lanes of the row's columns `j0 + l < pw`, of which those in `a..a + w`
                    // come from `from[j0 + l - a]`
                    let lanes = first_lanes(pw - j0);
                    let values = lanes
                        & first_lanes((a + w).saturating_sub(j0))
                        & !first_lanes(a.saturating_sub(j0));
                    let at = from.as_ptr().wrapping_add(j0).wrapping_sub(a);
                    // SAFETY: AVX-512F is present (under `V4`); the lanes of `values` read
                    // `from[j0 + l - a]` with `0 ≤ j0 + l - a < w`, those of `lanes` write
                    // `to[j0 + l]` with `j0 + l < pw`
                    unsafe {
                        let v = load(values, at);
                        store(lanes, to.as_mut_ptr().add(j0), v);
                    }
                }
            }
        }
    }
    Simd::vectorize(simd, Op { src, w, a, dst, pw });
    true
}

#[cfg(test)]
mod tests {
    use super::super::shifted::{backward_on, forward_on};
    use super::super::Path;
    use super::super::{Conv2dCols, Conv2dGeom, Dx};
    use crate::testing::random_vec;

    /// The shifted kernels' workspace for `n` images, whatever the number of channels.
    fn workspace(g: &Conv2dGeom, n: usize) -> Vec<f32> {
        vec![f32::NAN; n * g.shifted_per_image() + g.shifted_fixed()]
    }

    /// Plain f64 loops: `y`, `dx`, `dweight` (no bias) of the convolution, each with the sum of
    /// the absolute values of its terms (the scale of its rounding error).
    #[allow(clippy::type_complexity)]
    fn reference(
        g: &Conv2dGeom,
        n: usize,
        x: &[f32],
        w: &[f32],
        dy: &[f32],
    ) -> [(Vec<f64>, Vec<f64>); 3] {
        let (oh, ow, p) = (g.out_h(), g.out_w(), g.padding as isize);
        let mut y = (vec![0.0; n * g.output_len()], vec![0.0; n * g.output_len()]);
        let mut dx = (vec![0.0; x.len()], vec![0.0; x.len()]);
        let mut dw = (vec![0.0; w.len()], vec![0.0; w.len()]);
        for k in 0..n {
            for o in 0..g.c_out {
                for i in 0..oh {
                    for j in 0..ow {
                        let yi = ((k * g.c_out + o) * oh + i) * ow + j;
                        for c in 0..g.c_in {
                            for u in 0..g.kh {
                                for v in 0..g.kw {
                                    let (r, s) = ((i + u) as isize - p, (j + v) as isize - p);
                                    if r < 0 || s < 0 || r >= g.h as isize || s >= g.w as isize {
                                        continue;
                                    }
                                    let xi =
                                        ((k * g.c_in + c) * g.h + r as usize) * g.w + s as usize;
                                    let wi = ((o * g.c_in + c) * g.kh + u) * g.kw + v;
                                    let (xv, wv, d) =
                                        (f64::from(x[xi]), f64::from(w[wi]), f64::from(dy[yi]));
                                    y.0[yi] += wv * xv;
                                    y.1[yi] += (wv * xv).abs();
                                    dx.0[xi] += wv * d;
                                    dx.1[xi] += (wv * d).abs();
                                    dw.0[wi] += d * xv;
                                    dw.1[wi] += (d * xv).abs();
                                }
                            }
                        }
                    }
                }
            }
        }
        [y, dx, dw]
    }

    /// `|got - value| <= depth·ε·scale` element by element (`ε` of f32): the bound of a sum
    /// of `depth` products rounded in f32 in any order.
    fn assert_within(what: &str, got: &[f32], (value, scale): &(Vec<f64>, Vec<f64>), depth: usize) {
        assert_eq!(got.len(), value.len(), "{what}");
        let eps = f64::from(f32::EPSILON);
        for (e, ((&g, &v), &s)) in got.iter().zip(value).zip(scale).enumerate() {
            let tol = depth as f64 * eps * s + f64::from(f32::MIN_POSITIVE);
            let err = (f64::from(g) - v).abs();
            assert!(
                err <= tol,
                "{what}[{e}]: {g} against {v} (error {err:e} > {tol:e})"
            );
        }
    }

    /// `|a - b| <= 2·depth·ε·scale`: two f32 sums of the same terms in different orders.
    fn assert_paths(what: &str, a: &[f32], b: &[f32], scale: &[f64], depth: usize) {
        let eps = f64::from(f32::EPSILON);
        for (e, ((&a, &b), &s)) in a.iter().zip(b).zip(scale).enumerate() {
            let tol = 2.0 * depth as f64 * eps * s + f64::from(f32::MIN_POSITIVE);
            let err = (f64::from(a) - f64::from(b)).abs();
            assert!(
                err <= tol,
                "{what}[{e}]: {a} against {b} (error {err:e} > {tol:e})"
            );
        }
    }

    #[test]
    fn literal_two_channels() {
        // as in shifted.rs, in f32 on the direct loops: 2 channels of 2x2, [[1, 2], [3, 4]] and
        // [[5, 6], [7, 8]], one 3x3 filter with padding 1, 1 at the centre of channel 0 and
        // at tap (0, 0) of channel 1: y[i, j] = x0[i, j] + x1[i - 1, j - 1] + 0.5
        //   = [[1.5, 2.5], [3.5, 4 + 5 + 0.5]]
        let g = Conv2dGeom::new(2, 2, 2, 1, 3, 3, 1, 1).unwrap();
        let x: Vec<f32> = (1..=8).map(|v| v as f32).collect();
        let mut w = [0.0f32; 18];
        (w[4], w[9]) = (1.0, 1.0);
        let mut ws = workspace(&g, 1);
        let mut y = [f32::NAN; 4];
        forward_on(
            Path::Loops,
            &g,
            &x,
            &w,
            Some(&[0.5][..]),
            1,
            &mut ws,
            &mut y,
        );
        assert_eq!(y, [1.5, 2.5, 3.5, 9.5]);
        // dy = [[1, 2], [3, 4]]: dx0 = dy, dx1[r, s] = dy[r + 1, s + 1] = [[4, 0], [0, 0]];
        // dW[0, 0, 1, 1] = Σ dy·x0 = 1 + 4 + 9 + 16 = 30, dW[0, 1, 0, 0] = dy[1, 1]·x1[0, 0]
        // = 20, dW[0, 0, 0, 0] = dy[1, 1]·x0[0, 0] = 4; dW onto ones
        let dy = [1.0, 2.0, 3.0, 4.0];
        let (mut dx, mut dw) = (vec![f32::NAN; 8], vec![1.0f32; 18]);
        let grads = (Some(&mut dx[..]), Some(&mut dw[..]), None);
        let args = (&x[..], &w[..], &dy[..], 1);
        backward_on(
            Path::Loops,
            &g,
            args,
            &mut ws,
            Conv2dCols::Kept,
            grads,
            Dx::Overwrite,
        );
        assert_eq!(dx, [1.0, 2.0, 3.0, 4.0, 4.0, 0.0, 0.0, 0.0]);
        assert_eq!((dw[4], dw[9], dw[0]), (31.0, 21.0, 5.0));
        // dW[0, 0, 0, 1] = Σ dy[i, j]·x0[i - 1, j]: dy[1, 0]·1 + dy[1, 1]·2 = 3 + 8
        assert_eq!(dw[1], 12.0);
    }

    /// The direct loops against plain f64 loops and against the GEMMs, over `geoms` and
    /// batches `batches`: the output (with a bias), `dx` overwritten, added and through relu,
    /// `dweight`.
    fn direct_equals_reference_and_gemms(geoms: &[Conv2dGeom], batches: &[usize]) {
        for (i, g) in geoms.iter().enumerate() {
            assert!(
                g.stride == 1 && g.padding < g.kh && g.padding < g.kw,
                "{g:?}"
            );
            for &n in batches {
                let seed = 7000 + 10 * i as u64 + n as u64;
                let h: Vec<f32> = random_vec(seed, n * g.input_len(), -1.0, 1.0);
                let x: Vec<f32> = h.iter().map(|&v| v.max(0.0)).collect();
                let w: Vec<f32> = random_vec(seed + 1, g.weight_len(), -1.0, 1.0);
                let b: Vec<f32> = random_vec(seed + 2, g.c_out, -1.0, 1.0);
                let dy: Vec<f32> = random_vec(seed + 3, n * g.output_len(), -1.0, 1.0);
                let case = format!("{g:?}, n = {n}");
                let [ry, rdx, rdw] = reference(g, n, &x, &w, &dy);
                let taps = g.kh * g.kw;
                let depth = [g.c_in * taps, g.c_out * taps, n * g.out_h() * g.out_w()];
                let run = |path| {
                    let mut ws = workspace(g, n);
                    let mut y = vec![f32::NAN; n * g.output_len()];
                    forward_on(path, g, &x, &w, Some(&b), n, &mut ws, &mut y);
                    let (mut dx, mut dw) = (vec![f32::NAN; x.len()], vec![0.0f32; w.len()]);
                    let mut dx_add = vec![1.0f32; x.len()];
                    let mut dx_relu = vec![f32::NAN; x.len()];
                    let args = (&x[..], &w[..], &dy[..], n);
                    let kept = Conv2dCols::Kept;
                    // dbias onto ones
                    let mut db = vec![1.0f32; g.c_out];
                    let grads = (Some(&mut dx[..]), Some(&mut dw[..]), Some(&mut db[..]));
                    backward_on(path, g, args, &mut ws, kept, grads, Dx::Overwrite);
                    let grads = (Some(&mut dx_add[..]), None, None);
                    backward_on(path, g, args, &mut ws, kept, grads, Dx::Add);
                    let grads = (Some(&mut dx_relu[..]), None, None);
                    backward_on(path, g, args, &mut ws, kept, grads, Dx::ThroughRelu);
                    (y, dx, dx_add, dx_relu, (dw, db))
                };
                let (y, dx, dx_add, dx_relu, (dw, db)) = run(Path::Loops);
                // dbias[o] = 1 + Σ dy[k, o, ..], with Σ |terms| as its scale
                let hw = g.out_h() * g.out_w();
                let mut rdb = (vec![1.0f64; g.c_out], vec![1.0f64; g.c_out]);
                for (e, &d) in dy.iter().enumerate() {
                    rdb.0[e / hw % g.c_out] += f64::from(d);
                    rdb.1[e / hw % g.c_out] += f64::from(d).abs();
                }
                assert_within(&format!("dbias, {case}"), &db, &rdb, n * hw + 1);
                // the plain loops have no bias: take it off again (exact enough: the
                // tolerance's floor covers the one rounding of the addition)
                let y_nb: Vec<f32> = y
                    .iter()
                    .enumerate()
                    .map(|(e, &v)| v - b[e / (g.out_h() * g.out_w()) % g.c_out])
                    .collect();
                let ry_b = (ry.0.clone(), ry.1.iter().map(|s| s + 2.0).collect());
                assert_within(&format!("y, {case}"), &y_nb, &ry_b, depth[0] + 2);
                assert_within(&format!("dx, {case}"), &dx, &rdx, depth[1]);
                let rdx_add = (
                    rdx.0.iter().map(|v| v + 1.0).collect(),
                    rdx.1.iter().map(|s| s + 1.0).collect(),
                );
                assert_within(
                    &format!("dx added, {case}"),
                    &dx_add,
                    &rdx_add,
                    depth[1] + 1,
                );
                let relu: Vec<f32> = x
                    .iter()
                    .zip(&dx)
                    .map(|(&x, &d)| if x > 0.0 { d } else { 0.0 })
                    .collect();
                assert_eq!(dx_relu, relu, "dx through relu, {case}");
                assert_within(&format!("dweight, {case}"), &dw, &rdw, depth[2]);
                let (gy, gdx, gdx_add, _, (gdw, gdb)) = run(Path::Gemm);
                assert_paths(&format!("dbias, {case}"), &db, &gdb, &rdb.1, n * hw + 1);
                assert_paths(&format!("y, {case}"), &y, &gy, &ry_b.1, depth[0] + 2);
                assert_paths(&format!("dx, {case}"), &dx, &gdx, &rdx.1, depth[1]);
                assert_paths(
                    &format!("dx added, {case}"),
                    &dx_add,
                    &gdx_add,
                    &rdx_add.1,
                    depth[1] + 1,
                );
                assert_paths(&format!("dweight, {case}"), &dw, &gdw, &rdw.1, depth[2]);
            }
        }
    }

    #[test]
    fn direct_loops_equal_plain_loops_and_gemms_on_odd_shapes() {
        if super::V4::try_new().is_none() {
            eprintln!("no AVX-512: the direct loops do not run here");
            return;
        }
        let g = Conv2dGeom::new;
        direct_equals_reference_and_gemms(
            &[
                // one and three channels in and out, padding 0 and 1
                g(1, 6, 5, 3, 3, 3, 1, 1).unwrap(),
                g(3, 7, 9, 1, 3, 3, 1, 0).unwrap(),
                g(3, 5, 16, 3, 3, 3, 1, 1).unwrap(),
                // widths that fill one, two and a part of a third vector; 2x3 and 1x1
                // kernels; 5x5 with padding 2
                g(8, 4, 17, 9, 3, 3, 1, 1).unwrap(),
                g(2, 3, 32, 5, 2, 3, 1, 1).unwrap(),
                g(5, 9, 33, 13, 3, 3, 1, 0).unwrap(),
                g(4, 5, 5, 12, 1, 1, 1, 0).unwrap(),
                g(3, 6, 7, 4, 5, 5, 1, 2).unwrap(),
                // one row, one column
                g(2, 1, 9, 3, 1, 3, 1, 0).unwrap(),
                g(2, 8, 1, 3, 3, 1, 1, 0).unwrap(),
                // the weight gradient's blocks of 32 output channels, whole and in part
                // (40 = 32 + 8, 20 = 16 + 4), 5x5 taps in groups of 3x3, 3x1, 1x3, 1x1
                g(3, 5, 7, 40, 3, 3, 1, 1).unwrap(),
                g(2, 6, 6, 20, 5, 5, 1, 2).unwrap(),
            ],
            &[1, 2, 3, 4, 5],
        );
    }

    #[test]
    fn direct_loops_equal_plain_loops_and_gemms_on_mnist_cnn() {
        if super::V4::try_new().is_none() {
            eprintln!("no AVX-512: the direct loops do not run here");
            return;
        }
        // the example's second convolution at its batch and at 1, on the direct loops (not
        // Winograd's, which `winograd_grad.rs` tests)
        let g = Conv2dGeom::new(16, 14, 14, 32, 3, 3, 1, 1).unwrap();
        direct_equals_reference_and_gemms(&[g], &[1, 64]);
    }

    #[test]
    fn pad_rows_literal() {
        if super::V4::try_new().is_none() {
            eprintln!("no AVX-512: pad_rows declines here");
            return;
        }
        // two rows of 3 into rows of 5 after 1 zero, then (a row 20 wide, padded to 37) 17
        // zeros before it: the second case spans three vectors, the values two
        let mut dst = vec![f32::NAN; 10];
        assert!(super::pad_rows(
            &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0],
            3,
            1,
            &mut dst,
            5
        ));
        assert_eq!(dst, [0.0, 1.0, 2.0, 3.0, 0.0, 0.0, 4.0, 5.0, 6.0, 0.0]);
        let src: Vec<f32> = (1..=20).map(|v| v as f32).collect();
        let mut dst = vec![f32::NAN; 37];
        assert!(super::pad_rows(&src, 20, 17, &mut dst, 37));
        assert!(dst[..17].iter().all(|&v| v == 0.0));
        assert_eq!(dst[17..], src[..]);
        // a row that does not fit is declined, nothing written
        let mut dst = vec![f32::NAN; 4];
        assert!(!super::pad_rows(&[1.0, 2.0, 3.0], 3, 2, &mut dst, 4));
        assert!(dst.iter().all(|v| v.is_nan()));
    }

    #[test]
    fn mnist_cnn_takes_the_direct_loops() {
        // the comparisons above would pass as well were the loops to decline and leave the
        // work to the GEMMs: at the example's conv2, batch 3, all three run (`true`), the
        // forward pass and the input gradient on the packed 3x3 weight
        if super::V4::try_new().is_none() {
            eprintln!("no AVX-512: the direct loops do not run here");
            return;
        }
        let (g, n) = (Conv2dGeom::new(16, 14, 14, 32, 3, 3, 1, 1).unwrap(), 3);
        let (plane, pw) = (g.padded_plane(), g.padded_w());
        let ld_p = n * plane + 3 * pw + 3;
        let ld_dy = n * plane + g.max_shift();
        let p: Vec<f32> = random_vec(1, g.c_in * ld_p, -1.0, 1.0);
        let dyw: Vec<f32> = random_vec(2, g.c_out * ld_dy, -1.0, 1.0);
        let w: Vec<f32> = random_vec(3, g.weight_len(), -1.0, 1.0);
        let dy: Vec<f32> = random_vec(4, n * g.output_len(), -1.0, 1.0);
        let x = vec![1.0f32; n * g.input_len()];
        let mut packed = vec![0.0f32; g.weight_len()];
        let mut y = vec![0.0f32; n * g.output_len()];
        assert!(super::forward(
            &g,
            &p,
            ld_p,
            (&w, &mut packed),
            None,
            n,
            &mut y
        ));
        let mut dx = vec![0.0f32; x.len()];
        let how = Dx::Overwrite;
        assert!(super::input_grad(
            &g,
            &dyw,
            ld_dy,
            (&w, &mut packed),
            n,
            &x,
            &mut dx,
            how
        ));
        let (mut scratch, mut sums) = (vec![0.0f32; 196 * 32], vec![0.0f32; g.weight_len()]);
        let mut dw = vec![0.0f32; g.weight_len()];
        let ws = (&mut scratch[..], &mut sums[..]);
        assert!(super::weight_grad::add_weight_grad(
            &g, &dy, &p, ld_p, n, ws, None, &mut dw
        ));
        // and the packed line of tap (u, v) = (1, 2) of source channel 5, first block:
        // weight[c, 5, 1, 2] for the block's 8 channels c
        let d = super::Direct {
            src: &p,
            ld: ld_p,
            c_src: 16,
            weight: &w,
            w_dst: 144,
            w_src: 9,
            c_dst: 32,
            rows: 14,
            cols: 14,
            plane,
            first: 0,
            pw,
            kh: 3,
            kw: 3,
            flip: false,
            max_shift: g.max_shift(),
            packed: None,
        };
        assert!(d.packs_into(packed.len()) && !d.packs_into(packed.len() - 1));
        d.pack(&mut packed);
        let line: Vec<f32> = (0..8).map(|c| w[c * 144 + 5 * 9 + 5]).collect();
        assert_eq!(packed[(5 * 9 + 5) * 8..][..8], line[..]);
    }

    #[test]
    fn weight_gradient_equals_central_differences() {
        // L(W) = Σ r·conv2d(x, W) with fixed r: dL/dW is the backward pass's dweight for
        // dy = r. L is linear in W, so the central difference is exact but for the
        // roundings of the f32 outputs (summed in f64 here)
        for g in [
            Conv2dGeom::new(3, 5, 6, 2, 3, 3, 1, 1).unwrap(),
            Conv2dGeom::new(2, 4, 18, 9, 2, 3, 1, 0).unwrap(),
        ] {
            let n = 2;
            let x: Vec<f32> = random_vec(31, n * g.input_len(), -1.0, 1.0);
            let w: Vec<f32> = random_vec(32, g.weight_len(), -1.0, 1.0);
            let r: Vec<f32> = random_vec(33, n * g.output_len(), -1.0, 1.0);
            let mut ws = workspace(&g, n);
            let mut loss = |w: &[f32]| -> f64 {
                let mut y = vec![f32::NAN; r.len()];
                forward_on(Path::Loops, &g, &x, w, None, n, &mut ws, &mut y);
                y.iter()
                    .zip(&r)
                    .map(|(&y, &r)| f64::from(y) * f64::from(r))
                    .sum()
            };
            let h = 0.5f32;
            let numeric: Vec<f64> = (0..w.len())
                .map(|e| {
                    let (mut up, mut down) = (w.clone(), w.clone());
                    (up[e], down[e]) = (w[e] + h, w[e] - h);
                    (loss(&up) - loss(&down)) / (2.0 * f64::from(h))
                })
                .collect();
            let mut dw = vec![0.0f32; w.len()];
            let args = (&x[..], &w[..], &r[..], n);
            let grads = (None, Some(&mut dw[..]), None);
            let recompute = Conv2dCols::Recompute;
            backward_on(Path::Loops, &g, args, &mut ws, recompute, grads, Dx::Add);
            assert!(dw.iter().any(|&d| d.abs() > 0.5), "{g:?}");
            for (e, (&d, &num)) in dw.iter().zip(&numeric).enumerate() {
                assert!(
                    (f64::from(d) - num).abs() < 1e-3,
                    "{g:?} [{e}]: {d} against {num}"
                );
            }
        }
    }
}
