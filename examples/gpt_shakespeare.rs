//! Trains the character-level GPT of `shared/gpt.rs` on eight Shakespeare plays, with
//! nanoGPT's CPU recipe for character-level Shakespeare: batches of 12 random windows of 64
//! characters, AdamW (lr 1e-3, betas 0.9/0.99, weight decay 0.1 on matrices only), 100
//! warm-up steps then cosine decay to 1e-4, gradient clipping at norm 1.0, 2,000 steps.
//! Characters are the tokens; the first 90 % of the text trains, the last 10 % validates.
//!
//! Shows a progress bar with the loss, the validation loss every 250 steps, the training
//! time, and a sample of generated text; saves the weights as safetensors (PyTorch's names)
//! and plots the training and validation losses.
//!
//! Run: `cargo run --release --example gpt_shakespeare [-- --steps N --temperature T
//! --seed S --sample N]`. Reads `data/shakespeare/input.txt`; writes
//! `target/gpt_shakespeare.safetensors` and `target/gpt_shakespeare.png`.

#[path = "shared/gpt.rs"]
mod gpt;

use std::error::Error;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use nanograd::optim::{clip_grad_norm, CosineAnnealing, LinearWarmup, LrSchedule};
use nanograd::prelude::*;
use nanograd::rand::{rngs::StdRng, RngExt, SeedableRng};
use plotters::prelude::*;

use gpt::{Gpt, CTX, VOCAB};

const BATCH: usize = 12;
const LEARNING_RATE: f64 = 1e-3;
const MIN_LEARNING_RATE: f64 = 1e-4;
const WARMUP: usize = 100;
const WEIGHT_DECAY: f64 = 0.1;
const CLIP: f32 = 1.0;
const EVAL_EVERY: usize = 250;
/// Validation batches per evaluation: the same windows every time.
const EVAL_BATCHES: usize = 20;

/// Command-line options.
struct Options {
    steps: usize,
    temperature: f64,
    seed: u64,
    sample: usize,
}

impl Options {
    fn parse() -> std::result::Result<Self, Box<dyn Error>> {
        let mut o = Options {
            steps: 2000,
            temperature: 0.8,
            seed: 0,
            sample: 500,
        };
        let mut args = std::env::args().skip(1);
        while let Some(flag) = args.next() {
            let value = args
                .next()
                .ok_or_else(|| format!("`{flag}` needs a value"))?;
            match flag.as_str() {
                "--steps" => o.steps = value.parse()?,
                "--temperature" => o.temperature = value.parse()?,
                "--seed" => o.seed = value.parse()?,
                "--sample" => o.sample = value.parse()?,
                _ => {
                    return Err(format!(
                        "unknown option `{flag}`; the options are --steps, --temperature, --seed, --sample"
                    )
                    .into())
                }
            }
        }
        if o.steps == 0 || o.temperature.is_nan() || o.temperature <= 0.0 {
            return Err("--steps must be positive and --temperature above 0".into());
        }
        Ok(o)
    }
}

/// The text as token ids, with the alphabet that maps them back.
struct Corpus {
    alphabet: Vec<char>,
    train: Vec<u32>,
    val: Vec<u32>,
}

impl Corpus {
    fn load(path: &Path) -> std::result::Result<Self, Box<dyn Error>> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let mut alphabet: Vec<char> = text.chars().collect();
        alphabet.sort_unstable();
        alphabet.dedup();
        if alphabet.len() != VOCAB {
            return Err(format!(
                "{} has {} distinct characters, but the model's vocabulary is {VOCAB}",
                path.display(),
                alphabet.len()
            )
            .into());
        }
        let ids: Vec<u32> = text
            .chars()
            .map(|c| alphabet.binary_search(&c).map(|i| i as u32))
            .collect::<std::result::Result<_, _>>()
            .map_err(|_| "a character is missing from the alphabet")?;
        let cut = ids.len() * 9 / 10;
        if cut <= CTX || ids.len() - cut <= CTX {
            return Err(format!("{} is too short to train on", path.display()).into());
        }
        Ok(Corpus {
            alphabet,
            val: ids[cut..].to_vec(),
            train: ids[..cut].to_vec(),
        })
    }
}

/// Fills `idx` and `targets` with random windows of `ids`: each target is the next character.
fn batch(ids: &[u32], rng: &mut StdRng, idx: &mut [[u32; CTX]], targets: &mut [[u32; CTX]]) {
    for (x, y) in idx.iter_mut().zip(targets.iter_mut()) {
        let start = rng.random_range(0..ids.len() - CTX);
        x.copy_from_slice(&ids[start..start + CTX]);
        y.copy_from_slice(&ids[start + 1..start + CTX + 1]);
    }
}

fn main() {
    if let Err(e) = run() {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

fn run() -> std::result::Result<(), Box<dyn Error>> {
    let opts = Options::parse()?;
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("data/shakespeare/input.txt");
    let corpus = Corpus::load(&path)?;
    println!(
        "{}: {} training and {} validation characters, {VOCAB} distinct",
        path.display(),
        corpus.train.len(),
        corpus.val.len()
    );

    let mut model = Gpt::<f32>::new(&mut StdRng::seed_from_u64(opts.seed));
    println!("{}", model.summary());
    let mut opt = AdamW::new(LEARNING_RATE)
        .betas(0.9, 0.99)
        .weight_decay(WEIGHT_DECAY)
        .decay_matrices_only();
    let schedule = LinearWarmup {
        warmup: WARMUP,
        then: CosineAnnealing {
            base: LEARNING_RATE,
            min: MIN_LEARNING_RATE,
            total: opts.steps.saturating_sub(WARMUP),
        },
    };

    // the validation windows, fixed once
    let mut val_rng = StdRng::seed_from_u64(opts.seed + 1);
    let mut val_batches = Vec::new();
    for _ in 0..EVAL_BATCHES {
        let (mut x, mut y) = (vec![[0u32; CTX]; BATCH], vec![[0u32; CTX]; BATCH]);
        batch(&corpus.val, &mut val_rng, &mut x, &mut y);
        val_batches.push((x, y));
    }
    let mut eval_ws = Workspace::new();
    let mut evaluate = |model: &Gpt<f32>| -> Result<f64> {
        let mut total = 0.0;
        for (x, y) in &val_batches {
            total += f64::from(model.loss_into(x, y, &mut eval_ws)?);
        }
        Ok(total / EVAL_BATCHES as f64)
    };

    let mut rng = StdRng::seed_from_u64(opts.seed + 2);
    let (mut idx, mut targets) = (vec![[0u32; CTX]; BATCH], vec![[0u32; CTX]; BATCH]);
    let bar = ProgressBar::new(opts.steps as u64);
    bar.set_style(
        ProgressStyle::with_template(
            "[{bar:40.cyan/blue}] {pos:>5}/{len} {msg} ({elapsed_precise})",
        )
        .expect("a valid template")
        .progress_chars("=> "),
    );
    let mut curve = Vec::new(); // (step, mean training loss since the last point, val loss)
    let (mut loss_sum, mut loss_n) = (0.0f64, 0usize);
    let mut training_time = Duration::ZERO;
    for step in 0..opts.steps {
        let start = Instant::now();
        batch(&corpus.train, &mut rng, &mut idx, &mut targets);
        opt.set_learning_rate(schedule.lr(step));
        model.zero_grad();
        let loss = model.loss_backward(&idx, &targets)?;
        clip_grad_norm(&mut model, CLIP);
        opt.step(&mut model)?;
        training_time += start.elapsed();
        loss_sum += f64::from(loss);
        loss_n += 1;
        bar.set_message(format!("loss {:.4}", loss));
        bar.inc(1);
        let last = step + 1 == opts.steps;
        if (step + 1) % EVAL_EVERY == 0 || last {
            let val = evaluate(&model)?;
            let train = loss_sum / loss_n as f64;
            let line = format!(
                "step {:5}: train loss {train:.4}, validation loss {val:.4}",
                step + 1
            );
            // a hidden bar (output not a terminal) prints nothing of its own
            if bar.is_hidden() {
                println!("{line}");
            } else {
                bar.println(line);
            }
            curve.push((step + 1, train, val));
            (loss_sum, loss_n) = (0.0, 0);
        }
    }
    bar.finish_and_clear();
    let final_val = curve.last().map_or(f64::NAN, |c| c.2);
    println!(
        "training time, {} steps: {:.2} s ({:.1} ms per step); validation loss {final_val:.4}",
        opts.steps,
        training_time.as_secs_f64(),
        1e3 * training_time.as_secs_f64() / opts.steps as f64
    );

    model.set_eval_mode();
    let text = sample(&model, &corpus, opts.sample, opts.temperature, opts.seed)?;
    println!(
        "--- {} characters at temperature {} (seed {}), after a prompt from the validation text:\n{text}\n---",
        opts.sample, opts.temperature, opts.seed
    );

    let out = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target");
    std::fs::create_dir_all(&out)?;
    let weights = out.join("gpt_shakespeare.safetensors");
    model.save_safetensors(&weights)?;
    println!("weights saved to {}", weights.display());
    let plot_path = out.join("gpt_shakespeare.png");
    plot(&plot_path, &curve)?;
    println!("plot saved to {}", plot_path.display());
    Ok(())
}

/// `n` characters drawn one by one from the model's next-character distribution at
/// `temperature`, each conditioned on the 64 characters before it; the first window is the
/// start of the validation text.
fn sample(
    model: &Gpt<f32>,
    corpus: &Corpus,
    n: usize,
    temperature: f64,
    seed: u64,
) -> std::result::Result<String, Box<dyn Error>> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut window = [0u32; CTX];
    window.copy_from_slice(&corpus.val[..CTX]);
    let mut logits = vec![[[0.0f32; VOCAB]; CTX]; 1];
    let mut ws = Workspace::new();
    let mut out = String::new();
    for _ in 0..n {
        model.forward_into(&[window], &mut logits, &mut ws)?;
        let last = &logits[0][CTX - 1];
        let max = last.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let weights: Vec<f64> = last
            .iter()
            .map(|&l| (f64::from(l - max) / temperature).exp())
            .collect();
        let mut pick = rng.random::<f64>() * weights.iter().sum::<f64>();
        let mut next = VOCAB - 1;
        for (i, w) in weights.iter().enumerate() {
            if pick < *w {
                next = i;
                break;
            }
            pick -= w;
        }
        out.push(corpus.alphabet[next]);
        window.copy_within(1.., 0);
        window[CTX - 1] = next as u32;
    }
    Ok(out)
}

/// The mean training loss over each evaluation interval and the validation loss, per step.
fn plot(path: &Path, curve: &[(usize, f64, f64)]) -> std::result::Result<(), Box<dyn Error>> {
    plotters::style::register_font("sans-serif", FontStyle::Normal, dejavu::sans::regular())
        .map_err(|_| "the embedded DejaVu Sans font did not load")?;
    let root = BitMapBackend::new(path, (800, 480)).into_drawing_area();
    root.fill(&WHITE)?;
    let values = curve.iter().flat_map(|c| [c.1, c.2]);
    let lo = values.clone().fold(f64::INFINITY, f64::min);
    let hi = values.fold(f64::NEG_INFINITY, f64::max);
    let pad = ((hi - lo) * 0.1).max(1e-3);
    let last = curve.last().map_or(1, |c| c.0);
    let mut chart = ChartBuilder::on(&root)
        .caption("character-level GPT on Shakespeare", ("sans-serif", 24))
        .margin(15)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(0..last, (lo - pad)..(hi + pad))?;
    chart
        .configure_mesh()
        .x_desc("step")
        .y_desc("cross-entropy")
        .label_style(("sans-serif", 14))
        .draw()?;
    for (label, colour, pick) in [("training", BLUE, 1usize), ("validation", RED, 2usize)] {
        let points: Vec<(usize, f64)> = curve
            .iter()
            .map(|c| (c.0, if pick == 1 { c.1 } else { c.2 }))
            .collect();
        chart
            .draw_series(LineSeries::new(points.clone(), colour.stroke_width(2)))?
            .label(label)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], colour));
        chart.draw_series(
            points
                .into_iter()
                .map(|p| Circle::new(p, 3, colour.filled())),
        )?;
    }
    chart
        .configure_series_labels()
        .background_style(WHITE)
        .border_style(BLACK)
        .label_font(("sans-serif", 14))
        .draw()?;
    root.present()?;
    Ok(())
}
