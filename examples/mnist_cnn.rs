//! A small convolutional network on MNIST digits: conv 16 - batch norm - relu - max pool 2,
//! conv 32 - batch norm - relu - max pool 2, dense to 10 classes; SGD (lr 0.05, momentum
//! 0.9), mini-batches of 64 shuffled by a seeded generator, 10 epochs. Batch norm trains on
//! batch statistics and is switched to its running statistics (evaluation mode) for each
//! test pass. Prints the test accuracy after each epoch and saves the weights.
//!
//! Run: `cargo run --release --example mnist_cnn [MNIST_DIR]` (default `data/mnist-10k`).
//! Writes `target/mnist_cnn.safetensors`.

#[path = "shared/training.rs"]
mod training;

use std::error::Error;
use std::time::{Duration, Instant};

use nanograd::data::{gather, one_hot_into, Batches, Mnist, IMAGE_SIDE, IMAGE_SIZE, NUM_CLASSES};
use nanograd::prelude::*;
use nanograd::rand::{rngs::StdRng, SeedableRng};

use training::{count_correct, EpochBar};

const EPOCHS: usize = 10;
const BATCH: usize = 64;
const LEARNING_RATE: f64 = 0.05;
const MOMENTUM: f64 = 0.9;

#[path = "shared/cnn.rs"]
mod cnn;
use cnn::Cnn;

/// One single-channel image, as `forward` takes it.
type Image = [[[f32; IMAGE_SIDE]; IMAGE_SIDE]; 1];

/// Flattened 784-pixel rows seen as `[1, 28, 28]` images (the same memory, no copy).
fn as_images(rows: &[[f32; IMAGE_SIZE]]) -> &[Image] {
    let (lines, _) = rows.as_flattened().as_chunks::<IMAGE_SIDE>();
    let (planes, _) = lines.as_chunks::<IMAGE_SIDE>();
    let (images, _) = planes.as_chunks::<1>();
    images
}

fn main() {
    if let Err(e) = run() {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

fn run() -> std::result::Result<(), Box<dyn Error>> {
    let dir = training::data_dir();
    let mnist = Mnist::load(&dir)?;
    println!(
        "MNIST from {}: {} training and {} test digits",
        dir.display(),
        mnist.train_images.len(),
        mnist.test_images.len()
    );

    let mut model = Cnn::<f32>::new(&mut StdRng::seed_from_u64(0));
    println!("{}", model.summary());
    let mut opt = Sgd::new(LEARNING_RATE).momentum(MOMENTUM);
    let mut shuffle = StdRng::seed_from_u64(1);
    let mut batches = Batches::new(mnist.train_images.len(), BATCH)?;

    let mut x = vec![[0.0f32; IMAGE_SIZE]; BATCH];
    let mut labels = [0u8; BATCH];
    let mut y = vec![[0.0f32; NUM_CLASSES]; BATCH];
    let mut ws = Workspace::new();

    let warmup_steps = batches.len();
    let mut step = 0;
    let mut training_time = Duration::ZERO;
    for epoch in 1..=EPOCHS {
        model.set_training_mode(true); // batch statistics, running statistics updated
        let bar = EpochBar::new(epoch, EPOCHS, batches.len());
        let start = Instant::now();
        let (mut loss_sum, mut seen) = (0.0f64, 0usize);
        for idx in batches.epoch(&mut shuffle) {
            let b = idx.len();
            gather(&mnist.train_images, idx, &mut x[..b])?;
            gather(&mnist.train_labels, idx, &mut labels[..b])?;
            one_hot_into(&labels[..b], &mut y[..b])?;
            opt.set_learning_rate(warmup(step, warmup_steps));
            step += 1;
            model.zero_grad();
            let loss = model.loss_backward(as_images(&x[..b]), &y[..b])?;
            opt.step(&mut model)?;
            loss_sum += f64::from(loss) * b as f64;
            seen += b;
            bar.step(loss_sum / seen as f64, None);
        }
        let elapsed = start.elapsed();
        training_time += elapsed;
        bar.finish();

        model.set_eval_mode(); // running statistics, frozen
        let test_accuracy = evaluate(&model, &mnist, &mut ws)?;
        println!(
            "epoch {epoch:2}/{EPOCHS}: loss {:.4}, test accuracy {:5.2}%  ({:.2} s)",
            loss_sum / seen as f64,
            100.0 * test_accuracy,
            elapsed.as_secs_f64()
        );
    }
    println!(
        "training time, {EPOCHS} epochs: {:.2} s ({:.2} s per epoch)",
        training_time.as_secs_f64(),
        training_time.as_secs_f64() / EPOCHS as f64
    );

    let weights = training::output_dir()?.join("mnist_cnn.safetensors");
    model.save_safetensors(&weights)?;
    println!("weights saved to {}", weights.display());
    Ok(())
}

/// The learning rate of step `step` (from 0): a linear ramp up to `LEARNING_RATE` over the
/// first `steps` steps (one epoch), then constant. Without it the first steps at lr 0.05 and
/// momentum 0.9 blow the loss up (from 2.3 to over 20, in PyTorch too) and the network
/// never recovers the lost ground within 10 epochs.
fn warmup(step: usize, steps: usize) -> f64 {
    LEARNING_RATE * ((step + 1) as f64 / steps as f64).min(1.0)
}

/// The fraction of the test set the model classifies correctly, in batches of 250.
fn evaluate(model: &Cnn<f32>, mnist: &Mnist, ws: &mut Workspace<f32>) -> Result<f64> {
    let mut logits = vec![[0.0f32; NUM_CLASSES]; 250];
    let mut correct = 0;
    for (x, labels) in mnist
        .test_images
        .chunks(250)
        .zip(mnist.test_labels.chunks(250))
    {
        let out = &mut logits[..x.len()];
        model.forward_into(as_images(x), out, ws)?;
        correct += count_correct(out, labels);
    }
    Ok(correct as f64 / mnist.test_images.len() as f64)
}
