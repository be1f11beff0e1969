//! Batch norm, relu and a 2×2 max pooling of stride 2 in a training step, without the
//! relu's plane (`conv → batch norm → relu → max pool`, the block CNNs are built of).
//!
//! Done one after the other, batch norm writes `r = relu(weight·x̂ + bias)`, a whole
//! `[n, c, h, w]` tensor (3.2 MB at `mnist_cnn`'s first block, batch 64), the pooling reads
//! it, and in the backward pass the pooling writes the gradient of that plane, which batch
//! norm's two passes read back. Here neither plane exists:
//!
//! - forward ([`batch_norm2d_train_relu_max_pool2d`]): after batch norm's statistics, one
//!   pass over `x` computes each window's four values of `r`, writes their maximum `y` and
//!   one byte per window, its *winner*: the position (0..=3 in row-major window order) whose
//!   gradient is the window's, or [`NO_WINNER`] when the maximum is not positive (relu's
//!   derivative is then 0 at the maximum, and NaN is not positive). `y` is what
//!   [`batch_norm2d_train_relu`](super::batch_norm2d_train_relu) then
//!   [`max_pool2d`](crate::ops::max_pool2d()) write, to the bit: the same `r`, the same
//!   maximum (the first of equal values, the last NaN), and the winner is the position
//!   [`max_pool2d_backward_through_relu`](crate::ops::max_pool2d_backward_through_relu)
//!   gives the gradient (the first one equal to a positive maximum).
//! - backward ([`batch_norm2d_train_relu_max_pool2d_backward`]): the gradient `g` of batch
//!   norm's output is zero except at the winners, where it is the pooled gradient `dy`. So
//!   `Σ g` and `Σ g·x̂` are sums over the windows (reading `dy`, the winners and the four
//!   values of `x`), and `dx = weight·invstd/N·(N·g - Σ g - x̂·Σ g·x̂)` builds `g` from the
//!   winners while it reads `x` and writes `dx`.
//!
//! Only the winner's `x` enters `Σ g·x̂`, so when `winners` has room for it (the relu's
//! workspace region that generated code hands over has: see [`kept_values`]) the forward pass
//! also keeps each window's `x` at its winner after the winner bytes, and the backward
//! pass's sums read those instead of the four values of `x`: a quarter of `x`'s bytes. They
//! are the same bits, added in the same order, so the gradients do not change.
//!
//! The sums add the same terms as batch norm's backward pass minus its zeros, in another
//! order, so `dx`, `dweight` and `dbias` agree with the unfused ops to rounding, not to
//! the bit. Only the 2×2 window of stride 2 without padding over even heights and widths;
//! generated code keeps the three ops for any other pooling, and in eval mode.

#[cfg(target_arch = "x86_64")]
use crate::float::{as_f32, as_f32_mut};

// the passes in sixteen `f32` lanes
#[cfg(target_arch = "x86_64")]
mod avx512;

use super::{channel_stats, check_dims, check_grads, save_stats, Grads, Stats};
use crate::ops::max_pool2d::Pool2dGeom;
use crate::simd::{vectorize_above, Kernel};
use crate::{check_len, invalid, Float, Result};

/// The winner byte of a window whose maximum is not positive (or NaN): no gradient.
pub const NO_WINNER: u8 = 4;

/// Batch norm in training mode, relu, then a 2×2 max pooling of stride 2 (`pool`, over
/// batch norm's `[n, c, h, w]` planes: `pool.c` channels of `pool.h × pool.w`, even sizes, no
/// padding) in one pass that writes only the pooled `y: [n, c, h/2, w/2]` and each window's
/// winner (the first `n·c·h/2·w/2` bytes of `winners`; see the module's doc), and, when
/// `winners` has room for them after those bytes, each window's `x` at its winner (for the
/// backward pass's sums; the module's doc says where and when). The statistics are saved and updated as [`batch_norm2d_train`](super::batch_norm2d_train)
/// does. Errors if `n·h·w < 2` or the pooling is another one.
#[allow(clippy::too_many_arguments)]
pub fn batch_norm2d_train_relu_max_pool2d<T: Float>(
    x: &[T],
    n: usize,
    pool: &Pool2dGeom,
    weight: &[T],
    bias: &[T],
    eps: T,
    momentum: T,
    running_mean: &mut [T],
    running_var: &mut [T],
    save_mean: &mut [T],
    save_invstd: &mut [T],
    y: &mut [T],
    winners: &mut [u8],
) -> Result<()> {
    let stats = (running_mean, running_var, save_mean, save_invstd);
    let config = (eps, momentum, true);
    forward(x, n, pool, (weight, bias), config, stats, y, winners)
}

/// [`batch_norm2d_train_relu_max_pool2d`], its passes in sixteen lanes (`avx512.rs`) when
/// `lanes16` (the last of `(eps, momentum, lanes16)`) and `T` is `f32` on AVX-512.
#[allow(clippy::too_many_arguments)]
fn forward<T: Float>(
    x: &[T],
    n: usize,
    pool: &Pool2dGeom,
    (weight, bias): (&[T], &[T]),
    (eps, momentum, lanes16): (T, T, bool),
    (running_mean, running_var, save_mean, save_invstd): Stats<'_, T>,
    y: &mut [T],
    winners: &mut [u8],
) -> Result<()> {
    const OP: &str = "batch_norm2d_train_relu_max_pool2d";
    let (c, hw) = check_pool(OP, pool, x.len(), n)?;
    let out = check_pooled(OP, pool, n, ("y", y.len()), winners.len())?;
    check_len(OP, "weight", c, weight.len())?;
    check_len(OP, "bias", c, bias.len())?;
    check_len(OP, "running_mean", c, running_mean.len())?;
    check_len(OP, "running_var", c, running_var.len())?;
    check_len(OP, "save_mean", c, save_mean.len())?;
    check_len(OP, "save_invstd", c, save_invstd.len())?;
    if n * hw < 2 {
        return Err(invalid(
            OP,
            format!(
                "expected more than 1 value per channel when training, got n * h * w = {}",
                n * hw
            ),
        ));
    }
    let kept = kept_values::<T>(winners.len(), out);
    let (winners, rest) = winners.split_at_mut(out);
    let kept = kept.map(|r| &mut rest[r.start - out..r.end - out]);
    let kernel = Forward {
        x,
        n,
        pool,
        affine: (weight, bias),
        eps,
        momentum,
        stats: (running_mean, running_var, save_mean, save_invstd),
        y,
        winners,
        kept,
        lanes16,
    };
    vectorize_above(x.len(), kernel);
    Ok(())
}

/// The backward pass of [`batch_norm2d_train_relu_max_pool2d`] from the gradient `dy` of
/// its pooled output, the `winners` it wrote and the `save_mean` / `save_invstd` it saved:
/// accumulates into `dx`, `dweight` and `dbias` (each optional). `winners` must be the
/// bytes the forward pass was given, whole: the winning values it kept there, if it had room
/// for them, are read instead of `x` for the sums. Winner bytes above [`NO_WINNER`] count
/// as it (no gradient).
#[allow(clippy::too_many_arguments)]
pub fn batch_norm2d_train_relu_max_pool2d_backward<T: Float>(
    x: &[T],
    n: usize,
    pool: &Pool2dGeom,
    weight: &[T],
    save_mean: &[T],
    save_invstd: &[T],
    winners: &[u8],
    dy: &[T],
    dx: Option<&mut [T]>,
    dweight: Option<&mut [T]>,
    dbias: Option<&mut [T]>,
) -> Result<()> {
    let stats = (save_mean, save_invstd);
    let grads = (dx, dweight, dbias);
    backward::<T, true>(x, n, pool, weight, stats, (winners, dy), grads, true)
}

/// [`batch_norm2d_train_relu_max_pool2d_backward`] for a `dx` that holds nothing yet: `dx` is
/// overwritten, whatever it held; `dweight` and `dbias` are added to.
#[allow(clippy::too_many_arguments)]
pub fn batch_norm2d_train_relu_max_pool2d_backward_overwrite<T: Float>(
    x: &[T],
    n: usize,
    pool: &Pool2dGeom,
    weight: &[T],
    save_mean: &[T],
    save_invstd: &[T],
    winners: &[u8],
    dy: &[T],
    dx: Option<&mut [T]>,
    dweight: Option<&mut [T]>,
    dbias: Option<&mut [T]>,
) -> Result<()> {
    let stats = (save_mean, save_invstd);
    let grads = (dx, dweight, dbias);
    backward::<T, false>(x, n, pool, weight, stats, (winners, dy), grads, true)
}

/// Where [`kept_values`] start in the winners' bytes: after the `out` winner bytes, on the
/// next 64-byte boundary from the slice's start.
fn kept_at(out: usize) -> usize {
    out.next_multiple_of(64)
}

/// The bytes of `winners` (of `len` bytes, `out` windows) that keep each window's `x` at its
/// winner, `out` values of `T` stored unaligned, if `winners` has room for them after its
/// winner bytes (see the module's doc); else `None`, and the backward pass reads `x`. Only
/// the length decides, so the forward and backward passes agree when they are given the
/// same bytes (as they must be for the winners already). The relu's region of
/// `n·c·h·w` values of `T` that generated code passes holds at least `4·out·size_of::<T>()`
/// bytes: room from `out = 6` windows on.
fn kept_values<T>(len: usize, out: usize) -> Option<core::ops::Range<usize>> {
    let (at, size) = (kept_at(out), out.checked_mul(core::mem::size_of::<T>())?);
    let end = at.checked_add(size)?;
    (end <= len).then_some(at..end)
}

/// Writes `v` into the first `size_of::<T>()` bytes of `dst`, unaligned.
#[inline(always)]
fn put<T: Float>(dst: &mut [u8], v: T) {
    let dst = &mut dst[..core::mem::size_of::<T>()];
    // SAFETY: `dst` holds `size_of::<T>()` writable bytes, written unaligned; `T` is `f32` or
    // `f64` (`Float` is sealed), plain data without padding
    unsafe { dst.as_mut_ptr().cast::<T>().write_unaligned(v) }
}

/// Reads a `T` from the first `size_of::<T>()` bytes of `src`, unaligned.
#[inline(always)]
fn get<T: Float>(src: &[u8]) -> T {
    let src = &src[..core::mem::size_of::<T>()];
    // SAFETY: `src` holds `size_of::<T>()` readable bytes, read unaligned; any bytes are a
    // valid `f32` or `f64` (`Float` is sealed)
    unsafe { src.as_ptr().cast::<T>().read_unaligned() }
}

/// The bytes of a workspace region of `T` values, for the winners of
/// [`batch_norm2d_train_relu_max_pool2d`]: generated code keeps them in the region of the
/// relu whose plane the fused pass does not write.
pub fn workspace_bytes_mut<T: Float>(region: &mut [T]) -> &mut [u8] {
    let len = core::mem::size_of_val(region);
    // SAFETY: `T` is `f32` or `f64` (`Float` is sealed), plain data without padding, so its
    // `len` bytes may be written as `u8` (alignment 1), and any bytes are a valid `T` when
    // the region is read as such again.
    unsafe { core::slice::from_raw_parts_mut(region.as_mut_ptr().cast::<u8>(), len) }
}

/// [`workspace_bytes_mut`] for reading.
pub fn workspace_bytes<T: Float>(region: &[T]) -> &[u8] {
    let len = core::mem::size_of_val(region);
    // SAFETY: as in `workspace_bytes_mut`: `T` is plain data without padding.
    unsafe { core::slice::from_raw_parts(region.as_ptr().cast::<u8>(), len) }
}

/// Checks that `pool` is a 2×2 pooling of stride 2 over even planes, and that `x` holds
/// `n` images of its input: `(c, h·w)`.
fn check_pool(
    op: &'static str,
    pool: &Pool2dGeom,
    x_len: usize,
    n: usize,
) -> Result<(usize, usize)> {
    pool.validate()?;
    let fits = pool.kernel == 2 && pool.stride == 2 && pool.padding == 0;
    if !fits || !pool.h.is_multiple_of(2) || !pool.w.is_multiple_of(2) {
        return Err(invalid(
            op,
            format!(
                "only a 2x2 pooling of stride 2, no padding, over even sizes is fused, got {pool:?}"
            ),
        ));
    }
    let (c, hw) = (pool.c, pool.h * pool.w);
    check_dims(op, x_len, n, c, hw)?;
    Ok((c, hw))
}

/// Checks the pooled tensor `y` (`[n, c, h/2, w/2]`) and that `winners` has a byte per
/// window: the number of windows.
fn check_pooled(
    op: &'static str,
    pool: &Pool2dGeom,
    n: usize,
    (name, y_len): (&'static str, usize),
    winners: usize,
) -> Result<usize> {
    let out = n * pool.output_len();
    check_len(op, name, out, y_len)?;
    if winners < out {
        return Err(invalid(
            op,
            format!("winners holds {winners} bytes, needs one per window: {out}"),
        ));
    }
    Ok(out)
}

/// The forward pass's loops, compiled for the CPU's widest vectors: per channel, batch
/// norm's statistics, then its windows.
struct Forward<'a, T> {
    x: &'a [T],
    n: usize,
    pool: &'a Pool2dGeom,
    /// `weight`, `bias`.
    affine: (&'a [T], &'a [T]),
    eps: T,
    momentum: T,
    stats: Stats<'a, T>,
    y: &'a mut [T],
    winners: &'a mut [u8],
    /// Each window's `x` at its winner, as bytes, if there is room for it.
    kept: Option<&'a mut [u8]>,
    /// Whether `f32` runs `avx512.rs` on a CPU with AVX-512.
    lanes16: bool,
}

impl<T: Float> Kernel for Forward<'_, T> {
    type Output = ();
    #[inline(always)]
    fn run(self) {
        let Self {
            x,
            n,
            pool,
            affine: (weight, bias),
            eps,
            momentum,
            stats: (running_mean, running_var, save_mean, save_invstd),
            y,
            winners,
            mut kept,
            lanes16,
        } = self;
        #[cfg(not(target_arch = "x86_64"))]
        let _ = lanes16;
        let (c, w, hw) = (pool.c, pool.w, pool.h * pool.w);
        let (ow, out) = (pool.out_w(), pool.out_h() * pool.out_w());
        let size = core::mem::size_of::<T>();
        for k in 0..c {
            let (mean, invstd, sq) = channel_stats(x, (n, c, hw, k), eps);
            let (scale, shift) = (weight[k] * invstd, bias[k]);
            // batch norm then relu, as `batch_norm2d_train_relu` computes them, to the bit
            let r = |v: T| {
                let v = (v - mean) * scale + shift;
                if v < T::zero() {
                    T::zero()
                } else {
                    v
                }
            };
            #[cfg(target_arch = "x86_64")]
            if let (true, Some(simd), Some(x32), Some(y32)) =
                (lanes16, avx512::available(), as_f32(x), as_f32_mut(y))
            {
                let f = |v: T| v.to_f64() as f32;
                let affine = (f(mean), f(scale), f(shift));
                let dims = (n, c, pool.h, w, k);
                avx512::forward(simd, x32, dims, affine, y32, winners, kept.as_deref_mut());
                let stats = (
                    &mut *running_mean,
                    &mut *running_var,
                    &mut *save_mean,
                    &mut *save_invstd,
                );
                save_stats(stats, k, (n * hw, momentum), (mean, invstd, sq));
                continue;
            }
            for p in (0..n).map(|b| b * c + k) {
                let xp = &x[p * hw..][..hw];
                let yp = y[p * out..][..out].chunks_exact_mut(ow);
                let wp = winners[p * out..][..out].chunks_exact_mut(ow);
                for (i, ((yr, wr), rows)) in yp.zip(wp).zip(xp.chunks_exact(2 * w)).enumerate() {
                    let (x0, x1) = rows.split_at(w);
                    let windows = x0.chunks_exact(2).zip(x1.chunks_exact(2));
                    let cells = yr.iter_mut().zip(wr.iter_mut()).zip(windows);
                    for (j, ((yv, wv), (a, b))) in cells.enumerate() {
                        let v = [r(a[0]), r(a[1]), r(b[0]), r(b[1])];
                        // `max_pool2d`'s maximum: `v` if `v > best` or `v` is NaN
                        let (mut best, mut at) = (T::NEG_INFINITY, 0u8);
                        for (i, &vi) in (0u8..).zip(&v) {
                            if vi > best || vi.is_nan() {
                                (best, at) = (vi, i);
                            }
                        }
                        *yv = best;
                        *wv = if best > T::zero() { at } else { NO_WINNER };
                        if let Some(kept) = kept.as_deref_mut() {
                            let xv = winning(*wv, (a, b));
                            put(&mut kept[(p * out + i * ow + j) * size..], xv);
                        }
                    }
                }
            }
            let stats = (
                &mut *running_mean,
                &mut *running_var,
                &mut *save_mean,
                &mut *save_invstd,
            );
            save_stats(stats, k, (n * hw, momentum), (mean, invstd, sq));
        }
    }
}

/// `x` at winner byte `at` of a window whose rows are `a` and `b`; the last position for
/// [`NO_WINNER`] (and above), whose gradient is zero.
#[inline(always)]
fn winning<T: Float>(at: u8, (a, b): (&[T], &[T])) -> T {
    match at {
        0 => a[0],
        1 => a[1],
        2 => b[0],
        _ => b[1],
    }
}

/// Both forms of the backward pass: `dx` added to when `ADD`, else overwritten; in sixteen
/// lanes (`avx512.rs`) when `lanes16` and `T` is `f32` on AVX-512.
#[allow(clippy::too_many_arguments)]
fn backward<T: Float, const ADD: bool>(
    x: &[T],
    n: usize,
    pool: &Pool2dGeom,
    weight: &[T],
    (save_mean, save_invstd): (&[T], &[T]),
    (winners, dy): (&[u8], &[T]),
    grads: Grads<'_, T>,
    lanes16: bool,
) -> Result<()> {
    const OP: &str = "batch_norm2d_train_relu_max_pool2d_backward";
    let (c, _) = check_pool(OP, pool, x.len(), n)?;
    let out = check_pooled(OP, pool, n, ("dy", dy.len()), winners.len())?;
    check_len(OP, "weight", c, weight.len())?;
    check_len(OP, "save_mean", c, save_mean.len())?;
    check_len(OP, "save_invstd", c, save_invstd.len())?;
    check_grads(OP, x.len(), c, &grads)?;
    let kept = kept_values::<T>(winners.len(), out).map(|r| &winners[r]);
    let kernel = Backward::<T, ADD> {
        x,
        n,
        pool,
        weight,
        stats: (save_mean, save_invstd),
        winners: &winners[..out],
        kept,
        dy,
        grads,
        lanes16,
    };
    vectorize_above(x.len(), kernel);
    Ok(())
}

/// The backward pass's loops, compiled for the CPU's widest vectors: per channel, `Σ g`
/// and `Σ g·x̂` over the windows, then `dx`.
struct Backward<'a, T, const ADD: bool> {
    x: &'a [T],
    n: usize,
    pool: &'a Pool2dGeom,
    weight: &'a [T],
    stats: (&'a [T], &'a [T]),
    winners: &'a [u8],
    /// Each window's `x` at its winner, as bytes, if the forward pass kept it.
    kept: Option<&'a [u8]>,
    dy: &'a [T],
    grads: Grads<'a, T>,
    /// Whether `f32` runs `avx512.rs` on a CPU with AVX-512.
    lanes16: bool,
}

/// Independent sums per output row chunk, so that they vectorise.
const LANES: usize = 16;

impl<T: Float, const ADD: bool> Kernel for Backward<'_, T, ADD> {
    type Output = ();
    #[inline(always)]
    fn run(self) {
        let Self {
            x,
            n,
            pool,
            weight,
            stats: (save_mean, save_invstd),
            winners,
            kept,
            dy,
            grads: (mut dx, mut dweight, mut dbias),
            lanes16,
        } = self;
        #[cfg(not(target_arch = "x86_64"))]
        let _ = lanes16;
        let (c, w, hw) = (pool.c, pool.w, pool.h * pool.w);
        let (ow, out) = (pool.out_w(), pool.out_h() * pool.out_w());
        let nf = T::from_usize(n * hw);
        // in sixteen lanes, blocks of channels whose planes are read in memory order
        #[cfg(target_arch = "x86_64")]
        if let (true, Some(simd), Some(x32), Some(dy32)) =
            (lanes16, avx512::available(), as_f32(x), as_f32(dy))
        {
            const BLOCK: usize = avx512::BLOCK;
            let f = |v: T| v.to_f64() as f32;
            let dims = (n, c, pool.h, w);
            for start in (0..c).step_by(BLOCK) {
                let ks = start..(start + BLOCK).min(c);
                let mut stats = [(0.0f32, 0.0f32); BLOCK];
                for (st, k) in stats.iter_mut().zip(ks.clone()) {
                    *st = (f(save_mean[k]), f(save_invstd[k]));
                }
                let mut sums = [(0.0f32, 0.0f32); BLOCK];
                let (stats, sums) = (&stats[..ks.len()], &mut sums[..ks.len()]);
                let values = (winners, kept);
                avx512::sums(simd, x32, dims, ks.clone(), stats, values, dy32, sums);
                if let Some(dx) = dx.as_deref_mut().and_then(as_f32_mut) {
                    let mut consts = [[0.0f32; 6]; BLOCK];
                    for ((cs, k), &(sg, sgx)) in consts.iter_mut().zip(ks.clone()).zip(&*sums) {
                        let a = f(weight[k] * save_invstd[k] / nf);
                        *cs = [a, f(nf), sg, sgx, f(save_mean[k]), f(save_invstd[k])];
                    }
                    let consts = &consts[..ks.len()];
                    avx512::dx::<ADD>(simd, x32, dims, ks.clone(), consts, (winners, dy32), dx);
                }
                for (k, &(sg, sgx)) in ks.zip(&*sums) {
                    if let Some(dw) = dweight.as_deref_mut() {
                        dw[k] += T::from_f64(sgx.into());
                    }
                    if let Some(db) = dbias.as_deref_mut() {
                        db[k] += T::from_f64(sg.into());
                    }
                }
            }
            return;
        }
        for k in 0..c {
            let (mean, invstd) = (save_mean[k], save_invstd[k]);
            let planes = || {
                (0..n).map(move |b| {
                    let p = b * c + k;
                    let (wp, gp) = (&winners[p * out..][..out], &dy[p * out..][..out]);
                    (p, wp.chunks_exact(ow).zip(gp.chunks_exact(ow)))
                })
            };
            // Σ g and Σ g·x̂: per window, its gradient and `x` at its winner (kept, or read)
            let size = core::mem::size_of::<T>();
            let (mut acc_g, mut acc_gx) = ([T::zero(); LANES], [T::zero(); LANES]);
            for (p, rows) in planes() {
                let xp = &x[p * hw..][..hw];
                for (i, ((wr, gr), xr)) in rows.zip(xp.chunks_exact(2 * w)).enumerate() {
                    let (x0, x1) = xr.split_at(w);
                    let windows = x0.chunks_exact(2).zip(x1.chunks_exact(2));
                    for (j, ((&at, &g), (a, b))) in wr.iter().zip(gr).zip(windows).enumerate() {
                        let xv = match kept {
                            Some(kept) => get(&kept[(p * out + i * ow + j) * size..]),
                            None => winning(at, (a, b)),
                        };
                        let g = if at < NO_WINNER { g } else { T::zero() };
                        acc_g[j % LANES] += g;
                        acc_gx[j % LANES] += g * ((xv - mean) * invstd);
                    }
                }
            }
            let sum_g = acc_g.iter().copied().sum::<T>();
            let sum_gx = acc_gx.iter().copied().sum::<T>();
            if let Some(dx) = dx.as_deref_mut() {
                let a = weight[k] * invstd / nf;
                let d = |xi: T, g: T| a * (nf * g - sum_g - (xi - mean) * invstd * sum_gx);
                let put = |o: &mut T, v: T| *o = if ADD { *o + v } else { v };
                for (p, rows) in planes() {
                    let (xp, dp) = (&x[p * hw..][..hw], &mut dx[p * hw..][..hw]);
                    for (((wr, gr), xr), dr) in rows
                        .zip(xp.chunks_exact(2 * w))
                        .zip(dp.chunks_exact_mut(2 * w))
                    {
                        let (x0, x1) = xr.split_at(w);
                        let (d0, d1) = dr.split_at_mut(w);
                        let xs = x0.chunks_exact(2).zip(x1.chunks_exact(2));
                        let ds = d0.chunks_exact_mut(2).zip(d1.chunks_exact_mut(2));
                        for (((&at, &g), (a, b)), (da, db)) in wr.iter().zip(gr).zip(xs).zip(ds) {
                            let at_ = |i: u8| if at == i { g } else { T::zero() };
                            put(&mut da[0], d(a[0], at_(0)));
                            put(&mut da[1], d(a[1], at_(1)));
                            put(&mut db[0], d(b[0], at_(2)));
                            put(&mut db[1], d(b[1], at_(3)));
                        }
                    }
                }
            }
            if let Some(dw) = dweight.as_deref_mut() {
                dw[k] += sum_gx;
            }
            if let Some(db) = dbias.as_deref_mut() {
                db[k] += sum_g;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::assert_close;
    use crate::ops::{
        batch_norm2d_train_backward, batch_norm2d_train_backward_overwrite,
        batch_norm2d_train_relu, max_pool2d, max_pool2d_backward_through_relu,
    };
    use crate::testing::{assert_gradient, random_vec};

    /// What the fused forward pass writes: `(y, winners, mean, invstd, running_mean,
    /// running_var)`.
    type Forwarded<T> = (Vec<T>, Vec<u8>, Vec<T>, Vec<T>, Vec<T>, Vec<T>);

    fn fused_forward<T: Float>(
        pool: &Pool2dGeom,
        x: &[T],
        n: usize,
        (weight, bias): (&[T], &[T]),
    ) -> Forwarded<T> {
        let c = pool.c;
        let (mut rm, mut rv) = (vec![T::zero(); c], vec![T::one(); c]);
        let (mut sm, mut si) = (vec![T::zero(); c], vec![T::zero(); c]);
        let mut y = vec![T::from_f64(9.0); n * pool.output_len()];
        // garbage in the winners and a byte more than needed
        let mut winners = vec![7u8; y.len() + 1];
        let (eps, momentum) = (T::from_f64(1e-5), T::from_f64(0.1));
        batch_norm2d_train_relu_max_pool2d(
            x,
            n,
            pool,
            weight,
            bias,
            eps,
            momentum,
            &mut rm,
            &mut rv,
            &mut sm,
            &mut si,
            &mut y,
            &mut winners,
        )
        .unwrap();
        assert_eq!(
            winners.pop(),
            Some(7),
            "the byte after the windows is left alone"
        );
        (y, winners, sm, si, rm, rv)
    }

    /// The three ops one after the other: `(r, y, mean, invstd, running_mean, running_var)`.
    fn unfused_forward<T: Float>(
        pool: &Pool2dGeom,
        x: &[T],
        n: usize,
        (weight, bias): (&[T], &[T]),
    ) -> [Vec<T>; 6] {
        let (c, hw) = (pool.c, pool.h * pool.w);
        let (mut rm, mut rv) = (vec![T::zero(); c], vec![T::one(); c]);
        let (mut sm, mut si) = (vec![T::zero(); c], vec![T::zero(); c]);
        let mut r = vec![T::zero(); x.len()];
        let (eps, momentum) = (T::from_f64(1e-5), T::from_f64(0.1));
        batch_norm2d_train_relu(
            x, n, c, hw, weight, bias, eps, momentum, &mut rm, &mut rv, &mut sm, &mut si, &mut r,
        )
        .unwrap();
        let mut y = vec![T::zero(); n * pool.output_len()];
        max_pool2d(pool, &r, n, &mut y).unwrap();
        [r, y, sm, si, rm, rv]
    }

    fn bits<T: Float>(v: &[T]) -> Vec<u64> {
        v.iter().map(|a| a.to_f64().to_bits()).collect()
    }

    #[test]
    fn literal() {
        // one image, two channels of 2x4 (two windows each), eps = 0, weight 2, bias -1:
        // channel 0: x = [0, 4, 2, 2 | 0, 0, 2, 6]: mean 2, Σ(x - mean)² = 32, var 4,
        //   invstd 0.5, x̂ = [-1, 1, 0, 0 | -1, -1, 0, 2], 2x̂ - 1 = [-3, 1, -1, -1 | -3, -3, -1, 3],
        //   r = [0, 1, 0, 0 | 0, 0, 0, 3]: windows (0, 1, 0, 0) and (0, 0, 0, 3),
        //   y = [1, 3], winners 1 and 3;
        // channel 1: x = [4, 0, 2, 2 | 4, 4, 2, -2]: mean 2, var 4, x̂ = [1, -1, 0, 0 | 1, 1, 0, -2],
        //   r = [1, 0, 0, 0 | 1, 1, 0, 0]: windows (1, 0, 1, 1), the first 1 wins, and
        //   (0, 0, 0, 0), not positive: y = [1, 0], winners 0 and NO_WINNER;
        // running_mean = 0.1·2 = 0.2, running_var = 0.9·1 + 0.1·32/7 = 9.5/7
        let pool = Pool2dGeom::new(2, 2, 4, 2, 2, 0).unwrap();
        let x = [
            0.0, 4.0, 2.0, 2.0, 0.0, 0.0, 2.0, 6.0, 4.0, 0.0, 2.0, 2.0, 4.0, 4.0, 2.0, -2.0,
        ];
        let (w, b) = ([2.0; 2], [-1.0; 2]);
        let (mut rm, mut rv, mut sm, mut si) = ([0.0; 2], [1.0; 2], [0.0; 2], [0.0; 2]);
        let (mut y, mut winners) = ([0.0; 4], [0u8; 4]);
        batch_norm2d_train_relu_max_pool2d(
            &x,
            1,
            &pool,
            &w,
            &b,
            0.0,
            0.1,
            &mut rm,
            &mut rv,
            &mut sm,
            &mut si,
            &mut y,
            &mut winners,
        )
        .unwrap();
        assert_close!(y, [1.0, 3.0, 1.0, 0.0]);
        assert_eq!(winners, [1, 3, 0, NO_WINNER]);
        assert_close!(sm, [2.0, 2.0]);
        assert_close!(si, [0.5, 0.5]);
        assert_close!(rm, [0.2, 0.2]);
        assert_close!(rv, [9.5 / 7.0, 9.5 / 7.0]);
        // dy = [1, 2 | 3, 5], a = weight·invstd/N = 0.125, dx = a·(8g - Σg - x̂·Σg·x̂):
        // channel 0: g = 1 at x̂ = 1 and 2 at x̂ = 2: Σg = 3, Σg·x̂ = 5,
        //   dx = [.25, 0, -.375, -.375 | .25, .25, -.375, .375];
        // channel 1: g = 3 at x̂ = 1 (the second window has none): Σg = 3, Σg·x̂ = 3,
        //   dx = [2.25, 0, -.375, -.375 | -.75, -.75, -.375, .375];
        // added onto dx = 1, dweight = 10, dbias = 0
        let dy = [1.0, 2.0, 3.0, 5.0];
        let (mut dx, mut dw, mut db) = ([1.0; 16], [10.0; 2], [0.0; 2]);
        batch_norm2d_train_relu_max_pool2d_backward(
            &x,
            1,
            &pool,
            &w,
            &sm,
            &si,
            &winners,
            &dy,
            Some(&mut dx),
            Some(&mut dw),
            Some(&mut db),
        )
        .unwrap();
        let expect = [
            0.25, 0.0, -0.375, -0.375, 0.25, 0.25, -0.375, 0.375, 2.25, 0.0, -0.375, -0.375, -0.75,
            -0.75, -0.375, 0.375,
        ];
        assert_close!(dx, expect.map(|v| v + 1.0));
        assert_close!(dw, [15.0, 13.0]);
        assert_close!(db, [3.0, 3.0]);
    }

    /// Random `x` rounded to steps of 0.25, so that windows tie, with some zeros, `-0` and
    /// negative values after batch norm.
    fn tied_x<T: Float>(seed: u64, len: usize) -> Vec<T> {
        let v: Vec<f64> = random_vec(seed, len, -2.0, 3.0);
        v.iter()
            .map(|a| T::from_f64((a * 4.0).round() / 4.0))
            .collect()
    }

    const GEOMS: [(usize, usize, usize, usize); 5] = [
        (3, 4, 6, 2),
        (2, 2, 2, 3),
        (16, 28, 28, 5),
        (2, 6, 34, 1),
        (1, 8, 2, 4),
    ];

    /// The fused forward pass against `batch_norm2d_train_relu` then `max_pool2d`, to the
    /// bit, and its winners against the pooling's backward pass through relu: `dy` at the
    /// winners, nowhere else.
    fn forward_same_as_three_ops<T: Float>() {
        for (s, &(c, h, w, n)) in GEOMS.iter().enumerate() {
            let pool = Pool2dGeom::new(c, h, w, 2, 2, 0).unwrap();
            let s = s as u64 * 10;
            let x: Vec<T> = tied_x(s, n * pool.input_len());
            let weight: Vec<T> = random_vec(s + 1, c, -1.0, 2.0);
            let bias: Vec<T> = random_vec(s + 2, c, -0.5, 0.5);
            let (y, winners, sm, si, rm, rv) = fused_forward(&pool, &x, n, (&weight, &bias));
            let [r, ey, esm, esi, erm, erv] = unfused_forward(&pool, &x, n, (&weight, &bias));
            let what = format!("{pool:?}, n = {n}");
            assert_eq!(bits(&y), bits(&ey), "y, {what}");
            assert_eq!(bits(&sm), bits(&esm), "save_mean, {what}");
            assert_eq!(bits(&si), bits(&esi), "save_invstd, {what}");
            assert_eq!(bits(&rm), bits(&erm), "running_mean, {what}");
            assert_eq!(bits(&rv), bits(&erv), "running_var, {what}");
            assert!(winners.iter().all(|&v| v <= NO_WINNER), "{what}");
            // distinct gradients per window, so that each lands where its winner says
            let dy: Vec<T> = (1..=y.len()).map(T::from_usize).collect();
            let mut dh = vec![T::from_f64(5.0); x.len()];
            max_pool2d_backward_through_relu(&pool, &r, &y, &dy, n, &mut dh).unwrap();
            let mut from_winners = vec![T::zero(); x.len()];
            expand(&pool, &winners, &dy, &mut from_winners);
            assert_eq!(bits(&from_winners), bits(&dh), "winners, {what}");
        }
    }

    /// The gradient of batch norm's output that the winners give: `dy` of each window at its
    /// winner, zeros elsewhere.
    fn expand<T: Float>(pool: &Pool2dGeom, winners: &[u8], dy: &[T], dh: &mut [T]) {
        let (w, oh, ow) = (pool.w, pool.out_h(), pool.out_w());
        for (q, (&at, &g)) in winners.iter().zip(dy).enumerate() {
            let (plane, i, j) = (q / (oh * ow), q / ow % oh, q % ow);
            if at < NO_WINNER {
                let (u, v) = (usize::from(at / 2), usize::from(at % 2));
                dh[plane * pool.h * w + (2 * i + u) * w + 2 * j + v] = g;
            }
        }
    }

    #[test]
    fn forward_same_as_three_ops_f32() {
        forward_same_as_three_ops::<f32>();
    }

    #[test]
    fn forward_same_as_three_ops_f64() {
        forward_same_as_three_ops::<f64>();
    }

    /// A window holding NaN: `y` is NaN as `max_pool2d` makes it, and the window has no
    /// winner (the pooling's backward pass gives it a zero gradient through relu).
    #[test]
    fn nan_window() {
        let pool = Pool2dGeom::new(1, 2, 4, 2, 2, 0).unwrap();
        let x = [0.0f32, 4.0, f32::NAN, 2.0, 0.0, 0.0, 2.0, 6.0];
        let (y, winners, ..) = fused_forward(&pool, &x, 1, (&[1.0], &[0.0]));
        let [_, ey, ..] = unfused_forward(&pool, &x, 1, (&[1.0], &[0.0]));
        assert_eq!(bits(&y), bits(&ey));
        assert!(y.iter().all(|v| v.is_nan()), "{y:?}"); // the whole channel's mean is NaN
        assert_eq!(winners, [NO_WINNER; 2]);
    }

    /// A constant channel with a negative weight and a bias of `-0`: every value of batch
    /// norm is `-0·scale + -0 = -0`, which relu keeps, so `y` is `-0` as the three ops make
    /// it (in sixteen lanes too, where relu is a maximum with zero), with no winner.
    #[test]
    fn negative_zero_windows() {
        let pool = Pool2dGeom::new(1, 2, 36, 2, 2, 0).unwrap();
        let x = [1.5f32; 72];
        let (y, winners, ..) = fused_forward(&pool, &x, 1, (&[-1.0], &[-0.0]));
        let [_, ey, ..] = unfused_forward(&pool, &x, 1, (&[-1.0], &[-0.0]));
        assert_eq!(bits(&y), bits(&ey));
        assert_eq!(bits(&y), bits(&[-0.0f32; 18]));
        assert_eq!(winners, [NO_WINNER; 18]);
    }

    /// NaN in some windows of a group and not in others, at every position: a bias of `+∞`
    /// and a weight that sends `x̂ < -1.2` to `-∞`, so batch norm gives NaN there and `+∞`
    /// elsewhere. `y` is what the three ops give, and the sixteen-lane pass (which tests
    /// for NaN once per group) gives the portable pass's `y` and winners, to the bit.
    #[test]
    fn nan_in_some_windows() {
        let pool = Pool2dGeom::new(1, 4, 2 * 37, 2, 2, 0).unwrap();
        let n = 2;
        let x: Vec<f32> = random_vec(77, n * pool.input_len(), -2.0, 2.0);
        let affine = (&[3e38f32][..], &[f32::INFINITY][..]);
        let (y, winners, ..) = fused_forward(&pool, &x, n, affine);
        let [_, ey, ..] = unfused_forward(&pool, &x, n, affine);
        assert_eq!(bits(&y), bits(&ey));
        let nans = y.iter().filter(|v| v.is_nan()).count();
        assert!(nans > 0 && nans < y.len(), "{nans} of {}", y.len());
        let run = |lanes16: bool| {
            let (mut rm, mut rv, mut sm, mut si) = ([0.0f32], [1.0f32], [0.0f32], [0.0f32]);
            let mut y = vec![9.0f32; n * pool.output_len()];
            let mut winners = vec![7u8; y.len()];
            let stats = (&mut rm[..], &mut rv[..], &mut sm[..], &mut si[..]);
            let config = (1e-5, 0.1, lanes16);
            forward(&x, n, &pool, affine, config, stats, &mut y, &mut winners).unwrap();
            (bits(&y), winners)
        };
        assert!(run(true) == run(false));
        assert_eq!(run(true).1, winners);
    }

    /// Each element of the fused backward pass against the unfused ops (the pooling's
    /// backward pass through relu, then batch norm's): within `depth·ε·Σ|terms|`, `depth` the
    /// number of values each sum adds (`n·h·w`), both forms, every gradient asked for or not.
    fn backward_close_to_two_ops<T: Float>() {
        for (s, &(c, h, w, n)) in GEOMS.iter().enumerate() {
            let pool = Pool2dGeom::new(c, h, w, 2, 2, 0).unwrap();
            let hw = h * w;
            let s = s as u64 * 10 + 3;
            let x: Vec<T> = random_vec(s, n * pool.input_len(), -2.0, 3.0);
            let weight: Vec<T> = random_vec(s + 1, c, -1.0, 2.0);
            let bias: Vec<T> = random_vec(s + 2, c, -0.5, 0.5);
            let (y, winners, sm, si, ..) = fused_forward(&pool, &x, n, (&weight, &bias));
            let [r, ..] = unfused_forward(&pool, &x, n, (&weight, &bias));
            let dy: Vec<T> = random_vec(s + 3, y.len(), -1.0, 1.0);
            let mut dh = vec![T::zero(); x.len()];
            max_pool2d_backward_through_relu(&pool, &r, &y, &dy, n, &mut dh).unwrap();
            // the bound of each channel: Σ|g|, Σ|g·x̂| and the depth
            let depth = (n * hw) as f64;
            let eps = T::EPSILON.to_f64();
            let (mut abs_g, mut abs_gx) = (vec![0.0; c], vec![0.0; c]);
            for (q, (&g, &xi)) in dh.iter().zip(&x).enumerate() {
                let k = q / hw % c;
                let xhat = (xi.to_f64() - sm[k].to_f64()) * si[k].to_f64();
                abs_g[k] += g.to_f64().abs();
                abs_gx[k] += (g.to_f64() * xhat).abs();
            }
            let start: Vec<T> = random_vec(s + 4, x.len(), -1.0, 1.0);
            for add in [true, false] {
                for ask in [
                    (true, true, true),
                    (true, false, false),
                    (false, true, true),
                ] {
                    let fresh = || {
                        let dx = ask.0.then(|| start.clone());
                        let dw = ask.1.then(|| vec![T::one(); c]);
                        let db = ask.2.then(|| vec![T::zero(); c]);
                        (dx, dw, db)
                    };
                    let (mut ex, mut ew, mut eb) = fresh();
                    let two = if add {
                        batch_norm2d_train_backward
                    } else {
                        batch_norm2d_train_backward_overwrite
                    };
                    let (dx, dw, db) = (ex.as_deref_mut(), ew.as_deref_mut(), eb.as_deref_mut());
                    two(&x, n, c, hw, &weight, &sm, &si, &dh, dx, dw, db).unwrap();
                    let (mut gx, mut gw, mut gb) = fresh();
                    let fused = if add {
                        batch_norm2d_train_relu_max_pool2d_backward
                    } else {
                        batch_norm2d_train_relu_max_pool2d_backward_overwrite
                    };
                    let (dx, dw, db) = (gx.as_deref_mut(), gw.as_deref_mut(), gb.as_deref_mut());
                    fused(&x, n, &pool, &weight, &sm, &si, &winners, &dy, dx, dw, db).unwrap();
                    let what = format!("{pool:?}, n = {n}, add = {add}, asked {ask:?}");
                    let near = |a: T, e: T, bound: f64, name: &str, q: usize| {
                        let d = (a.to_f64() - e.to_f64()).abs();
                        assert!(
                            d <= bound,
                            "{name}[{q}]: {a} against {e} (bound {bound}), {what}"
                        );
                    };
                    assert_eq!(gx.is_some(), ex.is_some());
                    if let (Some(gx), Some(ex)) = (&gx, &ex) {
                        for (q, ((&a, &e), &xi)) in gx.iter().zip(ex).zip(&x).enumerate() {
                            let k = q / hw % c;
                            let (g, xi) = (dh[q].to_f64(), xi.to_f64());
                            let xhat = ((xi - sm[k].to_f64()) * si[k].to_f64()).abs();
                            let scale = (weight[k].to_f64() * si[k].to_f64() / depth).abs();
                            let terms = scale * (depth * g.abs() + abs_g[k] + xhat * abs_gx[k]);
                            let base = if add { start[q].to_f64().abs() } else { 0.0 };
                            near(a, e, depth * eps * (terms + base), "dx", q);
                        }
                    }
                    for k in 0..c {
                        if let (Some(a), Some(e)) = (&gw, &ew) {
                            near(a[k], e[k], depth * eps * (abs_gx[k] + 1.0), "dweight", k);
                        }
                        if let (Some(a), Some(e)) = (&gb, &eb) {
                            near(a[k], e[k], depth * eps * abs_g[k], "dbias", k);
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn backward_close_to_two_ops_f32() {
        backward_close_to_two_ops::<f32>();
    }

    #[test]
    fn backward_close_to_two_ops_f64() {
        backward_close_to_two_ops::<f64>();
    }

    /// The sixteen-lane passes against the portable ones, to the bit: widths of 1-40
    /// windows (every partial group), ties and zeros, both forms of the backward pass.
    #[test]
    fn lanes16_same_as_portable() {
        for (s, ow) in (1..=40).enumerate() {
            let (n, oh) = (1 + s % 3, 1 + s % 2);
            let pool = Pool2dGeom::new(2, 2 * oh, 2 * ow, 2, 2, 0).unwrap();
            lanes16_against_portable(&pool, n, s as u64 * 10 + 5);
        }
    }

    /// [`lanes16_same_as_portable`] with more channels than the sixteen-lane backward pass
    /// takes in one block, and a last block of a few.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn lanes16_same_as_portable_over_blocks() {
        let pool = Pool2dGeom::new(2 * avx512::BLOCK + 3, 2, 6, 2, 2, 0).unwrap();
        lanes16_against_portable(&pool, 2, 909);
    }

    /// Both passes in sixteen lanes and portably, to the bit, with values from seed `s`.
    fn lanes16_against_portable(pool: &Pool2dGeom, n: usize, s: u64) {
        let c = pool.c;
        let x: Vec<f32> = tied_x(s, n * pool.input_len());
        let weight: Vec<f32> = random_vec(s + 1, c, -1.0, 2.0);
        let bias: Vec<f32> = random_vec(s + 2, c, -0.5, 0.5);
        let run = |lanes16: bool| {
            let (mut rm, mut rv) = (vec![0.0f32; c], vec![1.0f32; c]);
            let (mut sm, mut si) = (vec![0.0f32; c], vec![0.0f32; c]);
            let mut y = vec![9.0f32; n * pool.output_len()];
            let mut winners = vec![7u8; y.len()];
            let stats = (&mut rm[..], &mut rv[..], &mut sm[..], &mut si[..]);
            let config = (1e-5, 0.1, lanes16);
            forward(
                &x,
                n,
                pool,
                (&weight, &bias),
                config,
                stats,
                &mut y,
                &mut winners,
            )
            .unwrap();
            let dy: Vec<f32> = random_vec(s + 3, y.len(), -1.0, 1.0);
            let mut grads = Vec::new();
            for add in [false, true] {
                let mut dx: Vec<f32> = random_vec(s + 4, x.len(), -1.0, 1.0);
                let (mut dw, mut db) = (vec![1.0f32; c], vec![0.0f32; c]);
                let g = (Some(&mut dx[..]), Some(&mut dw[..]), Some(&mut db[..]));
                let stats = (&sm[..], &si[..]);
                let (values, p) = ((&winners[..], &dy[..]), &pool);
                if add {
                    backward::<f32, true>(&x, n, p, &weight, stats, values, g, lanes16)
                } else {
                    backward::<f32, false>(&x, n, p, &weight, stats, values, g, lanes16)
                }
                .unwrap();
                grads.push((bits(&dx), bits(&dw), bits(&db)));
            }
            (bits(&y), winners, bits(&sm), bits(&si), bits(&rv), grads)
        };
        assert!(run(true) == run(false), "{pool:?}, n = {n}");
    }

    /// The winning values kept in winners' bytes as large as the relu's region (as generated
    /// code passes them) against none kept, to the bit: the same `y`, winners and
    /// statistics, the kept values `x` at each winner (its last position when there is
    /// none), and the same gradients from both forms of the backward pass, which read the
    /// kept values instead of `x`. Widths of 1-40 windows and `GEOMS`, ties and zeros.
    fn kept_same_as_read<T: Float>(lanes16: bool) {
        let widths = (1..=40).map(|ow| (2, 2 + 2 * (ow % 2), 2 * ow, 1 + ow % 3));
        let mut kept_geoms = 0;
        for (s, (c, h, w, n)) in GEOMS.iter().copied().chain(widths).enumerate() {
            let pool = Pool2dGeom::new(c, h, w, 2, 2, 0).unwrap();
            let s = s as u64 * 10 + 7;
            let x: Vec<T> = tied_x(s, n * pool.input_len());
            let weight: Vec<T> = random_vec(s + 1, c, -1.0, 2.0);
            let bias: Vec<T> = random_vec(s + 2, c, -0.5, 0.5);
            let out = n * pool.output_len();
            let dy: Vec<T> = random_vec(s + 3, out, -1.0, 1.0);
            let size = core::mem::size_of::<T>();
            let kept = kept_values::<T>(x.len() * size, out);
            if out >= 8 {
                assert!(kept.is_some(), "room for the values, {pool:?}, n = {n}");
            }
            kept_geoms += usize::from(kept.is_some());
            let run = |keep: bool| {
                let (mut rm, mut rv) = (vec![T::zero(); c], vec![T::one(); c]);
                let (mut sm, mut si) = (vec![T::zero(); c], vec![T::zero(); c]);
                let mut y = vec![T::from_f64(9.0); out];
                let mut region = vec![T::from_f64(7.0); x.len()];
                let mut short = vec![7u8; out];
                let winners = if keep {
                    workspace_bytes_mut(&mut region)
                } else {
                    &mut short[..]
                };
                let stats = (&mut rm[..], &mut rv[..], &mut sm[..], &mut si[..]);
                let config = (T::from_f64(1e-5), T::from_f64(0.1), lanes16);
                let affine = (&weight[..], &bias[..]);
                forward(&x, n, &pool, affine, config, stats, &mut y, winners).unwrap();
                let winners = &*winners;
                if let (true, Some(at)) = (keep, kept.clone()) {
                    let (oh, ow) = (pool.out_h(), pool.out_w());
                    for (q, &code) in winners[..out].iter().enumerate() {
                        let (plane, i, j) = (q / (oh * ow), q / ow % oh, q % ow);
                        let u = usize::from(code.min(3));
                        let xq = x[plane * h * w + (2 * i + u / 2) * w + 2 * j + u % 2];
                        let v: T = get(&winners[at.start + q * size..]);
                        assert_eq!(v.to_f64().to_bits(), xq.to_f64().to_bits(), "window {q}");
                    }
                }
                let mut grads = Vec::new();
                for add in [false, true] {
                    let mut dx: Vec<T> = random_vec(s + 4, x.len(), -1.0, 1.0);
                    let (mut dw, mut db) = (vec![T::one(); c], vec![T::zero(); c]);
                    let g = (Some(&mut dx[..]), Some(&mut dw[..]), Some(&mut db[..]));
                    let stats = (&sm[..], &si[..]);
                    let (values, p) = ((winners, &dy[..]), &pool);
                    if add {
                        backward::<T, true>(&x, n, p, &weight, stats, values, g, lanes16)
                    } else {
                        backward::<T, false>(&x, n, p, &weight, stats, values, g, lanes16)
                    }
                    .unwrap();
                    grads.push((bits(&dx), bits(&dw), bits(&db)));
                }
                let winners = winners[..out].to_vec();
                (bits(&y), winners, bits(&sm), bits(&si), bits(&rv), grads)
            };
            assert!(run(true) == run(false), "{pool:?}, n = {n}");
        }
        assert!(kept_geoms >= 40, "{kept_geoms}");
    }

    #[test]
    fn kept_same_as_read_f32() {
        kept_same_as_read::<f32>(false);
    }

    #[test]
    fn kept_same_as_read_f32_lanes16() {
        kept_same_as_read::<f32>(true);
    }

    #[test]
    fn kept_same_as_read_f64() {
        kept_same_as_read::<f64>(false);
    }

    /// Central differences of `Σ u·max_pool2d(relu(batch_norm_train(x)))` in `x`, `weight`
    /// and `bias`.
    #[test]
    fn gradient() {
        let (pool, n) = (Pool2dGeom::new(2, 4, 6, 2, 2, 0).unwrap(), 3);
        let c = pool.c;
        let x: Vec<f64> = random_vec(1, n * pool.input_len(), -2.0, 3.0);
        let weight: Vec<f64> = random_vec(2, c, 0.5, 2.0);
        let bias: Vec<f64> = random_vec(3, c, -0.5, 0.5);
        let u: Vec<f64> = random_vec(4, n * pool.output_len(), -1.0, 1.0);
        let loss = |x: &[f64], w: &[f64], b: &[f64]| {
            let (y, ..) = fused_forward(&pool, x, n, (w, b));
            y.iter().zip(&u).map(|(p, q)| p * q).sum::<f64>()
        };
        let (_, winners, sm, si, ..) = fused_forward(&pool, &x, n, (&weight, &bias));
        let (mut dx, mut dw, mut db) = (vec![0.0; x.len()], vec![0.0; c], vec![0.0; c]);
        batch_norm2d_train_relu_max_pool2d_backward_overwrite(
            &x,
            n,
            &pool,
            &weight,
            &sm,
            &si,
            &winners,
            &u,
            Some(&mut dx),
            Some(&mut dw),
            Some(&mut db),
        )
        .unwrap();
        let name = "batch_norm2d_train_relu_max_pool2d_backward";
        assert_gradient(name, |x| loss(x, &weight, &bias), &x, &dx, 1e-6);
        assert_gradient(name, |w| loss(&x, w, &bias), &weight, &dw, 1e-6);
        assert_gradient(name, |b| loss(&x, &weight, b), &bias, &db, 1e-6);
    }

    #[test]
    fn bad_input_is_an_error() {
        let (pool, n) = (Pool2dGeom::new(2, 2, 4, 2, 2, 0).unwrap(), 2);
        let c = pool.c;
        let x: Vec<f32> = random_vec(5, n * pool.input_len(), -2.0, 3.0);
        let (w, b) = (vec![1.0f32; c], vec![0.0f32; c]);
        let forward = |pool: &Pool2dGeom, x: &[f32], winners: usize| {
            let (mut rm, mut rv, mut sm, mut si) = ([0.0f32; 2], [1.0; 2], [0.0; 2], [0.0; 2]);
            let mut y = vec![0.0f32; n * pool.output_len()];
            let mut wb = vec![0u8; winners];
            batch_norm2d_train_relu_max_pool2d(
                x, n, pool, &w, &b, 1e-5, 0.1, &mut rm, &mut rv, &mut sm, &mut si, &mut y, &mut wb,
            )
            .map_err(|e| e.to_string())
        };
        assert_eq!(forward(&pool, &x, 8), Ok(()));
        let short = forward(&pool, &x, 7).unwrap_err();
        assert!(
            short.contains("winners holds 7 bytes, needs one per window: 8"),
            "{short}"
        );
        for other in [
            Pool2dGeom::new(2, 2, 4, 2, 1, 0).unwrap(),
            Pool2dGeom::new(2, 3, 4, 2, 2, 0).unwrap(),
            Pool2dGeom::new(2, 2, 4, 2, 2, 1).unwrap(),
            Pool2dGeom::new(2, 4, 4, 4, 4, 0).unwrap(),
        ] {
            let x = vec![0.0f32; n * other.input_len()];
            let e = forward(&other, &x, 64).unwrap_err();
            assert!(e.contains("only a 2x2 pooling of stride 2"), "{e}");
        }
        let e = forward(&pool, &x[1..], 8).unwrap_err();
        assert!(e.contains("x"), "{e}");
        // the backward pass checks its inputs as the forward pass does
        let (winners, dy) = ([0u8; 8], [1.0f32; 8]);
        let mut dx = vec![0.0f32; x.len()];
        let (sm, si) = ([0.0f32; 2], [1.0f32; 2]);
        let back = |winners: &[u8], dy: &[f32], dx: &mut [f32]| {
            batch_norm2d_train_relu_max_pool2d_backward_overwrite(
                &x,
                n,
                &pool,
                &w,
                &sm,
                &si,
                winners,
                dy,
                Some(dx),
                None,
                None,
            )
            .map_err(|e| e.to_string())
        };
        assert_eq!(back(&winners, &dy, &mut dx), Ok(()));
        assert!(back(&winners[..7], &dy, &mut dx)
            .unwrap_err()
            .contains("winners holds 7"));
        assert!(back(&winners, &dy[..7], &mut dx)
            .unwrap_err()
            .contains("dy"));
        assert!(back(&winners, &dy, &mut dx[..15])
            .unwrap_err()
            .contains("dx"));
        // bytes above NO_WINNER count as it: no gradient from those windows
        let (mut a, mut e) = (vec![0.0f32; x.len()], vec![0.0f32; x.len()]);
        back(&[9u8; 8], &dy, &mut a).unwrap();
        back(&[NO_WINNER; 8], &dy, &mut e).unwrap();
        assert_eq!(a, e);
    }
}
