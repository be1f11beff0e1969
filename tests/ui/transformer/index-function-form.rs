// checks: a u32 input in the function form, which has no layers
use nanograd::prelude::*;

model! {
    pub fn count(idx: u32[4], x: [4]) -> [] {
        sum(x)
    }
}

fn main() {}
