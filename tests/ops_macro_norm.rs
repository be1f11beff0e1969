//! Normalisation through `model!`: rmsnorm, layer_norm with 0, 1 and 2 affine arguments,
//! l2_normalize and cosine_similarity, against the runtime kernels and central differences
//! of every input's generated gradient, in f64 and f32, and on a batch in the struct form.

mod ops_macro_util;

use nanograd::assert_close;
use nanograd::ops;
use nanograd::prelude::*;
use nanograd::rand::{rngs::StdRng, SeedableRng};
use ops_macro_util::{check_param_grads, rnd, Vals};

model! {
    fn rms(x: [2, 4], w: [4]) -> [2, 4] { rmsnorm(x, w) }
    fn rms_eps(x: [4], w: [4]) -> [4] { rmsnorm(x, w, eps = 0.1) }
    fn ln0(x: [2, 4]) -> [2, 4] { layer_norm(x) }
    fn ln1(x: [2, 4], w: [4]) -> [2, 4] { layer_norm(x, w) }
    fn ln2(x: [2, 4], w: [4], b: [4]) -> [2, 4] { layer_norm(x, w, b, eps = 0.01) }
    fn l2n(x: [2, 3]) -> [2, 3] { l2_normalize(x) }
    fn l2n_eps(x: [3]) -> [3] { l2_normalize(x, eps = 0.5) }
    fn cos(a: [2, 3], b: [2, 3]) -> [2] { cosine_similarity(a, b) }
    fn cos_vec(a: [3], b: [3]) -> [] { cosine_similarity(a, b) }
}

model! {
    // values used twice
    fn rms_self(x: [4]) -> [4] { rmsnorm(x, x) }
    fn ln_self(x: [2, 4], w: [4]) -> [2, 4] { layer_norm(x * w, w, w) + layer_norm(w, w) }
    fn l2n_twice(x: [2, 3]) -> [2, 3] { l2_normalize(x) * x }
    fn cos_self(a: [3], b: [3]) -> [] { cosine_similarity(a, a * b + a) }
}

fn rms_k(x: &[f64], w: &[f64], cols: usize, eps: f64) -> Vec<f64> {
    let mut y = vec![0.0; x.len()];
    ops::rmsnorm(x, w, cols, eps, &mut y).unwrap();
    y
}

fn ln_k(x: &[f64], w: Option<&[f64]>, b: Option<&[f64]>, cols: usize, eps: f64) -> Vec<f64> {
    let mut y = vec![0.0; x.len()];
    ops::layer_norm(x, w, b, cols, eps, &mut y).unwrap();
    y
}

fn l2_k(x: &[f64], cols: usize, eps: f64) -> Vec<f64> {
    let mut y = vec![0.0; x.len()];
    ops::l2_normalize(x, cols, eps, &mut y).unwrap();
    y
}

fn cos_k(a: &[f64], b: &[f64], cols: usize) -> Vec<f64> {
    let mut y = vec![0.0; a.len() / cols];
    ops::cosine_similarity(a, b, cols, &mut y).unwrap();
    y
}

#[test]
fn rmsnorm_with_default_and_given_eps() {
    let x: [[f64; 4]; 2] = rnd(1, -1.0, 1.0);
    let w: [f64; 4] = rnd(2, 0.5, 1.5);
    check_fn!(rms, rms_vjp, [x => gx, w => gw], expected = rms_k(&x.vals(), &w.vals(), 4, 1e-5), tol = 1e-6);
    let v: [f64; 4] = rnd(3, -1.0, 1.0);
    check_fn!(rms_eps, rms_eps_vjp, [v => gv, w => gw], expected = rms_k(&v.vals(), &w.vals(), 4, 0.1), tol = 1e-6);
    // hand-derived: [3, 4] has mean square 12.5; with eps 0.1 the scale is 1/√12.6
    let y = rms_eps(&[3.0f64, 4.0, 0.0, 0.0], &[1.0, 2.0, 1.0, 1.0]);
    let ms = (9.0f64 + 16.0) / 4.0 + 0.1;
    assert_close!(y, [3.0 / ms.sqrt(), 8.0 / ms.sqrt(), 0.0, 0.0], 1e-15);
    let y32 = rms_eps(&[3.0f32, 4.0, 0.0, 0.0], &[1.0, 2.0, 1.0, 1.0]);
    assert_close!(y32, [3.0 / ms.sqrt(), 8.0 / ms.sqrt(), 0.0, 0.0], 1e-6);
}

#[test]
fn layer_norm_with_zero_one_and_two_affine_arguments() {
    let x: [[f64; 4]; 2] = rnd(4, -1.0, 1.0);
    let w: [f64; 4] = rnd(5, 0.5, 1.5);
    let b: [f64; 4] = rnd(6, -1.0, 1.0);
    let (xv, wv, bv) = (x.vals(), w.vals(), b.vals());
    check_fn!(ln0, ln0_vjp, [x => gx], expected = ln_k(&xv, None, None, 4, 1e-5), tol = 1e-6);
    check_fn!(ln1, ln1_vjp, [x => gx, w => gw], expected = ln_k(&xv, Some(&wv), None, 4, 1e-5), tol = 1e-6);
    check_fn!(ln2, ln2_vjp, [x => gx, w => gw, b => gb], expected = ln_k(&xv, Some(&wv), Some(&bv), 4, 0.01), tol = 1e-6);
    // hand-derived: [1, 2, 3, 4] has mean 2.5 and variance 1.25 (biased, as PyTorch)
    let y = ln0(&[[1.0f64, 2.0, 3.0, 4.0], [0.0; 4]]);
    let s = (1.25f64 + 1e-5).sqrt();
    assert_close!(y[0], [-1.5 / s, -0.5 / s, 0.5 / s, 1.5 / s], 1e-15);
    assert_eq!(y[1], [0.0; 4]);
}

#[test]
fn l2_normalize_and_cosine_similarity() {
    let x: [[f64; 3]; 2] = rnd(7, -1.0, 1.0);
    check_fn!(l2n, l2n_vjp, [x => gx], expected = l2_k(&x.vals(), 3, 1e-8), tol = 1e-6);
    let v: [f64; 3] = rnd(8, -1.0, 1.0);
    check_fn!(l2n_eps, l2n_eps_vjp, [v => gv], expected = l2_k(&v.vals(), 3, 0.5), tol = 1e-6);
    let a: [[f64; 3]; 2] = rnd(9, -1.0, 1.0);
    let b: [[f64; 3]; 2] = rnd(10, -1.0, 1.0);
    check_fn!(cos, cos_vjp, [a => ga, b => gb], expected = cos_k(&a.vals(), &b.vals(), 3), tol = 1e-6);
    let (p, q): ([f64; 3], [f64; 3]) = (rnd(16, -1.0, 1.0), rnd(17, -1.0, 1.0));
    check_fn!(cos_vec, cos_vec_vjp, grad = cos_vec_grad, [p => gp, q => gq], expected = cos_k(&p.vals(), &q.vals(), 3), tol = 1e-6);
    // hand-derived: cos([1, 0, 0], [1, 1, 0]) = 1/√2; d/da = (b/|b| - cos·a/|a|)/|a| = [0, 1/√2, 0]
    let (c, ga, _) = cos_vec_grad(&[1.0f64, 0.0, 0.0], &[1.0, 1.0, 0.0]);
    let r = 0.5f64.sqrt();
    assert_close!(c, r, 1e-15);
    assert_close!(ga, [0.0, r, 0.0], 1e-15);
    assert_close!(cos_vec(&[1.0f32, 0.0, 0.0], &[1.0, 1.0, 0.0]), r, 1e-6);
}

#[test]
fn values_used_twice() {
    let v: [f64; 4] = rnd(11, 0.5, 1.5);
    let vv = v.vals();
    check_fn!(rms_self, rms_self_vjp, [v => gv], expected = rms_k(&vv, &vv, 4, 1e-5), tol = 1e-6);

    let x: [[f64; 4]; 2] = rnd(12, -1.0, 1.0);
    let xv = x.vals();
    let mut xw = vec![0.0; 8];
    ops::mul(&xv, &vv, &mut xw).unwrap();
    let a = ln_k(&xw, Some(&vv), Some(&vv), 4, 1e-5);
    let c = ln_k(&vv, Some(&vv), None, 4, 1e-5);
    let y: Vec<f64> = (0..8).map(|i| a[i] + c[i % 4]).collect();
    check_fn!(ln_self, ln_self_vjp, [x => gx, v => gv], expected = y, tol = 1e-6);

    let n: [[f64; 3]; 2] = rnd(13, -1.0, 1.0);
    let l = l2_k(&n.vals(), 3, 1e-8);
    let y: Vec<f64> = l.iter().zip(n.vals()).map(|(a, b)| a * b).collect();
    check_fn!(l2n_twice, l2n_twice_vjp, [n => gn], expected = y, tol = 1e-6);

    let p: [f64; 3] = rnd(14, -1.0, 1.0);
    let q: [f64; 3] = rnd(15, -1.0, 1.0);
    let pq: Vec<f64> = p
        .vals()
        .iter()
        .zip(q.vals())
        .map(|(a, b)| a * b + a)
        .collect();
    let y = cos_k(&p.vals(), &pq, 3);
    check_fn!(cos_self, cos_self_vjp, grad = cos_self_grad, [p => gp, q => gq], expected = y, tol = 1e-6);
}

model! {
    /// Normalisation of a batch with learnt scales and shifts.
    struct Norms {
        g: Param([4]),
        h: Param([4]),
        d: Param([4]),
    }

    fn forward(x: [B, 4]) -> [B, 4] {
        layer_norm(x, g, h) + rmsnorm(x, g) * l2_normalize(x * d)
    }

    fn loss(x: [B, 4], u: [B, 4]) -> [] {
        sum(forward(x) * u) + sum(cosine_similarity(x, x * d + h))
    }
}

#[test]
fn batched_normalisation_in_the_struct_form() {
    let mut model = Norms::<f64>::new(&mut StdRng::seed_from_u64(1));
    let x: Vec<[f64; 4]> = (0..3).map(|i| rnd(20 + i, -1.0, 1.0)).collect();
    let u: Vec<[f64; 4]> = (0..3).map(|i| rnd(30 + i, -1.0, 1.0)).collect();
    let xf = x.as_flattened();
    let (g, h, d) = (model.g.value(), model.h.value(), model.d.value());
    let ln = ln_k(xf, Some(g), Some(h), 4, 1e-5);
    let rm = rms_k(xf, g, 4, 1e-5);
    let mut xd = vec![0.0; 12];
    ops::mul(xf, d, &mut xd).unwrap();
    let l2 = l2_k(&xd, 4, 1e-8);
    let fwd: Vec<f64> = (0..12).map(|i| ln[i] + rm[i] * l2[i]).collect();
    assert_close!(model.forward(&x).unwrap().as_flattened(), fwd, 1e-12);
    let mut xdh = vec![0.0; 12];
    ops::add(&xd, h, &mut xdh).unwrap();
    let want = ops_macro_util::dotv(&fwd, u.as_flattened()) + ops::sum(&cos_k(xf, &xdh, 4));

    let base = model.clone();
    assert_close!(model.loss_backward(&x, &u).unwrap(), want, 1e-12);
    let names = check_param_grads(&base, &model, |m| m.loss(&x, &u).unwrap(), 1e-6, &[]);
    assert_eq!(names, ["g", "h", "d"]);

    let mut m32 = Norms::<f32>::new(&mut StdRng::seed_from_u64(2));
    ops_macro_util::copy_to_f32(&base, &mut m32);
    let x32: Vec<[f32; 4]> = x.iter().map(|r| r.map(|v| v as f32)).collect();
    let u32: Vec<[f32; 4]> = u.iter().map(|r| r.map(|v| v as f32)).collect();
    assert_close!(m32.forward(&x32).unwrap().as_flattened(), fwd, 1e-5);
    m32.loss_backward(&x32, &u32).unwrap();
    ops_macro_util::assert_grads_close(&model, &m32, 1e-4);
}
