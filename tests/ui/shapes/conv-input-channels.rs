use nanograd::prelude::*;

model! {
    pub struct Cnn {
        conv1: Conv2d(1 -> 8, kernel = 3, padding = 1),
        conv2: Conv2d(16 -> 16, kernel = 3),
    }
    fn forward(x: [B, 1, 28, 28]) -> [B, 16, 26, 26] {
        conv2(relu(conv1(x)))
    }
}

fn main() {}
