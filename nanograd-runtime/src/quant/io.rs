//! Quantized models as safetensors: int8 weights (dtype `I8`, the float weight's name and
//! shape), one f32 scale per output channel (`<weight>_scale`, `[out]`), the bias of a
//! folded batch norm in f32 under the convolution's bias name, and every tensor that stays
//! float (biases, batch norms that were not folded, embeddings, ...) in f32 under its
//! PyTorch name. The metadata says `{"format": "nanograd-int8"}`. Loading checks every
//! name, dtype and shape before anything is kept.

use alloc::borrow::ToOwned;
use alloc::collections::BTreeSet;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

use crate::error::{Origin, OriginBuf};

use ::safetensors::tensor::{Dtype, SafeTensors};

use super::QuantizedLayer;
use crate::io::safetensors::{encode, serialize, Encoded};
use crate::{fmt_shape, Error, Module, Result};

/// The tensors of a quantized model, gathered for writing.
#[derive(Default)]
pub struct QuantizedTensors {
    tensors: Vec<(String, Encoded)>,
}

impl QuantizedTensors {
    /// No tensors yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// An f32 tensor.
    pub fn push_f32(&mut self, name: &str, shape: &[usize], values: &[f32]) {
        self.tensors
            .push((name.to_string(), encode(Dtype::F32, shape, values)));
    }

    /// A quantized layer: `weight` (I8), `<weight>_scale` (F32), and its folded bias under
    /// `bias` when it has one.
    pub fn push_layer(&mut self, weight: &str, bias: &str, l: &QuantizedLayer) {
        let data = l.weight_i8().iter().map(|&v| v as u8).collect();
        self.tensors.push((
            weight.to_string(),
            Encoded {
                dtype: Dtype::I8,
                shape: l.shape().to_vec(),
                data,
            },
        ));
        self.push_f32(&format!("{weight}_scale"), &[l.out_features()], l.scales());
        if let Some(b) = l.folded_bias() {
            self.push_f32(bias, &[b.len()], b);
        }
    }

    /// Every parameter and buffer of `model` (f32) except those named in `skip` (the float
    /// weights that int8 ones replace).
    pub fn push_float_model<M: Module<f32> + ?Sized>(&mut self, model: &M, skip: &[&str]) {
        model.visit_params(&mut |name, p| {
            if !skip.contains(&name) {
                self.push_f32(name, p.shape(), p.value());
            }
        });
        model.visit_buffers(&mut |name, b| {
            if !skip.contains(&name) {
                self.push_f32(name, b.shape(), b.data());
            }
        });
    }

    /// The bytes of the safetensors file (tensors sorted by name; the same model always
    /// gives the same bytes). Errors if two tensors share a name.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        serialize(&self.tensors, "nanograd-int8", "quantized model")
    }
}

/// Saving and loading a quantized model, implemented by the `<Name>Int8` types `model!`
/// generates (in the prelude): int8 weights (`I8`) with their scales (`<weight>_scale`, f32,
/// one per output channel), a folded batch norm's bias under the convolution's bias name, and
/// every other tensor in f32.
pub trait QuantizedSafetensors: Sized {
    /// The model as the bytes of a safetensors file.
    fn to_safetensors_bytes(&self) -> Result<Vec<u8>>;

    /// The model from the bytes of a safetensors file, naming `origin` in errors: what
    /// [`QuantizedSafetensors::load_safetensors_bytes`] and `load_safetensors` call.
    fn from_safetensors_bytes_of(bytes: &[u8], origin: &Origin) -> Result<Self>;

    /// A quantized model from the bytes of
    /// [`QuantizedSafetensors::to_safetensors_bytes`]; every name, dtype and shape is
    /// checked, and all problems are reported in one error.
    fn load_safetensors_bytes(bytes: &[u8]) -> Result<Self> {
        Self::from_safetensors_bytes_of(bytes, crate::error::bytes_origin("safetensors bytes"))
    }

    /// Writes [`QuantizedSafetensors::to_safetensors_bytes`] to `path` atomically.
    #[cfg(feature = "std")]
    fn save_safetensors(&self, path: impl AsRef<std::path::Path>) -> Result<()> {
        crate::io::write_atomic(path, &self.to_safetensors_bytes()?)
    }

    /// Reads the file at `path` as [`QuantizedSafetensors::load_safetensors_bytes`].
    #[cfg(feature = "std")]
    fn load_safetensors(path: impl AsRef<std::path::Path>) -> Result<Self> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_safetensors_bytes_of(&bytes, path)
    }
}

/// A parsed safetensors file of a quantized model, read tensor by tensor.
pub struct QuantizedFile<'a> {
    st: SafeTensors<'a>,
    origin: OriginBuf,
    used: BTreeSet<String>,
    errors: Vec<String>,
}

impl<'a> QuantizedFile<'a> {
    /// Parses the header of `bytes` (read from `origin`, named in errors).
    pub fn parse(bytes: &'a [u8], origin: &Origin) -> Result<Self> {
        let st = SafeTensors::deserialize(bytes).map_err(|e| Error::Format {
            path: origin.to_owned(),
            msg: format!("not a safetensors file: {e}"),
        })?;
        Ok(QuantizedFile {
            st,
            origin: origin.to_owned(),
            used: BTreeSet::new(),
            errors: Vec::new(),
        })
    }

    fn tensor(&mut self, name: &str, dtype: Dtype, shape: &[usize]) -> Option<&'a [u8]> {
        self.used.insert(name.to_string());
        let t = match self.st.tensor(name) {
            Ok(t) => t,
            Err(_) => {
                self.errors.push(format!("tensor `{name}` is missing"));
                return None;
            }
        };
        if t.dtype() != dtype {
            self.errors.push(format!(
                "tensor `{name}` is {:?} in the file but {dtype:?} in the quantized model",
                t.dtype()
            ));
            return None;
        }
        if t.shape() != shape {
            self.errors.push(format!(
                "tensor `{name}` has shape {} in the file but {} in the quantized model",
                fmt_shape(t.shape()),
                fmt_shape(shape)
            ));
            return None;
        }
        Some(t.data())
    }

    /// An f32 tensor of the given shape (`None` and an error kept for [`QuantizedFile::finish`]
    /// when it is missing or differs).
    pub fn f32(&mut self, name: &str, shape: &[usize]) -> Option<Vec<f32>> {
        let data = self.tensor(name, Dtype::F32, shape)?;
        Some(
            data.chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect(),
        )
    }

    /// A quantized layer saved by [`QuantizedTensors::push_layer`]; `folded` says whether it
    /// carries a folded batch norm's bias under `bias`.
    pub fn layer(
        &mut self,
        weight: &str,
        shape: &[usize],
        bias: &str,
        folded: bool,
    ) -> Option<QuantizedLayer> {
        // every piece is checked, so that one error lists all that is wrong
        let q: Option<Vec<i8>> = self
            .tensor(weight, Dtype::I8, shape)
            .map(|d| d.iter().map(|&b| b as i8).collect());
        let n = shape.first().copied().unwrap_or(0);
        let scales = self.f32(&format!("{weight}_scale"), &[n]);
        let b = if folded {
            Some(self.f32(bias, &[n]))
        } else {
            None
        };
        let (q, scales) = (q?, scales?);
        let b = match b {
            Some(b) => Some(b?),
            None => None,
        };
        match QuantizedLayer::from_parts(shape, &q, scales, b) {
            Ok(l) => Some(l),
            Err(e) => {
                self.errors.push(format!("tensor `{weight}`: {e}"));
                None
            }
        }
    }

    /// Reads every parameter and buffer of `model` not named in `skip` into a staging list
    /// (applied by [`QuantizedFile::commit_float_model`] once the whole file checked).
    pub fn stage_float_model<M: Module<f32> + ?Sized>(
        &mut self,
        model: &M,
        skip: &[&str],
    ) -> Vec<(String, Vec<f32>)> {
        let mut wanted = Vec::new();
        model.visit_params(&mut |name, p| {
            if !skip.contains(&name) {
                wanted.push((name.to_string(), p.shape().to_vec()));
            }
        });
        model.visit_buffers(&mut |name, b| {
            if !skip.contains(&name) {
                wanted.push((name.to_string(), b.shape().to_vec()));
            }
        });
        wanted
            .into_iter()
            .filter_map(|(name, shape)| self.f32(&name, &shape).map(|v| (name, v)))
            .collect()
    }

    /// Copies staged values into `model`'s parameters and buffers.
    pub fn commit_float_model<M: Module<f32> + ?Sized>(
        model: &mut M,
        staged: &[(String, Vec<f32>)],
    ) {
        let find = |name: &str| staged.iter().find(|(n, _)| n == name).map(|(_, v)| v);
        model.visit_params_mut(&mut |name, p| {
            if let Some(v) = find(name) {
                p.value_mut().copy_from_slice(v);
            }
        });
        model.visit_buffers_mut(&mut |name, b| {
            if let Some(v) = find(name) {
                b.data_mut().copy_from_slice(v);
            }
        });
    }

    /// Every problem met so far, and any tensor of the file that was never asked for, as one
    /// [`Error::Format`]; `Ok` when there is none.
    pub fn finish(mut self) -> Result<()> {
        let mut extra: Vec<String> = self
            .st
            .names()
            .into_iter()
            .filter(|n| !self.used.contains(*n))
            .map(|n| format!("unexpected tensor `{n}`"))
            .collect();
        extra.sort();
        self.errors.extend(extra);
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(Error::Format {
                path: self.origin,
                msg: self.errors.join("; "),
            })
        }
    }
}
