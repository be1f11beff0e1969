use nanograd::prelude::*;

model! {
    fn f(x: [2, 3]) -> [7] {
        reshape(x, [7])
    }
}

fn main() {}
