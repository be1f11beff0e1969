use nanograd::prelude::*;

model! {
    fn f(x: [3]) -> [3] {
        let a = relu(b);
        let b = tanh(x);
        a + b
    }
}

fn main() {}
