// checks: a path where a name is expected (lower.rs)
use nanograd::prelude::*;

model! {
    fn f(x: [3]) -> [3] {
        x * consts::PI
    }
}

fn main() {}
