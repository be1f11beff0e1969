//! Winograd's F(2 × 2, 3 × 3) for the shifted convolutions' forward pass and input gradient
//! (`avx512.rs`) when the kernel is 3 × 3, the stride 1, the padding 1 and the output's
//! height and width are even, for `f32` in sixteen lanes.
//!
//! Each 2 × 2 block of outputs (a tile) of channel `d` reads a 4 × 4 block `D_s` of each
//! source channel `s`, and is
//!
//! `Y = Aᵀ [Σ_s (G g_{d,s} Gᵀ) ⊙ (Bᵀ D_s B)] A`, with
//!
//! ```text
//!      | 1  0 -1  0 |       | 1   0   0 |
//! Bᵀ = | 0  1  1  0 |   G = | ½   ½   ½ |   Aᵀ = | 1  1  1  0 |
//!      | 0 -1  1  0 |       | ½  -½   ½ |        | 0  1 -1 -1 |
//!      | 0  1  0 -1 |       | 0   0   1 |
//! ```
//!
//! that is 16 products per tile and pair of channels instead of 36. The 16 positions `ξ`
//! of the transformed blocks are independent, so the sum over `s` is one matrix product
//! per position, `M_ξ[d, t] = Σ_s U_ξ[s, d]·V_ξ[s, t]` over the tiles `t`:
//!
//! 1. the weight is transformed once per call, `U_ξ[s, d] = (G g_{d,s} Gᵀ)_ξ`, in `f64`
//!    and rounded once;
//! 2. the tiles go in blocks of up to [`BLOCK`] (so that a block's `V` and `M` stay in
//!    L2): the input transform of a block writes `V`, two rows of up to eight tiles at a
//!    time (each row's 16 columns loaded in the lanes, the even lanes of both gathered into
//!    one vector);
//! 3. per position, blocks of eight channels by 48 tiles (tiles in the lanes) keep their
//!    sums in registers over `s`;
//! 4. the output transform reads `M`, again for two rows of tiles in one vector, and
//!    writes each row's two output rows (`y` with the bias, or `dx` as [`Dx`] says).
//!
//! The forward pass reads the padded planes `P` (`g_{d,s}` = `weight[d, s]`); the input
//! gradient is the same convolution of the widened `dYw` with `g_{d,s}[u][v] =
//! weight[s, d, 2 - u, 2 - v]` (the weight's channels swapped, rotated by 180°). Tile
//! `(ti, tj)` of image `k` reads `src[s, k·plane + first + (2ti + a)·pw + 2tj + b]`, `a, b
//! < 4`: `first` is 0 on `P` and `pw + 1` on `dYw` (whose margin of `2·pw + 2` zeros puts
//! output row and column -1 there); the shared padding and the junk columns supply the
//! zeros around each image. The shifted kernels' input gradient reads `dy: [n, c_out, rows,
//! cols]` itself instead, rows `2ti - 1 .. 2ti + 2` and columns `2tj - 1 .. 2tj + 2` of its
//! plane, with masked loads for the zeros outside it: the same values as from `dYw`, so the
//! same sums in the same order, without the copy.
//!
//! Every entry point checks the geometry, the buffers' lengths and the scratch space and
//! returns `false` (nothing written) when one does not fit, leaving the work to the direct
//! loops.

use core::arch::x86_64::__m512;

use pulp::x86::V4;
use pulp::Simd;

use super::super::{Conv2dGeom, Dx};
use super::{load, store, Sink, L};
use crate::float::{as_f32, as_f32_mut};
use crate::simd::first_lanes;
use crate::Float;

/// Tiles of one block: six vectors, two groups of [`VECTORS`].
const BLOCK: usize = 96;
/// Output channels of one block of accumulators.
const CHANNELS: usize = 8;
/// Vectors of tiles of one block of accumulators: with [`CHANNELS`], 24 accumulators,
/// three vectors of `V` and a broadcast weight in 32 registers.
const VECTORS: usize = 3;
/// Tiles of one segment: a row of tiles whose input columns fill one vector.
const SEGMENT: usize = L / 2;
/// Positions of a transformed 4 × 4 block.
const POSITIONS: usize = 16;
/// Elements between two positions' parts of `V` and of `M` beyond their channels' tiles: a
/// stride of a multiple of 4 KiB would put the 16 values of a tile, read or written
/// together, in one set of the L1 cache.
const SKEW: usize = L;

/// Whether `g` is a geometry of Winograd's F(2 × 2, 3 × 3) here: 3 × 3 kernel, stride 1,
/// padding 1 (so the output is as large as the input), even height and width.
fn applies(g: &Conv2dGeom) -> bool {
    (g.kh, g.kw, g.stride, g.padding) == (3, 3, 1, 1)
        && g.h > 0
        && g.w > 0
        && g.h.is_multiple_of(2)
        && g.w.is_multiple_of(2)
        && g.c_in > 0
        && g.c_out > 0
}

/// `y = conv2d(x) + bias` from the padded planes `p: [c_in, ld_p]` (`shifted.rs`'s `P`),
/// with `scratch` for the transformed weight and one block's `V` and `M`; `false` (nothing
/// written) unless `T` is `f32` on AVX-512, `g` a geometry of Winograd's and every buffer
/// long enough.
#[allow(clippy::too_many_arguments)]
pub(in super::super) fn winograd_forward<T: Float>(
    g: &Conv2dGeom,
    p: &[T],
    ld_p: usize,
    weight: &[T],
    bias: Option<&[T]>,
    n: usize,
    scratch: &mut [T],
    y: &mut [T],
) -> bool {
    if !applies(g) {
        return false;
    }
    let (Some(simd), Some(p), Some(weight), Some(scratch), Some(y)) = (
        V4::try_new(),
        as_f32(p),
        as_f32(weight),
        as_f32_mut(scratch),
        as_f32_mut(y),
    ) else {
        return false;
    };
    let bias = match bias.map(as_f32) {
        Some(None) => return false,
        Some(Some(b)) => Some(b),
        None => None,
    };
    let w = Winograd {
        src: p,
        ld: ld_p,
        c_src: g.c_in,
        c_dst: g.c_out,
        rows: g.h,
        cols: g.w,
        plane: g.padded_plane(),
        pw: g.padded_w(),
        first: 0,
        flip: false,
        plain: false,
    };
    let mut sink = Sink::Forward { y, bias };
    if !w.fits(n, weight, scratch.len(), &sink) {
        return false;
    }
    w.run(simd, n, weight, scratch, &mut sink);
    true
}

/// `dx` (as `how` says) from the output gradient `dy: [n, c_out, h, w]` as it is, with
/// `scratch` as in [`winograd_forward`]; `false` (nothing written) on the same conditions.
#[allow(clippy::too_many_arguments)]
pub(in super::super) fn winograd_input_grad_dy<T: Float>(
    g: &Conv2dGeom,
    dy: &[T],
    weight: &[T],
    n: usize,
    x: &[T],
    scratch: &mut [T],
    dx: &mut [T],
    how: Dx,
) -> bool {
    input_grad(g, (dy, Gradient::Plain), weight, n, x, scratch, dx, how)
}

/// `dx` (as `how` says) from the widened output gradient `dyw: [c_out, ld_dy]`
/// (`shifted.rs`'s `dYw`, its margin included), with `scratch` as in
/// [`winograd_forward`]; `false` (nothing written) on the same conditions. The shifted
/// kernels read `dy` itself ([`winograd_input_grad_dy`]); this stays as the reference the
/// tests hold that one to, bit for bit.
#[cfg(test)]
#[allow(clippy::too_many_arguments)]
pub(in super::super) fn winograd_input_grad<T: Float>(
    g: &Conv2dGeom,
    dyw: &[T],
    ld_dy: usize,
    weight: &[T],
    n: usize,
    x: &[T],
    scratch: &mut [T],
    dx: &mut [T],
    how: Dx,
) -> bool {
    let source = (dyw, Gradient::Widened { ld: ld_dy });
    input_grad(g, source, weight, n, x, scratch, dx, how)
}

/// How the input gradient's source holds the output gradient.
#[derive(Clone, Copy)]
enum Gradient {
    /// `dy: [n, c_out, h, w]` as it is.
    Plain,
    /// `shifted.rs`'s widened `dYw: [c_out, ld]`.
    #[cfg_attr(not(test), allow(dead_code))]
    Widened { ld: usize },
}

/// [`winograd_input_grad_dy`] and [`winograd_input_grad`], from `src` held as the
/// [`Gradient`] says.
#[allow(clippy::too_many_arguments)]
fn input_grad<T: Float>(
    g: &Conv2dGeom,
    (src, held): (&[T], Gradient),
    weight: &[T],
    n: usize,
    x: &[T],
    scratch: &mut [T],
    dx: &mut [T],
    how: Dx,
) -> bool {
    if !applies(g) {
        return false;
    }
    let (Some(simd), Some(src), Some(weight), Some(x), Some(scratch), Some(dx)) = (
        V4::try_new(),
        as_f32(src),
        as_f32(weight),
        as_f32(x),
        as_f32_mut(scratch),
        as_f32_mut(dx),
    ) else {
        return false;
    };
    let (hw, pw) = (g.h * g.w, g.padded_w());
    let (ld, plane, pw, first, plain) = match held {
        Gradient::Plain => (hw, g.c_out * hw, g.w, 0, true),
        Gradient::Widened { ld } => (ld, g.padded_plane(), pw, pw + 1, false),
    };
    let w = Winograd {
        src,
        ld,
        c_src: g.c_out,
        c_dst: g.c_in,
        rows: g.h,
        cols: g.w,
        plane,
        pw,
        first,
        flip: true,
        plain,
    };
    let mut sink = Sink::Input { dx, x, how };
    if !w.fits(n, weight, scratch.len(), &sink) {
        return false;
    }
    w.run(simd, n, weight, scratch, &mut sink);
    true
}

/// One Winograd convolution: outputs `[n, c_dst, rows, cols]` from `src: [c_src, ld]`, image
/// `k`'s plane at `k·plane`, tiles read from `first` (the module's doc); the kernel is
/// `weight[d, s]`, or `weight[s, d]` rotated by 180° when `flip`. When `plain`, `src` is
/// `[n, c_src, rows, cols]` with no zeros around the planes (`ld = rows·cols`, `plane =
/// c_src·ld`, `pw = cols`, `first = 0`), and tile `(ti, tj)` reads from row `2ti - 1` and
/// column `2tj - 1`, its loads masked to the plane.
struct Winograd<'a> {
    src: &'a [f32],
    ld: usize,
    c_src: usize,
    c_dst: usize,
    rows: usize,
    cols: usize,
    plane: usize,
    pw: usize,
    first: usize,
    flip: bool,
    plain: bool,
}

/// Up to [`SEGMENT`] tiles `tj0..tj0 + count` of tile row `ti` of image `k`.
#[derive(Clone, Copy)]
struct Segment {
    k: usize,
    ti: usize,
    tj0: usize,
    count: usize,
}

impl Winograd<'_> {
    /// Segments of one row of tiles.
    fn segments_per_row(&self) -> usize {
        (self.cols / 2).div_ceil(SEGMENT)
    }

    /// Segment `id` of the batch, in the order image, row of tiles, columns.
    fn segment(&self, id: usize) -> Segment {
        let per_row = self.segments_per_row();
        let per_image = self.rows / 2 * per_row;
        let (k, e) = (id / per_image, id % per_image);
        let (ti, j) = (e / per_row, e % per_row);
        let tj0 = j * SEGMENT;
        Segment {
            k,
            ti,
            tj0,
            count: (self.cols / 2 - tj0).min(SEGMENT),
        }
    }

    /// Lengths of the transformed weight, a block's `V` and a block's `M`.
    fn scratch_lens(&self) -> Option<[usize; 3]> {
        let u = POSITIONS.checked_mul(self.c_src)?.checked_mul(self.c_dst)?;
        let v = POSITIONS.checked_mul(Self::stride(self.c_src)?)?;
        let m = POSITIONS.checked_mul(Self::stride(self.c_dst)?)?;
        Some([u, v, m])
    }

    /// Elements of one position's part of `V` (`channels` = `c_src`) or `M` (`c_dst`):
    /// a block's tiles per channel and [`SKEW`].
    fn stride(channels: usize) -> Option<usize> {
        channels.checked_mul(BLOCK)?.checked_add(SKEW)
    }

    /// Whether every element the loops reach lies inside the buffers, for `n` images.
    fn fits(&self, n: usize, weight: &[f32], scratch: usize, sink: &Sink) -> bool {
        let reach = || -> Option<bool> {
            let inside = if self.plain {
                // whole planes, and no load outside one
                let hw = self.rows.checked_mul(self.cols)?;
                self.ld == hw
                    && self.plane == self.c_src.checked_mul(hw)?
                    && self.pw == self.cols
                    && self.first == 0
                    && n.checked_mul(self.plane)? <= self.src.len()
            } else {
                self.padded_fits(n)?
            };
            let taps = self.c_dst.checked_mul(self.c_src)?.checked_mul(9)?;
            let out = n
                .checked_mul(self.c_dst)?
                .checked_mul(self.rows)?
                .checked_mul(self.cols)?;
            let sink_fits = sink.fits(out, self.c_dst);
            let [u, v, m] = self.scratch_lens()?;
            let need = u.checked_add(v)?.checked_add(m)?;
            Some(inside && weight.len() == taps && sink_fits && need <= scratch)
        };
        n > 0 && reach() == Some(true)
    }

    /// Whether the padded planes hold every element the loops reach, for `n > 0` images.
    fn padded_fits(&self, n: usize) -> Option<bool> {
        // the last tile of the last image reads up to row `rows + 1` and column `cols + 1`
        // from `first` (its even lanes only)
        let last_src = (self.c_src - 1)
            .checked_mul(self.ld)?
            .checked_add((n - 1).checked_mul(self.plane)?)?
            .checked_add(self.first)?
            .checked_add((self.rows + 1).checked_mul(self.pw)?)?
            .checked_add(self.cols + 1)?;
        // a padded row holds its columns and the padding: `pw = cols + 1`
        Some(
            last_src < self.src.len()
                && self.pw == self.cols + 1
                && self.plane >= (self.rows + 1) * self.pw,
        )
    }

    /// The whole convolution into `sink` (after [`Winograd::fits`]).
    fn run(&self, simd: V4, n: usize, weight: &[f32], scratch: &mut [f32], sink: &mut Sink) {
        struct Op<'a, 'b, 'c> {
            simd: V4,
            w: &'a Winograd<'b>,
            n: usize,
            weight: &'a [f32],
            scratch: &'a mut [f32],
            sink: &'a mut Sink<'c>,
        }
        impl pulp::WithSimd for Op<'_, '_, '_> {
            type Output = ();
            #[inline(always)]
            fn with_simd<S: Simd>(self, _: S) {
                let Self {
                    simd,
                    w,
                    n,
                    weight,
                    scratch,
                    sink,
                } = self;
                let Some([lu, lv, lm]) = w.scratch_lens() else {
                    return;
                };
                let (u, rest) = scratch.split_at_mut(lu);
                let (v, rest) = rest.split_at_mut(lv);
                let m = &mut rest[..lm];
                w.transform_weight(weight, u);
                let segments = n * (w.rows / 2) * w.segments_per_row();
                let mut first = 0;
                while first < segments {
                    // as many whole segments as the block holds
                    let (mut end, mut tiles) = (first, 0);
                    while end < segments && tiles + w.segment(end).count <= BLOCK {
                        tiles += w.segment(end).count;
                        end += 1;
                    }
                    let mut t = 0;
                    for id in (first..end).step_by(2) {
                        let pair = w.pair(id, end);
                        if w.plain {
                            w.input_tiles::<true>(simd, pair, t, v);
                        } else {
                            w.input_tiles::<false>(simd, pair, t, v);
                        }
                        t += pair.0.count + pair.1.count;
                    }
                    let vectors = tiles.div_ceil(L);
                    w.clear_tail(v, tiles..vectors * L);
                    w.products(simd, u, v, m, vectors);
                    let mut t = 0;
                    for id in (first..end).step_by(2) {
                        let pair = w.pair(id, end);
                        w.output_tiles(simd, pair, t, m, sink);
                        t += pair.0.count + pair.1.count;
                    }
                    first = end;
                }
            }
        }
        Simd::vectorize(
            simd,
            Op {
                simd,
                w: self,
                n,
                weight,
                scratch,
                sink,
            },
        );
    }

    /// `u[ξ][s][d] = (G g_{d,s} Gᵀ)_ξ`, `ξ = 4α + β`, computed in `f64` and rounded once.
    fn transform_weight(&self, weight: &[f32], u: &mut [f32]) {
        let (cs, cd) = (self.c_src, self.c_dst);
        for d in 0..cd {
            for s in 0..cs {
                let g: [[f64; 3]; 3] = core::array::from_fn(|a| {
                    core::array::from_fn(|b| {
                        let at = if self.flip {
                            (s * cd + d) * 9 + (2 - a) * 3 + 2 - b
                        } else {
                            (d * cs + s) * 9 + a * 3 + b
                        };
                        f64::from(weight[at])
                    })
                });
                // G·g (4 × 3), then (G·g)·Gᵀ (4 × 4): the rows of G applied to columns
                let by_g = |x: [f64; 3]| {
                    [
                        x[0],
                        0.5 * (x[0] + x[1] + x[2]),
                        0.5 * (x[0] - x[1] + x[2]),
                        x[2],
                    ]
                };
                let cols: [[f64; 4]; 3] =
                    core::array::from_fn(|b| by_g([g[0][b], g[1][b], g[2][b]]));
                for alpha in 0..4 {
                    let row = by_g([cols[0][alpha], cols[1][alpha], cols[2][alpha]]);
                    for (beta, &value) in row.iter().enumerate() {
                        u[((alpha * 4 + beta) * cs + s) * cd + d] = value as f32;
                    }
                }
            }
        }
    }

    /// Segments `id` and `id + 1`, or `id` and an empty one when `id + 1` is `end`: the
    /// transforms take two at a time, whose tiles (up to 16) fill one vector.
    fn pair(&self, id: usize, end: usize) -> (Segment, Segment) {
        let a = self.segment(id);
        let b = if id + 1 < end {
            self.segment(id + 1)
        } else {
            Segment { count: 0, ..a }
        };
        (a, b)
    }

    /// The input transform of segments `a` and `b` into `v[ξ][s][t..t + a.count +
    /// b.count]`: per source channel, the 4 × 4 blocks of each segment's tiles as 16
    /// vectors of its columns (tile `tj0 + l` in lane `2l`), the even lanes of both
    /// gathered into one vector (`a`'s tiles, then `b`'s), and `Bᵀ·D·B` in lanes; `PLAIN`
    /// is `self.plain`.
    #[inline(always)]
    fn input_tiles<const PLAIN: bool>(
        &self,
        simd: V4,
        (a, b): (Segment, Segment),
        t: usize,
        v: &mut [f32],
    ) {
        let f = simd.avx512f;
        let (mask_a, mask_b) = (self.masks::<PLAIN>(a), self.masks::<PLAIN>(b));
        let lanes = first_lanes(a.count + b.count);
        // lane `l` takes lane `2l` of `a`'s vector, or lane `2(l - a.count)` of `b`'s (the
        // second operand's lanes are numbered from 16)
        let iota = f._mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
        let twice = f._mm512_add_epi32(iota, iota);
        let of_b = f._mm512_cmpge_epi32_mask(iota, f._mm512_set1_epi32(a.count as i32));
        let to_b = f._mm512_set1_epi32(16 - 2 * a.count as i32);
        let gather = f._mm512_mask_add_epi32(twice, of_b, twice, to_b);
        let (pw, stride) = (self.pw, self.c_src * BLOCK + SKEW);
        let base =
            |seg: Segment| seg.k * self.plane + self.first + 2 * seg.ti * self.pw + 2 * seg.tj0;
        let (base_a, base_b) = (base(a), base(b));
        // a plain plane has no zeros before it: its block starts a row and a column back
        let back = if PLAIN { pw + 1 } else { 0 };
        let (src, out) = (self.src.as_ptr(), v.as_mut_ptr());
        for s in 0..self.c_src {
            let (at_a, at_b) = (
                src.wrapping_add(s * self.ld + base_a).wrapping_sub(back),
                src.wrapping_add(s * self.ld + base_b).wrapping_sub(back),
            );
            // SAFETY: AVX-512F is present (under `V4`); the lanes of the masks (even lanes
            // `2l < 2·count`) of each segment read, from padded planes, rows `2ti + a ≤
            // rows + 1` and columns `2(tj0 + l) + b ≤ cols + 1` of its image's plane from
            // `first`; from plain ones, rows `0 ≤ 2ti + a - 1 < rows` and columns `0 ≤
            // 2(tj0 + l) + b - 1 < cols` of its plane (`masks`); inside `src` by `fits`
            // either way. The other lanes are not accessed (an empty `b` reads nothing)
            let d: [[__m512; 4]; 4] = if PLAIN {
                // plain loops, not closures: a closure the compiler leaves out of line
                // calls the intrinsics out of line too, outside AVX-512's target feature
                let mut d = [[f._mm512_setzero_ps(); 4]; 4];
                for (r, row) in d.iter_mut().enumerate() {
                    for (c, x) in row.iter_mut().enumerate() {
                        let e = r * pw + c;
                        let (xa, xb) = unsafe {
                            (
                                load(mask_a[r][c], at_a.wrapping_add(e)),
                                load(mask_b[r][c], at_b.wrapping_add(e)),
                            )
                        };
                        *x = f._mm512_permutex2var_ps(xa, gather, xb);
                    }
                }
                d
            } else {
                // padded planes: one mask for every load
                let (even_a, even_b) = (mask_a[0][0], mask_b[0][0]);
                core::array::from_fn(|r| {
                    core::array::from_fn(|c| {
                        let e = r * pw + c;
                        let (xa, xb) =
                            unsafe { (load(even_a, at_a.add(e)), load(even_b, at_b.add(e))) };
                        f._mm512_permutex2var_ps(xa, gather, xb)
                    })
                })
            };
            let rows: [[__m512; 4]; 4] = core::array::from_fn(|r| transform_b(simd, d[r]));
            let cols: [[__m512; 4]; 4] = core::array::from_fn(|beta| {
                transform_b(simd, core::array::from_fn(|r| rows[r][beta]))
            });
            for (beta, col) in cols.iter().enumerate() {
                for (alpha, &c) in col.iter().enumerate() {
                    let e = (alpha * 4 + beta) * stride + s * BLOCK + t;
                    // SAFETY: `t + a.count + b.count ≤ BLOCK`, position `< 16` and `s <
                    // c_src`: inside `v` (16 strides long)
                    unsafe { store(lanes, out.add(e), c) };
                }
            }
        }
    }

    /// The lanes of each load `[r][c]` of segment `seg`'s blocks (row `r`, columns from
    /// `c`): the even lanes of its tiles (tile `tj0 + l` in lane `2l`), less, when `PLAIN`,
    /// those of the rows and columns outside the plane, which stand for its zero padding.
    #[inline(always)]
    fn masks<const PLAIN: bool>(&self, seg: Segment) -> [[u16; 4]; 4] {
        let even = first_lanes(2 * seg.count) & 0x5555;
        if !PLAIN || seg.count == 0 {
            return [[even; 4]; 4];
        }
        // lane `2l` of load `[r][c]` reads row `2ti + r - 1` and column `2(tj0 + l) + c -
        // 1`: column -1 only in lane 0 of `c = 0` at the row's start, column `cols` only in
        // the last tile's lane of `c = 3` at its end
        let mut cols = [even; 4];
        if seg.tj0 == 0 {
            cols[0] &= !1;
        }
        if 2 * (seg.tj0 + seg.count) == self.cols {
            cols[3] &= !(1 << (2 * (seg.count - 1)));
        }
        core::array::from_fn(|r| {
            // the row read, plus one
            let row = 2 * seg.ti + r;
            if (1..=self.rows).contains(&row) {
                cols
            } else {
                [0; 4]
            }
        })
    }

    /// Zeros in `v`'s tiles `tail` (the last vector's lanes past the block's tiles), so
    /// that the products read no stale values.
    fn clear_tail(&self, v: &mut [f32], tail: core::ops::Range<usize>) {
        let stride = self.c_src * BLOCK + SKEW;
        for position in v.chunks_exact_mut(stride) {
            for line in position.chunks_exact_mut(BLOCK) {
                line[tail.clone()].fill(0.0);
            }
        }
    }

    /// `m[ξ][d][t] = Σ_s u[ξ][s][d]·v[ξ][s][t]` for the block's first `vectors`·16 tiles.
    #[inline(always)]
    fn products(&self, simd: V4, u: &[f32], v: &[f32], m: &mut [f32], vectors: usize) {
        let (cs, cd) = (self.c_src, self.c_dst);
        let (sv, sm) = (cs * BLOCK + SKEW, cd * BLOCK + SKEW);
        for xi in 0..POSITIONS {
            let u = &u[xi * cs * cd..][..cs * cd];
            let v = &v[xi * sv..][..cs * BLOCK];
            let m = &mut m[xi * sm..][..cd * BLOCK];
            let mut d0 = 0;
            while d0 < cd {
                let width = match cd - d0 {
                    left if left >= CHANNELS => CHANNELS,
                    left if left >= 4 => 4,
                    _ => 1,
                };
                let mut t0 = 0;
                while t0 < vectors {
                    let r = (vectors - t0).min(VECTORS);
                    let at = (d0, t0 * L);
                    match (width, r) {
                        (CHANNELS, VECTORS) => self.product::<CHANNELS, VECTORS>(simd, u, v, m, at),
                        (CHANNELS, 2) => self.product::<CHANNELS, 2>(simd, u, v, m, at),
                        (CHANNELS, _) => self.product::<CHANNELS, 1>(simd, u, v, m, at),
                        (4, VECTORS) => self.product::<4, VECTORS>(simd, u, v, m, at),
                        (4, 2) => self.product::<4, 2>(simd, u, v, m, at),
                        (4, _) => self.product::<4, 1>(simd, u, v, m, at),
                        (_, VECTORS) => self.product::<1, VECTORS>(simd, u, v, m, at),
                        (_, 2) => self.product::<1, 2>(simd, u, v, m, at),
                        _ => self.product::<1, 1>(simd, u, v, m, at),
                    }
                    t0 += r;
                }
                d0 += width;
            }
        }
    }

    /// Channels `d0..d0 + C` by tiles `t0..t0 + 16·R` of one position's product.
    #[inline(always)]
    fn product<const C: usize, const R: usize>(
        &self,
        simd: V4,
        u: &[f32],
        v: &[f32],
        m: &mut [f32],
        (d0, t0): (usize, usize),
    ) {
        let f = simd.avx512f;
        let mut acc = [[f._mm512_setzero_ps(); R]; C];
        let cd = self.c_dst;
        let mut up = u.as_ptr().wrapping_add(d0);
        let mut vp = v.as_ptr().wrapping_add(t0);
        for _ in 0..self.c_src {
            // SAFETY: AVX-512F is present; tiles `t0 + 16r + l < 16·vectors ≤ BLOCK` of
            // source channel `s < c_src`: inside `v` (`c_src·BLOCK`)
            let x: [__m512; R] = core::array::from_fn(|r| unsafe { load(0xffff, vp.add(r * L)) });
            for (c, acc) in acc.iter_mut().enumerate() {
                // SAFETY: channel `d0 + c < c_dst` of source channel `s`: inside `u`
                let w = f._mm512_set1_ps(unsafe { *up.add(c) });
                for (a, &x) in acc.iter_mut().zip(&x) {
                    *a = f._mm512_fmadd_ps(w, x, *a);
                }
            }
            up = up.wrapping_add(cd);
            vp = vp.wrapping_add(BLOCK);
        }
        let out = m.as_mut_ptr().wrapping_add(d0 * BLOCK + t0);
        for (c, acc) in acc.iter().enumerate() {
            for (r, &a) in acc.iter().enumerate() {
                // SAFETY: channel `d0 + c < c_dst`, tiles below `BLOCK`: inside `m`
                unsafe { store(0xffff, out.add(c * BLOCK + r * L), a) };
            }
        }
    }

    /// The output transform of segments `a` and `b` from `m[ξ][d][t..t + a.count +
    /// b.count]`: per channel, `Aᵀ·M·A` with the tiles in the lanes, its two columns
    /// interleaved into each segment's two output rows of `2·count` columns, written as
    /// `sink` says.
    #[inline(always)]
    fn output_tiles(
        &self,
        simd: V4,
        (a, b): (Segment, Segment),
        t: usize,
        m: &[f32],
        sink: &mut Sink,
    ) {
        let f = simd.avx512f;
        let lanes = first_lanes(a.count + b.count);
        // column pairs of tiles `0..8` of the two columns, and of tiles `a.count..`
        let interleave_a =
            f._mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
        let interleave_b = f._mm512_add_epi32(interleave_a, f._mm512_set1_epi32(a.count as i32));
        let mp = m.as_ptr().wrapping_add(t);
        let (cd, stride) = (self.c_dst, self.c_dst * BLOCK + SKEW);
        for d in 0..cd {
            // SAFETY: AVX-512F is present; tiles `t..t + a.count + b.count` (`≤ BLOCK`) of
            // channel `d < c_dst` at position `ξ < 16`: inside `m`
            let x: [[__m512; 4]; 4] = core::array::from_fn(|alpha| {
                core::array::from_fn(|beta| unsafe {
                    load(lanes, mp.add((alpha * 4 + beta) * stride + d * BLOCK))
                })
            });
            let cols: [[__m512; 2]; 4] = core::array::from_fn(|beta| {
                transform_a(simd, [x[0][beta], x[1][beta], x[2][beta], x[3][beta]])
            });
            let out: [[__m512; 2]; 2] = core::array::from_fn(|i| {
                transform_a(simd, core::array::from_fn(|beta| cols[beta][i]))
            });
            for (i, [left, right]) in out.into_iter().enumerate() {
                for (seg, interleave) in [(a, interleave_a), (b, interleave_b)] {
                    if seg.count == 0 {
                        continue;
                    }
                    let row = f._mm512_permutex2var_ps(left, interleave, right);
                    let at =
                        ((seg.k * cd + d) * self.rows + 2 * seg.ti + i) * self.cols + 2 * seg.tj0;
                    // SAFETY: AVX-512F is present (under `V4`); the 2·count lanes from `at`
                    // are columns 2·tj0.. below `cols` of output row 2·ti + i < rows of
                    // channel d < c_dst of image k < n, inside the sink (`fits`)
                    unsafe { sink.put(simd, d, at, first_lanes(2 * seg.count), row) }
                }
            }
        }
    }
}

/// `Bᵀ·x` for one column `x` of a 4 × 4 block (and `x·B` for a row): `[x0 - x2, x1 + x2,
/// x2 - x1, x1 - x3]`.
#[inline(always)]
pub(super) fn transform_b(simd: V4, [x0, x1, x2, x3]: [__m512; 4]) -> [__m512; 4] {
    let f = simd.avx512f;
    [
        f._mm512_sub_ps(x0, x2),
        f._mm512_add_ps(x1, x2),
        f._mm512_sub_ps(x2, x1),
        f._mm512_sub_ps(x1, x3),
    ]
}

/// `Aᵀ·x` for one column `x` of a 4 × 4 block (and `x·A` for a row): `[x0 + x1 + x2, x1 -
/// x2 - x3]`.
#[inline(always)]
fn transform_a(simd: V4, [x0, x1, x2, x3]: [__m512; 4]) -> [__m512; 2] {
    let f = simd.avx512f;
    [
        f._mm512_add_ps(f._mm512_add_ps(x0, x1), x2),
        f._mm512_sub_ps(f._mm512_sub_ps(x1, x2), x3),
    ]
}

#[cfg(test)]
mod tests {
    use super::super::super::shifted::{backward_on, forward_on};
    use super::super::super::{Conv2dCols, Conv2dGeom, Dx, Path};
    use super::{winograd_forward, winograd_input_grad, winograd_input_grad_dy, BLOCK, SKEW};
    use crate::ops::{conv2d, conv2d_backward, conv2d_backward_overwrite};
    use crate::testing::random_vec;

    /// The shifted kernels' workspace for `n` images, as the callers cut it.
    fn workspace(g: &Conv2dGeom, n: usize) -> Vec<f32> {
        vec![f32::NAN; n * g.shifted_per_image() + g.shifted_fixed()]
    }

    fn no_avx512() -> bool {
        if pulp::x86::V4::try_new().is_none() {
            eprintln!("no AVX-512: Winograd's loops do not run here");
            return true;
        }
        false
    }

    #[test]
    fn literal_one_tile() {
        if no_avx512() {
            return;
        }
        // one channel, one 2x2 image x = [[1, 2], [3, 4]], weight w = [[1, 2, 3], [4, 5, 6],
        // [7, 8, 9]], padding 1: one tile, whose 4x4 block is x with a ring of zeros.
        // y[i, j] = Σ w[u, v]·x[i + u - 1, j + v - 1]:
        //   y[0, 0] = 5·1 + 6·2 + 8·3 + 9·4 = 77   y[0, 1] = 4·1 + 5·2 + 7·3 + 8·4 = 67
        //   y[1, 0] = 2·1 + 3·2 + 5·3 + 6·4 = 47   y[1, 1] = 1·1 + 2·2 + 4·3 + 5·4 = 37
        // Winograd's way, e.g. position (1, 1): Bᵀ·D·B there is d11 + d12 + d21 + d22 = 10,
        // (G·w·Gᵀ) there is ¼·Σw = 11.25; every value is a multiple of ¼, exact in f32,
        // so the result is exact. With the bias 0.5:
        let g = Conv2dGeom::new(1, 2, 2, 1, 3, 3, 1, 1).unwrap();
        let (pw, plane) = (g.padded_w(), g.padded_plane());
        assert_eq!((pw, plane), (3, 9));
        // P: the top padding row, rows [0, 1, 2] and [0, 3, 4], then zeros (the tail)
        let mut p = vec![0.0f32; 9 + 3 * pw + 3];
        p[3..9].copy_from_slice(&[0.0, 1.0, 2.0, 0.0, 3.0, 4.0]);
        let w: Vec<f32> = (1..=9).map(|v| v as f32).collect();
        let len = 16 + 32 * (BLOCK + SKEW);
        let mut scratch = vec![f32::NAN; len];
        let mut y = [f32::NAN; 4];
        let ld = p.len();
        assert!(winograd_forward(
            &g,
            &p,
            ld,
            &w,
            Some(&[0.5f32][..]),
            1,
            &mut scratch,
            &mut y
        ));
        assert_eq!(y, [77.5, 67.5, 47.5, 37.5]);
        // the input gradient of dy = [[1, 2], [3, 4]]: dx[r, s] = Σ w[u, v]·dy[r + 1 - u,
        // s + 1 - v] (the kernel rotated by 180°):
        //   dx[0, 0] = 5·1 + 4·2 + 2·3 + 1·4 = 23   dx[0, 1] = 6·1 + 5·2 + 3·3 + 2·4 = 33
        //   dx[1, 0] = 8·1 + 7·2 + 5·3 + 4·4 = 53   dx[1, 1] = 9·1 + 8·2 + 6·3 + 5·4 = 63
        // dYw: a margin of 2·pw + 2 = 8 zeros, then rows [1, 2, 0], [3, 4, 0], [0, 0, 0]
        let mut dyw = vec![0.0f32; 8 + 9];
        dyw[8..14].copy_from_slice(&[1.0, 2.0, 0.0, 3.0, 4.0, 0.0]);
        let x = [1.0f32, -1.0, 0.0, 2.0];
        let ld = dyw.len();
        let mut input_grad = |dx: &mut [f32; 4], how| {
            assert!(winograd_input_grad(
                &g,
                &dyw,
                ld,
                &w,
                1,
                &x,
                &mut scratch,
                dx,
                how
            ));
        };
        let mut dx = [f32::NAN; 4];
        input_grad(&mut dx, Dx::Overwrite);
        assert_eq!(dx, [23.0, 33.0, 53.0, 63.0]);
        let mut dx = [1.0f32; 4];
        input_grad(&mut dx, Dx::Add);
        assert_eq!(dx, [24.0, 34.0, 54.0, 64.0]);
        // through relu: kept where x > 0 only
        input_grad(&mut dx, Dx::ThroughRelu);
        assert_eq!(dx, [23.0, 0.0, 0.0, 63.0]);
        // scratch one element short: declined, nothing written
        let mut y = [f32::NAN; 4];
        let ld = p.len();
        let short = &mut scratch[..len - 1];
        assert!(!winograd_forward(&g, &p, ld, &w, None, 1, short, &mut y));
        assert!(y.iter().all(|v| v.is_nan()));
    }

    /// Exact `f64` values of a convolution of `src: [n, c_src, rows, cols]` (zero padding 1)
    /// by `kernel(d, s, u, v)`, outputs `[n, c_dst, rows, cols]`, with two rounding scales:
    /// the direct sum's `Σ |kernel·src|`, and Winograd's, the same transforms and products
    /// on absolute values, `|Aᵀ|·[Σ_s (|G|·|g|·|Gᵀ|) ⊙ (|Bᵀ|·|D|·|B|)]·|A|`.
    #[allow(clippy::type_complexity)]
    fn reference(
        (n, c_src, c_dst, rows, cols): (usize, usize, usize, usize, usize),
        src: &[f32],
        kernel: impl Fn(usize, usize, usize, usize) -> f32,
    ) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
        let len = n * c_dst * rows * cols;
        let (mut value, mut direct, mut wino) = (vec![0.0; len], vec![0.0; len], vec![0.0; len]);
        let at = |k: usize, s: usize, r: isize, c: isize| -> f64 {
            if r < 0 || c < 0 || r >= rows as isize || c >= cols as isize {
                0.0
            } else {
                f64::from(src[((k * c_src + s) * rows + r as usize) * cols + c as usize])
            }
        };
        let bt = [
            [1.0, 0.0, 1.0, 0.0],
            [0.0, 1.0, 1.0, 0.0],
            [0.0, 1.0, 1.0, 0.0],
            [0.0, 1.0, 0.0, 1.0],
        ];
        let gm = [
            [1.0, 0.0, 0.0],
            [0.5, 0.5, 0.5],
            [0.5, 0.5, 0.5],
            [0.0, 0.0, 1.0],
        ];
        let at_m = [[1.0, 1.0, 1.0, 0.0], [0.0, 1.0, 1.0, 1.0]];
        for k in 0..n {
            for d in 0..c_dst {
                for ti in 0..rows / 2 {
                    for tj in 0..cols / 2 {
                        let mut sum = [[0.0f64; 4]; 4];
                        for s in 0..c_src {
                            let g: [[f64; 3]; 3] = core::array::from_fn(|u| {
                                core::array::from_fn(|v| f64::from(kernel(d, s, u, v)).abs())
                            });
                            let dd: [[f64; 4]; 4] = core::array::from_fn(|a| {
                                core::array::from_fn(|b| {
                                    at(k, s, (2 * ti + a) as isize - 1, (2 * tj + b) as isize - 1)
                                        .abs()
                                })
                            });
                            for al in 0..4 {
                                for be in 0..4 {
                                    let mut u = 0.0;
                                    let mut v = 0.0;
                                    for a in 0..3 {
                                        for b in 0..3 {
                                            u += gm[al][a] * g[a][b] * gm[be][b];
                                        }
                                    }
                                    for a in 0..4 {
                                        for b in 0..4 {
                                            v += bt[al][a] * dd[a][b] * bt[be][b];
                                        }
                                    }
                                    sum[al][be] += u * v;
                                }
                            }
                            for i in 0..2 {
                                for j in 0..2 {
                                    let (r, c) = (2 * ti + i, 2 * tj + j);
                                    let e = ((k * c_dst + d) * rows + r) * cols + c;
                                    for u in 0..3 {
                                        for v in 0..3 {
                                            let x = at(
                                                k,
                                                s,
                                                (r + u) as isize - 1,
                                                (c + v) as isize - 1,
                                            );
                                            let t = f64::from(kernel(d, s, u, v)) * x;
                                            value[e] += t;
                                            direct[e] += t.abs();
                                        }
                                    }
                                }
                            }
                        }
                        for i in 0..2 {
                            for j in 0..2 {
                                let e = ((k * c_dst + d) * rows + 2 * ti + i) * cols + 2 * tj + j;
                                for al in 0..4 {
                                    for be in 0..4 {
                                        wino[e] += at_m[i][al] * sum[al][be] * at_m[j][be];
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        (value, direct, wino)
    }

    /// `|got - value| ≤ depth·ε·scale` (`ε` of f32, plus the smallest normal): the bound of
    /// a computation whose every path of roundings is at most `depth` long.
    fn assert_within(what: &str, got: &[f32], value: &[f64], scale: &[f64], depth: usize) {
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

    /// Winograd's forward pass and input gradient (every [`Dx`]) on `g` against exact `f64`
    /// loops and against the direct loops, through the shifted kernels as the public
    /// functions call them.
    ///
    /// The bound: Winograd's result of one output rounds the weight's transform once
    /// (computed in `f64`), the input's twice (two levels of additions), the products and
    /// their sum over `c_src` channels in a chain of `c_src` fused multiply-adds, the output
    /// transform four times (two levels of two additions) and the bias once: at most
    /// `c_src + 9` roundings on any path, so the error is at most `(c_src + 9)·ε` times the
    /// same computation on absolute values (Winograd's scale of [`reference`], plus `|b|`).
    /// The direct loops' is `(9·c_src + 1)·ε` times the direct scale; the two paths differ
    /// by at most the sum.
    fn equals_reference(g: &Conv2dGeom, n: usize, seed: u64) {
        let case = format!("{g:?}, n = {n}");
        let h: Vec<f32> = random_vec(seed, n * g.input_len(), -1.0, 1.0);
        let x: Vec<f32> = h.iter().map(|&v| v.max(0.0)).collect();
        let w: Vec<f32> = random_vec(seed + 1, g.weight_len(), -1.0, 1.0);
        let b: Vec<f32> = random_vec(seed + 2, g.c_out, -1.0, 1.0);
        let dy: Vec<f32> = random_vec(seed + 3, n * g.output_len(), -1.0, 1.0);
        let (hw, ci, co) = (g.h * g.w, g.c_in, g.c_out);
        let (vy, dir_y, win_y) = reference((n, ci, co, g.h, g.w), &x, |d, s, u, v| {
            w[((d * ci + s) * 3 + u) * 3 + v]
        });
        let (vdx, dir_dx, win_dx) = reference((n, co, ci, g.h, g.w), &dy, |d, s, u, v| {
            w[((s * ci + d) * 3 + 2 - u) * 3 + 2 - v]
        });
        let with_bias = |v: &[f64], abs: bool| -> Vec<f64> {
            v.iter()
                .enumerate()
                .map(|(e, &v)| {
                    let bv = f64::from(b[e / hw % co]);
                    if abs {
                        v + bv.abs()
                    } else {
                        v + bv
                    }
                })
                .collect()
        };
        let (vy_b, dir_y_b, win_y_b) = (
            with_bias(&vy, false),
            with_bias(&dir_y, true),
            with_bias(&win_y, true),
        );
        let run = |path| {
            let mut ws = workspace(g, n);
            let mut y = vec![f32::NAN; n * g.output_len()];
            forward_on(path, g, &x, &w, Some(&b), n, &mut ws, &mut y);
            let mut y_nb = vec![f32::NAN; n * g.output_len()];
            forward_on(path, g, &x, &w, None, n, &mut ws, &mut y_nb);
            let args = (&x[..], &w[..], &dy[..], n);
            let cols = Conv2dCols::Recompute;
            let mut dx = vec![f32::NAN; x.len()];
            let grads = (Some(&mut dx[..]), None, None);
            backward_on(path, g, args, &mut ws, cols, grads, Dx::Overwrite);
            let mut dx_add = vec![1.0f32; x.len()];
            let grads = (Some(&mut dx_add[..]), None, None);
            backward_on(path, g, args, &mut ws, cols, grads, Dx::Add);
            let mut dx_relu = vec![f32::NAN; x.len()];
            let grads = (Some(&mut dx_relu[..]), None, None);
            backward_on(path, g, args, &mut ws, cols, grads, Dx::ThroughRelu);
            (y, y_nb, dx, dx_add, dx_relu)
        };
        let (y, y_nb, dx, dx_add, dx_relu) = run(Path::Direct);
        let (ly, ly_nb, ldx, ldx_add, _) = run(Path::Loops);
        let (dy_depth, dx_depth) = (ci + 9, co + 9);
        assert_within(&format!("y, {case}"), &y, &vy_b, &win_y_b, dy_depth);
        assert_within(
            &format!("y without bias, {case}"),
            &y_nb,
            &vy,
            &win_y,
            dy_depth,
        );
        assert_within(&format!("dx, {case}"), &dx, &vdx, &win_dx, dx_depth);
        let plus_one = |v: &[f64]| -> Vec<f64> { v.iter().map(|v| v + 1.0).collect() };
        let (vdx1, win_dx1) = (plus_one(&vdx), plus_one(&win_dx));
        assert_within(
            &format!("dx added, {case}"),
            &dx_add,
            &vdx1,
            &win_dx1,
            dx_depth + 1,
        );
        let relu: Vec<f32> = x
            .iter()
            .zip(&dx)
            .map(|(&x, &d)| if x > 0.0 { d } else { 0.0 })
            .collect();
        assert_eq!(dx_relu, relu, "dx through relu, {case}");
        // against the direct loops: the two bounds summed, each on its own scale
        let sum = |a: &[f64], da: usize, b: &[f64], db: usize| -> Vec<f64> {
            a.iter()
                .zip(b)
                .map(|(a, b)| a * da as f64 + b * db as f64)
                .collect()
        };
        let paths = [
            ("y", &y, &ly, sum(&win_y_b, dy_depth, &dir_y_b, 9 * ci + 1)),
            (
                "y without bias",
                &y_nb,
                &ly_nb,
                sum(&win_y, dy_depth, &dir_y, 9 * ci),
            ),
            ("dx", &dx, &ldx, sum(&win_dx, dx_depth, &dir_dx, 9 * co)),
            (
                "dx added",
                &dx_add,
                &ldx_add,
                sum(&win_dx1, dx_depth + 1, &plus_one(&dir_dx), 9 * co + 1),
            ),
        ];
        for (what, a, b, scale) in paths {
            let direct: Vec<f64> = b.iter().map(|&v| f64::from(v)).collect();
            assert_within(
                &format!("{what} against the loops, {case}"),
                a,
                &direct,
                &scale,
                1,
            );
        }
        // the comparisons would pass as well were Winograd's loops to decline: they run
        let mut ws = workspace(g, n);
        let (pw, plane) = (g.padded_w(), g.padded_plane());
        let ld_p = n * plane + 3 * pw + 3;
        let p = vec![0.0f32; g.c_in * ld_p];
        let mut y = vec![f32::NAN; n * g.output_len()];
        assert!(
            winograd_forward(g, &p, ld_p, &w, None, n, &mut ws, &mut y),
            "{case}"
        );
        assert!(y.iter().all(|&v| v == 0.0), "{case}");
    }

    #[test]
    fn winograd_equals_reference_and_direct_loops() {
        if no_avx512() {
            return;
        }
        let g = |c_in, h, w, c_out| Conv2dGeom::new(c_in, h, w, c_out, 3, 3, 1, 1).unwrap();
        let mut seed = 9000;
        for (geom, batches) in [
            // one channel, the smallest image; one tile per image
            (g(1, 2, 2, 1), &[1, 3][..]),
            // channel counts in groups of 8, 4 and 1 (13 = 8 + 4 + 1), both ways
            (g(3, 4, 6, 13), &[1, 2, 5][..]),
            (g(13, 6, 4, 3), &[2, 3][..]),
            // rows of 1 and 17 tiles (segments of 8, 8, 1), tall and flat
            (g(5, 12, 2, 9), &[3][..]),
            (g(4, 2, 34, 6), &[1, 2][..]),
            // mnist_cnn's conv2 (49 tiles an image: blocks cut across images) and its input
            // gradient's channels; an MNIST-sized image with two segments a row
            (g(16, 14, 14, 32), &[1, 3, 7][..]),
            (g(32, 14, 14, 16), &[2][..]),
            (g(8, 28, 28, 16), &[1][..]),
        ] {
            for &n in batches {
                equals_reference(&geom, n, seed);
                seed += 10;
            }
        }
    }

    #[test]
    fn other_geometries_take_the_direct_loops() {
        if no_avx512() {
            return;
        }
        // odd height or width, padding 0 or 2, stride 2, a 5x5 kernel: Winograd's loops
        // decline (nothing written), and the shifted kernels run the direct ones
        for g in [
            Conv2dGeom::new(8, 5, 6, 8, 3, 3, 1, 1).unwrap(),
            Conv2dGeom::new(8, 6, 7, 8, 3, 3, 1, 1).unwrap(),
            Conv2dGeom::new(8, 6, 6, 8, 3, 3, 1, 0).unwrap(),
            Conv2dGeom::new(8, 6, 6, 8, 3, 3, 1, 2).unwrap(),
            Conv2dGeom::new(8, 6, 6, 8, 3, 3, 2, 1).unwrap(),
            Conv2dGeom::new(8, 6, 6, 8, 5, 5, 1, 2).unwrap(),
        ] {
            let n = 2;
            let w = vec![1.0f32; g.weight_len()];
            let mut ws = workspace(&g, n);
            let p = vec![1.0f32; g.c_in * (n * g.padded_plane() + 5 * g.padded_w() + 5)];
            let mut y = vec![f32::NAN; n * g.output_len()];
            let ld = p.len() / g.c_in;
            assert!(!winograd_forward(&g, &p, ld, &w, None, n, &mut ws, &mut y));
            assert!(y.iter().all(|v| v.is_nan()), "{g:?}");
            let x = vec![1.0f32; n * g.input_len()];
            let mut dx = vec![f32::NAN; x.len()];
            let how = Dx::Overwrite;
            assert!(!winograd_input_grad(
                &g, &p, ld, &w, n, &x, &mut ws, &mut dx, how
            ));
            assert!(dx.iter().all(|v| v.is_nan()), "{g:?}");
        }
        // f64 declines too
        let g = Conv2dGeom::new(8, 6, 6, 8, 3, 3, 1, 1).unwrap();
        let (w, p) = (vec![1.0f64; g.weight_len()], vec![1.0f64; 8 * 200]);
        let (mut ws, mut y) = (vec![0.0f64; 100_000], vec![f64::NAN; g.output_len()]);
        assert!(!winograd_forward(&g, &p, 200, &w, None, 1, &mut ws, &mut y));
    }

    #[test]
    fn input_gradient_equals_central_differences() {
        if no_avx512() {
            return;
        }
        // L(x) = Σ r·conv2d(x, W) with fixed r: dL/dx is the backward pass's dx for dy = r,
        // through the public functions (8 input channels: a shifted geometry, Winograd's).
        // L is linear in x, so the central difference is exact but for the roundings of the
        // f32 outputs (summed in f64 here)
        let g = Conv2dGeom::new(8, 4, 6, 5, 3, 3, 1, 1).unwrap();
        let n = 2;
        let x: Vec<f32> = random_vec(41, n * g.input_len(), -1.0, 1.0);
        let w: Vec<f32> = random_vec(42, g.weight_len(), -1.0, 1.0);
        let r: Vec<f32> = random_vec(43, n * g.output_len(), -1.0, 1.0);
        let mut ws = vec![0.0f32; g.workspace_len(n)];
        let mut loss = |x: &[f32]| -> f64 {
            let mut y = vec![f32::NAN; r.len()];
            conv2d(&g, x, &w, None, n, &mut ws, &mut y).unwrap();
            y.iter()
                .zip(&r)
                .map(|(&y, &r)| f64::from(y) * f64::from(r))
                .sum()
        };
        let h = 0.5f32;
        let numeric: Vec<f64> = (0..x.len())
            .map(|e| {
                let (mut up, mut down) = (x.clone(), x.clone());
                (up[e], down[e]) = (x[e] + h, x[e] - h);
                (loss(&up) - loss(&down)) / (2.0 * f64::from(h))
            })
            .collect();
        let mut ws = vec![0.0f32; g.workspace_len(n)];
        let cols = Conv2dCols::Recompute;
        let mut dx = vec![f32::NAN; x.len()];
        conv2d_backward_overwrite(&g, &x, &w, &r, n, &mut ws, cols, Some(&mut dx), None, None)
            .unwrap();
        let mut dx_add = vec![0.25f32; x.len()];
        conv2d_backward(
            &g,
            &x,
            &w,
            &r,
            n,
            &mut ws,
            cols,
            Some(&mut dx_add),
            None,
            None,
        )
        .unwrap();
        assert!(dx.iter().any(|&d| d.abs() > 0.5));
        for (e, ((&d, &da), &num)) in dx.iter().zip(&dx_add).zip(&numeric).enumerate() {
            assert!(
                (f64::from(d) - num).abs() < 1e-3,
                "[{e}]: {d} against {num}"
            );
            assert!(
                (f64::from(da) - 0.25 - num).abs() < 1e-3,
                "[{e}]: {da} against {num}"
            );
        }
    }

    /// `dy: [n, c_out, h, w]` laid out as `shifted.rs`'s widened `dYw` (a margin of `2·pw +
    /// 2` zeros, then each image's rows with a zero junk column and zero rows below), with
    /// as many zeros after it again; and its row length.
    fn widened(g: &Conv2dGeom, dy: &[f32], n: usize) -> (Vec<f32>, usize) {
        let (pw, plane, hw) = (g.padded_w(), g.padded_plane(), g.h * g.w);
        let margin = 2 * pw + 2;
        let ld = 2 * margin + n * plane;
        let mut dyw = vec![0.0f32; g.c_out * ld];
        for o in 0..g.c_out {
            for k in 0..n {
                let src = &dy[(k * g.c_out + o) * hw..][..hw];
                for (i, row) in src.chunks_exact(g.w).enumerate() {
                    dyw[o * ld + margin + k * plane + i * pw..][..g.w].copy_from_slice(row);
                }
            }
        }
        (dyw, ld)
    }

    #[test]
    fn input_gradient_from_dy_equals_from_widened_bit_for_bit() {
        if no_avx512() {
            return;
        }
        // the same values reach the same sums in the same order: reading `dy` itself and
        // reading the widened copy agree to the bit, for every `Dx`
        let g = |c_in, h, w, c_out| Conv2dGeom::new(c_in, h, w, c_out, 3, 3, 1, 1).unwrap();
        let mut seed = 7000;
        for (geom, batches) in [
            // one tile an image: its block is all padding but the middle
            (g(1, 2, 2, 1), &[1, 3][..]),
            (g(3, 2, 2, 5), &[2][..]),
            // odd tile counts both ways (3 × 3, 1 × 3, 3 × 1, 5 × 7)
            (g(4, 6, 6, 3), &[1, 2][..]),
            (g(13, 2, 6, 3), &[1][..]),
            (g(3, 6, 2, 13), &[3][..]),
            (g(2, 10, 14, 7), &[1, 2][..]),
            // rows of 17 tiles (segments of 8, 8, 1)
            (g(4, 2, 34, 6), &[1, 2][..]),
            // mnist_cnn's conv2, blocks cut across images; an MNIST-sized image
            (g(16, 14, 14, 32), &[1, 3, 5][..]),
            (g(8, 28, 28, 16), &[1, 2][..]),
        ] {
            for &n in batches {
                let case = format!("{geom:?}, n = {n}");
                let h: Vec<f32> = random_vec(seed, n * geom.input_len(), -1.0, 1.0);
                let x: Vec<f32> = h.iter().map(|&v| v.max(0.0)).collect();
                let w: Vec<f32> = random_vec(seed + 1, geom.weight_len(), -1.0, 1.0);
                let dy: Vec<f32> = random_vec(seed + 2, n * geom.output_len(), -1.0, 1.0);
                let start: Vec<f32> = random_vec(seed + 3, x.len(), -1.0, 1.0);
                seed += 10;
                let (dyw, ld) = widened(&geom, &dy, n);
                for (how, name) in [
                    (Dx::Overwrite, "overwrite"),
                    (Dx::Add, "add"),
                    (Dx::ThroughRelu, "through relu"),
                ] {
                    let init = if how == Dx::Add { &start[..] } else { &h[..] };
                    let (mut old, mut new) = (init.to_vec(), init.to_vec());
                    let mut ws = workspace(&geom, n);
                    let ws = &mut ws;
                    let ok = winograd_input_grad(&geom, &dyw, ld, &w, n, &x, ws, &mut old, how);
                    assert!(ok, "{case}, {name}");
                    let mut ws = workspace(&geom, n);
                    let ws = &mut ws;
                    let ok = winograd_input_grad_dy(&geom, &dy, &w, n, &x, ws, &mut new, how);
                    assert!(ok, "{case}, {name}");
                    assert!(old.iter().any(|&v| v != 0.0), "{case}, {name}");
                    for (e, (a, b)) in old.iter().zip(&new).enumerate() {
                        assert_eq!(a.to_bits(), b.to_bits(), "[{e}] {a} {b}, {case}, {name}");
                    }
                }
            }
        }
    }

    #[test]
    fn input_gradient_from_dy_declines_what_does_not_fit() {
        if no_avx512() {
            return;
        }
        // a `dy` one element short, a short `dx`, an odd size, stride 2, and `f64`:
        // nothing written; with everything in place, it runs
        let g = Conv2dGeom::new(8, 6, 6, 8, 3, 3, 1, 1).unwrap();
        let n = 2;
        let w = vec![1.0f32; g.weight_len()];
        let x = vec![1.0f32; n * g.input_len()];
        let run = |g: &Conv2dGeom, dy: &[f32], dx: &mut [f32]| {
            let mut ws = workspace(g, n);
            winograd_input_grad_dy(g, dy, &w, n, &x, &mut ws, dx, Dx::Overwrite)
        };
        let dy = vec![1.0f32; n * g.output_len()];
        let mut dx = vec![f32::NAN; x.len()];
        assert!(!run(&g, &dy[..dy.len() - 1], &mut dx));
        assert!(!run(&g, &dy, &mut dx[..x.len() - 1]));
        for odd in [
            Conv2dGeom::new(8, 5, 6, 8, 3, 3, 1, 1).unwrap(),
            Conv2dGeom::new(8, 6, 6, 8, 3, 3, 2, 1).unwrap(),
        ] {
            let dy = vec![1.0f32; n * odd.output_len()];
            assert!(!run(&odd, &dy, &mut dx));
        }
        assert!(dx.iter().all(|v| v.is_nan()));
        let (w64, x64, dy64) = (
            vec![1.0f64; w.len()],
            vec![1.0f64; x.len()],
            vec![1.0; dy.len()],
        );
        let mut ws = vec![0.0f64; g.shifted_per_image() * n + g.shifted_fixed()];
        let mut dx64 = vec![f64::NAN; x.len()];
        let how = Dx::Overwrite;
        assert!(!winograd_input_grad_dy(
            &g, &dy64, &w64, n, &x64, &mut ws, &mut dx64, how
        ));
        assert!(dx64.iter().all(|v| v.is_nan()));
        assert!(run(&g, &dy, &mut dx));
        // each input sums at most 9 taps of 8 channels of ones
        assert!(dx.iter().all(|&v| (0.0..=72.5).contains(&v)), "{dx:?}");
    }
}
