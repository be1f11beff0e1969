use nanograd::prelude::*;

model! {
    fn f(x: [B, 3]) -> [3] {
        relu(x)
    }
}

fn main() {}
