//! The smallest network that needs a hidden layer: XOR with Dense 2→8, tanh, Dense 8→1,
//! sigmoid, mean squared error and Adam. Run: `cargo run --release --example xor`.

use nanograd::prelude::*;
use nanograd::rand::{rngs::StdRng, SeedableRng};

model! {
    pub struct Xor {
        hidden: Dense(2 -> 8),
        out: Dense(8 -> 1),
    }
    fn forward(x: [B, 2]) -> [B, 1] {
        sigmoid(out(tanh(hidden(x))))
    }
    fn loss(x: [B, 2], y: [B, 1]) -> [] {
        mse_loss(forward(x), y)
    }
}

fn main() -> Result<()> {
    let x = [[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]];
    let y = [[0.0], [1.0], [1.0], [0.0]];
    let mut model = Xor::<f32>::new(&mut StdRng::seed_from_u64(0));
    let mut opt = Adam::new(0.05);
    for step in 0..=300 {
        model.zero_grad();
        let loss = model.loss_backward(&x, &y)?;
        opt.step(&mut model)?;
        if step % 100 == 0 {
            println!("step {step:3}: loss {loss:.5}");
        }
    }
    for (xi, p) in x.iter().zip(model.forward(&x)?) {
        println!("{xi:?} -> {:.3}", p[0]);
    }
    Ok(())
}
