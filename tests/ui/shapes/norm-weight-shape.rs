// checks: layer_norm with a weight that does not match the last dimension (lower.rs)
use nanograd::prelude::*;

model! {
    fn f(x: [2, 4], w: [3], b: [4]) -> [2, 4] {
        layer_norm(x, w, b)
    }
}

fn main() {}
