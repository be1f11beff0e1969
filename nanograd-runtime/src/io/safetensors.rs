//! [`SafetensorsExt`]: a model's weights as a [safetensors] file, with PyTorch's names and
//! layouts, so that a `state_dict` saved from PyTorch loads unchanged and ours loads in
//! PyTorch (`model.load_state_dict(safetensors.torch.load_file(path))`).
//!
//! - **What is written:** every parameter (`fc1.weight` `[out, in]`, `conv1.weight`
//!   `[C_out, C_in, KH, KW]`, `bn1.weight`, ...) and every buffer (`bn1.running_mean`,
//!   `bn1.running_var`), row-major little-endian, in the model's element type (`F32` for
//!   `f32`, `F64` for `f64`), with the metadata `{"format": "pt"}` that transformers writes.
//!   The bytes depend only on the model's names, shapes and values (tensors sorted by name),
//!   so the same model always gives the same file.
//! - **Dtypes are not converted:** a file's tensor must have the model's dtype exactly; an
//!   `F64` tensor loaded into an `f32` model is an error naming the tensor and both dtypes
//!   (convert in PyTorch with `.float()` / `.double()` before saving).
//! - **`num_batches_tracked`:** PyTorch's batch norm keeps an `I64` scalar
//!   `bn1.num_batches_tracked`; nanograd's batch norm has no such count (its running
//!   statistics always use `momentum`, where PyTorch reads the count only when `momentum` is
//!   `None`). On load it is accepted beside a batch norm's `running_mean` and `running_var`
//!   and ignored; on save it is not written. PyTorch's `load_state_dict` accepts such a file
//!   even with `strict=True`: for a state dict without version metadata (as every dict read
//!   from safetensors is) batch norm fills the missing count in itself
//!   (`_NormBase._load_from_state_dict`); tests/fixtures/gen_safetensors.py checks this.
//! - **Loading is all or nothing:** the whole file is validated first (header, byte ranges,
//!   every name present, no unexpected tensor, every dtype and shape), every problem is
//!   reported in one [`Error::Format`] naming the tensors at fault, and only then are the
//!   values copied into the model. A failed load leaves the model untouched. Gradients,
//!   training mode and the dropout stream are not part of the file and are left as they are.
//! - **Saving is atomic** (see [`write_atomic`]).
//!
//! ```
//! use nanograd_runtime::{io::SafetensorsExt, layers::Dense, Module};
//! use nanograd_runtime::rand::{rngs::StdRng, SeedableRng};
//!
//! let a = Dense::<f32>::new(3, 2, &mut StdRng::seed_from_u64(0))?;
//! let mut b = Dense::<f32>::new(3, 2, &mut StdRng::seed_from_u64(1))?;
//! b.load_safetensors_bytes(&a.to_safetensors_bytes()?)?;
//! assert_eq!(a.weight.value(), b.weight.value());
//!
//! let mut wider = Dense::<f32>::new(4, 2, &mut StdRng::seed_from_u64(1))?;
//! let err = wider.load_safetensors_bytes(&a.to_safetensors_bytes()?).unwrap_err();
//! assert_eq!(
//!     err.to_string(),
//!     "safetensors bytes: tensor `weight` has shape [2, 3] in the file but [2, 4] in the model"
//! );
//! # Ok::<(), nanograd_runtime::Error>(())
//! ```
//!
//! [safetensors]: https://huggingface.co/docs/safetensors

use alloc::borrow::{Cow, ToOwned};
use alloc::collections::{BTreeMap, BTreeSet};
use alloc::string::{String, ToString};
use alloc::vec::Vec;
#[cfg(feature = "std")]
use std::path::Path;

use ::safetensors::tensor::{Dtype, SafeTensorError, SafeTensors, View};

#[cfg(feature = "std")]
use super::atomic::write_atomic;
use crate::error::{bytes_origin, Origin};
use crate::{fmt_shape, invalid, Error, Float, Module, Result};

/// What an error about in-memory bytes names in place of a file path.
const BYTES_ORIGIN: &str = "safetensors bytes";

/// The suffix of PyTorch's batch-norm step counter, accepted and ignored on load.
const NUM_BATCHES_TRACKED: &str = "num_batches_tracked";

/// Saving and loading a model's weights as safetensors; implemented for every [`Module`]
/// (see the [module documentation](self) for the format and the guarantees).
pub trait SafetensorsExt<T: Float> {
    /// The model's parameters and buffers as the bytes of a safetensors file. Errors if two
    /// tensors of the model share a name.
    fn to_safetensors_bytes(&self) -> Result<Vec<u8>>;

    /// Writes [`SafetensorsExt::to_safetensors_bytes`] to `path` atomically: a crash or an
    /// error midway leaves any previous file at `path` as it was.
    #[cfg(feature = "std")]
    fn save_safetensors(&self, path: impl AsRef<Path>) -> Result<()>;

    /// Loads every parameter and buffer from the bytes of a safetensors file, after checking
    /// all of them; on error the model is unchanged.
    fn load_safetensors_bytes(&mut self, bytes: &[u8]) -> Result<()>;

    /// Reads the file at `path` and loads it as [`SafetensorsExt::load_safetensors_bytes`].
    #[cfg(feature = "std")]
    fn load_safetensors(&mut self, path: impl AsRef<Path>) -> Result<()>;
}

impl<T: Float, M: Module<T> + ?Sized> SafetensorsExt<T> for M {
    fn to_safetensors_bytes(&self) -> Result<Vec<u8>> {
        to_bytes(self)
    }

    #[cfg(feature = "std")]
    fn save_safetensors(&self, path: impl AsRef<Path>) -> Result<()> {
        write_atomic(path, &to_bytes(self)?)
    }

    fn load_safetensors_bytes(&mut self, bytes: &[u8]) -> Result<()> {
        load(self, bytes, bytes_origin(BYTES_ORIGIN))
    }

    #[cfg(feature = "std")]
    fn load_safetensors(&mut self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })?;
        load(self, &bytes, path)
    }
}

fn load<T: Float, M: Module<T> + ?Sized>(
    model: &mut M,
    bytes: &[u8],
    origin: &Origin,
) -> Result<()> {
    let staged = stage(model, bytes).map_err(|msg| Error::Format {
        path: origin.to_owned(),
        msg,
    })?;
    commit(model, staged);
    Ok(())
}

/// The safetensors dtype of `T`.
pub(crate) fn dtype_of<T: Float>() -> Result<Dtype> {
    match T::DTYPE {
        "f32" => Ok(Dtype::F32),
        "f64" => Ok(Dtype::F64),
        other => Err(invalid(
            "safetensors",
            format!("element type `{other}` has no safetensors dtype"),
        )),
    }
}

/// A tensor to write: dtype, shape and little-endian bytes (also the int8 files' tensors,
/// `crate::quant`).
pub(crate) struct Encoded {
    pub(crate) dtype: Dtype,
    pub(crate) shape: Vec<usize>,
    pub(crate) data: Vec<u8>,
}

impl View for &Encoded {
    fn dtype(&self) -> Dtype {
        self.dtype
    }
    fn shape(&self) -> &[usize] {
        &self.shape
    }
    fn data(&self) -> Cow<'_, [u8]> {
        Cow::Borrowed(&self.data)
    }
    fn data_len(&self) -> usize {
        self.data.len()
    }
}

/// `values` as little-endian `dtype` (`F32` or `F64`, the dtype of `T`: exact).
pub(crate) fn encode<T: Float>(dtype: Dtype, shape: &[usize], values: &[T]) -> Encoded {
    let mut data = Vec::with_capacity(values.len() * dtype.bitsize() / 8);
    for v in values {
        if dtype == Dtype::F32 {
            data.extend_from_slice(&(v.to_f64() as f32).to_le_bytes());
        } else {
            data.extend_from_slice(&v.to_f64().to_le_bytes());
        }
    }
    Encoded {
        dtype,
        shape: shape.to_vec(),
        data,
    }
}

/// Little-endian `F32` or `F64` bytes (the dtype of `T`) as values.
fn decode<T: Float>(dtype: Dtype, bytes: &[u8]) -> Vec<T> {
    if dtype == Dtype::F32 {
        let f = |b: &[u8]| f32::from_le_bytes([b[0], b[1], b[2], b[3]]) as f64;
        bytes.chunks_exact(4).map(|b| T::from_f64(f(b))).collect()
    } else {
        let f = |b: &[u8]| {
            let mut a = [0u8; 8];
            a.copy_from_slice(b);
            f64::from_le_bytes(a)
        };
        bytes.chunks_exact(8).map(|b| T::from_f64(f(b))).collect()
    }
}

/// The bytes of a safetensors file holding the parameters and buffers of `model`.
pub(crate) fn to_bytes<T: Float, M: Module<T> + ?Sized>(model: &M) -> Result<Vec<u8>> {
    let dtype = dtype_of::<T>()?;
    let mut tensors: Vec<(String, Encoded)> = Vec::new();
    model.visit_params(&mut |name, p| {
        tensors.push((name.to_string(), encode(dtype, p.shape(), p.value())));
    });
    model.visit_buffers(&mut |name, b| {
        tensors.push((name.to_string(), encode(dtype, b.shape(), b.data())));
    });
    serialize(&tensors, "pt", "model")
}

/// The bytes of a safetensors file holding `tensors` (sorted by name), with the metadata
/// `{"format": format}`. Errors if two tensors share a name (`what` names the model then).
pub(crate) fn serialize(
    tensors: &[(String, Encoded)],
    format: &str,
    what: &str,
) -> Result<Vec<u8>> {
    let mut names: Vec<&str> = tensors.iter().map(|(n, _)| n.as_str()).collect();
    names.sort_unstable();
    if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
        return Err(invalid(
            "save_safetensors",
            format!("the {what} has two tensors named `{}`", w[0]),
        ));
    }
    let metadata = [("format".to_string(), format.to_string())]
        .into_iter()
        .collect();
    ::safetensors::serialize(tensors.iter().map(|(n, t)| (n.as_str(), t)), Some(metadata))
        .map_err(|e| invalid("save_safetensors", e.to_string()))
}

/// The values of every parameter and buffer, read from a file and checked against the
/// model, ready to be copied in by [`commit`].
pub(crate) struct Staged<T> {
    values: BTreeMap<String, Vec<T>>,
}

/// The name and shape of every parameter and buffer of `model`, through the same (mutable)
/// visitors that [`commit`] uses. Errors on a name given twice.
fn expected_tensors<T: Float, M: Module<T> + ?Sized>(
    model: &mut M,
) -> core::result::Result<Vec<(String, Vec<usize>)>, String> {
    let mut expected = Vec::new();
    model.visit_params_mut(&mut |name, p| expected.push((name.to_string(), p.shape().to_vec())));
    model.visit_buffers_mut(&mut |name, b| expected.push((name.to_string(), b.shape().to_vec())));
    let mut seen = BTreeSet::new();
    for (name, _) in &expected {
        if !seen.insert(name.as_str()) {
            return Err(format!("the model has two tensors named `{name}`"));
        }
    }
    Ok(expected)
}

/// Checks the safetensors file `bytes` against `model` (every tensor present with the
/// model's dtype and shape, none unexpected) and decodes its values, without touching the
/// model's values. The error lists every problem, naming the tensors.
pub(crate) fn stage<T: Float, M: Module<T> + ?Sized>(
    model: &mut M,
    bytes: &[u8],
) -> core::result::Result<Staged<T>, String> {
    let file = SafeTensors::deserialize(bytes).map_err(|e| diagnose(bytes, &e))?;
    let dtype = dtype_of::<T>().map_err(|e| e.to_string())?;
    let expected = expected_tensors(model)?;
    let mut problems = Vec::new();
    let mut values = BTreeMap::new();
    for (name, shape) in &expected {
        let Ok(view) = file.tensor(name) else {
            problems.push(format!(
                "missing tensor `{name}` ({dtype} {} in the model)",
                fmt_shape(shape)
            ));
            continue;
        };
        if view.dtype() != dtype {
            problems.push(format!(
                "tensor `{name}` is {} in the file but {dtype} in the model (dtypes are not converted)",
                view.dtype()
            ));
        } else if view.shape() != shape.as_slice() {
            problems.push(format!(
                "tensor `{name}` has shape {} in the file but {} in the model",
                fmt_shape(view.shape()),
                fmt_shape(shape)
            ));
        } else {
            values.insert(name.clone(), decode(dtype, view.data()));
        }
    }
    let known: BTreeSet<&str> = expected.iter().map(|(n, _)| n.as_str()).collect();
    let mut others: Vec<&str> = file
        .names()
        .into_iter()
        .filter(|n| !known.contains(n))
        .collect();
    others.sort_unstable();
    for name in others {
        if !is_batch_norm_counter(name, &known) {
            problems.push(format!(
                "unexpected tensor `{name}`, which the model does not have"
            ));
            continue;
        }
        let view = file.tensor(name).map_err(|e| e.to_string())?;
        if view.dtype() != Dtype::I64 || !view.shape().is_empty() {
            problems.push(format!(
                "tensor `{name}` should be PyTorch's I64 scalar step count but is {} {}",
                view.dtype(),
                fmt_shape(view.shape())
            ));
        }
    }
    if problems.is_empty() {
        Ok(Staged { values })
    } else {
        Err(problems.join("; "))
    }
}

/// Whether `name` is `<prefix>num_batches_tracked` beside a batch norm's running
/// statistics `<prefix>running_mean` and `<prefix>running_var`.
fn is_batch_norm_counter(name: &str, known: &BTreeSet<&str>) -> bool {
    let Some(prefix) = name.strip_suffix(NUM_BATCHES_TRACKED) else {
        return false;
    };
    let has = |suffix: &str| known.contains(format!("{prefix}{suffix}").as_str());
    (prefix.is_empty() || prefix.ends_with('.')) && has("running_mean") && has("running_var")
}

/// Copies staged values into the model (after [`stage`] checked them: cannot fail).
pub(crate) fn commit<T: Float, M: Module<T> + ?Sized>(model: &mut M, staged: Staged<T>) {
    let values = staged.values;
    model.visit_params_mut(&mut |name, p| {
        if let Some(v) = values.get(name).filter(|v| v.len() == p.len()) {
            p.value_mut().copy_from_slice(v);
        }
    });
    model.visit_buffers_mut(&mut |name, b| {
        if let Some(v) = values.get(name).filter(|v| v.len() == b.len()) {
            b.data_mut().copy_from_slice(v);
        }
    });
}

/// Why `bytes`, which the safetensors crate rejected with `error`, is not a valid file,
/// naming the tensor at fault where there is one (the crate's errors do not always).
fn diagnose(bytes: &[u8], error: &SafeTensorError) -> String {
    let Some(len_bytes) = bytes.get(..8) else {
        return format!(
            "{} bytes are too few for a safetensors file, which starts with an 8-byte header length",
            bytes.len()
        );
    };
    let mut n = [0u8; 8];
    n.copy_from_slice(len_bytes);
    let header_len = u64::from_le_bytes(n);
    let rest = (bytes.len() - 8) as u64;
    if header_len > rest {
        return format!(
            "the header claims {header_len} bytes but only {rest} follow its length: the file is truncated or corrupt"
        );
    }
    let (header, data) = bytes[8..].split_at(header_len as usize);
    let header: serde_json::Map<String, serde_json::Value> = match serde_json::from_slice(header) {
        Ok(h) => h,
        Err(e) => return format!("the header is not a JSON object: {e}"),
    };
    let mut entries = Vec::new();
    for (name, entry) in header.iter().filter(|(n, _)| *n != "__metadata__") {
        match entry_of(entry) {
            Ok((dtype, shape, begin, end)) => entries.push((name, dtype, shape, begin, end)),
            Err(msg) => return format!("tensor `{name}`: {msg}"),
        }
    }
    entries.sort_by_key(|e| (e.3, e.4));
    let mut offset = 0;
    for (name, dtype, shape, begin, end) in entries {
        let need = shape
            .iter()
            .try_fold(dtype.bitsize() as u64, |n, &d| n.checked_mul(d))
            .map(|bits| bits.div_ceil(8));
        let range = format!("data_offsets [{begin}, {end}]");
        if end > data.len() as u64 {
            return format!(
                "tensor `{name}`: {range} reach past the {} bytes of data: the file is truncated or its header corrupt",
                data.len()
            );
        }
        if need != Some(end.saturating_sub(begin)) {
            return format!(
                "tensor `{name}`: {range} hold {} bytes, but {dtype} {} needs {}",
                end.saturating_sub(begin),
                fmt_shape(&shape.iter().map(|&d| d as usize).collect::<Vec<_>>()),
                need.map_or("more than fit in memory".to_string(), |n| n.to_string())
            );
        }
        if begin != offset {
            return format!(
                "tensor `{name}`: {range} do not start where the previous tensor ends, at {offset}"
            );
        }
        offset = end;
    }
    if offset != data.len() as u64 {
        return format!(
            "{} bytes of data follow the last tensor, which ends at {offset}",
            data.len() as u64 - offset
        );
    }
    format!("invalid safetensors file: {error}")
}

/// Dtype, shape and byte range of one tensor's header entry.
fn entry_of(
    entry: &serde_json::Value,
) -> core::result::Result<(Dtype, Vec<u64>, u64, u64), String> {
    let field = |key: &str| {
        entry
            .get(key)
            .ok_or_else(|| format!("the header entry has no `{key}`"))
    };
    let dtype = field("dtype")?;
    let dtype: Dtype =
        serde_json::from_value(dtype.clone()).map_err(|_| format!("unknown dtype {dtype}"))?;
    let shape = field("shape")?;
    let shape: Vec<u64> = serde_json::from_value(shape.clone())
        .map_err(|_| format!("the shape {shape} is not a list of sizes"))?;
    let offsets = field("data_offsets")?;
    let (begin, end): (u64, u64) = serde_json::from_value(offsets.clone())
        .map_err(|_| format!("the data_offsets {offsets} are not two byte offsets"))?;
    if end < begin {
        return Err(format!(
            "data_offsets [{begin}, {end}] end before they begin"
        ));
    }
    Ok((dtype, shape, begin, end))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Param, Tensor};

    /// One parameter `w` and one buffer `b`, as a minimal module.
    struct Tiny<T: Float> {
        w: Param<T>,
        b: Tensor<T>,
    }

    impl<T: Float> Module<T> for Tiny<T> {
        fn visit_params(&self, f: &mut dyn FnMut(&str, &Param<T>)) {
            f("w", &self.w);
        }
        fn visit_params_mut(&mut self, f: &mut dyn FnMut(&str, &mut Param<T>)) {
            f("w", &mut self.w);
        }
        fn visit_buffers(&self, f: &mut dyn FnMut(&str, &Tensor<T>)) {
            f("b", &self.b);
        }
        fn visit_buffers_mut(&mut self, f: &mut dyn FnMut(&str, &mut Tensor<T>)) {
            f("b", &mut self.b);
        }
        fn set_training_mode(&mut self, _: bool) {}
        fn is_training(&self) -> bool {
            true
        }
    }

    fn tiny<T: Float>(w: [f64; 2], b: f64) -> Tiny<T> {
        Tiny {
            w: Param::new(&[2], w.map(T::from_f64).to_vec()).unwrap(),
            b: Tensor::new(&[1, 1], vec![T::from_f64(b)]).unwrap(),
        }
    }

    /// The file of `Tiny<f32>{ w: [1, -2], b: [[0.5]] }`, byte by byte.
    #[test]
    fn f32_file_byte_by_byte() {
        // header: metadata first, then tensors sorted by name ("b" < "w"); b holds 1 f32
        // (bytes 0..4), w holds 2 (bytes 4..12). The JSON is 32 + 55 + 54 = 141 bytes (the
        // three lines below), padded with 3 spaces to 144, a multiple of 8.
        let json = concat!(
            r#"{"__metadata__":{"format":"pt"},"#,
            r#""b":{"dtype":"F32","shape":[1,1],"data_offsets":[0,4]},"#,
            r#""w":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}"#,
        );
        assert_eq!(json.len(), 141);
        let mut expected = 144u64.to_le_bytes().to_vec();
        expected.extend_from_slice(json.as_bytes());
        expected.extend_from_slice(b"   ");
        // 0.5 = 0x3F000000, 1.0 = 0x3F800000, -2.0 = 0xC0000000, little-endian
        expected.extend_from_slice(&[0x00, 0x00, 0x00, 0x3F]);
        expected.extend_from_slice(&[0x00, 0x00, 0x80, 0x3F]);
        expected.extend_from_slice(&[0x00, 0x00, 0x00, 0xC0]);
        let bytes = tiny::<f32>([1.0, -2.0], 0.5)
            .to_safetensors_bytes()
            .unwrap();
        assert_eq!(bytes, expected);
        // and back into a model holding other values
        let mut other = tiny::<f32>([0.0, 0.0], 0.0);
        other.load_safetensors_bytes(&bytes).unwrap();
        assert_eq!(
            (other.w.value(), other.b.data()),
            (&[1.0f32, -2.0][..], &[0.5f32][..])
        );
    }

    /// f64 round trip of values that f32 cannot hold, bit for bit.
    #[test]
    fn f64_round_trip_is_exact() {
        let a = tiny::<f64>([0.1, -1e-300], std::f64::consts::PI);
        let mut b = tiny::<f64>([0.0, 0.0], 0.0);
        b.load_safetensors_bytes(&a.to_safetensors_bytes().unwrap())
            .unwrap();
        assert_eq!(b.w.value(), a.w.value());
        assert_eq!(b.b.data(), a.b.data());
    }

    #[test]
    fn dtype_mismatch_names_both_dtypes() {
        let bytes = tiny::<f64>([1.0, 2.0], 3.0).to_safetensors_bytes().unwrap();
        let mut m = tiny::<f32>([5.0, 6.0], 7.0);
        let err = m.load_safetensors_bytes(&bytes).unwrap_err().to_string();
        assert_eq!(
            err,
            "safetensors bytes: tensor `w` is F64 in the file but F32 in the model (dtypes are not converted); \
             tensor `b` is F64 in the file but F32 in the model (dtypes are not converted)"
        );
        assert_eq!(
            (m.w.value(), m.b.data()),
            (&[5.0f32, 6.0][..], &[7.0f32][..])
        );
    }

    #[test]
    fn diagnose_names_the_truncated_tensor() {
        let bytes = tiny::<f32>([1.0, -2.0], 0.5)
            .to_safetensors_bytes()
            .unwrap();
        // cut 2 bytes from the end: `w` (bytes 4..12 of the data) no longer fits
        let cut = &bytes[..bytes.len() - 2];
        let mut m = tiny::<f32>([0.0, 0.0], 0.0);
        let err = m.load_safetensors_bytes(cut).unwrap_err().to_string();
        assert_eq!(
            err,
            "safetensors bytes: tensor `w`: data_offsets [4, 12] reach past the 10 bytes of data: \
             the file is truncated or its header corrupt"
        );
    }
}
