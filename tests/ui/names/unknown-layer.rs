use nanograd::prelude::*;

model! {
    pub struct Mlp {
        fc: Dnese(4 -> 2),
    }
    fn forward(x: [B, 4]) -> [B, 2] {
        fc(x)
    }
}

fn main() {}
