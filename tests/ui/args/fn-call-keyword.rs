// checks: a keyword argument in a call of a model fn (lower.rs)
use nanograd::prelude::*;

model! {
    fn g(x: [3]) -> [3] {
        relu(x)
    }
    fn f(x: [3]) -> [3] {
        g(x, alpha = 0.1)
    }
}

fn main() {}
