// checks: a dimension of zero (lower.rs)
use nanograd::prelude::*;

model! {
    fn f(x: [2, 0]) -> [] {
        sum(x)
    }
}

fn main() {}
