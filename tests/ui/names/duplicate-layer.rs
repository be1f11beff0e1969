use nanograd::prelude::*;

model! {
    pub struct Mlp {
        fc: Dense(4 -> 2),
        fc: Dense(2 -> 2),
    }
    fn forward(x: [B, 4]) -> [B, 2] {
        fc(x)
    }
}

fn main() {}
