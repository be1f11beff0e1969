//! The seed's "Training a Neural Network", written by hand against the runtime: Dense 2→8,
//! ReLU, Dense 8→1, MSE loss, Adam (lr 0.01), one sample per step, on y = x0·x1.
//! Run: `cargo run --release --example regression`.

use nanograd::blas::{axpy, dot};
use nanograd::ops::{relu, relu_backward};
use nanograd::prelude::*;
use nanograd::rand::{rngs::StdRng, Rng, SeedableRng};
use nanograd::Dense;

// TODO(lead): use ops::dense / ops::mse_loss once merged
/// `y = W x + b` for one sample.
fn dense(d: &Dense<f32>, x: &[f32], y: &mut [f32]) {
    let rows = d.weight.value().chunks(d.in_features());
    for ((y, w), b) in y.iter_mut().zip(rows).zip(d.bias.value()) {
        *y = b + dot(w, x);
    }
}

/// `dW += dy xᵀ`, `db += dy`, and `dx = Wᵀ dy` when asked for.
fn dense_backward(d: &mut Dense<f32>, x: &[f32], dy: &[f32], dx: Option<&mut [f32]>) {
    if let Some(dx) = dx {
        dx.fill(0.0);
        for (w, &g) in d.weight.value().chunks(d.in_features()).zip(dy) {
            axpy(g, w, dx);
        }
    }
    for (row, &g) in d.weight.grad_mut().chunks_mut(x.len()).zip(dy) {
        axpy(g, x, row);
    }
    axpy(1.0, dy, d.bias.grad_mut());
}

fn main() -> Result<()> {
    let mut rng = StdRng::seed_from_u64(7);
    let data: Vec<([f32; 2], f32)> = (0..64)
        .map(|_| [rng.gen_range(-1.0..1.0), rng.gen_range(-1.0..1.0)])
        .map(|x: [f32; 2]| (x, x[0] * x[1]))
        .collect();
    // a list of layers is a module, its parameters named 0.weight, 0.bias, 1.weight, 1.bias
    let mut model = [Dense::new(2, 8, &mut rng)?, Dense::new(8, 1, &mut rng)?];
    println!("{}", model.summary());
    let mut optimizer = Adam::new(0.01);
    let (mut z, mut h, mut dh, mut dz, mut y) = ([0.0; 8], [0.0; 8], [0.0; 8], [0.0; 8], [0.0]);
    let (mut first_loss, mut loss) = (0.0, 0.0);
    for epoch in 1..=100 {
        let mut total = 0.0;
        for (x, target) in &data {
            dense(&model[0], x, &mut z);
            relu(&z, &mut h)?;
            dense(&model[1], &h, &mut y);
            let err = y[0] - target; // mse of one output: err², gradient 2·err
            total += err * err;
            dense_backward(&mut model[1], &h, &[2.0 * err], Some(&mut dh));
            dz.fill(0.0);
            relu_backward(&z, &h, &dh, &mut dz)?;
            dense_backward(&mut model[0], x, &dz, None);
            optimizer.step(&mut model)?;
            model.zero_grad();
        }
        loss = total / data.len() as f32;
        if epoch == 1 {
            first_loss = loss;
        }
        if epoch == 1 || epoch % 20 == 0 {
            println!("epoch {epoch:3}  mse {loss:.6}");
        }
    }
    println!("the loss fell {:.0}x", first_loss / loss);
    Ok(())
}
