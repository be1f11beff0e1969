// checks: a fn body with no result expression (ast.rs)
use nanograd::prelude::*;

model! {
    fn f(x: [3]) -> [3] {}
}

fn main() {}
