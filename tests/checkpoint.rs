//! Checkpoints: training resumed from one is bit-identical to training that never stopped.
//!
//! The model has batch norm (running statistics) and dropout in training mode (masks from the
//! model's own random stream); each step trains on a batch drawn by shuffling with the
//! training loop's random stream; Adam keeps moments and a step count. All of it must come
//! back from the checkpoint, into a model, an optimizer and a stream that start out
//! different, for the second half of the run to repeat the uninterrupted one exactly.

use std::path::PathBuf;

use nanograd::prelude::*;
use nanograd::rand::{seq::SliceRandom, RngExt, SeedableRng};
use nanograd::{Checkpoint, WorkspaceRng};

model! {
    /// conv, batch norm, relu, global average pool, dense, relu, dropout, dense.
    pub struct Net {
        conv: Conv2d(1 -> 3, kernel = 3, padding = 1),
        bn: BatchNorm2d(3),
        fc1: Dense(3 -> 8),
        drop: Dropout(0.3),
        fc2: Dense(8 -> 2),
    }

    fn forward(x: [B, 1, 4, 4]) -> [B, 2] {
        let h = global_avg_pool2d(relu(bn(conv(x))));
        fc2(drop(relu(fc1(h))))
    }

    fn loss(x: [B, 1, 4, 4], t: [B, 2]) -> [] {
        softmax_cross_entropy(forward(x), t)
    }
}

type Image<T> = [[[T; 4]; 4]; 1];

/// Twelve seeded images and one-hot targets.
fn data<T: Float>() -> (Vec<Image<T>>, Vec<[T; 2]>) {
    let mut rng = WorkspaceRng::seed_from_u64(100);
    let mut x = vec![[[[T::zero(); 4]; 4]; 1]; 12];
    for v in x.as_flattened_mut().as_flattened_mut().as_flattened_mut() {
        *v = T::from_f64(rng.random_range(-2.0..2.0));
    }
    let t = (0..12)
        .map(|i| {
            let hot = usize::from(i % 3 == 0);
            let mut row = [T::zero(); 2];
            row[hot] = T::one();
            row
        })
        .collect();
    (x, t)
}

/// One optimizer step per element of `steps`, on 4 samples drawn by shuffling with `rng`;
/// returns the losses.
fn train<T: Float>(
    model: &mut Net<T>,
    opt: &mut Adam<T>,
    rng: &mut WorkspaceRng,
    steps: std::ops::Range<u64>,
) -> Vec<T> {
    let (x, t) = data::<T>();
    steps
        .map(|_| {
            let mut order: Vec<usize> = (0..x.len()).collect();
            order.shuffle(rng);
            let xb: Vec<Image<T>> = order[..4].iter().map(|&i| x[i]).collect();
            let tb: Vec<[T; 2]> = order[..4].iter().map(|&i| t[i]).collect();
            model.zero_grad();
            let loss = model.loss_backward(&xb, &tb).unwrap();
            opt.step(model).unwrap();
            loss
        })
        .collect()
}

fn start<T: Float>() -> (Net<T>, Adam<T>, WorkspaceRng) {
    (
        Net::new(&mut WorkspaceRng::seed_from_u64(1)),
        Adam::new(0.05).weight_decay(1e-3),
        WorkspaceRng::seed_from_u64(7),
    )
}

/// A fresh directory under target/ for a test's files.
fn scratch_dir(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("checkpoint_{name}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

const STEPS: u64 = 12;
const HALF: u64 = STEPS / 2;

/// Trains STEPS steps straight, and HALF steps, a checkpoint, a restore into a new model,
/// optimizer and stream, and HALF more: the losses, weights, running statistics, optimizer
/// step count and both random streams agree bit for bit.
fn resumes_bit_identically<T: Float>(dir_name: &str) {
    let (mut model, mut opt, mut rng) = start::<T>();
    let straight = train(&mut model, &mut opt, &mut rng, 0..STEPS);

    let dir = scratch_dir(dir_name);
    let path = dir.join("run.ckpt");
    let (mut first, mut opt1, mut rng1) = start::<T>();
    let mut resumed = train(&mut first, &mut opt1, &mut rng1, 0..HALF);
    Checkpoint::save(&path, &first, &opt1, HALF, &rng1).unwrap();
    drop((first, opt1, rng1));

    // everything different before the restore: weights, learning rate, state, streams
    let mut second = Net::<T>::new(&mut WorkspaceRng::seed_from_u64(99));
    let mut opt2 = Adam::<T>::new(0.5);
    let mut rng2 = WorkspaceRng::seed_from_u64(0);
    let step = Checkpoint::load(&path, &mut second, &mut opt2, &mut rng2).unwrap();
    assert_eq!(step, HALF);
    assert_eq!(opt2.step_count(), HALF);
    resumed.extend(train(&mut second, &mut opt2, &mut rng2, step..STEPS));

    assert_eq!(resumed, straight, "losses of the resumed run");
    assert_eq!(
        second.to_safetensors_bytes().unwrap(),
        model.to_safetensors_bytes().unwrap(),
        "final weights and running statistics"
    );
    assert_eq!(opt2.step_count(), opt.step_count());
    assert_eq!(
        rng2.random::<u64>(),
        rng.random::<u64>(),
        "the loop's stream"
    );
    assert_eq!(
        second.rng().unwrap().clone().random::<u64>(),
        model.rng().unwrap().clone().random::<u64>(),
        "the dropout stream"
    );
    // and the evaluation-mode outputs, through the restored running statistics
    let (x, _) = data::<T>();
    model.set_eval_mode();
    second.set_eval_mode();
    assert_eq!(second.forward(&x).unwrap(), model.forward(&x).unwrap());
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn resumed_training_is_bit_identical_f64() {
    resumes_bit_identically::<f64>("f64");
}

#[test]
fn resumed_training_is_bit_identical_f32() {
    resumes_bit_identically::<f32>("f32");
}

/// The test above can fail: a restore that loses either random stream (the model's dropout
/// masks, or the loop's shuffling) or the optimizer's state changes the losses that follow.
#[test]
fn every_part_of_the_checkpoint_matters() {
    let (mut model, mut opt, mut rng) = start::<f64>();
    let straight = train(&mut model, &mut opt, &mut rng, 0..STEPS);
    let (mut first, mut opt1, mut rng1) = start::<f64>();
    train(&mut first, &mut opt1, &mut rng1, 0..HALF);
    let bytes = Checkpoint::to_bytes(&first, &opt1, HALF, &rng1).unwrap();

    let restore = || {
        let (mut m, mut o, mut r) = start::<f64>();
        Checkpoint::load_bytes(&bytes, &mut m, &mut o, &mut r).unwrap();
        (m, o, r)
    };
    let (mut m, mut o, mut r) = restore();
    assert_eq!(
        train(&mut m, &mut o, &mut r, HALF..STEPS),
        straight[HALF as usize..]
    );

    let (mut m, mut o, _) = restore();
    let mut other_loop_stream = WorkspaceRng::seed_from_u64(8);
    let losses = train(&mut m, &mut o, &mut other_loop_stream, HALF..STEPS);
    assert_ne!(losses, straight[HALF as usize..], "shuffling stream");

    let (mut m, mut o, mut r) = restore();
    *m.rng_mut().unwrap() = WorkspaceRng::seed_from_u64(8);
    let losses = train(&mut m, &mut o, &mut r, HALF..STEPS);
    assert_ne!(losses, straight[HALF as usize..], "dropout stream");

    let (mut m, _, mut r) = restore();
    let mut fresh = start::<f64>().1;
    let losses = train(&mut m, &mut fresh, &mut r, HALF..STEPS);
    assert_ne!(losses, straight[HALF as usize..], "optimizer state");
}

/// A second save replaces the first whole; the directory holds no temporary file after.
#[test]
fn saving_again_replaces_the_checkpoint() {
    let dir = scratch_dir("again");
    let path = dir.join("run.ckpt");
    let (mut model, mut opt, mut rng) = start::<f64>();
    train(&mut model, &mut opt, &mut rng, 0..2);
    Checkpoint::save(&path, &model, &opt, 2, &rng).unwrap();
    train(&mut model, &mut opt, &mut rng, 2..3);
    Checkpoint::save(&path, &model, &opt, 3, &rng).unwrap();
    assert_eq!(
        std::fs::read(&path).unwrap(),
        Checkpoint::to_bytes(&model, &opt, 3, &rng).unwrap()
    );
    let names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["run.ckpt"]);
    std::fs::remove_dir_all(dir).unwrap();
}
