//! The int8 kernels: exact integer sums on both paths, quantization round trips, and the
//! layers against float references within bounds derived from the scales.

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

use super::activations::quantize_row;
use super::gemm::{gemm, PackedI8};
use super::*;

/// The paths this machine can run: always the portable one, VNNI when the CPU has it.
fn paths() -> Vec<Path> {
    let mut p = vec![Path::Portable];
    p.extend(Path::vnni());
    p
}

fn rand_i8(rng: &mut StdRng, n: usize) -> Vec<i8> {
    (0..n)
        .map(|_| rng.random_range(-127i32..=127) as i8)
        .collect()
}

fn rand_f32(rng: &mut StdRng, n: usize, amp: f32) -> Vec<f32> {
    (0..n).map(|_| rng.random_range(-amp..amp)).collect()
}

/// The int32 products of every tile and remainder shape: one row (up to 8 panels a tile),
/// rows below, at and past the 8-row tile, columns inside one 16-wide panel, across panels
/// and past the 3-panel (many rows) and 8-panel (one row) tiles,
/// inputs not a multiple of 4, against `Σ_k xq · wq` in i64.
#[test]
fn gemm_is_exact_on_every_tile_and_remainder_shape() {
    let mut rng = StdRng::seed_from_u64(1);
    for &m in &[1, 2, 3, 4, 5, 7, 8, 9, 13, 16, 23, 64] {
        for &n in &[1, 5, 16, 17, 33, 48, 49, 64, 65, 130, 144] {
            for &k in &[1, 3, 4, 5, 31, 64, 101] {
                let w = rand_i8(&mut rng, n * k);
                let xq = rand_i8(&mut rng, m * k);
                let packed = PackedI8::pack(&w, n, k);
                assert_eq!(packed.unpack(), w);
                let k4 = packed.k4;
                // activations as u8 (+128), with arbitrary padding bytes that must not count
                let mut a = vec![0u8; m * k4];
                for r in 0..m {
                    for c in 0..k4 {
                        a[r * k4 + c] = if c < k {
                            (xq[r * k + c] as u8) ^ 0x80
                        } else {
                            rng.random()
                        };
                    }
                }
                for path in paths() {
                    let mut got = vec![i32::MIN; m * n];
                    gemm(path, &a, m, &packed, &mut |r0, nr, c0, tile| {
                        let width = tile.len() / nr;
                        for r in 0..nr {
                            for c in 0..width.min(n - c0) {
                                got[(r0 + r) * n + c0 + c] = tile[r * width + c];
                            }
                        }
                    });
                    for r in 0..m {
                        for c in 0..n {
                            let want: i64 = (0..k)
                                .map(|i| i64::from(xq[r * k + i]) * i64::from(w[c * k + i]))
                                .sum();
                            assert_eq!(
                                i64::from(got[r * n + c]),
                                want,
                                "{path:?} m={m} n={n} k={k} at ({r}, {c})"
                            );
                        }
                    }
                }
            }
        }
    }
}

/// The extremes: every activation −127 or 127 against weights ±127 over many inputs, where
/// the u8 offset makes the raw sums largest.
#[test]
fn gemm_is_exact_at_the_extremes() {
    let (m, n, k) = (5, 20, 4099);
    for (xv, wv) in [(127i8, 127i8), (-127, 127), (127, -127), (-127, -127)] {
        let w = vec![wv; n * k];
        let packed = PackedI8::pack(&w, n, k);
        let a = vec![(xv as u8) ^ 0x80; m * packed.k4];
        for path in paths() {
            let mut seen = 0;
            gemm(path, &a, m, &packed, &mut |_, nr, c0, tile| {
                let width = tile.len() / nr;
                for r in 0..nr {
                    for c in 0..width.min(n - c0) {
                        assert_eq!(
                            tile[r * width + c],
                            i32::from(xv) * i32::from(wv) * k as i32
                        );
                        seen += 1;
                    }
                }
            });
            assert_eq!(seen, m * n);
        }
    }
}

/// A hand-derived row: max |x| = 2.54, so s = 0.02 and q = round(x / 0.02):
/// 2.54 → 127, −1.27 → −63.5 → −64 (ties to even), 0.01 → 0.5 → 0, 0.03 → 1.5 → 2.
#[test]
fn quantize_row_by_hand() {
    for path in paths() {
        let x = [2.54f32, -1.27, 0.01, 0.03, 0.0];
        let mut q = [0u8; 8];
        let s = quantize_row(path, &x, &mut q);
        assert!((s - 0.02).abs() < 1e-7, "{s}");
        let back: Vec<i32> = q.iter().map(|&b| i32::from(b) - 128).collect();
        assert_eq!(back, vec![127, -64, 0, 2, 0, 0, 0, 0], "{path:?}");
    }
}

/// Both paths give the same bytes and scale on rows of every length, a row of zeros gives
/// scale 0 and the zero point, and every value comes back within half a step.
#[test]
fn quantize_row_round_trips_and_paths_agree() {
    let mut rng = StdRng::seed_from_u64(2);
    for len in [0usize, 1, 15, 16, 17, 100, 784] {
        let mut x = rand_f32(&mut rng, len, 3.0);
        let mut outs = Vec::new();
        for path in paths() {
            let mut q = vec![0u8; len.div_ceil(4) * 4];
            let s = quantize_row(path, &x, &mut q);
            for (i, &v) in x.iter().enumerate() {
                let back = s * (f32::from(q[i]) - 128.0);
                assert!(
                    (back - v).abs() <= s * 0.5 * (1.0 + 1e-5) + 1e-7,
                    "{v} -> {back}"
                );
            }
            assert!(q[len..].iter().all(|&b| b == 128));
            assert!(q.iter().all(|&b| b >= 1), "-128 never appears");
            outs.push((s, q));
        }
        assert!(
            outs.windows(2).all(|w| w[0] == w[1]),
            "paths differ at length {len}"
        );
        x.fill(0.0);
        let mut q = vec![7u8; len];
        assert_eq!(quantize_row(Path::detect(), &x, &mut q), 0.0);
        assert!(q.iter().all(|&b| b == 128));
    }
}

/// Per-channel weights: each element within half a step of its channel's scale, the largest
/// magnitude of each channel at ±127 exactly, all-zero channels with scale 0 and no NaN.
#[test]
fn weights_round_trip_per_channel_with_zero_channels() {
    let mut rng = StdRng::seed_from_u64(3);
    let (rows, k) = (7, 33);
    let mut w = rand_f32(&mut rng, rows * k, 1.0);
    w[2 * k..3 * k].fill(0.0);
    w[5 * k + 4] = -9.0; // an outlier: its channel saturates at -127 there
    let (q, s) = quantize_per_channel(&w, rows).unwrap();
    assert_eq!(s[2], 0.0);
    assert!(q[2 * k..3 * k].iter().all(|&v| v == 0));
    assert_eq!(q[5 * k + 4], -127);
    assert!(!q.contains(&i8::MIN));
    let back = dequantize_per_channel(&q, &s);
    for r in 0..rows {
        let m = w[r * k..(r + 1) * k]
            .iter()
            .fold(0f32, |m, v| m.max(v.abs()));
        assert!(q[r * k..(r + 1) * k].iter().any(|v| v.abs() == 127) || m == 0.0);
        for i in r * k..(r + 1) * k {
            assert!(
                (back[i] - w[i]).abs() <= s[r] * 0.5 * (1.0 + 1e-5),
                "{} vs {}",
                back[i],
                w[i]
            );
            assert!(back[i].is_finite());
        }
    }
    assert!(quantize_per_channel(&[1.0, f32::NAN], 1).is_err());
    assert!(quantize_per_channel(&[1.0, 2.0, 3.0], 2).is_err());
}

/// The bound of one output `Σ_k x_k w_k` against `s_x s_w Σ_k xq_k wq_k`: each factor is off
/// by at most half its step, so each term by `|x| s_w / 2 + (|w| + s_w / 2) s_x / 2`.
fn dense_bound(x: &[f32], w: &[f32], sx: f32, sw: f32) -> f32 {
    x.iter()
        .zip(w)
        .map(|(&xv, &wv)| xv.abs() * sw / 2.0 + (wv.abs() + sw / 2.0) * sx / 2.0)
        .sum::<f32>()
        * 1.001
        + 1e-5
}

#[test]
fn dense_int8_within_the_scale_bound_and_paths_agree() {
    let mut rng = StdRng::seed_from_u64(4);
    for &(rows, in_f, out_f) in &[(1, 784, 128), (64, 784, 128), (3, 37, 10), (5, 64, 17)] {
        let x = rand_f32(&mut rng, rows * in_f, 1.0);
        let mut w = rand_f32(&mut rng, out_f * in_f, 0.1);
        w[..in_f].fill(0.0); // one all-zero output channel
        let b = rand_f32(&mut rng, out_f, 0.5);
        let layer = QuantizedLayer::new(&w, &[out_f, in_f]).unwrap();
        let mut outs = Vec::new();
        for path in paths() {
            let mut y = vec![0f32; rows * out_f];
            let mut scratch = vec![0f32; dense_int8_scratch_len(rows, in_f)];
            dense_int8_with(
                path,
                &x,
                &layer,
                Some(&b),
                rows,
                in_f,
                out_f,
                &mut y,
                &mut scratch,
            )
            .unwrap();
            outs.push(y);
        }
        assert!(outs.windows(2).all(|p| p[0] == p[1]), "paths differ");
        let y = &outs[0];
        for r in 0..rows {
            let xr = &x[r * in_f..(r + 1) * in_f];
            let sx = xr.iter().fold(0f32, |m, v| m.max(v.abs())) / 127.0;
            for c in 0..out_f {
                let wr = &w[c * in_f..(c + 1) * in_f];
                let exact: f32 = xr.iter().zip(wr).map(|(a, b)| a * b).sum::<f32>() + b[c];
                let bound = dense_bound(xr, wr, sx, layer.scales()[c]);
                let err = (y[r * out_f + c] - exact).abs();
                assert!(
                    err <= bound,
                    "({r}, {c}): error {err} above the bound {bound}"
                );
                if c == 0 {
                    assert_eq!(y[r * out_f], b[0], "a zero channel gives its bias");
                }
            }
        }
    }
}

#[test]
fn dense_int8_rejects_bad_lengths() {
    let layer = QuantizedLayer::new(&[0.5; 12], &[3, 4]).unwrap();
    let mut y = vec![0f32; 6];
    let mut s = vec![0f32; dense_int8_scratch_len(2, 4)];
    let err = dense_int8(&[1.0; 7], &layer, None, 2, 4, 3, &mut y, &mut s).unwrap_err();
    assert!(
        err.to_string().contains("`x` has 7 elements, expected 8"),
        "{err}"
    );
    let err = dense_int8(&[1.0; 8], &layer, None, 2, 5, 3, &mut y, &mut s).unwrap_err();
    assert!(err.to_string().contains("weight columns"), "{err}");
    let mut short = vec![0f32; 3];
    assert!(dense_int8(&[1.0; 8], &layer, None, 2, 4, 3, &mut y, &mut short).is_err());
    assert!(dense_int8(&[1.0; 8], &layer, Some(&[0.0; 2]), 2, 4, 3, &mut y, &mut s).is_err());
}

/// A direct float convolution (the reference), `[n, c_in, h, w]` to `[n, c_out, oh, ow]`.
fn conv_ref(g: &Conv2dGeom, x: &[f32], w: &[f32], b: &[f32], n: usize) -> Vec<f32> {
    let (oh, ow) = (g.out_h(), g.out_w());
    let mut y = vec![0f32; n * g.output_len()];
    for i in 0..n {
        for co in 0..g.c_out {
            for oy in 0..oh {
                for ox in 0..ow {
                    let mut acc = b[co];
                    for ci in 0..g.c_in {
                        for ky in 0..g.kh {
                            for kx in 0..g.kw {
                                let iy = (oy * g.stride + ky) as isize - g.padding as isize;
                                let ix = (ox * g.stride + kx) as isize - g.padding as isize;
                                if iy < 0 || ix < 0 || iy >= g.h as isize || ix >= g.w as isize {
                                    continue;
                                }
                                let xv = x[i * g.input_len()
                                    + (ci * g.h + iy as usize) * g.w
                                    + ix as usize];
                                acc += xv * w[((co * g.c_in + ci) * g.kh + ky) * g.kw + kx];
                            }
                        }
                    }
                    y[i * g.output_len() + (co * oh + oy) * ow + ox] = acc;
                }
            }
        }
    }
    y
}

/// Convolutions against the direct float one within `Σ |x| s_w / 2 + (|w| + s_w / 2) s_x / 2`
/// over the whole window (a loose but honest bound: padding contributes nothing), on both
/// paths, which agree bit for bit; then batch norm folded in, against conv + eval batch norm.
#[test]
fn conv2d_int8_within_the_scale_bound_with_and_without_batch_norm() {
    let mut rng = StdRng::seed_from_u64(5);
    let geoms = [
        Conv2dGeom::new(1, 28, 28, 16, 3, 3, 1, 1).unwrap(),
        Conv2dGeom::new(16, 14, 14, 32, 3, 3, 1, 1).unwrap(),
        Conv2dGeom::new(3, 9, 7, 5, 3, 2, 2, 0).unwrap(),
    ];
    for g in geoms {
        let n = 2;
        let x = rand_f32(&mut rng, n * g.input_len(), 1.0);
        let w = rand_f32(&mut rng, g.weight_len(), 0.3);
        let b = rand_f32(&mut rng, g.c_out, 0.2);
        let shape = [g.c_out, g.c_in, g.kh, g.kw];
        let layer = QuantizedLayer::new(&w, &shape).unwrap();
        let mut outs = Vec::new();
        for path in paths() {
            let mut y = vec![0f32; n * g.output_len()];
            let mut scratch = vec![0f32; conv2d_int8_scratch_len(&g)];
            conv2d_int8_with(path, &g, &x, &layer, Some(&b), n, &mut scratch, &mut y).unwrap();
            outs.push(y);
        }
        assert!(outs.windows(2).all(|p| p[0] == p[1]), "paths differ");
        let want = conv_ref(&g, &x, &w, &b, n);
        let k = g.c_in * g.kh * g.kw;
        let check = |got: &[f32], want: &[f32], layer: &QuantizedLayer, wmax: &[f32]| {
            for i in 0..n {
                let xi = &x[i * g.input_len()..(i + 1) * g.input_len()];
                let xmax = xi.iter().fold(0f32, |m, v| m.max(v.abs()));
                let sx = xmax / 127.0;
                for (co, (&sw, &wm)) in layer.scales().iter().zip(wmax).enumerate() {
                    let bound =
                        k as f32 * (xmax * sw / 2.0 + (wm + sw / 2.0) * sx / 2.0) * 1.001 + 1e-5;
                    let ohw = g.out_h() * g.out_w();
                    for p in 0..ohw {
                        let j = i * g.output_len() + co * ohw + p;
                        let err = (got[j] - want[j]).abs();
                        assert!(
                            err <= bound,
                            "{g:?} image {i} channel {co}: {err} > {bound}"
                        );
                    }
                }
            }
        };
        let wmax: Vec<f32> = w
            .chunks_exact(k)
            .map(|r| r.iter().fold(0f32, |m, v| m.max(v.abs())))
            .collect();
        check(&outs[0], &want, &layer, &wmax);

        // batch norm (eval) after the convolution, folded
        let gamma = rand_f32(&mut rng, g.c_out, 2.0);
        let beta = rand_f32(&mut rng, g.c_out, 1.0);
        let mean = rand_f32(&mut rng, g.c_out, 0.5);
        let var: Vec<f32> = (0..g.c_out).map(|_| rng.random_range(0.1..2.0)).collect();
        let eps = 1e-5;
        let folded = QuantizedLayer::conv2d_folding_bn(
            &w,
            &shape,
            Some(&b),
            &gamma,
            &beta,
            &mean,
            &var,
            eps,
        )
        .unwrap();
        let mut y = vec![0f32; n * g.output_len()];
        let mut scratch = vec![0f32; conv2d_int8_scratch_len(&g)];
        conv2d_int8(
            &g,
            &x,
            &folded,
            folded.folded_bias(),
            n,
            &mut scratch,
            &mut y,
        )
        .unwrap();
        let ohw = g.out_h() * g.out_w();
        let mut want_bn = want.clone();
        for (j, v) in want_bn.iter_mut().enumerate() {
            let c = (j / ohw) % g.c_out;
            *v = (*v - mean[c]) / (var[c] + eps).sqrt() * gamma[c] + beta[c];
        }
        let wmax_f: Vec<f32> = (0..g.c_out)
            .map(|c| wmax[c] * (gamma[c] / (var[c] + eps).sqrt()).abs())
            .collect();
        // the folded weights' own bound, plus rounding of the float reference
        check(
            &y,
            &want_bn,
            &folded,
            &wmax_f.iter().map(|v| v * 1.0001).collect::<Vec<_>>(),
        );
    }
}

#[test]
fn conv2d_int8_rejects_a_wrong_weight_shape_and_short_scratch() {
    let g = Conv2dGeom::new(2, 5, 5, 3, 3, 3, 1, 1).unwrap();
    let other = QuantizedLayer::new(&[0.1; 3 * 2 * 2 * 2], &[3, 2, 2, 2]).unwrap();
    let mut y = vec![0f32; g.output_len()];
    let mut s = vec![0f32; conv2d_int8_scratch_len(&g)];
    let x = vec![0.5f32; g.input_len()];
    let err = conv2d_int8(&g, &x, &other, None, 1, &mut s, &mut y).unwrap_err();
    assert!(
        err.to_string()
            .contains("expected [3, 2, 3, 3], got [3, 2, 2, 2]"),
        "{err}"
    );
    let ok = QuantizedLayer::new(&[0.1; 3 * 2 * 3 * 3], &[3, 2, 3, 3]).unwrap();
    assert!(conv2d_int8(&g, &x, &ok, None, 1, &mut s[1..], &mut y).is_err());
}

#[test]
fn quantized_layers_save_and_load() {
    let mut rng = StdRng::seed_from_u64(6);
    let w = rand_f32(&mut rng, 4 * 6, 1.0);
    let layer = QuantizedLayer::new(&w, &[4, 6]).unwrap();
    let folded = QuantizedLayer::conv2d_folding_bn(
        &w,
        &[4, 6, 1, 1],
        None,
        &[1.0; 4],
        &[0.5; 4],
        &[0.0; 4],
        &[1.0; 4],
        0.0,
    )
    .unwrap();
    let mut t = QuantizedTensors::new();
    t.push_layer("fc.weight", "fc.bias", &layer);
    t.push_layer("conv.weight", "conv.bias", &folded);
    t.push_f32("fc.bias", &[4], &[1.0, 2.0, 3.0, 4.0]);
    let bytes = t.to_bytes().unwrap();
    let mut f = QuantizedFile::parse(&bytes, std::path::Path::new("mem")).unwrap();
    assert_eq!(
        f.layer("fc.weight", &[4, 6], "fc.bias", false).unwrap(),
        layer
    );
    assert_eq!(
        f.layer("conv.weight", &[4, 6, 1, 1], "conv.bias", true)
            .unwrap(),
        folded
    );
    assert_eq!(f.f32("fc.bias", &[4]).unwrap(), vec![1.0, 2.0, 3.0, 4.0]);
    f.finish().unwrap();

    let mut f = QuantizedFile::parse(&bytes, std::path::Path::new("mem")).unwrap();
    assert!(f.layer("fc.weight", &[4, 5], "fc.bias", false).is_none());
    let err = f.finish().unwrap_err().to_string();
    assert!(
        err.contains("tensor `fc.weight` has shape [4, 6] in the file but [4, 5]"),
        "{err}"
    );
    assert!(err.contains("unexpected tensor `conv.weight`"), "{err}");
}
