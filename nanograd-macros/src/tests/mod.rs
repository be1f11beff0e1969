//! Tests of the expansion function used as a library: it never panics, whatever it is fed,
//! and its output for a small model is pinned by a snapshot.

mod robustness;
mod snapshot;
