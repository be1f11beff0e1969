// checks: a const dimension that divides by zero
use nanograd::prelude::*;

model! {
    const N: usize = 4 / 0;
    fn f(x: [N]) -> [] {
        sum(x)
    }
}

fn main() {}
