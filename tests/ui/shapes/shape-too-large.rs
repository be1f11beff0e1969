// checks: a declared shape with more than 2^40 elements (lower.rs)
use nanograd::prelude::*;

model! {
    fn f(x: [2000000, 1000000]) -> [] {
        sum(x)
    }
}

fn main() {}
