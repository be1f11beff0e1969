use nanograd::prelude::*;

model! {
    fn f(input: [3]) -> [3] {
        relu(inptu)
    }
}

fn main() {}
