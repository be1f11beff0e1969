use nanograd::prelude::*;

model! {
    pub struct Mlp {
        fc: Dense(4, 2),
        drop: Dropout(1.5),
    }
    fn forward(x: [B, 4]) -> [B, 2] {
        drop(fc(x))
    }
}

fn main() {}
