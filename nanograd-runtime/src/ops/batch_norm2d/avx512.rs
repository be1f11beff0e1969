//! Batch norm's channel sums for `f32` in sixteen lanes: the sums of `lanes_sum` and
//! `lanes_sum_and_dot` in [`super`], in the same order to the bit (lane `l` of the
//! accumulator adds up elements `l`, `l + 16`, .. of a run, each `f` rounded as the
//! portable code rounds it, the lanes then added as there, then the run's tail), written
//! with the vectors themselves: the portable loops compile the dot product's sixteen
//! accumulators to scalar loads and additions.

use core::arch::x86_64::__m512;

use pulp::x86::V4;
use pulp::Simd;

/// `f32` lanes in one register.
const L: usize = 16;

/// Whether this CPU has AVX-512 (the sums below run only then).
pub(super) fn available() -> Option<V4> {
    V4::try_new()
}

/// What to add up over the runs of a channel.
#[derive(Clone, Copy)]
pub(super) enum Sum {
    /// `Σ x`.
    Values,
    /// `Σ (x - mean)²`.
    Squares { mean: f32 },
}

/// Over the runs `(b·c + k)·hw ..` of channel `k` for `b < n`, `Σ f(x)` as [`Sum`] says, run
/// by run: the sum of `lanes_sum` over each run, added up in image order.
pub(super) fn channel_sum(
    simd: V4,
    x: &[f32],
    (n, c, hw, k): (usize, usize, usize, usize),
    what: Sum,
) -> f32 {
    struct Op<'a> {
        simd: V4,
        x: &'a [f32],
        dims: (usize, usize, usize, usize),
        what: Sum,
    }
    impl pulp::WithSimd for Op<'_> {
        type Output = f32;
        #[inline(always)]
        fn with_simd<S: Simd>(self, _: S) -> f32 {
            let Self {
                simd,
                x,
                dims: (n, c, hw, k),
                what,
            } = self;
            let run = |b: usize| &x[(b * c + k) * hw..][..hw];
            let mut total = 0.0f32;
            let mut b = 0;
            // four runs at a time: four independent chains of additions instead of one
            while b + RUNS <= n {
                let runs = [run(b), run(b + 1), run(b + 2), run(b + 3)];
                for sum in runs_sum(simd, runs, what) {
                    total += sum;
                }
                b += RUNS;
            }
            for b in b..n {
                let [sum] = runs_sum(simd, [run(b)], what);
                total += sum;
            }
            total
        }
    }
    Simd::vectorize(
        simd,
        Op {
            simd,
            x,
            dims: (n, c, hw, k),
            what,
        },
    )
}

/// Runs of [`channel_sum`] summed together.
const RUNS: usize = 4;

/// `Σ f(x)` over each of `R` runs of the same length, as [`Sum`] says: each the sum of
/// `lanes_sum` over its run, in its order (lane `l` adds elements `l`, `l + 16`, .., the
/// lanes are then added in order, then the tail). The runs' chains of additions are
/// independent, so they overlap.
#[inline(always)]
fn runs_sum<const R: usize>(simd: V4, runs: [&[f32]; R], what: Sum) -> [f32; R] {
    let f = simd.avx512f;
    let split = runs.map(pulp::as_arrays::<L, f32>);
    let chunks = split.iter().map(|(c, _)| c.len()).min().unwrap_or(0);
    let mut acc = [f._mm512_setzero_ps(); R];
    match what {
        Sum::Values => {
            for q in 0..chunks {
                for (a, (c, _)) in acc.iter_mut().zip(&split) {
                    *a = f._mm512_add_ps(*a, pulp::cast::<[f32; L], __m512>(c[q]));
                }
            }
        }
        Sum::Squares { mean } => {
            let m = f._mm512_set1_ps(mean);
            for q in 0..chunks {
                for (a, (c, _)) in acc.iter_mut().zip(&split) {
                    let d = f._mm512_sub_ps(pulp::cast::<[f32; L], __m512>(c[q]), m);
                    *a = f._mm512_add_ps(*a, f._mm512_mul_ps(d, d));
                }
            }
        }
    }
    let mut out = [0.0f32; R];
    for ((o, a), (_, tail)) in out.iter_mut().zip(&acc).zip(&split) {
        let tail_sum: f32 = match what {
            Sum::Values => tail.iter().copied().sum(),
            Sum::Squares { mean } => tail.iter().map(|&v| (v - mean) * (v - mean)).sum(),
        };
        let lanes: [f32; L] = pulp::cast(*a);
        *o = lanes.iter().copied().sum::<f32>() + tail_sum;
    }
    out
}

/// Over the runs of channel `k` (as in [`channel_sum`]), `(Σ g, Σ g·(x - mean)·invstd)` of
/// `g = dy` in one pass: the sums of `lanes_sum_and_dot` over each run, added up in image
/// order.
pub(super) fn channel_sum_and_dot(
    simd: V4,
    dy: &[f32],
    x: &[f32],
    (n, c, hw, k): (usize, usize, usize, usize),
    (mean, invstd): (f32, f32),
) -> (f32, f32) {
    struct Op<'a> {
        simd: V4,
        dy: &'a [f32],
        x: &'a [f32],
        dims: (usize, usize, usize, usize),
        stats: (f32, f32),
    }
    impl pulp::WithSimd for Op<'_> {
        type Output = (f32, f32);
        #[inline(always)]
        fn with_simd<S: Simd>(self, _: S) -> (f32, f32) {
            let Self {
                simd,
                dy,
                x,
                dims: (n, c, hw, k),
                stats: (mean, invstd),
            } = self;
            let f = simd.avx512f;
            let (m, s) = (f._mm512_set1_ps(mean), f._mm512_set1_ps(invstd));
            let (mut sum_g, mut sum_gx) = (0.0f32, 0.0f32);
            for b in 0..n {
                let start = (b * c + k) * hw;
                let (gs, gt) = pulp::as_arrays::<L, f32>(&dy[start..][..hw]);
                let (xs, xt) = pulp::as_arrays::<L, f32>(&x[start..][..hw]);
                let (mut acc, mut acc_f) = (f._mm512_setzero_ps(), f._mm512_setzero_ps());
                for (g, v) in gs.iter().zip(xs) {
                    let g = pulp::cast::<[f32; L], __m512>(*g);
                    let d = f._mm512_sub_ps(pulp::cast::<[f32; L], __m512>(*v), m);
                    acc = f._mm512_add_ps(acc, g);
                    acc_f = f._mm512_add_ps(acc_f, f._mm512_mul_ps(f._mm512_mul_ps(g, d), s));
                }
                let tail: f32 = gt.iter().copied().sum();
                let tail_f: f32 = gt
                    .iter()
                    .zip(xt)
                    .map(|(&g, &v)| g * (v - mean) * invstd)
                    .sum();
                let (lanes, lanes_f): ([f32; L], [f32; L]) = (pulp::cast(acc), pulp::cast(acc_f));
                sum_g += lanes.iter().copied().sum::<f32>() + tail;
                sum_gx += lanes_f.iter().copied().sum::<f32>() + tail_f;
            }
            (sum_g, sum_gx)
        }
    }
    Simd::vectorize(
        simd,
        Op {
            simd,
            dy,
            x,
            dims: (n, c, hw, k),
            stats: (mean, invstd),
        },
    )
}
