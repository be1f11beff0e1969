//! The default provider, in Rust: the project's own blocked GEMM (`blocked.rs`, with AVX-512
//! micro-kernels chosen at run time and a portable one elsewhere), plain auto-vectorised
//! loops for the level-1 and level-2 routines. Nothing to install, and no allocation per
//! call: the GEMM's packing buffers are per thread and grow once.

use super::blocked::{self, View};
use super::microkernel::Isa;
use super::{check_gemm, check_gemv, check_same_len, Scalar, Trans};
use crate::simd::{sum_lanes, vectorize, vectorize_above, Kernel};
use crate::Float;

/// `C = A·Bᵀ` with at most this many rows and at least [`DOT_DEPTH`] depth is computed as
/// dot products along the depth (both operands contiguous there): packing B's panels would
/// cost more than the few rows of A multiply with them.
const DOT_ROWS: usize = 16;
/// See [`DOT_ROWS`].
const DOT_DEPTH: usize = 256;
/// The dot products of [`DOT_ROWS`] go along the depth this many bytes of each row at a
/// time, every column of C before the next stretch: the stretch of A's rows (at most 16 x
/// 2 KiB) stays in L1 while every row of B passes it, so that A is read from memory once
/// rather than once per column of C.
const DOT_CHUNK_BYTES: usize = 2048;

/// `C = alpha * A·Bᵀ + beta * C` as dot products along the depth, [`DOT_CHUNK_BYTES`] of
/// it at a time: each stretch's products are added to C, the first applying `beta`.
struct DotRows<'a, T> {
    m: usize,
    n: usize,
    k: usize,
    chunk: usize,
    alpha: T,
    a: &'a [T],
    lda: usize,
    b: &'a [T],
    ldb: usize,
    beta: T,
    c: &'a mut [T],
    ldc: usize,
}

impl<T: Float> Kernel for DotRows<'_, T> {
    type Output = ();
    #[inline(always)]
    fn run(self) {
        let DotRows {
            m,
            n,
            k,
            chunk,
            alpha,
            a,
            lda,
            b,
            ldb,
            beta,
            c,
            ldc,
        } = self;
        for p0 in (0..k).step_by(chunk) {
            let len = chunk.min(k - p0);
            let row = |i: usize| &a[i * lda + p0..][..len];
            let beta = if p0 == 0 { beta } else { T::one() };
            let mut update = |i: usize, j: usize, d: T| {
                let cij = &mut c[i * ldc + j];
                *cij = if beta == T::zero() {
                    alpha * d
                } else {
                    alpha * d + beta * *cij
                };
            };
            for j in 0..n {
                let x = &b[j * ldb + p0..][..len];
                let mut i = 0;
                while i + 4 <= m {
                    let d = dot4([row(i), row(i + 1), row(i + 2), row(i + 3)], x);
                    for (r, d) in d.into_iter().enumerate() {
                        update(i + r, j, d);
                    }
                    i += 4;
                }
                for i in i..m {
                    update(i, j, dot_lanes(row(i), x));
                }
            }
        }
    }
}

/// Independent accumulators per row in the reductions: two AVX-512 registers of `f32`, so
/// that the additions of one row do not wait on each other.
const LANES: usize = 32;

/// Four rows of `A` against `x` at once: `[a0.x, a1.x, a2.x, a3.x]`. Every row is read once
/// and `x` once per four rows, with `4 * LANES` independent accumulators.
#[inline(always)]
fn dot4<T: Float>(rows: [&[T]; 4], x: &[T]) -> [T; 4] {
    let mut a0 = [T::zero(); LANES];
    let mut a1 = [T::zero(); LANES];
    let mut a2 = [T::zero(); LANES];
    let mut a3 = [T::zero(); LANES];
    let xs = x.chunks_exact(LANES);
    let tail_at = x.len() - xs.remainder().len();
    let chunks = xs
        .zip(rows[0].chunks_exact(LANES))
        .zip(rows[1].chunks_exact(LANES))
        .zip(rows[2].chunks_exact(LANES))
        .zip(rows[3].chunks_exact(LANES));
    for ((((xk, r0), r1), r2), r3) in chunks {
        for l in 0..LANES {
            a0[l] += r0[l] * xk[l];
            a1[l] += r1[l] * xk[l];
            a2[l] += r2[l] * xk[l];
            a3[l] += r3[l] * xk[l];
        }
    }
    let mut out = [T::zero(); 4];
    for ((o, acc), row) in out.iter_mut().zip([a0, a1, a2, a3]).zip(rows) {
        let tail: T = row[tail_at..]
            .iter()
            .zip(&x[tail_at..])
            .map(|(&a, &b)| a * b)
            .sum();
        *o = sum_lanes(acc) + tail;
    }
    out
}

#[inline(always)]
fn dot_lanes<T: Float>(x: &[T], y: &[T]) -> T {
    let mut acc = [T::zero(); LANES];
    let xs = x.chunks_exact(LANES);
    let ys = y.chunks_exact(LANES);
    let tail: T = xs
        .remainder()
        .iter()
        .zip(ys.remainder())
        .map(|(&a, &b)| a * b)
        .sum();
    for (a, b) in xs.zip(ys) {
        for l in 0..LANES {
            acc[l] += a[l] * b[l];
        }
    }
    sum_lanes(acc) + tail
}

#[inline(always)]
fn axpy_lanes<T: Float>(alpha: T, x: &[T], y: &mut [T]) {
    for (yi, &xi) in y.iter_mut().zip(x) {
        *yi += alpha * xi;
    }
}

/// `y = beta * y`, where `beta == 0` writes zeros without reading `y` (BLAS semantics).
#[inline(always)]
fn scale_output<T: Float>(beta: T, y: &mut [T]) {
    if beta == T::zero() {
        y.fill(T::zero());
    } else if beta != T::one() {
        for v in y {
            *v *= beta;
        }
    }
}

struct Dot<'a, T>(&'a [T], &'a [T]);

impl<T: Float> Kernel for Dot<'_, T> {
    type Output = T;
    #[inline(always)]
    fn run(self) -> T {
        dot_lanes(self.0, self.1)
    }
}

fn dot_portable<T: Float>(x: &[T], y: &[T]) -> T {
    check_same_len("dot", x.len(), y.len());
    vectorize_above(x.len(), Dot(x, y))
}

struct Axpy<'a, T>(T, &'a [T], &'a mut [T]);

impl<T: Float> Kernel for Axpy<'_, T> {
    type Output = ();
    #[inline(always)]
    fn run(self) {
        axpy_lanes(self.0, self.1, self.2)
    }
}

fn axpy_portable<T: Float>(alpha: T, x: &[T], y: &mut [T]) {
    check_same_len("axpy", x.len(), y.len());
    vectorize_above(x.len(), Axpy(alpha, x, y))
}

struct Scal<'a, T>(T, &'a mut [T]);

impl<T: Float> Kernel for Scal<'_, T> {
    type Output = ();
    #[inline(always)]
    fn run(self) {
        for xi in self.1 {
            *xi *= self.0;
        }
    }
}

fn scal_portable<T: Float>(alpha: T, x: &mut [T]) {
    vectorize_above(x.len(), Scal(alpha, x))
}

/// `y = alpha * op(A) * x + beta * y` after the argument checks.
struct Gemv<'a, T> {
    ta: Trans,
    n: usize,
    alpha: T,
    a: &'a [T],
    lda: usize,
    x: &'a [T],
    beta: T,
    y: &'a mut [T],
}

impl<T: Float> Kernel for Gemv<'_, T> {
    type Output = ();

    #[inline(always)]
    fn run(self) {
        let Gemv {
            ta,
            n,
            alpha,
            a,
            lda,
            x,
            beta,
            y,
        } = self;
        let row = |i: usize| &a[i * lda..i * lda + n];
        let combine = |yi: &mut T, d: T| {
            let base = if beta == T::zero() {
                T::zero()
            } else {
                beta * *yi
            };
            *yi = base + alpha * d;
        };
        match ta {
            Trans::No if n < LANES => {
                // short rows: a plain dot each, no accumulators to set up
                for (i, yi) in y.iter_mut().enumerate() {
                    let d = row(i).iter().zip(x).map(|(&a, &b)| a * b).sum();
                    combine(yi, d);
                }
            }
            Trans::No => {
                let m = y.len();
                let mut i = 0;
                while i + 4 <= m {
                    let d = dot4([row(i), row(i + 1), row(i + 2), row(i + 3)], x);
                    for (yi, d) in y[i..i + 4].iter_mut().zip(d) {
                        combine(yi, d);
                    }
                    i += 4;
                }
                for (k, yi) in y[i..].iter_mut().enumerate() {
                    combine(yi, dot_lanes(row(i + k), x));
                }
            }
            Trans::Yes => {
                scale_output(beta, y);
                for (i, &xi) in x.iter().enumerate() {
                    axpy_lanes(alpha * xi, row(i), y);
                }
            }
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn gemv_portable<T: Float>(
    ta: Trans,
    m: usize,
    n: usize,
    alpha: T,
    a: &[T],
    lda: usize,
    x: &[T],
    beta: T,
    y: &mut [T],
) {
    check_gemv(ta, m, n, a.len(), lda, x.len(), y.len());
    if m == 0 || n == 0 {
        scale_output(beta, y);
        return;
    }
    vectorize_above(
        m * n,
        Gemv {
            ta,
            n,
            alpha,
            a,
            lda,
            x,
            beta,
            y,
        },
    );
}

macro_rules! impl_scalar {
    ($t:ty) => {
        impl Scalar for $t {
            fn blas_gemm(
                ta: Trans,
                tb: Trans,
                m: usize,
                n: usize,
                k: usize,
                alpha: $t,
                a: &[$t],
                lda: usize,
                b: &[$t],
                ldb: usize,
                beta: $t,
                c: &mut [$t],
                ldc: usize,
            ) {
                check_gemm(ta, tb, m, n, k, a.len(), lda, b.len(), ldb, c.len(), ldc);
                if m == 0 || n == 0 {
                    return;
                }
                if k == 0 {
                    for row in c.chunks_mut(ldc).take(m) {
                        scale_output(beta, &mut row[..n]);
                    }
                    return;
                }
                if ta == Trans::No && tb == Trans::Yes && m <= DOT_ROWS && k >= DOT_DEPTH {
                    // a few rows against rows of B, long in the depth (a convolution's
                    // weight gradient): contiguous dot products, no panel of B to pack
                    let chunk = DOT_CHUNK_BYTES / core::mem::size_of::<$t>();
                    vectorize(DotRows {
                        m,
                        n,
                        k,
                        chunk,
                        alpha,
                        a,
                        lda,
                        b,
                        ldb,
                        beta,
                        c,
                        ldc,
                    });
                    return;
                }
                blocked::gemm(
                    Isa::detect(),
                    m,
                    n,
                    k,
                    alpha,
                    View::new(a, ta, lda),
                    View::new(b, tb, ldb),
                    beta,
                    c,
                    ldc,
                    None,
                )
            }

            fn blas_gemm_bias(
                m: usize,
                n: usize,
                k: usize,
                a: &[$t],
                lda: usize,
                b: &[$t],
                ldb: usize,
                bias: &[$t],
                c: &mut [$t],
                ldc: usize,
            ) {
                check_gemm(
                    Trans::No,
                    Trans::No,
                    m,
                    n,
                    k,
                    a.len(),
                    lda,
                    b.len(),
                    ldb,
                    c.len(),
                    ldc,
                );
                assert!(
                    bias.len() >= m,
                    "gemm_bias: bias has {} elements, expected {m}",
                    bias.len()
                );
                if m == 0 || n == 0 {
                    return;
                }
                if k == 0 {
                    for (row, &v) in c.chunks_mut(ldc).zip(bias).take(m) {
                        row[..n].fill(v);
                    }
                    return;
                }
                blocked::gemm(
                    Isa::detect(),
                    m,
                    n,
                    k,
                    1.0,
                    View::new(a, Trans::No, lda),
                    View::new(b, Trans::No, ldb),
                    0.0,
                    c,
                    ldc,
                    Some(&bias[..m]),
                )
            }

            fn blas_gemv(
                ta: Trans,
                m: usize,
                n: usize,
                alpha: $t,
                a: &[$t],
                lda: usize,
                x: &[$t],
                beta: $t,
                y: &mut [$t],
            ) {
                gemv_portable(ta, m, n, alpha, a, lda, x, beta, y)
            }

            fn blas_dot(x: &[$t], y: &[$t]) -> $t {
                dot_portable(x, y)
            }

            fn blas_axpy(alpha: $t, x: &[$t], y: &mut [$t]) {
                axpy_portable(alpha, x, y)
            }

            fn blas_scal(alpha: $t, x: &mut [$t]) {
                scal_portable(alpha, x)
            }
        }
    };
}

impl_scalar!(f32);
impl_scalar!(f64);
