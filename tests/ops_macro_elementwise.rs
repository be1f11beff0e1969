//! The elementwise ops through `model!`: add, sub, mul, div (by name and as `+ - * /`, with
//! broadcasting), number literals, unary minus, safe_div and scale. Each generated function
//! is compared with the runtime kernels called by hand, its `_vjp` with central
//! differences, and its `f32` instance with the `f64` one (see `check_fn!`).

mod ops_macro_util;

use nanograd::assert_close;
use nanograd::ops;
use nanograd::prelude::*;
use ops_macro_util::{rnd, Vals};

model! {
    fn add_fn(a: [2, 3], b: [2, 3]) -> [2, 3] { add(a, b) }
    fn sub_fn(a: [2, 3], b: [3]) -> [2, 3] { sub(a, b) }
    fn mul_fn(a: [3], b: [2, 3]) -> [2, 3] { mul(a, b) }
    fn div_fn(a: [2, 3], b: [2, 3]) -> [2, 3] { div(a, b) }
    fn div_broadcast(a: [3], b: [2, 3]) -> [2, 3] { div(a, b) }
    fn operators(a: [2, 3], b: [3]) -> [2, 3] { (a + b) * a - b / (a * a + 1.0) }
    fn literals(x: [3]) -> [3] { 2.0 * x - 1.5 + x / 4 - -x }
    fn safe_div_fn(a: [2, 3], b: [2, 3]) -> [2, 3] { safe_div(a, b) }
    fn safe_div_eps(a: [3], b: [2, 3]) -> [2, 3] { safe_div(a, b, eps = 0.5) }
    fn scale_fn(x: [2, 3]) -> [2, 3] { scale(x, -2.5) }
    fn scalars(s: [], x: [3]) -> [3] { x * s + s }
    fn scalar_only(s: [], t: []) -> [] { s * t - t / s }
}

model! {
    // a value used twice: every use must add its gradient contribution
    fn twice_in_one_op(x: [2, 3]) -> [2, 3] { x * x + add(x, x) }
    fn twice_div(x: [3]) -> [3] { div(x, x) + x / x * x }
    fn twice_safe_div(x: [3]) -> [3] { safe_div(x, x, eps = 0.25) }
    fn twice_across_ops(x: [3], y: [3]) -> [3] {
        let h = x * y;
        let k = h - x;
        h * k + scale(h, 3.0) - y
    }
}

type Binary = fn(&[f64], &[f64], &mut [f64]) -> nanograd::Result<()>;

/// `y = op(a, b)` by the runtime kernel, on fresh output memory.
fn binary(f: Binary, a: &[f64], b: &[f64]) -> Vec<f64> {
    let mut y = vec![0.0; a.len().max(b.len())];
    f(a, b, &mut y).unwrap();
    y
}

#[test]
fn add_sub_mul_div_by_name() {
    let a: [[f64; 3]; 2] = rnd(1, -1.0, 1.0);
    let b: [[f64; 3]; 2] = rnd(2, -1.0, 1.0);
    let v: [f64; 3] = rnd(3, -1.0, 1.0);
    check_fn!(add_fn, add_fn_vjp, [a => ga, b => gb], expected = binary(ops::add, &a.vals(), &b.vals()), tol = 1e-7);
    check_fn!(sub_fn, sub_fn_vjp, [a => ga, v => gv], expected = binary(ops::sub, &a.vals(), &v.vals()), tol = 1e-7);
    check_fn!(mul_fn, mul_fn_vjp, [v => gv, b => gb], expected = binary(ops::mul, &v.vals(), &b.vals()), tol = 1e-7);
    // divisors away from zero
    let d: [[f64; 3]; 2] = rnd(4, 0.5, 2.0);
    check_fn!(div_fn, div_fn_vjp, [a => ga, d => gd], expected = binary(ops::div, &a.vals(), &d.vals()), tol = 1e-6);
    check_fn!(div_broadcast, div_broadcast_vjp, [v => gv, d => gd], expected = binary(ops::div, &v.vals(), &d.vals()), tol = 1e-6);
}

#[test]
fn hand_derived_add_and_broadcast_gradient() {
    // [[1, 2, 3], [4, 5, 6]] - [10, 20, 30] = [[-9, -18, -27], [-6, -15, -24]];
    // with upstream u, d/db_j = -(u_0j + u_1j): u = ones gives [-2, -2, -2]
    let a = [[1.0f64, 2.0, 3.0], [4.0, 5.0, 6.0]];
    let b = [10.0, 20.0, 30.0];
    let (y, ga, gb) = sub_fn_vjp(&a, &b, &[[1.0; 3]; 2]);
    assert_eq!(y, [[-9.0, -18.0, -27.0], [-6.0, -15.0, -24.0]]);
    assert_eq!(ga, [[1.0; 3]; 2]);
    assert_eq!(gb, [-2.0; 3]);
    let y32 = sub_fn(&[[1.0f32, 2.0, 3.0], [4.0, 5.0, 6.0]], &[10.0, 20.0, 30.0]);
    assert_eq!(y32, [[-9.0, -18.0, -27.0], [-6.0, -15.0, -24.0]]);
}

#[test]
fn operators_and_literals() {
    let a: [[f64; 3]; 2] = rnd(5, -1.0, 1.0);
    let b: [f64; 3] = rnd(6, -1.0, 1.0);
    // (a + b) * a - b / (a * a + 1)
    let (av, bv) = (a.vals(), b.vals());
    let s = binary(ops::add, &av, &bv);
    let p = binary(ops::mul, &s, &av);
    let aa = binary(ops::mul, &av, &av);
    let den = binary(ops::add, &aa, &[1.0]);
    let q = binary(ops::div, &bv, &den);
    let expected = binary(ops::sub, &p, &q);
    check_fn!(operators, operators_vjp, [a => ga, b => gb], expected = expected, tol = 1e-6);

    // 2x - 1.5 + x / 4 - (-x), the minus a scale by -1
    let x: [f64; 3] = rnd(7, -2.0, 2.0);
    let xv = x.vals();
    let t1 = binary(ops::mul, &[2.0], &xv);
    let t2 = binary(ops::sub, &t1, &[1.5]);
    let t3 = binary(ops::div, &xv, &[4.0]);
    let t4 = binary(ops::add, &t2, &t3);
    let mut neg = vec![0.0; 3];
    ops::scale(&xv, -1.0, &mut neg).unwrap();
    let expected = binary(ops::sub, &t4, &neg);
    let g = check_fn!(literals, literals_vjp, [x => gx], expected = expected, tol = 1e-7);
    // d/dx = 2 + 1/4 + 1 = 3.25 whatever the upstream: g = 3.25 u
    let u = ops_macro_util::random_like(&x, 0x5eed);
    assert_close!(
        g[0],
        u.vals().iter().map(|u| 3.25 * u).collect::<Vec<_>>(),
        1e-12
    );
}

#[test]
fn safe_div_and_scale() {
    let a: [[f64; 3]; 2] = rnd(8, -1.0, 1.0);
    let b: [[f64; 3]; 2] = rnd(9, 0.5, 2.0);
    let v: [f64; 3] = rnd(10, -1.0, 1.0);
    let mut y = vec![0.0; 6];
    ops::safe_div(&a.vals(), &b.vals(), 1e-8, &mut y).unwrap();
    check_fn!(safe_div_fn, safe_div_fn_vjp, [a => ga, b => gb], expected = y.clone(), tol = 1e-6);
    // eps = 0.5 and a divisor near zero: the guard matters
    let mut b2 = b;
    b2[0][1] = 0.01;
    ops::safe_div(&v.vals(), &b2.vals(), 0.5, &mut y).unwrap();
    check_fn!(safe_div_eps, safe_div_eps_vjp, [v => gv, b2 => gb], expected = y.clone(), tol = 1e-6);
    ops::scale(&a.vals(), -2.5, &mut y).unwrap();
    check_fn!(scale_fn, scale_fn_vjp, [a => ga], expected = y.clone(), tol = 1e-7);
}

#[test]
fn scalar_inputs() {
    // x * s + s with s = 2: [1, 2, 3] -> [4, 6, 8]; d/dx = s u, d/ds = <u, x> + Σu
    let x = [1.0f64, 2.0, 3.0];
    assert_eq!(scalars(2.0, &x), [4.0, 6.0, 8.0]);
    let u = [0.5, -1.0, 2.0];
    let (y, gs, gx) = scalars_vjp(2.0, &x, &u);
    assert_eq!(y, [4.0, 6.0, 8.0]);
    assert_close!(gx, [1.0f64, -2.0, 4.0], 1e-15);
    // <u, x> = 0.5 - 2 + 6 = 4.5, Σu = 1.5
    assert_close!(gs, 6.0f64, 1e-15);
    let f = |v: &[f64]| ops_macro_util::dotv(&scalars(v[0], &x).vals(), &u);
    nanograd::testing::assert_gradient("scalars ds", f, &[2.0], &[gs], 1e-7);
    assert_eq!(scalars(2.0f32, &[1.0, 2.0, 3.0]), [4.0f32, 6.0, 8.0]);

    // s t - t / s at (2, 3): 6 - 1.5 = 4.5; d/ds = t + t / s² = 3.75, d/dt = s - 1 / s = 1.5
    assert_eq!(scalar_only(2.0f64, 3.0), 4.5);
    let (v, gs, gt) = scalar_only_grad(2.0f64, 3.0);
    assert_eq!((v, gs, gt), (4.5, 3.75, 1.5));
    let (v32, gs32, gt32) = scalar_only_grad(2.0f32, 3.0);
    assert_eq!((v32, gs32, gt32), (4.5, 3.75, 1.5));
    let f = |v: &[f64]| scalar_only(v[0], v[1]);
    nanograd::testing::assert_gradient("scalar_only", f, &[2.0, 3.0], &[gs, gt], 1e-7);
}

#[test]
fn a_value_used_twice_gets_both_contributions() {
    let x: [[f64; 3]; 2] = rnd(11, -1.0, 1.0);
    let xv = x.vals();
    let expected = binary(
        ops::add,
        &binary(ops::mul, &xv, &xv),
        &binary(ops::add, &xv, &xv),
    );
    let g =
        check_fn!(twice_in_one_op, twice_in_one_op_vjp, [x => gx], expected = expected, tol = 1e-7);
    // d(x² + 2x)/dx = 2x + 2, times the upstream
    let u = ops_macro_util::random_like(&x, 0x5eed).vals();
    let want: Vec<f64> = xv
        .iter()
        .zip(&u)
        .map(|(x, u)| (2.0 * x + 2.0) * u)
        .collect();
    assert_close!(g[0], want, 1e-12);

    // x / x + x / x * x = 1 + x: the gradient is exactly the upstream
    let x: [f64; 3] = rnd(12, 0.5, 2.0);
    let xv = x.vals();
    let q = binary(ops::div, &xv, &xv);
    let expected = binary(ops::add, &q, &binary(ops::mul, &q, &xv));
    let g = check_fn!(twice_div, twice_div_vjp, [x => gx], expected = expected, tol = 1e-6);
    assert_close!(g[0], ops_macro_util::random_like(&x, 0x5eed).vals(), 1e-12);

    let mut y = vec![0.0; 3];
    ops::safe_div(&xv, &xv, 0.25, &mut y).unwrap();
    check_fn!(twice_safe_div, twice_safe_div_vjp, [x => gx], expected = y, tol = 1e-6);

    let x: [f64; 3] = rnd(13, -1.0, 1.0);
    let y: [f64; 3] = rnd(14, -1.0, 1.0);
    let h = binary(ops::mul, &x.vals(), &y.vals());
    let k = binary(ops::sub, &h, &x.vals());
    let mut h3 = vec![0.0; 3];
    ops::scale(&h, 3.0, &mut h3).unwrap();
    let expected = binary(
        ops::sub,
        &binary(ops::add, &binary(ops::mul, &h, &k), &h3),
        &y.vals(),
    );
    check_fn!(twice_across_ops, twice_across_ops_vjp, [x => gx, y => gy], expected = expected, tol = 1e-6);
}

#[test]
fn f32_literal() {
    // 2x - 1.5 + x/4 + x at x = [0, 1, -2]: [-1.5, 1.75, -8]
    assert_eq!(literals(&[0.0f32, 1.0, -2.0]), [-1.5f32, 1.75, -8.0]);
    let (_, g) = literals_vjp(&[0.0f32, 1.0, -2.0], &[1.0, 1.0, 1.0]);
    assert_eq!(g, [3.25f32; 3]);
}
