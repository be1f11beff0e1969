//! [`Checkpoint`]: everything a training run needs to resume as if it had never stopped.
//!
//! A checkpoint holds
//! - the model's weights: parameters and buffers, as a safetensors file embedded whole
//!   (see [`SafetensorsExt`](super::SafetensorsExt));
//! - the model's own random stream ([`Module::rng`]: dropout masks), if it keeps one;
//! - the optimizer, configuration and state (moments, step count), through `serde`;
//! - the training loop's step count, a `u64` of the caller's choosing;
//! - the training loop's random stream (shuffling, augmentation): any `serde` type, such
//!   as [`WorkspaceRng`] (`rand_chacha::ChaCha8Rng`).
//!
//! Not saved: gradients (a step starts from zero gradients), the training mode, workspaces'
//! scratch memory. Resuming from a checkpoint taken between two steps gives bit-identical
//! results to never stopping (tests/checkpoint.rs checks the losses).
//!
//! The file, all lengths `u64` little-endian:
//!
//! ```text
//! NGCKPT01             magic and format version
//! n, weights           a safetensors file of n bytes
//! m, state             m bytes of CBOR (self-describing, floats exact to the bit): dtype,
//!                      step, model stream, optimizer, loop stream
//! checksum             FNV-1a 64 of everything between the magic and the checksum
//! ```
//!
//! A truncated or corrupted file is an error, never a silently wrong state; so is an
//! optimizer of another type than the one saved (CBOR names the fields). Saving is atomic
//! ([`write_atomic`]): a crash midway leaves the previous checkpoint intact. Loading decodes
//! and checks everything (checksum, dtype, every weight's name, shape and dtype, the dropout
//! stream, the optimizer) before it changes the model, the optimizer or the random stream: a
//! failed load changes none of them.
//!
//! ```
//! use nanograd_runtime::{io::Checkpoint, layers::Dense, Adam, Module, Optimizer, WorkspaceRng};
//! use nanograd_runtime::rand::{RngExt, SeedableRng};
//!
//! let mut model = Dense::<f64>::new(3, 2, &mut WorkspaceRng::seed_from_u64(0))?;
//! let mut opt = Adam::new(1e-2);
//! let mut rng = WorkspaceRng::seed_from_u64(7);
//! model.visit_params_mut(&mut |_, p| p.grad_mut().fill(0.5));
//! opt.step(&mut model)?;
//! let bytes = Checkpoint::to_bytes(&model, &opt, 1, &rng)?;
//!
//! let mut model2 = Dense::<f64>::new(3, 2, &mut WorkspaceRng::seed_from_u64(1))?;
//! let mut opt2 = Adam::new(1.0);
//! let mut rng2 = WorkspaceRng::seed_from_u64(0);
//! let step = Checkpoint::load_bytes(&bytes, &mut model2, &mut opt2, &mut rng2)?;
//! assert_eq!(step, 1);
//! assert_eq!(model2.weight.value(), model.weight.value());
//! assert_eq!((opt2.learning_rate(), opt2.step_count()), (1e-2, 1));
//! assert_eq!(rng2.random::<u64>(), rng.random::<u64>());
//! # Ok::<(), nanograd_runtime::Error>(())
//! ```

use std::path::Path;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::atomic::write_atomic;
use super::safetensors::{commit, stage, to_bytes};
use crate::{Error, Float, Module, Optimizer, Result, WorkspaceRng};

/// Magic bytes and format version at the start of every checkpoint.
const MAGIC: &[u8; 8] = b"NGCKPT01";

/// What an error about in-memory bytes names in place of a file path.
const BYTES_ORIGIN: &str = "checkpoint bytes";

/// Saving and restoring a training run: model weights, the model's dropout stream,
/// optimizer, step count and the training loop's random stream (see the
/// [module documentation](self) for the format and the guarantees).
#[derive(Debug, Clone, Copy)]
pub struct Checkpoint;

/// The state section as written, borrowing from the caller.
#[derive(Serialize)]
struct StateRef<'a, O, R> {
    dtype: &'a str,
    step: u64,
    model_rng: Option<&'a WorkspaceRng>,
    optimizer: &'a O,
    rng: &'a R,
}

/// The dtype of the state section, read before the rest.
#[derive(Deserialize)]
struct StateDtype {
    dtype: String,
}

/// The state section as read.
#[derive(Deserialize)]
struct State<O, R> {
    step: u64,
    model_rng: Option<WorkspaceRng>,
    optimizer: O,
    rng: R,
}

impl Checkpoint {
    /// Writes a checkpoint of `model`, `optimizer`, `step` and the training loop's random
    /// stream `rng` to `path`, atomically: on an error or a crash midway, the previous file
    /// at `path` is intact.
    pub fn save<T, M, O, R>(
        path: impl AsRef<Path>,
        model: &M,
        optimizer: &O,
        step: u64,
        rng: &R,
    ) -> Result<()>
    where
        T: Float,
        M: Module<T> + ?Sized,
        O: Optimizer<T> + Serialize,
        R: Serialize,
    {
        write_atomic(path, &Self::to_bytes(model, optimizer, step, rng)?)
    }

    /// The bytes [`Checkpoint::save`] writes.
    pub fn to_bytes<T, M, O, R>(model: &M, optimizer: &O, step: u64, rng: &R) -> Result<Vec<u8>>
    where
        T: Float,
        M: Module<T> + ?Sized,
        O: Optimizer<T> + Serialize,
        R: Serialize,
    {
        let weights = to_bytes(model)?;
        let state = StateRef {
            dtype: T::DTYPE,
            step,
            model_rng: model.rng(),
            optimizer,
            rng,
        };
        let mut encoded = Vec::new();
        ciborium::into_writer(&state, &mut encoded)
            .map_err(|e| crate::invalid("Checkpoint::save", e.to_string()))?;
        let mut bytes = Vec::with_capacity(weights.len() + encoded.len() + 32);
        bytes.extend_from_slice(MAGIC);
        for section in [&weights, &encoded] {
            bytes.extend_from_slice(&(section.len() as u64).to_le_bytes());
            bytes.extend_from_slice(section);
        }
        let checksum = fnv1a64(&bytes[MAGIC.len()..]);
        bytes.extend_from_slice(&checksum.to_le_bytes());
        Ok(bytes)
    }

    /// Restores a checkpoint from `path` into `model`, `optimizer` (replaced whole:
    /// configuration, state and step count) and `rng`, and returns the saved step count.
    /// Everything is checked first: on error, none of the three is changed.
    pub fn load<T, M, O, R>(
        path: impl AsRef<Path>,
        model: &mut M,
        optimizer: &mut O,
        rng: &mut R,
    ) -> Result<u64>
    where
        T: Float,
        M: Module<T> + ?Sized,
        O: Optimizer<T> + DeserializeOwned,
        R: DeserializeOwned,
    {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })?;
        load_from(&bytes, path, model, optimizer, rng)
    }

    /// [`Checkpoint::load`] from the bytes of a checkpoint file.
    pub fn load_bytes<T, M, O, R>(
        bytes: &[u8],
        model: &mut M,
        optimizer: &mut O,
        rng: &mut R,
    ) -> Result<u64>
    where
        T: Float,
        M: Module<T> + ?Sized,
        O: Optimizer<T> + DeserializeOwned,
        R: DeserializeOwned,
    {
        load_from(bytes, Path::new(BYTES_ORIGIN), model, optimizer, rng)
    }
}

fn load_from<T, M, O, R>(
    bytes: &[u8],
    origin: &Path,
    model: &mut M,
    optimizer: &mut O,
    rng: &mut R,
) -> Result<u64>
where
    T: Float,
    M: Module<T> + ?Sized,
    O: Optimizer<T> + DeserializeOwned,
    R: DeserializeOwned,
{
    let format_error = |msg: String| Error::Format {
        path: origin.to_path_buf(),
        msg,
    };
    let (weights, state) = unframe(bytes).map_err(format_error)?;
    // the dtype first (its own message, not a decoding error), then everything
    let decode_error = |e: ciborium::de::Error<std::io::Error>| {
        format_error(format!(
            "cannot decode the checkpoint's state: {}",
            cbor_error(e)
        ))
    };
    let head: StateDtype = ciborium::from_reader(state).map_err(decode_error)?;
    if head.dtype != T::DTYPE {
        return Err(format_error(format!(
            "the checkpoint holds {} weights but the model is {}",
            head.dtype,
            T::DTYPE
        )));
    }
    let state: State<O, R> = ciborium::from_reader(state).map_err(decode_error)?;
    let staged = stage(model, weights).map_err(|msg| format_error(format!("weights: {msg}")))?;
    match (&state.model_rng, model.rng().is_some()) {
        (Some(_), false) => {
            return Err(format_error(
                "the checkpoint holds a dropout stream but the model keeps none".to_string(),
            ))
        }
        (None, true) => {
            return Err(format_error(
                "the model keeps a dropout stream but the checkpoint holds none".to_string(),
            ))
        }
        _ => {}
    }
    // everything is checked: from here on nothing fails
    commit(model, staged);
    if let (Some(saved), Some(stream)) = (state.model_rng, model.rng_mut()) {
        *stream = saved;
    }
    *optimizer = state.optimizer;
    *rng = state.rng;
    Ok(state.step)
}

/// A CBOR decoding error in words.
fn cbor_error(e: ciborium::de::Error<std::io::Error>) -> String {
    use ciborium::de::Error as E;
    match e {
        E::Semantic(_, msg) => msg,
        E::Syntax(at) => format!("malformed CBOR at byte {at}"),
        E::Io(e) => e.to_string(),
        E::RecursionLimitExceeded => "nested too deeply".to_string(),
    }
}

/// The weights and state sections of a checkpoint file, after checking magic, lengths
/// and checksum.
fn unframe(bytes: &[u8]) -> std::result::Result<(&[u8], &[u8]), String> {
    let magic = bytes.get(..8);
    if magic != Some(MAGIC.as_slice()) {
        return Err(match magic {
            Some(m) if m.starts_with(b"NGCKPT") => format!(
                "checkpoint format `{}` is not the supported `{}`",
                String::from_utf8_lossy(m),
                String::from_utf8_lossy(MAGIC)
            ),
            _ => "not a nanograd checkpoint (it does not start with `NGCKPT01`)".to_string(),
        });
    }
    let (weights, rest) = section(&bytes[8..], "weights")?;
    let (state, rest) = section(rest, "state")?;
    let Ok(stored) = <[u8; 8]>::try_from(rest) else {
        return Err(format!(
            "the checkpoint ends with {} bytes where its 8-byte checksum belongs",
            rest.len()
        ));
    };
    let (stored, actual) = (
        u64::from_le_bytes(stored),
        fnv1a64(&bytes[8..bytes.len() - 8]),
    );
    if stored != actual {
        return Err(format!(
            "the checkpoint is corrupt: its checksum is {actual:016x} but {stored:016x} is stored"
        ));
    }
    Ok((weights, state))
}

/// A length-prefixed section at the start of `bytes`, and what follows it.
fn section<'a>(bytes: &'a [u8], name: &str) -> std::result::Result<(&'a [u8], &'a [u8]), String> {
    let Some((len, rest)) = bytes.split_first_chunk::<8>() else {
        return Err(format!(
            "the checkpoint is truncated before the length of its {name}"
        ));
    };
    let len = u64::from_le_bytes(*len);
    if len > rest.len() as u64 {
        return Err(format!(
            "the checkpoint is truncated or corrupt: it announces {len} bytes of {name} but only {} follow",
            rest.len()
        ));
    }
    Ok(rest.split_at(len as usize))
}

/// The 64-bit FNV-1a hash: a checksum against truncation and corruption (not tampering).
fn fnv1a64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// FNV-1a's published test vectors.
    #[test]
    fn fnv1a64_known_values() {
        assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a64(b"foobar"), 0x85944171f73967e8);
    }

    #[test]
    fn frame_errors_say_what_is_wrong() {
        // magic, weights "ab" (length 2), state "xyz" (length 3), checksum
        let mut ok = MAGIC.to_vec();
        ok.extend_from_slice(&2u64.to_le_bytes());
        ok.extend_from_slice(b"ab");
        ok.extend_from_slice(&3u64.to_le_bytes());
        ok.extend_from_slice(b"xyz");
        let sum = fnv1a64(&ok[8..]);
        ok.extend_from_slice(&sum.to_le_bytes());
        assert_eq!(ok.len(), 8 + 8 + 2 + 8 + 3 + 8);
        assert_eq!(unframe(&ok).unwrap(), (&b"ab"[..], &b"xyz"[..]));

        let err = |b: &[u8]| unframe(b).unwrap_err();
        assert!(err(b"PK\x03\x04").starts_with("not a nanograd checkpoint"));
        assert!(err(b"NGCKPT99xxxxxxxx").contains("`NGCKPT99` is not the supported `NGCKPT01`"));
        assert_eq!(
            err(&ok[..12]),
            "the checkpoint is truncated before the length of its weights"
        );
        assert_eq!(
            err(&ok[..17]),
            "the checkpoint is truncated or corrupt: it announces 2 bytes of weights but only 1 follow"
        );
        assert_eq!(
            err(&ok[..28]),
            "the checkpoint is truncated or corrupt: it announces 3 bytes of state but only 2 follow"
        );
        assert_eq!(
            err(&ok[..ok.len() - 1]),
            "the checkpoint ends with 7 bytes where its 8-byte checksum belongs"
        );
        let mut long = ok.clone();
        long.push(0);
        assert_eq!(
            err(&long),
            "the checkpoint ends with 9 bytes where its 8-byte checksum belongs"
        );
        let mut flipped = ok.clone();
        flipped[16] ^= 1; // "ab" -> "`b"
        assert!(err(&flipped).starts_with("the checkpoint is corrupt: its checksum is"));
    }
}
