// checks: an expression statement before the result (ast.rs)
use nanograd::prelude::*;

model! {
    fn f(x: [3]) -> [3] {
        relu(x);
        tanh(x)
    }
}

fn main() {}
