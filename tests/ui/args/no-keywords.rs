// checks: a keyword given to an op that takes none (lower.rs)
use nanograd::prelude::*;

model! {
    fn f(x: [3]) -> [3] {
        relu(x, inplace = true)
    }
}

fn main() {}
