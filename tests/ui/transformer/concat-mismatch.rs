// checks: concat of values whose other dimensions differ
use nanograd::prelude::*;

model! {
    pub struct Cat {
        p: Param([8]),
    }
    fn forward(a: [B, 4, 8], b: [B, 3, 6]) -> [B, 4, 14] {
        concat(a * p, b, dim = -1)
    }
}

fn main() {}
