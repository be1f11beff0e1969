//! The seed's "Training a Neural Network": Dense 2→8, ReLU, Dense 8→1, MSE, Adam (lr 0.01),
//! learning y = x0·x1 one sample at a time. Run: `cargo run --release --example regression`.

use nanograd::prelude::*;
use nanograd::rand::{rngs::StdRng, RngExt, SeedableRng};

model! {
    pub struct Regression {
        hidden: Dense(2 -> 8),
        out: Dense(8 -> 1),
    }
    fn forward(x: [B, 2]) -> [B, 1] {
        out(relu(hidden(x)))
    }
    fn loss(x: [B, 2], y: [B, 1]) -> [] {
        mse_loss(forward(x), y)
    }
}

fn main() -> Result<()> {
    let mut rng = StdRng::seed_from_u64(7);
    let xs: Vec<[f32; 2]> = (0..64)
        .map(|_| [rng.random_range(-1.0..1.0), rng.random_range(-1.0..1.0)])
        .collect();
    let data: Vec<([f32; 2], [f32; 1])> = xs.iter().map(|x| (*x, [x[0] * x[1]])).collect();
    let mut model = Regression::<f32>::new(&mut rng);
    let mut opt = Adam::new(0.01);
    for epoch in 1..=100 {
        let mut total = 0.0;
        for (x, y) in &data {
            model.zero_grad();
            total += model.loss_backward(&[*x], &[*y])?;
            opt.step(&mut model)?;
        }
        if epoch == 1 || epoch % 20 == 0 {
            println!(
                "epoch {epoch:3}: mean loss {:.5}",
                total / data.len() as f32
            );
        }
    }
    Ok(())
}
