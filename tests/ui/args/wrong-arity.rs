use nanograd::prelude::*;

model! {
    fn f(a: [3], b: [3]) -> [3] {
        relu(a, b)
    }
}

fn main() {}
