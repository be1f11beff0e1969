use nanograd::prelude::*;

model! {
    #[grad]
    fn f(x: [3]) -> [3] {
        tanh(x)
    }
}

fn main() {}
