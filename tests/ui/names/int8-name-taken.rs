use nanograd::prelude::*;

// the quantized model of `Mlp` is `MlpInt8`: a struct of that name is a compile error
pub struct MlpInt8;

model! {
    pub struct Mlp {
        fc: Dense(4 -> 2),
    }
    fn forward(x: [B, 4]) -> [B, 2] {
        fc(x)
    }
}

fn main() {}
