// checks: safe_div of operands that do not broadcast (lower.rs)
use nanograd::prelude::*;

model! {
    fn f(a: [2, 3], b: [2]) -> [2, 3] {
        safe_div(a, b)
    }
}

fn main() {}
