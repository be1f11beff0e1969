// checks: an intermediate value with more than 2^40 elements (lower.rs)
use nanograd::prelude::*;

model! {
    fn f(a: [1048576, 1], b: [1, 2097152]) -> [] {
        sum(matmul(a, b))
    }
}

fn main() {}
