// checks: `reshape` given a number instead of a shape list (lower.rs)
use nanograd::prelude::*;

model! {
    fn f(x: [2, 3]) -> [6] {
        reshape(x, 6)
    }
}

fn main() {}
