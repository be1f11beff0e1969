// checks: a const dimension that goes below zero (lower.rs)
use nanograd::prelude::*;

model! {
    const N: usize = 2 - 3;
    fn f(x: [N]) -> [N] {
        relu(x)
    }
}

fn main() {}
