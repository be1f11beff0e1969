//! The `f32` heads of [`super::mha_attention`] and [`super::mha_attention_backward`] in
//! AVX-512, with small-matrix products of their own instead of [`crate::blas::gemm`] calls
//! (at `t = 64`, `dh = 32` those are too small for a general GEMM's packing to pay).
//!
//! Every product is `C (+)= α·A·B` over tiles of `R` rows of `C` (6, then 4, 2, 1) by up to
//! four registers of columns (64 `f32`): each `k` loads the tile's columns of row `k` of `B`
//! and broadcasts `R` elements of `A`, which is read either by rows or transposed (`Aᵀ`
//! without a copy: the broadcasts of one `k` are then contiguous). Column tails are masked
//! loads and stores, so no operand is padded. `B` is read in place (`v`, `k`, `q`, `dout`
//! with their row strides in the packed buffers) except for `kᵀ` and `vᵀ` (`[dh, t]`),
//! transposed once per head into the scratch's `8·t·dh` part.
//!
//! Under the causal mask every tile stops at its last row's diagonal: the score tiles at
//! column `r0 + R`, `P·v` and `dS·k` at key `r0 + R`, `Pᵀ·dout` and `dSᵀ·q` start at query
//! `r0`. The entries skipped are those the mask sets to exactly 0, which the score rows
//! store as 0 too (whole rows of `t`), so nothing read is left unwritten.

use pulp::x86::V4;
use pulp::{f32x16, Simd};

/// `f32` lanes in one AVX-512 register.
const L: usize = 16;

/// How a tile's sums reach `C`: `C = α·sums` or `C += α·sums`.
#[derive(Clone, Copy)]
enum Out {
    Set(f32),
    Add(f32),
}

/// A left operand: element `(r, k)` at `data[r·ld + k]`, or with `TRANS` at `data[k·ld + r]`.
#[derive(Clone, Copy)]
struct Lhs<'a> {
    data: &'a [f32],
    ld: usize,
}

/// A right operand: row `k` at `data[k·ld..]`.
#[derive(Clone, Copy)]
struct Rhs<'a> {
    data: &'a [f32],
    ld: usize,
}

/// `e^x` in every lane, in `f32`: `2^n · p(r)` with `x = n·ln 2 + r`, `|r| <= ln 2 / 2`,
/// and `p` the Taylor polynomial of `e^r` to degree 7 (truncation below 6e-9, so within an
/// ulp or two of the exact value). Lanes below -87 give `e^-87` (2e-38), which no softmax
/// tells from a smaller value; NaN stays NaN. The kernels only pass `x <= ~0`.
#[inline(always)]
fn exp16(simd: V4, x: f32x16) -> f32x16 {
    const MAGIC: f32 = 12_582_912.0; // 1.5·2^23: adding it rounds to an integer
                                     // ln 2 = LN2_HI + LN2_LO, LN2_HI with 9 significant bits so that n·LN2_HI is exact
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    let splat = |v: f32| simd.splat_f32s(v);
    // max(-87, x): the second operand when either is NaN, so NaN passes
    let x = simd.max_f32s(splat(-87.0), x);
    let t = simd.mul_add_f32s(x, splat(core::f32::consts::LOG2_E), splat(MAGIC));
    let nf = simd.sub_f32s(t, splat(MAGIC));
    let r = simd.mul_add_f32s(nf, splat(-LN2_HI), x);
    let r = simd.mul_add_f32s(nf, splat(-LN2_LO), r);
    let mut p = splat(1.0 / 5040.0);
    for c in [720.0, 120.0, 24.0, 6.0, 2.0, 1.0, 1.0] {
        p = simd.mul_add_f32s(p, r, splat(1.0 / c));
    }
    // n in the low bits of t; 2^n = (n + 127) << 23
    let n = simd.sub_u32s(pulp::cast(t), pulp::cast(splat(MAGIC)));
    let two_n = simd.shl_const_u32x16::<23>(simd.add_u32s(n, simd.splat_u32s(127)));
    simd.mul_f32s(p, pulp::cast(two_n))
}

/// The lanes below `n` (at most `L`).
#[inline(always)]
fn lanes_below(simd: V4, n: usize) -> pulp::b16 {
    const IOTA: [u32; L] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15];
    simd.less_than_u32s(pulp::cast(IOTA), simd.splat_u32s(n as u32))
}

/// Register `j` of the first `n` elements of `row`, the lanes past `n` set to `fill`: a
/// whole load when the row has the register's 16 elements (they may hold anything past `n`),
/// a masked copy at the row's end.
#[inline(always)]
fn load_live(simd: V4, row: &[f32], n: usize, j: usize, fill: f32) -> f32x16 {
    let lo = j * L;
    let x = if lo + L <= row.len() {
        load(&row[lo..])
    } else {
        load_part(&row[lo..n])
    };
    if lo + L <= n {
        x
    } else {
        simd.select_f32s(lanes_below(simd, n - lo), x, simd.splat_f32s(fill))
    }
}

/// Stores register `j` of `row` (the lanes past the row's end dropped).
#[inline(always)]
fn store_reg(row: &mut [f32], j: usize, v: f32x16) {
    let lo = j * L;
    if lo + L <= row.len() {
        let dst: &mut [f32; L] = (&mut row[lo..lo + L]).try_into().unwrap();
        *dst = pulp::cast(v);
    } else {
        store_part(v, &mut row[lo..]);
    }
}

/// The softmax of the first `n` (at least 1) elements of `row` in place, the rest set to 0;
/// returns the log-sum-exp of those `n`. A NaN among the `n` makes the whole row NaN, and
/// with it the masked lanes of its last live register (0 · NaN); the row's output is NaN
/// either way. Rows of up to four registers (`t ≤ 64`) go through [`softmax_regs`].
#[inline(always)]
fn softmax_row(simd: V4, row: &mut [f32], n: usize) -> f32 {
    if row.len() <= 4 * L {
        return match n.div_ceil(L) {
            1 => softmax_regs::<1>(simd, row, n),
            2 => softmax_regs::<2>(simd, row, n),
            3 => softmax_regs::<3>(simd, row, n),
            _ => softmax_regs::<4>(simd, row, n),
        };
    }
    softmax_loop(simd, row, n)
}

/// [`softmax_row`] for rows of any length: three passes over the row in memory.
#[inline(always)]
fn softmax_loop(simd: V4, row: &mut [f32], n: usize) -> f32 {
    let regs = n.div_ceil(L);
    // NaNs are skipped here (max returns its second operand then) and propagate through e^x
    let mut mx = simd.splat_f32s(f32::NEG_INFINITY);
    for j in 0..regs {
        mx = simd.max_f32s(load_live(simd, row, n, j, f32::NEG_INFINITY), mx);
    }
    let m = simd.reduce_max_f32s(mx);
    let ms = simd.splat_f32s(m);
    let zero = simd.splat_f32s(0.0);
    let mut sum = zero;
    for j in 0..regs {
        let x = load_live(simd, row, n, j, f32::NEG_INFINITY);
        let e = exp16(simd, simd.sub_f32s(x, ms));
        // e^-inf: the masked lanes, 0 (exp16 clamps, so select them out)
        let e = if (j + 1) * L <= n {
            e
        } else {
            simd.select_f32s(lanes_below(simd, n - j * L), e, zero)
        };
        sum = simd.add_f32s(sum, e);
        store_reg(row, j, e);
    }
    let total = simd.reduce_sum_f32s(sum);
    let inv = simd.splat_f32s(1.0 / total);
    for j in 0..regs {
        let x = load_live(simd, row, n, j, 0.0);
        store_reg(row, j, simd.mul_f32s(x, inv));
    }
    let end = (regs * L).min(row.len());
    row[end..].fill(0.0);
    m + crate::Float::ln(total)
}

/// [`softmax_row`] with the row's `R` live registers (`R = ⌈n/16⌉`, `row` at most 64
/// elements) held in registers across the three steps instead of stored and loaded again
/// between them, and the masked registers past them stored as zeros instead of by a
/// `fill` (a call to `memset` per row). The same operations in the same order: the same
/// bits.
#[inline(always)]
fn softmax_regs<const R: usize>(simd: V4, row: &mut [f32], n: usize) -> f32 {
    let mut x = [simd.splat_f32s(f32::NEG_INFINITY); R];
    for (j, r) in x.iter_mut().enumerate() {
        *r = load_live(simd, row, n, j, f32::NEG_INFINITY);
    }
    let mut mx = simd.splat_f32s(f32::NEG_INFINITY);
    for &r in &x {
        mx = simd.max_f32s(r, mx);
    }
    let m = simd.reduce_max_f32s(mx);
    let ms = simd.splat_f32s(m);
    let zero = simd.splat_f32s(0.0);
    let mut sum = zero;
    for (j, r) in x.iter_mut().enumerate() {
        let e = exp16(simd, simd.sub_f32s(*r, ms));
        *r = if (j + 1) * L <= n {
            e
        } else {
            simd.select_f32s(lanes_below(simd, n - j * L), e, zero)
        };
        sum = simd.add_f32s(sum, *r);
    }
    let total = simd.reduce_sum_f32s(sum);
    let inv = simd.splat_f32s(1.0 / total);
    for (j, &e) in x.iter().enumerate() {
        store_reg(row, j, simd.mul_f32s(e, inv));
    }
    zero_regs(simd, row, R);
    m + crate::Float::ln(total)
}

/// Registers `from..` of `row` set to 0, by whole stores (a masked one at a partial end).
#[inline(always)]
fn zero_regs(simd: V4, row: &mut [f32], from: usize) {
    for j in from..row.len().div_ceil(L) {
        store_reg(row, j, simd.splat_f32s(0.0));
    }
}

/// `e^(x - l)` for the first `n` elements of `row` in place, the rest set to 0.
#[inline(always)]
fn prob_row(simd: V4, row: &mut [f32], n: usize, l: f32) {
    let regs = n.div_ceil(L);
    let ls = simd.splat_f32s(l);
    let zero = simd.splat_f32s(0.0);
    for j in 0..regs {
        let e = exp16(simd, simd.sub_f32s(load_live(simd, row, n, j, 0.0), ls));
        let e = if (j + 1) * L <= n {
            e
        } else {
            simd.select_f32s(lanes_below(simd, n - j * L), e, zero)
        };
        store_reg(row, j, e);
    }
    zero_regs(simd, row, regs);
}

/// `Σ x_i y_i` over two rows of the same length.
#[inline(always)]
fn dot(simd: V4, x: &[f32], y: &[f32]) -> f32 {
    let mut acc = simd.splat_f32s(0.0);
    for (a, b) in x.chunks(L).zip(y.chunks(L)) {
        acc = simd.mul_add_f32s(load_part(a), load_part(b), acc);
    }
    simd.reduce_sum_f32s(acc)
}

/// One register from `x` (`L` elements).
#[inline(always)]
fn load(x: &[f32]) -> f32x16 {
    pulp::cast(*<&[f32; L]>::try_from(&x[..L]).unwrap())
}

/// One register from the up to `L` elements of `x`, the lanes past them 0.
#[inline(always)]
fn load_part(x: &[f32]) -> f32x16 {
    if x.len() >= L {
        return load(x);
    }
    let mut buf = [0.0f32; L];
    buf[..x.len()].copy_from_slice(x);
    pulp::cast(buf)
}

/// Stores the first `y.len()` (at most `L`) lanes of `v` into `y`.
#[inline(always)]
fn store_part(v: f32x16, y: &mut [f32]) {
    let v: [f32; L] = pulp::cast(v);
    let n = y.len();
    y.copy_from_slice(&v[..n]);
}

/// `width` (at most `NC·L`) columns from `c0` of row `k` of `b`, as `NC` registers; the lanes
/// past `width` are 0.
#[inline(always)]
fn load_row<const NC: usize, const FULL: bool>(
    simd: V4,
    b: Rhs,
    k: usize,
    c0: usize,
    width: usize,
) -> [f32x16; NC] {
    let mut regs = [simd.splat_f32s(0.0); NC];
    if FULL {
        let row = &b.data[k * b.ld + c0..][..NC * L];
        for (j, r) in regs.iter_mut().enumerate() {
            *r = load(&row[j * L..]);
        }
    } else {
        let row = &b.data[k * b.ld + c0..][..width];
        for (j, r) in regs.iter_mut().enumerate() {
            let lo = (j * L).min(width);
            let part = &row[lo..];
            *r = if part.len() >= L {
                load(part)
            } else {
                load_part(part)
            };
        }
    }
    regs
}

/// The sums of one tile: rows `r0..r0 + R` of `A` times columns `c0..c0 + width` of `B`,
/// over `k0..k1`.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn sums<const R: usize, const NC: usize, const TRANS: bool, const FULL: bool>(
    simd: V4,
    a: Lhs,
    r0: usize,
    b: Rhs,
    c0: usize,
    width: usize,
    k0: usize,
    k1: usize,
) -> [[f32x16; NC]; R] {
    let mut acc = [[simd.splat_f32s(0.0); NC]; R];
    if TRANS {
        for k in k0..k1 {
            let bk = load_row::<NC, FULL>(simd, b, k, c0, width);
            let ak = &a.data[k * a.ld + r0..][..R];
            for (acc, &x) in acc.iter_mut().zip(ak) {
                let x = simd.splat_f32s(x);
                for (s, &y) in acc.iter_mut().zip(&bk) {
                    *s = simd.mul_add_f32s(x, y, *s);
                }
            }
        }
    } else {
        let mut rows: [&[f32]; R] = [&[]; R];
        for (r, row) in rows.iter_mut().enumerate() {
            *row = &a.data[(r0 + r) * a.ld..][..k1];
        }
        for k in k0..k1 {
            let bk = load_row::<NC, FULL>(simd, b, k, c0, width);
            for (acc, row) in acc.iter_mut().zip(&rows) {
                let x = simd.splat_f32s(row[k]);
                for (s, &y) in acc.iter_mut().zip(&bk) {
                    *s = simd.mul_add_f32s(x, y, *s);
                }
            }
        }
    }
    acc
}

/// One tile of `C`, rows `r0..r0 + R`, columns `c0..c0 + width` (row stride `ldc`).
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn tile<const R: usize, const NC: usize, const TRANS: bool>(
    simd: V4,
    a: Lhs,
    r0: usize,
    b: Rhs,
    c0: usize,
    width: usize,
    (k0, k1): (usize, usize),
    c: &mut [f32],
    ldc: usize,
    out: Out,
) {
    let acc = if width == NC * L {
        sums::<R, NC, TRANS, true>(simd, a, r0, b, c0, width, k0, k1)
    } else {
        sums::<R, NC, TRANS, false>(simd, a, r0, b, c0, width, k0, k1)
    };
    for (r, acc) in acc.iter().enumerate() {
        let row = &mut c[(r0 + r) * ldc + c0..][..width];
        for (j, &s) in acc.iter().enumerate() {
            let lo = (j * L).min(width);
            let dst = &mut row[lo..(lo + L).min(width)];
            if dst.len() == L {
                let v = match out {
                    Out::Set(alpha) => simd.mul_f32s(simd.splat_f32s(alpha), s),
                    Out::Add(alpha) => simd.mul_add_f32s(simd.splat_f32s(alpha), s, load(dst)),
                };
                let v: [f32; L] = pulp::cast(v);
                dst.copy_from_slice(&v);
            } else if !dst.is_empty() {
                let v = match out {
                    Out::Set(alpha) => simd.mul_f32s(simd.splat_f32s(alpha), s),
                    Out::Add(alpha) => simd.mul_add_f32s(simd.splat_f32s(alpha), s, load_part(dst)),
                };
                store_part(v, dst);
            }
        }
    }
}

/// The row tile `r0..r0 + R` across its `cols` columns: registers of four, then the rest
/// (at most 64 columns) in four, three, two or one (the last one masked).
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn row_tile<const R: usize, const TRANS: bool>(
    simd: V4,
    a: Lhs,
    r0: usize,
    b: Rhs,
    (cols, k0, k1): (usize, usize, usize),
    c: &mut [f32],
    ldc: usize,
    out: Out,
) {
    let mut c0 = 0;
    while cols - c0 >= 4 * L {
        tile::<R, 4, TRANS>(simd, a, r0, b, c0, 4 * L, (k0, k1), c, ldc, out);
        c0 += 4 * L;
    }
    let rest = cols - c0;
    if rest > 3 * L {
        tile::<R, 4, TRANS>(simd, a, r0, b, c0, rest, (k0, k1), c, ldc, out);
    } else if rest > 2 * L {
        tile::<R, 3, TRANS>(simd, a, r0, b, c0, rest, (k0, k1), c, ldc, out);
    } else if rest > L {
        tile::<R, 2, TRANS>(simd, a, r0, b, c0, rest, (k0, k1), c, ldc, out);
    } else if rest > 0 {
        tile::<R, 1, TRANS>(simd, a, r0, b, c0, rest, (k0, k1), c, ldc, out);
    }
}

/// `C (+)= α·A·B` for the `m` rows of `C`; `span(r0, rows)` gives a row tile's columns and
/// its range of `k` as `(cols, k0, k1)`.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn product<const TRANS: bool>(
    simd: V4,
    a: Lhs,
    b: Rhs,
    c: &mut [f32],
    ldc: usize,
    m: usize,
    span: impl Fn(usize, usize) -> (usize, usize, usize),
    out: Out,
) {
    let mut r0 = 0;
    while r0 + 6 <= m {
        row_tile::<6, TRANS>(simd, a, r0, b, span(r0, 6), c, ldc, out);
        r0 += 6;
    }
    if m - r0 >= 4 {
        row_tile::<4, TRANS>(simd, a, r0, b, span(r0, 4), c, ldc, out);
        r0 += 4;
    }
    if m - r0 >= 2 {
        row_tile::<2, TRANS>(simd, a, r0, b, span(r0, 2), c, ldc, out);
        r0 += 2;
    }
    if m - r0 >= 1 {
        row_tile::<1, TRANS>(simd, a, r0, b, span(r0, 1), c, ldc, out);
    }
}

/// `dst [cols, rows] = srcᵀ` for `src` of `rows` rows of `cols` elements, `ld` apart: whole
/// 16 × 16 blocks in registers ([`transpose16`]), the rows and columns past them one element
/// at a time. Element by element, the strided stores cost about five cycles each at the
/// heads' `64 × 32` (a tenth of the attention's time); the blocks need 16 loads, 64
/// permutes and 16 stores per 256 elements.
#[inline(always)]
fn transpose(simd: V4, src: &[f32], ld: usize, rows: usize, cols: usize, dst: &mut [f32]) {
    let (rb, cb) = (rows / L * L, cols / L * L);
    for j0 in (0..rb).step_by(L) {
        for d0 in (0..cb).step_by(L) {
            let mut block = [simd.splat_f32s(0.0); L];
            for (i, r) in block.iter_mut().enumerate() {
                *r = load(&src[(j0 + i) * ld + d0..]);
            }
            transpose16(simd, &mut block);
            for (d, &v) in block.iter().enumerate() {
                let out: &mut [f32; L] =
                    (&mut dst[(d0 + d) * rows + j0..][..L]).try_into().unwrap();
                *out = pulp::cast(v);
            }
        }
    }
    transpose_scalar(src, ld, (0, rows), (cb, cols), rows, dst);
    transpose_scalar(src, ld, (rb, rows), (0, cb), rows, dst);
}

/// `dst[d·rows + j] = src[j·ld + d]` for `j` in `js`, `d` in `ds`.
#[inline(always)]
fn transpose_scalar(
    src: &[f32],
    ld: usize,
    (j0, j1): (usize, usize),
    (d0, d1): (usize, usize),
    rows: usize,
    dst: &mut [f32],
) {
    for j in j0..j1 {
        for (d, &x) in src[j * ld + d0..j * ld + d1].iter().enumerate() {
            dst[(d0 + d) * rows + j] = x;
        }
    }
}

/// The lane indices of [`transpose16`]'s permutes for `b` = 8, 4, 2, 1: lane `k` of the
/// upper row of a pair takes its own element `k` while `k`'s bit `b` is clear, else element
/// `k - b` of the lower row (`16 +`: the second source); lane `k` of the lower row takes
/// element `k + b` of the upper row while the bit is clear, else its own element `k`.
const PERMUTES: [([u32; L], [u32; L]); 4] = {
    let mut out = [([0u32; L], [0u32; L]); 4];
    let mut s = 0;
    while s < 4 {
        let b = 8 >> s;
        let mut k = 0;
        while k < L {
            if k & b == 0 {
                out[s].0[k] = k as u32;
                out[s].1[k] = (k + b) as u32;
            } else {
                out[s].0[k] = (L + k - b) as u32;
                out[s].1[k] = (L + k) as u32;
            }
            k += 1;
        }
        s += 1;
    }
    out
};

/// The transpose of the 16 × 16 block whose rows are `m`: four rounds that each swap the
/// off-diagonal `b × b` sub-blocks of every `2b × 2b` block (`b` = 8, 4, 2, 1), by two
/// two-source permutes per row pair `(i, i + b)` ([`PERMUTES`]).
#[inline(always)]
fn transpose16(simd: V4, m: &mut [f32x16; L]) {
    for (s, (up, down)) in PERMUTES.iter().enumerate() {
        let b = 8 >> s;
        let (up, down) = (pulp::cast(*up), pulp::cast(*down));
        for i in 0..L {
            if i & b == 0 {
                let (x, y) = (pulp::cast(m[i]), pulp::cast(m[i + b]));
                m[i] = pulp::cast(simd.avx512f._mm512_permutex2var_ps(x, up, y));
                m[i + b] = pulp::cast(simd.avx512f._mm512_permutex2var_ps(x, down, y));
            }
        }
    }
}

/// The shape shared by every head of a call.
#[derive(Clone, Copy)]
pub(super) struct Shape {
    pub t: usize,
    pub c: usize,
    pub heads: usize,
    pub causal: bool,
}

impl Shape {
    fn dh(&self) -> usize {
        self.c / self.heads
    }

    /// The keys query `i` sees.
    #[inline(always)]
    fn visible(&self, i: usize) -> usize {
        if self.causal {
            i + 1
        } else {
            self.t
        }
    }

    /// A score tile's columns, rounded up to whole registers (`k` over the head width `dh`).
    #[inline(always)]
    fn score_span(&self, r0: usize, rows: usize) -> (usize, usize, usize) {
        // whole registers: the columns past the mask are computed but never read
        let cols = self.visible(r0 + rows - 1).next_multiple_of(L);
        (cols.min(self.t), 0, self.dh())
    }

    /// `P·v`, `dS·k`: `dh` columns, keys up to the tile's last row's.
    #[inline(always)]
    fn keys_span(&self, r0: usize, rows: usize) -> (usize, usize, usize) {
        (self.dh(), 0, self.visible(r0 + rows - 1).min(self.t))
    }

    /// `Pᵀ·dout`, `dSᵀ·q` (rows are keys): `dh` columns, the queries that see the tile.
    #[inline(always)]
    fn queries_span(&self, r0: usize, _rows: usize) -> (usize, usize, usize) {
        (self.dh(), if self.causal { r0 } else { 0 }, self.t)
    }

    /// The scratch this module uses: scores, their gradient, `kᵀ` and `vᵀ`
    /// (`2·t·t + 2·t·dh`, within [`super::mha_attention_scratch_len`]).
    fn split<'a>(&self, scratch: &'a mut [f32]) -> [&'a mut [f32]; 4] {
        let (t, dh) = (self.t, self.dh());
        let (p, rest) = scratch.split_at_mut(t * t);
        let (ds, rest) = rest.split_at_mut(t * t);
        let (kt, rest) = rest.split_at_mut(t * dh);
        [p, ds, kt, &mut rest[..t * dh]]
    }
}

/// The forward pass of every head (the caller checked every length).
pub(super) struct Forward<'a> {
    pub s: Shape,
    pub qkv: &'a [f32],
    pub out: &'a mut [f32],
    pub lse: &'a mut [f32],
    pub scratch: &'a mut [f32],
}

impl pulp::WithSimd for Forward<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: Simd>(self, _: S) {
        let Forward {
            s: sh,
            qkv,
            out,
            lse,
            scratch,
        } = self;
        let Some(simd) = V4::try_new() else {
            unreachable!("dispatched without AVX-512")
        };
        let (t, c, dh) = (sh.t, sh.c, sh.dh());
        let scale = 1.0 / crate::Float::sqrt(dh as f32);
        let [p, _, kt, _] = sh.split(scratch);
        for ((x, o), lb) in qkv
            .chunks_exact(t * 3 * c)
            .zip(out.chunks_exact_mut(t * c))
            .zip(lse.chunks_exact_mut(sh.heads * t))
        {
            for (h, l) in lb.chunks_exact_mut(t).enumerate() {
                let col = h * dh;
                transpose(simd, &x[c + col..], 3 * c, t, dh, kt);
                let q = Lhs {
                    data: &x[col..],
                    ld: 3 * c,
                };
                let kt_ = Rhs { data: kt, ld: t };
                let span = |r0, rows| sh.score_span(r0, rows);
                product::<false>(simd, q, kt_, p, t, t, span, Out::Set(scale));
                for (i, (row, l)) in p.chunks_exact_mut(t).zip(l.iter_mut()).enumerate() {
                    *l = softmax_row(simd, row, sh.visible(i).min(t));
                }
                let pm = Lhs { data: p, ld: t };
                let v = Rhs {
                    data: &x[2 * c + col..],
                    ld: 3 * c,
                };
                let span = |r0, rows| sh.keys_span(r0, rows);
                product::<false>(simd, pm, v, &mut o[col..], c, t, span, Out::Set(1.0));
            }
        }
    }
}

/// The backward pass of every head, accumulating into `dqkv`, or with `overwrite` writing
/// it (every element of `dqkv` belongs to one head's `dq`, `dk` or `dv`, and each product
/// writes every row of its part, so nothing is left as it was; the caller checked every
/// length).
pub(super) struct Backward<'a> {
    pub s: Shape,
    pub overwrite: bool,
    pub qkv: &'a [f32],
    pub out: &'a [f32],
    pub lse: &'a [f32],
    pub dout: &'a [f32],
    pub dqkv: &'a mut [f32],
    pub scratch: &'a mut [f32],
}

impl pulp::WithSimd for Backward<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: Simd>(self, _: S) {
        let Backward {
            s: sh,
            overwrite,
            qkv,
            out,
            lse,
            dout,
            dqkv,
            scratch,
        } = self;
        let Some(simd) = V4::try_new() else {
            unreachable!("dispatched without AVX-512")
        };
        let (t, c, dh) = (sh.t, sh.c, sh.dh());
        let scale = 1.0 / crate::Float::sqrt(dh as f32);
        let put = |alpha| {
            if overwrite {
                Out::Set(alpha)
            } else {
                Out::Add(alpha)
            }
        };
        let [p, ds, kt, vt] = sh.split(scratch);
        for ((((x, o), go), dx), lb) in qkv
            .chunks_exact(t * 3 * c)
            .zip(out.chunks_exact(t * c))
            .zip(dout.chunks_exact(t * c))
            .zip(dqkv.chunks_exact_mut(t * 3 * c))
            .zip(lse.chunks_exact(sh.heads * t))
        {
            for (h, l) in lb.chunks_exact(t).enumerate() {
                let col = h * dh;
                transpose(simd, &x[c + col..], 3 * c, t, dh, kt);
                transpose(simd, &x[2 * c + col..], 3 * c, t, dh, vt);
                let lhs = |data, ld| Lhs { data, ld };
                let rhs = |data, ld| Rhs { data, ld };
                let score_span = |r0, rows| sh.score_span(r0, rows);
                // P = e^(scale·q·kᵀ - lse), masked entries 0
                let q = &x[col..];
                product::<false>(
                    simd,
                    lhs(q, 3 * c),
                    rhs(kt, t),
                    p,
                    t,
                    t,
                    score_span,
                    Out::Set(scale),
                );
                for (i, (row, &l)) in p.chunks_exact_mut(t).zip(l).enumerate() {
                    prob_row(simd, row, sh.visible(i).min(t), l);
                }
                // dP = dout·vᵀ, then dS = P ∘ (dP - D) in place
                let go = &go[col..];
                product::<false>(
                    simd,
                    lhs(go, c),
                    rhs(vt, t),
                    ds,
                    t,
                    t,
                    score_span,
                    Out::Set(1.0),
                );
                let o = &o[col..];
                for (i, (dsrow, prow)) in ds.chunks_exact_mut(t).zip(p.chunks_exact(t)).enumerate()
                {
                    let oi = &o[i * c..][..dh];
                    let gi = &go[i * c..][..dh];
                    let di = dot(simd, oi, gi);
                    let (seen, masked) = dsrow.split_at_mut(sh.visible(i).min(t));
                    for (x, &pj) in seen.iter_mut().zip(prow) {
                        *x = pj * (*x - di);
                    }
                    masked.fill(0.0);
                }
                let keys = |r0, rows| sh.keys_span(r0, rows);
                let queries = |r0, rows| sh.queries_span(r0, rows);
                // dv (+)= Pᵀ·dout
                let dv = &mut dx[2 * c + col..];
                product::<true>(simd, lhs(p, t), rhs(go, c), dv, 3 * c, t, queries, put(1.0));
                // dq (+)= scale·dS·k
                let k = &x[c + col..];
                product::<false>(
                    simd,
                    lhs(ds, t),
                    rhs(k, 3 * c),
                    &mut dx[col..],
                    3 * c,
                    t,
                    keys,
                    put(scale),
                );
                // dk (+)= scale·dSᵀ·q
                let dk = &mut dx[c + col..];
                product::<true>(
                    simd,
                    lhs(ds, t),
                    rhs(q, 3 * c),
                    dk,
                    3 * c,
                    t,
                    queries,
                    put(scale),
                );
            }
        }
    }
}

/// Runs `op` when the CPU has AVX-512; `false` (nothing done) otherwise.
pub(super) fn run<Op: pulp::WithSimd<Output = ()>>(op: Op) -> bool {
    match V4::try_new() {
        Some(simd) => {
            Simd::vectorize(simd, op);
            true
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The softmax with the row held in registers against the three passes over memory, bit
    /// for bit (row and log-sum-exp): every visible length `n` of rows of 1-64 elements,
    /// rows of random scores, of equal scores, with large ones (`±80`, where `e^x` alone
    /// would overflow), a NaN, and scores spread too far for `e^x` to tell most of them from 0;
    /// the entries past `n` hold scores too, which both must ignore.
    #[test]
    fn softmax_in_registers_matches_the_passes_over_memory() {
        let Some(simd) = V4::try_new() else {
            return; // no AVX-512 here: nothing to compare
        };
        let random = crate::testing::random_vec::<f32>(5, 64, -6.0, 6.0);
        let rows: [Vec<f32>; 5] = [
            random.clone(),
            vec![0.75; 64],
            random.iter().map(|&x| 80.0 * x.signum()).collect(),
            (0..64)
                .map(|i| if i == 5 { f32::NAN } else { random[i] })
                .collect(),
            (0..64).map(|i| (i as f32) * 1e4).collect(),
        ];
        let mut compared = 0;
        for base in &rows {
            for len in 1..=64 {
                for n in 1..=len {
                    let mut want = base[..len].to_vec();
                    let mut got = want.clone();
                    let lw = softmax_loop(simd, &mut want, n);
                    let lg = softmax_row(simd, &mut got, n);
                    let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                    assert_eq!(bits(&got), bits(&want), "len {len}, n {n}");
                    assert_eq!(lg.to_bits(), lw.to_bits(), "len {len}, n {n}");
                    // a NaN among the visible scores makes the sum NaN, and with it the
                    // masked lanes of the last live register (0 · NaN), in both
                    if !lw.is_nan() {
                        assert!(got[n..].iter().all(|&x| x == 0.0), "len {len}, n {n}");
                    }
                    compared += 1;
                }
            }
        }
        assert_eq!(compared, 5 * 64 * 65 / 2);
    }

    /// The register transpose against the element-by-element one, at the heads' shape and
    /// at shapes with partial blocks in either direction, reading a strided source.
    #[test]
    fn transpose_matches_element_by_element() {
        let Some(simd) = V4::try_new() else {
            return; // no AVX-512 here: nothing to compare
        };
        for (rows, cols, ld) in [
            (64, 32, 384),
            (16, 16, 16),
            (37, 21, 50),
            (5, 40, 40),
            (33, 3, 7),
        ] {
            let src: Vec<f32> = (0..rows * ld).map(|i| i as f32 * 0.5 - 3.0).collect();
            let mut got = vec![f32::NAN; rows * cols];
            transpose(simd, &src, ld, rows, cols, &mut got);
            let mut want = vec![f32::NAN; rows * cols];
            transpose_scalar(&src, ld, (0, rows), (0, cols), rows, &mut want);
            for d in 0..cols {
                for j in 0..rows {
                    assert_eq!(want[d * rows + j], src[j * ld + d]);
                }
            }
            assert_eq!(got, want, "rows {rows}, cols {cols}, ld {ld}");
        }
    }
}
