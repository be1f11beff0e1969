use nanograd::prelude::*;

model! {
    pub struct Tiny {
        conv: Conv2d(1 -> 4, kernel = 7),
    }
    fn forward(x: [B, 1, 5, 5]) -> [B, 4, 1, 1] {
        conv(x)
    }
}

fn main() {}
