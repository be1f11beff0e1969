use nanograd::prelude::*;

model! {
    fn f(x: [3]) -> [3] {
        f(x)
    }
}

fn main() {}
