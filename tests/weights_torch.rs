//! Weights as safetensors, both ways across PyTorch (fixtures: tests/fixtures/gen_safetensors.py).
//!
//! - PyTorch to us: state dicts that PyTorch saved with `safetensors.torch.save_file` (an MLP,
//!   and a CNN with two batch norms whose running statistics PyTorch trained, with their
//!   `num_batches_tracked` counters), in float32 and float64, load into the `model!`
//!   declarations below and give PyTorch's evaluation-mode logits (1e-5 in f32, 1e-12 in f64).
//! - Us to PyTorch: `ours_*_f32.safetensors` were written once by this file's ignored test
//!   `write_our_fixtures`; the script loaded them into the PyTorch models with
//!   `load_state_dict(strict=True)` and recorded PyTorch's logits. Here the same seeded
//!   models must serialise to exactly those bytes (so what PyTorch verified is what we write)
//!   and give PyTorch's logits.

use std::collections::BTreeMap;
use std::path::PathBuf;

use nanograd::assert_close;
use nanograd::prelude::*;
use nanograd::rand::{RngExt, SeedableRng};
use nanograd::WorkspaceRng;

model! {
    /// fc1, relu, fc2: logits of 4 classes (PyTorch: `Mlp` in gen_safetensors.py).
    pub struct Mlp {
        fc1: Dense(6 -> 16),
        fc2: Dense(16 -> 4),
    }

    fn forward(x: [B, 6]) -> [B, 4] {
        fc2(relu(fc1(x)))
    }
}

model! {
    /// conv, batch norm, relu, strided conv, batch norm, relu, global average pool, dense
    /// (PyTorch: `Cnn` in gen_safetensors.py).
    pub struct Cnn {
        conv1: Conv2d(2 -> 4, kernel = 3, padding = 1),
        bn1: BatchNorm2d(4),
        conv2: Conv2d(4 -> 6, kernel = 3, stride = 2, padding = 1),
        bn2: BatchNorm2d(6),
        fc: Dense(6 -> 3),
    }

    fn forward(x: [B, 2, 5, 5]) -> [B, 3] {
        let h = relu(bn1(conv1(x)));
        let h: [B, 6, 3, 3] = relu(bn2(conv2(h)));
        fc(global_avg_pool2d(h))
    }
}

// ---------------------------------------------------------------------------------------
// PyTorch's files into our models

#[test]
fn pytorch_mlp_f32_gives_pytorch_logits() {
    let fx = Fixtures::load();
    let mut model = Mlp::<f32>::new(&mut WorkspaceRng::seed_from_u64(0));
    model
        .load_safetensors(fixture("torch_mlp_f32.safetensors"))
        .unwrap();
    model.set_eval_mode();
    let out = model.forward(&rows::<f32, 6>(&fx["mlp"]["x"])).unwrap();
    assert_close!(out.as_flattened(), fx["mlp"]["logits_f32"].data, 1e-5);
    // the file's values, exactly: fc1.bias against PyTorch's float32 values
    assert_eq!(
        model.fc1.bias.value(),
        to_f32(&fx["mlp"]["fc1.bias"].data).as_slice()
    );
}

#[test]
fn pytorch_mlp_f64_gives_pytorch_logits() {
    let fx = Fixtures::load();
    let mut model = Mlp::<f64>::new(&mut WorkspaceRng::seed_from_u64(0));
    model
        .load_safetensors(fixture("torch_mlp_f64.safetensors"))
        .unwrap();
    model.set_eval_mode();
    let out = model.forward(&rows::<f64, 6>(&fx["mlp"]["x"])).unwrap();
    assert_close!(out.as_flattened(), fx["mlp"]["logits_f64"].data, 1e-12);
}

#[test]
fn pytorch_cnn_with_running_stats_f32_gives_pytorch_logits() {
    let fx = Fixtures::load();
    let mut model = Cnn::<f32>::new(&mut WorkspaceRng::seed_from_u64(0));
    model
        .load_safetensors(fixture("torch_cnn_f32.safetensors"))
        .unwrap();
    // the running statistics PyTorch trained (not the initial zeros and ones)
    assert_eq!(
        model.bn2.running_var.data(),
        to_f32(&fx["cnn"]["bn2.running_var"].data).as_slice()
    );
    assert!(model.bn1.running_mean.data().iter().all(|&m| m != 0.0));
    model.set_eval_mode();
    let out = model.forward(&images::<f32>(&fx["cnn"]["x"])).unwrap();
    assert_close!(out.as_flattened(), fx["cnn"]["logits_f32"].data, 1e-5);
}

#[test]
fn pytorch_cnn_with_running_stats_f64_gives_pytorch_logits() {
    let fx = Fixtures::load();
    let mut model = Cnn::<f64>::new(&mut WorkspaceRng::seed_from_u64(0));
    model
        .load_safetensors(fixture("torch_cnn_f64.safetensors"))
        .unwrap();
    model.set_eval_mode();
    let out = model.forward(&images::<f64>(&fx["cnn"]["x"])).unwrap();
    assert_close!(out.as_flattened(), fx["cnn"]["logits_f64"].data, 1e-12);
}

/// Our writer makes the very bytes PyTorch's safetensors writes for the same tensors: the
/// MLP (no `num_batches_tracked`) loaded from PyTorch's files and saved again.
#[test]
fn pytorch_mlp_file_saved_again_is_byte_identical() {
    for (name, bytes) in [
        ("torch_mlp_f32.safetensors", {
            let mut m = Mlp::<f32>::new(&mut WorkspaceRng::seed_from_u64(0));
            m.load_safetensors(fixture("torch_mlp_f32.safetensors"))
                .unwrap();
            m.to_safetensors_bytes().unwrap()
        }),
        ("torch_mlp_f64.safetensors", {
            let mut m = Mlp::<f64>::new(&mut WorkspaceRng::seed_from_u64(0));
            m.load_safetensors(fixture("torch_mlp_f64.safetensors"))
                .unwrap();
            m.to_safetensors_bytes().unwrap()
        }),
    ] {
        assert_eq!(bytes, std::fs::read(fixture(name)).unwrap(), "{name}");
    }
}

/// A float64 file into a float32 model is refused, naming the tensor and both dtypes, and
/// the model keeps its values.
#[test]
fn pytorch_f64_file_into_f32_model_is_an_error() {
    let mut model = Mlp::<f32>::new(&mut WorkspaceRng::seed_from_u64(0));
    let before = model.to_safetensors_bytes().unwrap();
    let err = model
        .load_safetensors(fixture("torch_mlp_f64.safetensors"))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("tensor `fc1.weight` is F64 in the file but F32 in the model"),
        "{err}"
    );
    assert_eq!(model.to_safetensors_bytes().unwrap(), before);
}

/// The CNN's file from PyTorch names a tensor our MLP lacks and lacks those it has.
#[test]
fn pytorch_file_of_another_architecture_is_an_error() {
    let mut model = Mlp::<f32>::new(&mut WorkspaceRng::seed_from_u64(0));
    let err = model
        .load_safetensors(fixture("torch_cnn_f32.safetensors"))
        .unwrap_err()
        .to_string();
    for expected in [
        "missing tensor `fc1.weight` (F32 [16, 6] in the model)",
        "missing tensor `fc2.bias` (F32 [4] in the model)",
        "unexpected tensor `bn1.num_batches_tracked`",
        "unexpected tensor `conv1.weight`",
        "unexpected tensor `fc.bias`",
    ] {
        assert!(err.contains(expected), "`{expected}` not in: {err}");
    }
}

// ---------------------------------------------------------------------------------------
// our files into PyTorch

/// Our seeded models serialise to the very bytes PyTorch loaded (strictly) when the
/// fixtures were made, and compute the logits PyTorch computed from them.
#[test]
fn our_mlp_file_is_the_one_pytorch_verified() {
    let fx = Fixtures::load();
    let mut model: Mlp<f32> = our_mlp();
    let committed = std::fs::read(fixture("ours_mlp_f32.safetensors")).unwrap();
    assert_eq!(model.to_safetensors_bytes().unwrap(), committed);
    model.set_eval_mode();
    let out = model.forward(&rows::<f32, 6>(&fx["mlp"]["x"])).unwrap();
    assert_close!(
        out.as_flattened(),
        fx["ours_mlp"]["torch_logits"].data,
        1e-5
    );
}

#[test]
fn our_cnn_file_is_the_one_pytorch_verified() {
    let fx = Fixtures::load();
    let mut model: Cnn<f32> = our_cnn();
    let committed = std::fs::read(fixture("ours_cnn_f32.safetensors")).unwrap();
    assert_eq!(model.to_safetensors_bytes().unwrap(), committed);
    model.set_eval_mode();
    let out = model.forward(&images::<f32>(&fx["cnn"]["x"])).unwrap();
    assert_close!(
        out.as_flattened(),
        fx["ours_cnn"]["torch_logits"].data,
        1e-5
    );
}

/// Saving to a file writes the same bytes, and loading them back restores every value.
#[test]
fn save_then_load_round_trips_through_a_file() {
    let dir = scratch_dir("round_trip");
    let path = dir.join("cnn.safetensors");
    let model: Cnn<f64> = our_cnn();
    model.save_safetensors(&path).unwrap();
    assert_eq!(
        std::fs::read(&path).unwrap(),
        model.to_safetensors_bytes().unwrap()
    );
    let mut other = Cnn::<f64>::new(&mut WorkspaceRng::seed_from_u64(5));
    other.load_safetensors(&path).unwrap();
    assert_eq!(
        other.to_safetensors_bytes().unwrap(),
        model.to_safetensors_bytes().unwrap()
    );
    assert_eq!(other.bn2.running_mean.data(), model.bn2.running_mean.data());
    std::fs::remove_dir_all(dir).unwrap();
}

/// Writes `ours_*_f32.safetensors`; run once, then run gen_safetensors.py so that PyTorch
/// checks them and records its logits:
/// `cargo test --test weights_torch -- --ignored write_our_fixtures`.
#[test]
#[ignore = "writes the fixtures that gen_safetensors.py verifies in PyTorch"]
fn write_our_fixtures() {
    our_mlp::<f32>()
        .save_safetensors(fixture("ours_mlp_f32.safetensors"))
        .unwrap();
    our_cnn::<f32>()
        .save_safetensors(fixture("ours_cnn_f32.safetensors"))
        .unwrap();
}

/// Our MLP with every parameter drawn from a seeded stream (see [`fill`]).
fn our_mlp<T: Float>() -> Mlp<T> {
    let mut model = Mlp::new(&mut WorkspaceRng::seed_from_u64(1));
    fill(&mut model, 11);
    model
}

/// Our CNN with every parameter and running statistic drawn from a seeded stream.
fn our_cnn<T: Float>() -> Cnn<T> {
    let mut model = Cnn::new(&mut WorkspaceRng::seed_from_u64(2));
    fill(&mut model, 12);
    model
}

/// Overwrites every parameter with uniform values in [-0.5, 0.5) and every buffer with
/// values in [0.5, 1.5) (valid variances), from ChaCha8 with `seed`: integer arithmetic and
/// exact float operations only, so the bytes are the same on every machine.
fn fill<T: Float>(model: &mut dyn Module<T>, seed: u64) {
    let mut rng = WorkspaceRng::seed_from_u64(seed);
    model.visit_params_mut(&mut |_, p| {
        for v in p.value_mut() {
            *v = T::from_f64(rng.random_range(-0.5..0.5));
        }
    });
    model.visit_buffers_mut(&mut |_, b| {
        for v in b.data_mut() {
            *v = T::from_f64(rng.random_range(0.5..1.5));
        }
    });
}

// ---------------------------------------------------------------------------------------
// fixtures

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// A fresh directory under target/ for files a test writes.
fn scratch_dir(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("weights_torch_{name}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A tensor of safetensors.json: shape and row-major data.
struct Tensor {
    shape: Vec<usize>,
    data: Vec<f64>,
}

/// safetensors.json: group (`mlp`, `cnn`, `ours_mlp`, `ours_cnn`) -> name -> tensor.
struct Fixtures(BTreeMap<String, BTreeMap<String, Tensor>>);

impl Fixtures {
    fn load() -> Fixtures {
        let path = fixture("safetensors.json");
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
            panic!(
                "{}: {e} (run tests/fixtures/gen_safetensors.py)",
                path.display()
            )
        });
        let root: serde_json::Value = serde_json::from_str(&text).unwrap();
        let groups = root.as_object().expect("an object of groups");
        Fixtures(
            groups
                .iter()
                .map(|(g, tensors)| {
                    let tensors = tensors.as_object().expect("an object of tensors");
                    let tensors = tensors.iter().map(|(n, t)| (n.clone(), tensor(t)));
                    (g.clone(), tensors.collect())
                })
                .collect(),
        )
    }
}

impl std::ops::Index<&str> for Fixtures {
    type Output = BTreeMap<String, Tensor>;
    fn index(&self, group: &str) -> &Self::Output {
        self.0
            .get(group)
            .unwrap_or_else(|| panic!("safetensors.json has no group `{group}`"))
    }
}

fn tensor(j: &serde_json::Value) -> Tensor {
    let nums = |key: &str| -> Vec<f64> {
        j[key]
            .as_array()
            .unwrap_or_else(|| panic!("no `{key}` in {j}"))
            .iter()
            .map(|v| v.as_f64().expect("a number"))
            .collect()
    };
    let shape: Vec<usize> = nums("shape").iter().map(|&d| d as usize).collect();
    let data = nums("data");
    assert_eq!(shape.iter().product::<usize>(), data.len(), "{shape:?}");
    Tensor { shape, data }
}

/// A `[B, N]` tensor as rows of `T` (the inputs are float32 values: exact in both types).
fn rows<T: Float, const N: usize>(t: &Tensor) -> Vec<[T; N]> {
    assert_eq!(t.shape[1..], [N]);
    let mut out = vec![[T::zero(); N]; t.shape[0]];
    for (o, &v) in out.as_flattened_mut().iter_mut().zip(&t.data) {
        *o = T::from_f64(v);
    }
    out
}

/// A `[B, 2, 5, 5]` tensor as images of `T`.
fn images<T: Float>(t: &Tensor) -> Vec<[[[T; 5]; 5]; 2]> {
    assert_eq!(t.shape[1..], [2, 5, 5]);
    let mut out = vec![[[[T::zero(); 5]; 5]; 2]; t.shape[0]];
    let flat = out.as_flattened_mut().as_flattened_mut().as_flattened_mut();
    for (o, &v) in flat.iter_mut().zip(&t.data) {
        *o = T::from_f64(v);
    }
    out
}

fn to_f32(values: &[f64]) -> Vec<f32> {
    values.iter().map(|&v| v as f32).collect()
}
