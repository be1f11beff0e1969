// checks: an input typed as Rust rather than as a shape (ast.rs)
use nanograd::prelude::*;

model! {
    fn f(x: Vec<f32>) -> [3] {
        relu(x)
    }
}

fn main() {}
