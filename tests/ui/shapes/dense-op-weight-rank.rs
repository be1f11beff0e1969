// checks: the dense op with a weight that is not a matrix (lower.rs)
use nanograd::prelude::*;

model! {
    fn f(x: [2, 4], w: [4]) -> [2, 4] {
        dense(x, w)
    }
}

fn main() {}
