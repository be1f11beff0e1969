// checks: a keyword argument whose left side is not a name (lower.rs)
use nanograd::prelude::*;

model! {
    fn f(x: [3]) -> [3] {
        leaky_relu(x, cfg.alpha = 0.1)
    }
}

fn main() {}
