// checks: the conv2d op with a weight that is not [C_out, C_in, KH, KW] (lower.rs)
use nanograd::prelude::*;

model! {
    fn f(x: [1, 4, 4], w: [2, 9]) -> [2, 2, 2] {
        conv2d(x, w)
    }
}

fn main() {}
