// checks: transposing the batch dimension
use nanograd::prelude::*;

model! {
    pub struct Tr {
        p: Param([16]),
    }
    fn forward(x: [B, 8, 16]) -> [B, 8, 16] {
        transpose(x * p, 0, 1)
    }
}

fn main() {}
