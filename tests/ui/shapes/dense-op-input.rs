// checks: the dense op with an input whose last dimension is not the weight's `in` (lower.rs)
use nanograd::prelude::*;

model! {
    fn f(x: [2, 4], w: [3, 5]) -> [2, 3] {
        dense(x, w)
    }
}

fn main() {}
