// checks: a dimension that is neither a number nor a name (ast.rs)
use nanograd::prelude::*;

model! {
    fn f(x: [3, _]) -> [3] {
        sum(x)
    }
}

fn main() {}
