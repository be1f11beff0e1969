//! The one error type of the runtime. Every message names what was expected and what was found.

use alloc::string::{String, ToString};
use alloc::vec::Vec;

/// What a [`Error::Format`] names as the origin of bad data: a file path with `std`, a
/// description of in-memory bytes (`"safetensors bytes"`) without it.
#[cfg(feature = "std")]
pub type Origin = std::path::Path;
/// What a [`Error::Format`] names as the origin of bad data: a file path with `std`, a
/// description of in-memory bytes (`"safetensors bytes"`) without it.
#[cfg(not(feature = "std"))]
pub type Origin = str;

/// The owned [`Origin`]: `PathBuf` with `std`, `String` without.
pub type OriginBuf = <Origin as alloc::borrow::ToOwned>::Owned;

/// An [`Origin`] that names in-memory bytes, e.g. `"safetensors bytes"`.
pub(crate) fn bytes_origin(what: &'static str) -> &'static Origin {
    #[cfg(feature = "std")]
    return std::path::Path::new(what);
    #[cfg(not(feature = "std"))]
    return what;
}

/// An [`Origin`] for an error message.
fn shown(origin: &Origin) -> impl core::fmt::Display + '_ {
    #[cfg(feature = "std")]
    return origin.display();
    #[cfg(not(feature = "std"))]
    return origin;
}

/// `Result` with [`Error`] as the default error.
pub type Result<T, E = Error> = core::result::Result<T, E>;

/// Everything a user can get wrong at run time.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Two shapes that must agree do not: `shape mismatch in dense: expected [_, 784], got [_, 783]`.
    #[error("shape mismatch in {op}: expected {expected}, got {got}")]
    ShapeMismatch {
        /// The op or layer that checked.
        op: &'static str,
        /// The shape it needs.
        expected: String,
        /// The shape it was given.
        got: String,
    },
    /// A buffer does not have the number of elements its shape implies.
    #[error("length mismatch in {op}: `{what}` has {got} elements, expected {expected}")]
    LengthMismatch {
        /// The op that checked.
        op: &'static str,
        /// The buffer.
        what: &'static str,
        /// The element count its shape implies.
        expected: usize,
        /// The element count it has.
        got: usize,
    },
    /// Two arguments of a generated method disagree on the batch size.
    #[error("batch size mismatch in {op}: `{what}` has {got} rows, expected {expected}")]
    BatchMismatch {
        /// The generated method, `Mlp::loss`.
        op: &'static str,
        /// The argument whose batch differs.
        what: &'static str,
        /// The batch size of the first batched argument.
        expected: usize,
        /// The batch size of this one.
        got: usize,
    },
    /// An argument outside its domain (a negative learning rate, a zero stride, ...).
    #[error("invalid argument to {op}: {msg}")]
    InvalidArgument {
        /// The op or component that checked.
        op: &'static str,
        /// What is wrong, with the values involved.
        msg: String,
    },
    /// A NaN or infinity where a guard was asked for.
    #[error("non-finite value in {what}")]
    NonFinite {
        /// Where: a parameter name and index.
        what: String,
    },
    /// A file could not be read or written.
    #[cfg(feature = "std")]
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: std::path::PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// A file (or bytes) was read but its contents are wrong (bad magic number, truncated,
    /// ...).
    #[error("{}: {msg}", shown(path))]
    Format {
        /// The file, or what the bytes were (see [`Origin`]).
        path: OriginBuf,
        /// What is wrong with its contents.
        msg: String,
    },
}

/// Formats a shape as `[2, 3]`; a `None` dimension (the batch) prints as `_`.
pub fn fmt_shape(dims: &[usize]) -> String {
    let inner: Vec<String> = dims.iter().map(|d| d.to_string()).collect();
    format!("[{}]", inner.join(", "))
}

/// Checks that a buffer has exactly `expected` elements.
#[inline]
pub fn check_len(op: &'static str, what: &'static str, expected: usize, got: usize) -> Result<()> {
    if expected == got {
        Ok(())
    } else {
        Err(Error::LengthMismatch {
            op,
            what,
            expected,
            got,
        })
    }
}

/// Checks that two shapes are equal.
#[inline]
pub fn check_shape(op: &'static str, expected: &[usize], got: &[usize]) -> Result<()> {
    if expected == got {
        Ok(())
    } else {
        Err(Error::ShapeMismatch {
            op,
            expected: fmt_shape(expected),
            got: fmt_shape(got),
        })
    }
}

/// An [`Error::InvalidArgument`].
pub fn invalid(op: &'static str, msg: impl Into<String>) -> Error {
    Error::InvalidArgument {
        op,
        msg: msg.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_both_sides() {
        let e = check_shape("dense", &[2, 784], &[2, 783]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "shape mismatch in dense: expected [2, 784], got [2, 783]"
        );
        let e = check_len("relu", "y", 6, 5).unwrap_err();
        assert_eq!(
            e.to_string(),
            "length mismatch in relu: `y` has 5 elements, expected 6"
        );
        assert!(check_len("relu", "y", 6, 6).is_ok());
    }
}
