// checks: a call whose callee is a path, not a name (lower.rs)
use nanograd::prelude::*;

model! {
    fn f(x: [3]) -> [3] {
        nn::relu(x)
    }
}

fn main() {}
