// checks: an op with optional arguments given too many
use nanograd::prelude::*;

model! {
    fn f(x: [3], w: [2, 3], b: [2]) -> [2] {
        dense(x, w, b, b)
    }
}

fn main() {}
