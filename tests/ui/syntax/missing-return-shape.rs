// checks: a fn without `-> [shape]` (syn's own parse error, ast.rs)
use nanograd::prelude::*;

model! {
    fn f(x: [3]) {
        relu(x)
    }
}

fn main() {}
