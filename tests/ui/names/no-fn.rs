// checks: a struct with no fn (lower.rs)
use nanograd::prelude::*;

model! {
    pub struct Mlp {
        fc: Dense(4 -> 2),
    }
}

fn main() {}
