use nanograd::prelude::*;

model! {
    fn f(x: [5, 10]) -> [4, 10] {
        slice(x, 2, 4)
    }
}

fn main() {}
