//! The weight's gradient of a convolution, `dW += dY·colsᵀ`, as dot products of rows:
//! `c[i, j] += Σ_p a_i[p]·b_j[p]` for the rows `a_i` of `dY: [c_out, width]` and `b_j` of
//! `cols: [c_in·kh·kw, width]`, both contiguous along `p`. The product is small (16×72 for
//! the CNN's second convolution) and long (`width` = a chunk's output columns), the shape
//! in which a general GEMM spends its time packing and on narrow micro-kernels; here a block
//! of 4×4 rows keeps 16 vector accumulators in registers while it streams the rows once.

use crate::simd::{mul_add as fma, sum_lanes, vectorize, Kernel};
use crate::Float;

/// Vector lanes of one accumulator (an AVX-512 register of `f32`).
const LANES: usize = 16;
/// Rows of `a` and of `b` in one block.
const BLOCK: usize = 4;

/// `c[i, j] += Σ_{p < len} a[i·lda + p]·b[j·ldb + p]` for `c: [m, n]` (`m = c.len() / n`).
pub(super) fn add_row_products<T: Float>(
    a: &[T],
    lda: usize,
    b: &[T],
    ldb: usize,
    len: usize,
    c: &mut [T],
    n: usize,
) {
    vectorize(RowProducts {
        a,
        lda,
        b,
        ldb,
        len,
        c,
        n,
    })
}

struct RowProducts<'a, T> {
    a: &'a [T],
    lda: usize,
    b: &'a [T],
    ldb: usize,
    len: usize,
    c: &'a mut [T],
    n: usize,
}

impl<T: Float> Kernel for RowProducts<'_, T> {
    type Output = ();
    #[inline(always)]
    fn run(self) {
        let RowProducts {
            a,
            lda,
            b,
            ldb,
            len,
            c,
            n,
        } = self;
        if n == 0 {
            return;
        }
        let m = c.len() / n;
        let a_row = |i: usize| &a[i * lda..][..len];
        let b_row = |j: usize| &b[j * ldb..][..len];
        // blocks of 4×4 rows, then the rows and columns left over one pair at a time
        let (m4, n4) = (m - m % BLOCK, n - n % BLOCK);
        // `b`'s rows (the columns, read from memory) outer, `a`'s (dY, in cache) inner: each
        // block of `b` is read from memory once and stays in L1 for all of `a`
        for j in (0..n4).step_by(BLOCK) {
            for i in (0..m4).step_by(BLOCK) {
                let s = block(
                    core::array::from_fn(|r| a_row(i + r)),
                    core::array::from_fn(|q| b_row(j + q)),
                );
                for (r, row) in s.iter().enumerate() {
                    for (d, &v) in c[(i + r) * n + j..][..BLOCK].iter_mut().zip(row) {
                        *d += v;
                    }
                }
            }
        }
        for i in 0..m {
            let js = if i < m4 { n4..n } else { 0..n };
            for j in js {
                c[i * n + j] += dot(a_row(i), b_row(j));
            }
        }
    }
}

/// The 4×4 dot products of the rows `a` with the rows `b` (all of one length): 16
/// accumulators of [`LANES`] lanes over the whole vectors and the zero-padded tail. Each accumulator
/// is a variable of its own: with arrays of them LLVM keeps them in memory.
#[inline(always)]
fn block<T: Float>(a: [&[T]; BLOCK], b: [&[T]; BLOCK]) -> [[T; BLOCK]; BLOCK] {
    let full = a[0].len() / LANES;
    let [a0, a1, a2, a3] = a.map(|r| &r.as_chunks::<LANES>().0[..full]);
    let [b0, b1, b2, b3] = b.map(|r| &r.as_chunks::<LANES>().0[..full]);
    let z = [T::zero(); LANES];
    let (mut c00, mut c01, mut c02, mut c03) = (z, z, z, z);
    let (mut c10, mut c11, mut c12, mut c13) = (z, z, z, z);
    let (mut c20, mut c21, mut c22, mut c23) = (z, z, z, z);
    let (mut c30, mut c31, mut c32, mut c33) = (z, z, z, z);
    let rows = a0.iter().zip(a1).zip(a2).zip(a3);
    let cols = b0.iter().zip(b1).zip(b2).zip(b3);
    for ((((x0, x1), x2), x3), (((y0, y1), y2), y3)) in rows.zip(cols) {
        c00 = mul_add(c00, x0, y0);
        c01 = mul_add(c01, x0, y1);
        c02 = mul_add(c02, x0, y2);
        c03 = mul_add(c03, x0, y3);
        c10 = mul_add(c10, x1, y0);
        c11 = mul_add(c11, x1, y1);
        c12 = mul_add(c12, x1, y2);
        c13 = mul_add(c13, x1, y3);
        c20 = mul_add(c20, x2, y0);
        c21 = mul_add(c21, x2, y1);
        c22 = mul_add(c22, x2, y2);
        c23 = mul_add(c23, x2, y3);
        c30 = mul_add(c30, x3, y0);
        c31 = mul_add(c31, x3, y1);
        c32 = mul_add(c32, x3, y2);
        c33 = mul_add(c33, x3, y3);
    }
    // the tail, zero-padded to one vector
    let tail = full * LANES;
    let pad = |r: &[T]| {
        let mut v = [T::zero(); LANES];
        v[..r.len() - tail].copy_from_slice(&r[tail..]);
        v
    };
    if tail < a[0].len() {
        let [x0, x1, x2, x3] = a.map(pad);
        let [y0, y1, y2, y3] = b.map(pad);
        c00 = mul_add(c00, &x0, &y0);
        c01 = mul_add(c01, &x0, &y1);
        c02 = mul_add(c02, &x0, &y2);
        c03 = mul_add(c03, &x0, &y3);
        c10 = mul_add(c10, &x1, &y0);
        c11 = mul_add(c11, &x1, &y1);
        c12 = mul_add(c12, &x1, &y2);
        c13 = mul_add(c13, &x1, &y3);
        c20 = mul_add(c20, &x2, &y0);
        c21 = mul_add(c21, &x2, &y1);
        c22 = mul_add(c22, &x2, &y2);
        c23 = mul_add(c23, &x2, &y3);
        c30 = mul_add(c30, &x3, &y0);
        c31 = mul_add(c31, &x3, &y1);
        c32 = mul_add(c32, &x3, &y2);
        c33 = mul_add(c33, &x3, &y3);
    }
    let acc = [
        [c00, c01, c02, c03],
        [c10, c11, c12, c13],
        [c20, c21, c22, c23],
        [c30, c31, c32, c33],
    ];
    acc.map(|row| row.map(sum_lanes))
}

/// One dot product: one accumulator of [`LANES`] lanes, then the tail.
#[inline(always)]
fn dot<T: Float>(a: &[T], b: &[T]) -> T {
    let (av, at) = a.as_chunks::<LANES>();
    let (bv, bt) = b.as_chunks::<LANES>();
    let mut acc = [T::zero(); LANES];
    for (x, y) in av.iter().zip(bv) {
        acc = mul_add(acc, x, y);
    }
    sum_lanes(acc) + dot_scalar(at, bt)
}

/// `Σ a[p]·b[p]` in order.
#[inline(always)]
fn dot_scalar<T: Float>(a: &[T], b: &[T]) -> T {
    a.iter().zip(b).fold(T::zero(), |s, (&x, &y)| s + x * y)
}

/// `acc + x·y`, lane by lane, fused.
#[inline(always)]
fn mul_add<T: Float>(mut acc: [T; LANES], x: &[T; LANES], y: &[T; LANES]) -> [T; LANES] {
    for l in 0..LANES {
        acc[l] = fma(x[l], y[l], acc[l]);
    }
    acc
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::assert_close;
    use crate::testing::random_vec;

    #[test]
    fn literal() {
        // a = [[1, 2, 3], [4, 5, 6]], b = [[1, 0, -1], [2, 2, 2], [0, 1, 0]] (rows 4 apart)
        // a·bᵀ = [[1-3, 2+4+6, 2], [4-6, 8+10+12, 5]] = [[-2, 12, 2], [-2, 30, 5]], onto 1s
        let a = [1.0f64, 2.0, 3.0, 4.0, 5.0, 6.0];
        let b = [1.0, 0.0, -1.0, 9.0, 2.0, 2.0, 2.0, 9.0, 0.0, 1.0, 0.0, 9.0];
        let mut c = [1.0; 6];
        add_row_products(&a, 3, &b, 4, 3, &mut c, 3);
        assert_eq!(c, [-1.0, 13.0, 3.0, -1.0, 31.0, 6.0]);
    }

    #[test]
    fn equals_naive_products() {
        // blocks of 4×4, 4×1, 1×4 and 1×1; lengths below, at and past whole vectors
        for (m, n, len) in [
            (16, 72, 1176),
            (8, 9, 784),
            (5, 6, 37),
            (3, 2, 15),
            (9, 5, 16),
        ] {
            let (lda, ldb) = (len + 3, 2 * len);
            let a: Vec<f64> = random_vec(1, m * lda, -1.0, 1.0);
            let b: Vec<f64> = random_vec(2, n * ldb, -1.0, 1.0);
            let c0: Vec<f64> = random_vec(3, m * n, -1.0, 1.0);
            let mut c = c0.clone();
            add_row_products(&a, lda, &b, ldb, len, &mut c, n);
            let expected: Vec<f64> = (0..m * n)
                .map(|e| {
                    let (i, j) = (e / n, e % n);
                    let dot: f64 = (0..len).map(|p| a[i * lda + p] * b[j * ldb + p]).sum();
                    c0[e] + dot
                })
                .collect();
            assert_close!(c, expected, 1e-12);
        }
    }
}
