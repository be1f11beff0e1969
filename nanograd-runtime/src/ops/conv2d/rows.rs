//! The passes around conv2d's GEMMs, over rows of `out_h·out_w` outputs: reordering between
//! the layouts `[n, c_out, ..]` of `y` and `[c_out, n, ..]` of a GEMM over several images,
//! filling rows with the bias and summing rows for its gradient. Each is compiled for the
//! CPU's widest vectors.

use crate::simd::{vectorize, Kernel};
use crate::Float;

/// `dst[j, i, ..] = src[i, j, ..] + add[i]` for `src: [a, b, len]` and `dst: [b, a, len]`:
/// swaps the two leading dimensions, adding `add` (the bias) on the way when there is one.
pub(super) fn swap_leading<T: Float>(
    src: &[T],
    b: usize,
    len: usize,
    add: Option<&[T]>,
    dst: &mut [T],
) {
    vectorize(SwapLeading {
        src,
        b,
        len,
        add,
        dst,
    })
}

struct SwapLeading<'a, T> {
    src: &'a [T],
    b: usize,
    len: usize,
    add: Option<&'a [T]>,
    dst: &'a mut [T],
}

impl<T: Float> Kernel for SwapLeading<'_, T> {
    type Output = ();
    #[inline(always)]
    fn run(self) {
        let SwapLeading {
            src,
            b,
            len,
            add,
            dst,
        } = self;
        let a = src.len() / (b * len);
        for (i, block) in src.chunks_exact(b * len).enumerate() {
            for (j, row) in block.chunks_exact(len).enumerate() {
                let out = &mut dst[(j * a + i) * len..][..len];
                match add {
                    Some(add) => {
                        let ai = add[i];
                        for (o, &v) in out.iter_mut().zip(row) {
                            *o = v + ai;
                        }
                    }
                    None => out.copy_from_slice(row),
                }
            }
        }
    }
}

/// `sums[i % sums.len()] += Σ row i` over the rows of `len` of `rows`.
pub(super) fn add_row_sums<T: Float>(rows: &[T], len: usize, sums: &mut [T]) {
    vectorize(RowSums { rows, len, sums })
}

struct RowSums<'a, T> {
    rows: &'a [T],
    len: usize,
    sums: &'a mut [T],
}

impl<T: Float> Kernel for RowSums<'_, T> {
    type Output = ();
    #[inline(always)]
    fn run(self) {
        let c = self.sums.len();
        for (i, row) in self.rows.chunks_exact(self.len).enumerate() {
            self.sums[i % c] += sum(row);
        }
    }
}

/// The sum of `v` in 16 interleaved partial sums, so that it vectorises.
#[inline(always)]
fn sum<T: Float>(v: &[T]) -> T {
    const LANES: usize = 16;
    let chunks = v.chunks_exact(LANES);
    let tail = chunks.remainder().iter().fold(T::zero(), |acc, &e| acc + e);
    let mut acc = [T::zero(); LANES];
    for chunk in chunks {
        for (a, &e) in acc.iter_mut().zip(chunk) {
            *a += e;
        }
    }
    acc.iter().fold(tail, |total, &a| total + a)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals() {
        // src [2, 3, 1] = [[a0, a1, a2], [b0, b1, b2]] -> dst [3, 2, 1], plus [10, 20]
        let src = [0.0, 1.0, 2.0, 3.0, 4.0, 5.0];
        let mut dst = [f64::NAN; 6];
        swap_leading(&src, 3, 1, Some(&[10.0, 20.0]), &mut dst);
        assert_eq!(dst, [10.0, 23.0, 11.0, 24.0, 12.0, 25.0]);
        swap_leading(&src, 3, 1, None, &mut dst);
        assert_eq!(dst, [0.0, 3.0, 1.0, 4.0, 2.0, 5.0]);
        // with b = 1 (src [3, 1, 2]) the swap is the identity
        swap_leading(&src, 1, 2, None, &mut dst);
        assert_eq!(dst, src);
        // 40 ones and 40 twos in rows of 20 -> sums [20 + 40, 20 + 40] over 4 rows
        let v: Vec<f32> = (0..80).map(|i| if i < 40 { 1.0 } else { 2.0 }).collect();
        let mut sums = [0.5f32, 0.0];
        add_row_sums(&v, 20, &mut sums);
        assert_eq!(sums, [20.5 + 40.0, 20.0 + 40.0]);
    }
}
