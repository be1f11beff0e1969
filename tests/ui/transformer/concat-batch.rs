// checks: concat along the batch dimension
use nanograd::prelude::*;

model! {
    pub struct Cat {
        p: Param([8]),
    }
    fn forward(a: [B, 8], b: [B, 8]) -> [B, 8] {
        concat(a * p, b, dim = 0)
    }
}

fn main() {}
