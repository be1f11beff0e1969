// checks: an op with optional arguments called with too few (lower.rs)
use nanograd::prelude::*;

model! {
    fn f(x: [2, 4]) -> [2, 3] {
        dense(x)
    }
}

fn main() {}
