//! What the two MNIST training examples share: where the data and the outputs live, a
//! progress bar per epoch, and counting correct predictions.

use std::path::PathBuf;

use indicatif::{ProgressBar, ProgressStyle};

/// The MNIST folder: the first command-line argument, else the repository's `data/mnist-10k`.
pub fn data_dir() -> PathBuf {
    match std::env::args_os().nth(1) {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("data/mnist-10k"),
    }
}

/// The repository's `target/` folder (created if missing), where the examples write.
pub fn output_dir() -> std::io::Result<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target");
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// The index of the largest value (the first one on ties).
pub fn argmax(row: &[f32]) -> usize {
    let mut best = 0;
    for (i, &v) in row.iter().enumerate() {
        if v > row[best] {
            best = i;
        }
    }
    best
}

/// How many rows of `logits` have their largest value at the row's label.
pub fn count_correct<const N: usize>(logits: &[[f32; N]], labels: &[u8]) -> usize {
    logits
        .iter()
        .zip(labels)
        .filter(|(row, &label)| argmax(&row[..]) == usize::from(label))
        .count()
}

/// A progress bar over the batches of one epoch, showing the mean loss and the running
/// accuracy so far (drawn on stderr, and only when it is a terminal).
pub struct EpochBar(ProgressBar);

impl EpochBar {
    /// A bar for epoch `epoch` of `epochs`, `batches` steps long.
    pub fn new(epoch: usize, epochs: usize, batches: usize) -> Self {
        let bar = ProgressBar::new(batches as u64);
        bar.set_style(
            ProgressStyle::with_template(
                "{prefix} [{bar:32.cyan/blue}] {pos:>4}/{len} {msg} ({elapsed_precise})",
            )
            .expect("a valid template")
            .progress_chars("=> "),
        );
        bar.set_prefix(format!("epoch {epoch:2}/{epochs}"));
        EpochBar(bar)
    }

    /// One batch done; `loss` and `accuracy` (if the caller tracks it) are the epoch's means
    /// so far.
    pub fn step(&self, loss: f64, accuracy: Option<f64>) {
        self.0.inc(1);
        if self.0.is_hidden() {
            return;
        }
        self.0.set_message(match accuracy {
            Some(a) => format!("loss {loss:.4}  acc {:5.2}%", 100.0 * a),
            None => format!("loss {loss:.4}"),
        });
    }

    /// Clears the bar (the caller prints the epoch's line).
    pub fn finish(self) {
        self.0.finish_and_clear();
    }
}
