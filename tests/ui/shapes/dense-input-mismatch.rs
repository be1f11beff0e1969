use nanograd::prelude::*;

model! {
    pub struct Mlp {
        fc1: Dense(784 -> 64),
        fc2: Dense(128 -> 10),
    }
    fn forward(x: [B, 784]) -> [B, 10] {
        let h = relu(fc1(x));
        fc2(h)
    }
}

fn main() {
    // no secondary errors: the stub keeps the model's signatures
    let model = Mlp::<f32>::new(&mut nanograd::rand::rng());
    let _out: Vec<[f32; 10]> = model.forward(&[[0.0; 784]]).unwrap();
}
