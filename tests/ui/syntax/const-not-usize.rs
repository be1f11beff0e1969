// checks: a const whose type is not `usize` (ast.rs)
use nanograd::prelude::*;

model! {
    const HIDDEN: u32 = 16;
    fn f(x: [3]) -> [3] {
        relu(x)
    }
}

fn main() {}
