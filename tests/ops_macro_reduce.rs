//! Reductions and shape ops through `model!`: sum, mean, product, reduce without a gradient
//! rule (`ops_macro_reduce_rule.rs` has the rules), slice, reshape and flatten, against the
//! runtime kernels and central differences of the generated gradients, in f64 and f32.

mod ops_macro_util;

use nanograd::assert_close;
use nanograd::ops;
use nanograd::prelude::*;
use nanograd::rand::{rngs::StdRng, SeedableRng};
use ops_macro_util::{check_param_grads, rnd, Vals};

model! {
    fn sum_fn(x: [2, 3]) -> [] { sum(x) }
    fn mean_fn(x: [2, 3]) -> [] { mean(x) }
    fn product_fn(x: [5]) -> [] { product(x) }
    /// A fold with the default (uniform) gradient, right for a sum.
    fn reduce_sum(x: [2, 3]) -> [] { reduce(x, 1.5, |acc, v| acc + v) }
    fn slice_fn(x: [4, 3]) -> [2, 3] { slice(x, 1, 2) }
    fn slice_vec(x: [5]) -> [3] { slice(x, 2, 3) }
    fn reshape_fn(x: [2, 3]) -> [3, 2] { reshape(x, [3, 2]) }
    fn flatten_fn(x: [2, 2, 3]) -> [12] { flatten(x) }
}

model! {
    // values used twice
    fn sum_twice(x: [3]) -> [] { sum(x) * sum(x) + mean(x * x) }
    fn product_twice(x: [3]) -> [] { product(x) * product(x * x) }
    fn slices_of_one(x: [4, 2]) -> [2, 2] { slice(x, 0, 2) * slice(x, 1, 2) + slice(x, 2, 2) }
    fn reshape_twice(x: [2, 3]) -> [6] { let r = reshape(x, [6]); r * flatten(x) + tanh(r) }
    fn reshape_of_op(x: [2, 3]) -> [3, 2] {
        let h = x * x;
        reshape(h, [3, 2]) * reshape(tanh(h), [3, 2]) + reshape(h, [3, 2])
    }
    fn reduce_twice(x: [3]) -> [] {
        reduce(x, 0.0, |acc, v| acc + v) * reduce(x * x, 0.0, |acc, v| acc + v)
    }
}

#[test]
fn sum_mean_product() {
    let x: [[f64; 3]; 2] = rnd(1, -1.0, 1.0);
    check_fn!(sum_fn, sum_fn_vjp, grad = sum_fn_grad, [x => gx], expected = vec![ops::sum(&x.vals())], tol = 1e-7);
    check_fn!(mean_fn, mean_fn_vjp, grad = mean_fn_grad, [x => gx], expected = vec![ops::mean(&x.vals()).unwrap()], tol = 1e-7);
    let p: [f64; 5] = rnd(2, 0.5, 1.5);
    check_fn!(product_fn, product_fn_vjp, grad = product_fn_grad, [p => gp], expected = vec![ops::product(&p.vals())], tol = 1e-7);
    // product of [2, 0, 3, 1, -1] = 0; only the zero gets a gradient: 2·3·1·(-1) = -6
    let (v, g) = product_fn_grad(&[2.0f64, 0.0, 3.0, 1.0, -1.0]);
    assert_eq!(v, 0.0);
    assert_eq!(g, [0.0, -6.0, 0.0, 0.0, 0.0]);
    // sum 21 and mean 3.5 of 1..6, gradients 1 and 1/6
    let x = [[1.0f64, 2.0, 3.0], [4.0, 5.0, 6.0]];
    assert_eq!(sum_fn_grad(&x), (21.0, [[1.0; 3]; 2]));
    assert_eq!(mean_fn_grad(&x), (3.5, [[1.0 / 6.0; 3]; 2]));
    let (v32, g32) = product_fn_grad(&[2.0f32, 0.0, 3.0, 1.0, -1.0]);
    assert_eq!((v32, g32), (0.0, [0.0, -6.0, 0.0, 0.0, 0.0]));
}

#[test]
fn reduce_without_a_rule() {
    let x: [[f64; 3]; 2] = rnd(3, -1.0, 1.0);
    let xv = x.vals();
    check_fn!(reduce_sum, reduce_sum_vjp, grad = reduce_sum_grad, [x => gx], expected = vec![ops::reduce(&xv, 1.5, |a, v| a + v)], tol = 1e-7);
    // hand-derived: 1.5 + 1 + 2 + 3 = 7.5 with gradient 1 each
    let (v, g) = reduce_sum_grad(&[[1.0f64, 2.0, 3.0], [0.0, 0.0, 0.0]]);
    assert_eq!((v, g), (7.5, [[1.0; 3]; 2]));
    let (v, g) = reduce_sum_grad(&[[1.0f32, 2.0, 3.0], [0.0, 0.0, 0.0]]);
    assert_eq!((v, g), (7.5, [[1.0; 3]; 2]));
}

#[test]
fn slice_reshape_flatten() {
    let x: [[f64; 3]; 4] = rnd(4, -1.0, 1.0);
    let mut y = vec![0.0; 6];
    ops::slice(&x.vals(), 3, 1, 2, &mut y).unwrap();
    let g = check_fn!(slice_fn, slice_fn_vjp, [x => gx], expected = y, tol = 1e-7);
    // rows 0 and 3 get no gradient
    assert!(g[0][..3].iter().chain(&g[0][9..]).all(|&v| v == 0.0));
    let v: [f64; 5] = rnd(5, -1.0, 1.0);
    let mut y = vec![0.0; 3];
    ops::slice(&v.vals(), 1, 2, 3, &mut y).unwrap();
    check_fn!(slice_vec, slice_vec_vjp, [v => gv], expected = y, tol = 1e-7);

    let a: [[f64; 3]; 2] = rnd(6, -1.0, 1.0);
    let mut y = vec![0.0; 6];
    ops::reshape(&a.vals(), &mut y).unwrap();
    check_fn!(reshape_fn, reshape_fn_vjp, [a => ga], expected = y, tol = 1e-7);
    let t: [[[f64; 3]; 2]; 2] = rnd(7, -1.0, 1.0);
    let mut y = vec![0.0; 12];
    ops::flatten(&t.vals(), &mut y).unwrap();
    check_fn!(flatten_fn, flatten_fn_vjp, [t => gt], expected = y, tol = 1e-7);
    // hand-derived: reshape keeps the row-major order
    assert_eq!(
        reshape_fn(&[[1.0f32, 2.0, 3.0], [4.0, 5.0, 6.0]]),
        [[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]
    );
}

#[test]
fn values_used_twice() {
    let x: [f64; 3] = rnd(8, 0.5, 1.5);
    let xv = x.vals();
    let sq: Vec<f64> = xv.iter().map(|v| v * v).collect();
    let s = ops::sum(&xv);
    check_fn!(sum_twice, sum_twice_vjp, grad = sum_twice_grad, [x => gx], expected = vec![s * s + ops::mean(&sq).unwrap()], tol = 1e-6);
    check_fn!(product_twice, product_twice_vjp, grad = product_twice_grad, [x => gx], expected = vec![ops::product(&xv) * ops::product(&sq)], tol = 1e-6);
    check_fn!(reduce_twice, reduce_twice_vjp, grad = reduce_twice_grad, [x => gx], expected = vec![s * ops::sum(&sq)], tol = 1e-6);
    // hand-derived at x = [1, 2, 3]: sum² + mean(x²) = 36 + 14/3, gradient 2·6 + 2x/3;
    // product(x)·product(x²) = p³ = 216, gradient 3p³/x_i; sum(x)·sum(x²) = 84, gradient
    // 14 + 6·2x
    let (v, g) = sum_twice_grad(&[1.0f64, 2.0, 3.0]);
    assert_close!(v, 36.0 + 14.0 / 3.0, 1e-15);
    assert_close!(g, [12.0 + 2.0 / 3.0, 12.0 + 4.0 / 3.0, 14.0], 1e-15);
    assert_eq!(
        product_twice_grad(&[1.0f64, 2.0, 3.0]),
        (216.0, [648.0, 324.0, 216.0])
    );
    assert_eq!(
        reduce_twice_grad(&[1.0f32, 2.0, 3.0]),
        (84.0, [26.0, 38.0, 50.0])
    );

    let m: [[f64; 2]; 4] = rnd(9, -1.0, 1.0);
    let mv = m.vals();
    let rows = |start: usize| -> Vec<f64> {
        let mut y = vec![0.0; 4];
        ops::slice(&mv, 2, start, 2, &mut y).unwrap();
        y
    };
    let (s0, s1, s2) = (rows(0), rows(1), rows(2));
    let expected: Vec<f64> = (0..4).map(|i| s0[i] * s1[i] + s2[i]).collect();
    check_fn!(slices_of_one, slices_of_one_vjp, [m => gm], expected = expected, tol = 1e-7);

    let a: [[f64; 3]; 2] = rnd(10, -1.0, 1.0);
    let av = a.vals();
    let mut th = vec![0.0; 6];
    ops::tanh(&av, &mut th).unwrap();
    let expected: Vec<f64> = (0..6).map(|i| av[i] * av[i] + th[i]).collect();
    let g = check_fn!(reshape_twice, reshape_twice_vjp, [a => ga], expected = expected, tol = 1e-7);
    // d(x² + tanh x)/dx = 2x + 1 - tanh² x
    let u = ops_macro_util::random_like(&[0.0f64; 6], 0x5eed);
    let want: Vec<f64> = (0..6)
        .map(|i| (2.0 * av[i] + 1.0 - th[i] * th[i]) * u[i])
        .collect();
    assert_close!(g[0], want, 1e-12);

    let h: Vec<f64> = av.iter().map(|v| v * v).collect();
    let mut th = vec![0.0; 6];
    ops::tanh(&h, &mut th).unwrap();
    let expected: Vec<f64> = (0..6).map(|i| h[i] * th[i] + h[i]).collect();
    check_fn!(reshape_of_op, reshape_of_op_vjp, [a => ga], expected = expected, tol = 1e-7);
}

model! {
    /// Shape ops and reductions on a batch.
    struct Shapes {
        w: Param([2, 3]),
    }

    fn rows(x: [B, 2, 3]) -> [B, 6] { flatten(x * w) }
    fn back(x: [B, 2, 3]) -> [B, 3, 2] { reshape(x * w, [B, 3, 2]) }

    fn loss(x: [B, 2, 3], u: [B, 3, 2]) -> [] {
        sum(back(x) * u) + mean(rows(x)) * product(slice(w, 1, 1))
            + reduce(w * w, 0.5, |a, v| a + v)
    }
}

#[test]
fn batched_shapes_and_reductions_in_the_struct_form() {
    let mut model = Shapes::<f64>::new(&mut StdRng::seed_from_u64(1));
    let x: Vec<[[f64; 3]; 2]> = (0..3).map(|i| rnd(20 + i, -1.0, 1.0)).collect();
    let u: Vec<[[f64; 2]; 3]> = (0..3).map(|i| rnd(30 + i, -1.0, 1.0)).collect();
    let xf: Vec<f64> = x.iter().flat_map(|r| r.vals()).collect();
    let uf: Vec<f64> = u.iter().flat_map(|r| r.vals()).collect();
    let mut xw = vec![0.0; 18];
    ops::mul(&xf, model.w.value(), &mut xw).unwrap();
    let rows: Vec<f64> = model
        .rows(&x)
        .unwrap()
        .iter()
        .flat_map(|r| r.vals())
        .collect();
    assert_close!(rows, xw, 1e-12);
    let back: Vec<f64> = model
        .back(&x)
        .unwrap()
        .iter()
        .flat_map(|r| r.vals())
        .collect();
    assert_close!(back, xw, 1e-12);

    let base = model.clone();
    let loss = model.loss_backward(&x, &u).unwrap();
    let w = base.w.value();
    let mut s = vec![0.0; 3];
    ops::slice(w, 3, 1, 1, &mut s).unwrap();
    let want = ops_macro_util::dotv(&xw, &uf)
        + ops::mean(&xw).unwrap() * ops::product(&s)
        + ops::reduce(w, 0.5, |a, v| a + v * v);
    assert_close!(loss, want, 1e-12);
    assert_close!(base.loss(&x, &u).unwrap(), want, 1e-12);
    let names = check_param_grads(&base, &model, |m| m.loss(&x, &u).unwrap(), 1e-6, &[]);
    assert_eq!(names, ["w"]);

    let mut m32 = Shapes::<f32>::new(&mut StdRng::seed_from_u64(2));
    ops_macro_util::copy_to_f32(&base, &mut m32);
    let x32: Vec<[[f32; 3]; 2]> = x.iter().map(|r| r.map(|q| q.map(|v| v as f32))).collect();
    let u32: Vec<[[f32; 2]; 3]> = u.iter().map(|r| r.map(|q| q.map(|v| v as f32))).collect();
    assert_close!(m32.loss_backward(&x32, &u32).unwrap(), want, 1e-5);
    ops_macro_util::assert_grads_close(&model, &m32, 1e-4);
}
