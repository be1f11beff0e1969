use nanograd::prelude::*;
use nanograd::rand::{rngs::StdRng, SeedableRng};
use std::time::Instant;

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

model! {
    pub struct Tiny {
        a: Dense(2 -> 8),
        b: Dense(8 -> 1),
    }
    fn forward(x: [B, 2]) -> [B, 1] {
        b(relu(a(x)))
    }
}

model! {
    pub struct Cnn {
        c1: Conv2d(1 -> 8, kernel = 3, padding = 1),
        c2: Conv2d(8 -> 16, kernel = 3, stride = 2, padding = 1),
        fc: Dense(16 -> 10),
    }
    fn forward(x: [B, 1, 28, 28]) -> [B, 10] {
        fc(global_avg_pool2d(relu(c2(relu(c1(x))))))
    }
    fn loss(x: [B, 1, 28, 28], t: [B, 10]) -> [] {
        softmax_cross_entropy(forward(x), t)
    }
}

fn time(name: &str, iters: usize, mut f: impl FnMut()) {
    for _ in 0..iters / 10 + 1 {
        f();
    }
    let mut best = f64::MAX;
    for _ in 0..5 {
        let t = Instant::now();
        for _ in 0..iters {
            f();
        }
        best = best.min(t.elapsed().as_secs_f64() / iters as f64);
    }
    println!("{name:30} {:10.2} us", best * 1e6);
}

fn main() {
    let mut rng = StdRng::seed_from_u64(0);
    let mut mlp = Mlp::<f32>::new(&mut rng);
    let mut ws = Workspace::new();
    for b in [1usize, 64] {
        let x = vec![[0.5f32; 784]; b];
        let mut out = vec![[0.0f32; 10]; b];
        time(&format!("mlp infer b={b}"), 2000 / b.max(1) * 4, || {
            mlp.forward_into(&x, &mut out, &mut ws).unwrap()
        });
    }
    let x = vec![[0.5f32; 784]; 64];
    let mut t = vec![[0.0f32; 10]; 64];
    for (i, r) in t.iter_mut().enumerate() {
        r[i % 10] = 1.0;
    }
    let mut opt = Adam::new(1e-3);
    time("mlp train step b=64", 300, || {
        mlp.zero_grad();
        mlp.loss_backward(&x, &t).unwrap();
        opt.step(&mut mlp).unwrap();
    });
    let tiny = Tiny::<f32>::new(&mut rng);
    let xt = [[0.3f32, 0.7]];
    let mut ot = [[0.0f32; 1]];
    time("tiny b=1", 200000, || {
        tiny.forward_into(&xt, &mut ot, &mut ws).unwrap()
    });
    let mut cnn = Cnn::<f32>::new(&mut rng);
    let xi = vec![[[[0.5f32; 28]; 28]; 1]; 1];
    let mut oc = vec![[0.0f32; 10]; 1];
    time("cnn infer b=1", 2000, || {
        cnn.forward_into(&xi, &mut oc, &mut ws).unwrap()
    });
    let xi = vec![[[[0.5f32; 28]; 28]; 1]; 32];
    let tc = t[..32].to_vec();
    let mut sgd = Sgd::new(0.01).momentum(0.9);
    time("cnn train step b=32", 100, || {
        cnn.zero_grad();
        cnn.loss_backward(&xi, &tc).unwrap();
        sgd.step(&mut cnn).unwrap();
    });
}
