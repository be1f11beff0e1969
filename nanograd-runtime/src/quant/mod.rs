//! Int8 inference: dense and convolution layers with int8 weights, what the quantized models
//! of `model!` (`model.quantize_int8()`) call.
//!
//! - **Weights:** int8, symmetric, one scale per output channel (row of a dense weight,
//!   output channel of a convolution), computed from the float weights at quantization time:
//!   `s = max|w| / 127`, `wq = clamp(round(w / s), −127, 127)`; a channel of zeros gets
//!   `s = 0` and zeros (no division by zero). A batch norm that follows a convolution is
//!   folded into it first ([`QuantizedLayer::conv2d_folding_bn`]).
//! - **Activations:** quantized dynamically on every call, one scale per row of a dense
//!   layer's input (each vector it multiplies: a sample, or a position of `[B, T, C]`) and one
//!   per image of a convolution's input ([`activations`]).
//! - **Products:** `u8 × i8` sums in `i32` ([`gemm`]), on AVX-512 VNNI when the CPU has it,
//!   else on a portable path chosen at run time that gives the same integers; then, in f32,
//!   `y = acc · (s_x · s_w) + bias`, the same operations in the same order on both paths,
//!   so the outputs agree bit for bit.
//!
//! Everything else in a quantized model runs in f32 as in the float model.

pub mod activations;
pub mod gemm;
mod io;
#[cfg(test)]
mod tests;

/// What errors name as the source of a quantized model's bytes (a path with `std`).
pub use crate::error::Origin;
pub use gemm::{PackedI8, MAX_K};
pub use io::{QuantizedFile, QuantizedSafetensors, QuantizedTensors};

use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec;
use alloc::vec::Vec;

use crate::ops::Conv2dGeom;
use crate::{check_len, invalid, Result};

/// The code path of the int8 kernels.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Path {
    /// AVX-512 with VNNI (`vpdpbusd`), x86-64 only.
    Vnni,
    /// Plain Rust, any CPU.
    Portable,
}

impl Path {
    /// The best path of this CPU, detected once. Setting the environment variable
    /// `NANOGRAD_INT8_PORTABLE=1` before the first call forces the portable path. Without
    /// `std`, the best path the compile targets (`-C target-feature`).
    pub fn detect() -> Path {
        #[cfg(feature = "std")]
        {
            static PATH: std::sync::OnceLock<Path> = std::sync::OnceLock::new();
            *PATH.get_or_init(|| {
                if std::env::var_os("NANOGRAD_INT8_PORTABLE").is_some_and(|v| v == "1") {
                    return Path::Portable;
                }
                Path::vnni().unwrap_or(Path::Portable)
            })
        }
        #[cfg(not(feature = "std"))]
        Path::vnni().unwrap_or(Path::Portable)
    }

    /// `Some(Path::Vnni)` when this CPU has AVX-512 F, BW and VNNI (without `std`: when the
    /// compile targets them).
    pub fn vnni() -> Option<Path> {
        #[cfg(all(target_arch = "x86_64", feature = "std"))]
        {
            let has = std::arch::is_x86_feature_detected!("avx512f")
                && std::arch::is_x86_feature_detected!("avx512bw")
                && std::arch::is_x86_feature_detected!("avx512vnni");
            if has {
                return Some(Path::Vnni);
            }
        }
        #[cfg(all(target_arch = "x86_64", not(feature = "std")))]
        if cfg!(all(
            target_feature = "avx512f",
            target_feature = "avx512bw",
            target_feature = "avx512vnni"
        )) {
            return Some(Path::Vnni);
        }
        None
    }
}

/// `v` rounded to the nearest integer, ties to even (`libm`'s `rintf` without `std`, in the
/// default rounding mode the same).
#[inline]
pub(crate) fn round_even(v: f32) -> f32 {
    #[cfg(feature = "std")]
    return v.round_ties_even();
    #[cfg(not(feature = "std"))]
    return libm::rintf(v);
}

/// Per-channel symmetric quantization of `w`, `rows` rows (output channels) of equal length:
/// the int8 values row-major and one scale per row.
///
/// ```
/// use nanograd_runtime::quant::quantize_per_channel;
/// // row 0: max |w| = 2, s = 2/127, 1.0 / s = 63.5 -> 64 (ties to even); row 1: all zero
/// let (q, s) = quantize_per_channel(&[2.0, -1.0, 0.0, 0.0], 2)?;
/// assert_eq!(q, vec![127, -64, 0, 0]);
/// assert_eq!(s, vec![2.0 / 127.0, 0.0]);
/// # Ok::<(), nanograd_runtime::Error>(())
/// ```
pub fn quantize_per_channel(w: &[f32], rows: usize) -> Result<(Vec<i8>, Vec<f32>)> {
    if rows == 0 || !w.len().is_multiple_of(rows) {
        return Err(invalid(
            "quantize_int8",
            format!(
                "{} weights do not split into {rows} output channels",
                w.len()
            ),
        ));
    }
    if let Some(i) = w.iter().position(|v| !v.is_finite()) {
        return Err(invalid(
            "quantize_int8",
            format!("weight {i} is {}: only finite weights quantize", w[i]),
        ));
    }
    let k = w.len() / rows;
    let mut q = vec![0i8; w.len()];
    let mut scales = vec![0f32; rows];
    for (r, (row, qrow)) in w
        .chunks_exact(k.max(1))
        .zip(q.chunks_exact_mut(k.max(1)))
        .enumerate()
    {
        let m = row.iter().fold(0.0f32, |m, &v| m.max(v.abs()));
        if m == 0.0 {
            continue;
        }
        let s = m / 127.0;
        scales[r] = s;
        for (qv, &v) in qrow.iter_mut().zip(row) {
            *qv = round_even(v / s).clamp(-127.0, 127.0) as i8;
        }
    }
    Ok((q, scales))
}

/// The float weights again: `wq · s` per output channel.
pub fn dequantize_per_channel(q: &[i8], scales: &[f32]) -> Vec<f32> {
    let k = q.len() / scales.len().max(1);
    q.chunks_exact(k.max(1))
        .zip(scales)
        .flat_map(|(row, &s)| row.iter().map(move |&v| f32::from(v) * s))
        .collect()
}

/// A dense or convolution weight in int8: packed for the kernels, with its scales, its
/// PyTorch shape (`[out, in]`, `[c_out, c_in, kh, kw]`), and the bias of a folded batch norm.
#[derive(Clone, Debug, PartialEq)]
pub struct QuantizedLayer {
    shape: Vec<usize>,
    packed: PackedI8,
    scales: Vec<f32>,
    bias: Option<Vec<f32>>,
}

impl QuantizedLayer {
    /// Quantizes a weight of `shape`, the first dimension being the output channels.
    pub fn new(weight: &[f32], shape: &[usize]) -> Result<Self> {
        let numel: usize = shape.iter().product();
        check_len("quantize_int8", "weight", numel, weight.len())?;
        let n = *shape
            .first()
            .ok_or_else(|| invalid("quantize_int8", "a weight needs a shape"))?;
        let (q, scales) = quantize_per_channel(weight, n)?;
        Self::from_parts(shape, &q, scales, None)
    }

    /// A layer from its int8 weight (row-major, `shape`), its scales and the bias of a
    /// folded batch norm: what a loaded file holds.
    pub fn from_parts(
        shape: &[usize],
        q: &[i8],
        scales: Vec<f32>,
        bias: Option<Vec<f32>>,
    ) -> Result<Self> {
        let n = shape.first().copied().unwrap_or(0);
        let numel: usize = shape.iter().product();
        check_len("quantize_int8", "weight", numel, q.len())?;
        check_len("quantize_int8", "weight_scale", n, scales.len())?;
        if let Some(b) = &bias {
            check_len("quantize_int8", "bias", n, b.len())?;
        }
        if let Some(i) = scales.iter().position(|s| !(s.is_finite() && *s >= 0.0)) {
            return Err(invalid(
                "quantize_int8",
                format!(
                    "scale {i} is {}: scales are finite and not negative",
                    scales[i]
                ),
            ));
        }
        if q.contains(&i8::MIN) {
            return Err(invalid(
                "quantize_int8",
                "an int8 weight is -128: symmetric weights lie in [-127, 127]",
            ));
        }
        let k = numel / n.max(1);
        if k > MAX_K {
            return Err(invalid(
                "quantize_int8",
                format!("{k} inputs per output channel: int32 sums hold at most {MAX_K}"),
            ));
        }
        Ok(QuantizedLayer {
            shape: shape.to_vec(),
            packed: PackedI8::pack(q, n, k),
            scales,
            bias,
        })
    }

    /// A convolution `[c_out, c_in, kh, kw]` (with its bias, if any) followed by a batch norm
    /// in evaluation mode, folded into one convolution and quantized:
    ///
    /// ```text
    /// a = γ / √(var + eps)          w' = a · w (per output channel)          b' = a · (b − mean) + β
    /// ```
    #[allow(clippy::too_many_arguments)]
    pub fn conv2d_folding_bn(
        weight: &[f32],
        shape: &[usize],
        bias: Option<&[f32]>,
        gamma: &[f32],
        beta: &[f32],
        mean: &[f32],
        var: &[f32],
        eps: f32,
    ) -> Result<Self> {
        let c = shape.first().copied().unwrap_or(0);
        let numel: usize = shape.iter().product();
        check_len("quantize_int8", "weight", numel, weight.len())?;
        for (what, v) in [
            ("bn weight", gamma),
            ("bn bias", beta),
            ("running_mean", mean),
            ("running_var", var),
        ] {
            check_len("quantize_int8", what, c, v.len())?;
        }
        if let Some(b) = bias {
            check_len("quantize_int8", "bias", c, b.len())?;
        }
        let k = numel / c.max(1);
        let mut folded = vec![0f32; numel];
        let mut fbias = vec![0f32; c];
        for o in 0..c {
            let a = f64::from(gamma[o]) / crate::Float::sqrt(f64::from(var[o]) + f64::from(eps));
            for i in 0..k {
                folded[o * k + i] = (a * f64::from(weight[o * k + i])) as f32;
            }
            let b = bias.map_or(0.0, |b| f64::from(b[o]));
            fbias[o] = (a * (b - f64::from(mean[o])) + f64::from(beta[o])) as f32;
        }
        let (q, scales) = quantize_per_channel(&folded, c)?;
        Self::from_parts(shape, &q, scales, Some(fbias))
    }

    /// The weight's shape, output channels first.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// Output channels.
    pub fn out_features(&self) -> usize {
        self.packed.n
    }

    /// Inputs per output channel.
    pub fn in_features(&self) -> usize {
        self.packed.k
    }

    /// One scale per output channel.
    pub fn scales(&self) -> &[f32] {
        &self.scales
    }

    /// The bias of a folded batch norm (which replaces the convolution's own).
    pub fn folded_bias(&self) -> Option<&[f32]> {
        self.bias.as_deref()
    }

    /// The int8 weight, row-major in its shape.
    pub fn weight_i8(&self) -> Vec<i8> {
        self.packed.unpack()
    }

    /// The weight dequantized: `wq · s`.
    pub fn dequantize(&self) -> Vec<f32> {
        dequantize_per_channel(&self.weight_i8(), &self.scales)
    }

    /// The packed weight the kernels read.
    pub fn packed(&self) -> &PackedI8 {
        &self.packed
    }
}

/// `&mut [u8]` over the bytes of an f32 scratch region.
fn bytes_mut(s: &mut [f32]) -> &mut [u8] {
    // SAFETY: u8 has alignment 1 and no invalid values, the length covers exactly the same
    // bytes, and every bit pattern written through it is a valid f32 afterwards.
    unsafe { core::slice::from_raw_parts_mut(s.as_mut_ptr().cast::<u8>(), s.len() * 4) }
}

/// Scratch (in f32 elements) that [`dense_int8`] needs for `rows` rows of `in_f` inputs:
/// one scale and `in_f` rounded up to 4 bytes per row.
pub const fn dense_int8_scratch_len(rows: usize, in_f: usize) -> usize {
    rows * (in_f.div_ceil(4) + 1)
}

/// `y = x · wᵀ + bias` with `w` int8 and `x` quantized per row on the way: `x` is
/// `[rows, in_f]`, `y` `[rows, out_f]`, `scratch` [`dense_int8_scratch_len`] long. On the
/// path of this CPU ([`Path::detect`]).
#[allow(clippy::too_many_arguments)]
pub fn dense_int8(
    x: &[f32],
    w: &QuantizedLayer,
    bias: Option<&[f32]>,
    rows: usize,
    in_f: usize,
    out_f: usize,
    y: &mut [f32],
    scratch: &mut [f32],
) -> Result<()> {
    dense_int8_with(Path::detect(), x, w, bias, rows, in_f, out_f, y, scratch)
}

/// [`dense_int8`] on a given path (both are tested against each other).
#[allow(clippy::too_many_arguments)]
pub fn dense_int8_with(
    path: Path,
    x: &[f32],
    w: &QuantizedLayer,
    bias: Option<&[f32]>,
    rows: usize,
    in_f: usize,
    out_f: usize,
    y: &mut [f32],
    scratch: &mut [f32],
) -> Result<()> {
    let op = "dense_int8";
    check_len(op, "weight columns", in_f, w.in_features())?;
    check_len(op, "weight rows", out_f, w.out_features())?;
    check_len(op, "x", rows * in_f, x.len())?;
    check_len(op, "y", rows * out_f, y.len())?;
    check_len(
        op,
        "scratch",
        dense_int8_scratch_len(rows, in_f),
        scratch.len(),
    )?;
    if let Some(b) = bias {
        check_len(op, "bias", out_f, b.len())?;
    }
    if path == Path::Vnni && Path::vnni().is_none() {
        return Err(invalid(op, "this CPU has no AVX-512 VNNI"));
    }
    let (sx, bytes) = scratch.split_at_mut(rows);
    let q = bytes_mut(bytes);
    let k4 = w.packed.k4;
    for r in 0..rows {
        sx[r] = activations::quantize_row(
            path,
            &x[r * in_f..(r + 1) * in_f],
            &mut q[r * k4..(r + 1) * k4],
        );
    }
    let sw = &w.scales;
    gemm::gemm(path, q, rows, &w.packed, &mut |r0, nr, c0, tile| {
        let width = tile.len() / nr;
        let cols = width.min(out_f - c0);
        let b = bias.map(|b| &b[c0..c0 + cols]);
        for r in 0..nr {
            let yr = &mut y[(r0 + r) * out_f + c0..][..cols];
            dequant(
                path,
                &tile[r * width..][..cols],
                sx[r0 + r],
                &sw[c0..c0 + cols],
                b,
                yr,
            );
        }
    });
    Ok(())
}

/// `y = acc · (s · sw) + b` lane by lane: a multiply then an add, never fused, so that
/// every path gives the same bits (`i32 → f32` rounds to nearest on both).
#[inline]
fn dequant(path: Path, acc: &[i32], s: f32, sw: &[f32], b: Option<&[f32]>, y: &mut [f32]) {
    match path {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `Path::Vnni` exists only on CPUs with avx512f.
        Path::Vnni => unsafe { avx512::dequant(acc, s, sw, b, y) },
        _ => dequant_portable(acc, s, sw, b, y),
    }
}

fn dequant_portable(acc: &[i32], s: f32, sw: &[f32], b: Option<&[f32]>, y: &mut [f32]) {
    match b {
        Some(b) => {
            for (((yv, &a), &w), &bv) in y.iter_mut().zip(acc).zip(sw).zip(b) {
                *yv = a as f32 * (s * w) + bv;
            }
        }
        None => {
            for ((yv, &a), &w) in y.iter_mut().zip(acc).zip(sw) {
                *yv = a as f32 * (s * w);
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use core::arch::x86_64::*;

    /// [`super::dequant_portable`] 16 lanes at a time, the tail under a mask.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn dequant(
        acc: &[i32],
        s: f32,
        sw: &[f32],
        b: Option<&[f32]>,
        y: &mut [f32],
    ) {
        let n = y.len();
        assert!(acc.len() >= n && sw.len() >= n && b.is_none_or(|b| b.len() >= n));
        let sv = _mm512_set1_ps(s);
        let mut i = 0;
        while i < n {
            let mask: __mmask16 = if n - i >= 16 {
                0xffff
            } else {
                (1u16 << (n - i)) - 1
            };
            let a = _mm512_cvtepi32_ps(_mm512_maskz_loadu_epi32(mask, acc.as_ptr().add(i)));
            let scale = _mm512_mul_ps(sv, _mm512_maskz_loadu_ps(mask, sw.as_ptr().add(i)));
            let mut v = _mm512_mul_ps(a, scale);
            if let Some(b) = b {
                v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(mask, b.as_ptr().add(i)));
            }
            _mm512_mask_storeu_ps(y.as_mut_ptr().add(i), mask, v);
            i += 16;
        }
    }
}

/// Scratch (in f32 elements) that [`conv2d_int8`] needs: one image quantized to bytes, and
/// its columns `[out_h · out_w, c_in · kh · kw rounded up to 4]` in bytes. It does not grow
/// with the batch: images are done one after another.
pub const fn conv2d_int8_scratch_len(g: &Conv2dGeom) -> usize {
    let k4 = (g.c_in * g.kh * g.kw).div_ceil(4) * 4;
    g.input_len().div_ceil(4) + g.out_h() * g.out_w() * k4 / 4
}

/// A convolution with an int8 weight: `n` images `[c_in, h, w]` in `x`, each quantized with
/// one scale, im2col in bytes (padding is the zero point), the int8 GEMM, and `y = acc · (s_x
/// · s_w) + bias` written as `[n, c_out, out_h, out_w]`.
pub fn conv2d_int8(
    g: &Conv2dGeom,
    x: &[f32],
    w: &QuantizedLayer,
    bias: Option<&[f32]>,
    n: usize,
    scratch: &mut [f32],
    y: &mut [f32],
) -> Result<()> {
    conv2d_int8_with(Path::detect(), g, x, w, bias, n, scratch, y)
}

/// [`conv2d_int8`] on a given path.
#[allow(clippy::too_many_arguments)]
pub fn conv2d_int8_with(
    path: Path,
    g: &Conv2dGeom,
    x: &[f32],
    w: &QuantizedLayer,
    bias: Option<&[f32]>,
    n: usize,
    scratch: &mut [f32],
    y: &mut [f32],
) -> Result<()> {
    let op = "conv2d_int8";
    g.validate()?;
    crate::check_shape(op, &[g.c_out, g.c_in, g.kh, g.kw], w.shape())?;
    check_len(op, "x", n * g.input_len(), x.len())?;
    check_len(op, "y", n * g.output_len(), y.len())?;
    check_len(op, "scratch", conv2d_int8_scratch_len(g), scratch.len())?;
    if let Some(b) = bias {
        check_len(op, "bias", g.c_out, b.len())?;
    }
    if path == Path::Vnni && Path::vnni().is_none() {
        return Err(invalid(op, "this CPU has no AVX-512 VNNI"));
    }
    let (img_part, col_part) = scratch.split_at_mut(g.input_len().div_ceil(4));
    let img = bytes_mut(img_part);
    let cols = bytes_mut(col_part);
    let (oh, ow) = (g.out_h(), g.out_w());
    let ohw = oh * ow;
    let k4 = w.packed.k4;
    let sw = &w.scales;
    for i in 0..n {
        let xi = &x[i * g.input_len()..(i + 1) * g.input_len()];
        let s = activations::quantize_row(path, xi, img);
        im2col_u8(g, img, k4, cols);
        let yi = &mut y[i * g.output_len()..(i + 1) * g.output_len()];
        gemm::gemm(path, cols, ohw, &w.packed, &mut |r0, nr, c0, tile| {
            let width = tile.len() / nr;
            let chans = width.min(g.c_out - c0);
            for r in 0..nr {
                let pos = r0 + r;
                let acc = &tile[r * width..][..chans];
                for (c, &a) in acc.iter().enumerate() {
                    let co = c0 + c;
                    let v = a as f32 * (s * sw[co]);
                    yi[co * ohw + pos] = match bias {
                        Some(b) => v + b[co],
                        None => v,
                    };
                }
            }
        });
    }
    Ok(())
}

/// The columns of one quantized image: row `oy · out_w + ox` holds the window's bytes in the
/// weight's order (`(ci · kh + ky) · kw + kx`), 128 where the window reads padding and past
/// `c_in · kh · kw` up to `k4`.
fn im2col_u8(g: &Conv2dGeom, img: &[u8], k4: usize, cols: &mut [u8]) {
    let (oh, ow) = (g.out_h(), g.out_w());
    let (h, w, p, st) = (
        g.h as isize,
        g.w as isize,
        g.padding as isize,
        g.stride as isize,
    );
    for oy in 0..oh {
        for ox in 0..ow {
            let row = &mut cols[(oy * ow + ox) * k4..][..k4];
            row.fill(128);
            let (y0, x0) = (oy as isize * st - p, ox as isize * st - p);
            for ci in 0..g.c_in {
                for ky in 0..g.kh {
                    let iy = y0 + ky as isize;
                    if iy < 0 || iy >= h {
                        continue;
                    }
                    let src = &img[(ci * g.h + iy as usize) * g.w..][..g.w];
                    let dst = &mut row[(ci * g.kh + ky) * g.kw..][..g.kw];
                    for (kx, d) in dst.iter_mut().enumerate() {
                        let ix = x0 + kx as isize;
                        if ix >= 0 && ix < w {
                            *d = src[ix as usize];
                        }
                    }
                }
            }
        }
    }
}

/// Where one int8 layer of a quantized model is saved, its name prefixed by the path of the
/// model used as a layer that holds it (`h.0.fc.weight` for `fc` of the first `h: [Block; N]`),
/// as in the float model's file. What the code of `model!` gathers for the file methods and
/// `int8_weights`.
#[derive(Clone, Debug, PartialEq)]
pub struct Int8Name {
    /// The weight's name: the I8 tensor, and `<weight>_scale`.
    pub weight: String,
    /// Where a folded batch norm's bias goes: the convolution's bias name.
    pub bias: String,
    /// The weight's shape, output channels first.
    pub shape: Vec<usize>,
    /// The batch norm folded into this convolution, if any.
    pub folded: Option<String>,
}

impl Int8Name {
    /// The names under `prefix` (empty, or ending in `.`).
    pub fn new(
        prefix: &str,
        weight: &str,
        bias: &str,
        shape: &[usize],
        folded: Option<&str>,
    ) -> Self {
        Int8Name {
            weight: format!("{prefix}{weight}"),
            bias: format!("{prefix}{bias}"),
            shape: shape.to_vec(),
            folded: folded.map(|f| format!("{prefix}{f}")),
        }
    }

    /// `fc1.weight`, or `conv1.weight (with bn1 folded in)`.
    pub fn summary(&self) -> String {
        match &self.folded {
            Some(bn) => format!("{} (with {bn} folded in)", self.weight),
            None => self.weight.clone(),
        }
    }
}

/// The prefix of the names of a model used as a layer: `blk.`, or `h.2.` for an element of a
/// layer array, after `prefix`.
pub fn sub_prefix(prefix: &str, layer: &str, index: Option<usize>) -> String {
    match index {
        Some(i) => format!("{prefix}{layer}.{i}."),
        None => format!("{prefix}{layer}."),
    }
}

/// Appends each of `names` under `prefix` to `out`.
pub fn push_prefixed(out: &mut Vec<String>, prefix: &str, names: &[&str]) {
    out.extend(names.iter().map(|n| format!("{prefix}{n}")));
}

/// Copies every parameter and buffer of `from` (any element type) into the f32 model `to`
/// of the same architecture, by name: how `quantize_int8` starts from an f32 copy.
pub fn copy_to_f32<
    T: crate::Float,
    M: crate::Module<T> + ?Sized,
    N: crate::Module<f32> + ?Sized,
>(
    from: &M,
    to: &mut N,
) -> Result<()> {
    let mut values: BTreeMap<String, Vec<f32>> = BTreeMap::new();
    from.visit_params(&mut |name, p| {
        values.insert(
            name.to_string(),
            p.value().iter().map(|v| v.to_f64() as f32).collect(),
        );
    });
    from.visit_buffers(&mut |name, b| {
        values.insert(
            name.to_string(),
            b.data().iter().map(|v| v.to_f64() as f32).collect(),
        );
    });
    let mut missing = Vec::new();
    to.visit_params_mut(&mut |name, p| match values.get(name) {
        Some(v) if v.len() == p.len() => p.value_mut().copy_from_slice(v),
        _ => missing.push(name.to_string()),
    });
    to.visit_buffers_mut(&mut |name, b| match values.get(name) {
        Some(v) if v.len() == b.len() => b.data_mut().copy_from_slice(v),
        _ => missing.push(name.to_string()),
    });
    if missing.is_empty() {
        Ok(())
    } else {
        Err(invalid(
            "quantize_int8",
            format!(
                "the f32 copy has tensors the model lacks: {}",
                missing.join(", ")
            ),
        ))
    }
}
