//! The `openblas` and `mkl` providers: the C BLAS interface through `cblas-sys`. This is the
//! one module with raw FFI; every call is preceded by the shared argument checks.

use super::{check_gemm, check_gemv, check_same_len, Scalar, Trans};
use cblas_sys::{CBLAS_LAYOUT, CBLAS_TRANSPOSE};
use std::os::raw::c_int;

// OpenBLAS is linked by build.rs; MKL by intel-mkl-src, which only links if it is used.
#[cfg(feature = "mkl")]
use intel_mkl_src as _;

fn trans(t: Trans) -> CBLAS_TRANSPOSE {
    match t {
        Trans::No => CBLAS_TRANSPOSE::CblasNoTrans,
        Trans::Yes => CBLAS_TRANSPOSE::CblasTrans,
    }
}

/// Converts a dimension to the C `int` of the LP64 interface.
fn int(x: usize) -> c_int {
    c_int::try_from(x).unwrap_or_else(|_| panic!("blas: dimension {x} does not fit a C int"))
}

macro_rules! impl_scalar {
    ($t:ty, $gemm:ident, $gemv:ident, $dot:ident, $axpy:ident, $scal:ident) => {
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
                // SAFETY: `check_gemm` proved the slices hold the matrices the dimensions describe.
                unsafe {
                    cblas_sys::$gemm(
                        CBLAS_LAYOUT::CblasRowMajor,
                        trans(ta),
                        trans(tb),
                        /* m= */ int(m),
                        /* n= */ int(n),
                        /* k= */ int(k),
                        alpha,
                        a.as_ptr(),
                        /* lda= */ int(lda),
                        b.as_ptr(),
                        /* ldb= */ int(ldb),
                        beta,
                        c.as_mut_ptr(),
                        /* ldc= */ int(ldc),
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
                check_gemv(ta, m, n, a.len(), lda, x.len(), y.len());
                if m == 0 || n == 0 {
                    if beta == 0.0 {
                        y.fill(0.0);
                    } else {
                        y.iter_mut().for_each(|v| *v *= beta);
                    }
                    return;
                }
                // SAFETY: `check_gemv` proved the lengths of `a`, `x` and `y`.
                unsafe {
                    cblas_sys::$gemv(
                        CBLAS_LAYOUT::CblasRowMajor,
                        trans(ta),
                        /* m= */ int(m),
                        /* n= */ int(n),
                        alpha,
                        a.as_ptr(),
                        /* lda= */ int(lda),
                        x.as_ptr(),
                        /* incx= */ 1,
                        beta,
                        y.as_mut_ptr(),
                        /* incy= */ 1,
                    )
                }
            }

            fn blas_dot(x: &[$t], y: &[$t]) -> $t {
                check_same_len("dot", x.len(), y.len());
                // SAFETY: both slices hold `x.len()` elements.
                unsafe {
                    cblas_sys::$dot(
                        /* n= */ int(x.len()),
                        x.as_ptr(),
                        /* incx= */ 1,
                        y.as_ptr(),
                        /* incy= */ 1,
                    )
                }
            }

            fn blas_axpy(alpha: $t, x: &[$t], y: &mut [$t]) {
                check_same_len("axpy", x.len(), y.len());
                // SAFETY: both slices hold `x.len()` elements.
                unsafe {
                    cblas_sys::$axpy(
                        /* n= */ int(x.len()),
                        alpha,
                        x.as_ptr(),
                        /* incx= */ 1,
                        y.as_mut_ptr(),
                        /* incy= */ 1,
                    )
                }
            }

            fn blas_scal(alpha: $t, x: &mut [$t]) {
                // SAFETY: `x` holds `x.len()` elements.
                unsafe {
                    cblas_sys::$scal(
                        /* n= */ int(x.len()),
                        alpha,
                        x.as_mut_ptr(),
                        /* incx= */ 1,
                    )
                }
            }
        }
    };
}

impl_scalar!(
    f32,
    cblas_sgemm,
    cblas_sgemv,
    cblas_sdot,
    cblas_saxpy,
    cblas_sscal
);
impl_scalar!(
    f64,
    cblas_dgemm,
    cblas_dgemv,
    cblas_ddot,
    cblas_daxpy,
    cblas_dscal
);
