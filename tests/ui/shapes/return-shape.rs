use nanograd::prelude::*;

model! {
    pub struct Mlp {
        fc1: Dense(784 -> 12),
    }
    fn forward(x: [B, 784]) -> [B, 10] {
        fc1(x)
    }
}

fn main() {}
