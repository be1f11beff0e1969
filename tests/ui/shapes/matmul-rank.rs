// checks: matmul of an operand of rank above 2 (lower.rs)
use nanograd::prelude::*;

model! {
    fn f(a: [2, 3, 4], b: [4, 2]) -> [2, 3, 2] {
        matmul(a, b)
    }
}

fn main() {}
