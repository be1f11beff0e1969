// checks: l2_normalize of a scalar (lower.rs)
use nanograd::prelude::*;

model! {
    fn f(x: [3]) -> [] {
        l2_normalize(sum(x))
    }
}

fn main() {}
