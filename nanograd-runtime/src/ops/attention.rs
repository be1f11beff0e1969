//! Fused scaled dot-product attention, as PyTorch's `F.scaled_dot_product_attention(q, k, v,
//! is_causal=..)`, per group (a batch entry, or a batch entry and a head):
//!
//! ```text
//! S = q·kᵀ / √d                      q [tq, d], k [tk, d], S [tq, tk]
//! S_ij = -∞ where j > i              (causal only: query i sees keys j <= i, upper-left aligned)
//! lse_i = ln Σ_j e^(S_ij),   P_ij = e^(S_ij - lse_i),   out = P·v      v [tk, dv], out [tq, dv]
//! ```
//!
//! Each row's softmax subtracts the row maximum before exponentiating, so no exponential
//! overflows. Under the causal mask no row is empty: key 0 is visible to every query, so
//! `lse` is always finite.
//!
//! Derivative, with `dout` the upstream gradient and `Dᵢ = Σ_c dout_ic · out_ic`
//! (which equals `Σ_j P_ij dP_ij`):
//!
//! ```text
//! dv += Pᵀ·dout,   dP = dout·vᵀ,   dS = P ∘ (dP - D),   dq += dS·k / √d,   dk += dSᵀ·q / √d
//! ```
//!
//! The kernels never keep the `[tq, tk]` probabilities beyond one group: the forward pass
//! keeps only `lse`, and the backward pass recomputes `P = e^(q·kᵀ/√d - lse)` with one product.
//! All four products per group are [`gemm`] calls; the backward ones accumulate into the
//! gradients directly (`beta = 1`). Under the causal mask the rows go in blocks whose products
//! stop at the block's last visible column, and masked entries skip their exponentials.
//!
//! [`mha_attention`] is the same computation on the packed in-projection of
//! `nn.MultiheadAttention`: the heads are read and written in place through the leading
//! dimensions of the products, with no copies.
//!
//! For `f32` on a CPU with AVX-512, [`mha_attention`] and [`mha_attention_backward`] run
//! instead the heads of the `heads` submodule: the same method with small-matrix products
//! of its own (register tiles, `kᵀ` and `vᵀ` transposed once per head into the scratch, the
//! causal tiles stopping at their diagonal) and the softmax rows and `e^x` in 16-lane
//! registers, computed in `f32` (within an ulp or two of the `f64`-evaluated `e^x` above).
//! At `t = 64`, `dh = 32` the general GEMM's packing and call overhead dominate such
//! products. `f64` and the contiguous [`attention`] keep the [`gemm`] path.

use crate::blas::{gemm, Trans};
use crate::float::{as_f32, as_f32_mut};
use crate::simd::{vectorize, Kernel};
use crate::{check_len, invalid, Float, Result};

#[cfg(target_arch = "x86_64")]
mod heads;

/// `x` as `f32` elements when `T` is `f32` and the CPU runs the AVX-512 heads
/// ([`heads`]), `None` otherwise. Off `x86_64` there are no such heads, and no caller.
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
fn f32_heads<T: Float>(x: &[T]) -> Option<&[f32]> {
    if !f32_heads_available::<T>() {
        return None;
    }
    as_f32(x)
}

/// [`f32_heads`] for a mutable slice.
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
fn f32_heads_mut<T: Float>(x: &mut [T]) -> Option<&mut [f32]> {
    if !f32_heads_available::<T>() {
        return None;
    }
    as_f32_mut(x)
}

/// Whether `T` is `f32` and this CPU runs AVX-512.
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
fn f32_heads_available<T: Float>() -> bool {
    #[cfg(target_arch = "x86_64")]
    return core::any::TypeId::of::<T>() == core::any::TypeId::of::<f32>()
        && pulp::x86::V4::try_new().is_some();
    #[cfg(not(target_arch = "x86_64"))]
    return false;
}

/// The scratch elements [`attention`] and [`attention_backward`] need: `2·tq·tk + tq`
/// (the probabilities and their gradient for one group, and one value per query row).
/// Saturates instead of overflowing; such a size is then rejected by the kernels.
pub const fn attention_scratch_len(tq: usize, tk: usize, d: usize, dv: usize) -> usize {
    let _ = (d, dv);
    2usize
        .saturating_mul(tq)
        .saturating_mul(tk)
        .saturating_add(tq)
}

/// The scratch elements [`mha_attention`] and [`mha_attention_backward`] need:
/// `2·t·t + t + 8·t·(c/heads)`. Saturates instead of overflowing; `heads = 0` counts as
/// `c/heads = 0` (the kernels reject it).
pub const fn mha_attention_scratch_len(t: usize, c: usize, heads: usize) -> usize {
    let dh = match c.checked_div(heads) {
        Some(dh) => dh,
        None => 0,
    };
    attention_scratch_len(t, t, dh, dh).saturating_add(8usize.saturating_mul(t).saturating_mul(dh))
}

/// The product of `dims`, or an error when it overflows `usize`.
fn numel(op: &'static str, dims: &[usize]) -> Result<usize> {
    dims.iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| invalid(op, format!("{dims:?} has more elements than fit in memory")))
}

/// An error unless every named size is positive.
fn check_positive(op: &'static str, sizes: &[(&str, usize)]) -> Result<()> {
    match sizes.iter().find(|(_, v)| *v == 0) {
        Some((name, _)) => Err(invalid(op, format!("`{name}` must be positive, got 0"))),
        None => Ok(()),
    }
}

/// An error unless `scratch` holds at least `need` elements.
fn check_scratch(op: &'static str, need: usize, got: usize) -> Result<()> {
    if got < need {
        return Err(invalid(
            op,
            format!("`scratch` has {got} elements, needs at least {need}"),
        ));
    }
    Ok(())
}

/// The shape of one group's attention.
#[derive(Clone, Copy)]
struct Group {
    tq: usize,
    tk: usize,
    d: usize,
    dv: usize,
    causal: bool,
}

impl Group {
    /// `1/√d`.
    fn scale<T: Float>(&self) -> T {
        T::one() / T::from_usize(self.d).sqrt()
    }

    /// The number of keys query row `i` sees.
    #[inline]
    fn visible(&self, i: usize) -> usize {
        if self.causal {
            (i + 1).min(self.tk)
        } else {
            self.tk
        }
    }

    /// The row blocks the products run over, as `(first row, rows, columns)`: one block of
    /// every row and column, or under the causal mask blocks of [`CAUSAL_ROWS`] rows, each
    /// with only the columns its last row sees (those above are never computed).
    fn blocks(&self) -> impl Iterator<Item = (usize, usize, usize)> {
        let step = if self.causal { CAUSAL_ROWS } else { self.tq };
        let g = *self;
        (0..g.tq).step_by(step).map(move |r0| {
            let rows = step.min(g.tq - r0);
            (r0, rows, g.visible(r0 + rows - 1))
        })
    }
}

/// The rows per block of a causal group: the products of a block skip the columns above its
/// last row's diagonal (for t = 64, a quarter of the work), at the cost of more, smaller calls.
const CAUSAL_ROWS: usize = 32;

/// A read-only matrix operand: its first element onwards, and the distance between rows.
#[derive(Clone, Copy)]
struct Mat<'a, T> {
    data: &'a [T],
    ld: usize,
}

impl<'a, T> Mat<'a, T> {
    /// The operand starting at `data[at]`, with rows `ld` apart.
    fn at(data: &'a [T], at: usize, ld: usize) -> Self {
        Mat {
            data: &data[at..],
            ld,
        }
    }
}

/// Where the backward pass of one group accumulates `dq`, `dk` and `dv` (index 0, 1, 2).
enum Grads<'a, T> {
    /// Separate buffers, each optional, already offset to the group, with their row strides.
    Split([Option<&'a mut [T]>; 3], [usize; 3]),
    /// One packed buffer (`dqkv`): the offsets of the three blocks and the common row stride.
    Packed(&'a mut [T], [usize; 3], usize),
}

impl<T> Grads<'_, T> {
    fn wants(&self, which: usize) -> bool {
        match self {
            Grads::Split(bufs, _) => bufs[which].is_some(),
            Grads::Packed(..) => true,
        }
    }

    fn get(&mut self, which: usize) -> Option<(&mut [T], usize)> {
        match self {
            Grads::Split(bufs, ld) => bufs[which].as_deref_mut().map(|g| (g, ld[which])),
            Grads::Packed(buf, at, ld) => Some((&mut buf[at[which]..], *ld)),
        }
    }
}

/// Independent accumulators in the row reductions (one AVX-512 register of `f32`).
const LANES: usize = 16;

/// `e^x`, written so that a loop of it vectorises (no call into the C library): computed in
/// `f64` as `2^n · p(r)` with `x = n·ln 2 + r`, `|r| <= ln 2 / 2`, and `p` the Taylor
/// polynomial of `e^r` to degree 13 for `f64` (error below 1e-17 before rounding) or 7 for
/// `f32` (below 6e-9). Arguments below -708 give `e^-708` (3e-308) instead of a smaller
/// value, which no softmax can tell from it; the kernels only pass `x <= ~0`. NaN stays NaN.
#[inline(always)]
fn exp<T: Float>(x: T) -> T {
    const MAGIC: f64 = 6_755_399_441_055_744.0; // 1.5·2^52: adding it rounds to an integer
                                                // ln 2 = LN2_HI + LN2_LO, with the low 32 bits of LN2_HI zero so that n·LN2_HI is exact
    const LN2_HI: f64 = f64::from_bits(0x3fe6_2e42_fee0_0000);
    const LN2_LO: f64 = f64::from_bits(0x3dea_39ef_3579_3c76);
    let x = x.to_f64();
    let x = if x < -708.0 { -708.0 } else { x };
    let t = x * core::f64::consts::LOG2_E + MAGIC;
    let nf = t - MAGIC;
    let n = (t.to_bits() as i64).wrapping_sub(MAGIC.to_bits() as i64);
    let r = (x - nf * LN2_HI) - nf * LN2_LO;
    let single = T::EPSILON.to_f64() > 1e-10;
    let mut p = if single {
        1.0 / 5040.0
    } else {
        1.0 / 6_227_020_800.0
    };
    if !single {
        // 1/12! .. 1/7!
        for c in [
            479_001_600.0,
            39_916_800.0,
            3_628_800.0,
            362_880.0,
            40_320.0,
            5040.0,
        ] {
            p = p * r + 1.0 / c;
        }
    }
    for c in [720.0, 120.0, 24.0, 6.0, 2.0, 1.0, 1.0] {
        p = p * r + 1.0 / c;
    }
    let two_n = f64::from_bits((n.wrapping_add(1023) as u64) << 52);
    T::from_f64(p * two_n)
}

/// The maximum of a row (`-inf` when empty; NaNs are skipped here and propagate through the
/// exponentials).
#[inline(always)]
fn row_max<T: Float>(row: &[T]) -> T {
    let mut acc = [T::NEG_INFINITY; LANES];
    let chunks = row.chunks_exact(LANES);
    let tail = chunks.remainder();
    for ch in chunks {
        for (a, &v) in acc.iter_mut().zip(ch) {
            *a = if v > *a { v } else { *a };
        }
    }
    acc.iter()
        .chain(tail)
        .fold(T::NEG_INFINITY, |m, &v| if v > m { v } else { m })
}

/// The sum of a row, with [`LANES`] independent accumulators.
#[inline(always)]
fn row_sum<T: Float>(row: &[T]) -> T {
    let mut acc = [T::zero(); LANES];
    let chunks = row.chunks_exact(LANES);
    let tail: T = chunks.remainder().iter().copied().sum();
    for ch in chunks {
        for (a, &v) in acc.iter_mut().zip(ch) {
            *a += v;
        }
    }
    acc.iter().copied().sum::<T>() + tail
}

/// The forward row softmax of one group, in place on the scores `s` (`[tq, tk]`): masked
/// entries become 0, and `lse` receives each row's log-sum-exp.
struct SoftmaxRows<'a, T> {
    g: Group,
    /// The first row of the block, and the columns computed.
    row0: usize,
    cols: usize,
    s: &'a mut [T],
    lse: &'a mut [T],
}

impl<T: Float> Kernel for SoftmaxRows<'_, T> {
    type Output = ();
    #[inline(always)]
    fn run(self) {
        let g = self.g;
        let rows = self.s.chunks_mut(g.tk).zip(self.lse).enumerate();
        for (i, (row, l)) in rows {
            let (seen, masked) = row[..self.cols].split_at_mut(g.visible(self.row0 + i));
            let m = row_max(seen);
            for x in seen.iter_mut() {
                *x = exp(*x - m);
            }
            let sum = row_sum(seen);
            let inv = T::one() / sum;
            for p in seen.iter_mut() {
                *p *= inv;
            }
            masked.fill(T::zero());
            *l = m + sum.ln();
        }
    }
}

/// The backward pass's probabilities `P = e^(S - lse)` in place on the scores (masked
/// entries 0).
struct ProbRows<'a, T> {
    g: Group,
    /// The first row of the block, and the columns computed.
    row0: usize,
    cols: usize,
    p: &'a mut [T],
    lse: &'a [T],
}

impl<T: Float> Kernel for ProbRows<'_, T> {
    type Output = ();
    #[inline(always)]
    fn run(self) {
        let g = self.g;
        for (i, (row, &l)) in self.p.chunks_mut(g.tk).zip(self.lse).enumerate() {
            let (seen, masked) = row[..self.cols].split_at_mut(g.visible(self.row0 + i));
            for x in seen.iter_mut() {
                *x = exp(*x - l);
            }
            masked.fill(T::zero());
        }
    }
}

/// `dS = P ∘ (dP - D)` in place on `P`, with `D_i = Σ_c dout_ic out_ic`; masked entries stay 0.
struct ScoreGrads<'a, T> {
    g: Group,
    /// The first row of the block.
    row0: usize,
    p: &'a mut [T],
    dp: &'a [T],
    out: Mat<'a, T>,
    dout: Mat<'a, T>,
}

impl<T: Float> Kernel for ScoreGrads<'_, T> {
    type Output = ();
    #[inline(always)]
    fn run(self) {
        let ScoreGrads {
            g,
            row0,
            p,
            dp,
            out,
            dout,
        } = self;
        let rows = p.chunks_mut(g.tk).zip(dp.chunks(g.tk));
        for (i, (prow, dprow)) in rows.enumerate() {
            let o = &out.data[i * out.ld..i * out.ld + g.dv];
            let go = &dout.data[i * dout.ld..i * dout.ld + g.dv];
            let di: T = o.iter().zip(go).map(|(&a, &b)| a * b).sum();
            let n = g.visible(row0 + i);
            for (x, &dpj) in prow[..n].iter_mut().zip(&dprow[..n]) {
                *x *= dpj - di;
            }
        }
    }
}

/// The operand's rows from `r` on.
fn rows_from<T>(m: Mat<T>, r: usize) -> Mat<T> {
    Mat::at(m.data, r * m.ld, m.ld)
}

/// `S = scale·q·kᵀ` for query rows `r0..r0 + rows` and key columns `0..cols`, into the same
/// rows of `s` (`[tq, tk]`, contiguous).
fn scores<T: Float>(g: &Group, block: (usize, usize, usize), q: Mat<T>, k: Mat<T>, s: &mut [T]) {
    let (r0, rows, cols) = block;
    gemm(
        Trans::No,
        Trans::Yes,
        rows,
        cols,
        g.d,
        g.scale(),
        rows_from(q, r0).data,
        q.ld,
        k.data,
        k.ld,
        T::zero(),
        &mut s[r0 * g.tk..],
        g.tk,
    );
}

/// One group's forward pass: `out = softmax(scale·q·kᵀ, masked)·v` and `lse` (`tq` values);
/// `s` is `tq·tk` scratch elements.
#[allow(clippy::too_many_arguments)]
fn forward_group<T: Float>(
    g: &Group,
    q: Mat<T>,
    k: Mat<T>,
    v: Mat<T>,
    out: &mut [T],
    ldo: usize,
    lse: &mut [T],
    s: &mut [T],
) {
    let tk = g.tk;
    for block in g.blocks() {
        let (r0, rows, cols) = block;
        scores(g, block, q, k, s);
        let sb = &mut s[r0 * tk..(r0 + rows) * tk];
        vectorize(SoftmaxRows {
            g: *g,
            row0: r0,
            cols,
            s: &mut *sb,
            lse: &mut lse[r0..r0 + rows],
        });
        // out rows = P·v over the columns computed (P is 0 past each row's diagonal)
        gemm(
            Trans::No,
            Trans::No,
            rows,
            g.dv,
            cols,
            T::one(),
            sb,
            tk,
            v.data,
            v.ld,
            T::zero(),
            &mut out[r0 * ldo..],
            ldo,
        );
    }
}

/// One group's backward pass into `grads`; `p` and `dp` are `tq·tk` scratch elements each.
#[allow(clippy::too_many_arguments)]
fn backward_group<T: Float>(
    g: &Group,
    q: Mat<T>,
    k: Mat<T>,
    v: Mat<T>,
    out: Mat<T>,
    dout: Mat<T>,
    lse: &[T],
    grads: &mut Grads<T>,
    p: &mut [T],
    dp: &mut [T],
) {
    let tk = g.tk;
    let scale: T = g.scale();
    let want_qk = grads.wants(0) || grads.wants(1);
    for block in g.blocks() {
        let (r0, rows, cols) = block;
        let dout_b = rows_from(dout, r0);
        // P = e^(S - lse), recomputed; masked entries are 0
        scores(g, block, q, k, p);
        let pb = &mut p[r0 * tk..(r0 + rows) * tk];
        vectorize(ProbRows {
            g: *g,
            row0: r0,
            cols,
            p: &mut *pb,
            lse: &lse[r0..r0 + rows],
        });
        // dv += Pᵀ·dout
        if let Some((dvg, ld)) = grads.get(2) {
            gemm(
                Trans::Yes,
                Trans::No,
                cols,
                g.dv,
                rows,
                T::one(),
                pb,
                tk,
                dout_b.data,
                dout.ld,
                T::one(),
                dvg,
                ld,
            );
        }
        if !want_qk {
            continue;
        }
        // dP = dout·vᵀ
        let dpb = &mut dp[r0 * tk..(r0 + rows) * tk];
        gemm(
            Trans::No,
            Trans::Yes,
            rows,
            cols,
            g.dv,
            T::one(),
            dout_b.data,
            dout.ld,
            v.data,
            v.ld,
            T::zero(),
            &mut *dpb,
            tk,
        );
        vectorize(ScoreGrads {
            g: *g,
            row0: r0,
            p: &mut *pb,
            dp: dpb,
            out: rows_from(out, r0),
            dout: dout_b,
        });
        // dq += scale·dS·k
        if let Some((dq, ld)) = grads.get(0) {
            gemm(
                Trans::No,
                Trans::No,
                rows,
                g.d,
                cols,
                scale,
                pb,
                tk,
                k.data,
                k.ld,
                T::one(),
                &mut dq[r0 * ld..],
                ld,
            );
        }
        // dk += scale·dSᵀ·q
        if let Some((dk, ld)) = grads.get(1) {
            gemm(
                Trans::Yes,
                Trans::No,
                cols,
                g.d,
                rows,
                scale,
                pb,
                tk,
                rows_from(q, r0).data,
                q.ld,
                T::one(),
                dk,
                ld,
            );
        }
    }
}

/// The checked buffer sizes of [`attention`]: `[q, k, v, out, lse, scratch]`.
fn attention_sizes(
    op: &'static str,
    groups: usize,
    tq: usize,
    tk: usize,
    d: usize,
    dv: usize,
) -> Result<[usize; 6]> {
    check_positive(
        op,
        &[
            ("groups", groups),
            ("tq", tq),
            ("tk", tk),
            ("d", d),
            ("dv", dv),
        ],
    )?;
    let scratch = numel(op, &[2, tq, tk])?
        .checked_add(tq)
        .ok_or_else(|| invalid(op, "the scratch size overflows usize"))?;
    Ok([
        numel(op, &[groups, tq, d])?,
        numel(op, &[groups, tk, d])?,
        numel(op, &[groups, tk, dv])?,
        numel(op, &[groups, tq, dv])?,
        numel(op, &[groups, tq])?,
        scratch,
    ])
}

/// Scaled dot-product attention per group: `q [groups, tq, d]`, `k [groups, tk, d]`,
/// `v [groups, tk, dv]` -> `out [groups, tq, dv]`;
/// `out = softmax(q·kᵀ/√d (+ causal mask))·v`, PyTorch's `F.scaled_dot_product_attention`
/// (`causal` = `is_causal`, upper-left aligned: query `i` sees keys `j <= i`).
/// `lse [groups, tq]` receives each row's log-sum-exp of the scaled (masked) scores, kept for
/// the backward pass. `scratch` holds at least [`attention_scratch_len`] elements.
#[allow(clippy::too_many_arguments)]
pub fn attention<T: Float>(
    q: &[T],
    k: &[T],
    v: &[T],
    groups: usize,
    tq: usize,
    tk: usize,
    d: usize,
    dv: usize,
    causal: bool,
    out: &mut [T],
    lse: &mut [T],
    scratch: &mut [T],
) -> Result<()> {
    const OP: &str = "attention";
    let [nq, nk, nv, no, nl, ns] = attention_sizes(OP, groups, tq, tk, d, dv)?;
    check_len(OP, "q", nq, q.len())?;
    check_len(OP, "k", nk, k.len())?;
    check_len(OP, "v", nv, v.len())?;
    check_len(OP, "out", no, out.len())?;
    check_len(OP, "lse", nl, lse.len())?;
    check_scratch(OP, ns, scratch.len())?;
    let g = Group {
        tq,
        tk,
        d,
        dv,
        causal,
    };
    let s = &mut scratch[..tq * tk];
    for (((qg, kg), (vg, og)), lg) in q
        .chunks_exact(tq * d)
        .zip(k.chunks_exact(tk * d))
        .zip(v.chunks_exact(tk * dv).zip(out.chunks_exact_mut(tq * dv)))
        .zip(lse.chunks_exact_mut(tq))
    {
        let mat = |data, ld| Mat::at(data, 0, ld);
        forward_group(&g, mat(qg, d), mat(kg, d), mat(vg, dv), og, dv, lg, s);
    }
    Ok(())
}

/// The backward pass of [`attention`]: accumulates into `dq`, `dk` and `dv_grad` (each
/// optional, shaped as `q`, `k` and `v`) from `dout`, recomputing the probabilities from `q`,
/// `k` and `lse`; `out` is the forward output (for the `Σ dout∘out` term).
#[allow(clippy::too_many_arguments)]
pub fn attention_backward<T: Float>(
    q: &[T],
    k: &[T],
    v: &[T],
    out: &[T],
    lse: &[T],
    dout: &[T],
    groups: usize,
    tq: usize,
    tk: usize,
    d: usize,
    dv: usize,
    causal: bool,
    mut dq: Option<&mut [T]>,
    mut dk: Option<&mut [T]>,
    mut dv_grad: Option<&mut [T]>,
    scratch: &mut [T],
) -> Result<()> {
    const OP: &str = "attention_backward";
    let [nq, nk, nv, no, nl, ns] = attention_sizes(OP, groups, tq, tk, d, dv)?;
    check_len(OP, "q", nq, q.len())?;
    check_len(OP, "k", nk, k.len())?;
    check_len(OP, "v", nv, v.len())?;
    check_len(OP, "out", no, out.len())?;
    check_len(OP, "lse", nl, lse.len())?;
    check_len(OP, "dout", no, dout.len())?;
    if let Some(g) = dq.as_deref() {
        check_len(OP, "dq", nq, g.len())?;
    }
    if let Some(g) = dk.as_deref() {
        check_len(OP, "dk", nk, g.len())?;
    }
    if let Some(g) = dv_grad.as_deref() {
        check_len(OP, "dv", nv, g.len())?;
    }
    check_scratch(OP, ns, scratch.len())?;
    if dq.is_none() && dk.is_none() && dv_grad.is_none() {
        return Ok(());
    }
    let g = Group {
        tq,
        tk,
        d,
        dv,
        causal,
    };
    let (p, rest) = scratch.split_at_mut(tq * tk);
    let dp = &mut rest[..tq * tk];
    for i in 0..groups {
        let (qs, ks, vs, os) = (i * tq * d, i * tk * d, i * tk * dv, i * tq * dv);
        let mut grads = Grads::Split(
            [
                dq.as_deref_mut().map(|b| &mut b[qs..qs + tq * d]),
                dk.as_deref_mut().map(|b| &mut b[ks..ks + tk * d]),
                dv_grad.as_deref_mut().map(|b| &mut b[vs..vs + tk * dv]),
            ],
            [d, d, dv],
        );
        backward_group(
            &g,
            Mat::at(q, qs, d),
            Mat::at(k, ks, d),
            Mat::at(v, vs, dv),
            Mat::at(out, os, dv),
            Mat::at(dout, os, dv),
            &lse[i * tq..(i + 1) * tq],
            &mut grads,
            p,
            dp,
        );
    }
    Ok(())
}

/// The checked sizes of [`mha_attention`]: `(dh, [qkv, out, lse, scratch])`.
fn mha_sizes(
    op: &'static str,
    n: usize,
    t: usize,
    c: usize,
    heads: usize,
) -> Result<(usize, [usize; 4])> {
    check_positive(op, &[("n", n), ("t", t), ("c", c), ("heads", heads)])?;
    if !c.is_multiple_of(heads) {
        return Err(invalid(
            op,
            format!("the embedding size c = {c} is not a multiple of heads = {heads}"),
        ));
    }
    let dh = c / heads;
    let scratch = numel(op, &[2, t, t])?
        .checked_add(t)
        .and_then(|s| s.checked_add(8usize.checked_mul(t)?.checked_mul(dh)?))
        .ok_or_else(|| invalid(op, "the scratch size overflows usize"))?;
    Ok((
        dh,
        [
            numel(op, &[n, t, 3, c])?,
            numel(op, &[n, t, c])?,
            numel(op, &[n, heads, t])?,
            scratch,
        ],
    ))
}

/// The self-attention core of `nn.MultiheadAttention(c, heads, batch_first=True)` between
/// its in-projection and its out-projection: `qkv [n, t, 3c]` holds q in columns `0..c`, k in
/// `c..2c` and v in `2c..3c`, and head `h` owns columns `h·dh..(h+1)·dh` of each
/// (`dh = c/heads`). `out [n, t, c]` receives the heads' outputs side by side in that order;
/// `lse [n, heads, t]` the log-sum-exp of each row's scaled scores. With `causal`, the mask
/// is PyTorch's `attn_mask = triu(ones(t, t), 1).bool()`. `scratch` holds at least
/// [`mha_attention_scratch_len`] elements.
#[allow(clippy::too_many_arguments)]
pub fn mha_attention<T: Float>(
    qkv: &[T],
    n: usize,
    t: usize,
    c: usize,
    heads: usize,
    causal: bool,
    out: &mut [T],
    lse: &mut [T],
    scratch: &mut [T],
) -> Result<()> {
    const OP: &str = "mha_attention";
    let (dh, [nqkv, no, nl, ns]) = mha_sizes(OP, n, t, c, heads)?;
    check_len(OP, "qkv", nqkv, qkv.len())?;
    check_len(OP, "out", no, out.len())?;
    check_len(OP, "lse", nl, lse.len())?;
    check_scratch(OP, ns, scratch.len())?;
    #[cfg(target_arch = "x86_64")]
    if f32_heads_available::<T>() {
        if let (Some(qkv), Some(out), Some(lse), Some(scratch)) = (
            f32_heads(qkv),
            f32_heads_mut(out),
            f32_heads_mut(lse),
            f32_heads_mut(scratch),
        ) {
            let s = heads::Shape {
                t,
                c,
                heads,
                causal,
            };
            let op = heads::Forward {
                s,
                qkv,
                out,
                lse,
                scratch,
            };
            if heads::run(op) {
                return Ok(());
            }
            // no AVX-512 after all: the portable path below
        }
    }
    let g = Group {
        tq: t,
        tk: t,
        d: dh,
        dv: dh,
        causal,
    };
    let s = &mut scratch[..t * t];
    for ((x, o), lb) in qkv
        .chunks_exact(t * 3 * c)
        .zip(out.chunks_exact_mut(t * c))
        .zip(lse.chunks_exact_mut(heads * t))
    {
        for (h, l) in lb.chunks_exact_mut(t).enumerate() {
            let col = h * dh;
            let mat = |at: usize| Mat::at(x, at + col, 3 * c);
            forward_group(&g, mat(0), mat(c), mat(2 * c), &mut o[col..], c, l, s);
        }
    }
    Ok(())
}

/// The backward pass of [`mha_attention`]: accumulates into `dqkv [n, t, 3c]` from `dout`,
/// given the forward pass's `out` and `lse`.
#[allow(clippy::too_many_arguments)]
pub fn mha_attention_backward<T: Float>(
    qkv: &[T],
    out: &[T],
    lse: &[T],
    dout: &[T],
    n: usize,
    t: usize,
    c: usize,
    heads: usize,
    causal: bool,
    dqkv: &mut [T],
    scratch: &mut [T],
) -> Result<()> {
    let sizes = (n, t, c, heads, causal);
    mha_backward(qkv, out, lse, dout, sizes, dqkv, scratch, false)
}

/// Like [`mha_attention_backward`], but `dqkv` is overwritten (whatever it held, never read)
/// instead of added to: for the first contribution to the projection's gradient, which then
/// needs no zeroing. The `f32` AVX-512 heads write their products' sums straight into it;
/// the other paths zero it first.
#[allow(clippy::too_many_arguments)]
pub fn mha_attention_backward_overwrite<T: Float>(
    qkv: &[T],
    out: &[T],
    lse: &[T],
    dout: &[T],
    n: usize,
    t: usize,
    c: usize,
    heads: usize,
    causal: bool,
    dqkv: &mut [T],
    scratch: &mut [T],
) -> Result<()> {
    let sizes = (n, t, c, heads, causal);
    mha_backward(qkv, out, lse, dout, sizes, dqkv, scratch, true)
}

/// Both backward passes of [`mha_attention`]; `overwrite` replaces `dqkv` instead of adding.
#[allow(clippy::too_many_arguments)]
fn mha_backward<T: Float>(
    qkv: &[T],
    out: &[T],
    lse: &[T],
    dout: &[T],
    (n, t, c, heads, causal): (usize, usize, usize, usize, bool),
    dqkv: &mut [T],
    scratch: &mut [T],
    overwrite: bool,
) -> Result<()> {
    const OP: &str = "mha_attention_backward";
    let (dh, [nqkv, no, nl, ns]) = mha_sizes(OP, n, t, c, heads)?;
    check_len(OP, "qkv", nqkv, qkv.len())?;
    check_len(OP, "out", no, out.len())?;
    check_len(OP, "lse", nl, lse.len())?;
    check_len(OP, "dout", no, dout.len())?;
    check_len(OP, "dqkv", nqkv, dqkv.len())?;
    check_scratch(OP, ns, scratch.len())?;
    #[cfg(target_arch = "x86_64")]
    if f32_heads_available::<T>() {
        if let (Some(qkv), Some(out), Some(lse), Some(dout), Some(dqkv), Some(scratch)) = (
            f32_heads(qkv),
            f32_heads(out),
            f32_heads(lse),
            f32_heads(dout),
            f32_heads_mut(dqkv),
            f32_heads_mut(scratch),
        ) {
            let s = heads::Shape {
                t,
                c,
                heads,
                causal,
            };
            let op = heads::Backward {
                s,
                overwrite,
                qkv,
                out,
                lse,
                dout,
                dqkv,
                scratch,
            };
            if heads::run(op) {
                return Ok(());
            }
            // no AVX-512 after all: the portable path below
        }
    }
    let g = Group {
        tq: t,
        tk: t,
        d: dh,
        dv: dh,
        causal,
    };
    if overwrite {
        dqkv.fill(T::zero());
    }
    let (p, rest) = scratch.split_at_mut(t * t);
    let dp = &mut rest[..t * t];
    for ((((x, o), go), dx), lb) in qkv
        .chunks_exact(t * 3 * c)
        .zip(out.chunks_exact(t * c))
        .zip(dout.chunks_exact(t * c))
        .zip(dqkv.chunks_exact_mut(t * 3 * c))
        .zip(lse.chunks_exact(heads * t))
    {
        for (h, l) in lb.chunks_exact(t).enumerate() {
            let col = h * dh;
            let mut grads = Grads::Packed(&mut *dx, [col, c + col, 2 * c + col], 3 * c);
            backward_group(
                &g,
                Mat::at(x, col, 3 * c),
                Mat::at(x, c + col, 3 * c),
                Mat::at(x, 2 * c + col, 3 * c),
                Mat::at(o, col, c),
                Mat::at(go, col, c),
                l,
                &mut grads,
                p,
                dp,
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
