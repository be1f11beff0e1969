//! A model used as a layer of another: names, forward, backward, training mode.

use nanograd::assert_close;
use nanograd::prelude::*;
use nanograd::rand::{rngs::StdRng, SeedableRng};
use nanograd::testing::assert_gradient;

model! {
    /// A residual block.
    pub struct Block {
        a: Dense(4 -> 4),
        b: Dense(4 -> 4),
    }
    fn forward(x: [B, 4]) -> [B, 4] {
        x + b(tanh(a(x)))
    }
}

model! {
    pub struct Net {
        inp: Dense(3 -> 4),
        blk1: Block,
        blk2: Block,
        head: Dense(4 -> 2),
    }
    fn forward(x: [B, 3]) -> [B, 2] {
        head(blk2(blk1(relu(inp(x)))))
    }
    fn loss(x: [B, 3], t: [B, 2]) -> [] {
        mse_loss(forward(x), t)
    }
}

// The same network written out flat, to compare against.
model! {
    pub struct Flat {
        inp: Dense(3 -> 4),
        a1: Dense(4 -> 4),
        b1: Dense(4 -> 4),
        a2: Dense(4 -> 4),
        b2: Dense(4 -> 4),
        head: Dense(4 -> 2),
    }
    fn forward(x: [B, 3]) -> [B, 2] {
        let h = relu(inp(x));
        let h = h + b1(tanh(a1(h)));
        let h = h + b2(tanh(a2(h)));
        head(h)
    }
}

fn copy_into_flat(net: &Net<f64>, flat: &mut Flat<f64>) {
    let mut values = std::collections::HashMap::new();
    net.visit_params(&mut |n, p| {
        let key = n
            .replace("blk1.a", "a1")
            .replace("blk1.b", "b1")
            .replace("blk2.a", "a2")
            .replace("blk2.b", "b2");
        values.insert(key, p.value().to_vec());
    });
    flat.visit_params_mut(&mut |n, p| p.value_mut().copy_from_slice(&values[n]));
}

#[test]
fn names_nest_like_pytorch() {
    let net = Net::<f32>::new(&mut StdRng::seed_from_u64(1));
    let mut names = Vec::new();
    net.visit_params(&mut |n, _| names.push(n.to_string()));
    assert_eq!(
        names,
        [
            "inp.weight",
            "inp.bias",
            "blk1.a.weight",
            "blk1.a.bias",
            "blk1.b.weight",
            "blk1.b.bias",
            "blk2.a.weight",
            "blk2.a.bias",
            "blk2.b.weight",
            "blk2.b.bias",
            "head.weight",
            "head.bias"
        ]
    );
}

#[test]
fn forward_equals_the_flat_network() {
    let net = Net::<f64>::new(&mut StdRng::seed_from_u64(2));
    let mut flat = Flat::<f64>::new(&mut StdRng::seed_from_u64(3));
    copy_into_flat(&net, &mut flat);
    let x = vec![[0.5, -1.0, 2.0], [1.0, 0.25, -0.5], [0.0, 0.0, 1.0]];
    let a: Vec<[f64; 2]> = net.forward(&x).unwrap();
    let b: Vec<[f64; 2]> = flat.forward(&x).unwrap();
    assert_close!(a.as_flattened(), b.as_flattened(), 1e-14);
}

#[test]
fn backward_through_blocks_matches_finite_differences() {
    let mut net = Net::<f64>::new(&mut StdRng::seed_from_u64(4));
    let x = vec![[0.5, -1.0, 2.0], [1.0, 0.25, -0.5]];
    let t = vec![[1.0, -1.0], [0.5, 0.0]];
    net.zero_grad();
    let loss = net.loss_backward(&x, &t).unwrap();
    assert_close!(loss, net.loss(&x, &t).unwrap(), 1e-14);
    let mut names: Vec<String> = Vec::new();
    net.visit_params(&mut |n, _| names.push(n.to_string()));
    for name in &names {
        let (mut value, mut grad) = (Vec::new(), Vec::new());
        net.visit_params(&mut |n, p| {
            if n == name {
                value = p.value().to_vec();
                grad = p.grad().to_vec();
            }
        });
        let f = |v: &[f64]| {
            let mut m = net.clone();
            m.visit_params_mut(&mut |n, p| {
                if n == name {
                    p.value_mut().copy_from_slice(v);
                }
            });
            m.loss(&x, &t).unwrap()
        };
        assert_gradient(name, f, &value, &grad, 1e-6);
    }
}

#[test]
fn training_mode_reaches_the_blocks() {
    let mut net = Net::<f32>::new(&mut StdRng::seed_from_u64(5));
    net.set_eval_mode();
    assert!(!net.is_training() && !net.blk1.is_training() && !net.blk1.a.is_training());
    net.set_training_mode(true);
    assert!(net.blk2.is_training());
}
