//! One suite for every provider: each routine against a naive reference, with transposes,
//! leading dimensions wider than a row, and the `beta == 0` rule.

use super::*;
use rand::{rngs::StdRng, RngExt, SeedableRng};

fn random<T: Float>(rng: &mut StdRng, n: usize) -> Vec<T> {
    (0..n)
        .map(|_| T::from_f64(rng.random_range(-1.0..1.0)))
        .collect()
}

/// Element `(i, j)` of `op(M)` for `M` stored row-major with leading dimension `ld`.
fn at<T: Float>(m: &[T], t: Trans, ld: usize, i: usize, j: usize) -> f64 {
    match t {
        Trans::No => m[i * ld + j].to_f64(),
        Trans::Yes => m[j * ld + i].to_f64(),
    }
}

fn check_gemm_case<T: Float>(tol: f64) {
    let mut rng = StdRng::seed_from_u64(7);
    for &(m, n, k) in &[
        (1, 1, 1),
        (3, 5, 4),
        (17, 9, 33),
        (64, 65, 63),
        (2, 130, 1),
        (5, 3, 0),
        // few rows, deep: A·Bᵀ as dot products along the depth in the default provider,
        // within one stretch of the depth and over several (512 f32, 256 f64 at a time)
        (16, 9, 300),
        (3, 2, 257),
        (7, 5, 1100),
    ] {
        for ta in [Trans::No, Trans::Yes] {
            for tb in [Trans::No, Trans::Yes] {
                let (ar, ac) = if ta == Trans::No { (m, k) } else { (k, m) };
                let (br, bc) = if tb == Trans::No { (k, n) } else { (n, k) };
                let (lda, ldb, ldc) = (ac + 2, bc + 1, n + 3);
                let a: Vec<T> = random(&mut rng, ar * lda);
                let b: Vec<T> = random(&mut rng, br * ldb);
                let c0: Vec<T> = random(&mut rng, m * ldc);
                for (alpha, beta) in [(1.0, 0.0), (0.5, 1.0), (-2.0, 0.25)] {
                    let mut c = c0.clone();
                    if beta == 0.0 {
                        // beta == 0 must not read C
                        c.iter_mut().for_each(|v| *v = T::from_f64(f64::NAN));
                    }
                    let (alpha_t, beta_t) = (T::from_f64(alpha), T::from_f64(beta));
                    gemm(
                        ta, tb, m, n, k, alpha_t, &a, lda, &b, ldb, beta_t, &mut c, ldc,
                    );
                    for i in 0..m {
                        for j in 0..n {
                            let prod: f64 = (0..k)
                                .map(|p| at(&a, ta, lda, i, p) * at(&b, tb, ldb, p, j))
                                .sum();
                            let old = if beta == 0.0 {
                                0.0
                            } else {
                                c0[i * ldc + j].to_f64()
                            };
                            let want = alpha * prod + beta * old;
                            let got = c[i * ldc + j].to_f64();
                            assert!(
                                (got - want).abs() <= tol * (1.0 + want.abs()),
                                "gemm {ta:?}{tb:?} m={m} n={n} k={k} alpha={alpha} beta={beta} at ({i},{j}): got {got}, want {want}"
                            );
                        }
                        // padding columns of C are untouched
                        for j in n..ldc {
                            let (got, was) = (c[i * ldc + j].to_f64(), c0[i * ldc + j].to_f64());
                            assert!(beta == 0.0 || got == was, "gemm wrote outside C");
                        }
                    }
                }
            }
        }
    }
}

#[test]
fn gemm_matches_reference_f32() {
    check_gemm_case::<f32>(1e-5);
}

#[test]
fn gemm_matches_reference_f64() {
    check_gemm_case::<f64>(1e-12);
}

fn check_gemv_case<T: Float>(tol: f64) {
    let mut rng = StdRng::seed_from_u64(11);
    for &(m, n) in &[(1, 1), (4, 7), (33, 17), (128, 784)] {
        for ta in [Trans::No, Trans::Yes] {
            let lda = n + 1;
            let a: Vec<T> = random(&mut rng, m * lda);
            let (nx, ny) = if ta == Trans::No { (n, m) } else { (m, n) };
            let x: Vec<T> = random(&mut rng, nx);
            let y0: Vec<T> = random(&mut rng, ny);
            for (alpha, beta) in [(1.0, 0.0), (0.5, 1.0), (-1.5, 0.5)] {
                let mut y = if beta == 0.0 {
                    vec![T::from_f64(f64::NAN); ny]
                } else {
                    y0.clone()
                };
                gemv(
                    ta,
                    m,
                    n,
                    T::from_f64(alpha),
                    &a,
                    lda,
                    &x,
                    T::from_f64(beta),
                    &mut y,
                );
                for (i, yi) in y.iter().enumerate() {
                    let prod: f64 = (0..nx).map(|p| at(&a, ta, lda, i, p) * x[p].to_f64()).sum();
                    let old = if beta == 0.0 { 0.0 } else { y0[i].to_f64() };
                    let want = alpha * prod + beta * old;
                    assert!(
                        (yi.to_f64() - want).abs() <= tol * (1.0 + want.abs()),
                        "gemv {ta:?} m={m} n={n} at {i}: got {yi}, want {want}"
                    );
                }
            }
        }
    }
}

#[test]
fn gemv_matches_reference_f32() {
    check_gemv_case::<f32>(1e-5);
}

#[test]
fn gemv_matches_reference_f64() {
    check_gemv_case::<f64>(1e-12);
}

#[test]
fn level1_literals() {
    // 1*4 + 2*5 + 3*6 = 32
    assert_eq!(dot(&[1.0f64, 2.0, 3.0], &[4.0, 5.0, 6.0]), 32.0);
    // 19 ones against 19 twos: the tail after the 8-lane chunks counts too
    assert_eq!(dot(&[1.0f32; 19], &[2.0f32; 19]), 38.0);
    let mut y = [1.0f64, 1.0, 1.0];
    axpy(2.0, &[1.0, 2.0, 3.0], &mut y);
    assert_eq!(y, [3.0, 5.0, 7.0]);
    scal(0.5, &mut y);
    assert_eq!(y, [1.5, 2.5, 3.5]);
    assert_eq!(dot::<f32>(&[], &[]), 0.0);
}

#[test]
#[should_panic(expected = "needs 6 elements")]
fn short_slice_panics_with_dimensions() {
    let mut c = [0.0f32; 4];
    gemm(
        Trans::No,
        Trans::No,
        2,
        2,
        3,
        1.0,
        &[0.0; 5],
        3,
        &[0.0; 6],
        2,
        0.0,
        &mut c,
        2,
    );
}

#[test]
fn gemm_bias_is_a_fill_then_gemm() {
    // through the public function and whichever provider is compiled in; the literal is
    // worked by hand: [[1, 2], [3, 4]]·[[5, 6], [7, 8]] + [0.5, -1] per row
    let mut c = [f64::NAN; 4];
    gemm_bias(
        2,
        2,
        2,
        &[1.0, 2.0, 3.0, 4.0],
        2,
        &[5.0, 6.0, 7.0, 8.0],
        2,
        &[0.5, -1.0],
        &mut c,
        2,
    );
    assert_eq!(c, [19.5, 22.5, 42.0, 49.0]);
    let mut rng = StdRng::seed_from_u64(12);
    for &(m, n, k) in &[(16, 784, 9), (40, 33, 300)] {
        let a: Vec<f32> = random(&mut rng, m * k);
        let b: Vec<f32> = random(&mut rng, k * n);
        let bias: Vec<f32> = random(&mut rng, m);
        let mut want = vec![0.0f32; m * n];
        for (row, &v) in want.chunks_mut(n).zip(&bias) {
            row.fill(v);
        }
        gemm(
            Trans::No,
            Trans::No,
            m,
            n,
            k,
            1.0,
            &a,
            k,
            &b,
            n,
            1.0,
            &mut want,
            n,
        );
        let mut got = vec![f32::NAN; m * n];
        gemm_bias(m, n, k, &a, k, &b, n, &bias, &mut got, n);
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&got), bits(&want), "{m}x{n}x{k}");
    }
}

/// The default provider's blocked GEMM with each micro-kernel this CPU runs, at shapes that
/// cross every block boundary: depth past `KC`, rows past `MC` and columns past `NC`, and
/// last panels narrower than half a tile, at half, and wider.
#[cfg(not(any(feature = "openblas", feature = "mkl")))]
mod blocked_gemm {
    use super::*;
    use crate::blas::blocked::{gemm, packs_a, reads_b_in_place, Blocking, View};
    use crate::blas::microkernel::Isa;

    fn check<T: Blocking>(isa: Isa, shapes: &[(usize, usize, usize)], tol: f64) {
        check_ld::<T>(isa, shapes, None, tol)
    }

    /// [`check`] with every transpose combination; `a_ld` replaces A's leading dimension
    /// (one more than a row) when given.
    fn check_ld<T: Blocking>(
        isa: Isa,
        shapes: &[(usize, usize, usize)],
        a_ld: Option<usize>,
        tol: f64,
    ) {
        let mut rng = StdRng::seed_from_u64(3);
        for &(m, n, k) in shapes {
            for (ta, tb) in [
                (Trans::No, Trans::No),
                (Trans::No, Trans::Yes),
                (Trans::Yes, Trans::No),
                (Trans::Yes, Trans::Yes),
            ] {
                let (ar, ac) = if ta == Trans::No { (m, k) } else { (k, m) };
                let (br, bc) = if tb == Trans::No { (k, n) } else { (n, k) };
                let (lda, ldb, ldc) = (a_ld.unwrap_or(ac + 1), bc + 3, n + 2);
                assert!(lda >= ac);
                let a: Vec<T> = random(&mut rng, ar * lda);
                let b: Vec<T> = random(&mut rng, br * ldb);
                let c0: Vec<T> = random(&mut rng, m * ldc);
                // the reference, in f64
                let mut want = vec![0.0; m * n];
                for i in 0..m {
                    for p in 0..k {
                        let x = at(&a, ta, lda, i, p);
                        for j in 0..n {
                            want[i * n + j] += x * at(&b, tb, ldb, p, j);
                        }
                    }
                }
                for (alpha, beta) in [(1.0, 0.0), (-0.5, 1.0), (2.0, -0.75)] {
                    let mut c = c0.clone();
                    if beta == 0.0 {
                        c.iter_mut().for_each(|v| *v = T::from_f64(f64::NAN));
                    }
                    gemm(
                        isa,
                        m,
                        n,
                        k,
                        T::from_f64(alpha),
                        View::new(&a, ta, lda),
                        View::new(&b, tb, ldb),
                        T::from_f64(beta),
                        &mut c,
                        ldc,
                        None,
                    );
                    for i in 0..m {
                        for j in 0..ldc {
                            let (got, old) = (c[i * ldc + j].to_f64(), c0[i * ldc + j].to_f64());
                            if j >= n {
                                assert!(beta == 0.0 || got == old, "{isa:?} wrote outside C");
                                continue;
                            }
                            let old = if beta == 0.0 { 0.0 } else { old };
                            let want = alpha * want[i * n + j] + beta * old;
                            let scale = 1.0 + (k as f64).sqrt();
                            assert!(
                                (got - want).abs() <= tol * scale * (1.0 + want.abs()),
                                "{isa:?} {ta:?}{tb:?} m={m} n={n} k={k} alpha={alpha} \
                                 beta={beta} at ({i},{j}): got {got}, want {want}"
                            );
                        }
                    }
                }
            }
        }
    }

    /// Every tile height 1..=12 and both tile widths, with and without a masked tail.
    const SMALL: [(usize, usize, usize); 9] = [
        (1, 1, 1),
        (5, 7, 3),
        (12, 32, 8),
        (13, 33, 9),
        (23, 48, 17),
        (11, 16, 2),
        (7, 65, 70),
        (24, 75, 1),
        // many tiles of rows over a shallow depth: B in place too
        (40, 70, 16),
    ];

    #[test]
    fn every_micro_kernel_matches_the_reference_at_small_shapes() {
        for isa in Isa::all_available() {
            check::<f32>(isa, &SMALL, 1e-6);
            check::<f64>(isa, &SMALL, 1e-14);
        }
    }

    /// Shapes with more than two tiles of rows and a depth past 16: B's panels packed, every
    /// tile height and both panel widths, masked edges.
    const PACKED_B: [(usize, usize, usize); 5] = [
        (25, 17, 17),
        (37, 70, 33),
        (35, 48, 20),
        (26, 16, 19),
        (47, 75, 24),
    ];

    #[test]
    fn every_micro_kernel_matches_the_reference_with_packed_panels_of_b() {
        for isa in Isa::all_available() {
            check::<f32>(isa, &PACKED_B, 1e-6);
            check::<f64>(isa, &PACKED_B, 1e-14);
        }
    }

    #[test]
    fn the_shapes_above_take_the_paths_they_are_meant_to() {
        let b = |ld| View::new(&[0.0f32][..], Trans::No, ld);
        // SMALL: at most two tiles of rows, a row-major B read in place
        assert!(SMALL.iter().all(|&(m, n, k)| reads_b_in_place(b(n), m, k)));
        // PACKED_B: packed
        assert!(PACKED_B
            .iter()
            .all(|&(m, n, k)| !reads_b_in_place(b(n), m, k)));
        // a shallow depth is read in place at any height; a transposed B is always packed
        assert!(reads_b_in_place(b(100), 300, 16));
        assert!(!reads_b_in_place(
            View::new(&[0.0f32][..], Trans::Yes, 16),
            8,
            9
        ));
        // A: packed when transposed, or when its rows are a multiple of 4 KiB apart
        assert!(!packs_a(View::new(&[0.0f32][..], Trans::No, 129)));
        assert!(packs_a(View::new(&[0.0f32][..], Trans::Yes, 129)));
        assert!(packs_a(View::new(&[0.0f32][..], Trans::No, 1024)));
        assert!(packs_a(View::new(&[0.0f64][..], Trans::No, 512)));
        assert!(!packs_a(View::new(&[0.0f64][..], Trans::No, 256)));
    }

    #[test]
    fn a_row_major_a_whose_rows_are_4_kib_apart_is_packed_and_still_right() {
        // m past MC, n past a panel, depth past KC for f64
        for isa in Isa::all_available() {
            check_ld::<f32>(isa, &[(30, 40, 50), (200, 33, 20)], Some(1024), 1e-6);
            check_ld::<f64>(isa, &[(30, 40, 300), (100, 17, 9)], Some(512), 1e-14);
        }
    }

    #[test]
    fn every_micro_kernel_matches_the_reference_across_blocks() {
        // depth past KC (256), rows past MC (192 f32, 96 f64), columns past NC (1024 f32,
        // 512 f64), the last ones with B packed from a column past NC on
        let f32_shapes = [(200, 40, 300), (13, 1030, 20), (30, 1030, 20)];
        let f64_shapes = [(100, 20, 520), (5, 530, 9), (27, 537, 18)];
        for isa in Isa::all_available() {
            check::<f32>(isa, &f32_shapes, 1e-6);
            check::<f64>(isa, &f64_shapes, 1e-14);
        }
    }

    /// `gemm_bias`'s blocked path against filling the rows with the bias and `beta = 1`: the
    /// same bits, with each micro-kernel, for rows and columns on and off the tiles, a depth
    /// past `KC` (the bias belongs to the first block only), B read in place and packed, and
    /// a leading dimension of C wider than its rows.
    fn check_bias<T: Blocking>(isa: Isa) {
        let mut rng = StdRng::seed_from_u64(11);
        for &(m, n, k) in &[
            (1, 1, 1),
            (16, 784, 9),
            (13, 33, 17),
            (25, 70, 300),
            (200, 40, 40),
        ] {
            let ldc = n + 3;
            let a: Vec<T> = random(&mut rng, m * k);
            let b: Vec<T> = random(&mut rng, k * n);
            let bias: Vec<T> = random(&mut rng, m);
            let (va, vb) = (View::new(&a, Trans::No, k), View::new(&b, Trans::No, n));
            let mut want: Vec<T> = random(&mut rng, m * ldc);
            let mut got = want.clone();
            for (row, &v) in want.chunks_mut(ldc).zip(&bias) {
                row[..n].fill(v);
            }
            gemm(
                isa,
                m,
                n,
                k,
                T::one(),
                va,
                vb,
                T::one(),
                &mut want,
                ldc,
                None,
            );
            for (i, row) in got.chunks_mut(ldc).enumerate() {
                row[..n].fill(T::from_f64(if i % 2 == 0 { f64::NAN } else { 7.0 }));
            }
            gemm(
                isa,
                m,
                n,
                k,
                T::one(),
                va,
                vb,
                T::zero(),
                &mut got,
                ldc,
                Some(&bias),
            );
            let bits = |v: &[T]| v.iter().map(|x| x.to_f64().to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&got), bits(&want), "{isa:?} at {m}x{n}x{k}");
        }
    }

    #[test]
    fn a_bias_added_on_the_way_out_is_a_fill_then_beta_one() {
        for isa in Isa::all_available() {
            check_bias::<f32>(isa);
            check_bias::<f64>(isa);
        }
    }

    #[test]
    fn the_micro_kernels_agree_to_rounding() {
        // the same product through each kernel: equal up to fused versus unfused rounding
        let (m, n, k) = (37, 70, 300);
        let a: Vec<f32> = random(&mut StdRng::seed_from_u64(5), m * k);
        let b: Vec<f32> = random(&mut StdRng::seed_from_u64(6), k * n);
        let run = |isa| {
            let mut c = vec![f32::NAN; m * n];
            let (va, vb) = (View::new(&a, Trans::No, k), View::new(&b, Trans::No, n));
            gemm(isa, m, n, k, 1.0, va, vb, 0.0, &mut c, n, None);
            c
        };
        let all = Isa::all_available();
        let first = run(all[0]);
        for &isa in &all[1..] {
            crate::assert_close!(run(isa), first, 1e-5);
        }
    }

    #[test]
    fn the_packing_buffer_grows_once_then_serves_every_smaller_call() {
        // a thread of its own, with a buffer of its own
        std::thread::spawn(|| {
            assert_eq!(f32::buffer_capacity(), 0);
            let (a, b) = (vec![1.0f32; 300 * 300], vec![0.5f32; 300 * 300]);
            let mut c = vec![0.0f32; 300 * 300];
            let isa = Isa::detect();
            let product = |m: usize, n: usize, k: usize, c: &mut [f32]| {
                let (va, vb) = (View::new(&a, Trans::No, k), View::new(&b, Trans::No, n));
                gemm(isa, m, n, k, 1.0, va, vb, 0.0, c, n, None);
            };
            product(300, 300, 300, &mut c);
            let grown = f32::buffer_capacity();
            // B only (a row-major A is read in place): KC deep, nine panels of 32 columns and
            // one of 16 for the last 12
            assert_eq!(grown, 256 * (9 * 32 + 16));
            for (m, n, k) in [(300, 300, 300), (1, 1, 1), (64, 100, 3), (192, 300, 256)] {
                product(m, n, k, &mut c);
                assert_eq!(c[0], 0.5 * k as f32);
                assert_eq!(f32::buffer_capacity(), grown, "{m}x{n}x{k}");
            }
        })
        .join()
        .unwrap();
    }
}
