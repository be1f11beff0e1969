// checks: two structs in one model! (lower.rs)
use nanograd::prelude::*;

model! {
    pub struct Encoder {
        fc: Dense(4 -> 2),
    }
    pub struct Decoder {
        fc: Dense(2 -> 4),
    }
    fn forward(x: [B, 4]) -> [B, 2] {
        fc(x)
    }
}

fn main() {}
