// checks: a keyword argument that is not a number (lower.rs)
use nanograd::prelude::*;

model! {
    fn f(x: [3]) -> [3] {
        leaky_relu(x, alpha = slope)
    }
}

fn main() {}
