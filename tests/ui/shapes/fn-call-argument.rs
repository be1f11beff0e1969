// checks: a model fn called with an argument of the wrong shape (lower.rs)
use nanograd::prelude::*;

model! {
    fn g(x: [3]) -> [3] {
        relu(x)
    }
    fn f(x: [4]) -> [3] {
        g(x)
    }
}

fn main() {}
