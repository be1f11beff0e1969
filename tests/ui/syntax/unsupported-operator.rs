// checks: a binary operator other than + - * / (lower.rs)
use nanograd::prelude::*;

model! {
    fn f(a: [3], b: [3]) -> [3] {
        a % b
    }
}

fn main() {}
