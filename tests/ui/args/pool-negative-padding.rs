// checks: a padding that is not a non-negative integer (lower.rs)
use nanograd::prelude::*;

model! {
    fn f(x: [1, 8, 8]) -> [1, 4, 4] {
        max_pool2d(x, padding = -1)
    }
}

fn main() {}
