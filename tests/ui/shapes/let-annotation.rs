use nanograd::prelude::*;

model! {
    pub struct Mlp {
        fc1: Dense(784 -> 128),
        fc2: Dense(128 -> 10),
    }
    fn forward(x: [B, 784]) -> [B, 10] {
        let h: [B, 64] = relu(fc1(x));
        fc2(h)
    }
}

fn main() {}
