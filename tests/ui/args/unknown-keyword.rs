use nanograd::prelude::*;

model! {
    pub struct Cnn {
        conv: Conv2d(1 -> 4, kernel = 3, stide = 2),
    }
    fn forward(x: [B, 1, 8, 8]) -> [B, 4, 6, 6] {
        leaky_relu(conv(x), alpah = 0.1)
    }
}

fn main() {}
