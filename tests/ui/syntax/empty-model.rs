// checks: a model with no fn, and nothing to point at (lower.rs)
use nanograd::prelude::*;

model! {}

fn main() {}
