//! 2-D average pooling (PyTorch's `avg_pool2d` with its defaults: floor mode,
//! `count_include_pad = true`):
//!
//! `y[n, c, i, j] = (1 / k²) · Σ_{u, v < k} x[n, c, i·s + u - p, j·s + v - p]`
//!
//! where the padding holds zeros that count in the divisor; in floor mode no window reaches
//! past the padding, so the divisor is always `k²`. Derivative: `dx += dy / k²` over each
//! window's inside positions.

use super::Pool2dGeom;
use crate::{Float, Result};

/// `y = avg_pool2d(x)` for `x: [n, c, h, w]` and `y: [n, c, out_h, out_w]`.
pub fn avg_pool2d<T: Float>(g: &Pool2dGeom, x: &[T], n: usize, y: &mut [T]) -> Result<()> {
    g.check("avg_pool2d", n, ("x", x.len()), ("y", y.len()))?;
    let (oh, ow) = (g.out_h(), g.out_w());
    let scale = T::one() / T::from_usize(g.kernel * g.kernel);
    for (xp, yp) in x.chunks_exact(g.h * g.w).zip(y.chunks_exact_mut(oh * ow)) {
        for i in 0..oh {
            let (r0, r1) = g.window(i, g.h);
            for j in 0..ow {
                let (c0, c1) = g.window(j, g.w);
                let sum: T = (r0..r1)
                    .map(|r| xp[r * g.w + c0..r * g.w + c1].iter().copied().sum::<T>())
                    .sum();
                yp[i * ow + j] = sum * scale;
            }
        }
    }
    Ok(())
}

/// The backward pass of [`avg_pool2d`]: `dx += dy / k²` over every window.
pub fn avg_pool2d_backward<T: Float>(
    g: &Pool2dGeom,
    dy: &[T],
    n: usize,
    dx: &mut [T],
) -> Result<()> {
    g.check("avg_pool2d", n, ("dx", dx.len()), ("dy", dy.len()))?;
    let (oh, ow) = (g.out_h(), g.out_w());
    let scale = T::one() / T::from_usize(g.kernel * g.kernel);
    for (dxp, dyp) in dx.chunks_exact_mut(g.h * g.w).zip(dy.chunks_exact(oh * ow)) {
        for i in 0..oh {
            let (r0, r1) = g.window(i, g.h);
            for j in 0..ow {
                let (c0, c1) = g.window(j, g.w);
                let share = dyp[i * ow + j] * scale;
                for r in r0..r1 {
                    for d in &mut dxp[r * g.w + c0..r * g.w + c1] {
                        *d += share;
                    }
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::assert_close;
    use crate::testing::{assert_gradient, random_vec};

    #[test]
    fn literal_overlapping() {
        // x = [[1, 2, 3], [4, 5, 6], [7, 8, 9]], 2x2 windows, stride 1:
        // y = [[1+2+4+5, 2+3+5+6], [4+5+7+8, 5+6+8+9]] / 4 = [[3, 4], [6, 7]]
        let g = Pool2dGeom::new(1, 3, 3, 2, 1, 0).unwrap();
        let x: Vec<f32> = (1..=9).map(|v| v as f32).collect();
        let mut y = [0.0f32; 4];
        avg_pool2d(&g, &x, 1, &mut y).unwrap();
        assert_close!(y, [3.0f32, 4.0, 6.0, 7.0]);
        // dy = [[4, 8], [0, 4]]: each window spreads dy/4 = [[1, 2], [0, 1]] over its 4 inputs
        // dx = [[1, 1+2, 2], [1, 1+2+1, 2+1], [0, 1, 1]], onto the 1 already held
        let mut dx = [1.0f32; 9];
        avg_pool2d_backward(&g, &[4.0, 8.0, 0.0, 4.0], 1, &mut dx).unwrap();
        assert_close!(dx, [2.0f32, 4.0, 3.0, 2.0, 5.0, 4.0, 1.0, 2.0, 2.0]);
    }

    #[test]
    fn literal_padding_counts_in_the_divisor() {
        // kernel 3, stride 2, padding 1 over x = 1..9 in 3x3: windows centred on the corners
        // hold a 2x2 block of x and 5 padding zeros, divided by 9:
        // y = [1+2+4+5, 2+3+5+6, 4+5+7+8, 5+6+8+9] / 9 = [12, 16, 24, 28] / 9
        let g = Pool2dGeom::new(1, 3, 3, 3, 2, 1).unwrap();
        let x: Vec<f64> = (1..=9).map(f64::from).collect();
        let mut y = [0.0; 4];
        avg_pool2d(&g, &x, 1, &mut y).unwrap();
        assert_close!(y, [12.0 / 9.0, 16.0 / 9.0, 24.0 / 9.0, 28.0 / 9.0]);
        // dy = 9: each input gets 1 per window covering it: corners 1, edges 2, centre 4
        let mut dx = [0.0; 9];
        avg_pool2d_backward(&g, &[9.0; 4], 1, &mut dx).unwrap();
        assert_close!(dx, [1.0f64, 2.0, 1.0, 2.0, 4.0, 2.0, 1.0, 2.0, 1.0]);
    }

    fn check(g: Pool2dGeom, n: usize, seed: u64) {
        let x: Vec<f64> = random_vec(seed, n * g.input_len(), -1.0, 1.0);
        let u: Vec<f64> = random_vec(seed + 1, n * g.output_len(), -1.0, 1.0);
        let mut dx = vec![0.0; x.len()];
        avg_pool2d_backward(&g, &u, n, &mut dx).unwrap();
        let loss = |x: &[f64]| {
            let mut y = vec![0.0; u.len()];
            avg_pool2d(&g, x, n, &mut y).unwrap();
            y.iter().zip(&u).map(|(p, q)| p * q).sum::<f64>()
        };
        assert_gradient("avg_pool2d", loss, &x, &dx, 1e-7);
    }

    #[test]
    fn gradcheck() {
        check(Pool2dGeom::new(2, 4, 6, 2, 2, 0).unwrap(), 2, 1);
        check(Pool2dGeom::new(2, 5, 5, 3, 2, 1).unwrap(), 2, 10);
        check(Pool2dGeom::new(3, 4, 5, 3, 1, 1).unwrap(), 1, 20);
        check(Pool2dGeom::new(1, 7, 5, 2, 3, 1).unwrap(), 2, 30);
    }

    #[test]
    fn lengths_are_checked() {
        let g = Pool2dGeom::new(2, 4, 4, 2, 2, 0).unwrap();
        let err = avg_pool2d(&g, &[0.0f64; 32], 2, &mut [0.0; 8]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "shape mismatch in avg_pool2d: expected `x` of [2, 2, 4, 4], got 32 elements"
        );
        let err = avg_pool2d_backward(&g, &[0.0f64; 8], 1, &mut [0.0; 30]).unwrap_err();
        assert!(err.to_string().contains("`dx` of [1, 2, 4, 4]"), "{err}");
        let bad = Pool2dGeom { padding: 2, ..g };
        assert!(avg_pool2d(&bad, &[0.0f64; 32], 1, &mut [0.0; 8]).is_err());
    }
}
