use nanograd::prelude::*;

model! {
    pub struct Mlp {
        fc: Dense(784 -> 10),
    }
    fn forward(x: [B, 784]) -> [B, 10] {
        fc(x)
    }
}

fn main() {
    let model = Mlp::<f32>::new(&mut nanograd::rand::rng());
    let x = vec![[0.0f32; 783]; 2];
    let _ = model.forward(&x);
}
