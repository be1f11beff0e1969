// checks: softmax_cross_entropy of scalar logits (lower.rs)
use nanograd::prelude::*;

model! {
    fn f(x: [3], t: [3]) -> [] {
        softmax_cross_entropy(sum(x), sum(t))
    }
}

fn main() {}
