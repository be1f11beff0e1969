//! Weights and training state on disk.
//!
//! - [`SafetensorsExt`]: `model.save_safetensors(path)`, `model.load_safetensors(path)` and
//!   their in-memory forms, for every [`Module`](crate::Module): PyTorch's names and
//!   layouts, `F32` or `F64`, all-or-nothing loading with errors naming the tensors;
//! - [`Checkpoint`]: weights, the model's dropout stream, optimizer state, step count and
//!   the training loop's random stream, so that a resumed run is bit-identical to one that
//!   never stopped;
//! - [`write_atomic`]: the atomic file replacement both use (temporary file, `fsync`,
//!   rename, `fsync` of the directory).

#[cfg(feature = "std")]
pub mod atomic;
#[cfg(feature = "std")]
pub mod checkpoint;
pub mod safetensors;

pub use self::safetensors::SafetensorsExt;
#[cfg(feature = "std")]
pub use atomic::{write_atomic, write_atomic_with};
#[cfg(feature = "std")]
pub use checkpoint::Checkpoint;
