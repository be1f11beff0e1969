//! Checkpoints: a round trip restores model, dropout stream, optimizer, step and the loop's
//! stream exactly; every damaged or mismatched checkpoint is an error that changes nothing.

use nanograd_runtime::io::Checkpoint;
use nanograd_runtime::layers::{BatchNorm2d, Dense};
use nanograd_runtime::module::{self, Module};
use nanograd_runtime::rand::{RngExt, SeedableRng};
use nanograd_runtime::{Adam, Float, Optimizer, Param, SafetensorsExt, Sgd, Tensor, WorkspaceRng};

/// A dense layer and a batch norm, and (like a `model!` model) a dropout stream unless
/// built without one.
#[derive(Clone)]
struct Net<T: Float> {
    fc: Dense<T>,
    bn: BatchNorm2d<T>,
    rng: Option<WorkspaceRng>,
}

impl<T: Float> Module<T> for Net<T> {
    fn visit_params(&self, f: &mut dyn FnMut(&str, &Param<T>)) {
        module::visit_child_params("fc", &self.fc, f);
        module::visit_child_params("bn", &self.bn, f);
    }
    fn visit_params_mut(&mut self, f: &mut dyn FnMut(&str, &mut Param<T>)) {
        module::visit_child_params_mut("fc", &mut self.fc, f);
        module::visit_child_params_mut("bn", &mut self.bn, f);
    }
    fn visit_buffers(&self, f: &mut dyn FnMut(&str, &Tensor<T>)) {
        module::visit_child_buffers("bn", &self.bn, f);
    }
    fn visit_buffers_mut(&mut self, f: &mut dyn FnMut(&str, &mut Tensor<T>)) {
        module::visit_child_buffers_mut("bn", &mut self.bn, f);
    }
    fn rng(&self) -> Option<&WorkspaceRng> {
        self.rng.as_ref()
    }
    fn rng_mut(&mut self) -> Option<&mut WorkspaceRng> {
        self.rng.as_mut()
    }
    fn set_training_mode(&mut self, training: bool) {
        self.fc.set_training_mode(training);
        self.bn.set_training_mode(training);
    }
    fn is_training(&self) -> bool {
        self.fc.is_training()
    }
}

fn net<T: Float>(seed: u64, inputs: usize) -> Net<T> {
    let mut rng = WorkspaceRng::seed_from_u64(seed);
    let mut n = Net {
        fc: Dense::new(inputs, 4, &mut rng).unwrap(),
        bn: BatchNorm2d::new(4).unwrap(),
        rng: Some(WorkspaceRng::seed_from_u64(seed + 1000)),
    };
    n.visit_buffers_mut(&mut |_, b| {
        for v in b.data_mut() {
            *v = T::from_f64(rng.random_range(0.5..1.5));
        }
    });
    n
}

/// `steps` optimizer steps with made-up gradients (`grad = value + 1`), drawing from the
/// model's stream as dropout would.
fn train<T: Float>(model: &mut Net<T>, opt: &mut dyn Optimizer<T>, steps: usize) {
    for _ in 0..steps {
        model.visit_params_mut(&mut |_, p| {
            let (value, grad) = p.value_and_grad_mut();
            for (g, &v) in grad.iter_mut().zip(value.iter()) {
                *g = v + T::one();
            }
        });
        let _: u64 = model.rng.as_mut().unwrap().random();
        opt.step(model).unwrap();
    }
}

/// A checkpoint of a net trained 3 steps with SGD (momentum), at step 3.
fn checkpoint() -> (Net<f64>, Sgd<f64>, WorkspaceRng, Vec<u8>) {
    let mut model = net::<f64>(1, 3);
    let mut opt = Sgd::new(0.1).momentum(0.9).weight_decay(0.01);
    train(&mut model, &mut opt, 3);
    let mut rng = WorkspaceRng::seed_from_u64(7);
    let _: f64 = rng.random();
    let bytes = Checkpoint::to_bytes(&model, &opt, 3, &rng).unwrap();
    (model, opt, rng, bytes)
}

/// Loads `bytes` into a fresh net, SGD and stream, expecting an error; asserts that none of
/// the three changed and returns the message.
fn load_error(bytes: &[u8]) -> String {
    let mut model = net::<f64>(50, 3);
    let mut opt = Sgd::new(0.5);
    let mut rng = WorkspaceRng::seed_from_u64(51);
    let (m0, o0, r0) = (model.clone(), opt.clone(), rng.clone());
    let err = Checkpoint::load_bytes(bytes, &mut model, &mut opt, &mut rng)
        .unwrap_err()
        .to_string();
    assert_eq!(weights(&model), weights(&m0), "{err}");
    assert_eq!((model.rng, opt, rng), (m0.rng, o0, r0), "{err}");
    err
}

fn weights<T: Float>(m: &Net<T>) -> Vec<u8> {
    m.to_safetensors_bytes().unwrap()
}

#[test]
fn round_trip_restores_everything() {
    let (model, opt, rng, bytes) = checkpoint();
    let mut model2 = net::<f64>(2, 3);
    let mut opt2 = Sgd::new(1.0);
    let mut rng2 = WorkspaceRng::seed_from_u64(0);
    let step = Checkpoint::load_bytes(&bytes, &mut model2, &mut opt2, &mut rng2).unwrap();
    assert_eq!(step, 3);
    assert_eq!(weights(&model2), weights(&model));
    assert_eq!(model2.rng, model.rng);
    assert_eq!(opt2, opt);
    assert_eq!(opt2.step_count(), 3);
    assert_eq!(rng2, rng);
    // and the next steps agree
    let (mut a, mut b) = (model.clone(), model2);
    let (mut oa, mut ob) = (opt.clone(), opt2);
    train(&mut a, &mut oa, 2);
    train(&mut b, &mut ob, 2);
    assert_eq!(weights(&a), weights(&b));
}

#[test]
fn round_trip_through_a_file_with_adam_in_f32() {
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("io_checkpoint_file");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("run.ckpt");
    let mut model = net::<f32>(1, 3);
    let mut opt = Adam::new(0.01).amsgrad(true);
    train(&mut model, &mut opt, 4);
    let rng = WorkspaceRng::seed_from_u64(3);
    Checkpoint::save(&path, &model, &opt, 40, &rng).unwrap();

    let (mut model2, mut opt2, mut rng2) = (net::<f32>(2, 3), Adam::new(0.5), rng.clone());
    let _: u32 = rng2.random();
    let step = Checkpoint::load(&path, &mut model2, &mut opt2, &mut rng2).unwrap();
    assert_eq!(step, 40);
    assert_eq!(weights(&model2), weights(&model));
    assert_eq!((&opt2, &rng2), (&opt, &rng));
    std::fs::remove_dir_all(dir).unwrap();

    // the file is gone: an I/O error naming it
    let mut opt3 = Adam::new(0.5);
    let err = Checkpoint::load(&path, &mut model2, &mut opt3, &mut rng2).unwrap_err();
    assert!(matches!(err, nanograd_runtime::Error::Io { .. }), "{err:?}");
    assert!(err.to_string().contains("run.ckpt"), "{err}");
}

/// Every prefix of a checkpoint, and every checkpoint with one byte changed, is refused
/// and changes nothing.
#[test]
fn every_truncation_and_every_corrupted_byte_is_an_error() {
    let (.., bytes) = checkpoint();
    for cut in 0..bytes.len() {
        load_error(&bytes[..cut]);
    }
    for i in 0..bytes.len() {
        let mut bad = bytes.clone();
        bad[i] ^= 0x10;
        load_error(&bad);
    }
    let mut bad = bytes.clone();
    let last = bad.len() - 9;
    bad[last] ^= 1; // the last byte of the state
    assert!(load_error(&bad)
        .starts_with("checkpoint bytes: the checkpoint is corrupt: its checksum is"));
    assert_eq!(
        load_error(&bytes[..bytes.len() - 3]),
        "checkpoint bytes: the checkpoint ends with 5 bytes where its 8-byte checksum belongs"
    );
}

#[test]
fn another_optimizer_type_is_an_error() {
    let (model, _, rng, _) = checkpoint();
    let mut adam = Adam::<f64>::new(0.1);
    train(&mut model.clone(), &mut adam, 1);
    let bytes = Checkpoint::to_bytes(&model, &adam, 3, &rng).unwrap();
    let err = load_error(&bytes);
    assert_eq!(
        err,
        "checkpoint bytes: cannot decode the checkpoint's state: missing field `momentum_buffer`"
    );
}

#[test]
fn another_dtype_is_an_error() {
    let mut model = net::<f32>(1, 3);
    let opt = Sgd::<f32>::new(0.1);
    let rng = WorkspaceRng::seed_from_u64(0);
    let bytes = Checkpoint::to_bytes(&model, &opt, 0, &rng).unwrap();
    let err = load_error(&bytes);
    assert_eq!(
        err,
        "checkpoint bytes: the checkpoint holds f32 weights but the model is f64"
    );
    // and the same checkpoint loads into an f32 model
    let mut opt2 = Sgd::<f32>::new(0.2);
    Checkpoint::load_bytes(&bytes, &mut model, &mut opt2, &mut rng.clone()).unwrap();
}

#[test]
fn another_architecture_is_an_error_naming_the_tensor() {
    let wide = net::<f64>(1, 5);
    let bytes =
        Checkpoint::to_bytes(&wide, &Sgd::new(0.1), 0, &WorkspaceRng::seed_from_u64(0)).unwrap();
    assert_eq!(
        load_error(&bytes),
        "checkpoint bytes: weights: tensor `fc.weight` has shape [4, 5] in the file but [4, 3] in the model"
    );
}

#[test]
fn a_dropout_stream_on_one_side_only_is_an_error() {
    let mut without = net::<f64>(1, 3);
    without.rng = None;
    let bytes =
        Checkpoint::to_bytes(&without, &Sgd::new(0.1), 0, &WorkspaceRng::seed_from_u64(0)).unwrap();
    assert_eq!(
        load_error(&bytes),
        "checkpoint bytes: the model keeps a dropout stream but the checkpoint holds none"
    );
    let (.., bytes) = checkpoint();
    let mut opt = Sgd::new(0.1);
    let err = Checkpoint::load_bytes(
        &bytes,
        &mut without,
        &mut opt,
        &mut WorkspaceRng::seed_from_u64(0),
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "checkpoint bytes: the checkpoint holds a dropout stream but the model keeps none"
    );
}

#[test]
fn a_safetensors_file_is_not_a_checkpoint() {
    let bytes = net::<f64>(1, 3).to_safetensors_bytes().unwrap();
    assert_eq!(
        load_error(&bytes),
        "checkpoint bytes: not a nanograd checkpoint (it does not start with `NGCKPT01`)"
    );
}
