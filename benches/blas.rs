//! GEMM and GEMV throughput of the BLAS provider compiled in, through `nanograd::blas`.
//!
//! Each benchmark's throughput is its count of floating-point operations (`2 m n k` for GEMM,
//! `2 m n` for GEMV), so criterion's `elem/s` reads as FLOP/s: `Gelem/s` = GFLOP/s.
//! The `peak` group measures the core's own ceiling: independent AVX-512 FMA chains with no
//! memory traffic (16 f32 or 8 f64 lanes, two flops per lane per FMA).
//! One thread: run OpenBLAS with `OPENBLAS_NUM_THREADS=1`; MKL is linked sequential and the
//! `gemm` crate is called with `Parallelism::None`. Commands and results: BENCHMARKS.md.
//!
//! ```sh
//! cargo bench --bench blas -- --warm-up-time 1 --measurement-time 3
//! OPENBLAS_NUM_THREADS=1 cargo bench --bench blas --features openblas -- --warm-up-time 1 --measurement-time 3
//! cargo bench --bench blas --features mkl -- --warm-up-time 1 --measurement-time 3
//! ```

use criterion::{
    criterion_group, criterion_main, BenchmarkId, Criterion, SamplingMode, Throughput,
};
use nanograd::blas::{gemm, gemv, Trans, PROVIDER};
use nanograd::{ops, Float};
use std::hint::black_box;

/// Square GEMM sizes.
const GEMM_SIZES: [usize; 6] = [32, 64, 128, 256, 512, 1024];
/// GEMV shapes `[m, n]` of `A`: a 784 -> 128 dense layer's weight, and a large square.
const GEMV_SHAPES: [(usize, usize); 2] = [(128, 784), (1024, 1024)];

/// `len` deterministic values in `[-1, 1)`.
fn fill<T: Float>(len: usize, seed: usize) -> Vec<T> {
    (0..len)
        .map(|i| T::from_f64(((i * 7919 + seed * 104_729) % 2000) as f64 / 1000.0 - 1.0))
        .collect()
}

fn bench_gemm<T: Float>(c: &mut Criterion, name: &str) {
    let mut group = c.benchmark_group(format!("{name}/{PROVIDER}"));
    // Flat sampling: the same iteration count per sample, for runs of milliseconds each.
    group.sampling_mode(SamplingMode::Flat).sample_size(20);
    for n in GEMM_SIZES {
        let (a, b) = (fill::<T>(n * n, 1), fill::<T>(n * n, 2));
        let mut out = vec![T::zero(); n * n];
        group.throughput(Throughput::Elements(2 * (n as u64).pow(3)));
        group.bench_function(BenchmarkId::from_parameter(n), |bench| {
            bench.iter(|| {
                gemm(
                    Trans::No,
                    Trans::No,
                    n,
                    n,
                    n,
                    T::one(),
                    black_box(&a),
                    n,
                    black_box(&b),
                    n,
                    T::zero(),
                    &mut out,
                    n,
                );
                black_box(&mut out);
            })
        });
    }
    group.finish();
}

fn bench_sgemv(c: &mut Criterion) {
    let mut group = c.benchmark_group(format!("sgemv/{PROVIDER}"));
    group.sampling_mode(SamplingMode::Flat).sample_size(20);
    for (m, n) in GEMV_SHAPES {
        let (a, x) = (fill::<f32>(m * n, 3), fill::<f32>(n, 4));
        let mut y = vec![0.0f32; m];
        group.throughput(Throughput::Elements(2 * (m * n) as u64));
        group.bench_function(BenchmarkId::from_parameter(format!("{m}x{n}")), |bench| {
            bench.iter(|| {
                gemv(
                    Trans::No,
                    m,
                    n,
                    1.0,
                    black_box(&a),
                    n,
                    black_box(&x),
                    0.0,
                    &mut y,
                );
                black_box(&mut y);
            })
        });
    }
    group.finish();
}

/// The products the benchmarked models make, `(name, ta, tb, m, n, k)`: the MLP's training
/// step at batch 64 and the CNN's convolutions at batch 32.
const MODEL_PRODUCTS: [(&str, Trans, Trans, usize, usize, usize); 10] = [
    ("mlp_fc1_fwd_NT", Trans::No, Trans::Yes, 64, 128, 784),
    // the GPT's training step at batch 12 (768 rows): a block's fc and proj backward
    ("gpt_fc_dx_NN", Trans::No, Trans::No, 768, 128, 512),
    ("gpt_fc_dw_TN", Trans::Yes, Trans::No, 512, 128, 768),
    ("gpt_proj_dx_NN", Trans::No, Trans::No, 768, 512, 128),
    ("gpt_proj_dw_TN", Trans::Yes, Trans::No, 128, 512, 768),
    ("mlp_fc1_dw_TN", Trans::Yes, Trans::No, 128, 784, 64),
    ("mlp_fc2_dx_NN", Trans::No, Trans::No, 64, 128, 64),
    ("cnn_conv2_fwd_NN", Trans::No, Trans::No, 16, 6272, 72),
    ("cnn_conv2_dw_NT", Trans::No, Trans::Yes, 16, 72, 6272),
    ("cnn_conv2_dcols_TN", Trans::Yes, Trans::No, 72, 6272, 16),
];

fn bench_model_products(c: &mut Criterion) {
    let mut group = c.benchmark_group(format!("sgemm_models/{PROVIDER}"));
    group.sampling_mode(SamplingMode::Flat).sample_size(20);
    for (name, ta, tb, m, n, k) in MODEL_PRODUCTS {
        let (a, b) = (fill::<f32>(m * k, 5), fill::<f32>(k * n, 6));
        let lda = if ta == Trans::No { k } else { m };
        let ldb = if tb == Trans::No { n } else { k };
        let mut out = vec![0.0f32; m * n];
        group.throughput(Throughput::Elements(2 * (m * n * k) as u64));
        group.bench_function(BenchmarkId::from_parameter(name), |bench| {
            bench.iter(|| {
                gemm(
                    ta,
                    tb,
                    m,
                    n,
                    k,
                    1.0,
                    black_box(&a),
                    lda,
                    black_box(&b),
                    ldb,
                    1.0,
                    &mut out,
                    n,
                );
                black_box(&mut out);
            })
        });
    }
    // fc1's training forward again, through the dense op that packs the weight per call
    let (m, n, k) = (64, 128, 784);
    let (x, w) = (fill::<f32>(m * k, 5), fill::<f32>(n * k, 6));
    let (mut y, mut scratch) = (vec![0.0f32; m * n], vec![0.0; ops::dense_scratch_len(k, n)]);
    group.throughput(Throughput::Elements(2 * (m * n * k) as u64));
    group.bench_function("mlp_fc1_fwd_dense_packing", |bench| {
        bench.iter(|| {
            ops::dense_packing(
                black_box(&x),
                black_box(&w),
                None,
                m,
                k,
                n,
                &mut y,
                &mut scratch,
            )
            .unwrap();
            black_box(&mut y);
        })
    });
    group.finish();
}

/// `ops::dense_cached` with fc1's weight (784 -> 128) already packed, at small and large
/// batches: the packed product's tiles (12, 8, 4 rows) and what is left over.
fn bench_packed_dense(c: &mut Criterion) {
    let mut group = c.benchmark_group("dense_packed");
    group.sampling_mode(SamplingMode::Flat).sample_size(20);
    let (in_f, out_f) = (784, 128);
    let w = nanograd::Param::new(&[out_f, in_f], fill::<f32>(out_f * in_f, 7)).unwrap();
    let bias = fill::<f32>(out_f, 8);
    for b in [1usize, 2, 3, 5, 13, 64] {
        let x = fill::<f32>(b * in_f, 9);
        let mut y = vec![0.0f32; b * out_f];
        let mut pack = nanograd::blas::PackedWeight::new();
        for _ in 0..2 {
            ops::dense_cached(&x, &w, Some(&bias), b, in_f, out_f, &mut y, &mut pack).unwrap();
        }
        group.throughput(Throughput::Elements(2 * (b * in_f * out_f) as u64));
        group.bench_function(BenchmarkId::from_parameter(b), |bench| {
            bench.iter(|| {
                let x = black_box(&x);
                ops::dense_cached(x, &w, Some(&bias), b, in_f, out_f, &mut y, &mut pack).unwrap();
                black_box(&mut y);
            })
        });
    }
    group.finish();
}

/// The dense layers of the benchmarked models, `(name, rows, in, out, bias)`: the GPT's
/// forward at one sequence (64 token rows) and its training step at batch 12 (768 rows),
/// per block the attention's QKV and output projections, the feed-forward `fc` and `proj`,
/// and the vocabulary head; the MLP 784-128-64-10 at batch 64.
const MODEL_DENSE: [(&str, usize, usize, usize, bool); 13] = [
    ("gpt_qkv", 64, 128, 384, true),
    ("gpt_out", 64, 128, 128, true),
    ("gpt_fc", 64, 128, 512, true),
    ("gpt_proj", 64, 512, 128, true),
    ("gpt_head", 64, 128, 75, false),
    ("gpt_qkv", 768, 128, 384, true),
    ("gpt_out", 768, 128, 128, true),
    ("gpt_fc", 768, 128, 512, true),
    ("gpt_proj", 768, 512, 128, true),
    ("gpt_head", 768, 128, 75, false),
    ("mlp_fc1", 64, 784, 128, true),
    ("mlp_fc2", 64, 128, 64, true),
    ("mlp_fc1", 1, 784, 128, true),
];

/// The models' dense forward products through the packed kernel: `cached` with the weight
/// packed once (`ops::dense_cached`, inference), `packing` with the weight packed on every
/// call (`ops::dense_packing`, a training step). Throughput in FLOP/s (`2·rows·in·out`).
fn bench_model_dense(c: &mut Criterion) {
    let mut group = c.benchmark_group("dense_models");
    group.sampling_mode(SamplingMode::Flat).sample_size(20);
    for (name, m, in_f, out_f, bias) in MODEL_DENSE {
        let w = nanograd::Param::new(&[out_f, in_f], fill::<f32>(out_f * in_f, 7)).unwrap();
        let b = bias.then(|| fill::<f32>(out_f, 8));
        let x = fill::<f32>(m * in_f, 9);
        let mut y = vec![0.0f32; m * out_f];
        let mut pack = nanograd::blas::PackedWeight::new();
        for _ in 0..2 {
            ops::dense_cached(&x, &w, b.as_deref(), m, in_f, out_f, &mut y, &mut pack).unwrap();
        }
        let shape = format!("{name}_{m}x{in_f}x{out_f}");
        group.throughput(Throughput::Elements(2 * (m * in_f * out_f) as u64));
        group.bench_function(BenchmarkId::new("cached", &shape), |bench| {
            bench.iter(|| {
                let x = black_box(&x);
                ops::dense_cached(x, &w, b.as_deref(), m, in_f, out_f, &mut y, &mut pack).unwrap();
                black_box(&mut y);
            })
        });
        if m >= 8 {
            let mut scratch = vec![0.0f32; ops::dense_scratch_len(in_f, out_f)];
            group.bench_function(BenchmarkId::new("packing", &shape), |bench| {
                bench.iter(|| {
                    let (x, w) = (black_box(&x), black_box(w.value()));
                    ops::dense_packing(x, w, b.as_deref(), m, in_f, out_f, &mut y, &mut scratch)
                        .unwrap();
                    black_box(&mut y);
                })
            });
        }
    }
    group.finish();
}

/// Single-thread FMA peak: `CHAINS` independent AVX-512 accumulators, enough to hide the
/// FMA latency on both FMA pipes, so the loop runs at the core's FMA throughput.
#[cfg(target_arch = "x86_64")]
mod peak {
    use std::arch::x86_64::*;

    pub const CHAINS: usize = 12;

    #[target_feature(enable = "avx512f")]
    pub fn fma_f32(rounds: usize, a: f32, b: f32) -> f32 {
        let (a, b) = (_mm512_set1_ps(a), _mm512_set1_ps(b));
        let mut acc = [_mm512_set1_ps(1.0); CHAINS];
        for _ in 0..rounds {
            for v in acc.iter_mut() {
                *v = _mm512_fmadd_ps(*v, a, b);
            }
        }
        acc.iter().map(|&v| _mm512_reduce_add_ps(v)).sum()
    }

    #[target_feature(enable = "avx512f")]
    pub fn fma_f64(rounds: usize, a: f64, b: f64) -> f64 {
        let (a, b) = (_mm512_set1_pd(a), _mm512_set1_pd(b));
        let mut acc = [_mm512_set1_pd(1.0); CHAINS];
        for _ in 0..rounds {
            for v in acc.iter_mut() {
                *v = _mm512_fmadd_pd(*v, a, b);
            }
        }
        acc.iter().map(|&v| _mm512_reduce_add_pd(v)).sum()
    }
}

#[cfg(target_arch = "x86_64")]
fn bench_peak(c: &mut Criterion) {
    if !std::arch::is_x86_feature_detected!("avx512f") {
        return;
    }
    const ROUNDS: usize = 1 << 14;
    let mut group = c.benchmark_group("peak");
    group.sampling_mode(SamplingMode::Flat).sample_size(20);
    let fmas = (ROUNDS * peak::CHAINS) as u64;
    group.throughput(Throughput::Elements(fmas * 16 * 2));
    group.bench_function("avx512_fma_f32", |bench| {
        // SAFETY: AVX-512F was detected above.
        bench.iter(|| unsafe { peak::fma_f32(ROUNDS, black_box(0.999_9), black_box(1e-4)) })
    });
    group.throughput(Throughput::Elements(fmas * 8 * 2));
    group.bench_function("avx512_fma_f64", |bench| {
        // SAFETY: AVX-512F was detected above.
        bench.iter(|| unsafe { peak::fma_f64(ROUNDS, black_box(0.999_9), black_box(1e-4)) })
    });
    group.finish();
}

#[cfg(not(target_arch = "x86_64"))]
fn bench_peak(_: &mut Criterion) {}

/// The products of the benchmarked models, `(name, ta, tb, m, n, k, beta)`: the GPT's
/// training step at batch 12 (768 token rows, width 128, feed-forward 512, attention's
/// 384-wide QKV projection, vocabulary 75), forward (`NT`, `x·Wᵀ`) and both backward
/// products (`dX = dY·W` as `NN`, `dW += dYᵀ·X` as `TN`); the MNIST CNN's convolutions at
/// batch 32 through im2col.
const VERSUS: [(&str, Trans, Trans, usize, usize, usize, f32); 19] = [
    ("gpt_qkv_fwd_NT", Trans::No, Trans::Yes, 768, 384, 128, 0.0),
    ("gpt_qkv_dx_NN", Trans::No, Trans::No, 768, 128, 384, 0.0),
    ("gpt_qkv_dw_TN", Trans::Yes, Trans::No, 384, 128, 768, 1.0),
    ("gpt_fc_fwd_NT", Trans::No, Trans::Yes, 768, 512, 128, 0.0),
    ("gpt_fc_dx_NN", Trans::No, Trans::No, 768, 128, 512, 0.0),
    ("gpt_fc_dw_TN", Trans::Yes, Trans::No, 512, 128, 768, 1.0),
    ("gpt_proj_fwd_NT", Trans::No, Trans::Yes, 768, 128, 512, 0.0),
    ("gpt_proj_dx_NN", Trans::No, Trans::No, 768, 512, 128, 0.0),
    ("gpt_proj_dw_TN", Trans::Yes, Trans::No, 128, 512, 768, 1.0),
    (
        "gpt_attn_out_dx_NN",
        Trans::No,
        Trans::No,
        768,
        128,
        128,
        1.0,
    ),
    ("gpt_head_fwd_NT", Trans::No, Trans::Yes, 768, 75, 128, 0.0),
    ("gpt_head_dx_NN", Trans::No, Trans::No, 768, 128, 75, 0.0),
    ("gpt_head_dw_TN", Trans::Yes, Trans::No, 75, 128, 768, 1.0),
    (
        "gpt_head65_fwd_NT",
        Trans::No,
        Trans::Yes,
        768,
        65,
        128,
        0.0,
    ),
    ("cnn_conv1_fwd_NN", Trans::No, Trans::No, 8, 25088, 9, 0.0),
    ("cnn_conv1_dw_NT", Trans::No, Trans::Yes, 8, 9, 25088, 1.0),
    ("cnn_conv2_fwd_NN", Trans::No, Trans::No, 16, 6272, 72, 0.0),
    ("cnn_conv2_dw_NT", Trans::No, Trans::Yes, 16, 72, 6272, 1.0),
    (
        "cnn_conv2_dcols_TN",
        Trans::Yes,
        Trans::No,
        72,
        6272,
        16,
        0.0,
    ),
];

/// The `gemm` crate 0.19, as the default provider called it before it had a GEMM of its own
/// (single-threaded), for the side-by-side group below. Only this benchmark links it.
#[allow(clippy::too_many_arguments)]
fn gemm_crate<T: Float>(
    ta: Trans,
    tb: Trans,
    m: usize,
    n: usize,
    k: usize,
    alpha: T,
    a: &[T],
    lda: usize,
    b: &[T],
    ldb: usize,
    beta: T,
    c: &mut [T],
    ldc: usize,
) {
    let (a_rs, a_cs) = if ta == Trans::No { (lda, 1) } else { (1, lda) };
    let (b_rs, b_cs) = if tb == Trans::No { (ldb, 1) } else { (1, ldb) };
    assert!(a.len() >= m * k && b.len() >= k * n && c.len() >= (m - 1) * ldc + n);
    // SAFETY: the shapes below are dense, and the lengths were checked above.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            c.as_mut_ptr(),
            /* dst_cs= */ 1,
            /* dst_rs= */ ldc as isize,
            /* read_dst= */ beta != T::zero(),
            a.as_ptr(),
            /* lhs_cs= */ a_cs as isize,
            /* lhs_rs= */ a_rs as isize,
            b.as_ptr(),
            /* rhs_cs= */ b_cs as isize,
            /* rhs_rs= */ b_rs as isize,
            // the gemm crate computes dst = alpha * dst + beta * lhs * rhs
            /* alpha= */
            beta,
            /* beta= */ alpha,
            false,
            false,
            false,
            gemm::Parallelism::None,
        )
    }
}

/// `nanograd::blas::gemm` and the `gemm` crate side by side, shape by shape, in one run:
/// `versus_f32/<shape>/nanograd` against `versus_f32/<shape>/gemm-crate`.
fn bench_versus<T: Float>(
    c: &mut Criterion,
    name: &str,
    shapes: &[(&str, Trans, Trans, usize, usize, usize, f32)],
) {
    let mut group = c.benchmark_group(name);
    group.sampling_mode(SamplingMode::Flat).sample_size(20);
    for &(shape, ta, tb, m, n, k, beta) in shapes {
        let (a, b) = (fill::<T>(m * k, 5), fill::<T>(k * n, 6));
        let lda = if ta == Trans::No { k } else { m };
        let ldb = if tb == Trans::No { n } else { k };
        let beta = T::from_f64(beta as f64);
        let mut out = fill::<T>(m * n, 7);
        // the two agree before they are timed
        let mut want = out.clone();
        gemm(
            ta,
            tb,
            m,
            n,
            k,
            T::one(),
            &a,
            lda,
            &b,
            ldb,
            beta,
            &mut out,
            n,
        );
        gemm_crate(
            ta,
            tb,
            m,
            n,
            k,
            T::one(),
            &a,
            lda,
            &b,
            ldb,
            beta,
            &mut want,
            n,
        );
        for (x, y) in out.iter().zip(&want) {
            assert!((x.to_f64() - y.to_f64()).abs() <= 1e-3 * (1.0 + y.to_f64().abs()));
        }
        group.throughput(Throughput::Elements(2 * (m * n * k) as u64));
        let f: [(&str, GemmFn<T>); 2] = [("nanograd", gemm::<T>), ("gemm-crate", gemm_crate::<T>)];
        for (who, f) in f {
            group.bench_function(BenchmarkId::new(shape, who), |bench| {
                bench.iter(|| {
                    f(
                        ta,
                        tb,
                        m,
                        n,
                        k,
                        T::one(),
                        black_box(&a),
                        lda,
                        black_box(&b),
                        ldb,
                        beta,
                        &mut out,
                        n,
                    );
                    black_box(&mut out);
                })
            });
        }
    }
    group.finish();
}

type GemmFn<T> =
    fn(Trans, Trans, usize, usize, usize, T, &[T], usize, &[T], usize, T, &mut [T], usize);

/// Square products and the GPT's feed-forward ones in `f64`, against the `gemm` crate.
const VERSUS_F64: [(&str, Trans, Trans, usize, usize, usize, f32); 5] = [
    ("square_128_NN", Trans::No, Trans::No, 128, 128, 128, 0.0),
    ("square_512_NN", Trans::No, Trans::No, 512, 512, 512, 0.0),
    ("gpt_fc_fwd_NT", Trans::No, Trans::Yes, 768, 512, 128, 0.0),
    ("gpt_fc_dx_NN", Trans::No, Trans::No, 768, 128, 512, 0.0),
    ("gpt_fc_dw_TN", Trans::Yes, Trans::No, 512, 128, 768, 1.0),
];

fn blas(c: &mut Criterion) {
    bench_versus::<f32>(c, "versus_f32", &VERSUS);
    bench_versus::<f64>(c, "versus_f64", &VERSUS_F64);
    bench_peak(c);
    bench_gemm::<f32>(c, "sgemm");
    bench_gemm::<f64>(c, "dgemm");
    bench_sgemv(c);
    bench_model_products(c);
    bench_packed_dense(c);
    bench_model_dense(c);
}

criterion_group!(benches, blas);
criterion_main!(benches);
