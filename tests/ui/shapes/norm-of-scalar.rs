// checks: rmsnorm of a scalar (lower.rs)
use nanograd::prelude::*;

model! {
    fn f(x: [3], w: [1]) -> [] {
        rmsnorm(sum(x), w)
    }
}

fn main() {}
