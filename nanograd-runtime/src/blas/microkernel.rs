//! The micro-kernels of the blocked GEMM (`blocked.rs`): one `r x w` tile of C (`r <= MR`
//! rows, `w <= s` columns) from `r` rows of A (element `(i, p)` at `i * a_rs + p * a_cs`:
//! A in place, or a packed micro-panel) and a panel of B (the `w` columns of one depth
//! contiguous, depths `b_rs` apart: `s` for a packed panel, zero-padded past `w`, or B's
//! own leading dimension when B is read in place):
//! `C_tile = alpha * A_panel * B_panel + beta * C_tile`, where `beta == 0` does not read C.
//!
//! - [`Isa::Avx512`]: the whole tile in registers, `r` rows by `s / 16` (`f32`) or `s / 8`
//!   (`f64`) registers, up to 24 accumulators; each depth loads the panel's registers once
//!   and broadcasts `r` elements of A into fused multiply-adds. The panel's last register
//!   is loaded and the tile's last columns are written through a lane mask, so a panel read
//!   in place never reads past its `w` columns. The rows of A are addressed from four base
//!   pointers (rows `3q`, `3q + 1`, `3q + 2` at offsets 0, `a_rs`, `2 a_rs`): computed as
//!   a running sum, the twelve row addresses made a chain of twelve dependent additions per
//!   depth, as long as the depth's 24 multiply-adds.
//! - [`Isa::Portable`]: plain Rust over blocks of 4 rows by 8 columns, compiled for the best
//!   instruction set the CPU has (AVX2 with FMA, through `crate::simd`), for CPUs without
//!   AVX-512. [`Isa::Baseline`] is the same code compiled for the baseline target, with a
//!   multiply and an add where no FMA instruction exists.
//!
//! All three add the same products in the same order along the depth, so they agree up to
//! the rounding of a fused versus an unfused multiply-add.

use crate::simd::{mul_add, vectorize, Kernel};
use crate::Float;

/// Which micro-kernel serves a GEMM. Off `x86_64`, only [`Isa::Portable`] is ever detected
/// (the others are matched, never built).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
pub(crate) enum Isa {
    /// `core::arch` AVX-512F kernels.
    Avx512,
    /// The portable kernel, dispatched to the CPU's best instruction set (with FMA).
    Portable,
    /// The portable kernel as compiled for the baseline target, multiply then add.
    Baseline,
}

impl Isa {
    /// The best micro-kernel this CPU runs (`is_x86_feature_detected!` caches its answer).
    /// Without `std`, the best the compile targets (`-C target-feature`, `target-cpu`).
    pub(crate) fn detect() -> Isa {
        #[cfg(all(target_arch = "x86_64", feature = "std"))]
        {
            if std::is_x86_feature_detected!("avx512f") {
                return Isa::Avx512;
            }
            if !(std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma")) {
                return Isa::Baseline;
            }
        }
        #[cfg(all(target_arch = "x86_64", not(feature = "std")))]
        {
            if cfg!(target_feature = "avx512f") {
                return Isa::Avx512;
            }
            if !(cfg!(target_feature = "avx2") && cfg!(target_feature = "fma")) {
                return Isa::Baseline;
            }
        }
        Isa::Portable
    }

    /// Every micro-kernel this CPU runs, the best first.
    #[cfg(test)]
    pub(crate) fn all_available() -> Vec<Isa> {
        let mut all = vec![Isa::Baseline];
        if Isa::detect() != Isa::Baseline {
            all.insert(0, Isa::Portable);
        }
        if Isa::detect() == Isa::Avx512 {
            all.insert(0, Isa::Avx512);
        }
        all
    }
}

/// The element types with micro-kernels.
pub(super) trait MicroKernel: Float {
    /// The AVX-512 tile of `r` rows and `s` packed columns (the lengths were checked by
    /// [`run`]; the CPU has AVX-512F).
    #[allow(clippy::too_many_arguments)]
    fn avx512(
        r: usize,
        s: usize,
        kc: usize,
        a: &[Self],
        a_rs: usize,
        a_cs: usize,
        b: &[Self],
        b_rs: usize,
        c: &mut [Self],
        ldc: usize,
        w: usize,
        alpha: Self,
        beta: Self,
        bias: Option<&[Self]>,
    );
}

/// One tile with the micro-kernel of `isa`: `a` starts at the tile's first row and depth and
/// reaches element `(r - 1, kc - 1)`, `b` reaches element `(kc - 1) * b_rs + w - 1` (a
/// packed panel: `b_rs == s`), and `c` starts at the tile's first element and reaches its
/// last (`(r - 1) * ldc + w`).
#[allow(clippy::too_many_arguments)]
#[inline]
pub(super) fn run<T: MicroKernel>(
    isa: Isa,
    r: usize,
    s: usize,
    kc: usize,
    a: &[T],
    a_rs: usize,
    a_cs: usize,
    b: &[T],
    b_rs: usize,
    c: &mut [T],
    ldc: usize,
    w: usize,
    alpha: T,
    beta: T,
    bias: Option<&[T]>,
) {
    // a depth of one reads a single row of B, whatever its stride (`op(B) = Bᵀ` of a
    // one-column B has both strides 1)
    debug_assert!((1..=super::blocked::MR).contains(&r) && w <= s && w > 0);
    debug_assert!(kc == 1 || b_rs >= w);
    assert!(
        a.len() > (r - 1) * a_rs + (kc - 1) * a_cs
            && b.len() > (kc - 1) * b_rs + w - 1
            && c.len() > (r - 1) * ldc + w - 1
            && bias.is_none_or(|b| b.len() >= r)
    );
    let tile = Portable {
        r,
        kc,
        a,
        a_rs,
        a_cs,
        b,
        b_rs,
        c,
        ldc,
        w,
        alpha,
        beta,
        bias,
    };
    match isa {
        Isa::Avx512 => T::avx512(
            r, s, kc, a, a_rs, a_cs, b, b_rs, tile.c, ldc, w, alpha, beta, bias,
        ),
        Isa::Portable => vectorize(tile),
        Isa::Baseline => tile.tiles(|x, y, acc| x * y + acc),
    }
}

/// The portable tile: blocks of `RB` rows by `CB` columns, each with its accumulators in a
/// small array that the compiler keeps in vector registers.
struct Portable<'a, T> {
    r: usize,
    kc: usize,
    a: &'a [T],
    a_rs: usize,
    a_cs: usize,
    b: &'a [T],
    b_rs: usize,
    c: &'a mut [T],
    ldc: usize,
    w: usize,
    alpha: T,
    beta: T,
    bias: Option<&'a [T]>,
}

const RB: usize = 4;
const CB: usize = 8;

impl<T: Float> Portable<'_, T> {
    #[inline(always)]
    fn tiles(self, fma: impl Fn(T, T, T) -> T) {
        let Portable {
            r,
            kc,
            a,
            a_rs,
            a_cs,
            b,
            b_rs,
            c,
            ldc,
            w,
            alpha,
            beta,
            bias,
        } = self;
        for i0 in (0..r).step_by(RB) {
            let rb = RB.min(r - i0);
            // a packed panel is NR or NR / 2 wide, a multiple of CB; a panel read in place
            // may end inside a block, whose missing columns are taken as zeros
            for j0 in (0..w).step_by(CB) {
                let cw = CB.min(w - j0);
                let mut acc = [[T::zero(); CB]; RB];
                let mut tail = [T::zero(); CB];
                for p in 0..kc {
                    let row = &b[p * b_rs + j0..];
                    let bp: &[T; CB] = match row.get(..CB) {
                        Some(full) if cw == CB => full.try_into().unwrap(),
                        _ => {
                            tail[..cw].copy_from_slice(&row[..cw]);
                            &tail
                        }
                    };
                    for (i, row) in acc.iter_mut().enumerate().take(rb) {
                        let x = a[(i0 + i) * a_rs + p * a_cs];
                        for (acc, &y) in row.iter_mut().zip(bp) {
                            *acc = fma(x, y, *acc);
                        }
                    }
                }
                for (i, row) in acc.iter().enumerate().take(rb) {
                    let out = &mut c[(i0 + i) * ldc + j0..][..cw];
                    for (o, &v) in out.iter_mut().zip(row) {
                        *o = if beta == T::zero() {
                            alpha * v
                        } else {
                            alpha * v + beta * *o
                        };
                        if let Some(bias) = bias {
                            *o += bias[i0 + i];
                        }
                    }
                }
            }
        }
    }
}

impl<T: Float> Kernel for Portable<'_, T> {
    type Output = ();
    #[inline(always)]
    fn run(self) {
        self.tiles(mul_add)
    }
}

macro_rules! impl_micro_kernel {
    ($t:ty, $lanes:literal, $kernel:ident) => {
        impl MicroKernel for $t {
            fn avx512(
                r: usize,
                s: usize,
                kc: usize,
                a: &[$t],
                a_rs: usize,
                a_cs: usize,
                b: &[$t],
                b_rs: usize,
                c: &mut [$t],
                ldc: usize,
                w: usize,
                alpha: $t,
                beta: $t,
                bias: Option<&[$t]>,
            ) {
                #[cfg(target_arch = "x86_64")]
                {
                    // one arm per (rows, registers) pair: the tile's shape is a constant
                    // inside the kernel, so its accumulators live in registers
                    macro_rules! rows {
                        ($nv:literal) => {
                            match r {
                                1 => avx512::$kernel::<1, $nv>,
                                2 => avx512::$kernel::<2, $nv>,
                                3 => avx512::$kernel::<3, $nv>,
                                4 => avx512::$kernel::<4, $nv>,
                                5 => avx512::$kernel::<5, $nv>,
                                6 => avx512::$kernel::<6, $nv>,
                                7 => avx512::$kernel::<7, $nv>,
                                8 => avx512::$kernel::<8, $nv>,
                                9 => avx512::$kernel::<9, $nv>,
                                10 => avx512::$kernel::<10, $nv>,
                                11 => avx512::$kernel::<11, $nv>,
                                _ => avx512::$kernel::<12, $nv>,
                            }
                        };
                    }
                    let kernel = if s == $lanes { rows!(1) } else { rows!(2) };
                    // SAFETY: `Isa::Avx512` is chosen only when the CPU has AVX-512F; `run`
                    // checked that `a`, `b` and `c` hold the elements the tile reads and
                    // writes (`(r - 1) * a_rs + (kc - 1) * a_cs + 1`,
                    // `(kc - 1) * b_rs + w`, `(r - 1) * ldc + w`), and `bias` its `r` rows.
                    let bias = bias.map_or(core::ptr::null(), <[$t]>::as_ptr);
                    unsafe {
                        kernel(
                            kc,
                            a.as_ptr(),
                            a_rs,
                            a_cs,
                            b.as_ptr(),
                            b_rs,
                            c.as_mut_ptr(),
                            ldc,
                            w,
                            alpha,
                            beta,
                            bias,
                        )
                    }
                }
                #[cfg(not(target_arch = "x86_64"))]
                {
                    let _ = (
                        r, s, kc, a, a_rs, a_cs, b, b_rs, c, ldc, w, alpha, beta, bias,
                    );
                    unreachable!("Isa::Avx512 is only detected on x86_64")
                }
            }
        }
    };
}

impl_micro_kernel!(f32, 16, tile_f32);
impl_micro_kernel!(f64, 8, tile_f64);

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use core::arch::x86_64::*;

    macro_rules! tile {
        (
            $name:ident, $t:ty, $v:ty, $lanes:literal, $mask:ty, $zero:ident, $set1:ident,
            $fmadd:ident, $mul:ident, $add:ident, $maskz_load:ident, $mask_store:ident
        ) => {
            /// One `R x (NV * lanes)` tile (`w` live columns) in registers.
            ///
            /// # Safety
            /// The CPU has AVX-512F; `a` reaches element `(R - 1) * a_rs + (kc - 1) * a_cs`,
            /// `b` element `(kc - 1) * b_rs + w - 1`, and `c` row `R - 1`'s `w`-th element;
            /// `bias` is null or reaches element `R - 1`.
            #[target_feature(enable = "avx512f")]
            #[allow(clippy::too_many_arguments)]
            pub(super) unsafe fn $name<const R: usize, const NV: usize>(
                kc: usize,
                a: *const $t,
                a_rs: usize,
                a_cs: usize,
                b: *const $t,
                b_rs: usize,
                c: *mut $t,
                ldc: usize,
                w: usize,
                alpha: $t,
                beta: $t,
                bias: *const $t,
            ) {
                // the lanes of each register of the panel that hold one of its `w` columns
                let masks: [$mask; NV] = core::array::from_fn(|v| {
                    let left = w.saturating_sub(v * $lanes);
                    if left >= $lanes {
                        !0
                    } else {
                        ((1 as $mask) << left).wrapping_sub(1)
                    }
                });
                // rows 3q, 3q + 1 and 3q + 2 from base q at offsets 0, a_rs and 2 a_rs;
                // wrapping_add: a base past the tile's last row is never read
                let mut base: [*const $t; 4] =
                    core::array::from_fn(|q| a.wrapping_add(3 * q * a_rs));
                let off = [0, a_rs, 2 * a_rs];
                let mut acc = [[$zero(); NV]; R];
                let mut b = b;
                for _ in 0..kc {
                    let mut bv = [$zero(); NV];
                    for (v, bv) in bv.iter_mut().enumerate() {
                        *bv = unsafe { $maskz_load(masks[v], b.add(v * $lanes)) };
                    }
                    for (r, acc) in acc.iter_mut().enumerate() {
                        let x = $set1(unsafe { *base[r / 3].add(off[r % 3]) });
                        for (acc, &y) in acc.iter_mut().zip(&bv) {
                            *acc = $fmadd(x, y, *acc);
                        }
                    }
                    // wrapping: after the last depth the pointers may pass the operands' ends
                    for base in base.iter_mut().take(R.div_ceil(3)) {
                        *base = base.wrapping_add(a_cs);
                    }
                    b = b.wrapping_add(b_rs);
                }
                let (alpha, beta_v) = ($set1(alpha), $set1(beta));
                for (r, acc) in acc.iter().enumerate() {
                    for (v, &acc) in acc.iter().enumerate() {
                        if masks[v] == 0 {
                            break;
                        }
                        let at = unsafe { c.add(r * ldc + v * $lanes) };
                        let mut out = $mul(acc, alpha);
                        if beta != 0.0 {
                            out = $fmadd(unsafe { $maskz_load(masks[v], at) }, beta_v, out);
                        }
                        if !bias.is_null() {
                            // `out + b`, as `fill(b)` then `beta = 1` computes (`fma(b, 1, out)`)
                            out = $add(out, $set1(unsafe { *bias.add(r) }));
                        }
                        unsafe { $mask_store(at, masks[v], out) };
                    }
                }
            }
        };
    }

    tile!(
        tile_f32,
        f32,
        __m512,
        16,
        __mmask16,
        _mm512_setzero_ps,
        _mm512_set1_ps,
        _mm512_fmadd_ps,
        _mm512_mul_ps,
        _mm512_add_ps,
        _mm512_maskz_loadu_ps,
        _mm512_mask_storeu_ps
    );
    tile!(
        tile_f64,
        f64,
        __m512d,
        8,
        __mmask8,
        _mm512_setzero_pd,
        _mm512_set1_pd,
        _mm512_fmadd_pd,
        _mm512_mul_pd,
        _mm512_add_pd,
        _mm512_maskz_loadu_pd,
        _mm512_mask_storeu_pd
    );
}
