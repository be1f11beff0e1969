// checks: an `@` item that is not `@layer` (ast.rs)
use nanograd::prelude::*;

model! {
    @lyer Block [B, 4] -> [B, 4] (0, 0);
    fn f(x: [3]) -> [3] {
        relu(x)
    }
}

fn main() {}
