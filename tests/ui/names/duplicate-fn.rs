// checks: a fn defined twice (lower.rs)
use nanograd::prelude::*;

model! {
    fn f(x: [3]) -> [3] {
        relu(x)
    }
    fn f(x: [3]) -> [3] {
        tanh(x)
    }
}

fn main() {}
