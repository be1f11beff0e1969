//! `transpose(x, a, b)`: `x` with dimensions `a` and `b` swapped, as PyTorch's
//! `torch.transpose(x, a, b)` made contiguous. `shape` is `x`'s full shape (batch included,
//! rank 2 to [`TRANSPOSE_MAX_DIMS`]); `y` has that shape with entries `a` and `b` exchanged, and
//!
//! `y[.., j, .., i, ..] = x[.., i, .., j, ..]`   (`i` at position `a`, `j` at position `b`).
//!
//! Swapping two dimensions is a permutation of the elements, so the derivative is the same
//! swap applied to the upstream gradient: `dx[.., i, .., j, ..] += dy[.., j, .., i, ..]`.
//!
//! Whatever the rank, the dimensions other than `a` and `b` merge into three runs, and with
//! `a < b` the op is a swap of the middle two of five dimensions,
//! `[outer, A, mid, B, inner] -> [outer, B, mid, A, inner]`. With `inner > 1` (as `[B, T, H, D]`
//! with dimensions 1 and 2 swapped, the attention heads) whole rows of `inner` elements move;
//! with `inner = 1` (the last two dimensions swapped) the `A × B` matrices are transposed in
//! square tiles so that reads and writes both stay within a few cache lines.

use crate::{check_len, fmt_shape, invalid, Float, Result};

/// The largest rank [`transpose`] accepts.
pub const TRANSPOSE_MAX_DIMS: usize = 8;

/// The side of the square tiles in which `inner = 1` swaps are copied.
const TILE: usize = 16;

/// `[outer, p, mid, q, inner]`: the source of a swap of its dimensions 1 and 3.
#[derive(Clone, Copy, Debug)]
struct Swap {
    outer: usize,
    p: usize,
    mid: usize,
    q: usize,
    inner: usize,
}

/// Checks `shape`, `a` and `b` and returns the element count and the swap, `None` when
/// `a == b` (a copy).
fn plan(op: &'static str, shape: &[usize], a: usize, b: usize) -> Result<(usize, Option<Swap>)> {
    let rank = shape.len();
    if !(2..=TRANSPOSE_MAX_DIMS).contains(&rank) {
        return Err(invalid(
            op,
            format!(
                "shape {} has {rank} dimensions, expected 2 to {TRANSPOSE_MAX_DIMS}",
                fmt_shape(shape)
            ),
        ));
    }
    if let Some(d) = shape.iter().position(|&n| n == 0) {
        return Err(invalid(
            op,
            format!("dimension {d} of shape {} is 0", fmt_shape(shape)),
        ));
    }
    if a >= rank || b >= rank {
        return Err(invalid(
            op,
            format!(
                "cannot swap dimensions {a} and {b} of shape {} (rank {rank})",
                fmt_shape(shape)
            ),
        ));
    }
    let product = |dims: &[usize]| dims.iter().try_fold(1usize, |acc, &n| acc.checked_mul(n));
    let numel = product(shape).ok_or_else(|| {
        invalid(
            op,
            format!(
                "shape {} has more elements than fit in memory",
                fmt_shape(shape)
            ),
        )
    })?;
    if a == b {
        return Ok((numel, None));
    }
    let (a, b) = (a.min(b), a.max(b));
    // the products of sub-ranges of the shape cannot overflow once the whole product does not
    let swap = Swap {
        outer: product(&shape[..a]).unwrap_or(0),
        p: shape[a],
        mid: product(&shape[a + 1..b]).unwrap_or(0),
        q: shape[b],
        inner: product(&shape[b + 1..]).unwrap_or(0),
    };
    Ok((numel, Some(swap)))
}

/// `dst = swap(src)` (or `dst += swap(src)` when `ACC`), with `src` of shape
/// `[outer, p, mid, q, inner]` and `dst` of shape `[outer, q, mid, p, inner]`; the lengths are
/// checked by the caller and every dimension is at least 1.
fn swap<T: Float, const ACC: bool>(src: &[T], dst: &mut [T], g: Swap) {
    let Swap {
        outer,
        p,
        mid,
        q,
        inner,
    } = g;
    let block = p * mid * q * inner;
    if inner > 1 {
        // dst rows in order: dst[o, j, m, i, :] = src[o, i, m, j, :]
        let mut rows = dst.chunks_exact_mut(inner);
        for o in 0..outer {
            for j in 0..q {
                for m in 0..mid {
                    for i in 0..p {
                        let s = o * block + ((i * mid + m) * q + j) * inner;
                        let from = &src[s..s + inner];
                        // `dst` has exactly outer * q * mid * p rows of `inner`
                        let Some(to) = rows.next() else { return };
                        if ACC {
                            for (d, &v) in to.iter_mut().zip(from) {
                                *d += v;
                            }
                        } else {
                            to.copy_from_slice(from);
                        }
                    }
                }
            }
        }
        return;
    }
    // inner = 1: per (o, m), dst's q × p matrix (row stride mid * p) is the transpose of
    // src's p × q matrix (row stride mid * q), copied in TILE × TILE tiles
    let (src_row, dst_row) = (mid * q, mid * p);
    for o in 0..outer {
        for m in 0..mid {
            let (s0, d0) = (o * block + m * q, o * block + m * p);
            for i0 in (0..p).step_by(TILE) {
                let i1 = (i0 + TILE).min(p);
                for j0 in (0..q).step_by(TILE) {
                    for j in j0..(j0 + TILE).min(q) {
                        let d = d0 + j * dst_row;
                        let to = &mut dst[d + i0..d + i1];
                        let mut s = s0 + i0 * src_row + j;
                        for t in to.iter_mut() {
                            if ACC {
                                *t += src[s];
                            } else {
                                *t = src[s];
                            }
                            s += src_row;
                        }
                    }
                }
            }
        }
    }
}

/// `y = x` with dimensions `a` and `b` swapped; `shape` is `x`'s full shape (rank 2 to
/// [`TRANSPOSE_MAX_DIMS`], no dimension 0). `a == b` is a copy.
///
/// ```
/// use nanograd_runtime::ops::transpose;
/// let x = [1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0]; // [[1, 2, 3], [4, 5, 6]]
/// let mut y = [0.0f32; 6];
/// transpose(&x, &[2, 3], 0, 1, &mut y).unwrap();
/// assert_eq!(y, [1.0, 4.0, 2.0, 5.0, 3.0, 6.0]); // [[1, 4], [2, 5], [3, 6]]
/// ```
pub fn transpose<T: Float>(
    x: &[T],
    shape: &[usize],
    a: usize,
    b: usize,
    y: &mut [T],
) -> Result<()> {
    const OP: &str = "transpose";
    let (numel, plan) = plan(OP, shape, a, b)?;
    check_len(OP, "x", numel, x.len())?;
    check_len(OP, "y", numel, y.len())?;
    match plan {
        None => y.copy_from_slice(x),
        Some(g) => swap::<T, false>(x, y, g),
    }
    Ok(())
}

/// `dx += dy` with dimensions `a` and `b` swapped back: `dy` has `x`'s shape with `a` and `b`
/// exchanged, `shape` is `x`'s shape.
pub fn transpose_backward<T: Float>(
    dy: &[T],
    shape: &[usize],
    a: usize,
    b: usize,
    dx: &mut [T],
) -> Result<()> {
    const OP: &str = "transpose";
    let (numel, plan) = plan(OP, shape, a, b)?;
    check_len(OP, "dy", numel, dy.len())?;
    check_len(OP, "dx", numel, dx.len())?;
    match plan {
        None => {
            for (d, &g) in dx.iter_mut().zip(dy) {
                *d += g;
            }
        }
        // dy is [outer, q, mid, p, inner]: swapping its dimensions 1 and 3 gives x's layout
        Some(g) => swap::<T, true>(
            dy,
            dx,
            Swap {
                p: g.q,
                q: g.p,
                ..g
            },
        ),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::assert_close;
    use crate::testing::{assert_gradient, random_vec};

    /// The reference: y at x's multi-index with a and b exchanged, element by element.
    fn naive(x: &[f64], shape: &[usize], a: usize, b: usize) -> Vec<f64> {
        let mut out_shape = shape.to_vec();
        out_shape.swap(a, b);
        let mut y = vec![0.0; x.len()];
        let mut idx = vec![0usize; shape.len()];
        for &v in x {
            let mut o = idx.clone();
            o.swap(a, b);
            let flat = o
                .iter()
                .zip(&out_shape)
                .fold(0, |acc, (&i, &n)| acc * n + i);
            y[flat] = v;
            // next multi-index of x, row-major
            for d in (0..shape.len()).rev() {
                idx[d] += 1;
                if idx[d] < shape[d] {
                    break;
                }
                idx[d] = 0;
            }
        }
        y
    }

    #[test]
    fn literal() {
        // x [2, 2, 3] = [[[0, 1, 2], [3, 4, 5]], [[6, 7, 8], [9, 10, 11]]]
        let x: Vec<f64> = (0..12).map(f64::from).collect();
        // swap 0 and 1: y[j, i, :] = x[i, j, :] = [[0 1 2], [6 7 8]], [[3 4 5], [9 10 11]]
        let mut y = [0.0; 12];
        transpose(&x, &[2, 2, 3], 0, 1, &mut y).unwrap();
        assert_close!(y, [0., 1., 2., 6., 7., 8., 3., 4., 5., 9., 10., 11.]);
        // swap the last two: each [2, 3] block transposed to [3, 2]
        transpose(&x, &[2, 2, 3], 2, 1, &mut y).unwrap();
        assert_close!(y, [0., 3., 1., 4., 2., 5., 6., 9., 7., 10., 8., 11.]);
        // swap 0 and 2 (mid = 2, inner = 1): y[k, j, i] = x[i, j, k], y of shape [3, 2, 2]
        transpose(&x, &[2, 2, 3], 0, 2, &mut y).unwrap();
        assert_close!(y, [0., 6., 3., 9., 1., 7., 4., 10., 2., 8., 5., 11.]);
        // a == b copies
        transpose(&x, &[2, 2, 3], 1, 1, &mut y).unwrap();
        assert_close!(y, x);

        // backward of the (0, 2) swap: dy [3, 2, 2] = 0..12 lands at dx[i, j, k] = dy[k, j, i]
        // on top of the 1 dx held
        let dy: Vec<f64> = (0..12).map(f64::from).collect();
        let mut dx = [1.0; 12];
        transpose_backward(&dy, &[2, 2, 3], 2, 0, &mut dx).unwrap();
        assert_close!(dx, [1., 5., 9., 3., 7., 11., 2., 6., 10., 4., 8., 12.]);
        let mut dx = [1.0; 12];
        transpose_backward(&dy, &[2, 2, 3], 0, 0, &mut dx).unwrap();
        assert_close!(dx, (1..13).map(f64::from).collect::<Vec<_>>());
    }

    #[test]
    fn f32_literal() {
        // [3, 1] -> [1, 3] is the same memory
        let mut y = [0.0f32; 3];
        transpose(&[1.0f32, 2.0, 3.0], &[3, 1], 0, 1, &mut y).unwrap();
        assert_close!(y, [1.0f32, 2.0, 3.0]);
    }

    #[test]
    fn matches_the_elementwise_definition() {
        // every pair of a few ranks, including tiles cut short (sizes not multiples of TILE)
        // and the transformer cases [B, T, H, D] (1, 2) and (2, 3)
        let shapes: [&[usize]; 6] = [
            &[5, 7],
            &[19, 35],
            &[2, 3, 4],
            &[2, 5, 3, 4],
            &[3, 17, 20, 2],
            &[2, 1, 3, 2, 2],
        ];
        for (s, shape) in shapes.into_iter().enumerate() {
            let n: usize = shape.iter().product();
            let x: Vec<f64> = random_vec(s as u64, n, -1.0, 1.0);
            for a in 0..shape.len() {
                for b in 0..shape.len() {
                    let want = naive(&x, shape, a, b);
                    let mut y = vec![f64::NAN; n];
                    transpose(&x, shape, a, b, &mut y).unwrap();
                    assert_eq!(y, want, "{shape:?} ({a}, {b})");
                    // backward takes the swapped values back to x's layout, accumulating
                    let mut dx = vec![1.0; n];
                    transpose_backward(&want, shape, a, b, &mut dx).unwrap();
                    let back: Vec<f64> = x.iter().map(|v| v + 1.0).collect();
                    assert_eq!(dx, back, "{shape:?} ({a}, {b}) backward");
                }
            }
        }
    }

    #[test]
    fn gradcheck() {
        let shape = [2, 3, 4, 2];
        let x: Vec<f64> = random_vec(7, 48, -1.0, 1.0);
        let w: Vec<f64> = random_vec(8, 48, -1.0, 1.0);
        for (a, b) in [(1, 2), (2, 3), (0, 3)] {
            let mut dx = vec![0.0; 48];
            transpose_backward(&w, &shape, a, b, &mut dx).unwrap();
            let loss = |x: &[f64]| {
                let mut y = vec![0.0; 48];
                transpose(x, &shape, a, b, &mut y).unwrap();
                y.iter().zip(&w).map(|(y, w)| y * w).sum()
            };
            assert_gradient("transpose", loss, &x, &dx, 1e-7);
        }
    }

    #[test]
    fn errors() {
        let x = [0.0f64; 6];
        let mut y = [0.0f64; 6];
        let err = transpose(&x, &[2, 3], 0, 1, &mut y[..5]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "length mismatch in transpose: `y` has 5 elements, expected 6"
        );
        let err = transpose(&x[..4], &[2, 3], 0, 1, &mut y).unwrap_err();
        assert_eq!(
            err.to_string(),
            "length mismatch in transpose: `x` has 4 elements, expected 6"
        );
        let err = transpose(&x, &[2, 3], 0, 2, &mut y).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid argument to transpose: cannot swap dimensions 0 and 2 of shape [2, 3] (rank 2)"
        );
        let err = transpose(&x, &[6], 0, 0, &mut y).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid argument to transpose: shape [6] has 1 dimensions, expected 2 to 8"
        );
        assert!(transpose(&x, &[], 0, 0, &mut y).is_err());
        let err = transpose(&[0.0f64; 1], &[1; 9], 0, 1, &mut [0.0; 1]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid argument to transpose: shape [1, 1, 1, 1, 1, 1, 1, 1, 1] has 9 dimensions, expected 2 to 8"
        );
        let err = transpose::<f64>(&[], &[2, 0, 3], 0, 1, &mut []).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid argument to transpose: dimension 1 of shape [2, 0, 3] is 0"
        );
        let err = transpose::<f64>(&[], &[usize::MAX, 2], 0, 1, &mut []).unwrap_err();
        assert!(err.to_string().contains("more elements than fit"), "{err}");
        // the backward checks the same, and leaves dx alone on error
        let mut dx = [0.0f64; 6];
        let err = transpose_backward(&x[..5], &[2, 3], 0, 1, &mut dx).unwrap_err();
        assert_eq!(
            err.to_string(),
            "length mismatch in transpose: `dy` has 5 elements, expected 6"
        );
        assert!(transpose_backward(&x, &[2, 3], 0, 1, &mut dx[..5]).is_err());
        assert!(transpose_backward(&x, &[2, 3], 3, 1, &mut dx).is_err());
        assert_eq!(dx, [0.0; 6]);
    }
}
