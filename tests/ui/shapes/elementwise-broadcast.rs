use nanograd::prelude::*;

model! {
    fn f(a: [2, 3], b: [2]) -> [2, 3] {
        a + b
    }
}

fn main() {}
