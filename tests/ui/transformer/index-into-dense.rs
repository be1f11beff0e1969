// checks: u32 indices given to a dense layer
use nanograd::prelude::*;

model! {
    pub struct Lm {
        fc: Dense(8 -> 4),
    }
    fn forward(idx: u32[B, 8]) -> [B, 4] {
        fc(idx)
    }
}

fn main() {}
