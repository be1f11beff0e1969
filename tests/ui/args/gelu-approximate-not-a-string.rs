// checks: gelu's `approximate` is a string, as in PyTorch (lower/numbers.rs)
use nanograd::prelude::*;

model! {
    fn f(x: [3]) -> [3] {
        gelu(x, approximate = false)
    }
}

fn main() {}
