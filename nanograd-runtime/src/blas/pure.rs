//! The default provider: the pure-Rust `gemm` crate for GEMM (AVX-512 kernels with its
//! `x86-v4` feature, chosen at run time), plain auto-vectorised loops for the level-1 and
//! level-2 routines. Nothing to install.

use super::{check_gemm, check_gemv, check_same_len, Scalar, Trans};
use crate::Float;

/// Lanes of independent accumulators in the reductions, so the compiler can vectorise them.
const LANES: usize = 8;

fn dot_portable<T: Float>(x: &[T], y: &[T]) -> T {
    check_same_len("dot", x.len(), y.len());
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
    acc.iter().copied().sum::<T>() + tail
}

fn axpy_portable<T: Float>(alpha: T, x: &[T], y: &mut [T]) {
    check_same_len("axpy", x.len(), y.len());
    for (yi, &xi) in y.iter_mut().zip(x) {
        *yi += alpha * xi;
    }
}

fn scal_portable<T: Float>(alpha: T, x: &mut [T]) {
    for xi in x {
        *xi *= alpha;
    }
}

/// `y = beta * y`, where `beta == 0` writes zeros without reading `y` (BLAS semantics).
fn scale_output<T: Float>(beta: T, y: &mut [T]) {
    if beta == T::zero() {
        y.fill(T::zero());
    } else if beta != T::one() {
        scal_portable(beta, y);
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
    match ta {
        Trans::No => {
            for (i, yi) in y.iter_mut().enumerate() {
                let row = &a[i * lda..i * lda + n];
                let base = if beta == T::zero() {
                    T::zero()
                } else {
                    beta * *yi
                };
                *yi = base + alpha * dot_portable(row, x);
            }
        }
        Trans::Yes => {
            scale_output(beta, y);
            for (i, &xi) in x.iter().enumerate() {
                axpy_portable(alpha * xi, &a[i * lda..i * lda + n], y);
            }
        }
    }
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
                // (row stride, column stride) of op(A) and op(B) inside their slices.
                let (a_rs, a_cs) = match ta {
                    Trans::No => (lda, 1),
                    Trans::Yes => (1, lda),
                };
                let (b_rs, b_cs) = match tb {
                    Trans::No => (ldb, 1),
                    Trans::Yes => (1, ldb),
                };
                // SAFETY: `check_gemm` proved that every element addressed by these strides
                // lies inside `a`, `b` and `c`; `c` is borrowed mutably, so nothing aliases it.
                unsafe {
                    gemm::gemm(
                        m,
                        n,
                        k,
                        c.as_mut_ptr(),
                        /* dst_cs= */ 1,
                        /* dst_rs= */ ldc as isize,
                        /* read_dst= */ beta != 0.0,
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
                        /* conj_dst= */ false,
                        /* conj_lhs= */ false,
                        /* conj_rhs= */ false,
                        gemm::Parallelism::None,
                    )
                }
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
