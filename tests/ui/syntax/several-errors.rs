use nanograd::prelude::*;

// every error is reported, not just the first
model! {
    pub struct Mlp {
        fc1: Dense(784 -> 128),
        fc2: Dense(64 -> 10),
        fc3: Dense(10 -> 10),
    }
    fn forward(x: [B, 784]) -> [B, 10] {
        let h = rleu(fc1(x));
        fc2(sigmoid(fc1(x)))
    }
}

fn main() {}
