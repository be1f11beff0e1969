//! The struct form of `model!`: layers, forward, and the generated training backward.

use nanograd::assert_close;
use nanograd::prelude::*;
use nanograd::rand::{rngs::StdRng, SeedableRng};
use nanograd::testing::assert_gradient;

model! {
    const HIDDEN: usize = 5;

    /// A small perceptron.
    pub struct Mlp {
        fc1: Dense(4 -> HIDDEN),
        fc2: Dense(HIDDEN -> 3),
        scale: Param([3]),
    }

    fn forward(x: [B, 4]) -> [B, 3] {
        let h: [B, HIDDEN] = tanh(fc1(x));
        mul(fc2(h), scale)
    }

    fn loss(x: [B, 4], target: [B, 3]) -> [] {
        softmax_cross_entropy(forward(x), target)
    }
}

fn data() -> (Vec<[f64; 4]>, Vec<[f64; 3]>) {
    let x = vec![[0.5, -1.0, 2.0, 0.1], [1.5, 0.3, -0.7, -2.0]];
    let t = vec![[1.0, 0.0, 0.0], [0.0, 0.2, 0.8]];
    (x, t)
}

#[test]
fn forward_matches_the_kernels_by_hand() {
    let model = Mlp::<f64>::new(&mut StdRng::seed_from_u64(1));
    let (x, _) = data();
    let out: Vec<[f64; 3]> = model.forward(&x).unwrap();
    // the same computation, kernel by kernel
    let xf = x.as_flattened();
    let mut h = vec![0.0; 2 * 5];
    nanograd::ops::dense(
        xf,
        model.fc1.weight.value(),
        Some(model.fc1.bias.value()),
        2,
        4,
        5,
        &mut h,
    )
    .unwrap();
    let mut th = vec![0.0; 10];
    nanograd::ops::tanh(&h, &mut th).unwrap();
    let mut z = vec![0.0; 6];
    nanograd::ops::dense(
        &th,
        model.fc2.weight.value(),
        Some(model.fc2.bias.value()),
        2,
        5,
        3,
        &mut z,
    )
    .unwrap();
    let mut y = vec![0.0; 6];
    nanograd::ops::mul(&z, model.scale.value(), &mut y).unwrap();
    assert_close!(out.as_flattened(), y, 1e-12);
}

#[test]
fn backward_matches_finite_differences_for_every_parameter() {
    let mut model = Mlp::<f64>::new(&mut StdRng::seed_from_u64(2));
    let (x, t) = data();
    model.zero_grad();
    let loss = model.loss_backward(&x, &t).unwrap();
    assert_close!(loss, model.loss(&x, &t).unwrap(), 1e-14);
    let mut names: Vec<String> = Vec::new();
    model.visit_params(&mut |n, _| names.push(n.to_string()));
    assert_eq!(
        names,
        ["fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias", "scale"]
    );
    for name in names {
        let mut value: Vec<f64> = Vec::new();
        let mut grad: Vec<f64> = Vec::new();
        model.visit_params(&mut |n, p| {
            if n == name {
                value = p.value().to_vec();
                grad = p.grad().to_vec();
            }
        });
        let f = |v: &[f64]| {
            let mut m = model.clone();
            m.visit_params_mut(&mut |n, p| {
                if n == name {
                    p.value_mut().copy_from_slice(v);
                }
            });
            m.loss(&x, &t).unwrap()
        };
        assert_gradient(&name, f, &value, &grad, 1e-6);
    }
}

#[test]
fn batch_sizes_that_differ_are_an_error() {
    let mut model = Mlp::<f32>::new(&mut StdRng::seed_from_u64(3));
    let x = vec![[0.0f32; 4]; 3];
    let t = vec![[0.0f32; 3]; 2];
    let err = model.loss_backward(&x, &t).unwrap_err();
    assert_eq!(
        err.to_string(),
        "batch size mismatch in Mlp::loss: `target` has 2 rows, expected 3"
    );
}

model! {
    pub struct Dropper {
        fc: Dense(4 -> 4),
        drop: Dropout(0.5),
    }
    fn loss(x: [B, 4], t: [B, 4]) -> [] {
        mse_loss(drop(fc(x)), t)
    }
}

#[test]
fn dropout_follows_the_model_random_stream() {
    let mut a = Dropper::<f64>::new(&mut StdRng::seed_from_u64(9));
    let mut b = a.clone();
    let x = vec![[1.0, 2.0, 3.0, 4.0]; 8];
    let t = vec![[0.5; 4]; 8];
    // training mode: masks come from the stream, so successive steps differ...
    let first = a.loss_backward(&x, &t).unwrap();
    let second = a.loss_backward(&x, &t).unwrap();
    assert_ne!(first, second);
    // ...and a model whose stream is restored repeats them exactly
    *b.rng_mut().unwrap() = a.rng().unwrap().clone();
    assert_eq!(
        a.loss_backward(&x, &t).unwrap(),
        b.loss_backward(&x, &t).unwrap()
    );
    // evaluation mode: no dropout, the plain loss
    a.set_eval_mode();
    assert_eq!(a.loss_backward(&x, &t).unwrap(), a.loss(&x, &t).unwrap());
}

model! {
    pub struct NoBias {
        conv: Conv2d(1 -> 2, kernel = 3, padding = 1, bias = false),
        fc: Dense(2 -> 3, bias = false),
    }
    fn loss(x: [B, 1, 4, 4], t: [B, 3]) -> [] {
        mse_loss(fc(global_avg_pool2d(conv(x))), t)
    }
}

#[test]
fn layers_without_bias_have_no_bias_parameter() {
    let mut m = NoBias::<f64>::new(&mut StdRng::seed_from_u64(11));
    let mut names: Vec<String> = Vec::new();
    m.visit_params(&mut |n, _| names.push(n.to_string()));
    assert_eq!(names, ["conv.weight", "fc.weight"]);
    assert_eq!(m.num_parameters(), 2 * 9 + 3 * 2);
    assert!(!m.conv.has_bias() && !m.fc.has_bias());
    let x = vec![[[[0.5; 4]; 4]; 1]; 2];
    let t = vec![[1.0, 0.0, -1.0]; 2];
    assert!(m.loss_backward(&x, &t).unwrap().is_finite());
}

#[test]
fn summary_lists_layers_with_output_shapes_and_counts() {
    let model = Mlp::<f32>::new(&mut StdRng::seed_from_u64(12));
    let s = model.summary();
    // fc1: 4x5 + 5 = 25; fc2: 5x3 + 3 = 18; scale: 3; total 46
    assert!(
        s.contains("fc1 (Dense)") && s.contains("[B, 5]") && s.contains("25"),
        "{s}"
    );
    assert!(
        s.contains("fc2 (Dense)") && s.contains("[B, 3]") && s.contains("18"),
        "{s}"
    );
    assert!(
        s.contains("scale (Param)") && s.contains("Total params: 46"),
        "{s}"
    );
    assert_eq!(model.num_parameters(), 46);
}
