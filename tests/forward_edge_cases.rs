//! What a model's methods do at the edges of their input: an empty batch, NaN values, and
//! batches whose lengths disagree. None of them panics; each is `Ok` or `Err` as stated in
//! the README ("Edge cases of the input"), for the allocating methods and the `_into` ones.

use nanograd::prelude::*;
use nanograd::rand::{rngs::StdRng, SeedableRng};

model! {
    /// The MLP of the README's quick start.
    pub struct Mlp {
        fc1: Dense(4 -> 8),
        fc2: Dense(8 -> 3),
    }
    fn forward(x: [B, 4]) -> [B, 3] {
        fc2(relu(fc1(x)))
    }
    fn loss(x: [B, 4], target: [B, 3]) -> [] {
        softmax_cross_entropy(forward(x), target)
    }
}

model! {
    /// A convolution, batch norm and pooling, for the same edges through other kernels.
    pub struct Cnn {
        conv: Conv2d(1 -> 4, kernel = 3, padding = 1),
        bn: BatchNorm2d(4),
        fc: Dense(4 -> 3),
    }
    fn forward(x: [B, 1, 6, 6]) -> [B, 3] {
        fc(global_avg_pool2d(relu(bn(conv(x)))))
    }
}

fn mlp() -> Mlp<f32> {
    Mlp::new(&mut StdRng::seed_from_u64(1))
}

#[test]
fn an_empty_batch_gives_an_empty_output() {
    let model = mlp();
    let x: [[f32; 4]; 0] = [];
    assert_eq!(model.forward(&x).unwrap(), Vec::<[f32; 3]>::new());
    let mut ws = Workspace::new();
    model.forward_into(&x, &mut [], &mut ws).unwrap();
    // batch norm in training mode has no statistics of an empty batch, as in PyTorch; in
    // eval mode it uses the running ones
    let mut cnn = Cnn::<f32>::new(&mut StdRng::seed_from_u64(2));
    let images: [[[[f32; 6]; 6]; 1]; 0] = [];
    let e = cnn.forward(&images).unwrap_err().to_string();
    assert!(e.contains("more than 1 value per channel"), "{e}");
    cnn.set_eval_mode();
    assert!(cnn.forward(&images).unwrap().is_empty());
}

#[test]
fn the_loss_of_an_empty_batch_is_an_error() {
    let mut model = mlp();
    let (x, t): ([[f32; 4]; 0], [[f32; 3]; 0]) = ([], []);
    let e = model.loss(&x, &t).unwrap_err().to_string();
    assert!(e.contains("empty"), "{e}");
    let e = model.loss_backward(&x, &t).unwrap_err().to_string();
    assert!(e.contains("empty"), "{e}");
}

#[test]
fn nan_inputs_give_nan_outputs_not_errors() {
    let model = mlp();
    let x = [[f32::NAN, 0.0, 1.0, 2.0], [0.5, -0.5, 1.0, 0.0]];
    let y = model.forward(&x).unwrap();
    // NaN spreads through the first row only: each row is its own sample
    assert!(y[0].iter().all(|v| v.is_nan()), "{y:?}");
    assert!(y[1].iter().all(|v| v.is_finite()), "{y:?}");
    let loss = model.loss(&x, &[[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]).unwrap();
    assert!(loss.is_nan());
}

#[test]
fn batches_of_different_lengths_are_errors() {
    let mut model = mlp();
    let x = [[0.0f32; 4]; 3];
    let mut ws = Workspace::new();
    let e = model
        .forward_into(&x, &mut [[0.0; 3]; 2], &mut ws)
        .unwrap_err()
        .to_string();
    assert!(e.contains('3') && e.contains('2'), "{e}");
    let t = [[1.0f32, 0.0, 0.0]; 4];
    let e = model.loss(&x, &t).unwrap_err().to_string();
    assert!(e.contains('3') && e.contains('4'), "{e}");
    assert!(model.loss_backward(&x, &t).is_err());
}
