//! A checkpoint written before the move to rand 0.10 (by commit 5043cf6, with rand 0.8 and
//! rand_chacha 0.3: `tests/fixtures/checkpoint_rand08/generate.rs`) loads, and training
//! resumes from it as it would have then: the random streams continue with the numbers the
//! old version drew next, the weights give the old forward pass and the next training step
//! the old loss. And a user's own `rand` 0.10 generator passes to a model's `new`.

use nanograd::prelude::*;
use nanograd::rand::{RngExt, SeedableRng};
use nanograd::{Checkpoint, WorkspaceRng};

model! {
    /// dense, relu, dropout, dense: weights, the model's dropout stream and Adam's moments.
    pub struct Net {
        fc1: Dense(3 -> 6),
        drop: Dropout(0.5),
        fc2: Dense(6 -> 2),
    }
    fn forward(x: [B, 3]) -> [B, 2] {
        fc2(drop(relu(fc1(x))))
    }
    fn loss(x: [B, 3], t: [B, 2]) -> [] {
        softmax_cross_entropy(forward(x), t)
    }
}

const X: [[f64; 3]; 4] = [
    [0.5, -1.0, 2.0],
    [1.0, 0.25, -0.5],
    [-1.5, 0.75, 0.0],
    [0.1, 0.2, 0.3],
];
const T: [[f64; 2]; 4] = [[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [0.0, 1.0]];

const DIR: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/checkpoint_rand08"
);

#[derive(serde::Deserialize)]
struct Expected {
    step: u64,
    adam_step_count: u64,
    loop_next_u64: Vec<u64>,
    model_next_u64: Vec<u64>,
    eval_forward: Vec<[f64; 2]>,
    next_train_loss: f64,
}

fn expected() -> Expected {
    let json = std::fs::read_to_string(format!("{DIR}/expected.json")).unwrap();
    serde_json::from_str(&json).unwrap()
}

#[test]
fn a_checkpoint_from_rand_0_8_loads_and_resumes_as_before() {
    let want = expected();
    // everything starts out different from what the checkpoint holds
    let mut model = Net::<f64>::new(&mut WorkspaceRng::seed_from_u64(99));
    let mut opt = Adam::new(0.5);
    let mut rng = WorkspaceRng::seed_from_u64(0);
    let step = Checkpoint::load(
        format!("{DIR}/net_f64.ckpt"),
        &mut model,
        &mut opt,
        &mut rng,
    )
    .unwrap();
    assert_eq!(step, want.step);
    assert_eq!(opt.step_count(), want.adam_step_count);
    assert_eq!(opt.learning_rate(), 0.01);

    let loop_next: Vec<u64> = (0..4).map(|_| rng.random::<u64>()).collect();
    assert_eq!(loop_next, want.loop_next_u64, "the training loop's stream");
    let mut stream = model.rng().unwrap().clone();
    let model_next: Vec<u64> = (0..4).map(|_| stream.random::<u64>()).collect();
    assert_eq!(
        model_next, want.model_next_u64,
        "the model's dropout stream"
    );

    // The expected outputs were computed by the GEMM the runtime used then; the runtime's own
    // sums in another order, so they agree to rounding (a wrong weight, or a wrong dropout
    // mask below, would be off by far more than 1e-12).
    model.set_training_mode(false);
    let eval: Vec<[f64; 2]> = model.forward(&X).unwrap();
    let expected = &want.eval_forward;
    assert_eq!(eval.len(), expected.len());
    for (got, w) in eval.iter().flatten().zip(expected.iter().flatten()) {
        assert!(
            close(*got, *w),
            "the weights: {eval:?} against {expected:?}"
        );
    }

    // the dropout masks of the next step come from the restored stream, as before the move
    model.set_training_mode(true);
    model.zero_grad();
    let loss = model.loss_backward(&X, &T).unwrap();
    assert!(
        close(loss, want.next_train_loss),
        "the next training step: {loss} against {}",
        want.next_train_loss
    );
}

/// Equal to 1e-12, relative.
fn close(got: f64, want: f64) -> bool {
    (got - want).abs() <= 1e-12 * want.abs().max(1.0)
}

#[test]
fn a_checkpoint_from_rand_0_8_into_a_model_it_does_not_fit_says_why() {
    let mut model = Net::<f32>::new(&mut WorkspaceRng::seed_from_u64(0));
    let before = model.fc1.weight.value().to_vec();
    let mut opt = Adam::new(0.5);
    let mut rng = WorkspaceRng::seed_from_u64(0);
    let err = Checkpoint::load(
        format!("{DIR}/net_f64.ckpt"),
        &mut model,
        &mut opt,
        &mut rng,
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.ends_with("net_f64.ckpt: the checkpoint holds f64 weights but the model is f32"),
        "{err}"
    );
    assert_eq!(
        model.fc1.weight.value(),
        before,
        "a failed load changes nothing"
    );
    assert_eq!(opt.learning_rate(), 0.5);
    assert_eq!(rng, WorkspaceRng::seed_from_u64(0));
}

#[test]
fn a_users_own_rand_0_10_generator_builds_a_model() {
    // `rand` here is the test's own dependency (`rand = "0.10"`), as in a user's Cargo.toml
    use rand::rngs::StdRng;
    use rand::SeedableRng as _;
    let a = Net::<f32>::new(&mut StdRng::seed_from_u64(5));
    let b = Net::<f32>::new(&mut StdRng::seed_from_u64(5));
    let c = Net::<f32>::new(&mut rand::rng());
    assert_eq!(a.fc1.weight.value(), b.fc1.weight.value());
    assert_ne!(a.fc1.weight.value(), c.fc1.weight.value());
    // and nanograd's re-export is that same crate
    let same: nanograd::rand::rngs::StdRng = StdRng::seed_from_u64(5);
    let _ = Net::<f64>::new(&mut { same });
}
