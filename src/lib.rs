//! nanograd: neural networks declared in Rust source, with shapes checked while compiling.
//!
//! This facade re-exports the `model!` macro and the runtime it generates calls to.

pub use nanograd_macros::model;
pub use nanograd_runtime::*;

/// What a model file needs: `use nanograd::prelude::*;`.
pub mod prelude {
    pub use nanograd_macros::model;
    pub use nanograd_runtime::optim::LrSchedule;
    pub use nanograd_runtime::{
        Adam, AdamW, Error, Float, Module, Optimizer, Param, Result, RmsProp, SafetensorsExt, Sgd,
        Tensor, Workspace,
    };
}
