use nanograd::prelude::*;
use nanograd::rand::{rngs::StdRng, SeedableRng};
model! {
    pub struct Mlp {
        fc1: Dense(784 -> 128),
        fc2: Dense(128 -> 64),
        fc3: Dense(64 -> 10),
    }
    fn forward(x: [B, 784]) -> [B, 10] {
        fc3(relu(fc2(relu(fc1(x)))))
    }
    fn loss(x: [B, 784], t: [B, 10]) -> [] {
        softmax_cross_entropy(forward(x), t)
    }
}
fn main() {
    let mut rng = StdRng::seed_from_u64(0);
    let mut mlp = Mlp::<f32>::new(&mut rng);
    let x = vec![[0.5f32; 784]; 64];
    let mut t = vec![[0.0f32; 10]; 64];
    for (i, r) in t.iter_mut().enumerate() {
        r[i % 10] = 1.0;
    }
    let mut opt = Adam::new(1e-3);
    let mode = std::env::args().nth(1).unwrap_or_default();
    let mut ws = Workspace::new();
    let x1 = vec![[0.5f32; 784]; 1];
    let mut o1 = vec![[0.0f32; 10]; 1];
    for _ in 0..20000 {
        if mode == "infer1" {
            mlp.forward_into(&x1, &mut o1, &mut ws).unwrap();
            continue;
        }
        mlp.zero_grad();
        mlp.loss_backward(&x, &t).unwrap();
        opt.step(&mut mlp).unwrap();
    }
}
