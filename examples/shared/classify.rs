//! The inference logic of the `infer` example, shared with `tests/examples_smoke.rs`: read
//! digit images (binary PGM or IDX), and classify them one at a time with the perceptron of
//! `mlp.rs`, allocating nothing per image once a [`Classifier`] exists.
//!
//! The includer declares both modules at its root: `#[path = "shared/mlp.rs"] mod mlp;` and
//! `#[path = "shared/classify.rs"] mod classify;`.

use std::path::Path;

use nanograd::data::{parse_idx, IMAGE_SIDE, IMAGE_SIZE, NUM_CLASSES};
use nanograd::prelude::*;
use nanograd::rand::{rngs::StdRng, SeedableRng};

use crate::mlp::{Mlp, MlpInt8};

/// The weights `mnist_mlp` trained (15 epochs on `data/mnist-10k`, 95.45 % test accuracy),
/// compiled into the binary.
pub const EMBEDDED_WEIGHTS: &[u8] = include_bytes!("../weights/mnist_mlp.safetensors");

/// One 28x28 image, row by row, pixels scaled to [0, 1] as for training.
pub type Pixels = [f32; IMAGE_SIZE];

/// A classified image: the most probable digit and its softmax probability.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Prediction {
    /// The digit, 0-9.
    pub label: usize,
    /// The model's probability of `label`.
    pub probability: f32,
}

/// The perceptron in float32 or in int8 (`--int8`: `Mlp::quantize_int8`).
#[derive(Debug)]
pub enum Model {
    /// The float32 model, in evaluation mode.
    F32(Mlp<f32>),
    /// The model with int8 dense weights.
    Int8(MlpInt8),
}

impl Model {
    /// The softmax of the logits of `x` into `out`, in `ws`.
    fn probabilities_into(
        &self,
        x: &[Pixels],
        out: &mut [[f32; NUM_CLASSES]],
        ws: &mut Workspace<f32>,
    ) -> Result<()> {
        match self {
            Model::F32(m) => m.probabilities_into(x, out, ws),
            Model::Int8(m) => m.probabilities_into(x, out, ws),
        }
    }
}

/// The model in evaluation mode with the buffers of one forward pass, grown once.
pub struct Classifier {
    model: Model,
    ws: Workspace<f32>,
    probabilities: [[f32; NUM_CLASSES]; 1],
}

impl Classifier {
    /// A classifier with the weights of a safetensors file's bytes (e.g.
    /// [`EMBEDDED_WEIGHTS`]). Runs a blank image through the model twice: the first call
    /// grows the workspace, the second packs the dense weights into it, so that
    /// [`Classifier::classify`] allocates nothing and reads the packed weights.
    pub fn new(weights: &[u8]) -> Result<Self> {
        let mut model = Mlp::<f32>::new(&mut StdRng::seed_from_u64(0));
        model.load_safetensors_bytes(weights)?;
        Self::with_model(model)
    }

    /// Like [`Classifier::new`], with the weights read from a safetensors file.
    pub fn from_file(path: &Path) -> Result<Self> {
        let mut model = Mlp::<f32>::new(&mut StdRng::seed_from_u64(0));
        model.load_safetensors(path)?;
        Self::with_model(model)
    }

    /// Like [`Classifier::new`], with the int8 weights of a file written by
    /// `MlpInt8::save_safetensors` (`infer --save-int8`).
    pub fn from_int8_file(path: &Path) -> Result<Self> {
        Self::with(Model::Int8(MlpInt8::load_safetensors(path)?))
    }

    /// This classifier with its model quantized to int8 (`Mlp::quantize_int8`).
    pub fn quantized(self) -> Result<Self> {
        match self.model {
            Model::F32(m) => Self::with(Model::Int8(m.quantize_int8()?)),
            Model::Int8(_) => Ok(self),
        }
    }

    fn with_model(mut model: Mlp<f32>) -> Result<Self> {
        model.set_eval_mode();
        Self::with(Model::F32(model))
    }

    fn with(model: Model) -> Result<Self> {
        let mut classifier = Classifier {
            model,
            ws: Workspace::new(),
            probabilities: [[0.0; NUM_CLASSES]; 1],
        };
        for _ in 0..2 {
            classifier.classify(&[0.0; IMAGE_SIZE])?;
        }
        Ok(classifier)
    }

    /// The most probable digit of `image` (no allocation: the forward pass runs in the
    /// classifier's workspace and writes its output buffer).
    pub fn classify(&mut self, image: &Pixels) -> Result<Prediction> {
        predict(&self.model, &mut self.ws, &mut self.probabilities, image)
    }

    /// The model, to share with [`Session`]s on other threads.
    pub fn model(&self) -> &Model {
        &self.model
    }
}

/// One thread's buffers for classifying with a model shared by reference (generated models
/// are `Send + Sync`): what `infer --threads N` gives each of its threads.
pub struct Session<'m> {
    model: &'m Model,
    ws: Workspace<f32>,
    probabilities: [[f32; NUM_CLASSES]; 1],
}

impl<'m> Session<'m> {
    /// A session over `model`, warmed up like [`Classifier::new`] (grown, then packed), so
    /// that [`Session::classify`] allocates nothing.
    pub fn new(model: &'m Model) -> Result<Self> {
        let mut session = Session {
            model,
            ws: Workspace::new(),
            probabilities: [[0.0; NUM_CLASSES]; 1],
        };
        for _ in 0..2 {
            session.classify(&[0.0; IMAGE_SIZE])?;
        }
        Ok(session)
    }

    /// The most probable digit of `image`, as [`Classifier::classify`].
    pub fn classify(&mut self, image: &Pixels) -> Result<Prediction> {
        predict(self.model, &mut self.ws, &mut self.probabilities, image)
    }
}

/// The forward pass of one image in `ws`, and its most probable digit.
fn predict(
    model: &Model,
    ws: &mut Workspace<f32>,
    probabilities: &mut [[f32; NUM_CLASSES]; 1],
    image: &Pixels,
) -> Result<Prediction> {
    let x = std::slice::from_ref(image);
    model.probabilities_into(x, probabilities, ws)?;
    let p = &probabilities[0];
    let mut label = 0;
    for (i, &pi) in p.iter().enumerate() {
        if pi > p[label] {
            label = i;
        }
    }
    Ok(Prediction {
        label,
        probability: p[label],
    })
}

/// Every image of the file at `path`: a binary PGM (`P5`) of 28x28 pixels, or an IDX file
/// (gzipped or not) of `[n, 28, 28]` unsigned bytes, such as MNIST's image files.
pub fn read_images(path: &Path) -> Result<Vec<Pixels>> {
    let bytes = std::fs::read(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let fail = |msg: String| Error::Format {
        path: path.to_path_buf(),
        msg,
    };
    match bytes.as_slice() {
        [b'P', b'5', ..] => parse_pgm(&bytes).map(|image| vec![image]).map_err(fail),
        [b'P', d @ b'1'..=b'7', ..] => Err(fail(format!(
            "Netpbm format P{} is not supported, expected a binary greymap (P5) or an IDX file",
            char::from(*d)
        ))),
        _ => {
            let idx = parse_idx(&bytes, path)?;
            if !matches!(*idx.dims(), [_, IMAGE_SIDE, IMAGE_SIDE]) {
                return Err(fail(format!(
                    "IDX array is {}, expected images [n, {IMAGE_SIDE}, {IMAGE_SIDE}]",
                    nanograd::fmt_shape(idx.dims())
                )));
            }
            Ok(idx.data().chunks_exact(IMAGE_SIZE).map(scale).collect())
        }
    }
}

/// Bytes over 255, as `Mnist::load` scales them.
fn scale(bytes: &[u8]) -> Pixels {
    std::array::from_fn(|i| f32::from(bytes[i]) / 255.0)
}

/// A binary PGM: `P5`, width, height and maxval separated by whitespace (and `#` comments),
/// one whitespace byte, then one byte per pixel; pixels are scaled by maxval.
fn parse_pgm(bytes: &[u8]) -> std::result::Result<Pixels, String> {
    let mut pos = 2;
    let mut field = |name: &str| -> std::result::Result<usize, String> {
        loop {
            match bytes.get(pos) {
                Some(b) if b.is_ascii_whitespace() => pos += 1,
                Some(b'#') => {
                    while bytes.get(pos).is_some_and(|&b| b != b'\n') {
                        pos += 1;
                    }
                }
                _ => break,
            }
        }
        let start = pos;
        while bytes.get(pos).is_some_and(u8::is_ascii_digit) {
            pos += 1;
        }
        std::str::from_utf8(&bytes[start..pos])
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| format!("PGM header: expected the {name} at byte {start}"))
    };
    let (width, height, maxval) = (field("width")?, field("height")?, field("maxval")?);
    if (width, height) != (IMAGE_SIDE, IMAGE_SIDE) {
        return Err(format!(
            "PGM image is {width}x{height}, expected {IMAGE_SIDE}x{IMAGE_SIDE}"
        ));
    }
    if !(1..=255).contains(&maxval) {
        return Err(format!(
            "PGM maxval is {maxval}, expected 1 to 255 (one byte per pixel)"
        ));
    }
    if !bytes.get(pos).is_some_and(u8::is_ascii_whitespace) {
        return Err(format!(
            "PGM header: expected one whitespace byte after the maxval, at byte {pos}"
        ));
    }
    let pixels = &bytes[pos + 1..];
    if pixels.len() != IMAGE_SIZE {
        return Err(format!(
            "PGM pixels: expected {IMAGE_SIZE} bytes after the header, found {}",
            pixels.len()
        ));
    }
    if let Some(i) = pixels.iter().position(|&v| usize::from(v) > maxval) {
        return Err(format!(
            "PGM pixel {i} is {}, above the maxval {maxval}",
            pixels[i]
        ));
    }
    let maxval = maxval as f32;
    Ok(std::array::from_fn(|i| f32::from(pixels[i]) / maxval))
}
