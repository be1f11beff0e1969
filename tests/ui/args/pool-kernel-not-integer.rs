// checks: a window size that is not a positive integer (lower.rs)
use nanograd::prelude::*;

model! {
    fn f(x: [1, 8, 8]) -> [1, 4, 4] {
        max_pool2d(x, kernel = 1.5)
    }
}

fn main() {}
