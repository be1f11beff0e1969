//! The MNIST perceptron of `examples/`, in a `#![no_std]` crate: weights loaded from bytes,
//! digits classified with `forward_into` and a workspace kept by the caller.

#![no_std]

use nanograd::prelude::*;
use nanograd::rand::{rngs::StdRng, SeedableRng};

model! {
    /// Three-layer perceptron for 28x28 digits flattened to 784 pixels in [0, 1].
    pub struct Mlp {
        fc1: Dense(784 -> 128),
        fc2: Dense(128 -> 64),
        fc3: Dense(64 -> 10),
    }

    fn forward(x: [B, 784]) -> [B, 10] {
        let h = relu(fc1(x));
        let h: [B, 64] = relu(fc2(h));
        fc3(h)
    }
}

/// The weights `examples/mnist_mlp` trained (f32 safetensors).
pub const WEIGHTS: &[u8] = include_bytes!("../../../examples/weights/mnist_mlp.safetensors");

/// Three MNIST test digits as binary PGM files, and their labels.
pub const DIGITS: [(&[u8], usize); 3] = [
    (
        include_bytes!("../../../examples/images/t10k-0002-digit-0.pgm"),
        0,
    ),
    (
        include_bytes!("../../../examples/images/t10k-0011-digit-7.pgm"),
        7,
    ),
    (
        include_bytes!("../../../examples/images/t10k-0028-digit-3.pgm"),
        3,
    ),
];

/// The 784 pixels of a 28x28 binary PGM (its last 784 bytes) scaled to [0, 1].
pub fn pixels(pgm: &[u8]) -> Option<[f32; 784]> {
    let start = pgm.len().checked_sub(784)?;
    let bytes = &pgm[start..];
    Some(core::array::from_fn(|i| f32::from(bytes[i]) / 255.0))
}

/// The index of the largest of `logits`.
pub fn argmax(logits: &[f32; 10]) -> usize {
    let mut best = 0;
    for (i, &v) in logits.iter().enumerate() {
        if v > logits[best] {
            best = i;
        }
    }
    best
}

/// Loads [`WEIGHTS`] into a freshly initialised model and classifies [`DIGITS`] in one
/// batch with `forward_into` (and checks that `forward` agrees); returns the predicted
/// digits.
pub fn classify_digits() -> nanograd::Result<[usize; 3]> {
    let mut model = Mlp::<f32>::new(&mut StdRng::seed_from_u64(0));
    model.load_safetensors_bytes(WEIGHTS)?;
    model.set_training_mode(false);
    let mut batch = [[0.0f32; 784]; 3];
    for (row, (pgm, _)) in batch.iter_mut().zip(DIGITS) {
        *row = pixels(pgm).ok_or_else(|| nanograd::invalid("pixels", "PGM too short"))?;
    }
    let mut ws = Workspace::new();
    let mut logits = [[0.0f32; 10]; 3];
    model.forward_into(&batch, &mut logits, &mut ws)?;
    // the allocating form, on a fresh workspace per call without std, agrees
    let again = model.forward(&batch)?;
    if again.as_slice() != logits.as_slice() {
        return Err(nanograd::invalid("forward", "differs from forward_into"));
    }
    Ok(core::array::from_fn(|i| argmax(&logits[i])))
}
