// checks: cosine_similarity of values of different shapes (lower.rs)
use nanograd::prelude::*;

model! {
    fn f(a: [2, 3], b: [2, 4]) -> [2] {
        cosine_similarity(a, b)
    }
}

fn main() {}
