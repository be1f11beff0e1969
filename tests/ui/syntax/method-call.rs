use nanograd::prelude::*;

model! {
    fn f(x: [3]) -> [3] {
        x.relu()
    }
}

fn main() {}
