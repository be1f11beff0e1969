// checks: the dense op with a bias of the wrong shape (lower.rs)
use nanograd::prelude::*;

model! {
    fn f(x: [2, 4], w: [3, 4], b: [4]) -> [2, 3] {
        dense(x, w, b)
    }
}

fn main() {}
