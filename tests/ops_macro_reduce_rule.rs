//! `reduce(x, init, f, grad = |g, i, v, all| ..)` through `model!`: the seed's
//! `compute-gradient` rule, a closure of the upstream gradient, the index, the element and
//! all the elements, in the function form and the struct form, against the runtime kernels
//! and central differences.

mod ops_macro_util;

use nanograd::assert_close;
use nanograd::ops;
use nanograd::prelude::*;
use nanograd::rand::{rngs::StdRng, SeedableRng};
use ops_macro_util::{check_param_grads, rnd, Vals};

model! {
    /// A sum of squares with its rule: d/dx_i = 2 x_i.
    fn reduce_squares(x: [2, 3]) -> [] {
        reduce(x, 0.0, |acc, v| acc + v * v, grad = |g, _i, v, _all| g * (v + v))
    }

    /// The seed's maximum: the gradient goes to the largest element only; the rule reads
    /// the index and all the values.
    fn reduce_max(x: [2, 3]) -> [] {
        reduce(
            x,
            -1000.0,
            |acc, v| if v > acc { v } else { acc },
            grad = |g, i, v, all| {
                if all.iter().enumerate().all(|(j, &a)| a < v || j == i) { g } else { T::zero() }
            }
        )
    }

    /// A rule on a value used twice, and one used after the fold.
    fn reduce_twice(x: [3]) -> [] {
        let s = reduce(x * x, 0.0, |acc, v| acc + v * v, grad = |g, _i, v, _all| g * (v + v));
        s * reduce(x, 1.0, |acc, v| acc * v, grad = |g, i, _v, all| {
            g * all.iter().enumerate().filter(|&(j, _)| j != i).fold(T::one(), |p, (_, &a)| p * a)
        })
    }
}

#[test]
fn function_form() {
    let x: [[f64; 3]; 2] = rnd(1, -1.0, 1.0);
    let xv = x.vals();
    check_fn!(reduce_squares, reduce_squares_vjp, grad = reduce_squares_grad, [x => gx], expected = vec![ops::reduce(&xv, 0.0, |a, v| a + v * v)], tol = 1e-7);
    // distinct values: the maximum is unique and the finite differences see no kink
    let g = check_fn!(reduce_max, reduce_max_vjp, grad = reduce_max_grad, [x => gx], expected = vec![ops::reduce(&xv, -1000.0, f64::max)], tol = 1e-7);
    let imax = (0..6).max_by(|&i, &j| xv[i].total_cmp(&xv[j])).unwrap();
    let u = ops_macro_util::random_like(&0.0f64, 0x5eed);
    let mut want = vec![0.0; 6];
    want[imax] = u;
    assert_eq!(g[0], want);

    let y: [f64; 3] = rnd(2, 0.5, 1.5);
    let yv = y.vals();
    let s: f64 = yv.iter().map(|v| v.powi(4)).sum();
    check_fn!(reduce_twice, reduce_twice_vjp, grad = reduce_twice_grad, [y => gy], expected = vec![s * ops::product(&yv)], tol = 1e-6);

    // hand-derived: 1 + 4 + 9 = 14 with gradient [2, 4, 6]; max 7 at index 1
    let (v, g) = reduce_squares_grad(&[[1.0f32, 2.0, 3.0], [0.0, 0.0, 0.0]]);
    assert_eq!((v, g), (14.0, [[2.0, 4.0, 6.0], [0.0; 3]]));
    let (v, g) = reduce_max_grad(&[[1.0f64, 7.0, 3.0], [-2.0, 0.0, 5.0]]);
    assert_eq!((v, g), (7.0, [[0.0, 1.0, 0.0], [0.0; 3]]));
    // (1 + 16 + 81) · 6 = 588; d/dx_i = 4x_i³ · 6 + 98 · 6 / x_i
    let (v, g) = reduce_twice_grad(&[1.0f64, 2.0, 3.0]);
    assert_eq!(
        (v, g),
        (588.0, [24.0 + 588.0, 192.0 + 294.0, 648.0 + 196.0])
    );
}

model! {
    struct Cubes {
        w: Param([3]),
    }

    fn loss(x: [B, 3]) -> [] {
        reduce(x * w, 0.0, |a, v| a + v * v * v, grad = |g, _i, v, _all| g * v * v * T::from_f64(3.0))
    }
}

#[test]
fn struct_form() {
    let mut model = Cubes::<f64>::new(&mut StdRng::seed_from_u64(1));
    let x: Vec<[f64; 3]> = (0..2).map(|i| rnd(10 + i, -1.0, 1.0)).collect();
    let mut xw = vec![0.0; 6];
    ops::mul(x.as_flattened(), model.w.value(), &mut xw).unwrap();
    let want = ops::reduce(&xw, 0.0, |a, v| a + v * v * v);
    let base = model.clone();
    assert_close!(model.loss_backward(&x).unwrap(), want, 1e-12);
    let names = check_param_grads(&base, &model, |m| m.loss(&x).unwrap(), 1e-6, &[]);
    assert_eq!(names, ["w"]);
    let mut m32 = Cubes::<f32>::new(&mut StdRng::seed_from_u64(2));
    ops_macro_util::copy_to_f32(&base, &mut m32);
    let x32: Vec<[f32; 3]> = x.iter().map(|r| r.map(|v| v as f32)).collect();
    assert_close!(m32.loss_backward(&x32).unwrap(), want, 1e-5);
    ops_macro_util::assert_grads_close(&model, &m32, 1e-4);
}
