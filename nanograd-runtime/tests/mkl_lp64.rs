//! The `mkl` feature must link MKL's LP64 interface (32-bit integers), the one `cblas-sys`
//! declares, and not ILP64 (64-bit integers, `intel-mkl-src`'s default).
//!
//! On x86-64 the leading dimensions of `cblas_?gemm` are passed on the stack, one 8-byte slot
//! each, and the caller writes only the low 4 bytes of an `int`. Under ILP64 MKL would read
//! all 8 bytes, the upper half being whatever the stack held before. So each call below first
//! fills the stack with ones bytes: under ILP64 `lda`, `ldb` and `ldc` would read as negative
//! numbers, MKL would reject the call and leave `C` as it was; under LP64 it computes the
//! product. The sizes are odd and distinct (`m != n != k`, each leading dimension wider than
//! its row), so an argument read from the wrong place gives a wrong result too, and the
//! integer data makes the products exact in `f32` and `f64`, so they are compared exactly.

#![cfg(feature = "mkl")]

use cblas_sys::{cblas_dgemm, cblas_sgemm, CBLAS_LAYOUT, CBLAS_TRANSPOSE};
use std::hint::black_box;
use std::os::raw::c_int;

const M: usize = 37;
const N: usize = 23;
const K: usize = 51;
const LDA: usize = K + 3;
const LDB: usize = N + 5;
const LDC: usize = N + 2;
/// What `C` holds before the call; `beta == 0` tells MKL not to read it.
const SENTINEL: f64 = -999.0;

/// `A` (`M x K`, stride `LDA`) and `B` (`K x N`, stride `LDB`) of small integers, padding
/// included, and the exact product `C` (`M x N`, stride `LDC`) with the sentinel in its padding.
fn operands() -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let a: Vec<f64> = (0..M * LDA).map(|i| ((i * 7) % 11) as f64 - 5.0).collect();
    let b: Vec<f64> = (0..K * LDB).map(|i| ((i * 5) % 13) as f64 - 6.0).collect();
    let mut c = vec![SENTINEL; M * LDC];
    for i in 0..M {
        for j in 0..N {
            c[i * LDC + j] = (0..K).map(|p| a[i * LDA + p] * b[p * LDB + j]).sum();
        }
    }
    (a, b, c)
}

/// A dimension as the C `int` of `cblas-sys`, opaque to the optimizer so that it is passed as
/// computed, not as a constant the compiler could store in any width.
fn int(x: usize) -> c_int {
    black_box(c_int::try_from(x).expect("dimension fits a C int"))
}

/// Leaves the next stack frames full of `0xff` bytes.
#[inline(never)]
fn scribble() {
    let mut junk = [u8::MAX; 64 * 1024];
    black_box(&mut junk);
}

#[inline(never)]
fn sgemm(a: &[f32], b: &[f32], c: &mut [f32]) {
    // SAFETY: `a`, `b` and `c` hold `M x K`, `K x N` and `M x N` matrices with strides
    // `LDA`, `LDB` and `LDC` (asserted by the caller).
    unsafe {
        cblas_sgemm(
            CBLAS_LAYOUT::CblasRowMajor,
            CBLAS_TRANSPOSE::CblasNoTrans,
            CBLAS_TRANSPOSE::CblasNoTrans,
            int(M),
            int(N),
            int(K),
            1.0,
            a.as_ptr(),
            int(LDA),
            b.as_ptr(),
            int(LDB),
            0.0,
            c.as_mut_ptr(),
            int(LDC),
        )
    }
}

#[inline(never)]
fn dgemm(a: &[f64], b: &[f64], c: &mut [f64]) {
    // SAFETY: as in `sgemm`.
    unsafe {
        cblas_dgemm(
            CBLAS_LAYOUT::CblasRowMajor,
            CBLAS_TRANSPOSE::CblasNoTrans,
            CBLAS_TRANSPOSE::CblasNoTrans,
            int(M),
            int(N),
            int(K),
            1.0,
            a.as_ptr(),
            int(LDA),
            b.as_ptr(),
            int(LDB),
            0.0,
            c.as_mut_ptr(),
            int(LDC),
        )
    }
}

/// The first element of `got` that differs from `want`, as `(row, column, got, want)`.
fn first_mismatch(got: &[f64], want: &[f64]) -> Option<(usize, usize, f64, f64)> {
    got.iter()
        .zip(want)
        .position(|(g, w)| g != w)
        .map(|i| (i / LDC, i % LDC, got[i], want[i]))
}

#[test]
fn the_runtime_is_built_with_mkl() {
    assert_eq!(nanograd_runtime::blas::PROVIDER, "mkl");
}

#[test]
fn sgemm_uses_32_bit_integers() {
    let (a, b, want) = operands();
    let a: Vec<f32> = a.iter().map(|&x| x as f32).collect();
    let b: Vec<f32> = b.iter().map(|&x| x as f32).collect();
    let mut c = vec![SENTINEL as f32; M * LDC];
    assert!(a.len() == M * LDA && b.len() == K * LDB && c.len() == M * LDC);
    scribble();
    sgemm(&a, &b, &mut c);
    let got: Vec<f64> = c.iter().map(|&x| f64::from(x)).collect();
    assert_eq!(
        first_mismatch(&got, &want),
        None,
        "cblas_sgemm is not the LP64 interface: (row, column, got, want)"
    );
}

#[test]
fn dgemm_uses_32_bit_integers() {
    let (a, b, want) = operands();
    let mut c = vec![SENTINEL; M * LDC];
    assert!(a.len() == M * LDA && b.len() == K * LDB && c.len() == M * LDC);
    scribble();
    dgemm(&a, &b, &mut c);
    assert_eq!(
        first_mismatch(&c, &want),
        None,
        "cblas_dgemm is not the LP64 interface: (row, column, got, want)"
    );
}

#[test]
fn the_runtime_gemm_agrees() {
    use nanograd_runtime::blas::{gemm, Trans};
    let (a, b, want) = operands();
    let mut c = vec![SENTINEL; M * LDC];
    gemm(
        Trans::No,
        Trans::No,
        M,
        N,
        K,
        1.0,
        &a,
        LDA,
        &b,
        LDB,
        0.0,
        &mut c,
        LDC,
    );
    assert_eq!(first_mismatch(&c, &want), None);
}
