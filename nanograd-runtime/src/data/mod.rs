//! Data sets and mini-batches.
//!
//! - [`idx`]: the IDX format of MNIST and Fashion-MNIST, gzipped or not ([`read_idx`],
//!   [`parse_idx`]).

pub mod idx;

pub use idx::{parse_idx, read_idx, IdxArray};
