// checks: an expression form outside the model language (lower.rs)
use nanograd::prelude::*;

model! {
    fn f(x: [3]) -> [] {
        x[0]
    }
}

fn main() {}
