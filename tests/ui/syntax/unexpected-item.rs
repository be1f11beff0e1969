// checks: an item that is not const, struct or fn (ast.rs)
use nanograd::prelude::*;

model! {
    static HIDDEN: usize = 16;
    fn f(x: [3]) -> [3] {
        relu(x)
    }
}

fn main() {}
