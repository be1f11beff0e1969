// checks: softmax of a scalar (lower.rs)
use nanograd::prelude::*;

model! {
    fn f(x: [3]) -> [] {
        softmax(sum(x))
    }
}

fn main() {}
