//! Activations through `model!`: relu, tanh, sigmoid, sigmoid_stable, gelu, silu,
//! leaky_relu (alpha), softplus (beta), softmax and log_softmax, against the runtime kernels
//! and central differences of the generated gradients, in f64 and f32.

mod ops_macro_util;

use nanograd::assert_close;
use nanograd::ops;
use nanograd::prelude::*;
use nanograd::rand::{rngs::StdRng, SeedableRng};
use ops_macro_util::{assert_no_kinks, check_param_grads, rnd, Vals};

model! {
    fn relu_fn(x: [2, 3]) -> [2, 3] { relu(x) }
    fn tanh_fn(x: [2, 3]) -> [2, 3] { tanh(x) }
    fn sigmoid_fn(x: [2, 3]) -> [2, 3] { sigmoid(x) }
    fn sigmoid_stable_fn(x: [2, 3]) -> [2, 3] { sigmoid_stable(x) }
    fn gelu_fn(x: [2, 3]) -> [2, 3] { gelu(x) }
    fn silu_fn(x: [2, 3]) -> [2, 3] { silu(x) }
    fn leaky_relu_fn(x: [2, 3]) -> [2, 3] { leaky_relu(x) }
    fn leaky_relu_alpha(x: [2, 3]) -> [2, 3] { leaky_relu(x, alpha = 0.2) }
    fn softplus_fn(x: [2, 3]) -> [2, 3] { softplus(x) }
    fn softplus_beta(x: [2, 3]) -> [2, 3] { softplus(x, beta = 2.5) }
    fn softmax_fn(x: [2, 3]) -> [2, 3] { softmax(x) }
    fn log_softmax_fn(x: [2, 3]) -> [2, 3] { log_softmax(x) }
    fn softmax_vec(x: [4]) -> [4] { softmax(x) }
}

model! {
    // a value used twice
    fn mixed(x: [2, 3]) -> [2, 3] { tanh(x) * sigmoid(x) + relu(x) - gelu(x) * silu(x) }
    fn nested(x: [3]) -> [3] { softplus(x, beta = 2.0) * leaky_relu(x, alpha = 0.1) + sigmoid_stable(x) }
    fn softmax_twice(x: [2, 3]) -> [2, 3] { softmax(x) * log_softmax(x) + softmax(softmax(x)) }
    fn tanh_of_tanh(x: [3]) -> [3] { let h = tanh(x); tanh(h) * h }
}

type Unary = fn(&[f64], &mut [f64]) -> nanograd::Result<()>;

/// The kernel applied to fresh output memory.
fn k(f: Unary, x: &[f64]) -> Vec<f64> {
    let mut y = vec![0.0; x.len()];
    f(x, &mut y).unwrap();
    y
}

fn rows(
    f: fn(&[f64], usize, &mut [f64]) -> nanograd::Result<()>,
    x: &[f64],
    cols: usize,
) -> Vec<f64> {
    let mut y = vec![0.0; x.len()];
    f(x, cols, &mut y).unwrap();
    y
}

#[test]
fn elementwise_activations() {
    let x: [[f64; 3]; 2] = rnd(1, -3.0, 3.0);
    let xv = x.vals();
    assert_no_kinks(&xv, &[0.0], 1e-3);
    check_fn!(relu_fn, relu_fn_vjp, [x => gx], expected = k(ops::relu, &xv), tol = 1e-7);
    check_fn!(tanh_fn, tanh_fn_vjp, [x => gx], expected = k(ops::tanh, &xv), tol = 1e-7);
    check_fn!(sigmoid_fn, sigmoid_fn_vjp, [x => gx], expected = k(ops::sigmoid, &xv), tol = 1e-7);
    check_fn!(sigmoid_stable_fn, sigmoid_stable_fn_vjp, [x => gx], expected = k(ops::sigmoid_stable, &xv), tol = 1e-7);
    check_fn!(gelu_fn, gelu_fn_vjp, [x => gx], expected = k(ops::gelu, &xv), tol = 1e-7);
    check_fn!(silu_fn, silu_fn_vjp, [x => gx], expected = k(ops::silu, &xv), tol = 1e-7);
}

#[test]
fn keyword_activations() {
    let x: [[f64; 3]; 2] = rnd(2, -3.0, 3.0);
    let xv = x.vals();
    assert_no_kinks(&xv, &[0.0], 1e-3);
    let mut y = vec![0.0; 6];
    // the defaults: alpha = 0.01, beta = 1
    ops::leaky_relu(&xv, 0.01, &mut y).unwrap();
    check_fn!(leaky_relu_fn, leaky_relu_fn_vjp, [x => gx], expected = y.clone(), tol = 1e-7);
    ops::leaky_relu(&xv, 0.2, &mut y).unwrap();
    check_fn!(leaky_relu_alpha, leaky_relu_alpha_vjp, [x => gx], expected = y.clone(), tol = 1e-7);
    ops::softplus(&xv, 1.0, &mut y).unwrap();
    check_fn!(softplus_fn, softplus_fn_vjp, [x => gx], expected = y.clone(), tol = 1e-7);
    ops::softplus(&xv, 2.5, &mut y).unwrap();
    check_fn!(softplus_beta, softplus_beta_vjp, [x => gx], expected = y.clone(), tol = 1e-7);
    // hand-derived: leaky_relu([-1, 2]) with alpha 0.2 is [-0.2, 2], slopes 0.2 and 1
    let (y, g) = leaky_relu_alpha_vjp(&[[-1.0f32, 2.0, 0.5], [-3.0, 1.0, -0.5]], &[[1.0; 3]; 2]);
    assert_eq!(y, [[-0.2, 2.0, 0.5], [-0.6, 1.0, -0.1]]);
    assert_eq!(g, [[0.2, 1.0, 1.0], [0.2, 1.0, 0.2]]);
}

#[test]
fn softmax_and_log_softmax_over_the_last_dimension() {
    let x: [[f64; 3]; 2] = rnd(3, -3.0, 3.0);
    let xv = x.vals();
    check_fn!(softmax_fn, softmax_fn_vjp, [x => gx], expected = rows(ops::softmax, &xv, 3), tol = 1e-7);
    check_fn!(log_softmax_fn, log_softmax_fn_vjp, [x => gx], expected = rows(ops::log_softmax, &xv, 3), tol = 1e-7);
    let v: [f64; 4] = rnd(4, -3.0, 3.0);
    check_fn!(softmax_vec, softmax_vec_vjp, [v => gv], expected = rows(ops::softmax, &v.vals(), 4), tol = 1e-7);
    // hand-derived: softmax of equal logits is uniform, and each row is normalised alone
    let y = softmax_fn(&[[5.0f64, 5.0, 5.0], [0.0, 0.0, 0.0]]);
    assert_close!(y.as_flattened(), [1.0 / 3.0; 6], 1e-15);
    let y32 = log_softmax_fn(&[[1.0f32, 1.0, 1.0], [2.0, 2.0, 2.0]]);
    assert_close!(y32.as_flattened(), [-(3.0f64.ln()); 6], 1e-6);
}

#[test]
fn values_used_twice() {
    let x: [[f64; 3]; 2] = rnd(5, -2.0, 2.0);
    let xv = x.vals();
    assert_no_kinks(&xv, &[0.0], 1e-3);
    let expected: Vec<f64> = {
        let (t, s, r, g, si) = (
            k(ops::tanh, &xv),
            k(ops::sigmoid, &xv),
            k(ops::relu, &xv),
            k(ops::gelu, &xv),
            k(ops::silu, &xv),
        );
        (0..6).map(|i| t[i] * s[i] + r[i] - g[i] * si[i]).collect()
    };
    check_fn!(mixed, mixed_vjp, [x => gx], expected = expected, tol = 1e-7);

    let v: [f64; 3] = rnd(6, -2.0, 2.0);
    let vv = v.vals();
    assert_no_kinks(&vv, &[0.0], 1e-3);
    let (mut sp, mut lr) = (vec![0.0; 3], vec![0.0; 3]);
    ops::softplus(&vv, 2.0, &mut sp).unwrap();
    ops::leaky_relu(&vv, 0.1, &mut lr).unwrap();
    let ss = k(ops::sigmoid_stable, &vv);
    let expected: Vec<f64> = (0..3).map(|i| sp[i] * lr[i] + ss[i]).collect();
    check_fn!(nested, nested_vjp, [v => gv], expected = expected, tol = 1e-7);

    let sm = rows(ops::softmax, &xv, 3);
    let lsm = rows(ops::log_softmax, &xv, 3);
    let smsm = rows(ops::softmax, &sm, 3);
    let expected: Vec<f64> = (0..6).map(|i| sm[i] * lsm[i] + smsm[i]).collect();
    check_fn!(softmax_twice, softmax_twice_vjp, [x => gx], expected = expected, tol = 1e-7);

    let h = k(ops::tanh, &vv);
    let th = k(ops::tanh, &h);
    let expected: Vec<f64> = (0..3).map(|i| th[i] * h[i]).collect();
    check_fn!(tanh_of_tanh, tanh_of_tanh_vjp, [v => gv], expected = expected, tol = 1e-7);
}

model! {
    /// Activations on a batch, between parameters.
    struct Acts {
        w: Param([4]),
    }

    fn forward(x: [B, 4]) -> [B, 4] {
        let h = x * w;
        softmax(h) + log_softmax(tanh(h)) * sigmoid(h) + softplus(h, beta = 0.5) * gelu(h)
    }

    fn loss(x: [B, 4], u: [B, 4]) -> [] { sum(forward(x) * u) }
}

#[test]
fn batched_activations_in_the_struct_form() {
    let mut model = Acts::<f64>::new(&mut StdRng::seed_from_u64(1));
    let x: Vec<[f64; 4]> = (0..3).map(|i| rnd(20 + i, -2.0, 2.0)).collect();
    let u: Vec<[f64; 4]> = (0..3).map(|i| rnd(30 + i, -1.0, 1.0)).collect();
    let mut h = vec![0.0; 12];
    ops::mul(x.as_flattened(), model.w.value(), &mut h).unwrap();
    let sm = rows(ops::softmax, &h, 4);
    let lt = rows(ops::log_softmax, &k(ops::tanh, &h), 4);
    let sg = k(ops::sigmoid, &h);
    let mut sp = vec![0.0; 12];
    ops::softplus(&h, 0.5, &mut sp).unwrap();
    let ge = k(ops::gelu, &h);
    let want: Vec<f64> = (0..12)
        .map(|i| sm[i] + lt[i] * sg[i] + sp[i] * ge[i])
        .collect();
    assert_close!(model.forward(&x).unwrap().as_flattened(), want, 1e-12);

    let base = model.clone();
    let loss = model.loss_backward(&x, &u).unwrap();
    assert_close!(loss, ops_macro_util::dotv(&want, u.as_flattened()), 1e-12);
    let names = check_param_grads(&base, &model, |m| m.loss(&x, &u).unwrap(), 1e-6, &[]);
    assert_eq!(names, ["w"]);

    let mut m32 = Acts::<f32>::new(&mut StdRng::seed_from_u64(2));
    ops_macro_util::copy_to_f32(&base, &mut m32);
    let x32: Vec<[f32; 4]> = x.iter().map(|r| r.map(|v| v as f32)).collect();
    let u32: Vec<[f32; 4]> = u.iter().map(|r| r.map(|v| v as f32)).collect();
    assert_close!(m32.forward(&x32).unwrap().as_flattened(), want, 1e-5);
    m32.loss_backward(&x32, &u32).unwrap();
    ops_macro_util::assert_grads_close(&model, &m32, 1e-4);
}
