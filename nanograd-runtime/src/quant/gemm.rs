//! The int8 GEMM: `u8` activations (int8 values offset by +128) times `i8` weights,
//! accumulated in `i32`, with the offset taken out again by a per-column correction:
//!
//! ```text
//! acc[m][n] = Σ_k (xq[m][k] + 128) · wq[n][k] − 128 · Σ_k wq[n][k]  =  Σ_k xq[m][k] · wq[n][k]
//! ```
//!
//! AVX-512 VNNI's `vpdpbusd` multiplies unsigned by signed bytes and adds groups of four
//! products into each of 16 `i32` lanes: 64 multiply-adds per instruction. The weight is
//! packed once, at quantization time, into panels of 16 output columns: for each group of 4
//! inputs, 16 lanes × 4 bytes (`w[n0 + lane][4g + j]` at byte `4·lane + j`), so one 64-byte
//! load feeds one instruction, and each row's 4 activation bytes are broadcast to every lane.
//!
//! The portable path reads the same packed bytes in plain integer arithmetic; both compute
//! the exact integer sum (no saturation and no overflow while `k` ≤ [`MAX_K`]), so they agree
//! bit for bit.

use alloc::vec;
use alloc::vec::Vec;

use super::Path;

/// Inputs per output beyond which `i32` accumulation could overflow: every product is at
/// most 255 · 127 in magnitude, and 66,311 of them still fit in an `i32`.
pub const MAX_K: usize = 65_536;

/// Output columns per weight panel (the lanes of one 512-bit register of `i32`).
pub const LANES: usize = 16;

/// An int8 weight `[n, k]` packed for [`gemm`]: panels of 16 columns, groups of 4 inputs.
#[derive(Clone, Debug, PartialEq)]
pub struct PackedI8 {
    /// Output columns.
    pub n: usize,
    /// Inputs per column.
    pub k: usize,
    /// `k` rounded up to a multiple of 4: the row stride of the activations.
    pub k4: usize,
    /// `[n / 16][k4 / 4][16][4]` bytes, zero past `n` and `k`.
    data: Vec<i8>,
    /// `128 · Σ_k w[col][k]` for each column of every panel (zero past `n`).
    correction: Vec<i32>,
}

impl PackedI8 {
    /// Packs `w`, row-major `[n, k]` (one row per output column).
    pub fn pack(w: &[i8], n: usize, k: usize) -> Self {
        let k4 = k.div_ceil(4) * 4;
        let (groups, panels) = (k4 / 4, n.div_ceil(LANES));
        let mut data = vec![0i8; panels * groups * 64];
        let mut correction = vec![0i32; panels * LANES];
        for col in 0..n {
            let (p, lane) = (col / LANES, col % LANES);
            let row = &w[col * k..(col + 1) * k];
            for (kk, &v) in row.iter().enumerate() {
                let (g, j) = (kk / 4, kk % 4);
                data[((p * groups + g) * LANES + lane) * 4 + j] = v;
            }
            correction[col] = 128 * row.iter().map(|&v| i32::from(v)).sum::<i32>();
        }
        PackedI8 {
            n,
            k,
            k4,
            data,
            correction,
        }
    }

    /// The weight row-major `[n, k]` again (what is saved).
    pub fn unpack(&self) -> Vec<i8> {
        let groups = self.k4 / 4;
        let mut w = vec![0i8; self.n * self.k];
        for col in 0..self.n {
            let (p, lane) = (col / LANES, col % LANES);
            for kk in 0..self.k {
                let (g, j) = (kk / 4, kk % 4);
                w[col * self.k + kk] = self.data[((p * groups + g) * LANES + lane) * 4 + j];
            }
        }
        w
    }

    fn panels(&self) -> usize {
        self.n.div_ceil(LANES)
    }

    /// The bytes of panels `p..`, each `k4 / 4 · 64` long.
    fn panel(&self, p: usize) -> &[i8] {
        &self.data[p * (self.k4 / 4) * 64..]
    }
}

/// What [`gemm`] hands each finished tile to: `(row0, rows, col0, tile)`.
pub type Epilogue<'a> = dyn FnMut(usize, usize, usize, &[i32]) + 'a;

/// Rows per tile of the many-row kernel, and its panels per tile: 8 × 3 = 24 accumulators,
/// three 64-byte weight loads and eight 4-byte broadcasts feed 24 instructions per group of
/// four inputs (28 of the 32 vector registers). A single row takes up to eight panels at
/// once, so that eight independent sums hide the instruction's latency.
const MR: usize = 8;
const NB: usize = 3;
const NB1: usize = 8;
/// The largest tile, in `i32`.
const TILE: usize = LANES * if MR * NB > NB1 { MR * NB } else { NB1 };

/// The integer product of `a` (`m` rows of `w.k4` bytes, int8 values + 128, padding bytes
/// any value) and `wᵀ`, handed to `epilogue` tile by tile: `epilogue(row0, rows, col0, tile)`
/// where `tile` holds `rows` rows of `cols_of_tile` exact sums `Σ_k xq · wq` (stride
/// `tile.len() / rows`; columns past `w.n` hold zeros and are to be ignored).
///
/// With more than one row, the panels are the outer loop: one block of three panels
/// (`3 · 16 · k4` bytes, 38 KB at 784 inputs) stays in the L1 cache while every row block
/// passes it, instead of the whole weight streaming from L2 once per row block.
///
/// The caller checks `a.len() >= m · w.k4`.
pub fn gemm(path: Path, a: &[u8], m: usize, w: &PackedI8, epilogue: &mut Epilogue) {
    let mut tile = [0i32; TILE];
    let panels = w.panels();
    let lda = w.k4;
    let mut run = |row: usize, rows: usize, p: usize, nb: usize| {
        let out = &mut tile[..rows * nb * LANES];
        let a_rows = &a[row * lda..(row + rows) * lda];
        match path {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `Path::Vnni` is only constructed after detecting avx512f, avx512bw
            // and avx512vnni on this CPU.
            Path::Vnni => unsafe { vnni::tile(a_rows, lda, rows, w, p, nb, out) },
            _ => portable_tile(a_rows, lda, rows, w, p, nb, out),
        }
        epilogue(row, rows, p * LANES, out);
    };
    if m == 1 {
        let mut p = 0;
        while p < panels {
            let nb = NB1.min(panels - p);
            run(0, 1, p, nb);
            p += nb;
        }
        return;
    }
    let mut p = 0;
    while p < panels {
        let nb = NB.min(panels - p);
        let mut row = 0;
        while row < m {
            let rows = MR.min(m - row);
            run(row, rows, p, nb);
            row += rows;
        }
        p += nb;
    }
}

/// One tile in plain integer arithmetic: the same sums as the VNNI kernel.
fn portable_tile(
    a: &[u8],
    lda: usize,
    rows: usize,
    w: &PackedI8,
    p0: usize,
    nb: usize,
    out: &mut [i32],
) {
    let groups = w.k4 / 4;
    let width = nb * LANES;
    for r in 0..rows {
        let x = &a[r * lda..r * lda + w.k4];
        for b in 0..nb {
            let panel = &w.panel(p0 + b)[..groups * 64];
            let mut acc = [0i32; LANES];
            for (g, block) in panel.chunks_exact(64).enumerate() {
                let xs = &x[4 * g..4 * g + 4];
                for (lane, ws) in block.chunks_exact(4).enumerate() {
                    acc[lane] += xs
                        .iter()
                        .zip(ws)
                        .map(|(&xv, &wv)| i32::from(xv) * i32::from(wv))
                        .sum::<i32>();
                }
            }
            let corr = &w.correction[(p0 + b) * LANES..(p0 + b + 1) * LANES];
            for lane in 0..LANES {
                out[r * width + b * LANES + lane] = acc[lane] - corr[lane];
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod vnni {
    use super::{PackedI8, LANES, MR, NB, NB1};
    use core::arch::x86_64::*;

    /// Dispatches to the kernel compiled for this tile's rows and panels.
    ///
    /// # Safety
    /// The CPU must have avx512f, avx512bw and avx512vnni.
    #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
    pub(super) unsafe fn tile(
        a: &[u8],
        lda: usize,
        rows: usize,
        w: &PackedI8,
        p0: usize,
        nb: usize,
        out: &mut [i32],
    ) {
        macro_rules! go {
            ($(($r:literal, $nb:literal))*) => {
                match (rows, nb) {
                    $(($r, $nb) => kernel::<$r, $nb>(a, lda, w, p0, out),)*
                    _ => unreachable!("tiles are 1 row by 1..={} panels or 2..={} rows by 1..={}", NB1, MR, NB),
                }
            };
        }
        debug_assert!(rows <= MR && nb <= if rows == 1 { NB1 } else { NB });
        go!(
            (1, 1)(1, 2)(1, 3)(1, 4)(1, 5)(1, 6)(1, 7)(1, 8)(2, 1)(2, 2)(2, 3)(3, 1)(3, 2)(3, 3)(
                4, 1
            )(4, 2)(4, 3)(5, 1)(5, 2)(5, 3)(6, 1)(6, 2)(6, 3)(7, 1)(7, 2)(7, 3)(8, 1)(
                8, 2
            )(8, 3)
        )
    }

    /// `R` rows by `P` panels: `R · P` accumulators, one 64-byte weight load per panel and
    /// one 4-byte broadcast per row for every group of four inputs.
    #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
    unsafe fn kernel<const R: usize, const P: usize>(
        a: &[u8],
        lda: usize,
        w: &PackedI8,
        p0: usize,
        out: &mut [i32],
    ) {
        let groups = w.k4 / 4;
        let panel_len = groups * 64;
        assert!(a.len() >= (R - 1) * lda + w.k4 && out.len() >= R * P * LANES);
        assert!(w.data.len() >= (p0 + P) * panel_len);
        let mut acc = [[_mm512_setzero_si512(); P]; R];
        let ap = a.as_ptr();
        let wp = w.data.as_ptr().add(p0 * panel_len);
        for g in 0..groups {
            let mut wv = [_mm512_setzero_si512(); P];
            for (b, v) in wv.iter_mut().enumerate() {
                *v = _mm512_loadu_si512(wp.add(b * panel_len + g * 64).cast());
            }
            for (r, acc_r) in acc.iter_mut().enumerate() {
                let x = ap.add(r * lda + 4 * g).cast::<i32>().read_unaligned();
                let xv = _mm512_set1_epi32(x);
                for (b, acc_rb) in acc_r.iter_mut().enumerate() {
                    *acc_rb = _mm512_dpbusd_epi32(*acc_rb, xv, wv[b]);
                }
            }
        }
        let op = out.as_mut_ptr();
        for b in 0..P {
            let corr = _mm512_loadu_si512(w.correction.as_ptr().add((p0 + b) * LANES).cast());
            for (r, acc_r) in acc.iter().enumerate() {
                let v = _mm512_sub_epi32(acc_r[b], corr);
                _mm512_storeu_si512(op.add(r * P * LANES + b * LANES).cast(), v);
            }
        }
    }
}
