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
mod tests {
    use super::*;
    use crate::assert_close;
    use crate::testing::{assert_gradient, random_vec};

    fn weighted(y: &[f64], w: &[f64]) -> f64 {
        y.iter().zip(w).map(|(a, b)| a * b).sum()
    }

    /// `attention` with freshly allocated outputs: `(out, lse)`.
    #[allow(clippy::too_many_arguments)]
    fn run<T: Float>(
        q: &[T],
        k: &[T],
        v: &[T],
        groups: usize,
        tq: usize,
        tk: usize,
        d: usize,
        dv: usize,
        causal: bool,
    ) -> (Vec<T>, Vec<T>) {
        let mut out = vec![T::zero(); groups * tq * dv];
        let mut lse = vec![T::zero(); groups * tq];
        let mut scratch = vec![T::zero(); attention_scratch_len(tq, tk, d, dv)];
        attention(
            q,
            k,
            v,
            groups,
            tq,
            tk,
            d,
            dv,
            causal,
            &mut out,
            &mut lse,
            &mut scratch,
        )
        .unwrap();
        (out, lse)
    }

    fn literal<T: Float>(tol: f64) {
        // tq = tk = 2, d = dv = 1 (scale 1): q = [1, 0], k = [ln 3, 0], v = [4, 8]
        // S = q kᵀ = [[ln 3, 0], [0, 0]]
        // row 0: e^S = [3, 1] -> P = [3/4, 1/4], out = 3 + 2 = 5, lse = ln 4
        // row 1: e^S = [1, 1] -> P = [1/2, 1/2], out = 2 + 4 = 6, lse = ln 2
        // causal: row 0 sees key 0 only -> P = [1, 0], out = 4, lse = ln 3; row 1 unchanged
        let c = |v: &[f64]| -> Vec<T> { v.iter().map(|&x| T::from_f64(x)).collect() };
        let l3 = 3.0f64.ln();
        let (q, k, v) = (c(&[1.0, 0.0]), c(&[l3, 0.0]), c(&[4.0, 8.0]));
        let (out, lse) = run(&q, &k, &v, 1, 2, 2, 1, 1, false);
        assert_close!(out, [5.0f64, 6.0], tol);
        assert_close!(lse, [4.0f64.ln(), 2.0f64.ln()], tol);
        let (out_c, lse_c) = run(&q, &k, &v, 1, 2, 2, 1, 1, true);
        assert_close!(out_c, [4.0f64, 6.0], tol);
        assert_close!(lse_c, [l3, 2.0f64.ln()], tol);

        // backward with dout = [1, 1], every gradient starting at 1 (it must accumulate):
        // dv = Pᵀ dout = column sums of P = [3/4 + 1/2, 1/4 + 1/2] = [5/4, 3/4]
        // dP = dout vᵀ = [[4, 8], [4, 8]], D = dout∘out = [5, 6]
        // dS row 0 = [3/4 (4 - 5), 1/4 (8 - 5)] = [-3/4, 3/4]; row 1 = [1/2 (-2), 1/2 (2)] = [-1, 1]
        // dq = dS k = [-3/4 ln 3, -ln 3];  dk = dSᵀ q = [-3/4, 3/4] (q_1 = 0)
        let dout = c(&[1.0, 1.0]);
        let mut scratch = vec![T::zero(); attention_scratch_len(2, 2, 1, 1)];
        let (mut dq, mut dk, mut dvg) = (c(&[1.0; 2]), c(&[1.0; 2]), c(&[1.0; 2]));
        attention_backward(
            &q,
            &k,
            &v,
            &out,
            &lse,
            &dout,
            1,
            2,
            2,
            1,
            1,
            false,
            Some(&mut dq),
            Some(&mut dk),
            Some(&mut dvg),
            &mut scratch,
        )
        .unwrap();
        assert_close!(dvg, [2.25f64, 1.75], tol);
        assert_close!(dq, [1.0 - 0.75 * l3, 1.0 - l3], tol);
        assert_close!(dk, [0.25f64, 1.75], tol);
        // causal: P = [[1, 0], [1/2, 1/2]]: dv = [1 + 1/2, 1/2];
        // dS row 0 = [1 (4 - 4), 0] = 0, row 1 = [-1, 1] as before:
        // dq = [0, -ln 3], dk = dSᵀ q = 0 (row 0 of dS is 0 and q_1 = 0)
        let (mut dq, mut dk, mut dvg) = (c(&[1.0; 2]), c(&[1.0; 2]), c(&[1.0; 2]));
        attention_backward(
            &q,
            &k,
            &v,
            &out_c,
            &lse_c,
            &dout,
            1,
            2,
            2,
            1,
            1,
            true,
            Some(&mut dq),
            Some(&mut dk),
            Some(&mut dvg),
            &mut scratch,
        )
        .unwrap();
        assert_close!(dvg, [2.5f64, 1.5], tol);
        assert_close!(dq, [1.0, 1.0 - l3], tol);
        assert_close!(dk, [1.0f64, 1.0], tol);

        // the scale is 1/√d: d = 4, q = [1, 1, 1, 1], k = [[ln 3 / 2; 4], [0; 4]]:
        // q·k₀ = 2 ln 3, scaled by 1/2 -> S = [ln 3, 0], P = [3/4, 1/4], out = 5, lse = ln 4
        let q4 = c(&[1.0; 4]);
        let k4 = c(&[l3 / 2.0, l3 / 2.0, l3 / 2.0, l3 / 2.0, 0.0, 0.0, 0.0, 0.0]);
        let (out4, lse4) = run(&q4, &k4, &v, 1, 1, 2, 4, 1, false);
        assert_close!(out4, [5.0f64], tol);
        assert_close!(lse4, [4.0f64.ln()], tol);
    }

    #[test]
    fn literal_f64() {
        literal::<f64>(1e-14);
    }

    #[test]
    fn literal_f32() {
        literal::<f32>(1e-6);
    }

    #[test]
    fn exp_matches_the_library() {
        // relative error against std's exp over the range the kernels use (and a bit above 0)
        let mut worst = (0.0f64, 0.0f32);
        for i in 0..=200_000 {
            let x = -700.0 + 701.0 * f64::from(i) / 200_000.0;
            let e = x.exp();
            worst.0 = worst.0.max((exp(x) - e).abs() / e);
            let xf = x as f32;
            if xf > -87.0 {
                let ef = xf.exp();
                worst.1 = worst.1.max((exp(xf) - ef).abs() / ef);
            }
        }
        assert!(
            worst.0 < 4.0 * f64::EPSILON,
            "f64 relative error {}",
            worst.0
        );
        assert!(
            worst.1 < 2.0 * f32::EPSILON,
            "f32 relative error {}",
            worst.1
        );
        assert_eq!(exp(0.0f64), 1.0);
        assert_eq!(exp(0.0f32), 1.0);
        assert!(exp(-1000.0f64) < 1e-307);
        assert!(exp(f64::NAN).is_nan());
        assert!(exp(f32::NAN).is_nan());
    }

    #[test]
    fn large_scores_do_not_overflow() {
        // d = 1, q = [1000], k = [0, 1000 - ln 3 ... ]: S = [0, 1000²], one key dominates;
        // without the max subtraction e^(10⁶) would be inf and out NaN
        let (out, lse) = run(
            &[1000.0f32],
            &[0.0, 1000.0],
            &[1.0, 2.0],
            1,
            1,
            2,
            1,
            1,
            false,
        );
        assert_close!(out, [2.0f32]);
        assert_close!(lse, [1.0e6f32]);
    }

    /// Central-difference check of all three gradients of `Σ w∘out`.
    #[allow(clippy::too_many_arguments)]
    fn gradcheck(
        groups: usize,
        tq: usize,
        tk: usize,
        d: usize,
        dv: usize,
        causal: bool,
        seed: u64,
    ) {
        let q: Vec<f64> = random_vec(seed, groups * tq * d, -1.5, 1.5);
        let k: Vec<f64> = random_vec(seed + 1, groups * tk * d, -1.5, 1.5);
        let v: Vec<f64> = random_vec(seed + 2, groups * tk * dv, -1.0, 1.0);
        let w: Vec<f64> = random_vec(seed + 3, groups * tq * dv, -1.0, 1.0);
        let (out, lse) = run(&q, &k, &v, groups, tq, tk, d, dv, causal);
        let mut dq = vec![0.0; q.len()];
        let mut dk = vec![0.0; k.len()];
        let mut dvg = vec![0.0; v.len()];
        let mut scratch = vec![f64::NAN; attention_scratch_len(tq, tk, d, dv)];
        attention_backward(
            &q,
            &k,
            &v,
            &out,
            &lse,
            &w,
            groups,
            tq,
            tk,
            d,
            dv,
            causal,
            Some(&mut dq),
            Some(&mut dk),
            Some(&mut dvg),
            &mut scratch,
        )
        .unwrap();
        let loss = |q: &[f64], k: &[f64], v: &[f64]| {
            weighted(&run(q, k, v, groups, tq, tk, d, dv, causal).0, &w)
        };
        let name = format!("attention tq={tq} tk={tk} causal={causal}");
        assert_gradient(&format!("{name} dq"), |x| loss(x, &k, &v), &q, &dq, 1e-7);
        assert_gradient(&format!("{name} dk"), |x| loss(&q, x, &v), &k, &dk, 1e-7);
        assert_gradient(&format!("{name} dv"), |x| loss(&q, &k, x), &v, &dvg, 1e-7);
        // None skips a gradient and leaves the others as they were
        let mut dk_only = vec![0.0; k.len()];
        attention_backward(
            &q,
            &k,
            &v,
            &out,
            &lse,
            &w,
            groups,
            tq,
            tk,
            d,
            dv,
            causal,
            None,
            Some(&mut dk_only),
            None,
            &mut scratch,
        )
        .unwrap();
        assert_close!(dk_only, dk, 1e-14);
        let mut dv_only = vec![0.0; v.len()];
        attention_backward(
            &q,
            &k,
            &v,
            &out,
            &lse,
            &w,
            groups,
            tq,
            tk,
            d,
            dv,
            causal,
            None,
            None,
            Some(&mut dv_only),
            &mut scratch,
        )
        .unwrap();
        assert_close!(dv_only, dvg, 1e-14);
    }

    #[test]
    fn gradcheck_square() {
        gradcheck(2, 4, 4, 3, 2, false, 10);
        gradcheck(2, 4, 4, 3, 2, true, 20);
    }

    #[test]
    fn gradcheck_tq_ne_tk() {
        // fewer queries than keys, and more (the rows past tk see every key when causal)
        gradcheck(2, 3, 5, 4, 3, false, 30);
        gradcheck(2, 3, 5, 4, 3, true, 40);
        gradcheck(3, 5, 2, 2, 4, false, 50);
        gradcheck(3, 5, 2, 2, 4, true, 60);
    }

    #[test]
    fn gradcheck_causal_row_blocks() {
        // more rows than one causal block (CAUSAL_ROWS), with a partial last block
        const { assert!(CAUSAL_ROWS < 35) };
        gradcheck(1, 40, 35, 2, 2, true, 100);
        gradcheck(2, 35, 70, 2, 1, true, 110);
    }

    #[test]
    fn causal_matches_an_explicit_mask() {
        for (tq, tk) in [(4, 6), (45, 50), (70, 40), (64, 64)] {
            causal_matches_an_explicit_mask_at(tq, tk);
        }
    }

    fn causal_matches_an_explicit_mask_at(tq: usize, tk: usize) {
        // causal attention equals attending row i to keys 0..=i only: check row by row
        // against the non-causal kernel on the first i + 1 keys
        let (d, dv) = (3, 2);
        let q: Vec<f64> = random_vec(70, tq * d, -1.0, 1.0);
        let k: Vec<f64> = random_vec(71, tk * d, -1.0, 1.0);
        let v: Vec<f64> = random_vec(72, tk * dv, -1.0, 1.0);
        let (out, lse) = run(&q, &k, &v, 1, tq, tk, d, dv, true);
        let (full, _) = run(&q, &k, &v, 1, tq, tk, d, dv, false);
        for i in 0..tq {
            let seen = (i + 1).min(tk);
            let (oi, li) = run(
                &q[i * d..(i + 1) * d],
                &k[..seen * d],
                &v[..seen * dv],
                1,
                1,
                seen,
                d,
                dv,
                false,
            );
            assert_close!(out[i * dv..(i + 1) * dv], oi, 1e-14);
            assert_close!(lse[i], li[0], 1e-14);
        }
        // and the mask matters: the first row differs from the unmasked one
        assert!((out[0] - full[0]).abs() > 1e-3);
    }

    /// `[n, t, 3c]` -> q, k, v as `[n·heads, t, dh]` each, gathered by hand.
    fn gather(qkv: &[f64], n: usize, t: usize, c: usize, heads: usize) -> [Vec<f64>; 3] {
        let dh = c / heads;
        let mut parts = [vec![], vec![], vec![]];
        for (part, buf) in parts.iter_mut().enumerate() {
            for b in 0..n {
                for h in 0..heads {
                    for i in 0..t {
                        for j in 0..dh {
                            buf.push(qkv[(b * t + i) * 3 * c + part * c + h * dh + j]);
                        }
                    }
                }
            }
        }
        parts
    }

    /// `[n·heads, t, dh]` -> `[n, t, c]` (heads side by side), scattered by hand.
    fn scatter(x: &[f64], n: usize, t: usize, c: usize, heads: usize) -> Vec<f64> {
        let dh = c / heads;
        let mut y = vec![0.0; n * t * c];
        for b in 0..n {
            for h in 0..heads {
                for i in 0..t {
                    for j in 0..dh {
                        y[(b * t + i) * c + h * dh + j] = x[((b * heads + h) * t + i) * dh + j];
                    }
                }
            }
        }
        y
    }

    fn mha(
        qkv: &[f64],
        n: usize,
        t: usize,
        c: usize,
        heads: usize,
        causal: bool,
    ) -> (Vec<f64>, Vec<f64>) {
        let mut out = vec![0.0; n * t * c];
        let mut lse = vec![0.0; n * heads * t];
        let mut scratch = vec![f64::NAN; mha_attention_scratch_len(t, c, heads)];
        mha_attention(
            qkv,
            n,
            t,
            c,
            heads,
            causal,
            &mut out,
            &mut lse,
            &mut scratch,
        )
        .unwrap();
        (out, lse)
    }

    #[test]
    fn mha_equals_attention_on_gathered_heads() {
        let (n, t, c, heads) = (2, 5, 6, 3);
        let dh = c / heads;
        let qkv: Vec<f64> = random_vec(80, n * t * 3 * c, -1.5, 1.5);
        let w: Vec<f64> = random_vec(81, n * t * c, -1.0, 1.0);
        let [q, k, v] = gather(&qkv, n, t, c, heads);
        // the upstream gradient per head, gathered the same way (as if it were a q block)
        let mut w3 = vec![0.0; n * t * 3 * c];
        for r in 0..n * t {
            w3[r * 3 * c..r * 3 * c + c].copy_from_slice(&w[r * c..(r + 1) * c]);
        }
        let [wh, _, _] = gather(&w3, n, t, c, heads);
        for causal in [false, true] {
            let (out, lse) = mha(&qkv, n, t, c, heads, causal);
            let (out_h, lse_h) = run(&q, &k, &v, n * heads, t, t, dh, dh, causal);
            assert_close!(out, scatter(&out_h, n, t, c, heads), 1e-14);
            assert_close!(lse, lse_h, 1e-14);

            let mut dqkv = vec![0.5; qkv.len()];
            let mut scratch = vec![f64::NAN; mha_attention_scratch_len(t, c, heads)];
            mha_attention_backward(
                &qkv,
                &out,
                &lse,
                &w,
                n,
                t,
                c,
                heads,
                causal,
                &mut dqkv,
                &mut scratch,
            )
            .unwrap();
            let (mut dq, mut dk, mut dv) =
                (vec![0.0; q.len()], vec![0.0; k.len()], vec![0.0; v.len()]);
            let mut scratch = vec![f64::NAN; attention_scratch_len(t, t, dh, dh)];
            attention_backward(
                &q,
                &k,
                &v,
                &out_h,
                &lse_h,
                &wh,
                n * heads,
                t,
                t,
                dh,
                dh,
                causal,
                Some(&mut dq),
                Some(&mut dk),
                Some(&mut dv),
                &mut scratch,
            )
            .unwrap();
            let expected: Vec<f64> = {
                let (sq, sk, sv) = (
                    scatter(&dq, n, t, c, heads),
                    scatter(&dk, n, t, c, heads),
                    scatter(&dv, n, t, c, heads),
                );
                (0..n * t)
                    .flat_map(|r| {
                        let row = |s: &[f64]| s[r * c..(r + 1) * c].to_vec();
                        [row(&sq), row(&sk), row(&sv)].concat()
                    })
                    .map(|g| g + 0.5)
                    .collect()
            };
            assert_close!(dqkv, expected, 1e-14);
        }
    }

    #[test]
    fn mha_gradcheck() {
        mha_gradcheck_at(2, 4, 6, 2, &[false, true]);
        // several causal row blocks
        mha_gradcheck_at(1, 37, 4, 2, &[true]);
    }

    fn mha_gradcheck_at(n: usize, t: usize, c: usize, heads: usize, causal_cases: &[bool]) {
        let qkv: Vec<f64> = random_vec(90, n * t * 3 * c, -1.5, 1.5);
        let w: Vec<f64> = random_vec(91, n * t * c, -1.0, 1.0);
        for &causal in causal_cases {
            let (out, lse) = mha(&qkv, n, t, c, heads, causal);
            let mut dqkv = vec![0.0; qkv.len()];
            let mut scratch = vec![0.0; mha_attention_scratch_len(t, c, heads)];
            mha_attention_backward(
                &qkv,
                &out,
                &lse,
                &w,
                n,
                t,
                c,
                heads,
                causal,
                &mut dqkv,
                &mut scratch,
            )
            .unwrap();
            let loss = |x: &[f64]| weighted(&mha(x, n, t, c, heads, causal).0, &w);
            assert_gradient(
                &format!("mha_attention causal={causal}"),
                loss,
                &qkv,
                &dqkv,
                1e-7,
            );
        }
    }

    #[test]
    fn bad_shapes_are_errors() {
        let (groups, tq, tk, d, dv) = (2, 3, 4, 2, 5);
        let q = vec![0.0f64; groups * tq * d];
        let k = vec![0.0f64; groups * tk * d];
        let v = vec![0.0f64; groups * tk * dv];
        let mut out = vec![0.0f64; groups * tq * dv];
        let mut lse = vec![0.0f64; groups * tq];
        let need = attention_scratch_len(tq, tk, d, dv);
        let mut scratch = vec![0.0f64; need + 7]; // longer is fine
        let mut fwd = |q: &[f64], k: &[f64], v: &[f64], dims: [usize; 5], scratch_len: usize| {
            let [g, a, b, c, e] = dims;
            attention(
                q,
                k,
                v,
                g,
                a,
                b,
                c,
                e,
                true,
                &mut out,
                &mut lse,
                &mut scratch[..scratch_len],
            )
            .map_err(|e| e.to_string())
        };
        let dims = [groups, tq, tk, d, dv];
        assert_eq!(fwd(&q, &k, &v, dims, need), Ok(()));
        assert_eq!(fwd(&q, &k, &v, dims, need + 7), Ok(()));
        assert_eq!(
            fwd(&q, &k, &v, dims, need - 1),
            Err(format!(
                "invalid argument to attention: `scratch` has {} elements, needs at least {need}",
                need - 1
            ))
        );
        assert_eq!(
            fwd(&q, &k[1..], &v, dims, need),
            Err("length mismatch in attention: `k` has 15 elements, expected 16".into())
        );
        assert!(fwd(&q, &k, &v[1..], dims, need).is_err());
        assert!(fwd(&q[1..], &k, &v, dims, need).is_err());
        assert_eq!(
            fwd(&q, &k, &v, [groups, tq, tk, 0, dv], need),
            Err("invalid argument to attention: `d` must be positive, got 0".into())
        );
        assert!(fwd(&[], &[], &[], [0, tq, tk, d, dv], need).is_err());
        assert!(fwd(&q, &k, &v, [usize::MAX, 2, tk, d, dv], need).is_err());
        assert!(attention(
            &q,
            &k,
            &v,
            groups,
            tq,
            tk,
            d,
            dv,
            false,
            &mut out[1..],
            &mut lse,
            &mut scratch
        )
        .is_err());
        assert!(attention(
            &q,
            &k,
            &v,
            groups,
            tq,
            tk,
            d,
            dv,
            false,
            &mut out,
            &mut lse[1..],
            &mut scratch
        )
        .is_err());

        let mut dq = vec![0.0f64; q.len()];
        let mut bwd = |dout: &[f64], dq: Option<&mut [f64]>, scratch_len: usize| {
            attention_backward(
                &q,
                &k,
                &v,
                &out,
                &lse,
                dout,
                groups,
                tq,
                tk,
                d,
                dv,
                false,
                dq,
                None,
                None,
                &mut scratch[..scratch_len],
            )
            .map_err(|e| e.to_string())
        };
        let dout = vec![0.0f64; groups * tq * dv];
        assert_eq!(bwd(&dout, Some(&mut dq), need), Ok(()));
        assert!(bwd(&dout[1..], Some(&mut dq), need).is_err());
        assert!(bwd(&dout, Some(&mut dq[1..]), need).is_err());
        assert!(bwd(&dout, Some(&mut dq), need - 1).is_err());
        // a short scratch is an error even when no gradient is asked for
        assert!(bwd(&dout, None, need - 1).is_err());

        // mha: heads must divide c
        let (n, t, c, heads) = (2, 3, 6, 4);
        let qkv = vec![0.0f64; n * t * 3 * c];
        let mut out = vec![0.0f64; n * t * c];
        let mut lse = vec![0.0f64; n * heads * t];
        let mut scratch = vec![0.0f64; 1000];
        let err = mha_attention(
            &qkv,
            n,
            t,
            c,
            heads,
            false,
            &mut out,
            &mut lse,
            &mut scratch,
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid argument to mha_attention: the embedding size c = 6 is not a multiple of heads = 4"
        );
        let heads = 3;
        let mut lse = vec![0.0f64; n * heads * t];
        let need = mha_attention_scratch_len(t, c, heads);
        assert!(mha_attention(
            &qkv,
            n,
            t,
            c,
            heads,
            true,
            &mut out,
            &mut lse,
            &mut scratch[..need]
        )
        .is_ok());
        let err = mha_attention(
            &qkv,
            n,
            t,
            c,
            heads,
            true,
            &mut out,
            &mut lse,
            &mut scratch[..need - 1],
        )
        .unwrap_err();
        assert!(err.to_string().contains("`scratch` has"), "{err}");
        assert!(mha_attention(&qkv, n, t, c, 0, true, &mut out, &mut lse, &mut scratch).is_err());
        assert!(mha_attention(
            &qkv[1..],
            n,
            t,
            c,
            heads,
            true,
            &mut out,
            &mut lse,
            &mut scratch
        )
        .is_err());
        assert!(mha_attention(
            &qkv,
            n,
            t,
            c,
            heads,
            true,
            &mut out,
            &mut lse[1..],
            &mut scratch
        )
        .is_err());
        assert!(
            mha_attention::<f64>(&[], 0, t, c, heads, true, &mut [], &mut [], &mut scratch)
                .is_err()
        );
        let dout = vec![0.0f64; n * t * c];
        let mut dqkv = vec![0.0f64; qkv.len()];
        assert!(mha_attention_backward(
            &qkv,
            &out,
            &lse,
            &dout,
            n,
            t,
            c,
            heads,
            true,
            &mut dqkv,
            &mut scratch
        )
        .is_ok());
        assert!(mha_attention_backward(
            &qkv,
            &out,
            &lse,
            &dout,
            n,
            t,
            c,
            heads,
            true,
            &mut dqkv[1..],
            &mut scratch
        )
        .is_err());
        assert!(mha_attention_backward(
            &qkv,
            &out,
            &lse,
            &dout[1..],
            n,
            t,
            c,
            heads,
            true,
            &mut dqkv,
            &mut scratch
        )
        .is_err());
        assert!(mha_attention_backward(
            &qkv,
            &out,
            &lse,
            &dout,
            n,
            t,
            c,
            4,
            true,
            &mut dqkv,
            &mut scratch
        )
        .is_err());
        assert!(mha_attention_backward(
            &qkv,
            &out,
            &lse,
            &dout,
            n,
            t,
            c,
            heads,
            true,
            &mut dqkv,
            &mut scratch[..need - 1]
        )
        .is_err());
    }

    /// The `f32` heads (AVX-512 when the CPU has it) against the `f64` path, over tail
    /// shapes: `t` not a multiple of the 6-row tiles or 16-lane registers, head widths
    /// 1, 7, 32, 33.
    #[test]
    fn mha_f32_matches_f64() {
        for (t, dh, heads) in [
            (1, 7, 2),
            (5, 1, 3),
            (17, 33, 2),
            (37, 7, 1),
            (64, 32, 4),
            (70, 33, 1),
        ] {
            let (n, c) = (2, dh * heads);
            let qkv: Vec<f64> = random_vec(100, n * t * 3 * c, -2.0, 2.0);
            let w: Vec<f64> = random_vec(101, n * t * c, -1.0, 1.0);
            let to32 = |x: &[f64]| x.iter().map(|&v| v as f32).collect::<Vec<f32>>();
            // the reference on the f32 inputs, in f64
            let qkv64: Vec<f64> = to32(&qkv).iter().map(|&v| v as f64).collect();
            let w64: Vec<f64> = to32(&w).iter().map(|&v| v as f64).collect();
            for causal in [false, true] {
                let (out, lse) = mha(&qkv64, n, t, c, heads, causal);
                let mut dqkv = vec![0.25; qkv.len()];
                let mut scratch = vec![f64::NAN; mha_attention_scratch_len(t, c, heads)];
                mha_attention_backward(
                    &qkv64,
                    &out,
                    &lse,
                    &w64,
                    n,
                    t,
                    c,
                    heads,
                    causal,
                    &mut dqkv,
                    &mut scratch,
                )
                .unwrap();

                let q32 = to32(&qkv);
                let mut out32 = vec![0.0f32; out.len()];
                let mut lse32 = vec![0.0f32; lse.len()];
                let mut scratch = vec![f32::NAN; mha_attention_scratch_len(t, c, heads)];
                mha_attention(
                    &q32,
                    n,
                    t,
                    c,
                    heads,
                    causal,
                    &mut out32,
                    &mut lse32,
                    &mut scratch,
                )
                .unwrap();
                let mut d32 = vec![0.25f32; qkv.len()];
                scratch.fill(f32::NAN);
                mha_attention_backward(
                    &q32,
                    &out32,
                    &lse32,
                    &to32(&w),
                    n,
                    t,
                    c,
                    heads,
                    causal,
                    &mut d32,
                    &mut scratch,
                )
                .unwrap();
                let close = |name: &str, got: &[f32], want: &[f64]| {
                    for (i, (&g, &e)) in got.iter().zip(want).enumerate() {
                        let tol = 2e-5 * (1.0 + e.abs());
                        assert!(
                            (g as f64 - e).abs() <= tol,
                            "{name} t={t} dh={dh} causal={causal} [{i}]: {g} vs {e}"
                        );
                    }
                };
                close("out", &out32, &out);
                close("lse", &lse32, &lse);
                close("dqkv", &d32, &dqkv);
            }
        }
    }

    /// The overwriting backward pass equals the accumulating one run onto zeros, on `f64`
    /// (the portable path, which zeroes first) and `f32` (the AVX-512 heads where the CPU has
    /// them, writing their products' sums directly), whatever `dqkv` held (NaN here).
    fn overwrite_matches_accumulate_onto_zeros<T: Float>() {
        for (t, dh, heads) in [(1, 7, 2), (17, 33, 2), (64, 32, 4), (70, 33, 1)] {
            let (n, c) = (2, dh * heads);
            let from = |v: Vec<f64>| v.into_iter().map(T::from_f64).collect::<Vec<T>>();
            let qkv = from(random_vec(110, n * t * 3 * c, -2.0, 2.0));
            let dout = from(random_vec(111, n * t * c, -1.0, 1.0));
            for causal in [false, true] {
                let mut out = vec![T::zero(); n * t * c];
                let mut lse = vec![T::zero(); n * heads * t];
                let mut scratch = vec![T::zero(); mha_attention_scratch_len(t, c, heads)];
                mha_attention(
                    &qkv,
                    n,
                    t,
                    c,
                    heads,
                    causal,
                    &mut out,
                    &mut lse,
                    &mut scratch,
                )
                .unwrap();
                let mut want = vec![T::zero(); qkv.len()];
                let (dims, d) = ((n, t, c, heads, causal), &dout);
                mha_backward(&qkv, &out, &lse, d, dims, &mut want, &mut scratch, false).unwrap();
                let mut got = vec![T::from_f64(f64::NAN); qkv.len()];
                mha_attention_backward_overwrite(
                    &qkv,
                    &out,
                    &lse,
                    &dout,
                    n,
                    t,
                    c,
                    heads,
                    causal,
                    &mut got,
                    &mut scratch,
                )
                .unwrap();
                assert_eq!(got, want, "t={t} dh={dh} heads={heads} causal={causal}");
            }
        }
    }

    #[test]
    fn overwrite_matches_accumulate_onto_zeros_f64() {
        overwrite_matches_accumulate_onto_zeros::<f64>();
    }

    #[test]
    fn overwrite_matches_accumulate_onto_zeros_f32() {
        overwrite_matches_accumulate_onto_zeros::<f32>();
    }

    #[test]
    fn scratch_formulas() {
        assert_eq!(attention_scratch_len(3, 5, 4, 2), 2 * 3 * 5 + 3);
        assert_eq!(attention_scratch_len(64, 64, 32, 32), 2 * 64 * 64 + 64);
        assert_eq!(
            mha_attention_scratch_len(64, 128, 4),
            2 * 64 * 64 + 64 + 8 * 64 * 32
        );
        assert_eq!(mha_attention_scratch_len(3, 6, 2), 18 + 3 + 8 * 3 * 3);
        // no panic on nonsense sizes; the kernels reject them
        assert_eq!(mha_attention_scratch_len(3, 6, 0), 21);
        assert_eq!(attention_scratch_len(usize::MAX, 2, 1, 1), usize::MAX);
        const AT_COMPILE_TIME: usize = mha_attention_scratch_len(4, 8, 2);
        assert_eq!(AT_COMPILE_TIME, 32 + 4 + 8 * 4 * 4);
    }
}
