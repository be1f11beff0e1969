use nanograd::prelude::*;

model! {
    pub struct Mlp {
        fc: Dense(4 -> 2),
    }
    fn loss(x: [B, 4], t: [N, 2]) -> [] {
        mse_loss(fc(x), t)
    }
}

fn main() {}
