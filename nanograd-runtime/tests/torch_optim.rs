//! Optimizers, gradient clipping and learning-rate schedules against PyTorch (fixtures:
//! tests/fixtures/gen_optim.py), a checkpoint round trip, and a proof that a step allocates
//! nothing once the state exists.

mod common;
#[path = "../../tests/support/counting_alloc.rs"]
mod counting_alloc;

use std::collections::BTreeMap;

use common::TensorData;
use counting_alloc::allocations;
use nanograd_runtime::module::{visit_child_params, visit_child_params_mut};
use nanograd_runtime::optim::DecayScope;
use nanograd_runtime::optim::{
    clip_grad_norm, clip_grad_value, CosineAnnealing, ExponentialDecay, LrSchedule, StepDecay,
};
use nanograd_runtime::rand::{rngs::StdRng, SeedableRng};
use nanograd_runtime::{
    assert_close, Adam, AdamW, Dense, Float, Module, Optimizer, Param, RmsProp, Sgd,
};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

// ---------------------------------------------------------------------------------------
// fixture

#[derive(Deserialize)]
struct Fixture {
    problem: Problem,
    optimizers: BTreeMap<String, OptimCase>,
    clip_grad_norm: Vec<ClipNormCase>,
    clip_grad_value: ClipValueCase,
    schedules: Schedules,
}

/// Parameters `init`, and the loss `sum(c * p^2) + sum(d * p)` per parameter.
#[derive(Deserialize)]
struct Problem {
    names: Vec<String>,
    init: Vec<TensorData>,
    c: Vec<TensorData>,
    d: Vec<TensorData>,
}

#[derive(Deserialize)]
struct OptimCase {
    kind: String,
    config: serde_json::Map<String, serde_json::Value>,
    /// `[step, lr]`: the learning rate set just before that step.
    lr_changes: Vec<(usize, f64)>,
    /// After each step, every parameter's values.
    trajectory: Vec<Vec<Vec<f64>>>,
}

#[derive(Deserialize)]
struct ClipNormCase {
    max_norm: f64,
    grads: Vec<TensorData>,
    total_norm: f64,
    clipped: Vec<TensorData>,
}

#[derive(Deserialize)]
struct ClipValueCase {
    clip: f64,
    grads: Vec<TensorData>,
    clipped: Vec<TensorData>,
}

#[derive(Deserialize)]
struct Schedules {
    step_lr: StepLrCase,
    cosine: CosineCase,
    exponential: ExponentialCase,
}

#[derive(Deserialize)]
struct StepLrCase {
    base: f64,
    step_size: usize,
    gamma: f64,
    lrs: Vec<f64>,
}

#[derive(Deserialize)]
struct CosineCase {
    base: f64,
    min: f64,
    total: usize,
    lrs: Vec<f64>,
}

#[derive(Deserialize)]
struct ExponentialCase {
    base: f64,
    rate: f64,
    lrs: Vec<f64>,
}

fn fixture() -> Fixture {
    let path = format!("{}/tests/fixtures/optim.json", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

// ---------------------------------------------------------------------------------------
// the model: named parameters, with the fixture's loss

/// The fixture's parameters as a module.
struct Params<T: Float>(Vec<(String, Param<T>)>);

impl<T: Float> Module<T> for Params<T> {
    fn visit_params(&self, f: &mut dyn FnMut(&str, &Param<T>)) {
        for (name, p) in &self.0 {
            f(name, p);
        }
    }
    fn visit_params_mut(&mut self, f: &mut dyn FnMut(&str, &mut Param<T>)) {
        for (name, p) in &mut self.0 {
            f(name, p);
        }
    }
    fn set_training_mode(&mut self, _: bool) {}
    fn is_training(&self) -> bool {
        true
    }
}

impl Problem {
    fn params<T: Float>(&self) -> Params<T> {
        Params(
            self.names
                .iter()
                .zip(&self.init)
                .map(|(n, t)| (n.clone(), Param::new(&t.shape, t.to::<T>()).unwrap()))
                .collect(),
        )
    }

    /// Sets every gradient to that of `sum(c p^2) + sum(d p)`: `c * (2 p) + d`, the products
    /// PyTorch's autograd forms.
    fn backward<T: Float>(&self, model: &mut Params<T>) {
        for (i, (_, p)) in model.0.iter_mut().enumerate() {
            let (c, d) = (self.c[i].to::<T>(), self.d[i].to::<T>());
            let (value, grad) = p.value_and_grad_mut();
            for j in 0..value.len() {
                grad[j] = c[j] * (T::from_f64(2.0) * value[j]) + d[j];
            }
        }
    }
}

#[test]
fn the_test_gradient_is_the_gradient_of_the_loss() {
    // central differences of sum(c p^2) + sum(d p) against Problem::backward, per parameter
    let fx = fixture();
    let mut model = fx.problem.params::<f64>();
    fx.problem.backward(&mut model);
    for (i, (name, p)) in model.0.iter().enumerate() {
        let (c, d) = (&fx.problem.c[i].data, &fx.problem.d[i].data);
        let loss = |x: &[f64]| (0..x.len()).map(|j| c[j] * x[j] * x[j] + d[j] * x[j]).sum();
        nanograd_runtime::testing::assert_gradient(name, loss, p.value(), p.grad(), 1e-7);
    }
}

fn flat<T: Float>(model: &Params<T>) -> Vec<f64> {
    model
        .0
        .iter()
        .flat_map(|(_, p)| p.value().iter().map(|v| v.to_f64()))
        .collect()
}

// ---------------------------------------------------------------------------------------
// optimizers from the fixture's configuration, through the builders

fn num(case: &OptimCase, key: &str) -> Option<f64> {
    case.config.get(key).and_then(|v| v.as_f64())
}

fn flag(case: &OptimCase, key: &str) -> Option<bool> {
    case.config.get(key).and_then(|v| v.as_bool())
}

fn betas(case: &OptimCase) -> Option<(f64, f64)> {
    let b = case.config.get("betas")?.as_array()?;
    Some((b[0].as_f64()?, b[1].as_f64()?))
}

fn sgd<T: Float>(case: &OptimCase) -> Sgd<T> {
    let mut o = Sgd::new(num(case, "lr").unwrap());
    if let Some(m) = num(case, "momentum") {
        o = o.momentum(m);
    }
    if let Some(d) = num(case, "dampening") {
        o = o.dampening(d);
    }
    if let Some(n) = flag(case, "nesterov") {
        o = o.nesterov(n);
    }
    if let Some(w) = num(case, "weight_decay") {
        o = o.weight_decay(w);
    }
    o
}

/// Applies the shared Adam / AdamW builder options of `case`.
macro_rules! adam_like {
    ($ty:ident, $case:expr) => {{
        let case = $case;
        let mut o = $ty::new(num(case, "lr").unwrap());
        if let Some((b1, b2)) = betas(case) {
            o = o.betas(b1, b2);
        }
        if let Some(e) = num(case, "eps") {
            o = o.eps(e);
        }
        if let Some(w) = num(case, "weight_decay") {
            o = o.weight_decay(w);
        }
        if let Some(a) = flag(case, "amsgrad") {
            o = o.amsgrad(a);
        }
        if flag(case, "decay_matrices_only") == Some(true) {
            o = o.decay_matrices_only();
        }
        o
    }};
}

fn rmsprop<T: Float>(case: &OptimCase) -> RmsProp<T> {
    let mut o = RmsProp::new(num(case, "lr").unwrap());
    if let Some(a) = num(case, "alpha") {
        o = o.alpha(a);
    }
    if let Some(e) = num(case, "eps") {
        o = o.eps(e);
    }
    if let Some(m) = num(case, "momentum") {
        o = o.momentum(m);
    }
    if let Some(w) = num(case, "weight_decay") {
        o = o.weight_decay(w);
    }
    if let Some(c) = flag(case, "centered") {
        o = o.centered(c);
    }
    o
}

fn build<T: Float>(case: &OptimCase) -> Box<dyn Optimizer<T>> {
    match case.kind.as_str() {
        "sgd" => Box::new(sgd::<T>(case)),
        "adam" => Box::new(adam_like!(Adam, case)),
        "adamw" => Box::new(adam_like!(AdamW, case)),
        "rmsprop" => Box::new(rmsprop::<T>(case)),
        other => panic!("unknown optimizer kind {other}"),
    }
}

/// Runs steps `from..to` of `case` on `model`, checking each against PyTorch.
fn run_steps<T: Float>(
    name: &str,
    fx: &Fixture,
    case: &OptimCase,
    opt: &mut dyn Optimizer<T>,
    model: &mut Params<T>,
    steps: std::ops::Range<usize>,
    tol: f64,
) {
    for k in steps {
        if let Some(&(_, lr)) = case.lr_changes.iter().find(|(s, _)| *s == k) {
            opt.set_learning_rate(lr);
        }
        model.zero_grad();
        fx.problem.backward(model);
        opt.step(model).unwrap();
        let expected: Vec<f64> = case.trajectory[k].iter().flatten().copied().collect();
        let actual = flat(model);
        if let Err(msg) = nanograd_runtime::testing::compare_close(&actual, &expected, tol) {
            panic!(
                "{name}: after step {} the parameters differ from PyTorch's {msg}",
                k + 1
            );
        }
    }
}

/// Every case of optimizer `kind` (at least `min` of them) matches PyTorch's trajectory to
/// 1e-12 in f64.
fn check_cases(kind: &str, min: usize) {
    let fx = fixture();
    let cases: Vec<_> = fx
        .optimizers
        .iter()
        .filter(|(_, c)| c.kind == kind)
        .collect();
    assert!(
        cases.len() >= min,
        "fixture has {} `{kind}` cases",
        cases.len()
    );
    for (name, case) in cases {
        assert!(case.trajectory.len() >= 10);
        let mut model = fx.problem.params::<f64>();
        let mut opt = build::<f64>(case);
        run_steps(
            name,
            &fx,
            case,
            opt.as_mut(),
            &mut model,
            0..case.trajectory.len(),
            1e-12,
        );
        assert_eq!(opt.step_count(), case.trajectory.len() as u64);
    }
}

#[test]
fn sgd_matches_torch() {
    // plain, momentum (with an lr change), nesterov + weight decay, dampening + weight decay
    check_cases("sgd", 4);
}

#[test]
fn adam_matches_torch() {
    // defaults; betas, eps, weight decay and an lr change; AMSGrad + weight decay;
    // AMSGrad + weight decay on the matrices only
    check_cases("adam", 4);
}

#[test]
fn adamw_matches_torch() {
    // defaults (weight decay 0.01); every option with AMSGrad; weight decay on the matrices
    // only with an lr change
    check_cases("adamw", 3);
}

#[test]
fn decay_of_matrices_only_matches_torch_param_groups() {
    // PyTorch's two parameter groups (dim >= 2 with weight decay 0.1, the rest with 0)
    // against `decay_matrices_only()`: fc.weight [3, 4] and conv.weight [2, 1, 2, 2] decay,
    // fc.bias [3] does not
    let fx = fixture();
    for (name, kind) in [
        ("adamw_decay_matrices_only", "adamw"),
        ("adam_decay_matrices_only", "adam"),
    ] {
        let case = &fx.optimizers[name];
        assert_eq!(case.kind, kind);
        assert_eq!(flag(case, "decay_matrices_only"), Some(true));
        assert_eq!(num(case, "weight_decay"), Some(0.1));
        let n = case.trajectory.len();
        assert!(n >= 10);
        let mut model = fx.problem.params::<f64>();
        let mut opt = build::<f64>(case);
        let config = opt.config();
        assert!(config.contains(&("decay_matrices_only", 1.0)), "{config:?}");
        run_steps(name, &fx, case, opt.as_mut(), &mut model, 0..n, 1e-12);
        // the test is sharp: decaying every parameter ends elsewhere on the bias, and not
        // decaying at all ends elsewhere on the weights
        let (opt_all, opt_none): (Box<dyn Optimizer<f64>>, Box<dyn Optimizer<f64>>) =
            if kind == "adamw" {
                (
                    Box::new(adam_like!(AdamW, case).decay_scope(DecayScope::All)),
                    Box::new(adam_like!(AdamW, case).weight_decay(0.0)),
                )
            } else {
                (
                    Box::new(adam_like!(Adam, case).decay_scope(DecayScope::All)),
                    Box::new(adam_like!(Adam, case).weight_decay(0.0)),
                )
            };
        let run = |mut opt: Box<dyn Optimizer<f64>>| {
            let mut m = fx.problem.params::<f64>();
            for k in 0..n {
                if let Some(&(_, lr)) = case.lr_changes.iter().find(|(s, _)| *s == k) {
                    opt.set_learning_rate(lr);
                }
                m.zero_grad();
                fx.problem.backward(&mut m);
                opt.step(&mut m).unwrap();
            }
            m
        };
        let (all, none) = (run(opt_all), run(opt_none));
        let gap = |a: &Params<f64>, b: &Params<f64>, i: usize| {
            let (x, y) = (a.0[i].1.value(), b.0[i].1.value());
            x.iter()
                .zip(y)
                .map(|(p, q)| (p - q).abs())
                .fold(0.0, f64::max)
        };
        assert_eq!(model.0[1].0, "fc.bias");
        assert!(gap(&model, &all, 1) > 1e-6, "{name}: the bias decayed");
        assert_eq!(gap(&model, &none, 1), 0.0, "{name}: the bias differs");
        assert!(
            gap(&model, &none, 0) > 1e-6,
            "{name}: fc.weight did not decay"
        );
        assert!(
            gap(&model, &none, 2) > 1e-6,
            "{name}: conv.weight did not decay"
        );
    }
}

#[test]
fn rmsprop_matches_torch() {
    // defaults; alpha, momentum, weight decay; centered; centered + momentum + lr change
    check_cases("rmsprop", 4);
}

#[test]
fn f32_follows_the_f64_trajectory() {
    let fx = fixture();
    for name in [
        "adam_weight_decay",
        "adamw_decay_matrices_only",
        "sgd_nesterov",
        "rmsprop_centered_momentum",
    ] {
        let case = &fx.optimizers[name];
        let mut model = fx.problem.params::<f32>();
        let mut opt = build::<f32>(case);
        run_steps(
            name,
            &fx,
            case,
            opt.as_mut(),
            &mut model,
            0..case.trajectory.len(),
            2e-5,
        );
    }
}

// ---------------------------------------------------------------------------------------
// checkpoints: serialise mid-run, continue, and land on the same trajectory
//
// Through `serde_json::Value` the round trip is exact, so the restored optimizer must continue
// bit for bit. Through JSON text it is exact only with serde_json's `float_roundtrip` feature
// (its default parser may miss the last bit of a 17-digit number); without it the restored run
// is still checked against PyTorch to 1e-12.

fn round_trip<O>(name: &str, fx: &Fixture, case: &OptimCase, mut opt: O)
where
    O: Optimizer<f64> + Serialize + DeserializeOwned + PartialEq + std::fmt::Debug,
{
    let n = case.trajectory.len();
    let mut model = fx.problem.params::<f64>();
    run_steps(name, fx, case, &mut opt, &mut model, 0..7, 1e-12);
    let value = serde_json::to_value(&opt).unwrap();
    let mut restored: O = serde_json::from_value(value).unwrap();
    assert_eq!(
        restored, opt,
        "{name}: the round trip changed the optimizer"
    );
    assert_eq!(restored.step_count(), 7);
    let text = serde_json::to_string(&opt).unwrap();
    let mut from_text: O = serde_json::from_str(&text).unwrap();
    // the restored optimizers continue like the original
    let mut twin = Params(model.0.clone());
    let mut text_twin = Params(model.0.clone());
    run_steps(name, fx, case, &mut restored, &mut model, 7..n, 1e-12);
    run_steps(name, fx, case, &mut opt, &mut twin, 7..n, 1e-12);
    run_steps(name, fx, case, &mut from_text, &mut text_twin, 7..n, 1e-12);
    assert_eq!(flat(&model), flat(&twin), "{name}: restored run diverged");
    assert_close!(flat(&text_twin), flat(&twin), 1e-14);
}

#[test]
fn json_round_trip_continues_identically() {
    let fx = fixture();
    for (name, case) in &fx.optimizers {
        match case.kind.as_str() {
            "sgd" => round_trip(name, &fx, case, sgd::<f64>(case)),
            "adam" => round_trip(name, &fx, case, adam_like!(Adam, case)),
            "adamw" => round_trip(name, &fx, case, adam_like!(AdamW, case)),
            "rmsprop" => round_trip(name, &fx, case, rmsprop::<f64>(case)),
            other => panic!("unknown optimizer kind {other}"),
        }
    }
}

// ---------------------------------------------------------------------------------------
// clipping and schedules

fn with_grads(grads: &[TensorData]) -> Params<f64> {
    Params(
        grads
            .iter()
            .enumerate()
            .map(|(i, g)| {
                let mut p = Param::zeros(&g.shape).unwrap();
                p.grad_mut().copy_from_slice(&g.data);
                (format!("p{i}"), p)
            })
            .collect(),
    )
}

#[test]
fn clip_grad_norm_matches_torch() {
    let fx = fixture();
    // max_norm 0.5 clips, 100 does not, 2 clips gradients scaled by 1e3
    assert_eq!(fx.clip_grad_norm.len(), 3);
    for case in &fx.clip_grad_norm {
        let mut model = with_grads(&case.grads);
        let total = clip_grad_norm(&mut model, case.max_norm);
        assert_close!(total, case.total_norm, 1e-12);
        for ((_, p), expected) in model.0.iter().zip(&case.clipped) {
            assert_close!(p.grad(), expected.data, 1e-12);
        }
    }
}

#[test]
fn clip_grad_value_matches_torch() {
    let fx = fixture();
    let case = &fx.clip_grad_value;
    let mut model = with_grads(&case.grads);
    clip_grad_value(&mut model, case.clip);
    for ((_, p), expected) in model.0.iter().zip(&case.clipped) {
        assert_close!(p.grad(), expected.data, 0.0);
    }
}

fn lrs(s: &dyn LrSchedule, n: usize) -> Vec<f64> {
    (0..n).map(|e| s.lr(e)).collect()
}

#[test]
fn schedules_match_torch() {
    let s = fixture().schedules;
    let step = StepDecay::new(s.step_lr.base, s.step_lr.step_size, s.step_lr.gamma).unwrap();
    assert_close!(lrs(&step, s.step_lr.lrs.len()), s.step_lr.lrs, 1e-12);
    let c = &s.cosine;
    let cosine = CosineAnnealing {
        base: c.base,
        min: c.min,
        total: c.total,
    };
    // 26 epochs: down to min at 10, up to base at 20, down again
    assert_close!(lrs(&cosine, c.lrs.len()), c.lrs, 1e-12);
    let e = &s.exponential;
    let exp = ExponentialDecay {
        base: e.base,
        rate: e.rate,
    };
    assert_close!(lrs(&exp, e.lrs.len()), e.lrs, 1e-12);
}

// ---------------------------------------------------------------------------------------
// no allocation per step

/// Two dense layers under prefixed names (`fc1.weight`, ...), as a generated model has.
struct Mlp {
    fc1: Dense<f32>,
    fc2: Dense<f32>,
}

impl Module<f32> for Mlp {
    fn visit_params(&self, f: &mut dyn FnMut(&str, &Param<f32>)) {
        visit_child_params("fc1", &self.fc1, f);
        visit_child_params("fc2", &self.fc2, f);
    }
    fn visit_params_mut(&mut self, f: &mut dyn FnMut(&str, &mut Param<f32>)) {
        visit_child_params_mut("fc1", &mut self.fc1, f);
        visit_child_params_mut("fc2", &mut self.fc2, f);
    }
    fn set_training_mode(&mut self, _: bool) {}
    fn is_training(&self) -> bool {
        true
    }
}

#[test]
fn a_step_allocates_nothing_once_the_state_exists() {
    let mut rng = StdRng::seed_from_u64(5);
    let mut mlp = Mlp {
        fc1: Dense::new(6, 5, &mut rng).unwrap(),
        fc2: Dense::new(5, 2, &mut rng).unwrap(),
    };
    let optimizers: Vec<Box<dyn Optimizer<f32>>> = vec![
        Box::new(Sgd::new(0.1).momentum(0.9).nesterov(true).weight_decay(0.1)),
        Box::new(Adam::new(0.01).amsgrad(true).weight_decay(0.1)),
        Box::new(AdamW::new(0.01)),
        Box::new(AdamW::new(0.01).weight_decay(0.1).decay_matrices_only()),
        Box::new(RmsProp::new(0.01).momentum(0.5).centered(true)),
    ];
    for mut opt in optimizers {
        mlp.visit_params_mut(&mut |_, p| p.grad_mut().fill(0.25));
        let before = allocations();
        opt.step(&mut mlp).unwrap(); // allocates the state
        assert!(allocations() > before, "the counter counts");
        let before = allocations();
        for _ in 0..10 {
            opt.step(&mut mlp).unwrap();
            clip_grad_norm(&mut mlp, 1.0f32);
            mlp.zero_grad();
        }
        assert_eq!(
            allocations() - before,
            0,
            "steps allocated ({:?})",
            opt.config()
        );
    }
}
