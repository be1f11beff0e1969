// checks: the conv2d op with a bias of the wrong shape (lower.rs)
use nanograd::prelude::*;

model! {
    fn f(x: [1, 4, 4], w: [2, 1, 3, 3], b: [3]) -> [2, 2, 2] {
        conv2d(x, w, b)
    }
}

fn main() {}
