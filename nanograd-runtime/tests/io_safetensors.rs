//! Safetensors loading: every way a file can be wrong is an error naming the tensor, and a
//! failed load changes nothing in the model.

use std::collections::HashMap;

use nanograd_runtime::layers::{BatchNorm2d, Dense};
use nanograd_runtime::module::{self, Module};
use nanograd_runtime::rand::{RngExt, SeedableRng};
use nanograd_runtime::{Float, Param, SafetensorsExt, Tensor, WorkspaceRng};
use safetensors::tensor::{Dtype, TensorView};

/// fc1 (3 -> 4), bn1 (4 channels), fc2 (4 -> 2), written by hand as `model!` would.
#[derive(Clone)]
struct Net<T: Float> {
    fc1: Dense<T>,
    bn1: BatchNorm2d<T>,
    fc2: Dense<T>,
}

impl<T: Float> Module<T> for Net<T> {
    fn visit_params(&self, f: &mut dyn FnMut(&str, &Param<T>)) {
        module::visit_child_params("fc1", &self.fc1, f);
        module::visit_child_params("bn1", &self.bn1, f);
        module::visit_child_params("fc2", &self.fc2, f);
    }
    fn visit_params_mut(&mut self, f: &mut dyn FnMut(&str, &mut Param<T>)) {
        module::visit_child_params_mut("fc1", &mut self.fc1, f);
        module::visit_child_params_mut("bn1", &mut self.bn1, f);
        module::visit_child_params_mut("fc2", &mut self.fc2, f);
    }
    fn visit_buffers(&self, f: &mut dyn FnMut(&str, &Tensor<T>)) {
        module::visit_child_buffers("bn1", &self.bn1, f);
    }
    fn visit_buffers_mut(&mut self, f: &mut dyn FnMut(&str, &mut Tensor<T>)) {
        module::visit_child_buffers_mut("bn1", &mut self.bn1, f);
    }
    fn set_training_mode(&mut self, training: bool) {
        self.fc1.set_training_mode(training);
        self.bn1.set_training_mode(training);
        self.fc2.set_training_mode(training);
    }
    fn is_training(&self) -> bool {
        self.fc1.is_training()
    }
}

/// A net whose every value (biases and running statistics too) comes from `seed`.
fn net<T: Float>(seed: u64) -> Net<T> {
    let mut rng = WorkspaceRng::seed_from_u64(seed);
    let mut n = Net {
        fc1: Dense::new(3, 4, &mut rng).unwrap(),
        bn1: BatchNorm2d::new(4).unwrap(),
        fc2: Dense::new(4, 2, &mut rng).unwrap(),
    };
    n.visit_params_mut(&mut |_, p| {
        for v in p.value_mut() {
            *v = T::from_f64(rng.random_range(-1.0..1.0));
        }
    });
    n.visit_buffers_mut(&mut |_, b| {
        for v in b.data_mut() {
            *v = T::from_f64(rng.random_range(0.5..1.5));
        }
    });
    n
}

/// Named tensors as a module, to write files of any content.
struct Named<T: Float> {
    params: Vec<(String, Param<T>)>,
    buffers: Vec<(String, Tensor<T>)>,
}

impl<T: Float> Module<T> for Named<T> {
    fn visit_params(&self, f: &mut dyn FnMut(&str, &Param<T>)) {
        self.params.iter().for_each(|(n, p)| f(n, p));
    }
    fn visit_params_mut(&mut self, f: &mut dyn FnMut(&str, &mut Param<T>)) {
        self.params.iter_mut().for_each(|(n, p)| f(n, p));
    }
    fn visit_buffers(&self, f: &mut dyn FnMut(&str, &Tensor<T>)) {
        self.buffers.iter().for_each(|(n, b)| f(n, b));
    }
    fn visit_buffers_mut(&mut self, f: &mut dyn FnMut(&str, &mut Tensor<T>)) {
        self.buffers.iter_mut().for_each(|(n, b)| f(n, b));
    }
    fn set_training_mode(&mut self, _: bool) {}
    fn is_training(&self) -> bool {
        true
    }
}

/// The tensors of `m` as a [`Named`] module, for editing.
fn named<T: Float>(m: &dyn Module<T>) -> Named<T> {
    let mut out = Named {
        params: Vec::new(),
        buffers: Vec::new(),
    };
    m.visit_params(&mut |n, p| out.params.push((n.to_string(), p.clone())));
    m.visit_buffers(&mut |n, b| out.buffers.push((n.to_string(), b.clone())));
    out
}

/// `model`'s values, to check that a failed load left them alone.
fn snapshot<T: Float>(model: &dyn Module<T>) -> Vec<u8> {
    model.to_safetensors_bytes().unwrap()
}

/// Loads `bytes` into a fresh `net::<f64>(99)` expecting an error; asserts the net is
/// unchanged and returns the message.
fn load_error(bytes: &[u8]) -> String {
    let mut target = net::<f64>(99);
    let before = snapshot(&target);
    let err = target
        .load_safetensors_bytes(bytes)
        .unwrap_err()
        .to_string();
    assert_eq!(
        snapshot(&target),
        before,
        "a failed load changed the model: {err}"
    );
    err
}

/// A file from a header and data, the length prefix computed.
fn raw(header: &str, data: &[u8]) -> Vec<u8> {
    let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
    bytes.extend_from_slice(header.as_bytes());
    bytes.extend_from_slice(data);
    bytes
}

#[test]
fn round_trip_restores_every_value_and_nothing_else() {
    let source = net::<f64>(1);
    let mut target = net::<f64>(2);
    target.fc2.bias.grad_mut().fill(0.25);
    target.set_eval_mode();
    target
        .load_safetensors_bytes(&source.to_safetensors_bytes().unwrap())
        .unwrap();
    source.visit_params(&mut |name, p| {
        target.visit_params(&mut |other, q| {
            if name == other {
                assert_eq!(p.value(), q.value(), "{name}");
            }
        })
    });
    assert_eq!(target.bn1.running_mean, source.bn1.running_mean);
    assert_eq!(target.bn1.running_var, source.bn1.running_var);
    // gradients and training mode are not part of the file
    assert_eq!(target.fc2.bias.grad(), &[0.25, 0.25]);
    assert!(!target.is_training());
}

#[test]
fn f32_special_values_round_trip_bit_for_bit() {
    let special = [
        0.0f32,
        -0.0,
        f32::INFINITY,
        f32::NEG_INFINITY,
        f32::NAN,
        1e-45,
        f32::MAX,
    ];
    let source = Named {
        params: vec![("w".to_string(), Param::new(&[7], special.to_vec()).unwrap())],
        buffers: vec![],
    };
    let mut target = Named {
        params: vec![("w".to_string(), Param::zeros(&[7]).unwrap())],
        buffers: vec![],
    };
    target
        .load_safetensors_bytes(&source.to_safetensors_bytes().unwrap())
        .unwrap();
    let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    assert_eq!(bits(target.params[0].1.value()), bits(&special));
}

#[test]
fn missing_tensors_are_named() {
    let mut file = named(&net::<f64>(1));
    file.params.retain(|(n, _)| !n.starts_with("fc2"));
    let err = load_error(&file.to_safetensors_bytes().unwrap());
    assert_eq!(
        err,
        "safetensors bytes: missing tensor `fc2.weight` (F64 [2, 4] in the model); \
         missing tensor `fc2.bias` (F64 [2] in the model)"
    );
}

#[test]
fn unexpected_tensors_are_named() {
    let mut file = named(&net::<f64>(1));
    file.params
        .push(("fc3.weight".to_string(), Param::zeros(&[1, 2]).unwrap()));
    file.buffers
        .push(("bn1.running_max".to_string(), Tensor::zeros(&[4]).unwrap()));
    let err = load_error(&file.to_safetensors_bytes().unwrap());
    assert_eq!(
        err,
        "safetensors bytes: unexpected tensor `bn1.running_max`, which the model does not have; \
         unexpected tensor `fc3.weight`, which the model does not have"
    );
}

/// One wrong shape among correct tensors: the error names it with both shapes, and the
/// correct tensors are not loaded either.
#[test]
fn a_wrong_shape_is_named_with_both_shapes() {
    let mut file = named(&net::<f64>(1));
    file.params[0].1 = Param::zeros(&[3, 4]).unwrap(); // fc1.weight transposed
    file.buffers[1].1 = Tensor::zeros(&[4, 1]).unwrap(); // bn1.running_var
    let err = load_error(&file.to_safetensors_bytes().unwrap());
    assert_eq!(
        err,
        "safetensors bytes: tensor `fc1.weight` has shape [3, 4] in the file but [4, 3] in the model; \
         tensor `bn1.running_var` has shape [4, 1] in the file but [4] in the model"
    );
}

#[test]
fn a_wrong_dtype_is_named_with_both_dtypes() {
    let bytes = net::<f32>(1).to_safetensors_bytes().unwrap();
    let err = load_error(&bytes);
    assert!(
        err.starts_with(
            "safetensors bytes: tensor `fc1.weight` is F32 in the file but F64 in the model (dtypes are not converted)"
        ),
        "{err}"
    );
    assert_eq!(
        err.matches("F32 in the file").count(),
        8,
        "every tensor: {err}"
    );
}

/// The file PyTorch writes: our tensors plus an I64 scalar `num_batches_tracked` per batch
/// norm, which loads and is ignored; the same name where there is no batch norm, or with
/// another dtype or shape, is an error.
#[test]
fn pytorch_num_batches_tracked_is_accepted_and_ignored() {
    let source = net::<f64>(1);
    let file = named(&source);
    let count = 7i64.to_le_bytes();
    let with_counter = |name: &str, dtype: Dtype, shape: &[usize], data: &[u8]| {
        let encoded: Vec<(String, Vec<usize>, Vec<u8>)> = file
            .params
            .iter()
            .map(|(n, p)| (n.clone(), p.shape().to_vec(), le_bytes(p.value())))
            .chain(
                file.buffers
                    .iter()
                    .map(|(n, b)| (n.clone(), b.shape().to_vec(), le_bytes(b.data()))),
            )
            .collect();
        let mut views: Vec<(String, TensorView)> = encoded
            .iter()
            .map(|(n, s, d)| {
                (
                    n.clone(),
                    TensorView::new(Dtype::F64, s.clone(), d).unwrap(),
                )
            })
            .collect();
        views.push((
            name.to_string(),
            TensorView::new(dtype, shape.to_vec(), data).unwrap(),
        ));
        let meta = HashMap::from([("format".to_string(), "pt".to_string())]);
        safetensors::serialize(views, Some(meta)).unwrap()
    };

    let mut target = net::<f64>(2);
    target
        .load_safetensors_bytes(&with_counter(
            "bn1.num_batches_tracked",
            Dtype::I64,
            &[],
            &count,
        ))
        .unwrap();
    assert_eq!(snapshot(&target), snapshot(&source));

    let err = load_error(&with_counter(
        "fc1.num_batches_tracked",
        Dtype::I64,
        &[],
        &count,
    ));
    assert_eq!(
        err,
        "safetensors bytes: unexpected tensor `fc1.num_batches_tracked`, which the model does not have"
    );
    let err = load_error(&with_counter(
        "bn1.num_batches_tracked",
        Dtype::F64,
        &[1],
        &[0; 8],
    ));
    assert_eq!(
        err,
        "safetensors bytes: tensor `bn1.num_batches_tracked` should be PyTorch's I64 scalar step count but is F64 [1]"
    );
}

fn le_bytes(values: &[f64]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

/// Every truncation of a valid file is an error, and changes nothing.
#[test]
fn every_truncation_is_an_error() {
    let bytes = net::<f64>(1).to_safetensors_bytes().unwrap();
    for cut in 0..bytes.len() {
        load_error(&bytes[..cut]);
    }
    assert_eq!(
        load_error(&bytes[..5]),
        "safetensors bytes: 5 bytes are too few for a safetensors file, which starts with an 8-byte header length"
    );
    let header_len = u64::from_le_bytes(bytes[..8].try_into().unwrap());
    assert_eq!(
        load_error(&bytes[..20]),
        format!(
            "safetensors bytes: the header claims {header_len} bytes but only 12 follow its length: \
             the file is truncated or corrupt"
        )
    );
    // the last tensor by offset is fc2.weight (names sorted: bn1.*, fc1.*, fc2.bias,
    // fc2.weight), 2 x 4 f64 = 64 bytes; all data is 4 + 4 + 4 + 4 (bn1) + 12 + 4 (fc1)
    // + 2 + 8 (fc2) = 42 values = 336 bytes
    assert_eq!(
        load_error(&bytes[..bytes.len() - 1]),
        "safetensors bytes: tensor `fc2.weight`: data_offsets [272, 336] reach past the 335 bytes \
         of data: the file is truncated or its header corrupt"
    );
}

#[test]
fn a_header_claiming_more_bytes_than_the_file_has_is_an_error() {
    let mut bytes = net::<f64>(1).to_safetensors_bytes().unwrap();
    let len = bytes.len() as u64;
    bytes[..8].copy_from_slice(&len.to_le_bytes());
    assert_eq!(
        load_error(&bytes),
        format!(
            "safetensors bytes: the header claims {len} bytes but only {} follow its length: \
             the file is truncated or corrupt",
            len - 8
        )
    );
    bytes[..8].copy_from_slice(&u64::MAX.to_le_bytes());
    assert!(load_error(&bytes).contains("the header claims 18446744073709551615 bytes"));
}

/// Hand-made headers, each wrong in one way.
#[test]
fn corrupt_headers_are_errors_naming_the_tensor() {
    let w = r#""fc1.weight":{"dtype":"F64","shape":[4,3],"data_offsets":[0,96]}"#;
    let cases = [
        (raw("not json", &[]), "the header is not a JSON object: expected ident at line 1 column 2"),
        (
            raw(&format!("{{{w}}}"), &[0; 88]),
            "tensor `fc1.weight`: data_offsets [0, 96] reach past the 88 bytes of data: \
             the file is truncated or its header corrupt",
        ),
        (
            raw(r#"{"fc1.bias":{"dtype":"F99","shape":[4],"data_offsets":[0,32]}}"#, &[0; 32]),
            "tensor `fc1.bias`: unknown dtype \"F99\"",
        ),
        (
            raw(r#"{"fc1.bias":{"dtype":"F64","shape":[4],"data_offsets":[0,24]}}"#, &[0; 24]),
            "tensor `fc1.bias`: data_offsets [0, 24] hold 24 bytes, but F64 [4] needs 32",
        ),
        (
            raw(r#"{"fc1.bias":{"dtype":"F64","shape":[4]}}"#, &[0; 32]),
            "tensor `fc1.bias`: the header entry has no `data_offsets`",
        ),
        (
            raw(r#"{"fc1.bias":{"dtype":"F64","shape":[-4],"data_offsets":[0,32]}}"#, &[0; 32]),
            "tensor `fc1.bias`: the shape [-4] is not a list of sizes",
        ),
        (
            raw(
                r#"{"fc1.bias":{"dtype":"F64","shape":[4],"data_offsets":[8,40]}}"#,
                &[0; 40],
            ),
            "tensor `fc1.bias`: data_offsets [8, 40] do not start where the previous tensor ends, at 0",
        ),
        (
            raw(&format!("{{{w}}}"), &[0; 100]),
            "4 bytes of data follow the last tensor, which ends at 96",
        ),
    ];
    for (bytes, expected) in cases {
        assert_eq!(load_error(&bytes), format!("safetensors bytes: {expected}"));
    }
    let mut not_utf8 = raw(&format!("{{{w}}}"), &[0; 96]);
    not_utf8[10] = 0xff;
    assert!(load_error(&not_utf8).starts_with("safetensors bytes: the header is not a JSON object"));
}

/// Any single corrupted header byte gives an error or, where the JSON stays valid and means
/// the same (the metadata's value), the file's exact values; never a panic or a partial
/// load. (Corrupted data bytes cannot be detected: safetensors has no checksum. Checkpoints
/// have one.)
#[test]
fn every_corrupted_header_byte_is_caught_or_harmless() {
    let source = net::<f64>(1);
    let bytes = source.to_safetensors_bytes().unwrap();
    let header_end = 8 + u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let mut harmless = 0;
    for i in 0..header_end {
        for flip in [0x01u8, 0x20, 0x80] {
            let mut bad = bytes.clone();
            bad[i] ^= flip;
            let mut target = net::<f64>(99);
            let before = snapshot(&target);
            match target.load_safetensors_bytes(&bad) {
                Err(_) => assert_eq!(snapshot(&target), before, "byte {i}"),
                Ok(()) => {
                    assert_eq!(snapshot(&target), snapshot(&source), "byte {i}");
                    harmless += 1;
                }
            }
        }
    }
    // only the metadata {"format":"pt"} can change harmlessly: its 8 letters, each to
    // another letter or a backtick (0x01) or to upper case (0x20); 0x80 breaks UTF-8
    assert_eq!(harmless, 8 * 2);
}

#[test]
fn a_missing_file_is_an_io_error_naming_the_path() {
    let mut m = net::<f32>(1);
    let err = m
        .load_safetensors("/nonexistent/dir/w.safetensors")
        .unwrap_err();
    assert!(matches!(err, nanograd_runtime::Error::Io { .. }));
    assert!(
        err.to_string()
            .starts_with("/nonexistent/dir/w.safetensors: "),
        "{err}"
    );
    let err = m
        .save_safetensors("/nonexistent/dir/w.safetensors")
        .unwrap_err();
    assert!(err.to_string().contains("/nonexistent/dir/"), "{err}");
}

/// A model that names two tensors alike cannot be saved or loaded.
#[test]
fn duplicate_names_are_an_error() {
    let twice = || Named {
        params: vec![
            ("w".to_string(), Param::<f64>::zeros(&[1]).unwrap()),
            ("w".to_string(), Param::zeros(&[1]).unwrap()),
        ],
        buffers: vec![],
    };
    let err = twice().to_safetensors_bytes().unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid argument to save_safetensors: the model has two tensors named `w`"
    );
    let one = Named {
        params: vec![("w".to_string(), Param::<f64>::zeros(&[1]).unwrap())],
        buffers: vec![],
    };
    let err = twice()
        .load_safetensors_bytes(&one.to_safetensors_bytes().unwrap())
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "safetensors bytes: the model has two tensors named `w`"
    );
}
