//! Data sets and mini-batches.
//!
//! - [`idx`]: the IDX format of MNIST and Fashion-MNIST, gzipped or not ([`read_idx`],
//!   [`parse_idx`]);
//! - [`Mnist`]: the four standard files of a folder, checked, pixels scaled to `[0, 1]`;
//! - [`Batches`]: shuffled mini-batches from a seeded RNG, and [`gather`] to copy a batch's rows
//!   into a caller's buffer;
//! - [`one_hot`], [`one_hot_into`]: targets for losses that take probabilities.
//!
//! ```
//! use nanograd_runtime::data::{gather, one_hot_into, Batches, Mnist, IMAGE_SIZE, NUM_CLASSES};
//! use nanograd_runtime::rand::{rngs::StdRng, SeedableRng};
//! # let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../data/mnist-10k");
//!
//! let mnist = Mnist::load(dir)?; // e.g. "data/mnist-10k"
//! let mut rng = StdRng::seed_from_u64(0);
//! let mut batches = Batches::new(mnist.train_images.len(), 64)?;
//! let mut x = vec![[0.0f32; IMAGE_SIZE]; 64];
//! let (mut labels, mut y) = (vec![0u8; 64], vec![[0.0f32; NUM_CLASSES]; 64]);
//! for idx in batches.epoch(&mut rng) {
//!     let b = idx.len();
//!     gather(&mnist.train_images, idx, &mut x[..b])?;
//!     gather(&mnist.train_labels, idx, &mut labels[..b])?;
//!     one_hot_into(&labels[..b], &mut y[..b])?;
//!     // model.loss_backward(&x[..b], &y[..b])?; opt.step(&mut model)?;
//! }
//! # Ok::<(), nanograd_runtime::Error>(())
//! ```

mod batches;
pub mod idx;
mod mnist;
mod one_hot;

pub use batches::{gather, Batches};
pub use idx::{parse_idx, read_idx, IdxArray};
pub use mnist::{
    Mnist, IMAGE_SIDE, IMAGE_SIZE, NUM_CLASSES, TEST_IMAGES, TEST_LABELS, TRAIN_IMAGES,
    TRAIN_LABELS,
};
pub use one_hot::{one_hot, one_hot_into};
