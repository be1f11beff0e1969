//! GEMM and GEMV throughput of the BLAS provider compiled in, through `nanograd::blas`.
//!
//! Each benchmark's throughput is its count of floating-point operations (`2 m n k` for GEMM,
//! `2 m n` for GEMV), so criterion's `elem/s` reads as FLOP/s: `Gelem/s` = GFLOP/s.
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
use nanograd::Float;
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

fn blas(c: &mut Criterion) {
    bench_gemm::<f32>(c, "sgemm");
    bench_gemm::<f64>(c, "dgemm");
    bench_sgemv(c);
}

criterion_group!(benches, blas);
criterion_main!(benches);
