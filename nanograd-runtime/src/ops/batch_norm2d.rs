//! Batch normalisation over the channels of `x: [n, c, h, w]`, stored row-major with
//! `hw = h * w` (the seed's single image `[C, H, W]` is `n = 1`).
//!
//! Per channel `k`, over its `N = n * hw` values:
//!
//! ```text
//! training:  mean = Σ x / N,  var = Σ (x - mean)² / N            (biased, as the output uses)
//!            invstd = 1 / √(var + eps),  x̂ = (x - mean) · invstd
//!            y = weight · x̂ + bias
//!            running_mean = (1 - m) · running_mean + m · mean
//!            running_var  = (1 - m) · running_var  + m · var · N / (N - 1)   (unbiased)
//! eval:      x̂ = (x - running_mean) / √(running_var + eps),  y = weight · x̂ + bias
//! ```
//!
//! Derivatives. Training, through the batch statistics (`g = dy` of one channel):
//!
//! ```text
//! dx      = weight · invstd / N · (N · g - Σ g - x̂ · Σ g x̂)
//! dweight = Σ g x̂,   dbias = Σ g
//! ```
//!
//! Eval, where the statistics are constants: `dx = g · weight / √(running_var + eps)`, and
//! `dweight`, `dbias` as above with the eval `x̂`.
//!
//! As in PyTorch (`BatchNorm2d(momentum=m)`, seed defaults `eps = 1e-5`, `m = 0.1`),
//! training with a single value per channel (`N = 1`) is an error: its variance is
//! undefined. PyTorch's cumulative average (`momentum=None`) is not offered.

#[cfg(target_arch = "x86_64")]
use crate::float::as_f32;
use crate::simd::{vectorize_above, Kernel};
use crate::{check_len, invalid, Float, Result};

// batch norm → relu → 2x2 max pooling in a training step, without the relu's plane
mod pooled;
pub use pooled::*;

// the channel sums in sixteen `f32` lanes
#[cfg(target_arch = "x86_64")]
mod avx512;
#[cfg(target_arch = "x86_64")]
use avx512::Sum;

/// The CPU's AVX-512 and the two runs as `f32`, when `T` is `f32` and the CPU has it: then
/// the channel sums run `avx512.rs` (the same bits as the portable sums).
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn f32_sums<'a, T: Float>(a: &'a [T], b: &'a [T]) -> Option<(pulp::x86::V4, &'a [f32], &'a [f32])> {
    Some((avx512::available()?, as_f32(a)?, as_f32(b)?))
}

/// No AVX-512 sums off x86-64.
#[cfg(not(target_arch = "x86_64"))]
#[inline(always)]
fn f32_sums<T: Float>(
    _: &[T],
    _: &[T],
) -> Option<(core::convert::Infallible, &'static [f32], &'static [f32])> {
    None
}

/// Off x86-64 the sixteen-lane sums are never called ([`f32_sums`] is `None`).
#[cfg(not(target_arch = "x86_64"))]
mod avx512 {
    use core::convert::Infallible;
    type Dims = (usize, usize, usize, usize);
    // built by the callers, never read: `f32_sums` is `None` here
    #[allow(dead_code)]
    pub(super) enum Sum {
        Values,
        Squares { mean: f32 },
    }
    pub(super) fn channel_sum(simd: Infallible, _: &[f32], _: Dims, _: Sum) -> f32 {
        match simd {}
    }
    pub(super) fn channel_sum_and_dot(
        simd: Infallible,
        _: &[f32],
        _: &[f32],
        _: Dims,
        _: (f32, f32),
    ) -> (f32, f32) {
        match simd {}
    }
}
#[cfg(not(target_arch = "x86_64"))]
use avx512::Sum;

/// Checks that `x` holds `[n, c, hw]` and that the per-channel buffers hold `c` values.
fn check_dims(op: &'static str, x_len: usize, n: usize, c: usize, hw: usize) -> Result<()> {
    let len = n
        .checked_mul(c)
        .and_then(|v| v.checked_mul(hw))
        .ok_or_else(|| {
            invalid(
                op,
                format!("n * c * hw overflows: n = {n}, c = {c}, hw = {hw}"),
            )
        })?;
    check_len(op, "x", len, x_len)
}

/// The `n` contiguous runs of `hw` values that belong to channel `k`, as index ranges.
#[inline(always)]
fn channel_runs(
    n: usize,
    c: usize,
    hw: usize,
    k: usize,
) -> impl Iterator<Item = core::ops::Range<usize>> {
    (0..n).map(move |b| {
        let start = (b * c + k) * hw;
        start..start + hw
    })
}

/// Training-mode forward: normalises `x` with the batch statistics of each channel, writes
/// `y`, stores the batch mean and `1 / √(var + eps)` in `save_mean` / `save_invstd` (length
/// `c`, for the backward pass) and updates `running_mean` / `running_var` (length `c`) with
/// `momentum`. Errors if `n * hw < 2`.
#[allow(clippy::too_many_arguments)]
pub fn batch_norm2d_train<T: Float>(
    x: &[T],
    n: usize,
    c: usize,
    hw: usize,
    weight: &[T],
    bias: &[T],
    eps: T,
    momentum: T,
    running_mean: &mut [T],
    running_var: &mut [T],
    save_mean: &mut [T],
    save_invstd: &mut [T],
    y: &mut [T],
) -> Result<()> {
    let stats = (running_mean, running_var, save_mean, save_invstd);
    train_forward::<T, false>(x, (n, c, hw), weight, bias, eps, momentum, stats, y)
}

/// [`batch_norm2d_train`] followed by relu, in one pass over `y`: `y = max(0, weight·x̂ +
/// bias)` (NaN stays NaN, as in [`relu`](super::relu())), with the statistics saved and
/// updated as [`batch_norm2d_train`] does. Generated code calls it for a batch norm whose
/// only user is a relu whose backward pass is folded into the next op's (which reads the
/// relu's output, not batch norm's): batch norm's own output is then never written.
#[allow(clippy::too_many_arguments)]
pub fn batch_norm2d_train_relu<T: Float>(
    x: &[T],
    n: usize,
    c: usize,
    hw: usize,
    weight: &[T],
    bias: &[T],
    eps: T,
    momentum: T,
    running_mean: &mut [T],
    running_var: &mut [T],
    save_mean: &mut [T],
    save_invstd: &mut [T],
    y: &mut [T],
) -> Result<()> {
    let stats = (running_mean, running_var, save_mean, save_invstd);
    train_forward::<T, true>(x, (n, c, hw), weight, bias, eps, momentum, stats, y)
}

/// The four per-channel buffers of a training forward pass: `running_mean`, `running_var`,
/// `save_mean`, `save_invstd`.
type Stats<'a, T> = (&'a mut [T], &'a mut [T], &'a mut [T], &'a mut [T]);

/// [`batch_norm2d_train`], with relu applied to `y` when `RELU`.
#[allow(clippy::too_many_arguments)]
fn train_forward<T: Float, const RELU: bool>(
    x: &[T],
    (n, c, hw): (usize, usize, usize),
    weight: &[T],
    bias: &[T],
    eps: T,
    momentum: T,
    (running_mean, running_var, save_mean, save_invstd): Stats<'_, T>,
    y: &mut [T],
) -> Result<()> {
    const OP: &str = "batch_norm2d_train";
    check_dims(OP, x.len(), n, c, hw)?;
    check_len(OP, "y", x.len(), y.len())?;
    check_len(OP, "weight", c, weight.len())?;
    check_len(OP, "bias", c, bias.len())?;
    check_len(OP, "running_mean", c, running_mean.len())?;
    check_len(OP, "running_var", c, running_var.len())?;
    check_len(OP, "save_mean", c, save_mean.len())?;
    check_len(OP, "save_invstd", c, save_invstd.len())?;
    let count = n * hw;
    if c > 0 && count < 2 {
        return Err(invalid(
            OP,
            format!(
                "expected more than 1 value per channel when training, got n * h * w = {count}"
            ),
        ));
    }
    let stats = (running_mean, running_var, save_mean, save_invstd);
    let kernel = TrainForward::<T, RELU> {
        x,
        dims: (n, c, hw),
        weight,
        bias,
        eps,
        momentum,
        stats,
        y,
    };
    vectorize_above(x.len(), kernel);
    Ok(())
}

/// [`batch_norm2d_train`]'s loops, compiled for the CPU's widest vectors: per channel, the
/// mean, the variance about it, then `y` (through relu when `RELU`).
struct TrainForward<'a, T, const RELU: bool> {
    x: &'a [T],
    dims: (usize, usize, usize),
    weight: &'a [T],
    bias: &'a [T],
    eps: T,
    momentum: T,
    /// `running_mean`, `running_var`, `save_mean`, `save_invstd`.
    stats: (&'a mut [T], &'a mut [T], &'a mut [T], &'a mut [T]),
    y: &'a mut [T],
}

impl<T: Float, const RELU: bool> Kernel for TrainForward<'_, T, RELU> {
    type Output = ();
    #[inline(always)]
    fn run(self) {
        let Self {
            x,
            dims: (n, c, hw),
            weight,
            bias,
            eps,
            momentum,
            stats: (running_mean, running_var, save_mean, save_invstd),
            y,
        } = self;
        for k in 0..c {
            let (mean, invstd, sq) = channel_stats(x, (n, c, hw, k), eps);
            let (scale, shift) = (weight[k] * invstd, bias[k]);
            for r in channel_runs(n, c, hw, k) {
                for (yi, &xi) in y[r.clone()].iter_mut().zip(&x[r]) {
                    let v = (xi - mean) * scale + shift;
                    // relu as `ops::relu` computes it, to the bit
                    *yi = if RELU && v < T::zero() { T::zero() } else { v };
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

/// Channel `k`'s batch statistics (dims `(n, c, hw, k)`): `(mean, invstd, Σ (x - mean)²)`,
/// from a pass for `Σ x` and one for the squares.
#[inline(always)]
fn channel_stats<T: Float>(x: &[T], dims: (usize, usize, usize, usize), eps: T) -> (T, T, T) {
    let (n, c, hw, k) = dims;
    let nf = T::from_usize(n * hw);
    let fast = f32_sums(x, x);
    let mut sum = T::zero();
    if let Some((simd, x, _)) = fast {
        sum = T::from_f64(avx512::channel_sum(simd, x, dims, Sum::Values).into());
    } else {
        for r in channel_runs(n, c, hw, k) {
            sum += lanes_sum(&x[r], |v| v);
        }
    }
    let mean = sum / nf;
    let mut sq = T::zero();
    if let Some((simd, x, _)) = fast {
        let what = Sum::Squares {
            mean: mean.to_f64() as f32,
        };
        sq = T::from_f64(avx512::channel_sum(simd, x, dims, what).into());
    } else {
        for r in channel_runs(n, c, hw, k) {
            sq += lanes_sum(&x[r], |v| (v - mean) * (v - mean));
        }
    }
    let var = sq / nf;
    (mean, T::one() / (var + eps).sqrt(), sq)
}

/// Stores channel `k`'s `(mean, invstd)` for the backward pass and moves its running
/// statistics towards the batch's (`count` values, `Σ (x - mean)² = sq`) by `momentum`.
#[inline(always)]
fn save_stats<T: Float>(
    (running_mean, running_var, save_mean, save_invstd): Stats<'_, T>,
    k: usize,
    (count, momentum): (usize, T),
    (mean, invstd, sq): (T, T, T),
) {
    let unbiased = sq / T::from_usize(count - 1);
    running_mean[k] = (T::one() - momentum) * running_mean[k] + momentum * mean;
    running_var[k] = (T::one() - momentum) * running_var[k] + momentum * unbiased;
    save_mean[k] = mean;
    save_invstd[k] = invstd;
}

/// Training-mode backward, through the batch statistics: accumulates into `dx`, `dweight`
/// and `dbias` (each optional) from `dy`, using the `save_mean` / `save_invstd` written by
/// [`batch_norm2d_train`].
#[allow(clippy::too_many_arguments)]
pub fn batch_norm2d_train_backward<T: Float>(
    x: &[T],
    n: usize,
    c: usize,
    hw: usize,
    weight: &[T],
    save_mean: &[T],
    save_invstd: &[T],
    dy: &[T],
    dx: Option<&mut [T]>,
    dweight: Option<&mut [T]>,
    dbias: Option<&mut [T]>,
) -> Result<()> {
    let stats = (save_mean, save_invstd);
    train_backward::<T, true>(x, (n, c, hw), weight, stats, dy, (dx, dweight, dbias))
}

/// [`batch_norm2d_train_backward`] for a `dx` that holds nothing yet (the first
/// contribution to a gradient, which then needs no zeroing): `dx` is overwritten, whatever
/// it held; `dweight` and `dbias` are added to.
#[allow(clippy::too_many_arguments)]
pub fn batch_norm2d_train_backward_overwrite<T: Float>(
    x: &[T],
    n: usize,
    c: usize,
    hw: usize,
    weight: &[T],
    save_mean: &[T],
    save_invstd: &[T],
    dy: &[T],
    dx: Option<&mut [T]>,
    dweight: Option<&mut [T]>,
    dbias: Option<&mut [T]>,
) -> Result<()> {
    let stats = (save_mean, save_invstd);
    train_backward::<T, false>(x, (n, c, hw), weight, stats, dy, (dx, dweight, dbias))
}

/// The three optional gradients of a backward pass: `dx`, `dweight`, `dbias`.
type Grads<'a, T> = (
    Option<&'a mut [T]>,
    Option<&'a mut [T]>,
    Option<&'a mut [T]>,
);

/// Checks the lengths of the gradients that are asked for.
fn check_grads<T>(op: &'static str, len: usize, c: usize, grads: &Grads<'_, T>) -> Result<()> {
    if let Some(dx) = grads.0.as_deref() {
        check_len(op, "dx", len, dx.len())?;
    }
    if let Some(dw) = grads.1.as_deref() {
        check_len(op, "dweight", c, dw.len())?;
    }
    if let Some(db) = grads.2.as_deref() {
        check_len(op, "dbias", c, db.len())?;
    }
    Ok(())
}

/// [`batch_norm2d_train_backward`], adding onto `dx` when `ADD`, else overwriting it.
fn train_backward<T: Float, const ADD: bool>(
    x: &[T],
    (n, c, hw): (usize, usize, usize),
    weight: &[T],
    (save_mean, save_invstd): (&[T], &[T]),
    dy: &[T],
    grads: Grads<'_, T>,
) -> Result<()> {
    const OP: &str = "batch_norm2d_train_backward";
    check_dims(OP, x.len(), n, c, hw)?;
    check_len(OP, "dy", x.len(), dy.len())?;
    check_len(OP, "weight", c, weight.len())?;
    check_len(OP, "save_mean", c, save_mean.len())?;
    check_len(OP, "save_invstd", c, save_invstd.len())?;
    check_grads(OP, x.len(), c, &grads)?;
    let kernel = TrainBackward::<T, ADD> {
        x,
        dims: (n, c, hw),
        weight,
        stats: (save_mean, save_invstd),
        dy,
        grads,
    };
    vectorize_above(x.len(), kernel);
    Ok(())
}

/// [`train_backward`]'s loops, compiled for the CPU's widest vectors: per channel, `Σ g`
/// and `Σ g·x̂` in one pass over `dy` and `x`, then `dx`.
struct TrainBackward<'a, T, const ADD: bool> {
    x: &'a [T],
    dims: (usize, usize, usize),
    weight: &'a [T],
    stats: (&'a [T], &'a [T]),
    dy: &'a [T],
    grads: Grads<'a, T>,
}

impl<T: Float, const ADD: bool> Kernel for TrainBackward<'_, T, ADD> {
    type Output = ();
    #[inline(always)]
    fn run(self) {
        let Self {
            x,
            dims: (n, c, hw),
            weight,
            stats: (save_mean, save_invstd),
            dy,
            grads: (mut dx, mut dweight, mut dbias),
        } = self;
        let nf = T::from_usize(n * hw);
        let fast = f32_sums(dy, x);
        for k in 0..c {
            let (mean, invstd) = (save_mean[k], save_invstd[k]);
            let (mut sum_g, mut sum_gx) = (T::zero(), T::zero());
            if let Some((simd, dy, x)) = fast {
                let stats = (mean.to_f64() as f32, invstd.to_f64() as f32);
                let (g, gx) = avx512::channel_sum_and_dot(simd, dy, x, (n, c, hw, k), stats);
                (sum_g, sum_gx) = (T::from_f64(g.into()), T::from_f64(gx.into()));
            } else {
                for r in channel_runs(n, c, hw, k) {
                    let (g, gx) =
                        lanes_sum_and_dot(&dy[r.clone()], &x[r], |g, xi| g * (xi - mean) * invstd);
                    sum_g += g;
                    sum_gx += gx;
                }
            }
            if let Some(dx) = dx.as_deref_mut() {
                let a = weight[k] * invstd / nf;
                for r in channel_runs(n, c, hw, k) {
                    let runs = dx[r.clone()].iter_mut().zip(&dy[r.clone()]).zip(&x[r]);
                    for ((d, &g), &xi) in runs {
                        let xhat = (xi - mean) * invstd;
                        let v = a * (nf * g - sum_g - xhat * sum_gx);
                        *d = if ADD { *d + v } else { v };
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

/// Eval-mode forward: normalises `x` with `running_mean` / `running_var` (length `c`),
/// which it leaves unchanged.
#[allow(clippy::too_many_arguments)]
pub fn batch_norm2d_eval<T: Float>(
    x: &[T],
    n: usize,
    c: usize,
    hw: usize,
    weight: &[T],
    bias: &[T],
    running_mean: &[T],
    running_var: &[T],
    eps: T,
    y: &mut [T],
) -> Result<()> {
    const OP: &str = "batch_norm2d_eval";
    check_dims(OP, x.len(), n, c, hw)?;
    check_len(OP, "y", x.len(), y.len())?;
    check_len(OP, "weight", c, weight.len())?;
    check_len(OP, "bias", c, bias.len())?;
    check_len(OP, "running_mean", c, running_mean.len())?;
    check_len(OP, "running_var", c, running_var.len())?;
    for k in 0..c {
        let mean = running_mean[k];
        let scale = weight[k] / (running_var[k] + eps).sqrt();
        for r in channel_runs(n, c, hw, k) {
            for (yi, &xi) in y[r.clone()].iter_mut().zip(&x[r]) {
                *yi = (xi - mean) * scale + bias[k];
            }
        }
    }
    Ok(())
}

/// Eval-mode backward: accumulates into `dx`, `dweight` and `dbias` (each optional), with
/// the running statistics held constant.
#[allow(clippy::too_many_arguments)]
pub fn batch_norm2d_eval_backward<T: Float>(
    x: &[T],
    n: usize,
    c: usize,
    hw: usize,
    weight: &[T],
    running_mean: &[T],
    running_var: &[T],
    eps: T,
    dy: &[T],
    dx: Option<&mut [T]>,
    dweight: Option<&mut [T]>,
    dbias: Option<&mut [T]>,
) -> Result<()> {
    let stats = (running_mean, running_var, eps);
    eval_backward::<T, true>(x, (n, c, hw), weight, stats, dy, (dx, dweight, dbias))
}

/// [`batch_norm2d_eval_backward`] for a `dx` that holds nothing yet: `dx` is overwritten,
/// whatever it held; `dweight` and `dbias` are added to.
#[allow(clippy::too_many_arguments)]
pub fn batch_norm2d_eval_backward_overwrite<T: Float>(
    x: &[T],
    n: usize,
    c: usize,
    hw: usize,
    weight: &[T],
    running_mean: &[T],
    running_var: &[T],
    eps: T,
    dy: &[T],
    dx: Option<&mut [T]>,
    dweight: Option<&mut [T]>,
    dbias: Option<&mut [T]>,
) -> Result<()> {
    let stats = (running_mean, running_var, eps);
    eval_backward::<T, false>(x, (n, c, hw), weight, stats, dy, (dx, dweight, dbias))
}

/// [`batch_norm2d_eval_backward`], adding onto `dx` when `ADD`, else overwriting it.
fn eval_backward<T: Float, const ADD: bool>(
    x: &[T],
    (n, c, hw): (usize, usize, usize),
    weight: &[T],
    (running_mean, running_var, eps): (&[T], &[T], T),
    dy: &[T],
    (mut dx, mut dweight, mut dbias): Grads<'_, T>,
) -> Result<()> {
    const OP: &str = "batch_norm2d_eval_backward";
    check_dims(OP, x.len(), n, c, hw)?;
    check_len(OP, "dy", x.len(), dy.len())?;
    check_len(OP, "weight", c, weight.len())?;
    check_len(OP, "running_mean", c, running_mean.len())?;
    check_len(OP, "running_var", c, running_var.len())?;
    check_grads(
        OP,
        x.len(),
        c,
        &(
            dx.as_deref_mut(),
            dweight.as_deref_mut(),
            dbias.as_deref_mut(),
        ),
    )?;
    for k in 0..c {
        let mean = running_mean[k];
        let invstd = T::one() / (running_var[k] + eps).sqrt();
        let (mut sum_g, mut sum_gx) = (T::zero(), T::zero());
        for r in channel_runs(n, c, hw, k) {
            for (&g, &xi) in dy[r.clone()].iter().zip(&x[r.clone()]) {
                sum_g += g;
                sum_gx += g * (xi - mean) * invstd;
            }
            if let Some(dx) = dx.as_deref_mut() {
                let a = weight[k] * invstd;
                for (d, &g) in dx[r.clone()].iter_mut().zip(&dy[r]) {
                    *d = if ADD { *d + a * g } else { a * g };
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
    Ok(())
}

/// Accumulators of the channel reductions: independent sums, so that they vectorise (a
/// single running sum is one long chain of dependent additions).
const LANES: usize = 16;

/// `Σ f(v)` over a run of one channel.
#[inline(always)]
fn lanes_sum<T: Float>(v: &[T], f: impl Fn(T) -> T) -> T {
    let mut acc = [T::zero(); LANES];
    let chunks = v.chunks_exact(LANES);
    let tail: T = chunks.remainder().iter().map(|&x| f(x)).sum();
    for c in chunks {
        for l in 0..LANES {
            acc[l] += f(c[l]);
        }
    }
    acc.iter().copied().sum::<T>() + tail
}

/// `(Σ a, Σ f(a, b))` over two runs of one channel, in one pass: each sum added up in
/// the order of [`lanes_sum`].
#[inline(always)]
fn lanes_sum_and_dot<T: Float>(a: &[T], b: &[T], f: impl Fn(T, T) -> T) -> (T, T) {
    let (mut acc, mut acc_f) = ([T::zero(); LANES], [T::zero(); LANES]);
    let (ca, cb) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    let tail: T = ra.iter().copied().sum();
    let tail_f: T = ra.iter().zip(rb).map(|(&x, &y)| f(x, y)).sum();
    for (x, y) in ca.zip(cb) {
        for l in 0..LANES {
            acc[l] += x[l];
            acc_f[l] += f(x[l], y[l]);
        }
    }
    (
        acc.iter().copied().sum::<T>() + tail,
        acc_f.iter().copied().sum::<T>() + tail_f,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::assert_close;
    use crate::testing::{assert_gradient, random_vec};

    // x: [n = 1, c = 2, h*w = 4]; channel 0 is constant, channel 1 is not.
    const X: [f64; 8] = [5.0, 5.0, 5.0, 5.0, 0.0, 0.0, 0.0, 4.0];
    const DY: [f64; 8] = [1.0, 2.0, 3.0, 4.0, 1.0, 0.0, 0.0, 2.0];

    fn cast<T: Float>(v: &[f64]) -> Vec<T> {
        v.iter().map(|&a| T::from_f64(a)).collect()
    }

    fn train_literal<T: Float>() {
        // eps = 1, weight = [2, 3], bias = [0.5, -1], momentum = 0.1, running = [1, -1] / [1, 1]
        // ch0: mean 5, var 0, invstd 1/√1 = 1, x̂ = 0            -> y = 0.5
        // ch1: mean 1, var (1+1+1+9)/4 = 3, invstd 1/√4 = 0.5,
        //      x̂ = [-.5, -.5, -.5, 1.5]                         -> y = 3 x̂ - 1
        // running_mean = 0.9·[1, -1] + 0.1·[5, 1] = [1.4, -0.8]
        // running_var  = 0.9·1 + 0.1·[0, 3·4/3] = [0.9, 1.3]
        let x = cast::<T>(&X);
        let (w, b) = (cast::<T>(&[2.0, 3.0]), cast::<T>(&[0.5, -1.0]));
        let (mut rm, mut rv) = (cast::<T>(&[1.0, -1.0]), cast::<T>(&[1.0, 1.0]));
        let (mut sm, mut si) = (vec![T::zero(); 2], vec![T::zero(); 2]);
        let mut y = vec![T::zero(); 8];
        let (eps, m) = (T::one(), T::from_f64(0.1));
        batch_norm2d_train(
            &x, 1, 2, 4, &w, &b, eps, m, &mut rm, &mut rv, &mut sm, &mut si, &mut y,
        )
        .unwrap();
        assert_close!(y, [0.5, 0.5, 0.5, 0.5, -2.5, -2.5, -2.5, 3.5]);
        assert_close!(rm, [1.4, -0.8]);
        assert_close!(rv, [0.9, 1.3]);
        assert_close!(sm, [5.0, 1.0]);
        assert_close!(si, [1.0, 0.5]);
        // backward, a = weight·invstd/N:
        // ch0: a = 0.5, Σg = 10, x̂ = 0: dx = 0.5·(4 dy - 10) = [-3, -1, 1, 3]; dw 0, db 10
        // ch1: a = 0.375, Σg = 3, Σg x̂ = -0.5 + 3 = 2.5,
        //      dx = 0.375·(4 dy - 3 - 2.5 x̂) = [0.84375, -0.65625, -0.65625, 0.46875]
        //      dw = 2.5, db = 3
        // accumulated onto dx = 1, dweight = 10, dbias = 0
        let mut dx = vec![T::one(); 8];
        let mut dw = cast::<T>(&[10.0, 10.0]);
        let mut db = vec![T::zero(); 2];
        let dy = cast::<T>(&DY);
        batch_norm2d_train_backward(
            &x,
            1,
            2,
            4,
            &w,
            &sm,
            &si,
            &dy,
            Some(&mut dx),
            Some(&mut dw),
            Some(&mut db),
        )
        .unwrap();
        assert_close!(
            dx,
            [-2.0, 0.0, 2.0, 4.0, 1.84375, 0.34375, 0.34375, 1.46875]
        );
        assert_close!(dw, [10.0, 12.5]);
        assert_close!(db, [10.0, 3.0]);
    }

    fn eval_literal<T: Float>() {
        // eps = 1, running_mean = [4, 0], running_var = [3, 8]: invstd = [1/2, 1/3]
        // ch0: x̂ = (5 - 4)/2 = 0.5 -> y = 2·0.5 + 0.5 = 1.5
        // ch1: x̂ = x/3 = [0, 0, 0, 4/3] -> y = 3 x̂ - 1 = [-1, -1, -1, 3]
        let x = cast::<T>(&X);
        let (w, b) = (cast::<T>(&[2.0, 3.0]), cast::<T>(&[0.5, -1.0]));
        let (rm, rv) = (cast::<T>(&[4.0, 0.0]), cast::<T>(&[3.0, 8.0]));
        let mut y = vec![T::zero(); 8];
        batch_norm2d_eval(&x, 1, 2, 4, &w, &b, &rm, &rv, T::one(), &mut y).unwrap();
        assert_close!(y, [1.5, 1.5, 1.5, 1.5, -1.0, -1.0, -1.0, 3.0]);
        // dx = dy·weight·invstd: ch0 dy·2·0.5 = dy, ch1 dy·3/3 = dy
        // dweight = Σ dy x̂ = [0.5·10, 2·4/3], dbias = Σ dy = [10, 3]
        let (mut dx, mut dw, mut db) = (vec![T::zero(); 8], vec![T::zero(); 2], vec![T::one(); 2]);
        let dy = cast::<T>(&DY);
        batch_norm2d_eval_backward(
            &x,
            1,
            2,
            4,
            &w,
            &rm,
            &rv,
            T::one(),
            &dy,
            Some(&mut dx),
            Some(&mut dw),
            Some(&mut db),
        )
        .unwrap();
        assert_close!(dx, DY);
        assert_close!(dw, [5.0, 8.0 / 3.0]);
        assert_close!(db, [11.0, 4.0]);
    }

    #[test]
    fn literal_f64_and_f32() {
        train_literal::<f64>();
        train_literal::<f32>();
        eval_literal::<f64>();
        eval_literal::<f32>();
    }

    /// `Σ up · y` for the training forward on fresh running statistics.
    fn train_loss(
        x: &[f64],
        w: &[f64],
        b: &[f64],
        up: &[f64],
        n: usize,
        c: usize,
        hw: usize,
    ) -> f64 {
        let (mut rm, mut rv, mut sm, mut si) =
            (vec![0.0; c], vec![1.0; c], vec![0.0; c], vec![0.0; c]);
        let mut y = vec![0.0; x.len()];
        batch_norm2d_train(
            x, n, c, hw, w, b, 1e-5, 0.1, &mut rm, &mut rv, &mut sm, &mut si, &mut y,
        )
        .unwrap();
        y.iter().zip(up).map(|(a, b)| a * b).sum()
    }

    #[test]
    fn gradcheck_train() {
        let (n, c, hw) = (2, 3, 5);
        let x: Vec<f64> = random_vec(1, n * c * hw, -2.0, 2.0);
        let w: Vec<f64> = random_vec(2, c, 0.5, 1.5);
        let b: Vec<f64> = random_vec(3, c, -1.0, 1.0);
        let up: Vec<f64> = random_vec(4, n * c * hw, -1.0, 1.0);
        let (mut rm, mut rv, mut sm, mut si) =
            (vec![0.0; c], vec![1.0; c], vec![0.0; c], vec![0.0; c]);
        let mut y = vec![0.0; x.len()];
        batch_norm2d_train(
            &x, n, c, hw, &w, &b, 1e-5, 0.1, &mut rm, &mut rv, &mut sm, &mut si, &mut y,
        )
        .unwrap();
        let (mut dx, mut dw, mut db) = (vec![0.0; x.len()], vec![0.0; c], vec![0.0; c]);
        batch_norm2d_train_backward(
            &x,
            n,
            c,
            hw,
            &w,
            &sm,
            &si,
            &up,
            Some(&mut dx),
            Some(&mut dw),
            Some(&mut db),
        )
        .unwrap();
        let f = |x: &[f64]| train_loss(x, &w, &b, &up, n, c, hw);
        assert_gradient("batch_norm2d_train dx", f, &x, &dx, 1e-6);
        let f = |w: &[f64]| train_loss(&x, w, &b, &up, n, c, hw);
        assert_gradient("batch_norm2d_train dweight", f, &w, &dw, 1e-6);
        let f = |b: &[f64]| train_loss(&x, &w, b, &up, n, c, hw);
        assert_gradient("batch_norm2d_train dbias", f, &b, &db, 1e-6);
    }

    #[test]
    fn gradcheck_eval() {
        let (n, c, hw) = (2, 3, 4);
        let x: Vec<f64> = random_vec(5, n * c * hw, -2.0, 2.0);
        let w: Vec<f64> = random_vec(6, c, -1.5, 1.5);
        let b: Vec<f64> = random_vec(7, c, -1.0, 1.0);
        let rm: Vec<f64> = random_vec(8, c, -0.5, 0.5);
        let rv: Vec<f64> = random_vec(9, c, 0.5, 2.0);
        let up: Vec<f64> = random_vec(10, n * c * hw, -1.0, 1.0);
        let loss = |x: &[f64], w: &[f64], b: &[f64]| -> f64 {
            let mut y = vec![0.0; x.len()];
            batch_norm2d_eval(x, n, c, hw, w, b, &rm, &rv, 1e-5, &mut y).unwrap();
            y.iter().zip(&up).map(|(a, b)| a * b).sum()
        };
        let (mut dx, mut dw, mut db) = (vec![0.0; x.len()], vec![0.0; c], vec![0.0; c]);
        batch_norm2d_eval_backward(
            &x,
            n,
            c,
            hw,
            &w,
            &rm,
            &rv,
            1e-5,
            &up,
            Some(&mut dx),
            Some(&mut dw),
            Some(&mut db),
        )
        .unwrap();
        assert_gradient("batch_norm2d_eval dx", |x| loss(x, &w, &b), &x, &dx, 1e-6);
        assert_gradient(
            "batch_norm2d_eval dweight",
            |w| loss(&x, w, &b),
            &w,
            &dw,
            1e-6,
        );
        assert_gradient(
            "batch_norm2d_eval dbias",
            |b| loss(&x, &w, b),
            &b,
            &db,
            1e-6,
        );
    }

    #[test]
    fn bad_input_is_an_error() {
        let x = [0.0f64; 12];
        let p = [1.0f64; 3];
        let (mut rm, mut rv, mut sm, mut si) = ([0.0; 3], [1.0; 3], [0.0; 3], [0.0; 3]);
        let mut y = [0.0f64; 12];
        // x is [1, 3, 4] = 12 values, but [2, 3, 4] was announced
        let err = batch_norm2d_train(
            &x, 2, 3, 4, &p, &p, 1e-5, 0.1, &mut rm, &mut rv, &mut sm, &mut si, &mut y,
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "length mismatch in batch_norm2d_train: `x` has 12 elements, expected 24"
        );
        let err = batch_norm2d_train(
            &x,
            1,
            3,
            4,
            &p[..2],
            &p,
            1e-5,
            0.1,
            &mut rm,
            &mut rv,
            &mut sm,
            &mut si,
            &mut y,
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "length mismatch in batch_norm2d_train: `weight` has 2 elements, expected 3"
        );
        // one value per channel: [1, 12, 1]
        let p12 = [1.0f64; 12];
        let (mut rm, mut rv, mut sm, mut si) = ([0.0; 12], [1.0; 12], [0.0; 12], [0.0; 12]);
        let err = batch_norm2d_train(
            &x, 1, 12, 1, &p12, &p12, 1e-5, 0.1, &mut rm, &mut rv, &mut sm, &mut si, &mut y,
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid argument to batch_norm2d_train: expected more than 1 value per channel when training, got n * h * w = 1"
        );
        assert_eq!(rv, [1.0; 12], "running statistics untouched on error");
        let err =
            batch_norm2d_eval(&x, usize::MAX, 2, 2, &p, &p, &p, &p, 1e-5, &mut y).unwrap_err();
        assert!(err.to_string().contains("overflows"), "{err}");
        let mut dx = [0.0f64; 11];
        let err =
            batch_norm2d_train_backward(&x, 1, 3, 4, &p, &p, &p, &x, Some(&mut dx), None, None)
                .unwrap_err();
        assert_eq!(
            err.to_string(),
            "length mismatch in batch_norm2d_train_backward: `dx` has 11 elements, expected 12"
        );
        let mut db = [0.0f64; 4];
        assert!(batch_norm2d_eval_backward(
            &x,
            1,
            3,
            4,
            &p,
            &p,
            &p,
            1e-5,
            &x,
            None,
            None,
            Some(&mut db)
        )
        .is_err());
    }

    /// The overwriting backward passes against the accumulating ones onto zeros, on a batch
    /// whose runs are not whole multiples of the 16 lanes, in f64 and f32.
    fn overwrite_matches_add<T: Float>() {
        let (n, c, hw) = (3, 4, 7 * 5);
        let x: Vec<T> = random_vec(60, n * c * hw, -2.0, 2.0);
        let dy: Vec<T> = random_vec(61, x.len(), -1.0, 1.0);
        let w: Vec<T> = random_vec(62, c, 0.5, 1.5);
        let b: Vec<T> = random_vec(63, c, -0.5, 0.5);
        let (mut rm, mut rv) = (vec![T::zero(); c], vec![T::one(); c]);
        let (mut sm, mut si, mut y) = (
            vec![T::zero(); c],
            vec![T::zero(); c],
            vec![T::zero(); x.len()],
        );
        let eps = T::from_f64(1e-5);
        let mom = T::from_f64(0.1);
        batch_norm2d_train(
            &x, n, c, hw, &w, &b, eps, mom, &mut rm, &mut rv, &mut sm, &mut si, &mut y,
        )
        .unwrap();
        let nan = T::from_f64(f64::NAN);
        let grads = |overwrite: bool, train: bool| {
            let mut dx = vec![if overwrite { nan } else { T::zero() }; x.len()];
            let (mut dw, mut db) = (vec![T::one(); c], vec![T::one(); c]);
            let g = (Some(&mut dx[..]), Some(&mut dw[..]), Some(&mut db[..]));
            match (overwrite, train) {
                (true, true) => batch_norm2d_train_backward_overwrite(
                    &x, n, c, hw, &w, &sm, &si, &dy, g.0, g.1, g.2,
                ),
                (false, true) => {
                    batch_norm2d_train_backward(&x, n, c, hw, &w, &sm, &si, &dy, g.0, g.1, g.2)
                }
                (true, false) => batch_norm2d_eval_backward_overwrite(
                    &x, n, c, hw, &w, &rm, &rv, eps, &dy, g.0, g.1, g.2,
                ),
                (false, false) => {
                    batch_norm2d_eval_backward(&x, n, c, hw, &w, &rm, &rv, eps, &dy, g.0, g.1, g.2)
                }
            }
            .unwrap();
            (dx, dw, db)
        };
        for train in [true, false] {
            let (set, added) = (grads(true, train), grads(false, train));
            assert_eq!(set, added, "train {train}");
            assert!(set.0.iter().all(|v| v.is_finite()));
        }
    }

    #[test]
    fn overwriting_backward_equals_adding_onto_zeros() {
        overwrite_matches_add::<f64>();
        overwrite_matches_add::<f32>();
    }

    /// One training forward pass of `x: [n, c, hw]` (weight, bias, eps as in
    /// `gradcheck_train`), by batch norm then relu when `!fused`, else by
    /// [`batch_norm2d_train_relu`]: the output and the four statistics.
    fn bn_relu<T: Float>(x: &[T], n: usize, c: usize, fused: bool) -> [Vec<T>; 5] {
        let hw = x.len() / (n * c);
        let w: Vec<T> = random_vec(2, c, 0.5, 1.5);
        let b: Vec<T> = random_vec(3, c, -1.0, 1.0);
        let (mut rm, mut rv) = (random_vec(5, c, -1.0, 1.0), random_vec(6, c, 0.5, 2.0));
        let (mut sm, mut si) = (vec![T::zero(); c], vec![T::zero(); c]);
        let (eps, m) = (T::from_f64(1e-5), T::from_f64(0.1));
        let mut y = vec![T::from_f64(f64::NAN); x.len()];
        let stats = (&mut rm[..], &mut rv[..], &mut sm[..], &mut si[..]);
        if fused {
            let (a, b2, c2, d) = stats;
            batch_norm2d_train_relu(x, n, c, hw, &w, &b, eps, m, a, b2, c2, d, &mut y).unwrap();
        } else {
            let mut z = vec![T::zero(); x.len()];
            let (a, b2, c2, d) = stats;
            batch_norm2d_train(x, n, c, hw, &w, &b, eps, m, a, b2, c2, d, &mut z).unwrap();
            crate::ops::relu(&z, &mut y).unwrap();
        }
        [y, rm, rv, sm, si]
    }

    fn fused_relu_equals_bn_then_relu<T: Float + core::fmt::Debug>() {
        // relu cut some outputs and kept others
        let (mut zeros, mut positives) = (false, false);
        for (n, c, hw) in [(1, 1, 2), (2, 3, 5), (3, 2, 17), (5, 4, 33), (4, 16, 49)] {
            let mut x: Vec<T> = random_vec(40 + n as u64, n * c * hw, -2.0, 2.0);
            for (i, v) in x.iter_mut().enumerate().step_by(7) {
                *v = T::from_usize(i % 3); // ties, and values equal to the mean
            }
            let (fused, plain) = (bn_relu(&x, n, c, true), bn_relu(&x, n, c, false));
            // bit for bit: the same sums in the same order, relu as ops::relu
            for (f, p) in fused.iter().zip(&plain) {
                assert_eq!(
                    f.iter().map(|v| v.to_f64().to_bits()).collect::<Vec<_>>(),
                    p.iter().map(|v| v.to_f64().to_bits()).collect::<Vec<_>>(),
                    "n = {n}, c = {c}, hw = {hw}"
                );
            }
            zeros |= fused[0].iter().any(|&v| v == T::zero());
            positives |= fused[0].iter().any(|&v| v > T::zero());
        }
        assert!(zeros && positives);
        // a NaN input: its channel's statistics and outputs NaN, as batch norm then relu
        let mut x: Vec<T> = random_vec(9, 2 * 3 * 4, -1.0, 1.0);
        x[5] = T::from_f64(f64::NAN);
        let (fused, plain) = (bn_relu(&x, 2, 3, true), bn_relu(&x, 2, 3, false));
        let bits = |v: &[T]| v.iter().map(|v| v.to_f64().to_bits()).collect::<Vec<_>>();
        assert!(fused[0][4..8].iter().all(|v| v.is_nan()));
        assert!(fused[0][..4].iter().all(|v| !v.is_nan()));
        assert_eq!(bits(&fused[0]), bits(&plain[0]));
    }

    #[test]
    fn fused_relu_f64_and_f32() {
        fused_relu_equals_bn_then_relu::<f64>();
        fused_relu_equals_bn_then_relu::<f32>();
    }

    #[test]
    fn fused_relu_literal() {
        // `train_literal`'s y = [0.5 ×4, -2.5, -2.5, -2.5, 3.5] through relu
        let x = cast::<f64>(&X);
        let (w, b) = ([2.0, 3.0], [0.5, -1.0]);
        let (mut rm, mut rv) = ([1.0, -1.0], [1.0, 1.0]);
        let (mut sm, mut si, mut y) = ([0.0; 2], [0.0; 2], [f64::NAN; 8]);
        let (eps, m) = (1.0, 0.1);
        batch_norm2d_train_relu(
            &x, 1, 2, 4, &w, &b, eps, m, &mut rm, &mut rv, &mut sm, &mut si, &mut y,
        )
        .unwrap();
        assert_eq!(y, [0.5, 0.5, 0.5, 0.5, 0.0, 0.0, 0.0, 3.5]);
        assert_close!(rm, [1.4, -0.8]);
        assert_close!(rv, [0.9, 1.3]);
        assert_eq!((sm, si), ([5.0, 1.0], [1.0, 0.5]));
        // too few values per channel is an error, as for batch_norm2d_train
        let err = batch_norm2d_train_relu(
            &x[..2],
            1,
            2,
            1,
            &w,
            &b,
            eps,
            m,
            &mut rm,
            &mut rv,
            &mut sm,
            &mut si,
            &mut y[..2],
        );
        assert!(err.is_err());
    }

    #[test]
    fn gradcheck_fused_relu() {
        // d/dx of Σ up·relu(bn(x)): relu's derivative (from the fused output, as the folded
        // backward passes read it) then batch norm's backward pass
        let (n, c, hw) = (2, 3, 5);
        let x: Vec<f64> = random_vec(11, n * c * hw, -2.0, 2.0);
        let up: Vec<f64> = random_vec(12, n * c * hw, -1.0, 1.0);
        let loss = |x: &[f64]| {
            let y = &bn_relu(x, n, c, true)[0];
            y.iter().zip(&up).map(|(a, b)| a * b).sum::<f64>()
        };
        let [y, _, _, sm, si] = bn_relu(&x, n, c, true);
        let mut dz = vec![0.0; x.len()];
        crate::ops::relu_backward_overwrite(&y, &y, &up, &mut dz).unwrap();
        let w: Vec<f64> = random_vec(2, c, 0.5, 1.5);
        let mut dx = vec![0.0; x.len()];
        batch_norm2d_train_backward_overwrite(
            &x,
            n,
            c,
            hw,
            &w,
            &sm,
            &si,
            &dz,
            Some(&mut dx),
            None,
            None,
        )
        .unwrap();
        assert!(y.contains(&0.0) && y.iter().any(|&v| v > 0.0));
        assert_gradient("batch_norm2d_train_relu", loss, &x, &dx, 1e-6);
    }

    /// The sixteen-lane channel sums against the portable ones, bit for bit: runs shorter
    /// than, equal to and longer than sixteen values with tails of every length, batches
    /// 1-5, and values spread over several orders of magnitude (sums that round).
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn avx512_sums_match_the_portable_sums() {
        let Some(simd) = avx512::available() else {
            return;
        };
        let mut cases = 0;
        for (s, (n, c, hw)) in [
            (1, 1, 3),
            (2, 3, 16),
            (3, 2, 17),
            (5, 4, 49),
            (4, 3, 196),
            (1, 2, 784),
            (2, 1, 47),
        ]
        .into_iter()
        .enumerate()
        {
            let x: Vec<f32> = random_vec(90 + s as u64, n * c * hw, -3.0, 5.0)
                .into_iter()
                .map(|v: f32| v * 1e3f32.powf(v.fract()))
                .collect();
            let dy: Vec<f32> = random_vec(100 + s as u64, x.len(), -1.0, 1.0);
            for k in 0..c {
                let (mut sum, mut sq, mut sum_g, mut sum_gx) = (0.0f32, 0.0f32, 0.0f32, 0.0f32);
                let (mean, invstd) = (0.7f32, 0.3f32);
                for r in channel_runs(n, c, hw, k) {
                    sum += lanes_sum(&x[r.clone()], |v| v);
                    sq += lanes_sum(&x[r.clone()], |v| (v - mean) * (v - mean));
                    let (g, gx) =
                        lanes_sum_and_dot(&dy[r.clone()], &x[r], |g, xi| g * (xi - mean) * invstd);
                    sum_g += g;
                    sum_gx += gx;
                }
                let dims = (n, c, hw, k);
                let fast = [
                    avx512::channel_sum(simd, &x, dims, Sum::Values),
                    avx512::channel_sum(simd, &x, dims, Sum::Squares { mean }),
                ];
                let (g, gx) = avx512::channel_sum_and_dot(simd, &dy, &x, dims, (mean, invstd));
                let bits = |v: [f32; 4]| v.map(f32::to_bits);
                assert_eq!(
                    bits([fast[0], fast[1], g, gx]),
                    bits([sum, sq, sum_g, sum_gx]),
                    "n = {n}, c = {c}, hw = {hw}, k = {k}"
                );
                cases += 1;
            }
        }
        assert_eq!(cases, 16);
    }
}
