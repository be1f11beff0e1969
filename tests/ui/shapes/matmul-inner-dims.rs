use nanograd::prelude::*;

model! {
    fn f(a: [2, 3], d: [2, 2]) -> [2, 2] {
        matmul(a, d)
    }
}

fn main() {}
