//! Trains the 784-128-64-10 perceptron of `shared/mlp.rs` on MNIST digits: Adam (lr 1e-3),
//! mini-batches of 64 shuffled by a seeded generator, 15 epochs. Shows a progress bar per
//! epoch (loss and running accuracy), prints the test accuracy after each epoch, saves the
//! weights as safetensors and plots the training loss and test accuracy to a PNG.
//!
//! Run: `cargo run --release --example mnist_mlp [MNIST_DIR]` (default `data/mnist-10k`; any
//! folder with the four MNIST files, gzipped or not, e.g. the full 60,000-digit set).
//! Writes `target/mnist_mlp.safetensors` and `target/mnist_mlp.png`.

#[path = "shared/mlp.rs"]
mod mlp;
#[path = "shared/training.rs"]
mod training;

use std::error::Error;
use std::path::Path;
use std::time::{Duration, Instant};

use nanograd::data::{gather, one_hot_into, Batches, Mnist, IMAGE_SIZE, NUM_CLASSES};
use nanograd::prelude::*;
use nanograd::rand::{rngs::StdRng, SeedableRng};
use plotters::coord::Shift;
use plotters::prelude::*;

use mlp::Mlp;
use training::{count_correct, EpochBar};

const EPOCHS: usize = 15;
const BATCH: usize = 64;
const LEARNING_RATE: f64 = 1e-3;

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

    let mut model = Mlp::<f32>::new(&mut StdRng::seed_from_u64(0));
    println!("{}", model.summary());
    let mut opt = Adam::new(LEARNING_RATE);
    let mut shuffle = StdRng::seed_from_u64(1);
    let mut batches = Batches::new(mnist.train_images.len(), BATCH)?;

    // buffers for one batch, reused by every step
    let mut x = vec![[0.0f32; IMAGE_SIZE]; BATCH];
    let mut labels = [0u8; BATCH];
    let mut y = vec![[0.0f32; NUM_CLASSES]; BATCH];
    let mut logits = vec![[0.0f32; NUM_CLASSES]; BATCH];
    let mut ws = Workspace::new();

    let (mut losses, mut accuracies) = (Vec::new(), Vec::new());
    let mut training_time = Duration::ZERO;
    for epoch in 1..=EPOCHS {
        let bar = EpochBar::new(epoch, EPOCHS, batches.len());
        let start = Instant::now();
        let (mut loss_sum, mut correct, mut seen) = (0.0f64, 0usize, 0usize);
        for idx in batches.epoch(&mut shuffle) {
            let b = idx.len();
            gather(&mnist.train_images, idx, &mut x[..b])?;
            gather(&mnist.train_labels, idx, &mut labels[..b])?;
            one_hot_into(&labels[..b], &mut y[..b])?;
            // running accuracy: this batch's predictions before the step
            model.forward_into(&x[..b], &mut logits[..b], &mut ws)?;
            correct += count_correct(&logits[..b], &labels[..b]);
            model.zero_grad();
            let loss = model.loss_backward(&x[..b], &y[..b])?;
            opt.step(&mut model)?;
            loss_sum += f64::from(loss) * b as f64;
            seen += b;
            bar.step(loss_sum / seen as f64, Some(correct as f64 / seen as f64));
        }
        let elapsed = start.elapsed();
        training_time += elapsed;
        bar.finish();

        let test_accuracy = evaluate(&model, &mnist, &mut ws)?;
        let mean_loss = loss_sum / seen as f64;
        println!(
            "epoch {epoch:2}/{EPOCHS}: loss {mean_loss:.4}, train accuracy {:5.2}%, \
             test accuracy {:5.2}%  ({:.2} s)",
            100.0 * correct as f64 / seen as f64,
            100.0 * test_accuracy,
            elapsed.as_secs_f64()
        );
        losses.push(mean_loss);
        accuracies.push(test_accuracy);
    }
    println!(
        "training time, {EPOCHS} epochs: {:.2} s ({:.1} ms per epoch)",
        training_time.as_secs_f64(),
        1e3 * training_time.as_secs_f64() / EPOCHS as f64
    );

    let out = training::output_dir()?;
    let weights = out.join("mnist_mlp.safetensors");
    model.save_safetensors(&weights)?;
    println!("weights saved to {}", weights.display());
    let plot_path = out.join("mnist_mlp.png");
    plot(&plot_path, &losses, &accuracies)?;
    println!("plot saved to {}", plot_path.display());
    Ok(())
}

/// The fraction of the test set the model classifies correctly.
fn evaluate(model: &Mlp<f32>, mnist: &Mnist, ws: &mut Workspace<f32>) -> Result<f64> {
    let mut logits = vec![[0.0f32; NUM_CLASSES]; 500];
    let mut correct = 0;
    for (x, labels) in mnist
        .test_images
        .chunks(500)
        .zip(mnist.test_labels.chunks(500))
    {
        let out = &mut logits[..x.len()];
        model.forward_into(x, out, ws)?;
        correct += count_correct(out, labels);
    }
    Ok(correct as f64 / mnist.test_images.len() as f64)
}

/// Two panels: the mean training loss and the test accuracy, per epoch. Text is drawn with
/// DejaVu Sans embedded in the binary, so no system font is needed.
fn plot(
    path: &Path,
    losses: &[f64],
    accuracies: &[f64],
) -> std::result::Result<(), Box<dyn Error>> {
    plotters::style::register_font("sans-serif", FontStyle::Normal, dejavu::sans::regular())
        .map_err(|_| "the embedded DejaVu Sans font did not load")?;
    let root = BitMapBackend::new(path, (1000, 420)).into_drawing_area();
    root.fill(&WHITE)?;
    let (left, right) = root.split_horizontally(500);
    panel(&left, "training loss", "mean cross-entropy", losses, BLUE)?;
    let percent: Vec<f64> = accuracies.iter().map(|a| 100.0 * a).collect();
    panel(&right, "test accuracy", "accuracy (%)", &percent, RED)?;
    root.present()?;
    Ok(())
}

/// A line with dots: `values[i]` at epoch `i + 1`.
fn panel(
    area: &DrawingArea<BitMapBackend, Shift>,
    title: &str,
    y_desc: &str,
    values: &[f64],
    colour: RGBColor,
) -> std::result::Result<(), Box<dyn Error>> {
    let lo = values.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let pad = ((hi - lo) * 0.1).max(1e-3);
    let mut chart = ChartBuilder::on(area)
        .caption(title, ("sans-serif", 24))
        .margin(15)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(1u32..values.len().max(2) as u32, (lo - pad)..(hi + pad))?;
    chart
        .configure_mesh()
        .x_desc("epoch")
        .y_desc(y_desc)
        .label_style(("sans-serif", 14))
        .draw()?;
    let points = (1u32..).zip(values.iter().copied());
    chart.draw_series(LineSeries::new(points.clone(), colour.stroke_width(2)))?;
    chart.draw_series(points.map(|p| Circle::new(p, 3, colour.filled())))?;
    Ok(())
}
