//! Whole models declared with `model!`, trained for 20 optimizer steps from PyTorch's initial
//! weights, against PyTorch's loss trajectory and final parameters (fixtures:
//! tests/fixtures/gen_mlp.py, which trains the same models in float64).
//!
//! - an MLP with softmax cross-entropy on soft and one-hot targets, Adam, with and without
//!   (coupled) weight decay;
//! - a regression MLP with mean squared error, SGD with momentum and weight decay;
//! - a CNN with convolutions, batch norm in training mode and global average pooling, SGD
//!   with momentum; its running statistics after training, and its evaluation-mode output,
//!   are checked too.

use std::collections::BTreeMap;

use nanograd::assert_close;
use nanograd::prelude::*;
use nanograd::rand::{rngs::StdRng, SeedableRng};

model! {
    /// fc1, tanh, fc2: logits of 4 classes.
    pub struct Mlp {
        fc1: Dense(6 -> 8),
        fc2: Dense(8 -> 4),
    }

    fn forward(x: [B, 6]) -> [B, 4] {
        fc2(tanh(fc1(x)))
    }

    fn loss(x: [B, 6], target: [B, 4]) -> [] {
        softmax_cross_entropy(forward(x), target)
    }
}

model! {
    /// A regression head: fc1, relu, fc2, mean squared error.
    pub struct Regression {
        fc1: Dense(3 -> 6),
        fc2: Dense(6 -> 2),
    }

    fn forward(x: [B, 3]) -> [B, 2] {
        fc2(relu(fc1(x)))
    }

    fn loss(x: [B, 3], target: [B, 2]) -> [] {
        mse_loss(forward(x), target)
    }
}

model! {
    /// conv, batch norm, relu, strided conv, relu, global average pool, dense.
    pub struct Cnn {
        conv1: Conv2d(2 -> 4, kernel = 3, padding = 1),
        bn1: BatchNorm2d(4),
        conv2: Conv2d(4 -> 6, kernel = 3, stride = 2, padding = 1),
        fc: Dense(6 -> 3),
    }

    fn forward(x: [B, 2, 5, 5]) -> [B, 3] {
        let h = relu(bn1(conv1(x)));
        let h: [B, 6, 3, 3] = relu(conv2(h));
        fc(global_avg_pool2d(h))
    }

    fn loss(x: [B, 2, 5, 5], target: [B, 3]) -> [] {
        softmax_cross_entropy(forward(x), target)
    }
}

/// The tolerance of the issue: every loss and every final parameter, relative to
/// `max(1, |torch|)`.
const TOL: f64 = 1e-8;

// ---------------------------------------------------------------------------------------
// tests

#[test]
fn mlp_adam_matches_pytorch() {
    let case = Case::load("mlp_adam");
    let mut model = Mlp::<f64>::new(&mut StdRng::seed_from_u64(0));
    let (x, t) = (case.rows::<6>("x"), case.rows::<4>("target"));
    case.train(&mut model, |m| m.loss_backward(&x, &t));
}

#[test]
fn mlp_adam_with_weight_decay_matches_pytorch() {
    let case = Case::load("mlp_adam_weight_decay");
    let mut model = Mlp::<f64>::new(&mut StdRng::seed_from_u64(0));
    let (x, t) = (case.rows::<6>("x"), case.rows::<4>("target"));
    case.train(&mut model, |m| m.loss_backward(&x, &t));
}

#[test]
fn regression_sgd_momentum_matches_pytorch() {
    let case = Case::load("regression_sgd_momentum");
    let mut model = Regression::<f64>::new(&mut StdRng::seed_from_u64(0));
    let (x, t) = (case.rows::<3>("x"), case.rows::<2>("target"));
    case.train(&mut model, |m| m.loss_backward(&x, &t));
}

#[test]
fn cnn_with_batch_norm_sgd_momentum_matches_pytorch() {
    let case = Case::load("cnn_sgd_momentum");
    let mut model = Cnn::<f64>::new(&mut StdRng::seed_from_u64(0));
    let x = images::<2, 5, 5>(case.tensor("x"));
    let t = case.rows::<3>("target");
    case.train(&mut model, |m| m.loss_backward(&x, &t));
    // the running statistics were updated once per training step, as in PyTorch
    let mut buffers = 0;
    model.visit_buffers(&mut |name, b| {
        let expected = case.buffers.get(name);
        let expected = expected.unwrap_or_else(|| panic!("no PyTorch buffer `{name}`"));
        assert_eq!(b.shape(), expected.shape, "{name}");
        assert_close!(b.data(), expected.data, TOL);
        buffers += 1;
    });
    assert_eq!(buffers, case.buffers.len(), "every PyTorch buffer checked");
    assert_eq!(buffers, 2, "bn1.running_mean and bn1.running_var");
    // evaluation mode normalises with those running statistics
    model.set_eval_mode();
    let out = model.forward(&x).unwrap();
    assert_close!(out.as_flattened(), case.tensor("eval_output").data, TOL);
}

/// Loading PyTorch's `init` overwrites the model's own random initialisation: two
/// differently seeded models agree after loading.
#[test]
fn loading_replaces_every_parameter() {
    let case = Case::load("mlp_adam");
    let mut a = Mlp::<f64>::new(&mut StdRng::seed_from_u64(1));
    let mut b = Mlp::<f64>::new(&mut StdRng::seed_from_u64(2));
    assert_ne!(a.fc1.weight.value(), b.fc1.weight.value());
    case.load_params(&mut a);
    case.load_params(&mut b);
    a.visit_params(&mut |name, p| {
        b.visit_params(&mut |other, q| {
            if name == other {
                assert_eq!(p.value(), q.value(), "{name}");
            }
        });
    });
}

/// The same MLP in f32 follows PyTorch's f64 trajectory to f32 precision.
#[test]
fn mlp_adam_in_f32_follows_pytorch() {
    let case = Case::load("mlp_adam");
    let mut model = Mlp::<f32>::new(&mut StdRng::seed_from_u64(0));
    case.load_params(&mut model);
    let x: Vec<[f32; 6]> = to_f32(&case.rows::<6>("x"));
    let t: Vec<[f32; 4]> = to_f32(&case.rows::<4>("target"));
    let mut opt = Adam::new(0.01);
    let mut losses = Vec::new();
    for _ in 0..case.steps {
        model.zero_grad();
        losses.push(model.loss_backward(&x, &t).unwrap());
        opt.step(&mut model).unwrap();
    }
    assert_close!(losses, case.losses, 1e-4);
}

// ---------------------------------------------------------------------------------------
// one training run

/// One case of `mlp.json`.
struct Case {
    name: String,
    steps: usize,
    optimizer: serde_json::Map<String, serde_json::Value>,
    tensors: BTreeMap<String, Tensor>,
    init: BTreeMap<String, Tensor>,
    losses: Vec<f64>,
    final_params: BTreeMap<String, Tensor>,
    buffers: BTreeMap<String, Tensor>,
}

/// A tensor of the fixture: shape and row-major data.
#[derive(Debug)]
struct Tensor {
    shape: Vec<usize>,
    data: Vec<f64>,
}

impl Case {
    fn load(name: &str) -> Case {
        let path = format!("{}/tests/fixtures/mlp.json", env!("CARGO_MANIFEST_DIR"));
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("cannot read {path}: {e} (run tests/fixtures/gen_mlp.py)"));
        let root: serde_json::Value =
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"));
        let steps = root.at("steps").num() as usize;
        let case = root.at("cases").at(name);
        let tensors = ["x", "target", "eval_output"]
            .into_iter()
            .map(|k| (k.to_string(), Tensor::from_json(case.at(k))))
            .collect();
        let case = Case {
            name: name.to_string(),
            steps,
            optimizer: case.at("optimizer").obj().clone(),
            tensors,
            init: Tensor::map(case.at("init")),
            losses: case.at("losses").arr().iter().map(Json::num).collect(),
            final_params: Tensor::map(case.at("final")),
            buffers: Tensor::map(case.at("buffers")),
        };
        assert_eq!(case.losses.len(), case.steps, "{name}: one loss per step");
        case
    }

    fn tensor(&self, name: &str) -> &Tensor {
        &self.tensors[name]
    }

    /// A `[B, N]` input as rows.
    fn rows<const N: usize>(&self, name: &str) -> Vec<[f64; N]> {
        let t = self.tensor(name);
        assert_eq!(t.shape[1..], [N], "{name}");
        let mut rows = vec![[0.0; N]; t.shape[0]];
        rows.as_flattened_mut().copy_from_slice(&t.data);
        rows
    }

    /// The optimizer of the case, with PyTorch's configuration.
    fn optimizer(&self) -> Box<dyn Optimizer<f64>> {
        let cfg = |k: &str| self.optimizer[k].num();
        match self.optimizer["kind"].str() {
            "adam" => Box::new(Adam::new(cfg("lr")).weight_decay(cfg("weight_decay"))),
            "sgd" => Box::new(
                Sgd::new(cfg("lr"))
                    .momentum(cfg("momentum"))
                    .weight_decay(cfg("weight_decay")),
            ),
            other => panic!("unknown optimizer kind `{other}`"),
        }
    }

    /// Overwrites every parameter of `model` with PyTorch's initial value of the same name;
    /// the two models must have the same parameter names and shapes.
    fn load_params<T: Float>(&self, model: &mut dyn Module<T>) {
        let mut loaded = 0;
        model.visit_params_mut(&mut |name, p| {
            let init = self.init.get(name);
            let init = init.unwrap_or_else(|| panic!("{}: no PyTorch `{name}`", self.name));
            assert_eq!(p.shape(), init.shape, "{}: shape of {name}", self.name);
            for (v, &e) in p.value_mut().iter_mut().zip(&init.data) {
                *v = T::from_f64(e);
            }
            loaded += 1;
        });
        assert_eq!(loaded, self.init.len(), "{}: every parameter", self.name);
    }

    /// Loads the initial parameters, runs `zero_grad; loss_backward; step` for every step,
    /// and compares each step's loss and the final parameters with PyTorch's.
    fn train<M: Module<f64>>(
        &self,
        model: &mut M,
        mut loss_backward: impl FnMut(&mut M) -> nanograd::Result<f64>,
    ) {
        self.load_params(model);
        let mut opt = self.optimizer();
        let mut losses = Vec::with_capacity(self.steps);
        for _ in 0..self.steps {
            model.zero_grad();
            losses.push(loss_backward(model).unwrap());
            opt.step(model).unwrap();
        }
        assert_eq!(opt.step_count(), self.steps as u64);
        assert_close!(losses, self.losses, TOL);
        assert!(
            losses[self.steps - 1] < losses[0] - 0.1,
            "{}: training lowers the loss: {losses:?}",
            self.name
        );
        let (mut checked, mut moved) = (0, false);
        model.visit_params(&mut |name, p| {
            let expected = &self.final_params[name];
            assert_close!(p.value(), expected.data, TOL);
            let init = &self.init[name].data;
            moved |= p
                .value()
                .iter()
                .zip(init)
                .any(|(a, b)| (a - b).abs() > 1e-3);
            checked += 1;
        });
        assert!(moved, "{}: the parameters moved during training", self.name);
        assert_eq!(checked, self.final_params.len());
    }
}

impl Tensor {
    fn from_json(j: &serde_json::Value) -> Tensor {
        let shape: Vec<usize> = j
            .at("shape")
            .arr()
            .iter()
            .map(|d| d.num() as usize)
            .collect();
        let data: Vec<f64> = j.at("data").arr().iter().map(Json::num).collect();
        assert_eq!(shape.iter().product::<usize>(), data.len(), "{shape:?}");
        Tensor { shape, data }
    }

    /// An object of tensors by name.
    fn map(j: &serde_json::Value) -> BTreeMap<String, Tensor> {
        j.obj()
            .iter()
            .map(|(k, v)| (k.clone(), Tensor::from_json(v)))
            .collect()
    }
}

/// A `[B, C, H, W]` tensor as images.
fn images<const C: usize, const H: usize, const W: usize>(t: &Tensor) -> Vec<[[[f64; W]; H]; C]> {
    assert_eq!(t.shape[1..], [C, H, W]);
    let mut out = vec![[[[0.0; W]; H]; C]; t.shape[0]];
    out.as_flattened_mut()
        .as_flattened_mut()
        .as_flattened_mut()
        .copy_from_slice(&t.data);
    out
}

fn to_f32<const N: usize>(rows: &[[f64; N]]) -> Vec<[f32; N]> {
    rows.iter().map(|r| r.map(|v| v as f32)).collect()
}

// ---------------------------------------------------------------------------------------
// reading the fixture

/// Typed access to the fixture's JSON; a missing key or a wrong type is a test failure.
trait Json {
    fn at(&self, key: &str) -> &serde_json::Value;
    fn num(&self) -> f64;
    fn str(&self) -> &str;
    fn arr(&self) -> &Vec<serde_json::Value>;
    fn obj(&self) -> &serde_json::Map<String, serde_json::Value>;
}

impl Json for serde_json::Value {
    fn at(&self, key: &str) -> &serde_json::Value {
        self.as_object()
            .and_then(|o| o.get(key))
            .unwrap_or_else(|| panic!("fixture has no `{key}`"))
    }
    fn num(&self) -> f64 {
        self.as_f64()
            .unwrap_or_else(|| panic!("not a number: {self}"))
    }
    fn str(&self) -> &str {
        self.as_str()
            .unwrap_or_else(|| panic!("not a string: {self}"))
    }
    fn arr(&self) -> &Vec<serde_json::Value> {
        self.as_array()
            .unwrap_or_else(|| panic!("not an array: {self}"))
    }
    fn obj(&self) -> &serde_json::Map<String, serde_json::Value> {
        self.as_object()
            .unwrap_or_else(|| panic!("not an object: {self}"))
    }
}
