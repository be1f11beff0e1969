//! The function form of `model!`: differentiable functions with fixed shapes.

use nanograd::assert_close;
use nanograd::prelude::*;
use nanograd::testing::assert_gradient;

model! {
    /// The seed's example: `z = x + y; loss = z . z`.
    pub fn energy(x: [3], y: [3]) -> [] {
        let z = x + y;
        dot(z, z)
    }
}

model! {
    const N: usize = 2;

    fn affine(w: [N, 3], x: [3], b: [N]) -> [N] {
        matmul(w, x) + b
    }

    fn squares(x: [2, 3]) -> [2, 3] {
        x * x * 0.5 - x
    }
}

#[test]
fn energy_value_and_gradient() {
    let (x, y) = ([1.0f64, 2.0, 3.0], [4.0, 5.0, 6.0]);
    // z = [5, 7, 9]; z.z = 25 + 49 + 81 = 155; d/dx = d/dy = 2z
    assert_eq!(energy(&x, &y), 155.0);
    let (v, gx, gy) = energy_grad(&x, &y);
    assert_eq!(v, 155.0);
    assert_close!(gx, [10.0f64, 14.0, 18.0]);
    assert_close!(gy, [10.0f64, 14.0, 18.0]);
    let e32: f32 = energy(&[1.0f32, 2.0, 3.0], &[4.0, 5.0, 6.0]);
    assert_eq!(e32, 155.0);
}

#[test]
fn vjp_of_a_vector_function() {
    let w = [[1.0f64, 2.0, 3.0], [4.0, 5.0, 6.0]];
    let x = [1.0, 0.5, -1.0];
    let b = [0.25, -0.25];
    // w x = [1 + 1 - 3, 4 + 2.5 - 6] = [-1, 0.5]; + b = [-0.75, 0.25]
    let y = affine(&w, &x, &b);
    assert_close!(y, [-0.75f64, 0.25]);
    let u = [2.0, -1.0];
    let (y2, gw, gx, gb) = affine_vjp(&w, &x, &b, &u);
    assert_close!(y2, y);
    // d<u, Wx + b>/dW = u x^T, /dx = W^T u, /db = u
    assert_close!(gw.as_flattened(), [2.0f64, 1.0, -2.0, -1.0, -0.5, 1.0]);
    assert_close!(gx, [2.0f64 - 4.0, 4.0 - 5.0, 6.0 - 6.0]);
    assert_close!(gb, u);
}

#[test]
fn finite_differences_through_generated_backward() {
    let x = [[0.3f64, -1.2, 2.0], [0.7, 0.1, -0.4]];
    let u = [[1.0, 2.0, -1.0], [0.5, -0.5, 3.0]];
    let (_, g) = squares_vjp(&x, &u);
    let f = |flat: &[f64]| {
        let mut xa = [[0.0; 3]; 2];
        xa.as_flattened_mut().copy_from_slice(flat);
        let y = squares(&xa);
        y.as_flattened()
            .iter()
            .zip(u.as_flattened())
            .map(|(a, b)| a * b)
            .sum()
    };
    assert_gradient("squares", f, x.as_flattened(), g.as_flattened(), 1e-7);
}
