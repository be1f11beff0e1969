use nanograd::prelude::*;

model! {
    pub struct Mlp {
        fc1: Dense(4 -> 2),
        fc2: Dense(2 -> 2),
    }
    fn forward(x: [B, 4]) -> [B, 2] {
        fc1(x)
    }
}

fn main() {}
