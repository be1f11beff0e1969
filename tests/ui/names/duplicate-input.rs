// checks: an input declared twice (lower.rs)
use nanograd::prelude::*;

model! {
    fn f(x: [3], x: [3]) -> [3] {
        relu(x)
    }
}

fn main() {}
