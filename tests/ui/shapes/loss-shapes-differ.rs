// checks: a loss whose prediction and target differ in shape (lower.rs)
use nanograd::prelude::*;

model! {
    fn f(pred: [3], target: [4]) -> [] {
        mse_loss(pred, target)
    }
}

fn main() {}
