//! The exact GELU through `model!`: `gelu(x, approximate = "none")` against the runtime's
//! `gelu_erf` and central differences of the generated gradients, in f64 and f32;
//! `approximate = "tanh"` is the same op as plain `gelu(x)`; both in a model with a layer.

mod ops_macro_util;

use nanograd::ops;
use nanograd::prelude::*;
use nanograd::rand::{rngs::StdRng, SeedableRng};
use ops_macro_util::{rnd, Vals};

model! {
    fn gelu_none(x: [2, 3]) -> [2, 3] { gelu(x, approximate = "none") }
    fn gelu_tanh(x: [2, 3]) -> [2, 3] { gelu(x, approximate = "tanh") }
    fn gelu_default(x: [2, 3]) -> [2, 3] { gelu(x) }
    // a value used twice, once by each GELU
    fn gelu_both(x: [2, 3]) -> [2, 3] { gelu(x, approximate = "none") * gelu(x) }
}

model! {
    struct ErfMlp {
        fc: Dense(3 -> 4),
        out: Dense(4 -> 2),
    }
    fn forward(x: [B, 3]) -> [B, 2] {
        out(gelu(fc(x), approximate = "none"))
    }
}

fn k(f: fn(&[f64], &mut [f64]) -> nanograd::Result<()>, x: &[f64]) -> Vec<f64> {
    let mut y = vec![0.0; x.len()];
    f(x, &mut y).unwrap();
    y
}

#[test]
fn exact_gelu_is_gelu_erf() {
    let x: [[f64; 3]; 2] = rnd(21, -4.0, 4.0);
    let xv = x.vals();
    let exact = k(ops::gelu_erf, &xv);
    let approx = k(ops::gelu, &xv);
    // the two differ here, so the checks below tell them apart
    assert!(exact.iter().zip(&approx).any(|(a, b)| (a - b).abs() > 1e-5));
    check_fn!(gelu_none, gelu_none_vjp, [x => gx], expected = exact.clone(), tol = 1e-7);
    check_fn!(gelu_tanh, gelu_tanh_vjp, [x => gx], expected = approx.clone(), tol = 1e-7);
    check_fn!(gelu_default, gelu_default_vjp, [x => gx], expected = approx.clone(), tol = 1e-7);
    let both: Vec<f64> = exact.iter().zip(&approx).map(|(a, b)| a * b).collect();
    check_fn!(gelu_both, gelu_both_vjp, [x => gx], expected = both, tol = 1e-7);
}

/// fc's weight and bias zero but for `w[0][0] = 1`, out's weight the identity on the first
/// two features and its bias zero.
fn set_weights<T: Float>(m: &mut ErfMlp<T>) {
    m.visit_params_mut(&mut |name, p| {
        let v = p.value_mut();
        v.fill(T::zero());
        match name {
            "fc.weight" => v[0] = T::one(),
            "out.weight" => {
                v[0] = T::one();
                v[5] = T::one();
            }
            _ => {}
        }
    });
}

#[test]
fn exact_gelu_in_a_model() {
    // hand-derived: out(gelu(fc(x))) = [gelu(x0), gelu(0)] = [Φ(1), 0] at x0 = 1
    // (Φ(1) = 0.8413447460685429), in f64 and f32
    let mut m = ErfMlp::<f64>::new(&mut StdRng::seed_from_u64(1));
    set_weights(&mut m);
    let y = m.forward(&[[1.0, 0.5, -2.0]]).unwrap();
    nanograd::assert_close!(y[0], [0.841_344_746_068_542_9, 0.0], 1e-15);
    let mut m = ErfMlp::<f32>::new(&mut StdRng::seed_from_u64(1));
    set_weights(&mut m);
    let y = m.forward(&[[1.0, 0.5, -2.0]]).unwrap();
    assert_eq!(y[0], [0.841_344_746_068_542_9f64 as f32, 0.0]);
}
