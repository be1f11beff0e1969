// checks: `->` with no size before it (ast.rs)
use nanograd::prelude::*;

model! {
    pub struct Mlp {
        fc: Dense(-> 10),
    }
    fn forward(x: [B, 4]) -> [B, 10] {
        fc(x)
    }
}

fn main() {}
