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
    optimizer: BTreeMap<String, Json>,
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
        let root = Json::parse(&text);
        let steps = root.get("steps").num() as usize;
        let case = root.get("cases").get(name);
        let tensors = ["x", "target", "eval_output"]
            .into_iter()
            .map(|k| (k.to_string(), Tensor::from_json(case.get(k))))
            .collect();
        let case = Case {
            name: name.to_string(),
            steps,
            optimizer: case.get("optimizer").obj().clone(),
            tensors,
            init: Tensor::map(case.get("init")),
            losses: case.get("losses").arr().iter().map(Json::num).collect(),
            final_params: Tensor::map(case.get("final")),
            buffers: Tensor::map(case.get("buffers")),
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
    fn from_json(j: &Json) -> Tensor {
        let shape: Vec<usize> = j
            .get("shape")
            .arr()
            .iter()
            .map(|d| d.num() as usize)
            .collect();
        let data: Vec<f64> = j.get("data").arr().iter().map(Json::num).collect();
        assert_eq!(shape.iter().product::<usize>(), data.len(), "{shape:?}");
        Tensor { shape, data }
    }

    /// An object of tensors by name.
    fn map(j: &Json) -> BTreeMap<String, Tensor> {
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
// a JSON reader for the fixture (the root package has no JSON dependency)

/// A JSON value: the fixture holds objects, arrays, strings and numbers only.
#[derive(Clone, Debug)]
enum Json {
    Num(f64),
    Str(String),
    Arr(Vec<Json>),
    Obj(BTreeMap<String, Json>),
}

impl Json {
    /// Parses a whole document; panics with the byte offset on malformed input.
    fn parse(text: &str) -> Json {
        let mut p = Parser {
            s: text.as_bytes(),
            i: 0,
        };
        let v = p.value();
        p.ws();
        assert_eq!(p.i, p.s.len(), "trailing characters at byte {}", p.i);
        v
    }

    fn get(&self, key: &str) -> &Json {
        self.obj()
            .get(key)
            .unwrap_or_else(|| panic!("fixture has no key `{key}`"))
    }
    fn obj(&self) -> &BTreeMap<String, Json> {
        match self {
            Json::Obj(m) => m,
            other => panic!("expected an object, got {other:?}"),
        }
    }
    fn arr(&self) -> &[Json] {
        match self {
            Json::Arr(a) => a,
            other => panic!("expected an array, got {other:?}"),
        }
    }
    fn num(&self) -> f64 {
        match self {
            Json::Num(v) => *v,
            other => panic!("expected a number, got {other:?}"),
        }
    }
    fn str(&self) -> &str {
        match self {
            Json::Str(s) => s,
            other => panic!("expected a string, got {other:?}"),
        }
    }
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn ws(&mut self) {
        while self.s.get(self.i).is_some_and(u8::is_ascii_whitespace) {
            self.i += 1;
        }
    }

    fn eat(&mut self, c: u8) {
        self.ws();
        assert_eq!(
            self.s.get(self.i),
            Some(&c),
            "expected `{}` at byte {}",
            c as char,
            self.i
        );
        self.i += 1;
    }

    /// Whether the next non-space byte is `c` (consumed if so).
    fn next_is(&mut self, c: u8) -> bool {
        self.ws();
        let yes = self.s.get(self.i) == Some(&c);
        self.i += usize::from(yes);
        yes
    }

    fn value(&mut self) -> Json {
        self.ws();
        match self.s.get(self.i) {
            Some(b'{') => {
                self.i += 1;
                let mut m = BTreeMap::new();
                if !self.next_is(b'}') {
                    loop {
                        self.ws();
                        let k = self.string();
                        self.eat(b':');
                        m.insert(k, self.value());
                        if !self.next_is(b',') {
                            break;
                        }
                    }
                    self.eat(b'}');
                }
                Json::Obj(m)
            }
            Some(b'[') => {
                self.i += 1;
                let mut a = Vec::new();
                if !self.next_is(b']') {
                    loop {
                        a.push(self.value());
                        if !self.next_is(b',') {
                            break;
                        }
                    }
                    self.eat(b']');
                }
                Json::Arr(a)
            }
            Some(b'"') => Json::Str(self.string()),
            _ => self.literal(),
        }
    }

    /// A string; the fixture's keys and values have no escapes but `\"` and `\\`.
    fn string(&mut self) -> String {
        self.eat(b'"');
        let mut out = Vec::new();
        loop {
            match self.s.get(self.i) {
                Some(b'"') => break,
                Some(b'\\') => {
                    out.push(self.s[self.i + 1]);
                    self.i += 2;
                }
                Some(&c) => {
                    out.push(c);
                    self.i += 1;
                }
                None => panic!("unterminated string"),
            }
        }
        self.i += 1;
        String::from_utf8(out).expect("UTF-8 string")
    }

    /// A number, exactly as Python's `repr` wrote it (`NaN` and `Infinity` included).
    fn literal(&mut self) -> Json {
        let start = self.i;
        while self
            .s
            .get(self.i)
            .is_some_and(|c| c.is_ascii_alphanumeric() || b"+-.".contains(c))
        {
            self.i += 1;
        }
        let word = std::str::from_utf8(&self.s[start..self.i]).expect("ASCII");
        match word {
            "NaN" => Json::Num(f64::NAN),
            "Infinity" => Json::Num(f64::INFINITY),
            "-Infinity" => Json::Num(f64::NEG_INFINITY),
            _ => Json::Num(
                word.parse()
                    .unwrap_or_else(|_| panic!("bad JSON value `{word}` at byte {start}")),
            ),
        }
    }
}
