use nanograd::prelude::*;

model! {
    fn f(x: [3]) -> [3] {
        rleu(x)
    }
}

fn main() {}
