//! nanograd: neural networks declared in Rust source, with shapes checked while compiling.
//!
//! The [`model!`] macro reads layers and tensor expressions, checks every shape while the
//! program compiles, and generates straight-line forward and backward code over the runtime
//! re-exported here: [`ops`] (one kernel per op), [`layers`], [`optim`], [`blas`], [`data`],
//! [`io`].
//!
//! The default feature `std` brings files, checkpoints, `data`, the BLAS providers and the
//! per-thread workspaces of the allocating methods; without it (`default-features = false`)
//! the crate is `#![no_std]` with `alloc`, and models, kernels, optimizers and
//! `load_safetensors_bytes` work as they do with it (see the README's "no_std" section).
//!
//! ```
//! use nanograd::prelude::*;
//! use nanograd::rand::{rngs::StdRng, SeedableRng};
//!
//! model! {
//!     /// A two-layer perceptron.
//!     pub struct Mlp {
//!         fc1: Dense(4 -> 8),
//!         fc2: Dense(8 -> 3),
//!     }
//!     fn forward(x: [B, 4]) -> [B, 3] {
//!         fc2(relu(fc1(x)))
//!     }
//!     fn loss(x: [B, 4], target: [B, 3]) -> [] {
//!         softmax_cross_entropy(forward(x), target)
//!     }
//! }
//!
//! # fn main() -> nanograd::Result<()> {
//! let mut model = Mlp::<f64>::new(&mut StdRng::seed_from_u64(0));
//! let x = [[0.5, -1.0, 2.0, 0.0], [1.0, 0.0, 0.0, 1.0]];
//! let target = [[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]];
//! let mut opt = Adam::new(0.05);
//! let first = model.loss(&x, &target)?;
//! for _ in 0..20 {
//!     model.zero_grad();
//!     model.loss_backward(&x, &target)?;
//!     opt.step(&mut model)?;
//! }
//! assert!(model.loss(&x, &target)? < first);
//! let logits: Vec<[f64; 3]> = model.forward(&x)?;
//! assert_eq!(logits.len(), 2);
//! # Ok(())
//! # }
//! ```
//!
//! A model without a struct is a set of differentiable functions:
//!
//! ```
//! use nanograd::prelude::*;
//!
//! model! {
//!     pub fn energy(x: [3], y: [3]) -> [] {
//!         let z = x + y;
//!         dot(z, z)
//!     }
//! }
//!
//! // z = [5, 7, 9]; z.z = 155; the gradient of z.z is 2z for both inputs
//! let (value, gx, gy) = energy_grad(&[1.0f64, 2.0, 3.0], &[4.0, 5.0, 6.0]);
//! assert_eq!(value, 155.0);
//! assert_eq!(gx, [10.0, 14.0, 18.0]);
//! assert_eq!(gy, gx);
//! ```
//!
//! A shape mistake does not compile:
//!
//! ```compile_fail
//! use nanograd::prelude::*;
//!
//! model! {
//!     pub struct Mlp {
//!         fc1: Dense(784 -> 64),
//!         fc2: Dense(128 -> 10), // error: dense `fc2` expects [B, 128] but `h` is [B, 64]
//!     }
//!     fn forward(x: [B, 784]) -> [B, 10] {
//!         let h = relu(fc1(x));
//!         fc2(h)
//!     }
//! }
//! # fn main() {}
//! ```

#![cfg_attr(not(feature = "std"), no_std)]
#![warn(missing_docs)]

/// Declares a model: layers, and fns of tensor expressions whose shapes are checked while
/// compiling. See the crate documentation and the README for the language.
pub use nanograd_macros::model;
pub use nanograd_runtime::*;

/// What a model file needs: `use nanograd::prelude::*;`.
pub mod prelude {
    pub use nanograd_macros::model;
    pub use nanograd_runtime::io::SafetensorsExt;
    pub use nanograd_runtime::optim::LrSchedule;
    pub use nanograd_runtime::quant::QuantizedSafetensors;
    pub use nanograd_runtime::{
        Adam, AdamW, Error, Float, Module, Optimizer, Param, Result, RmsProp, Sgd, Tensor,
        Workspace,
    };
}
