// checks: matmul of an operand of rank above 2 by a vector (lower/op_rules.rs)
use nanograd::prelude::*;

model! {
    fn f(a: [2, 3, 4], b: [4]) -> [2, 3] {
        matmul(a, b)
    }
}

fn main() {}
