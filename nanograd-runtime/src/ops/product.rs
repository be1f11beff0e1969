//! `product(x) = Π_i x_i` over all elements, the seed's `product-tensor`;
//! `dL/dx_i = dL/dy * Π_{j≠i} x_j`, the product of all the other entries.
//!
//! The backward pass never divides by `x_i` (which the seed's `prod / x_i` does), so it is
//! exact with zeros: with one zero only that entry gets a gradient, with two or more none
//! does. It multiplies prefix and suffix products, found without scratch memory by halving:
//! each half receives the product of the other half as an outer factor, down to blocks of
//! [`LEAF`] entries whose suffix products fit on the stack (`O(n log n)` multiplications).

use crate::{check_len, Float, Result};

/// Block length below which the backward pass keeps suffix products on the stack.
const LEAF: usize = 32;

/// `Π_i x_i` (1 for an empty `x`).
pub fn product<T: Float>(x: &[T]) -> T {
    x.iter().fold(T::one(), |acc, &v| acc * v)
}

/// `dx_i += dy * Π_{j≠i} x_j`.
pub fn product_backward<T: Float>(x: &[T], dy: T, dx: &mut [T]) -> Result<()> {
    check_len("product", "dx", x.len(), dx.len())?;
    add_products_of_others(x, dy, dx);
    Ok(())
}

/// `dx_i += outer * Π_{j≠i} x_j` over the segment `x`.
fn add_products_of_others<T: Float>(x: &[T], outer: T, dx: &mut [T]) {
    let n = x.len();
    if n <= LEAF {
        // suffix[i] = x[i+1] * .. * x[n-1]; the prefix x[0] * .. * x[i-1] is carried along
        let mut suffix = [T::one(); LEAF];
        for i in (0..n.saturating_sub(1)).rev() {
            suffix[i] = suffix[i + 1] * x[i + 1];
        }
        let mut prefix = outer;
        for i in 0..n {
            dx[i] += prefix * suffix[i];
            prefix *= x[i];
        }
    } else {
        let (xl, xr) = x.split_at(n / 2);
        let (dl, dr) = dx.split_at_mut(n / 2);
        add_products_of_others(xl, outer * product(xr), dl);
        add_products_of_others(xr, outer * product(xl), dr);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::assert_close;
    use crate::testing::{assert_gradient, random_vec};

    /// Π_{j≠i} x_j computed directly, to compare the halving scheme with.
    fn others_directly(x: &[f64]) -> Vec<f64> {
        (0..x.len())
            .map(|i| (0..x.len()).filter(|&j| j != i).map(|j| x[j]).product())
            .collect()
    }

    #[test]
    fn literal() {
        // the seed's example: 2 * 3 * 4 = 24, gradients [3 * 4, 2 * 4, 2 * 3] = [12, 8, 6]
        let x = [2.0f32, 3.0, 4.0];
        assert_close!(product(&x), 24.0f32);
        let mut dx = [0.0f32; 3];
        product_backward(&x, 1.0, &mut dx).unwrap();
        assert_close!(dx, [12.0f32, 8.0, 6.0]);
        // negatives: (-2) * 3 * (-1) = 6, gradients [3 * -1, -2 * -1, -2 * 3] = [-3, 2, -6]
        let x = [-2.0f64, 3.0, -1.0];
        assert_close!(product(&x), 6.0f64);
        let mut dx = [0.0f64; 3];
        product_backward(&x, 1.0, &mut dx).unwrap();
        assert_close!(dx, [-3.0f64, 2.0, -6.0]);
        // one zero: only it gets a gradient, (-2) * 3 * (-1) = 6, times dy = 0.5 -> 3
        let x = [-2.0f64, 0.0, 3.0, -1.0];
        assert_eq!(product(&x), 0.0);
        let mut dx = [1.0f64; 4];
        product_backward(&x, 0.5, &mut dx).unwrap();
        assert_close!(dx, [1.0f64, 4.0, 1.0, 1.0]);
        // two zeros: every product of the others contains a zero
        let mut dx = [0.0f64; 4];
        product_backward(&[0.0, 2.0, 0.0, 3.0], 1.0, &mut dx).unwrap();
        assert_eq!(dx, [0.0; 4]);
        assert_eq!(product::<f64>(&[]), 1.0);
    }

    #[test]
    fn long_inputs_match_the_direct_product() {
        // past LEAF the halving takes over; include negatives and a zero
        for n in [LEAF + 1, 100, 257] {
            let mut x: Vec<f64> = random_vec::<f64>(n as u64, n, 0.8, 1.25)
                .into_iter()
                .enumerate()
                .map(|(i, v)| if i % 3 == 0 { -v } else { v })
                .collect();
            let mut dx = vec![0.0; n];
            product_backward(&x, 2.0, &mut dx).unwrap();
            let want: Vec<f64> = others_directly(&x).iter().map(|v| 2.0 * v).collect();
            assert_close!(dx, want, 1e-12);
            x[n / 2 + 1] = 0.0;
            let mut dx = vec![0.0; n];
            product_backward(&x, 1.0, &mut dx).unwrap();
            assert_close!(dx, others_directly(&x), 1e-12);
            assert!(dx[n / 2 + 1] != 0.0);
        }
    }

    #[test]
    fn gradcheck() {
        for n in [7, 40] {
            let x: Vec<f64> = random_vec::<f64>(1, n, 0.7, 1.3)
                .into_iter()
                .enumerate()
                .map(|(i, v)| if i % 2 == 0 { -v } else { v })
                .collect();
            let mut dx = vec![0.0; n];
            product_backward(&x, -0.8, &mut dx).unwrap();
            assert_gradient("product", |x| -0.8 * product(x), &x, &dx, 1e-7);
        }
    }

    #[test]
    fn errors() {
        let err = product_backward(&[1.0f64; 3], 1.0, &mut [0.0; 2]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "length mismatch in product: `dx` has 2 elements, expected 3"
        );
    }
}
