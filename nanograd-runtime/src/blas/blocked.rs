//! The default provider's GEMM: `C = alpha * op(A) * op(B) + beta * C`, cache-blocked and
//! packed, with the micro-kernels of `microkernel.rs` (AVX-512 chosen at run time, a portable
//! one elsewhere).
//!
//! The loops, outermost first (the blocking of GotoBLAS and BLIS, the two innermost swapped):
//!
//! ```text
//! for jc in 0..n step NC:           columns of B and C
//!   for pc in 0..k step KC:         depth (32 when B is read in place)
//!     pack B[pc.., jc..] into panels of NR columns, KC deep, unless read in place  (L2)
//!     for ic in 0..m step MC:       rows of A and C
//!       pack A[ic.., pc..] into micro-panels of MR rows, if op(A) = Aᵀ  (L2)
//!       for every MR rows of A:     (A's rows stay in L1 along the panels)
//!         for every B panel:        micro-kernel: an MR x NR tile of C in registers
//! ```
//!
//! A tile of rows goes along every panel rather than a panel down every tile of rows: the
//! packed panels are one contiguous stream from L2, and the pages of C and A a tile touches
//! stay few (down 192 rows of 2 KB, a panel touched 96 pages of each, past the 64 entries of
//! the L1 TLB, on every tile).
//!
//! Packing reads `op(B)` through its strides, so every transpose combination is one code
//! path, and the micro-kernel streams B's panel contiguously. A row-major `op(A)` is read in
//! place, `MR` row streams whose cache lines each serve 16 depths (packing it cost a third
//! of the kernel's time at the GPT's shapes); `op(A) = Aᵀ`, whose elements of one depth are
//! contiguous but whose depths lie a whole row apart, is packed by contiguous copies. The
//! packing
//! buffers are a thread-local `Vec` per element type that grows to the largest blocks seen
//! and is then reused: after the first call at a shape, a GEMM allocates nothing. Without
//! `std` (no thread-locals) each call allocates its packing buffer.

#[cfg(not(feature = "std"))]
use alloc::vec;
#[cfg(feature = "std")]
use std::cell::RefCell;

use super::microkernel::{self, Isa, MicroKernel};
use super::Trans;
use crate::Float;

/// Rows of a micro-tile: 12 rows by two registers of columns hold 24 accumulators.
pub(super) const MR: usize = 12;

/// The block sizes and the packing buffer of one element type.
pub(super) trait Blocking: MicroKernel {
    /// Columns of a full micro-tile: two AVX-512 registers (32 `f32`, 16 `f64`).
    const TILE_COLS: usize;
    /// Depth of a block: a `KC x NR` panel of B (32 KiB) stays in L1.
    const KC: usize;
    /// Rows of A at once: `MC x KC` (192 KiB) stays in L2.
    const MC: usize;
    /// Columns of B packed at once: `KC x NC` (1 MiB) in L2 or L3.
    const NC: usize;
    /// Runs `f` on this thread's packing buffer, grown to at least `len` elements.
    fn with_buffer<R>(len: usize, f: impl FnOnce(&mut [Self]) -> R) -> R;
    /// The capacity of this thread's packing buffer.
    #[cfg(test)]
    fn buffer_capacity() -> usize;
}

#[cfg(feature = "std")]
macro_rules! impl_blocking {
    ($t:ty, $nr:literal, $kc:literal, $mc:literal, $nc:literal, $buf:ident) => {
        thread_local! {
            static $buf: RefCell<Vec<$t>> = const { RefCell::new(Vec::new()) };
        }

        impl Blocking for $t {
            const TILE_COLS: usize = $nr;
            const KC: usize = $kc;
            const MC: usize = $mc;
            const NC: usize = $nc;

            fn with_buffer<R>(len: usize, f: impl FnOnce(&mut [$t]) -> R) -> R {
                $buf.with(|cell| match cell.try_borrow_mut() {
                    Ok(mut buf) => {
                        if buf.len() < len {
                            buf.resize(len, 0.0);
                        }
                        f(&mut buf[..len])
                    }
                    // Only a GEMM nested inside a GEMM on one thread could get here, and
                    // none is: still correct, with a buffer of its own.
                    Err(_) => f(&mut vec![0.0; len]),
                })
            }

            #[cfg(test)]
            fn buffer_capacity() -> usize {
                $buf.with(|cell| cell.borrow().capacity())
            }
        }
    };
}

#[cfg(not(feature = "std"))]
macro_rules! impl_blocking {
    ($t:ty, $nr:literal, $kc:literal, $mc:literal, $nc:literal, $buf:ident) => {
        impl Blocking for $t {
            const TILE_COLS: usize = $nr;
            const KC: usize = $kc;
            const MC: usize = $mc;
            const NC: usize = $nc;

            fn with_buffer<R>(len: usize, f: impl FnOnce(&mut [$t]) -> R) -> R {
                f(&mut vec![0.0; len])
            }
        }
    };
}

impl_blocking!(f32, 32, 256, 192, 1024, PACK_F32);
impl_blocking!(f64, 16, 256, 96, 512, PACK_F64);

/// A read-only matrix `op(X)` in a slice: element `(i, j)` at `i * rs + j * cs`.
#[derive(Clone, Copy)]
pub(super) struct View<'a, T> {
    pub data: &'a [T],
    pub rs: usize,
    pub cs: usize,
}

impl<'a, T> View<'a, T> {
    /// `op(X)` of a row-major `X` with leading dimension `ld`.
    pub fn new(data: &'a [T], trans: Trans, ld: usize) -> Self {
        match trans {
            Trans::No => View {
                data,
                rs: ld,
                cs: 1,
            },
            Trans::Yes => View {
                data,
                rs: 1,
                cs: ld,
            },
        }
    }
}

/// The width the packed panel starting at column `j` of `n` is stored with: `NR`, or half of
/// it for a last panel of at most `NR / 2` columns (the half-width micro-kernel serves it).
#[inline]
fn panel_stride<T: Blocking>(width: usize) -> usize {
    if width <= T::TILE_COLS / 2 {
        T::TILE_COLS / 2
    } else {
        T::TILE_COLS
    }
}

/// Elements the packed panels of `n` columns take per unit of depth.
fn packed_b_width<T: Blocking>(n: usize) -> usize {
    let full = n / T::TILE_COLS * T::TILE_COLS;
    if n == full {
        full
    } else {
        full + panel_stride::<T>(n - full)
    }
}

/// Whether `gemm` reads a row-major `op(B)` in place instead of packing its panels: when at
/// most two tiles of rows use each panel, or the depth is at most [`DIRECT_B_DEPTH`] (a
/// panel's few rows stay in L1 across the row tiles), packing would copy B to read it about
/// once (the im2col products of a convolution: 8–72 rows, depths of 9–72, 6,000–25,000
/// columns).
pub(super) fn reads_b_in_place<T>(b: View<'_, T>, m: usize, k: usize) -> bool {
    b.cs == 1 && (m <= 2 * MR || k <= DIRECT_B_DEPTH)
}

/// See [`reads_b_in_place`].
const DIRECT_B_DEPTH: usize = 16;

/// The depth of a block when B is read in place: each row of depth of a panel lies on a
/// page of its own (an im2col matrix's rows are 25 KB apart), and 72 of them with C's
/// twelve rows overflowed the 64 entries of the L1 TLB on every tile.
const DIRECT_B_KC: usize = 32;

/// Whether `gemm` packs `op(A)`: when it is transposed (a depth's elements a whole row
/// apart), or when its rows lie a multiple of 4 KiB apart, where the twelve rows of a tile
/// read in place would all map to the same set of the L1 cache (12-way on this Xeon) and
/// evict each other and the panel of B (an `f64` A with 512 columns).
pub(super) fn packs_a<T>(a: View<'_, T>) -> bool {
    a.cs != 1 || (a.rs * core::mem::size_of::<T>()).is_multiple_of(4096)
}

/// `C = alpha * op(A) * op(B) + beta * C` for `op(A): [m, k]`, `op(B): [k, n]`, `C: [m, n]`
/// row-major with leading dimension `ldc`, with the micro-kernels of `isa`, plus `bias[i]`
/// on every element of row `i` when `bias` is given (added where `beta` is applied, as
/// filling the rows with it and `beta = 1` would). The caller has checked that every
/// addressed element lies inside the slices (`bias` has `m`), and that `m, n, k > 0`.
#[allow(clippy::too_many_arguments)]
pub(super) fn gemm<T: Blocking>(
    isa: Isa,
    m: usize,
    n: usize,
    k: usize,
    alpha: T,
    a: View<'_, T>,
    b: View<'_, T>,
    beta: T,
    c: &mut [T],
    ldc: usize,
    bias: Option<&[T]>,
) {
    let direct_b = reads_b_in_place(b, m, k);
    // B read in place takes a page of the TLB per row of depth: blocks of DIRECT_B_KC rows
    let kc_block = if direct_b { DIRECT_B_KC } else { T::KC };
    let kc_max = k.min(kc_block);
    // A row-major A is mostly read in place: twelve row streams, each line used for 16
    // depths (see `packs_a` for when it is not)
    let pack = packs_a(a);
    let a_len = if pack { m.min(T::MC) * kc_max } else { 0 };
    let b_len = if direct_b {
        0
    } else {
        packed_b_width::<T>(n.min(T::NC)) * kc_max
    };
    T::with_buffer(a_len + b_len, |buf| {
        let (abuf, bbuf) = buf.split_at_mut(a_len);
        for jc in (0..n).step_by(T::NC) {
            let nc = T::NC.min(n - jc);
            for pc in (0..k).step_by(kc_block) {
                let kc = kc_block.min(k - pc);
                let panels = if direct_b {
                    Panels::InPlace(b, pc, jc)
                } else {
                    pack_b(b, pc, kc, jc, nc, bbuf);
                    Panels::Packed(bbuf)
                };
                // the first block of depth applies beta and the bias, the others add to it
                let (beta, bias) = if pc == 0 {
                    (beta, bias)
                } else {
                    (T::one(), None)
                };
                for ic in (0..m).step_by(T::MC) {
                    let mc = T::MC.min(m - ic);
                    let a = if pack {
                        pack_a(a, ic, mc, pc, kc, abuf);
                        None
                    } else {
                        Some((a, ic, pc))
                    };
                    macro_tile(
                        isa,
                        mc,
                        nc,
                        kc,
                        alpha,
                        a,
                        abuf,
                        panels,
                        beta,
                        bias.map(|b| &b[ic..ic + mc]),
                        c,
                        ic * ldc + jc,
                        ldc,
                    );
                }
            }
        }
    })
}

/// Where the micro-kernels find the panels of `op(B)` for one block of depth and columns.
#[derive(Clone, Copy)]
enum Panels<'a, T> {
    /// Packed by [`pack_b`], one after the other.
    Packed(&'a [T]),
    /// A row-major `op(B)` read in place from row `pc`, column `jc` on.
    InPlace(View<'a, T>, usize, usize),
}

/// Every micro-tile of one `mc x nc` block of C (starting at `c[c0]`).
#[allow(clippy::too_many_arguments)]
#[inline]
fn macro_tile<T: Blocking>(
    isa: Isa,
    mc: usize,
    nc: usize,
    kc: usize,
    alpha: T,
    direct: Option<(View<'_, T>, usize, usize)>,
    abuf: &[T],
    panels: Panels<'_, T>,
    beta: T,
    bias: Option<&[T]>,
    c: &mut [T],
    c0: usize,
    ldc: usize,
) {
    let tile = |i: usize, j: usize, panel: &[T], b_rs: usize, c: &mut [T]| {
        let r = MR.min(mc - i);
        let w = T::TILE_COLS.min(nc - j);
        let (a_panel, a_rs, a_cs) = match direct {
            None => (&abuf[i * kc..(i + r) * kc], 1, r),
            Some((a, ic, pc)) => (&a.data[(ic + i) * a.rs + pc * a.cs..], a.rs, a.cs),
        };
        // the tile's last element must lie inside `c`: `check_gemm` proved it for C
        let start = c0 + i * ldc + j;
        let tile = &mut c[start..start + (r - 1) * ldc + w];
        let s = panel_stride::<T>(w);
        let bias = bias.map(|b| &b[i..i + r]);
        microkernel::run(
            isa, r, s, kc, a_panel, a_rs, a_cs, panel, b_rs, tile, ldc, w, alpha, beta, bias,
        );
    };
    match panels {
        Panels::Packed(bbuf) => {
            // a tile of rows along every panel, as below: the packed panels are one
            // contiguous stream from L2, where a panel's tiles down MC rows of C and A
            // (2 KB rows: 96 pages each) missed the TLB on every tile
            for i in (0..mc).step_by(MR) {
                for j in (0..nc).step_by(T::TILE_COLS) {
                    // every panel before this one is whole
                    let s = panel_stride::<T>(T::TILE_COLS.min(nc - j));
                    let off = j * kc;
                    tile(i, j, &bbuf[off..off + s * kc], s, c);
                }
            }
        }
        Panels::InPlace(b, pc, jc) => {
            // a tile of rows along every panel: its twelve rows of C and B's few rows are
            // all the pages touched (a panel's tiles down C's 72 rows, 25 KB apart, took a
            // page each and missed the TLB's 64 entries)
            for i in (0..mc).step_by(MR) {
                for j in (0..nc).step_by(T::TILE_COLS) {
                    tile(i, j, &b.data[pc * b.rs + jc + j..], b.rs, c);
                }
            }
        }
    }
}

/// Packs `op(A)[ic..ic + mc, pc..pc + kc]` as micro-panels of `MR` rows (the last one of
/// `mc % MR`): micro-panel `q` holds, for every `p`, its rows' elements at depth `p`
/// contiguously, at `q * MR * kc + p * r + i`.
fn pack_a<T: Float>(a: View<'_, T>, ic: usize, mc: usize, pc: usize, kc: usize, dst: &mut [T]) {
    if a.rs == 1 {
        // op(A) = Aᵀ: a depth's `mc` elements are contiguous in one row of A. Read the block
        // row by row, in memory order (its micro-panels one after the other would read a
        // few elements from each of `kc` rows, then come back to the same rows: a walk the
        // hardware's prefetchers do not follow, slow when A comes from far away, as a
        // weight gradient's output gradient does), and deal each row out to the panels.
        let full = mc / MR * MR;
        let r = mc - full;
        for p in 0..kc {
            let row = &a.data[ic + (pc + p) * a.cs..][..mc];
            let (whole, last) = row.split_at(full);
            for (q, src) in whole.chunks_exact(MR).enumerate() {
                let at = q * MR * kc + p * MR;
                let out: &mut [T; MR] = (&mut dst[at..at + MR]).try_into().unwrap();
                *out = src.try_into().unwrap();
            }
            if r > 0 {
                let at = full * kc + p * r;
                dst[at..at + r].copy_from_slice(last);
            }
        }
        return;
    }
    for i0 in (0..mc).step_by(MR) {
        let r = MR.min(mc - i0);
        let panel = &mut dst[i0 * kc..(i0 + r) * kc];
        let base = (ic + i0) * a.rs + pc * a.cs;
        if a.cs == 1 && r == MR {
            pack_rows::<T, MR>(a.data, base, a.rs, kc, panel);
        } else {
            // read each row along the depth, write every `r`-th element
            for i in 0..r {
                let row = &a.data[base + i * a.rs..][..(kc - 1) * a.cs + 1];
                for (p, &v) in row.iter().step_by(a.cs).enumerate() {
                    panel[p * r + i] = v;
                }
            }
        }
    }
}

/// A whole micro-panel of `R` rows of a row-major A (`R` rows from `data[base]` on, `rs`
/// apart, `kc` deep): the rows' elements of one depth side by side. `R` is a constant, so
/// the loop over the rows unrolls and each depth is `R` loads and `R` stores.
#[inline]
fn pack_rows<T: Copy, const R: usize>(
    data: &[T],
    base: usize,
    rs: usize,
    kc: usize,
    panel: &mut [T],
) {
    let rows: [&[T]; R] = core::array::from_fn(|i| &data[base + i * rs..][..kc]);
    for (p, out) in panel.chunks_exact_mut(R).take(kc).enumerate() {
        for (o, row) in out.iter_mut().zip(&rows) {
            *o = row[p];
        }
    }
}

/// `dst = src` for one whole row of a panel, `TILE_COLS` long: a fixed-length copy the
/// compiler inlines as two vector moves.
#[inline(always)]
fn copy_row<T: Blocking>(src: &[T], dst: &mut [T]) {
    for (d, s) in dst[..T::TILE_COLS].iter_mut().zip(&src[..T::TILE_COLS]) {
        *d = *s;
    }
}

/// Packs `op(B)[pc..pc + kc, jc..jc + nc]` as panels of `NR` columns (a last panel of at
/// most `NR / 2` columns as a panel of `NR / 2`), zero-padded: panel `q`, stored with width
/// `s`, holds the row of depth `p` at `p * s`.
fn pack_b<T: Blocking>(b: View<'_, T>, pc: usize, kc: usize, jc: usize, nc: usize, dst: &mut [T]) {
    if b.cs == 1 {
        // row-major B: read the block row by row, in memory order, and deal each row out
        // to the panels (as `pack_a` does for a transposed A)
        let full = nc / T::TILE_COLS * T::TILE_COLS;
        let w = nc - full;
        let s = panel_stride::<T>(w.max(1));
        for p in 0..kc {
            let row = &b.data[(pc + p) * b.rs + jc..][..nc];
            let (whole, last) = row.split_at(full);
            for (q, src) in whole.chunks_exact(T::TILE_COLS).enumerate() {
                let at = q * T::TILE_COLS * kc + p * T::TILE_COLS;
                copy_row::<T>(src, &mut dst[at..at + T::TILE_COLS]);
            }
            if w > 0 {
                let out = &mut dst[full * kc + p * s..][..s];
                out[..w].copy_from_slice(last);
                out[w..].fill(T::zero());
            }
        }
        return;
    }
    let mut off = 0;
    for j0 in (0..nc).step_by(T::TILE_COLS) {
        let w = T::TILE_COLS.min(nc - j0);
        let s = panel_stride::<T>(w);
        let panel = &mut dst[off..off + s * kc];
        off += s * kc;
        let base = pc * b.rs + (jc + j0) * b.cs;
        // op(B) = Bᵀ: read each column of op(B), a row of B, along the depth
        if w < s {
            panel.fill(T::zero());
        }
        for j in 0..w {
            let col = &b.data[base + j * b.cs..][..(kc - 1) * b.rs + 1];
            for (p, &v) in col.iter().step_by(b.rs).enumerate() {
                panel[p * s + j] = v;
            }
        }
    }
}
