//! The shifted convolutions' weight gradient for `f32` in sixteen lanes, with the output
//! channels in the lanes:
//!
//! `dW[o, c, u, v] = Σ_{k, i, j} dy[k, o, i, j]·P[c, k·plane + (i + u)·pw + j + v]`.
//!
//! Image by image, `dy`'s `[c_out, out_h·out_w]` plane is transposed in registers (16 × 16
//! blocks) into a scratch `dyᵀ: [out_h·out_w, c_out]`, so that one output position's
//! gradients for 32 channels are two vectors. A block of 32 output channels by a 3 × 3 group
//! of taps then keeps its 18 sums in registers over every position of the image: per
//! position two loads of `dyᵀ`, nine broadcasts of `P` (one per tap) and 18 FMAs, with no
//! horizontal sums and no junk columns (only the `out_h·out_w` real positions are visited,
//! not the padded plane's). The block's sums are added into `sums: [c_in, kh·kw, c_out]` once
//! per image and input channel, and `sums` into `dweight` at the end.
//!
//! Every load and store is masked to the channels and positions that exist; the entry point
//! checks the buffers' lengths against the furthest element the loops reach and returns
//! `false` (nothing written) when they do not fit.

use core::arch::x86_64::{__m512, __m512i};

use pulp::x86::V4;
use pulp::Simd;

use super::super::Conv2dGeom;
use super::{load, store, L};
use crate::float::{as_f32, as_f32_mut};
use crate::simd::first_lanes;
use crate::Float;

/// `dweight[o, c, u, v] += Σ dy[k, o, i, j]·p[c, k·plane + (i + u)·pw + j + v]` from the
/// padded planes `p: [c_in, ld_p]` (`shifted.rs`'s `P`) and `dy: [n, c_out, out_h, out_w]`,
/// for `f32` on AVX-512, with `scratch` (at least `out_h·out_w·c_out` elements) and `sums`
/// (`weight_len`) as workspace, and `dbias[o] += Σ dy[k, o, i, j]` when given, summed from
/// the transposed planes; `false` (nothing written) otherwise.
#[allow(clippy::too_many_arguments)]
pub(in super::super) fn add_weight_grad<T: Float>(
    g: &Conv2dGeom,
    dy: &[T],
    p: &[T],
    ld_p: usize,
    n: usize,
    (scratch, sums): (&mut [T], &mut [T]),
    dbias: Option<&mut [T]>,
    dweight: &mut [T],
) -> bool {
    let (Some(simd), Some(dy), Some(p), Some(scratch), Some(sums), Some(dweight)) = (
        V4::try_new(),
        as_f32(dy),
        as_f32(p),
        as_f32_mut(scratch),
        as_f32_mut(sums),
        as_f32_mut(dweight),
    ) else {
        return false;
    };
    let dbias = match dbias.map(as_f32_mut) {
        Some(None) => return false,
        Some(Some(b)) if b.len() != g.c_out => return false,
        b => b.flatten(),
    };
    let wg = LanesGrad {
        dy,
        p,
        ld_p,
        n,
        c_out: g.c_out,
        c_in: g.c_in,
        kh: g.kh,
        kw: g.kw,
        pw: g.padded_w(),
        plane: g.padded_plane(),
        oh: g.out_h(),
        ow: g.out_w(),
    };
    if !wg.fits(scratch.len(), sums.len(), dweight.len()) {
        return false;
    }
    wg.run(simd, (scratch, sums), dbias, dweight);
    true
}

/// The weight gradient's operands (the module's doc).
struct LanesGrad<'a> {
    dy: &'a [f32],
    p: &'a [f32],
    ld_p: usize,
    n: usize,
    c_out: usize,
    c_in: usize,
    kh: usize,
    kw: usize,
    pw: usize,
    plane: usize,
    oh: usize,
    ow: usize,
}

/// Where one block of taps starts and which output channels it covers: image `k`, input
/// channel `c`, output channels from `o0`, taps from `(u0, v0)`.
#[derive(Clone, Copy)]
struct At {
    k: usize,
    c: usize,
    o0: usize,
    u0: usize,
    v0: usize,
}

impl LanesGrad<'_> {
    /// Whether every element the loops reach lies inside the buffers.
    fn fits(&self, scratch: usize, sums: usize, dweight: usize) -> bool {
        let reach = || -> Option<bool> {
            let hw = self.oh.checked_mul(self.ow)?;
            let len = self
                .c_out
                .checked_mul(self.c_in)?
                .checked_mul(self.kh)?
                .checked_mul(self.kw)?;
            let last_p = (self.c_in - 1)
                .checked_mul(self.ld_p)?
                .checked_add((self.n - 1).checked_mul(self.plane)?)?
                .checked_add((self.oh - 1 + self.kh - 1).checked_mul(self.pw)?)?
                .checked_add(self.ow - 1 + self.kw - 1)?;
            Some(
                self.dy.len() == self.n.checked_mul(self.c_out)?.checked_mul(hw)?
                    && scratch >= hw.checked_mul(self.c_out)?
                    && sums == len
                    && dweight == len
                    && last_p < self.p.len(),
            )
        };
        [
            self.n, self.c_out, self.c_in, self.kh, self.kw, self.oh, self.ow,
        ]
        .iter()
        .all(|&d| d > 0)
            && reach() == Some(true)
    }

    /// Adds the gradient into `dweight` (after [`LanesGrad::fits`]).
    fn run(
        &self,
        simd: V4,
        (scratch, sums): (&mut [f32], &mut [f32]),
        dbias: Option<&mut [f32]>,
        dweight: &mut [f32],
    ) {
        struct Op<'a, 'b> {
            simd: V4,
            wg: &'a LanesGrad<'b>,
            scratch: &'a mut [f32],
            sums: &'a mut [f32],
            dbias: Option<&'a mut [f32]>,
        }
        impl pulp::WithSimd for Op<'_, '_> {
            type Output = ();
            #[inline(always)]
            fn with_simd<S: Simd>(self, _: S) {
                let Self {
                    simd,
                    wg,
                    scratch,
                    sums,
                    mut dbias,
                } = self;
                let hw = wg.oh * wg.ow;
                for k in 0..wg.n {
                    let plane = &wg.dy[k * wg.c_out * hw..][..wg.c_out * hw];
                    wg.transpose(simd, plane, scratch, dbias.as_deref_mut());
                    for c in 0..wg.c_in {
                        for o0 in (0..wg.c_out).step_by(2 * L) {
                            if wg.c_out - o0 > L {
                                wg.taps::<2>(simd, (k, c, o0), scratch, sums);
                            } else {
                                wg.taps::<1>(simd, (k, c, o0), scratch, sums);
                            }
                        }
                    }
                }
            }
        }
        sums.fill(0.0);
        Simd::vectorize(
            simd,
            Op {
                simd,
                wg: self,
                scratch,
                sums,
                dbias,
            },
        );
        // dweight[o, c, t] += sums[c, t, o]
        let (taps, c_out) = (self.kh * self.kw, self.c_out);
        for (oc, d) in dweight.chunks_exact_mut(taps).enumerate() {
            let (o, c) = (oc / self.c_in, oc % self.c_in);
            for (t, d) in d.iter_mut().enumerate() {
                *d += sums[(c * taps + t) * c_out + o];
            }
        }
    }

    /// `scratch[q·c_out + o] = plane[o·hw + q]` for one image's `plane: [c_out, hw]`, by
    /// 16 × 16 blocks transposed in registers; `dbias[o] += Σ_q plane[o·hw + q]` when given
    /// (each lane's positions summed in order, then added).
    #[inline(always)]
    fn transpose(
        &self,
        simd: V4,
        plane: &[f32],
        scratch: &mut [f32],
        mut dbias: Option<&mut [f32]>,
    ) {
        let f = simd.avx512f;
        let (hw, c_out) = (self.oh * self.ow, self.c_out);
        let (src, dst) = (plane.as_ptr(), scratch.as_mut_ptr());
        for o0 in (0..c_out).step_by(L) {
            let (rows, lanes) = ((c_out - o0).min(L), first_lanes(c_out - o0));
            let mut total = f._mm512_setzero_ps();
            for q0 in (0..hw).step_by(L) {
                let (cols, mask) = ((hw - q0).min(L), first_lanes(hw - q0));
                // SAFETY: AVX-512F is present (under `V4`); row `o0 + r < c_out`, lanes of
                // `mask` are positions below `hw`: inside `plane` of `c_out·hw`
                let mut m: [__m512; L] = core::array::from_fn(|r| {
                    if r < rows {
                        unsafe { load(mask, src.add((o0 + r) * hw + q0)) }
                    } else {
                        f._mm512_setzero_ps()
                    }
                });
                transpose16(simd, &mut m);
                for (l, &v) in m.iter().enumerate().take(cols) {
                    // SAFETY: position `q0 + l < hw`, lanes of `lanes` are channels below
                    // `c_out`: inside `scratch` of at least `hw·c_out` (`fits`)
                    unsafe { store(lanes, dst.add((q0 + l) * c_out + o0), v) }
                    total = f._mm512_add_ps(total, v);
                }
            }
            if let Some(db) = dbias.as_deref_mut() {
                // SAFETY: lanes of `lanes` are channels `o0 + l < c_out`, inside `dbias` of
                // `c_out` (checked by the entry point)
                unsafe {
                    let at = db.as_mut_ptr().add(o0);
                    store(lanes, at, f._mm512_add_ps(total, load(lanes, at)));
                }
            }
        }
    }

    /// Output channels `o0..o0 + 16·O` (those below `c_out`) of image `k` and input channel
    /// `c`, every tap, in groups of 3 × 3 taps (or fewer at the kernel's edges).
    #[inline(always)]
    fn taps<const O: usize>(
        &self,
        simd: V4,
        (k, c, o0): (usize, usize, usize),
        scratch: &[f32],
        sums: &mut [f32],
    ) {
        let mut u0 = 0;
        while u0 < self.kh {
            let rows3 = self.kh - u0 >= 3;
            let mut v0 = 0;
            while v0 < self.kw {
                let cols3 = self.kw - v0 >= 3;
                let at = At { k, c, o0, u0, v0 };
                match (rows3, cols3) {
                    (true, true) => self.block::<O, 3, 3>(simd, at, scratch, sums),
                    (true, false) => self.block::<O, 3, 1>(simd, at, scratch, sums),
                    (false, true) => self.block::<O, 1, 3>(simd, at, scratch, sums),
                    (false, false) => self.block::<O, 1, 1>(simd, at, scratch, sums),
                }
                v0 += if cols3 { 3 } else { 1 };
            }
            u0 += if rows3 { 3 } else { 1 };
        }
    }

    /// Taps `(u0..u0 + U, v0..v0 + KW)` of output channels `o0..o0 + 16·O`, input channel
    /// `c`, over every position of image `k`: `U·KW·O` sums in registers, then added into
    /// `sums`.
    #[inline(always)]
    fn block<const O: usize, const U: usize, const KW: usize>(
        &self,
        simd: V4,
        At { k, c, o0, u0, v0 }: At,
        scratch: &[f32],
        sums: &mut [f32],
    ) {
        let f = simd.avx512f;
        let masks: [u16; O] = core::array::from_fn(|v| first_lanes(self.c_out - o0 - v * L));
        let mut acc = [[[f._mm512_setzero_ps(); O]; KW]; U];
        let dyt = scratch.as_ptr().wrapping_add(o0);
        let p = self
            .p
            .as_ptr()
            .wrapping_add(c * self.ld_p + k * self.plane + u0 * self.pw + v0);
        let (pw, ow, c_out) = (self.pw, self.ow, self.c_out);
        for i in 0..self.oh {
            let (dy_row, p_row) = (dyt.wrapping_add(i * ow * c_out), p.wrapping_add(i * pw));
            let mut j = 0;
            while j < ow {
                // SAFETY: AVX-512F is present (under `V4`); position `i·ow + j < hw` and the
                // lanes of `masks` are channels below `c_out`: inside `scratch` (`fits`)
                let d: [__m512; O] = core::array::from_fn(|v| unsafe {
                    load(masks[v], dy_row.add(j * c_out + v * L))
                });
                for (u, acc) in acc.iter_mut().enumerate() {
                    for (v, acc) in acc.iter_mut().enumerate() {
                        // SAFETY: channel `c < c_in`, image `k < n`, row `i + u0 + u <
                        // out_h + kh - 1`, column `j + v0 + v < out_w + kw - 1`: inside `p`
                        // (`fits`)
                        let x = unsafe { *p_row.add(u * pw + j + v) };
                        let x = f._mm512_set1_ps(x);
                        for (a, &d) in acc.iter_mut().zip(&d) {
                            *a = f._mm512_fmadd_ps(d, x, *a);
                        }
                    }
                }
                j += 1;
            }
        }
        let taps = self.kh * self.kw;
        let out = sums.as_mut_ptr();
        for (u, acc) in acc.iter().enumerate() {
            for (v, acc) in acc.iter().enumerate() {
                let t = (u0 + u) * self.kw + v0 + v;
                for (w, &a) in acc.iter().enumerate() {
                    let at = (c * taps + t) * c_out + o0 + w * L;
                    // SAFETY: lanes of `masks[w]` are channels below `c_out` of tap `t <
                    // taps` of channel `c < c_in`: inside `sums` of `c_in·taps·c_out`
                    unsafe {
                        let s = f._mm512_add_ps(a, load(masks[w], out.add(at)));
                        store(masks[w], out.add(at), s);
                    }
                }
            }
        }
    }
}

/// The lane indices of [`transpose16`]'s permutes for `b` = 8, 4, 2, 1: lane `l` of a
/// pair's upper row keeps its own element `l` while bit `b` of `l` is clear, else takes
/// element `l - b` of the lower row (`16 +`: the second source); lane `l` of the lower row
/// takes element `l + b` of the upper row while the bit is clear, else keeps its own.
const PERMUTES: [([u32; L], [u32; L]); 4] = {
    let mut out = [([0u32; L], [0u32; L]); 4];
    let mut s = 0;
    while s < 4 {
        let b = 8 >> s;
        let mut l = 0;
        while l < L {
            (out[s].0[l], out[s].1[l]) = if l & b == 0 {
                (l as u32, (l + b) as u32)
            } else {
                ((L + l - b) as u32, (L + l) as u32)
            };
            l += 1;
        }
        s += 1;
    }
    out
};

/// Transposes the 16 × 16 block whose rows are `m`: four rounds, each swapping the
/// off-diagonal `b × b` sub-blocks of every `2b × 2b` block (`b` = 8, 4, 2, 1).
#[inline(always)]
pub(super) fn transpose16(simd: V4, m: &mut [__m512; L]) {
    let f = simd.avx512f;
    for (s, (up, down)) in PERMUTES.iter().enumerate() {
        let b = 8 >> s;
        let (up, down): (__m512i, __m512i) = (pulp::cast(*up), pulp::cast(*down));
        for i in 0..L {
            if i & b == 0 {
                let (x, y) = (m[i], m[i + b]);
                m[i] = f._mm512_permutex2var_ps(x, up, y);
                m[i + b] = f._mm512_permutex2var_ps(x, down, y);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transpose16_transposes() {
        let Some(simd) = V4::try_new() else {
            eprintln!("no AVX-512: nothing to test");
            return;
        };
        // element (r, l) = 16·r + l; after the transpose, row r holds column r: 16·l + r
        let mut m: [__m512; L] = core::array::from_fn(|r| {
            pulp::cast(core::array::from_fn::<f32, L, _>(|l| (L * r + l) as f32))
        });
        transpose16(simd, &mut m);
        for (r, &row) in m.iter().enumerate() {
            let row: [f32; L] = pulp::cast(row);
            let expected: [f32; L] = core::array::from_fn(|l| (L * l + r) as f32);
            assert_eq!(row, expected, "row {r}");
        }
    }
}
