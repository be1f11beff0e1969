//! BLAS behind one safe API over row-major slices, for `f32` and `f64`.
//!
//! | function | computes |
//! | --- | --- |
//! | [`gemm`](fn@gemm) | `C = alpha * op(A) * op(B) + beta * C` |
//! | [`gemm_bias`] | `C = A * B + bias`, one bias per row |
//! | [`gemv`] | `y = alpha * op(A) * x + beta * y` |
//! | [`dot`]  | `x . y` |
//! | [`axpy`] | `y += alpha * x` |
//! | [`scal`] | `x *= alpha` |
//!
//! All matrices are row-major with a leading dimension (`lda` = distance between rows).
//! As in BLAS, `beta == 0` means the output is not read, so it may hold garbage or NaN.
//!
//! The provider is chosen by cargo feature: the pure-Rust `gemm` crate by default,
//! `openblas` or `mkl` through `cblas-sys`. Only the provider modules contain `unsafe`.
//!
//! # Panics
//! Like slice indexing, these functions panic when a slice is too short for the dimensions
//! given or a leading dimension is smaller than a row. The op kernels check shapes first and
//! return [`crate::Error`], so user data never reaches these panics.

mod avx512;
#[cfg(not(any(feature = "openblas", feature = "mkl")))]
mod blocked;
#[cfg(any(feature = "openblas", feature = "mkl"))]
mod cblas;
#[cfg(not(any(feature = "openblas", feature = "mkl")))]
mod microkernel;
mod packed;
#[cfg(not(any(feature = "openblas", feature = "mkl")))]
mod pure;

pub use avx512::Avx512;
pub use packed::{packed_len, PackedWeight, MIN_PACK};

use crate::Float;

/// The name of the BLAS provider compiled in: `"gemm"`, `"openblas"` or `"mkl"`.
#[cfg(not(any(feature = "openblas", feature = "mkl")))]
pub const PROVIDER: &str = "gemm";
/// The name of the BLAS provider compiled in: `"gemm"`, `"openblas"` or `"mkl"`.
#[cfg(all(feature = "openblas", not(feature = "mkl")))]
pub const PROVIDER: &str = "openblas";
/// The name of the BLAS provider compiled in: `"gemm"`, `"openblas"` or `"mkl"`.
#[cfg(feature = "mkl")]
pub const PROVIDER: &str = "mkl";

/// Whether a matrix operand is used as stored or transposed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trans {
    /// The operand as stored.
    No,
    /// The operand transposed.
    Yes,
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for f32 {}
    impl Sealed for f64 {}
}

/// The BLAS routines of one element type, implemented by the selected provider for `f32`
/// (`s*` routines) and `f64` (`d*` routines). Call them through the free functions of
/// this module.
pub trait Scalar: sealed::Sealed + Sized {
    #[doc(hidden)]
    #[allow(clippy::too_many_arguments)]
    fn blas_gemm(
        ta: Trans,
        tb: Trans,
        m: usize,
        n: usize,
        k: usize,
        alpha: Self,
        a: &[Self],
        lda: usize,
        b: &[Self],
        ldb: usize,
        beta: Self,
        c: &mut [Self],
        ldc: usize,
    );
    /// `C = A·B + bias` per row, as [`gemm_bias`]: by default each row filled with its
    /// bias, then [`Scalar::blas_gemm`] with `beta = 1`.
    #[doc(hidden)]
    #[allow(clippy::too_many_arguments)]
    fn blas_gemm_bias(
        m: usize,
        n: usize,
        k: usize,
        a: &[Self],
        lda: usize,
        b: &[Self],
        ldb: usize,
        bias: &[Self],
        c: &mut [Self],
        ldc: usize,
    ) where
        Self: Float,
    {
        if n > 0 {
            for (row, &v) in c.chunks_mut(ldc).zip(&bias[..m]).take(m) {
                row[..n].fill(v);
            }
        }
        Self::blas_gemm(
            Trans::No,
            Trans::No,
            m,
            n,
            k,
            Self::one(),
            a,
            lda,
            b,
            ldb,
            Self::one(),
            c,
            ldc,
        );
    }
    #[doc(hidden)]
    #[allow(clippy::too_many_arguments)]
    fn blas_gemv(
        ta: Trans,
        m: usize,
        n: usize,
        alpha: Self,
        a: &[Self],
        lda: usize,
        x: &[Self],
        beta: Self,
        y: &mut [Self],
    );
    #[doc(hidden)]
    fn blas_dot(x: &[Self], y: &[Self]) -> Self;
    #[doc(hidden)]
    fn blas_axpy(alpha: Self, x: &[Self], y: &mut [Self]);
    #[doc(hidden)]
    fn blas_scal(alpha: Self, x: &mut [Self]);
}

/// `C = alpha * op(A) * op(B) + beta * C` with `op(A)` of shape `[m, k]`, `op(B)` of shape
/// `[k, n]` and `C` of shape `[m, n]`, all row-major.
///
/// ```
/// use nanograd_runtime::blas::{gemm, Trans};
/// let a = [1.0f32, 2.0, 3.0, 4.0]; // [[1, 2], [3, 4]]
/// let b = [5.0f32, 6.0, 7.0, 8.0]; // [[5, 6], [7, 8]]
/// let mut c = [0.0f32; 4];
/// gemm(Trans::No, Trans::No, 2, 2, 2, 1.0, &a, 2, &b, 2, 0.0, &mut c, 2);
/// assert_eq!(c, [19.0, 22.0, 43.0, 50.0]);
/// ```
#[allow(clippy::too_many_arguments)]
#[inline]
pub fn gemm<T: Float>(
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
    T::blas_gemm(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}

/// `C = A·B + bias[i]` on every element of row `i`, with `A: [m, k]`, `B: [k, n]`, `C: [m, n]`
/// row-major (neither transposed) and `bias` of `m` elements (`C`'s old values are not
/// read): the same bits as filling each row of `C` with its bias and then `gemm` with
/// `alpha = beta = 1`, without the fill's pass over `C` and the product's read of it (the
/// own GEMM adds the bias where it stores a tile; the BLAS providers fill, then multiply).
///
/// ```
/// use nanograd_runtime::blas::gemm_bias;
/// let a = [1.0f32, 2.0, 3.0, 4.0]; // [[1, 2], [3, 4]]
/// let b = [5.0f32, 6.0, 7.0, 8.0]; // [[5, 6], [7, 8]]
/// let mut c = [f32::NAN; 4];
/// gemm_bias(2, 2, 2, &a, 2, &b, 2, &[0.5, -1.0], &mut c, 2);
/// assert_eq!(c, [19.5, 22.5, 42.0, 49.0]);
/// ```
#[allow(clippy::too_many_arguments)]
#[inline]
pub fn gemm_bias<T: Float>(
    m: usize,
    n: usize,
    k: usize,
    a: &[T],
    lda: usize,
    b: &[T],
    ldb: usize,
    bias: &[T],
    c: &mut [T],
    ldc: usize,
) {
    T::blas_gemm_bias(m, n, k, a, lda, b, ldb, bias, c, ldc)
}

/// `y = alpha * op(A) * x + beta * y` with `A` stored as `[m, n]` row-major: `x` has `n`
/// elements and `y` has `m` when `ta` is [`Trans::No`], the other way round otherwise.
#[allow(clippy::too_many_arguments)]
#[inline]
pub fn gemv<T: Float>(
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
    T::blas_gemv(ta, m, n, alpha, a, lda, x, beta, y)
}

/// The inner product `x . y`.
#[inline]
pub fn dot<T: Float>(x: &[T], y: &[T]) -> T {
    T::blas_dot(x, y)
}

/// `y += alpha * x`.
#[inline]
pub fn axpy<T: Float>(alpha: T, x: &[T], y: &mut [T]) {
    T::blas_axpy(alpha, x, y)
}

/// `x *= alpha`.
#[inline]
pub fn scal<T: Float>(alpha: T, x: &mut [T]) {
    T::blas_scal(alpha, x)
}

/// Checks that `len` elements hold a row-major `[rows, cols]` matrix with leading dimension `ld`.
fn check_matrix(name: &str, rows: usize, cols: usize, ld: usize, len: usize) {
    assert!(
        ld >= cols.max(1),
        "blas: leading dimension of {name} is {ld}, smaller than its {cols} columns"
    );
    if rows > 0 && cols > 0 {
        let need = (rows - 1) * ld + cols;
        assert!(
            len >= need,
            "blas: {name} is [{rows}, {cols}] with leading dimension {ld}, which needs {need} elements, but has {len}"
        );
    }
}

/// The argument checks of [`gemm`], shared by every provider.
#[allow(clippy::too_many_arguments)]
fn check_gemm(
    ta: Trans,
    tb: Trans,
    m: usize,
    n: usize,
    k: usize,
    a_len: usize,
    lda: usize,
    b_len: usize,
    ldb: usize,
    c_len: usize,
    ldc: usize,
) {
    let (ar, ac) = if ta == Trans::No { (m, k) } else { (k, m) };
    let (br, bc) = if tb == Trans::No { (k, n) } else { (n, k) };
    check_matrix("A", ar, ac, lda, a_len);
    check_matrix("B", br, bc, ldb, b_len);
    check_matrix("C", m, n, ldc, c_len);
}

/// The argument checks of [`gemv`]; returns the lengths of `x` and `y`.
fn check_gemv(
    ta: Trans,
    m: usize,
    n: usize,
    a_len: usize,
    lda: usize,
    x_len: usize,
    y_len: usize,
) -> (usize, usize) {
    check_matrix("A", m, n, lda, a_len);
    let (nx, ny) = if ta == Trans::No { (n, m) } else { (m, n) };
    assert!(
        x_len == nx && y_len == ny,
        "blas: gemv with A [{m}, {n}] ({ta:?}) needs x of {nx} and y of {ny} elements, got {x_len} and {y_len}"
    );
    (nx, ny)
}

fn check_same_len(op: &str, x: usize, y: usize) {
    assert!(
        x == y,
        "blas: {op} needs slices of equal length, got {x} and {y}"
    );
}

#[cfg(test)]
mod tests;
