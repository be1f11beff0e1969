// checks: a const dimension with an operator other than + - * / (lower.rs)
use nanograd::prelude::*;

model! {
    const N: usize = 7 % 4;
    fn f(x: [N]) -> [N] {
        relu(x)
    }
}

fn main() {}
