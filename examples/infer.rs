//! A production-style inference binary: the MNIST perceptron declared with `model!`, its
//! weights compiled in (`examples/weights/mnist_mlp.safetensors`, written by `mnist_mlp`) or
//! read from `--weights PATH`, classifying every image of the files on its command line
//! (binary PGM `P5` 28x28, or IDX image files such as MNIST's, gzipped or not). Prints the
//! digit and its probability per image, then the mean latency per image.
//!
//! After start-up nothing is allocated per image: the model's workspace and output buffer
//! are created once and reused, and stdout is written through one locked handle. A counting
//! global allocator checks it: the last line reports the allocations made while classifying.
//!
//! With `--threads N`, N threads share the one model (generated models are `Send + Sync`),
//! each with its own workspace, classify equal shares of the images, and the last line gives
//! the images per second; the per-image lines are the same as with one thread.
//!
//! With `--int8`, the perceptron is quantized at start-up (`Mlp::quantize_int8`: int8 dense
//! weights, one scale per output neuron, activations quantized per image on each call) and
//! classifies with those; `--save-int8 FILE` writes the int8 weights as safetensors and
//! prints both files' sizes, and `--int8-weights FILE` reads such a file instead. Where the
//! true labels are known (an IDX image file with its labels file beside it, such as MNIST's
//! `t10k-labels-idx1-ubyte.gz`, or a PGM named `..-digit-N.pgm`) the last lines give the
//! accuracy too.
//!
//! Run: `cargo run --release --example infer -- examples/images/*.pgm`, or
//! `cargo run --release --example infer -- --weights target/mnist_mlp.safetensors
//! data/mnist-10k/t10k-images-idx3-ubyte.gz`, or with `--threads 2` before the files, or
//! `cargo run --release --example infer -- --int8 data/mnist-10k/t10k-images-idx3-ubyte.gz`.

#[path = "shared/classify.rs"]
mod classify;
#[path = "shared/mlp.rs"]
mod mlp;

use std::alloc::{GlobalAlloc, Layout, System};
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::time::{Duration, Instant};

use classify::{read_images, Classifier, Model, Pixels, Prediction, Session, EMBEDDED_WEIGHTS};
use nanograd::prelude::QuantizedSafetensors;

/// The system allocator, counting allocations.
struct CountingAlloc;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Relaxed);
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Relaxed);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: CountingAlloc = CountingAlloc;

const USAGE: &str = "usage: infer [--weights FILE.safetensors] [--threads N] [--int8]
             [--save-int8 FILE] [--int8-weights FILE] IMAGE_FILE...
  IMAGE_FILE: a binary PGM (P5) of 28x28 pixels, or an IDX file of [n, 28, 28] bytes
  (gzipped or not); every image of every file is classified.
  --weights: the MNIST perceptron's weights (default: the ones compiled in).
  --threads: classify on N threads sharing one model (default 1), and report images/s.
  --int8: quantize the perceptron to int8 at start-up and classify with it.
  --save-int8: write the int8 weights to FILE (implies --int8) and print the file sizes.
  --int8-weights: classify with the int8 weights of FILE (written by --save-int8).";

/// The command line: where the weights come from, how many threads, which files to read.
struct Args {
    weights: Option<PathBuf>,
    threads: usize,
    int8: bool,
    save_int8: Option<PathBuf>,
    int8_weights: Option<PathBuf>,
    files: Vec<PathBuf>,
}

fn parse_args() -> Result<Args, String> {
    let mut args = std::env::args_os().skip(1);
    let mut parsed = Args {
        weights: None,
        threads: 1,
        int8: false,
        save_int8: None,
        int8_weights: None,
        files: Vec::new(),
    };
    while let Some(arg) = args.next() {
        match arg.to_str() {
            Some("-h" | "--help") => return Err(String::new()),
            Some("--weights") => match args.next() {
                Some(path) => parsed.weights = Some(PathBuf::from(path)),
                None => return Err("--weights needs a file".to_string()),
            },
            Some("--int8") => parsed.int8 = true,
            Some("--save-int8") => match args.next() {
                Some(path) => (parsed.int8, parsed.save_int8) = (true, Some(PathBuf::from(path))),
                None => return Err("--save-int8 needs a file".to_string()),
            },
            Some("--int8-weights") => match args.next() {
                Some(path) => {
                    (parsed.int8, parsed.int8_weights) = (true, Some(PathBuf::from(path)))
                }
                None => return Err("--int8-weights needs a file".to_string()),
            },
            Some("--threads") => match args.next().and_then(|n| n.to_str()?.parse().ok()) {
                Some(n) if n >= 1 => parsed.threads = n,
                _ => return Err("--threads needs a number of threads, at least 1".to_string()),
            },
            Some(flag) if flag.starts_with('-') && flag.len() > 1 => {
                return Err(format!("unknown option `{flag}`"))
            }
            _ => parsed.files.push(PathBuf::from(arg)),
        }
    }
    if parsed.files.is_empty() {
        return Err("no image file given".to_string());
    }
    Ok(parsed)
}

fn main() {
    let args = match parse_args() {
        Ok(args) => args,
        Err(msg) if msg.is_empty() => {
            println!("{USAGE}");
            return;
        }
        Err(msg) => {
            eprintln!("error: {msg}\n{USAGE}");
            std::process::exit(2);
        }
    };
    if let Err(e) = run(&args) {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

fn run(args: &Args) -> Result<(), Box<dyn std::error::Error>> {
    // start-up: the model, its buffers, and every input file, read and checked up front
    let mut classifier = match (&args.int8_weights, &args.weights) {
        (Some(path), _) => Classifier::from_int8_file(path)?,
        (None, Some(path)) => Classifier::from_file(path)?,
        (None, None) => Classifier::new(EMBEDDED_WEIGHTS)?,
    };
    if args.int8 {
        classifier = classifier.quantized()?;
    }
    if let (Some(path), Model::Int8(q)) = (&args.save_int8, classifier.model()) {
        q.save_safetensors(path)?;
        let float = match &args.weights {
            Some(w) => std::fs::metadata(w)?.len(),
            None => EMBEDDED_WEIGHTS.len() as u64,
        };
        let int8 = std::fs::metadata(path)?.len();
        eprintln!(
            "wrote {}: {int8} bytes, {:.1} % of the float32 weights' {float} bytes",
            path.display(),
            100.0 * int8 as f64 / float as f64
        );
    }
    let labels: Vec<Option<Vec<usize>>> = args.files.iter().map(|p| known_labels(p)).collect();
    let inputs: Vec<(&PathBuf, Vec<Pixels>)> = args
        .files
        .iter()
        .map(|path| Ok((path, read_images(path)?)))
        .collect::<nanograd::Result<_>>()?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "file\timage\tlabel\tprobability")?;
    out.flush()?;

    if args.threads > 1 {
        return run_threads(&classifier, &inputs, args.threads, &mut out);
    }
    let precision = match classifier.model() {
        Model::F32(_) => "float32",
        Model::Int8(_) => "int8",
    };

    // per image: classify, print; no allocation
    let allocations_before = ALLOCATIONS.load(Relaxed);
    let (mut images, mut time) = (0u32, Duration::ZERO);
    let (mut labelled, mut correct) = (0usize, 0usize);
    for ((path, pixels), labels) in inputs.iter().zip(&labels) {
        for (i, image) in pixels.iter().enumerate() {
            let start = Instant::now();
            let p = classifier.classify(image)?;
            time += start.elapsed();
            images += 1;
            if let Some(&label) = labels.as_ref().and_then(|l| l.get(i)) {
                labelled += 1;
                correct += usize::from(p.label == label);
            }
            writeln!(
                out,
                "{}\t{i}\t{}\t{:.4}",
                path.display(),
                p.label,
                p.probability
            )?;
        }
    }
    out.flush()?;
    let allocations = ALLOCATIONS.load(Relaxed) - allocations_before;
    writeln!(
        out,
        "{images} images, mean latency {:.2} us per image ({precision}), {allocations} allocations while classifying",
        1e6 * time.as_secs_f64() / f64::from(images.max(1))
    )?;
    if labelled > 0 {
        writeln!(
            out,
            "accuracy {:.2} % ({correct} of {labelled} labelled images, {precision})",
            100.0 * correct as f64 / labelled as f64
        )?;
    }
    Ok(())
}

/// The true labels of the images of `path`, where they are known: an IDX image file with
/// its labels file beside it (`..-images-idx3-ubyte[.gz]` and `..-labels-idx1-ubyte[.gz]`),
/// or a PGM named `..-digit-N.pgm`.
fn known_labels(path: &std::path::Path) -> Option<Vec<usize>> {
    let name = path.file_name()?.to_str()?;
    if let Some(digit) = name
        .strip_suffix(".pgm")
        .and_then(|n| n.rsplit_once("-digit-"))
    {
        return digit.1.parse().ok().map(|d| vec![d]);
    }
    let labels = path.with_file_name(name.replacen("images-idx3", "labels-idx1", 1));
    if labels == path {
        return None;
    }
    let idx = nanograd::data::read_idx(labels).ok()?;
    Some(idx.data().iter().map(|&b| usize::from(b)).collect())
}

/// `--threads N`: every image classified by N threads sharing `classifier`'s model, each
/// with a [`Session`] of its own over a contiguous share of the images; then the same lines
/// as one thread prints, and the throughput of the parallel part.
fn run_threads(
    classifier: &Classifier,
    inputs: &[(&PathBuf, Vec<Pixels>)],
    threads: usize,
    out: &mut impl Write,
) -> Result<(), Box<dyn std::error::Error>> {
    let images: Vec<&Pixels> = inputs.iter().flat_map(|(_, p)| p.iter()).collect();
    let share = images.len().div_ceil(threads).max(1);
    let model = classifier.model();
    // sessions first (each grows and packs its workspace), so the timing is steady state
    let mut sessions = (0..threads)
        .map(|_| Session::new(model))
        .collect::<nanograd::Result<Vec<_>>>()?;
    let start = Instant::now();
    let results: Vec<nanograd::Result<Vec<Prediction>>> = std::thread::scope(|s| {
        let handles: Vec<_> = sessions
            .iter_mut()
            .zip(images.chunks(share))
            .map(|(session, chunk)| {
                s.spawn(move || chunk.iter().map(|x| session.classify(x)).collect())
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("a classifying thread panicked"))
            .collect()
    });
    let elapsed = start.elapsed();
    let mut predictions = Vec::with_capacity(images.len());
    for r in results {
        predictions.extend(r?);
    }
    let mut next = predictions.iter();
    for (path, pixels) in inputs {
        for (i, p) in (0..pixels.len()).zip(&mut next) {
            writeln!(
                out,
                "{}\t{i}\t{}\t{:.4}",
                path.display(),
                p.label,
                p.probability
            )?;
        }
    }
    writeln!(
        out,
        "{} images on {threads} threads sharing one model: {:.2} ms, {:.0} images per second",
        images.len(),
        1e3 * elapsed.as_secs_f64(),
        images.len() as f64 / elapsed.as_secs_f64().max(1e-9)
    )?;
    out.flush()?;
    Ok(())
}
