// checks: a model fn called with the wrong number of arguments (lower.rs)
use nanograd::prelude::*;

model! {
    fn g(x: [3]) -> [3] {
        relu(x)
    }
    fn f(x: [3]) -> [3] {
        g(x, x)
    }
}

fn main() {}
