//! The weight gradient of a 3 × 3, stride 1, padding 1 convolution for `f32` in sixteen
//! lanes by Winograd's F(2 × 2, 3 × 3): 16 multiplications per 2 × 2 tile of outputs and
//! pair of channels where the direct loops (`weight_grad.rs`) take 36.
//!
//! F(2 × 2, 3 × 3) computes a 2 × 2 tile of outputs from its 4 × 4 input tile `d` and the
//! filter `g` as `y = Aᵀ[(G g Gᵀ) ⊙ (Bᵀ d B)]A`, with
//!
//! ```text
//!      | 1  0 -1  0 |        | 1    0    0   |
//! Bᵀ = | 0  1  1  0 |    G = | 1/2  1/2  1/2 |    Aᵀ = | 1  1  1  0 |
//!      | 0 -1  1  0 |        | 1/2 -1/2  1/2 |         | 0  1 -1 -1 |
//!      | 0  1  0 -1 |        | 0    0    1   |
//! ```
//!
//! `y` is linear in `U = G g Gᵀ` through `M = U ⊙ V` (`V = Bᵀ d B`), so the tile's
//! gradient is `dU = (A dy Aᵀ) ⊙ V` and `dg = Gᵀ dU G`. Summed over every tile of every
//! image, with `Ŷ = A dy Aᵀ` per tile and output channel:
//!
//! `dW[o, c] += Gᵀ·dU[o, c]·G`, `dU[pos][c][o] = Σ_tiles Ŷ[pos][tile][o]·V[pos][c][tile]`,
//!
//! one product of depth "tiles" for each of the 16 positions `pos = 4·row + column` of the
//! 4 × 4 transforms. Tile `(ti, tj)` of image `k` takes `dy[k, o, 2ti + i, 2tj + j]`
//! (`i, j < 2`) and reads the padded planes (`shifted.rs`'s `P`, whose padding the images
//! share) at `P[c, k·plane + (2ti + a)·pw + 2tj + b]` (`a, b < 4`).
//!
//! The tiles go in blocks of whole tile rows, about [`TILES`] tiles, whose buffers stay in
//! L2 (in the scratch the caller passes):
//! - `dy`'s four values of each tile, `[tiles][4][c_out]`, output channels in the lanes:
//!   each tile row's two rows of `dy` transposed in registers, 16 × 16 at a time (`dbias`
//!   summed on the way);
//! - `V: [16][c_in][tiles]`, tiles in the lanes (two tile rows in one vector when they are
//!   at most [`PAIR_TW`] tiles wide): the columns `2tj + b` picked out of the padded rows by
//!   permutes;
//! - per position, blocks of 8 input by 32 output channels keep 16 sums in registers over
//!   the block's tiles: per tile `Ŷ[pos]` of the 32 channels made from the one to four
//!   values it needs (not stored: four times `dy`'s bytes), eight broadcasts of `V` and 16
//!   FMAs; then the sums are added into `dU: [16][c_in][c_out]`, which goes into
//!   `dweight` once, at the end.
//!
//! `Ŷ`'s fourth row and column are kept negated (`y1` for `A`'s `-y1`), which the last
//! transform undoes. Every sum runs in an order fixed by the geometry and the scratch's
//! length. The entry point checks the geometry and the buffers and returns `false`
//! (nothing written) when they do not suit.

use core::arch::x86_64::{__m512, __m512i};

use pulp::x86::V4;
use pulp::Simd;

use super::super::Conv2dGeom;
use super::weight_grad::transpose16;
use super::winograd::transform_b;
use super::{load, store, L};
use crate::float::{as_f32, as_f32_mut};
use crate::simd::first_lanes;
use crate::Float;

/// Tiles a block of tile rows aims at: its `4·c_out + 16·c_in` values per tile (192 KB at
/// 16 → 32 channels) stay in L2. (28 to 448 measured alike at the example's conv2.)
const TILES: usize = 128;
/// Input channels of one block of sums in registers (by 32 output channels: 16 sums).
const C_BLOCK: usize = 8;
/// Positions of the 4 × 4 transforms.
const POS: usize = 16;
/// The most tiles a tile row has for [`Winograd::x_pairs`] to take two tile rows at a time:
/// the columns `0..=2·tw + 1` of a padded row in one vector.
const PAIR_TW: usize = 7;

/// The position of row `row` and column `col` of a 4 × 4 transform.
#[inline(always)]
const fn pos_of(row: usize, col: usize) -> usize {
    4 * row + col
}

/// `dweight[o, c, u, v] += Σ dy[k, o, i, j]·p[c, k·plane + (i + u)·pw + j + v]` (the
/// module's doc) from the padded planes `p: [c_in, ld_p]` and `dy: [n, c_out, out_h,
/// out_w]`, and `dbias[o] += Σ dy[k, o, i, j]` when given, for `f32` on AVX-512 with a 3 × 3
/// kernel, stride 1, padding 1, even `out_h` and `out_w`, `c_out` a multiple of 16 and `c_in`
/// of 8, `scratch` holding at least one tile row's transforms besides one image's `dyᵀ` and
/// `dU`; `false` (nothing written) otherwise.
#[allow(clippy::too_many_arguments)]
pub(in super::super) fn winograd_weight_grad<T: Float>(
    g: &Conv2dGeom,
    dy: &[T],
    p: &[T],
    ld_p: usize,
    n: usize,
    scratch: &mut [T],
    dbias: Option<&mut [T]>,
    dweight: &mut [T],
) -> bool {
    let (Some(simd), Some(dy), Some(p), Some(scratch), Some(dweight)) = (
        V4::try_new(),
        as_f32(dy),
        as_f32(p),
        as_f32_mut(scratch),
        as_f32_mut(dweight),
    ) else {
        return false;
    };
    let dbias = match dbias.map(as_f32_mut) {
        Some(None) => return false,
        Some(Some(b)) if b.len() != g.c_out => return false,
        b => b.flatten(),
    };
    let Some(wg) = Winograd::new(g, (dy, p, ld_p, n), scratch.len(), dweight.len()) else {
        return false;
    };
    wg.run(simd, scratch, dbias, dweight);
    true
}

/// The weight gradient's operands and blocking (the module's doc).
struct Winograd<'a> {
    dy: &'a [f32],
    p: &'a [f32],
    ld_p: usize,
    n: usize,
    c_in: usize,
    c_out: usize,
    ow: usize,
    pw: usize,
    plane: usize,
    /// Tile rows per image and tiles per tile row.
    th: usize,
    tw: usize,
    /// Tile rows per block: the transforms' buffers hold `rows·tw` tiles.
    rows: usize,
}

impl<'a> Winograd<'a> {
    /// The gradient's loops when the geometry suits them and every element they reach lies
    /// inside the buffers (`scratch` and `dweight` elements long).
    fn new(
        g: &Conv2dGeom,
        (dy, p, ld_p, n): (&'a [f32], &'a [f32], usize, usize),
        scratch: usize,
        dweight: usize,
    ) -> Option<Self> {
        let (c_in, c_out) = (g.c_in, g.c_out);
        let suits = g.kh == 3
            && g.kw == 3
            && g.stride == 1
            && g.padding == 1
            && n > 0
            && c_out > 0
            && c_out % L == 0
            && c_in > 0
            && c_in % C_BLOCK == 0;
        let (oh, ow) = (g.out_h(), g.out_w());
        if !suits || oh == 0 || ow == 0 || oh % 2 != 0 || ow % 2 != 0 {
            return None;
        }
        let (pw, plane) = (g.padded_w(), g.padded_plane());
        let hw = oh.checked_mul(ow)?;
        let fits = dy.len() == n.checked_mul(c_out)?.checked_mul(hw)?
            && dweight == c_out.checked_mul(c_in)?.checked_mul(9)?;
        // the furthest element of `P` read: channel c_in - 1, image n - 1, row oh + 1 (the
        // last tile row's fourth), column ow + 1 (the last tile's fourth)
        let last_p = (c_in - 1)
            .checked_mul(ld_p)?
            .checked_add((n - 1).checked_mul(plane)?)?
            .checked_add((oh + 1).checked_mul(pw)?)?
            .checked_add(ow + 1)?;
        if !fits || last_p >= p.len() {
            return None;
        }
        // scratch: dU, then per tile 4·c_out of dy and 16·c_in of V (whose rows have L
        // elements of slack: the full stores of `x_tiles` and `x_pairs`)
        let (th, tw) = (oh / 2, ow / 2);
        let fixed = POS
            .checked_mul(c_out)?
            .checked_mul(c_in)?
            .checked_add(POS.checked_mul(c_in)?.checked_mul(L)?)?;
        let per_tile = c_out.checked_mul(4)?.checked_add(POS.checked_mul(c_in)?)?;
        let per_row = per_tile.checked_mul(tw)?;
        let mut rows = (TILES / tw)
            .max(1)
            .min(n * th)
            .min(scratch.checked_sub(fixed)? / per_row);
        if tw <= PAIR_TW && rows > 1 {
            // whole pairs of tile rows in a block but for the last
            rows -= rows % 2;
        }
        (rows > 0).then_some(Self {
            dy,
            p,
            ld_p,
            n,
            c_in,
            c_out,
            ow,
            pw,
            plane,
            th,
            tw,
            rows,
        })
    }

    /// Adds the gradient into `dweight` (and `dbias`), with `scratch` (after
    /// [`Winograd::new`]).
    fn run(&self, simd: V4, scratch: &mut [f32], dbias: Option<&mut [f32]>, dweight: &mut [f32]) {
        let ts = self.rows * self.tw;
        let (du, rest) = scratch.split_at_mut(POS * self.c_in * self.c_out);
        let (dyb, rest) = rest.split_at_mut(ts * 4 * self.c_out);
        let v = &mut rest[..POS * self.c_in * self.v_stride()];
        struct Op<'a, 'b> {
            simd: V4,
            wg: &'a Winograd<'b>,
            dyb: &'a mut [f32],
            v: &'a mut [f32],
            du: &'a mut [f32],
            dbias: Option<&'a mut [f32]>,
        }
        impl pulp::WithSimd for Op<'_, '_> {
            type Output = ();
            #[inline(always)]
            fn with_simd<S: Simd>(self, _: S) {
                let Self {
                    simd,
                    wg,
                    dyb,
                    v,
                    du,
                    mut dbias,
                } = self;
                let total = wg.n * wg.th;
                let mut r0 = 0;
                while r0 < total {
                    let rows = wg.rows.min(total - r0);
                    for r in 0..rows {
                        let (k, ti) = ((r0 + r) / wg.th, (r0 + r) % wg.th);
                        let at = (k, ti, r * wg.tw);
                        wg.dy_tiles(simd, at, dyb, dbias.as_deref_mut());
                        if wg.tw > PAIR_TW {
                            wg.x_tiles(simd, wg.row_at(r0 + r), r * wg.tw, v);
                        }
                    }
                    if wg.tw <= PAIR_TW {
                        for r in (0..rows).step_by(2) {
                            let second = (r + 1 < rows).then(|| wg.row_at(r0 + r + 1));
                            wg.x_pairs(simd, (wg.row_at(r0 + r), second), r * wg.tw, v);
                        }
                    }
                    wg.products(simd, rows * wg.tw, dyb, v, du);
                    r0 += rows;
                }
            }
        }
        du.fill(0.0);
        Simd::vectorize(
            simd,
            Op {
                simd,
                wg: self,
                dyb,
                v,
                du,
                dbias,
            },
        );
        self.add_filters(du, dweight);
    }

    /// Tile row `ti` of image `k` of `dy` as tiles `t0..t0 + tw` of `dyb: [rows·tw][4]
    /// [c_out]`: each tile's four values `y_ij` (at `2i + j`), output channels in the lanes,
    /// by 16 × 16 blocks (channels by positions of the tile row's two rows of `dy`)
    /// transposed in registers; `dbias[o] += Σ` of the tile row's values when given (each
    /// lane's positions in order, then added).
    #[inline(always)]
    fn dy_tiles(
        &self,
        simd: V4,
        (k, ti, t0): (usize, usize, usize),
        dyb: &mut [f32],
        dbias: Option<&mut [f32]>,
    ) {
        let f = simd.avx512f;
        let (c_out, ow) = (self.c_out, self.ow);
        let (span, hw) = (2 * ow, 2 * self.th * ow);
        let src = self.dy.as_ptr().wrapping_add(k * c_out * hw + 2 * ti * ow);
        let dst = dyb.as_mut_ptr();
        let mut dbias = dbias;
        for o0 in (0..c_out).step_by(L) {
            let mut total = f._mm512_setzero_ps();
            // position q0 + l of the two rows is (i, j): column j of row i
            let (mut i, mut j) = (0, 0);
            for q0 in (0..span).step_by(L) {
                let (cols, mask) = ((span - q0).min(L), first_lanes(span - q0));
                let mut m = [f._mm512_setzero_ps(); L];
                for (r, m) in m.iter_mut().enumerate() {
                    // SAFETY: AVX-512F is present (under `V4`); channel o0 + r < c_out (a
                    // multiple of 16), the lanes of `mask` are positions below (2ti + 2)·ow
                    // ≤ hw of image k < n: inside `dy` (`new` checked its length)
                    *m = unsafe { load(mask, src.add((o0 + r) * hw + q0)) };
                }
                transpose16(simd, &mut m);
                for &v in m.iter().take(cols) {
                    let at = ((t0 + j / 2) * 4 + 2 * i + j % 2) * c_out + o0;
                    // SAFETY: tile t0 + j/2 < t0 + tw ≤ rows·tw, value 2i + j%2 < 4,
                    // channels o0..o0 + 16 ≤ c_out: inside `dyb` of rows·tw·4·c_out
                    unsafe { store(!0, dst.add(at), v) }
                    total = f._mm512_add_ps(total, v);
                    j += 1;
                    if j == ow {
                        (i, j) = (i + 1, 0);
                    }
                }
            }
            if let Some(db) = dbias.as_deref_mut() {
                // SAFETY: channels o0..o0 + 16 ≤ c_out, inside `dbias` of `c_out` (the entry
                // point)
                unsafe {
                    let at = db.as_mut_ptr().add(o0);
                    store(!0, at, f._mm512_add_ps(total, load(!0, at)));
                }
            }
        }
    }

    /// The length of `V`'s rows: a block's tiles and [`L`] of slack.
    fn v_stride(&self) -> usize {
        self.rows * self.tw + L
    }

    /// Stores `V = Bᵀ (d B)` of input channel `c` for the sixteen tiles in the lanes at
    /// tiles `t..t + 16` of `v: [16][c_in][rows·tw + 16]` (at `dst`), from `rows[a] = (d B)[a]`:
    /// the same transform as along the rows, column by column.
    ///
    /// # Safety
    ///
    /// AVX-512F is present, `c < c_in`, `t < rows·tw`, and `dst` holds `16·c_in·v_stride()`
    /// elements.
    #[inline(always)]
    unsafe fn store_v(&self, simd: V4, rows: [[__m512; 4]; 4], c: usize, t: usize, dst: *mut f32) {
        let (c_in, vs) = (self.c_in, self.v_stride());
        let [r0, r1, r2, r3] = rows;
        for (col, (((&e0, &e1), &e2), &e3)) in r0.iter().zip(&r1).zip(&r2).zip(&r3).enumerate() {
            let column = [e0, e1, e2, e3];
            for (row, z) in transform_b(simd, column).into_iter().enumerate() {
                let at = (pos_of(row, col) * c_in + c) * vs + t;
                // SAFETY: the caller's contract: tiles t + l < rows·tw + 16 of a position
                // below 16 and channel c < c_in lie inside `v`
                unsafe { store(!0, dst.add(at), z) }
            }
        }
    }

    /// Where tile row `r` (of all images) starts in a channel of `P`.
    fn row_at(&self, r: usize) -> usize {
        r / self.th * self.plane + 2 * (r % self.th) * self.pw
    }

    /// [`Winograd::x_tiles`] of two tile rows at once (or of one, `second` `None`), when a
    /// tile row has at most [`PAIR_TW`] tiles: the first row's tiles in lanes `0..tw`, the
    /// second's in `tw..2·tw`, each row of both 4 × 4 tiles from one vector of either padded
    /// row (columns `0..=2·tw + 1`), as tiles `t0..t0 + 2·tw` of `v`.
    #[inline(always)]
    fn x_pairs(&self, simd: V4, (first, second): (usize, Option<usize>), t0: usize, v: &mut [f32]) {
        let f = simd.avx512f;
        let (c_in, pw, tw) = (self.c_in, self.pw, self.tw);
        // lane l takes column 2l + b of the first row (16 + 2(l - tw) + b: of the second)
        let pick: [__m512i; 4] = core::array::from_fn(|b| {
            pulp::cast(core::array::from_fn::<u32, L, _>(|l| {
                let at = if l < tw {
                    2 * l + b
                } else if l < 2 * tw {
                    L + 2 * (l - tw) + b
                } else {
                    0
                };
                at as u32
            }))
        });
        let mask = first_lanes(self.ow + 2);
        let (mask2, second) = match second {
            Some(s) => (mask, s),
            None => (0, first),
        };
        let dst = v.as_mut_ptr();
        for c in 0..c_in {
            let (a0, b0) = (c * self.ld_p + first, c * self.ld_p + second);
            let mut t = [[f._mm512_setzero_ps(); 4]; 4];
            for (a, t) in t.iter_mut().enumerate() {
                // SAFETY: AVX-512F is present (under `V4`); the lanes of `mask` (`mask2`)
                // are columns below ow + 2 of row a < 4 of a tile row (of the second only
                // when it exists) and channel c < c_in: inside `p` (`new` checked the
                // furthest)
                let (x, y) = unsafe {
                    let p = self.p.as_ptr();
                    (
                        load(mask, p.add(a0 + a * pw)),
                        load(mask2, p.wrapping_add(b0 + a * pw)),
                    )
                };
                let d0 = f._mm512_permutex2var_ps(x, pick[0], y);
                let d1 = f._mm512_permutex2var_ps(x, pick[1], y);
                let d2 = f._mm512_permutex2var_ps(x, pick[2], y);
                let d3 = f._mm512_permutex2var_ps(x, pick[3], y);
                // t[a] = (d B)[a] of row a
                *t = transform_b(simd, [d0, d1, d2, d3]);
            }
            // SAFETY: t0 is a tile row of the block, t0 < rows·tw, and c < c_in (lanes past the
            // pair's tiles hold junk that the next pair overwrites, or that lies in the slack)
            unsafe { self.store_v(simd, t, c, t0, dst) }
        }
    }

    /// `V = Bᵀ d B` of every input channel of the tile row that starts at `row` in a channel
    /// of `P`, as tiles `t0..t0 + tw` of `v: [16][c_in][rows·tw + 16]`: sixteen tiles in
    /// the lanes, lane `l`'s
    /// column `b` of the tile is column `2l + b` of the padded row, picked out of two
    /// vectors loaded from column 0 (`b < 2`) or 2 (`b ≥ 2`) of the sixteen tiles.
    #[inline(always)]
    fn x_tiles(&self, simd: V4, row: usize, t0: usize, v: &mut [f32]) {
        let f = simd.avx512f;
        let (c_in, pw) = (self.c_in, self.pw);
        let pick: [__m512i; 2] =
            [0, 1].map(|b| pulp::cast(core::array::from_fn::<u32, L, _>(|l| (2 * l + b) as u32)));
        // the columns a tile row reaches: 0..=ow + 1
        let reach = self.ow + 2;
        let dst = v.as_mut_ptr();
        for c in 0..c_in {
            let row0 = c * self.ld_p + row;
            for tg in (0..self.tw).step_by(L) {
                let col0 = 2 * tg;
                // t[a] = (d B)[a] = (d0 - d2, d1 + d2, d2 - d1, d1 - d3) of row a
                let mut t = [[f._mm512_setzero_ps(); 4]; 4];
                for (a, t) in t.iter_mut().enumerate() {
                    let at = self.p.as_ptr().wrapping_add(row0 + a * pw + col0);
                    let mut d = [f._mm512_setzero_ps(); 4];
                    for (d, s) in d.iter_mut().zip([0, L, 2, 2 + L]) {
                        let mask = first_lanes(reach.saturating_sub(col0 + s));
                        // SAFETY: AVX-512F is present (under `V4`); the lanes of `mask` are
                        // columns below ow + 2 of row a < 4 of a tile row and channel c <
                        // c_in: inside `p` (`new` checked the furthest)
                        *d = unsafe { load(mask, at.wrapping_add(s)) };
                    }
                    let [lo0, hi0, lo2, hi2] = d;
                    let d0 = f._mm512_permutex2var_ps(lo0, pick[0], hi0);
                    let d1 = f._mm512_permutex2var_ps(lo0, pick[1], hi0);
                    let d2 = f._mm512_permutex2var_ps(lo2, pick[0], hi2);
                    let d3 = f._mm512_permutex2var_ps(lo2, pick[1], hi2);
                    // t[a] = (d B)[a] of row a
                    *t = transform_b(simd, [d0, d1, d2, d3]);
                }
                // SAFETY: t0 + tg < t0 + tw ≤ rows·tw and c < c_in (lanes past the tile row's
                // hold junk that the next tile row overwrites, or that lies in the slack)
                unsafe { self.store_v(simd, t, c, t0 + tg, dst) }
            }
        }
    }

    /// `dU[pos][c][o] += Σ_{t < tiles} Ŷ[pos][t][o]·V[pos][c][t]` for every position,
    /// with `Ŷ` made from `dyb` on the way.
    #[inline(always)]
    fn products(&self, simd: V4, tiles: usize, dyb: &[f32], v: &[f32], du: &mut [f32]) {
        for pos in 0..POS {
            match pos {
                0 => self.position::<0, 0>(simd, tiles, dyb, v, du),
                1 => self.position::<0, 1>(simd, tiles, dyb, v, du),
                2 => self.position::<0, 2>(simd, tiles, dyb, v, du),
                3 => self.position::<0, 3>(simd, tiles, dyb, v, du),
                4 => self.position::<1, 0>(simd, tiles, dyb, v, du),
                5 => self.position::<1, 1>(simd, tiles, dyb, v, du),
                6 => self.position::<1, 2>(simd, tiles, dyb, v, du),
                7 => self.position::<1, 3>(simd, tiles, dyb, v, du),
                8 => self.position::<2, 0>(simd, tiles, dyb, v, du),
                9 => self.position::<2, 1>(simd, tiles, dyb, v, du),
                10 => self.position::<2, 2>(simd, tiles, dyb, v, du),
                11 => self.position::<2, 3>(simd, tiles, dyb, v, du),
                12 => self.position::<3, 0>(simd, tiles, dyb, v, du),
                13 => self.position::<3, 1>(simd, tiles, dyb, v, du),
                14 => self.position::<3, 2>(simd, tiles, dyb, v, du),
                _ => self.position::<3, 3>(simd, tiles, dyb, v, du),
            }
        }
    }

    /// [`Winograd::products`] at position `(P, Q)`, by blocks of 32 (or 16) output channels.
    #[inline(always)]
    fn position<const P: usize, const Q: usize>(
        &self,
        simd: V4,
        tiles: usize,
        dyb: &[f32],
        v: &[f32],
        du: &mut [f32],
    ) {
        let mut o0 = 0;
        while o0 < self.c_out {
            if self.c_out - o0 >= 2 * L {
                self.block::<P, Q, 2>(simd, (o0, tiles), dyb, v, du);
                o0 += 2 * L;
            } else {
                self.block::<P, Q, 1>(simd, (o0, tiles), dyb, v, du);
                o0 += L;
            }
        }
    }

    /// [`Winograd::position`] of output channels `o0..o0 + 16·O`, by blocks of
    /// [`C_BLOCK`] input channels whose `C_BLOCK·O` sums stay in registers.
    #[inline(always)]
    fn block<const P: usize, const Q: usize, const O: usize>(
        &self,
        simd: V4,
        (o0, tiles): (usize, usize),
        dyb: &[f32],
        v: &[f32],
        du: &mut [f32],
    ) {
        let f = simd.avx512f;
        let (c_in, c_out, vs) = (self.c_in, self.c_out, self.v_stride());
        let pos = pos_of(P, Q);
        let y = dyb.as_ptr().wrapping_add(o0);
        let out = du.as_mut_ptr();
        for c0 in (0..c_in).step_by(C_BLOCK) {
            let x = v.as_ptr().wrapping_add((pos * c_in + c0) * vs);
            let mut acc = [[f._mm512_setzero_ps(); O]; C_BLOCK];
            for t in 0..tiles {
                let mut yv = [f._mm512_setzero_ps(); O];
                for (w, yv) in yv.iter_mut().enumerate() {
                    // SAFETY: tile t < tiles ≤ rows·tw, channels o0 + 16·w..+16 ≤ c_out:
                    // its four values inside `dyb`
                    *yv = unsafe { y_hat::<P, Q>(simd, y.add(t * 4 * c_out + w * L), c_out) };
                }
                for (cc, acc) in acc.iter_mut().enumerate() {
                    // SAFETY: channel c0 + cc < c_in, tile t < rows·tw: inside `v`
                    let b = f._mm512_set1_ps(unsafe { *x.add(cc * vs + t) });
                    for (a, &yv) in acc.iter_mut().zip(&yv) {
                        *a = f._mm512_fmadd_ps(yv, b, *a);
                    }
                }
            }
            for (cc, acc) in acc.iter().enumerate() {
                for (w, &a) in acc.iter().enumerate() {
                    let at = (pos * c_in + c0 + cc) * c_out + o0 + w * L;
                    // SAFETY: position pos < 16, channel c0 + cc < c_in, channels o0 + 16·w
                    // ..+16 ≤ c_out: inside `du` of 16·c_in·c_out
                    unsafe {
                        let s = f._mm512_add_ps(a, load(!0, out.add(at)));
                        store(!0, out.add(at), s);
                    }
                }
            }
        }
    }

    /// `dweight[o, c] += Gᵀ·dU[o, c]·G`, undoing the fourth row's and column's negation.
    fn add_filters(&self, du: &[f32], dweight: &mut [f32]) {
        // one dimension of Gᵀ·m·G, with m3 negated: (m0 + h, (m1 - m2)/2, h - m3) where
        // h = (m1 + m2)/2
        let gt = |m: [f32; 4]| {
            let h = 0.5 * (m[1] + m[2]);
            [m[0] + h, 0.5 * (m[1] - m[2]), h - m[3]]
        };
        let (c_in, c_out) = (self.c_in, self.c_out);
        for (oc, dw) in dweight.chunks_exact_mut(9).enumerate() {
            let (o, c) = (oc / c_in, oc % c_in);
            let m = |row: usize, col: usize| du[((4 * row + col) * c_in + c) * c_out + o];
            // the rows' transform column by column, then the columns' row by row
            let cols: [[f32; 3]; 4] =
                core::array::from_fn(|col| gt([0, 1, 2, 3].map(|r| m(r, col))));
            for u in 0..3 {
                let g = gt([cols[0][u], cols[1][u], cols[2][u], cols[3][u]]);
                for (d, g) in dw[3 * u..3 * u + 3].iter_mut().zip(g) {
                    *d += g;
                }
            }
        }
    }
}

/// `Ŷ[P][Q] = (A y Aᵀ)[P][Q]` of one tile (16 channels) from its four values `y_ij` at
/// `y + (2i + j)·c_out`, with the fourth row and column negated: along each dimension
/// `(y0, y0 + y1, y0 - y1, y1)`, the columns' first (only the values needed are loaded).
///
/// # Safety
///
/// AVX-512F is present, and 16 elements are readable at each `y + s·c_out`, `s < 4`.
#[inline(always)]
unsafe fn y_hat<const P: usize, const Q: usize>(simd: V4, y: *const f32, c_out: usize) -> __m512 {
    let f = simd.avx512f;
    // SAFETY: the caller's contract
    let (r0, r1) = unsafe {
        (
            y_pair::<Q>(simd, y, y.add(c_out)),
            y_pair::<Q>(simd, y.add(2 * c_out), y.add(3 * c_out)),
        )
    };
    match P {
        0 => r0,
        1 => f._mm512_add_ps(r0, r1),
        2 => f._mm512_sub_ps(r0, r1),
        _ => r1,
    }
}

/// `(y0, y0 + y1, y0 - y1, y1)[Q]` of the 16 values at `y0` and at `y1`.
///
/// # Safety
///
/// AVX-512F is present, and 16 elements are readable at `y0` and at `y1`.
#[inline(always)]
unsafe fn y_pair<const Q: usize>(simd: V4, y0: *const f32, y1: *const f32) -> __m512 {
    let f = simd.avx512f;
    // SAFETY: the caller's contract
    unsafe {
        match Q {
            0 => load(!0, y0),
            1 => f._mm512_add_ps(load(!0, y0), load(!0, y1)),
            2 => f._mm512_sub_ps(load(!0, y0), load(!0, y1)),
            _ => load(!0, y1),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::super::{backward, Dx, Path};
    use super::*;
    use crate::ops::conv2d_backward;
    use crate::ops::Conv2dCols;
    use crate::testing::random_vec;

    /// `x: [n, c, h, w]` as padded planes `P: [c, ld_p]` (padding 1, shared between the
    /// images, zero rows after the last), by plain loops; with `ld_p`.
    fn pad(g: &Conv2dGeom, x: &[f32], n: usize) -> (Vec<f32>, usize) {
        let (pw, plane) = (g.padded_w(), g.padded_plane());
        let ld_p = n * plane + 3 * pw + 3;
        let mut p = vec![0.0f32; g.c_in * ld_p];
        for k in 0..n {
            for c in 0..g.c_in {
                for r in 0..g.h {
                    for s in 0..g.w {
                        let at = c * ld_p + k * plane + (r + 1) * pw + s + 1;
                        p[at] = x[((k * g.c_in + c) * g.h + r) * g.w + s];
                    }
                }
            }
        }
        (p, ld_p)
    }

    #[test]
    fn literal_one_channel() {
        // x = [[1, 2], [3, 4]] in channel 0 (padded: the 4x4 tile d below), dy = [[1, 0],
        // [0, 2]] in output channel 0, every other channel zero. Directly:
        // dW[u, v] = Σ dy[i, j]·d[i + u, j + v] = d[u, v] + 2·d[1 + u, 1 + v]
        //   = [[0, 0, 0], [0, 1, 2], [0, 3, 4]] + [[2, 4, 0], [6, 8, 0], [0, 0, 0]]
        //   = [[2, 4, 0], [6, 9, 2], [0, 3, 4]].
        // By Winograd: d = [[0, 0, 0, 0], [0, 1, 2, 0], [0, 3, 4, 0], [0, 0, 0, 0]],
        // V = Bᵀ d B = [[4, -7, -1, -3], [-6, 10, 2, 4], [-2, 4, 0, 2], [-2, 3, 1, 1]],
        // Ŷ = A dy Aᵀ = [[1, 1, 1, 0], [1, 3, -1, -2], [1, -1, 3, 2], [0, -2, 2, 2]],
        // Ŷ ⊙ V = [[4, -7, -1, 0], [-6, 30, -2, -8], [-2, -4, 0, 4], [0, -6, 2, 2]];
        // Gᵀ(Ŷ ⊙ V) rows: (m0 + (m1 + m2)/2, (m1 - m2)/2, (m1 + m2)/2 + m3) =
        // [[0, 6, -2, -2], [-2, 17, -1, -6], [-4, 7, -1, -0]], then the same along the
        // columns: [[2, 4, 0], [6, 9, 2], [0, 3, 4]]. dweight starts at 1, dbias at 0.5.
        let Some(_) = V4::try_new() else {
            eprintln!("no AVX-512: nothing to test");
            return;
        };
        let g = Conv2dGeom::new(8, 2, 2, 16, 3, 3, 1, 1).unwrap();
        let mut x = vec![0.0f32; g.input_len()];
        x[..4].copy_from_slice(&[1.0, 2.0, 3.0, 4.0]);
        let mut dy = vec![0.0f32; g.output_len()];
        dy[..4].copy_from_slice(&[1.0, 0.0, 0.0, 2.0]);
        let (p, ld_p) = pad(&g, &x, 1);
        let mut scratch = vec![f32::NAN; 1 << 14];
        let (mut dw, mut db) = (vec![1.0f32; g.weight_len()], vec![0.5f32; 16]);
        assert!(winograd_weight_grad(
            &g,
            &dy,
            &p,
            ld_p,
            1,
            &mut scratch,
            Some(&mut db),
            &mut dw
        ));
        assert_eq!(dw[..9], [3.0, 5.0, 1.0, 7.0, 10.0, 3.0, 1.0, 4.0, 5.0]);
        assert!(dw[9..].iter().all(|&d| d == 1.0));
        assert_eq!(db[0], 3.5);
        assert!(db[1..].iter().all(|&d| d == 0.5));
    }

    /// Plain f64 loops: `dweight` of the convolution (no initial value), and the scale of
    /// Winograd's rounding error: the same sums as Winograd's, of absolute values,
    /// `|G|ᵀ·Σ_tiles (|A||dy||A|ᵀ ⊙ |B|ᵀ|d||B|)·|G|`.
    fn reference(g: &Conv2dGeom, n: usize, x: &[f32], dy: &[f32]) -> (Vec<f64>, Vec<f64>) {
        let (h, w) = (g.h, g.w);
        let xv = |k: usize, c: usize, r: isize, s: isize| -> f64 {
            if r < 0 || s < 0 || r >= h as isize || s >= w as isize {
                0.0
            } else {
                f64::from(x[((k * g.c_in + c) * h + r as usize) * w + s as usize])
            }
        };
        let mut dw = vec![0.0f64; g.weight_len()];
        let mut scale = vec![0.0f64; g.weight_len()];
        for k in 0..n {
            for o in 0..g.c_out {
                let dyv = |i: usize, j: usize| f64::from(dy[((k * g.c_out + o) * h + i) * w + j]);
                for c in 0..g.c_in {
                    let at = (o * g.c_in + c) * 9;
                    for i in 0..h {
                        for j in 0..w {
                            for u in 0..3 {
                                for v in 0..3 {
                                    let xr = xv(k, c, (i + u) as isize - 1, (j + v) as isize - 1);
                                    dw[at + u * 3 + v] += dyv(i, j) * xr;
                                }
                            }
                        }
                    }
                    let mut m = [[0.0f64; 4]; 4];
                    for ti in 0..h / 2 {
                        for tj in 0..w / 2 {
                            let d = |a: usize, b: usize| {
                                xv(k, c, (2 * ti + a) as isize - 1, (2 * tj + b) as isize - 1).abs()
                            };
                            let y = |i: usize, j: usize| dyv(2 * ti + i, 2 * tj + j).abs();
                            // |A|: rows (1, 0), (1, 1), (1, 1), (0, 1); |B|ᵀ: (1, 0, 1, 0),
                            // (0, 1, 1, 0), (0, 1, 1, 0), (0, 1, 0, 1)
                            let ya = [[1.0, 0.0], [1.0, 1.0], [1.0, 1.0], [0.0, 1.0]];
                            let bt = [
                                [1.0, 0.0, 1.0, 0.0],
                                [0.0, 1.0, 1.0, 0.0],
                                [0.0, 1.0, 1.0, 0.0],
                                [0.0, 1.0, 0.0, 1.0],
                            ];
                            for (pr, m) in m.iter_mut().enumerate() {
                                for (pc, m) in m.iter_mut().enumerate() {
                                    let mut yy = 0.0;
                                    for i in 0..2 {
                                        for j in 0..2 {
                                            yy += ya[pr][i] * ya[pc][j] * y(i, j);
                                        }
                                    }
                                    let mut vv = 0.0;
                                    for a in 0..4 {
                                        for b in 0..4 {
                                            vv += bt[pr][a] * bt[pc][b] * d(a, b);
                                        }
                                    }
                                    *m += yy * vv;
                                }
                            }
                        }
                    }
                    // |G|ᵀ·m·|G|
                    let ga = [
                        [1.0, 0.0, 0.0],
                        [0.5, 0.5, 0.5],
                        [0.5, 0.5, 0.5],
                        [0.0, 0.0, 1.0],
                    ];
                    for u in 0..3 {
                        for v in 0..3 {
                            let mut s = 0.0;
                            for (pr, mr) in m.iter().enumerate() {
                                for (pc, &mv) in mr.iter().enumerate() {
                                    s += ga[pr][u] * mv * ga[pc][v];
                                }
                            }
                            scale[at + u * 3 + v] += s;
                        }
                    }
                }
            }
        }
        (dw, scale)
    }

    /// Runs the Winograd gradient on `x`, `dy` onto `dw` and `db` with `scratch` elements
    /// of scratch; whether it ran.
    fn run(
        g: &Conv2dGeom,
        n: usize,
        (x, dy): (&[f32], &[f32]),
        scratch: usize,
        (dw, db): (&mut [f32], &mut [f32]),
    ) -> bool {
        let (p, ld_p) = pad(g, x, n);
        let mut scratch = vec![f32::NAN; scratch];
        winograd_weight_grad(g, dy, &p, ld_p, n, &mut scratch, Some(db), dw)
    }

    /// The scratch that holds `rows` tile rows per block (the least that runs is 1).
    fn scratch_for(g: &Conv2dGeom, rows: usize) -> usize {
        let fixed = POS * g.c_in * g.c_out + POS * g.c_in * L;
        fixed + rows * (4 * g.c_out + POS * g.c_in) * (g.w / 2)
    }

    #[test]
    fn equals_plain_loops_and_direct_loops() {
        // Winograd against exact f64 sums, within (N + 10)·ε·S element by element: S is the
        // scale above (plus |dweight|'s initial value) and N the tiles summed. Each Ŷ and V
        // entry is two roundings from the exact transform of its absolute values, a product
        // one more, the sum over N tiles N (FMAs, in blocks then into dU), the last
        // transform four and the addition into dweight one: γ(N + 10) with unit roundoff
        // ε/2, so ε gives a margin of 2. The direct loops' dweight must lie within its own
        // bound (depth·ε·Σ|dy||x|) of the same exact value, so the two paths agree within
        // the sum of the bounds. dbias, summed in each tile row's transposition then added,
        // within (n·h·w + n·h/2 + 1)·ε·Σ|terms| of the exact sum, as the direct loops'.
        if V4::try_new().is_none() {
            eprintln!("no AVX-512: nothing to test");
            return;
        }
        let geoms: [(usize, usize, usize, usize, &[usize]); 8] = [
            (8, 2, 2, 16, &[1, 2, 3, 9]),
            (16, 14, 14, 32, &[1, 2, 5, 8]),
            (8, 4, 6, 48, &[1, 3, 4, 7]),
            (24, 6, 34, 32, &[1, 2]),
            (8, 10, 2, 64, &[1, 6]),
            (32, 8, 8, 16, &[1, 3, 9]),
            (16, 28, 28, 16, &[1, 2]),
            (8, 2, 36, 16, &[1, 5]),
        ];
        let eps = f64::from(f32::EPSILON);
        for (i, &(c_in, h, w, c_out, batches)) in geoms.iter().enumerate() {
            let g = Conv2dGeom::new(c_in, h, w, c_out, 3, 3, 1, 1).unwrap();
            for &n in batches {
                let seed = 9000 + 20 * i as u64 + n as u64;
                let x: Vec<f32> = random_vec(seed, n * g.input_len(), -1.0, 1.0);
                let dy: Vec<f32> = random_vec(seed + 1, n * g.output_len(), -1.0, 1.0);
                let dw0: Vec<f32> = random_vec(seed + 2, g.weight_len(), -1.0, 1.0);
                let db0: Vec<f32> = random_vec(seed + 3, g.c_out, -1.0, 1.0);
                let (exact, scale) = reference(&g, n, &x, &dy);
                let tiles = n * (h / 2) * (w / 2);
                // dbias[o] = db0[o] + Σ dy[k, o, ..], and Σ |terms|
                let mut bias: Vec<(f64, f64)> = db0
                    .iter()
                    .map(|&b| (f64::from(b), f64::from(b).abs()))
                    .collect();
                for (e, &d) in dy.iter().enumerate() {
                    let o = e / (h * w) % c_out;
                    (bias[o].0, bias[o].1) =
                        (bias[o].0 + f64::from(d), bias[o].1 + f64::from(d).abs());
                }
                // the direct loops, and their bound's scale Σ|dy||x| in f64
                let (p, ld_p) = pad(&g, &x, n);
                let (mut ddw, mut ddb) = (dw0.clone(), db0.clone());
                let (mut sc, mut sums) = (vec![0.0f32; h * w * c_out], vec![0.0f32; dw0.len()]);
                let ws = (&mut sc[..], &mut sums[..]);
                let db = Some(&mut ddb[..]);
                let ran = super::super::weight_grad::add_weight_grad(
                    &g, &dy, &p, ld_p, n, ws, db, &mut ddw,
                );
                assert!(ran);
                let xa: Vec<f32> = x.iter().map(|v| v.abs()).collect();
                let dya: Vec<f32> = dy.iter().map(|v| v.abs()).collect();
                let (direct_scale, _) = reference(&g, n, &xa, &dya);
                // blocks of one tile row, of two, and as many as the scratch for 128 tiles
                for rows in [1, 2, TILES] {
                    let case = format!("{g:?}, n = {n}, {rows} rows");
                    let (mut dw, mut db) = (dw0.clone(), db0.clone());
                    let scratch = scratch_for(&g, rows);
                    assert!(run(&g, n, (&x, &dy), scratch, (&mut dw, &mut db)), "{case}");
                    for (o, (&d, &dd)) in db.iter().zip(&ddb).enumerate() {
                        let (want, s) = bias[o];
                        let tol = (n * h * w + n * h / 2 + 1) as f64 * eps * s;
                        let err = (f64::from(d) - want).abs();
                        assert!(err <= tol, "dbias, {case} [{o}]: {d} against {want}");
                        let err = (f64::from(dd) - want).abs();
                        assert!(
                            err <= tol,
                            "direct dbias, {case} [{o}]: {dd} against {want}"
                        );
                    }
                    for e in 0..dw.len() {
                        let want = exact[e] + f64::from(dw0[e]);
                        let s = scale[e] + f64::from(dw0[e]).abs();
                        let tol = (tiles + 10) as f64 * eps * s;
                        let err = (f64::from(dw[e]) - want).abs();
                        assert!(
                            err <= tol,
                            "{case} [{e}]: {} against {want} ({err:e} > {tol:e})",
                            dw[e]
                        );
                        let direct_tol = (n * h * w * 9 + 1) as f64
                            * eps
                            * (direct_scale[e] + f64::from(dw0[e]).abs());
                        let gap = (f64::from(dw[e]) - f64::from(ddw[e])).abs();
                        assert!(
                            gap <= tol + direct_tol,
                            "{case} [{e}]: {} against the direct loops' {}",
                            dw[e],
                            ddw[e]
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn declines_and_writes_nothing() {
        if V4::try_new().is_none() {
            eprintln!("no AVX-512: nothing to test");
            return;
        }
        let nan_run = |g: &Conv2dGeom, n: usize, scratch: usize| -> bool {
            let x: Vec<f32> = random_vec(1, n * g.input_len(), -1.0, 1.0);
            let dy: Vec<f32> = random_vec(2, n * g.output_len(), -1.0, 1.0);
            let (mut dw, mut db) = (vec![f32::NAN; g.weight_len()], vec![f32::NAN; g.c_out]);
            let ran = run(g, n, (&x, &dy), scratch, (&mut dw, &mut db));
            assert!(ran || dw.iter().chain(&db).all(|v| v.is_nan()), "{g:?}");
            ran
        };
        let g = |c_in, h, w, c_out, k, p| Conv2dGeom::new(c_in, h, w, c_out, k, k, 1, p).unwrap();
        // odd sizes, channel counts off the blocks, another kernel or padding
        for g in [
            g(8, 3, 4, 16, 3, 1),
            g(8, 4, 5, 16, 3, 1),
            g(8, 4, 4, 8, 3, 1),
            g(4, 4, 4, 16, 3, 1),
            g(12, 4, 4, 16, 3, 1),
            g(8, 6, 6, 16, 3, 0),
            g(8, 4, 4, 16, 5, 2),
        ] {
            assert!(!nan_run(&g, 2, 1 << 16), "{g:?}");
        }
        // stride 2
        let s2 = Conv2dGeom::new(8, 8, 8, 16, 3, 3, 2, 1).unwrap();
        assert!(!nan_run(&s2, 1, 1 << 16));
        // scratch for one tile row and one element less
        let g = g(8, 4, 6, 16, 3, 1);
        assert!(nan_run(&g, 2, scratch_for(&g, 1)));
        assert!(!nan_run(&g, 2, scratch_for(&g, 1) - 1));
        // `p` up to its furthest element read (channel 7, image 1, row 5, column 7) and one
        // short; `dy`, `dbias`, `dweight` of other lengths
        let (n, pw, plane) = (2, g.padded_w(), g.padded_plane());
        let x: Vec<f32> = random_vec(3, n * g.input_len(), -1.0, 1.0);
        let dy: Vec<f32> = random_vec(4, n * g.output_len(), -1.0, 1.0);
        let (p, ld_p) = pad(&g, &x, n);
        let last = 7 * ld_p + plane + 5 * pw + 7;
        let mut scratch = vec![0.0f32; 1 << 16];
        let mut dw = vec![0.0f32; g.weight_len()];
        let mut call = |p: &[f32], dy: &[f32], db: Option<&mut [f32]>, dw: &mut [f32]| {
            winograd_weight_grad(&g, dy, p, ld_p, n, &mut scratch, db, dw)
        };
        assert!(call(&p[..=last], &dy, None, &mut dw));
        let before = dw.clone();
        assert!(!call(&p[..last], &dy, None, &mut dw));
        assert!(!call(&p, &dy[1..], None, &mut dw));
        assert!(!call(&p, &dy, Some(&mut [0.0; 15]), &mut dw));
        assert!(!call(&p, &dy, None, &mut dw[1..]));
        assert_eq!(dw, before);
        // f64 is left to the other loops
        let p64: Vec<f64> = p.iter().map(|&v| f64::from(v)).collect();
        let dy64: Vec<f64> = dy.iter().map(|&v| f64::from(v)).collect();
        let (mut s64, mut dw64) = (vec![0.0f64; 1 << 16], vec![0.0f64; g.weight_len()]);
        assert!(!winograd_weight_grad(
            &g, &dy64, &p64, ld_p, n, &mut s64, None, &mut dw64
        ));
    }

    #[test]
    fn conv2d_backward_takes_winograd() {
        // the public backward pass at the example's second convolution gives dweight bit for
        // bit as this module's loops with the scratch it passes (the padded planes' chunk
        // after P, dYw and the two weights by tap), and dbias
        if V4::try_new().is_none() {
            eprintln!("no AVX-512: nothing to test");
            return;
        }
        let (g, n) = (Conv2dGeom::new(16, 14, 14, 32, 3, 3, 1, 1).unwrap(), 3);
        let x: Vec<f32> = random_vec(5, n * g.input_len(), -1.0, 1.0);
        let dy: Vec<f32> = random_vec(6, n * g.output_len(), -1.0, 1.0);
        let w: Vec<f32> = random_vec(7, g.weight_len(), -1.0, 1.0);
        let dw0: Vec<f32> = random_vec(8, g.weight_len(), -1.0, 1.0);
        let mut ws = vec![0.0f32; g.workspace_len(n)];
        let (mut dw, mut db) = (dw0.clone(), vec![0.25f32; g.c_out]);
        let cols = Conv2dCols::Recompute;
        let grads = (None, Some(&mut dw[..]), Some(&mut db[..]));
        conv2d_backward(&g, &x, &w, &dy, n, &mut ws, cols, grads.0, grads.1, grads.2).unwrap();
        let plane = g.padded_plane();
        let ld_p = n * plane + 3 * g.padded_w() + 3;
        let ld_dy = n * plane + g.max_shift();
        let chunk = ws.len() - g.c_in * ld_p - g.c_out * ld_dy - 2 * g.weight_len();
        let (mut wdw, mut wdb) = (dw0.clone(), vec![0.25f32; g.c_out]);
        assert!(run(&g, n, (&x, &dy), chunk, (&mut wdw, &mut wdb)));
        assert_eq!(dw, wdw);
        assert_eq!(db, wdb);
        // and not the direct loops' (whose sums run in another order)
        let mut ddw = dw0.clone();
        let grads = (None, Some(&mut ddw[..]), None);
        backward(
            Path::Loops,
            &g,
            &x,
            &w,
            &dy,
            n,
            &mut ws,
            cols,
            grads,
            Dx::Add,
        )
        .unwrap();
        assert_ne!(dw, ddw);
    }

    #[test]
    fn weight_gradient_equals_central_differences() {
        // L(W) = Σ r·conv2d(x, W) with fixed r: dL/dW is the backward pass's dweight for
        // dy = r (through the public conv2d_backward, which takes Winograd here: the test
        // above). L is linear in W, so the central difference is exact but for the
        // roundings of the f32 outputs (summed in f64 here)
        if V4::try_new().is_none() {
            eprintln!("no AVX-512: nothing to test");
            return;
        }
        let (g, n) = (Conv2dGeom::new(8, 4, 6, 16, 3, 3, 1, 1).unwrap(), 2);
        let x: Vec<f32> = random_vec(41, n * g.input_len(), -1.0, 1.0);
        let w: Vec<f32> = random_vec(42, g.weight_len(), -1.0, 1.0);
        let r: Vec<f32> = random_vec(43, n * g.output_len(), -1.0, 1.0);
        let mut ws = vec![0.0f32; g.workspace_len(n)];
        let mut loss = |w: &[f32]| -> f64 {
            let mut y = vec![f32::NAN; r.len()];
            crate::ops::conv2d(&g, &x, w, None, n, &mut ws, &mut y).unwrap();
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
        let cols = Conv2dCols::Recompute;
        conv2d_backward(&g, &x, &w, &r, n, &mut ws, cols, None, Some(&mut dw), None).unwrap();
        assert!(dw.iter().any(|&d| d.abs() > 0.5));
        for (e, (&d, &num)) in dw.iter().zip(&numeric).enumerate() {
            assert!(
                (f64::from(d) - num).abs() < 1e-3,
                "[{e}]: {d} against {num}"
            );
        }
        // Winograd ran: its result, bit for bit, with the scratch conv2d_backward passes
        let mut wdw = vec![0.0f32; w.len()];
        let mut wdb = vec![0.0f32; g.c_out];
        let plane = g.padded_plane();
        let (ld_p, ld_dy) = (n * plane + 3 * g.padded_w() + 3, n * plane + g.max_shift());
        let chunk = ws.len() - g.c_in * ld_p - g.c_out * ld_dy - 2 * g.weight_len();
        assert!(run(&g, n, (&x, &r), chunk, (&mut wdw, &mut wdb)));
        assert_eq!(dw, wdw);
    }
}
