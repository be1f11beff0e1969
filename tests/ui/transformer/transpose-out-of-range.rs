// checks: a transpose dimension past the rank
use nanograd::prelude::*;

model! {
    pub struct Tr {
        p: Param([16]),
    }
    fn forward(x: [B, 8, 16]) -> [B, 16, 8] {
        transpose(x * p, 1, -4)
    }
}

fn main() {}
