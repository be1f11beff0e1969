// checks: gelu's `approximate` is "none" or "tanh" (lower/numbers.rs)
use nanograd::prelude::*;

model! {
    fn f(x: [3]) -> [3] {
        gelu(x, approximate = "erf")
    }
}

fn main() {}
