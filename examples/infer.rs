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
//! Run: `cargo run --release --example infer -- examples/images/*.pgm`, or
//! `cargo run --release --example infer -- --weights target/mnist_mlp.safetensors
//! data/mnist-10k/t10k-images-idx3-ubyte.gz`.

#[path = "shared/classify.rs"]
mod classify;
#[path = "shared/mlp.rs"]
mod mlp;

use std::alloc::{GlobalAlloc, Layout, System};
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::time::{Duration, Instant};

use classify::{read_images, Classifier, Pixels, EMBEDDED_WEIGHTS};

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

const USAGE: &str = "usage: infer [--weights FILE.safetensors] IMAGE_FILE...
  IMAGE_FILE: a binary PGM (P5) of 28x28 pixels, or an IDX file of [n, 28, 28] bytes
  (gzipped or not); every image of every file is classified.
  --weights: the MNIST perceptron's weights (default: the ones compiled in).";

/// The command line: where the weights come from and which files to read.
struct Args {
    weights: Option<PathBuf>,
    files: Vec<PathBuf>,
}

fn parse_args() -> Result<Args, String> {
    let mut args = std::env::args_os().skip(1);
    let mut parsed = Args {
        weights: None,
        files: Vec::new(),
    };
    while let Some(arg) = args.next() {
        match arg.to_str() {
            Some("-h" | "--help") => return Err(String::new()),
            Some("--weights") => match args.next() {
                Some(path) => parsed.weights = Some(PathBuf::from(path)),
                None => return Err("--weights needs a file".to_string()),
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
    let mut classifier = match &args.weights {
        Some(path) => Classifier::from_file(path)?,
        None => Classifier::new(EMBEDDED_WEIGHTS)?,
    };
    let inputs: Vec<(&PathBuf, Vec<Pixels>)> = args
        .files
        .iter()
        .map(|path| Ok((path, read_images(path)?)))
        .collect::<nanograd::Result<_>>()?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "file\timage\tlabel\tprobability")?;
    out.flush()?;

    // per image: classify, print; no allocation
    let allocations_before = ALLOCATIONS.load(Relaxed);
    let (mut images, mut time) = (0u32, Duration::ZERO);
    for (path, pixels) in &inputs {
        for (i, image) in pixels.iter().enumerate() {
            let start = Instant::now();
            let p = classifier.classify(image)?;
            time += start.elapsed();
            images += 1;
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
        "{images} images, mean latency {:.2} us per image, {allocations} allocations while classifying",
        1e6 * time.as_secs_f64() / f64::from(images.max(1))
    )?;
    Ok(())
}
