// checks: dot of vectors of different lengths (lower.rs)
use nanograd::prelude::*;

model! {
    fn f(a: [3], b: [4]) -> [] {
        dot(a, b)
    }
}

fn main() {}
