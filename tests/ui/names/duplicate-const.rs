// checks: a const defined twice (lower.rs)
use nanograd::prelude::*;

model! {
    const N: usize = 3;
    const N: usize = 4;
    fn f(x: [N]) -> [N] {
        relu(x)
    }
}

fn main() {}
