//! Where the time of `models.rs` goes: every kernel call of each workload, benchmarked one by
//! one, at the shapes and on the data the generated code uses, in the order it calls them
//! (read from the expansion of `model!`). Group `kernels:<workload>`, benchmark
//! `NN kernel`; `benches/reference/kernel_table.py` sets each kernel's median against the
//! sum and against the whole model's median from `models.rs` (the difference is the
//! generated glue: batch checks, workspace splits, copies).
//!
//! Backward kernels accumulate (or overwrite, where the generated code calls the
//! `_overwrite` form for a gradient's first contribution), so repeating one only keeps
//! writing into the same gradient buffers; their time does not depend on the values.
//!
//! ```sh
//! cargo bench --bench kernels -- --warm-up-time 0.5 --measurement-time 1
//! python3 benches/reference/kernel_table.py
//! ```

mod common;

use common::{images, one_hot, rows, Cnn, CnnBn, Mlp, Tiny};
use criterion::{BenchmarkGroup, Criterion};
use nanograd::ops::{self, Conv2dGeom};
use nanograd::prelude::*;
use nanograd::rand::{rngs::StdRng, SeedableRng};
use std::hint::black_box;

type Group<'a> = BenchmarkGroup<'a, criterion::measurement::WallTime>;

/// Benchmarks `f` as step `step` of the group's workload.
fn kernel(group: &mut Group, step: usize, name: &str, mut f: impl FnMut()) {
    group.bench_function(format!("{step:02} {name}"), |bench| bench.iter(&mut f));
}

/// `len` zeros.
fn zeros(len: usize) -> Vec<f32> {
    vec![0.0; len]
}

/// How a forward pass reads the large dense weights (fc1, fc2), as the generated code does.
#[derive(Clone, Copy, PartialEq)]
enum Weights {
    /// `forward_into`: packed once in the workspace (`ops::dense_cached`, after the two
    /// calls that grow the cache and pack).
    Cached,
    /// A training step: packed on every call (`ops::dense_packing`).
    PackedPerCall,
}

/// One large dense layer of the MLP as the generated code calls it.
#[allow(clippy::too_many_arguments)]
fn big_dense(
    group: &mut Group,
    step: usize,
    name: &str,
    how: Weights,
    w: &Param<f32>,
    bias: &[f32],
    x: &[f32],
    (b, in_f, out_f): (usize, usize, usize),
    y: &mut [f32],
) {
    match how {
        Weights::Cached => {
            let mut pack = nanograd::blas::PackedWeight::new();
            for _ in 0..2 {
                ops::dense_cached(x, w, Some(bias), b, in_f, out_f, y, &mut pack).unwrap();
            }
            kernel(group, step, name, || {
                ops::dense_cached(black_box(x), w, Some(bias), b, in_f, out_f, y, &mut pack)
                    .unwrap()
            });
        }
        Weights::PackedPerCall => {
            let mut scratch = zeros(ops::dense_scratch_len(in_f, out_f));
            let w = w.value();
            kernel(group, step, name, || {
                ops::dense_packing(black_box(x), w, Some(bias), b, in_f, out_f, y, &mut scratch)
                    .unwrap()
            });
        }
    }
}

/// The MLP's forward kernels at batch `b`: dense, relu, dense, relu, dense.
fn mlp_forward(group: &mut Group, m: &Mlp<f32>, x: &[f32], b: usize, how: Weights) {
    let (mut h1, mut a1) = (zeros(b * 128), zeros(b * 128));
    let (mut h2, mut a2) = (zeros(b * 64), zeros(b * 64));
    let mut z = zeros(b * 10);
    let (b1, b2) = (m.fc1.bias.value(), m.fc2.bias.value());
    let (w3, b3) = (m.fc3.weight.value(), Some(m.fc3.bias.value()));
    let fc1 = (b, 784, 128);
    big_dense(
        group,
        1,
        "fc1 dense",
        how,
        &m.fc1.weight,
        b1,
        x,
        fc1,
        &mut h1,
    );
    kernel(group, 2, "relu", || {
        ops::relu(black_box(&h1), &mut a1).unwrap()
    });
    let fc2 = (b, 128, 64);
    big_dense(
        group,
        3,
        "fc2 dense",
        how,
        &m.fc2.weight,
        b2,
        &a1,
        fc2,
        &mut h2,
    );
    kernel(group, 4, "relu", || {
        ops::relu(black_box(&h2), &mut a2).unwrap()
    });
    // fc3's 640 weights are below the packing threshold: plain dense
    kernel(group, 5, "fc3 dense", || {
        ops::dense(black_box(&a2), w3, b3, b, 64, 10, &mut z).unwrap()
    });
}

fn mlp(c: &mut Criterion) {
    let mut model = Mlp::<f32>::new(&mut StdRng::seed_from_u64(0));
    for b in [1, 64] {
        let x = rows::<784>(1, b);
        let mut group = c.benchmark_group(format!("kernels:mlp_infer/{b}"));
        mlp_forward(&mut group, &model, x.as_flattened(), b, Weights::Cached);
        group.finish();
    }

    // the training step at batch 64, on the activations of a real forward pass
    let b = 64;
    let (x, t) = (rows::<784>(2, b), one_hot(b));
    let (x, t) = (x.as_flattened(), t.as_flattened());
    let m = &model;
    let (mut h1, mut a1) = (zeros(b * 128), zeros(b * 128));
    let (mut h2, mut a2) = (zeros(b * 64), zeros(b * 64));
    let mut z = zeros(b * 10);
    let (w1, w2, w3) = (
        m.fc1.weight.value(),
        m.fc2.weight.value(),
        m.fc3.weight.value(),
    );
    ops::dense(x, w1, Some(m.fc1.bias.value()), b, 784, 128, &mut h1).unwrap();
    ops::relu(&h1, &mut a1).unwrap();
    ops::dense(&a1, w2, Some(m.fc2.bias.value()), b, 128, 64, &mut h2).unwrap();
    ops::relu(&h2, &mut a2).unwrap();
    ops::dense(&a2, w3, Some(m.fc3.bias.value()), b, 64, 10, &mut z).unwrap();
    // the gradients that are zeroed: of the relus' outputs, the logits and the loss (those of
    // the dense layers' outputs are overwritten by relu_backward_overwrite)
    let mut grads = zeros(b * (128 + 64 + 10) + 1);
    let (mut gz, mut ga2, mut gh2) = (zeros(b * 10), zeros(b * 64), zeros(b * 64));
    let (mut ga1, mut gh1) = (zeros(b * 128), zeros(b * 128));
    let (mut dw1, mut db1) = (zeros(128 * 784), zeros(128));
    let (mut dw2, mut db2) = (zeros(64 * 128), zeros(64));
    let (mut dw3, mut db3) = (zeros(10 * 64), zeros(10));

    let mut group = c.benchmark_group(format!("kernels:mlp_train_adam/{b}"));
    let mut model_z = model.clone();
    kernel(&mut group, 0, "zero_grad", || model_z.zero_grad());
    mlp_forward(&mut group, m, x, b, Weights::PackedPerCall);
    kernel(&mut group, 6, "softmax_cross_entropy", || {
        black_box(ops::softmax_cross_entropy(black_box(&z), t, 10).unwrap());
    });
    kernel(&mut group, 7, "fill gradient buffers", || {
        black_box(&mut grads).fill(0.0)
    });
    kernel(&mut group, 8, "softmax_cross_entropy_backward", || {
        ops::softmax_cross_entropy_backward(black_box(&z), t, 10, 1.0, Some(&mut gz), None).unwrap()
    });
    kernel(&mut group, 9, "fc3 dense_backward", || {
        ops::dense_backward(
            black_box(&a2),
            w3,
            &gz,
            b,
            64,
            10,
            Some(&mut ga2),
            Some(&mut dw3),
            Some(&mut db3),
        )
        .unwrap()
    });
    kernel(&mut group, 10, "relu_backward_overwrite", || {
        ops::relu_backward_overwrite(black_box(&h2), &a2, &ga2, &mut gh2).unwrap()
    });
    kernel(&mut group, 11, "fc2 dense_backward", || {
        ops::dense_backward(
            black_box(&a1),
            w2,
            &gh2,
            b,
            128,
            64,
            Some(&mut ga1),
            Some(&mut dw2),
            Some(&mut db2),
        )
        .unwrap()
    });
    kernel(&mut group, 12, "relu_backward_overwrite", || {
        ops::relu_backward_overwrite(black_box(&h1), &a1, &ga1, &mut gh1).unwrap()
    });
    kernel(&mut group, 13, "fc1 dense_backward", || {
        ops::dense_backward(
            black_box(x),
            w1,
            &gh1,
            b,
            784,
            128,
            None,
            Some(&mut dw1),
            Some(&mut db1),
        )
        .unwrap()
    });
    // Adam on the model's real gradients (the update's time does not depend on them)
    let mut opt = Adam::new(1e-3);
    model
        .loss_backward(&rows::<784>(2, b), &one_hot(b))
        .unwrap();
    kernel(&mut group, 14, "Adam::step", || {
        opt.step(&mut model).unwrap()
    });
    group.finish();
}

/// The geometry of the CNN's `conv1` and `conv2`.
fn cnn_geoms() -> (Conv2dGeom, Conv2dGeom) {
    (
        Conv2dGeom::new(1, 28, 28, 8, 3, 3, 1, 1).unwrap(),
        Conv2dGeom::new(8, 28, 28, 16, 3, 3, 2, 1).unwrap(),
    )
}

/// Activations of the CNN's forward pass at batch `b`.
struct CnnActs {
    h1: Vec<f32>,
    a1: Vec<f32>,
    h2: Vec<f32>,
    a2: Vec<f32>,
    p: Vec<f32>,
    z: Vec<f32>,
}

/// The CNN's forward kernels at batch `b`, benchmarked one by one; returns the activations.
fn cnn_forward(group: &mut Group, m: &Cnn<f32>, x: &[f32], b: usize) -> CnnActs {
    let (g1, g2) = cnn_geoms();
    let (mut cols1, mut cols2) = (zeros(g1.workspace_len(b)), zeros(g2.workspace_len(b)));
    let mut s = CnnActs {
        h1: zeros(b * 8 * 784),
        a1: zeros(b * 8 * 784),
        h2: zeros(b * 16 * 196),
        a2: zeros(b * 16 * 196),
        p: zeros(b * 16),
        z: zeros(b * 10),
    };
    let (w1, b1) = (m.conv1.weight.value(), Some(m.conv1.bias.value()));
    let (w2, b2) = (m.conv2.weight.value(), Some(m.conv2.bias.value()));
    let (wf, bf) = (m.fc.weight.value(), Some(m.fc.bias.value()));
    kernel(group, 1, "conv1 conv2d", || {
        ops::conv2d(&g1, black_box(x), w1, b1, b, &mut cols1, &mut s.h1).unwrap()
    });
    kernel(group, 2, "relu", || {
        ops::relu(black_box(&s.h1), &mut s.a1).unwrap()
    });
    kernel(group, 3, "conv2 conv2d", || {
        ops::conv2d(&g2, black_box(&s.a1), w2, b2, b, &mut cols2, &mut s.h2).unwrap()
    });
    kernel(group, 4, "relu", || {
        ops::relu(black_box(&s.h2), &mut s.a2).unwrap()
    });
    kernel(group, 5, "global_avg_pool2d", || {
        ops::global_avg_pool2d(black_box(&s.a2), b, 16, 196, &mut s.p).unwrap()
    });
    kernel(group, 6, "fc dense", || {
        ops::dense(black_box(&s.p), wf, bf, b, 16, 10, &mut s.z).unwrap()
    });
    s
}

fn cnn(c: &mut Criterion) {
    let mut model = Cnn::<f32>::new(&mut StdRng::seed_from_u64(1));
    let mut group = c.benchmark_group("kernels:cnn_infer/1");
    let x = images(3, 1);
    let x = x.as_flattened().as_flattened().as_flattened();
    cnn_forward(&mut group, &model, x, 1);
    group.finish();

    let b = 32;
    let (x, t) = (images(4, b), one_hot(b));
    let mut group = c.benchmark_group(format!("kernels:cnn_train_sgd/{b}"));
    let mut model_z = model.clone();
    kernel(&mut group, 0, "zero_grad", || model_z.zero_grad());
    let xf = x.as_flattened().as_flattened().as_flattened();
    let tf = t.as_flattened();
    let s = cnn_forward(&mut group, &model, xf, b);
    // the forward kernels ran over and over on the same inputs: s holds a real forward pass
    let (g1, g2) = cnn_geoms();
    let mut cols2 = zeros(g2.workspace_len(b));
    // conv1's columns, kept from its forward pass as in the generated code (its backward
    // pass computes no dx, so they survive every repetition)
    let mut cols1 = zeros(g1.workspace_len(b));
    let (w1, b1) = (model.conv1.weight.value(), Some(model.conv1.bias.value()));
    ops::conv2d(&g1, xf, w1, b1, b, &mut cols1, &mut zeros(b * 8 * 784)).unwrap();
    let m = &model;
    // the gradients that are zeroed: those of the logits, the pooled features and the loss
    // (the others are overwritten by their first contribution)
    let mut grads = zeros(b * (16 + 10) + 1);
    let (mut gz, mut gp) = (zeros(b * 10), zeros(b * 16));
    let (mut gh2, mut gh1) = (zeros(b * 16 * 196), zeros(b * 8 * 784));
    let (mut dwf, mut dbf) = (zeros(10 * 16), zeros(10));
    let (mut dw2, mut db2) = (zeros(16 * 72), zeros(16));
    let (mut dw1, mut db1) = (zeros(8 * 9), zeros(8));
    kernel(&mut group, 7, "softmax_cross_entropy", || {
        black_box(ops::softmax_cross_entropy(black_box(&s.z), tf, 10).unwrap());
    });
    kernel(&mut group, 8, "fill gradient buffers", || {
        black_box(&mut grads).fill(0.0)
    });
    kernel(&mut group, 9, "softmax_cross_entropy_backward", || {
        ops::softmax_cross_entropy_backward(black_box(&s.z), tf, 10, 1.0, Some(&mut gz), None)
            .unwrap()
    });
    kernel(&mut group, 10, "fc dense_backward", || {
        let w = m.fc.weight.value();
        ops::dense_backward(
            black_box(&s.p),
            w,
            &gz,
            b,
            16,
            10,
            Some(&mut gp),
            Some(&mut dwf),
            Some(&mut dbf),
        )
        .unwrap()
    });
    // the relus' backward passes are folded into the pooling's and conv2's
    kernel(
        &mut group,
        11,
        "global_avg_pool2d_backward_through_relu",
        || {
            let gp = black_box(&gp);
            ops::global_avg_pool2d_backward_through_relu(&s.a2, gp, b, 16, 196, &mut gh2).unwrap()
        },
    );
    // with dx the columns do not survive a repetition: laid out again each time, which the
    // generated code (Kept) does not do
    kernel(&mut group, 12, "conv2 conv2d_backward_through_relu", || {
        let w = m.conv2.weight.value();
        ops::conv2d_backward_through_relu(
            &g2,
            black_box(&s.a1),
            w,
            &gh2,
            b,
            &mut cols2,
            ops::Conv2dCols::Recompute,
            Some(&mut gh1),
            Some(&mut dw2),
            Some(&mut db2),
        )
        .unwrap()
    });
    kernel(&mut group, 13, "conv1 conv2d_backward", || {
        let w = m.conv1.weight.value();
        ops::conv2d_backward(
            &g1,
            black_box(xf),
            w,
            &gh1,
            b,
            &mut cols1,
            ops::Conv2dCols::Kept,
            None,
            Some(&mut dw1),
            Some(&mut db1),
        )
        .unwrap()
    });
    let mut opt = Sgd::new(0.01).momentum(0.9);
    model.loss_backward(&x, &t).unwrap();
    kernel(&mut group, 14, "Sgd::step", || {
        opt.step(&mut model).unwrap()
    });
    group.finish();
}

/// `len` values in `[-1, 1)` from `seed`.
fn uniform(seed: u64, len: usize) -> Vec<f32> {
    nanograd::testing::random_vec(seed, len, -1.0, 1.0)
}

/// The network of `examples/mnist_cnn.rs` (`models.rs`' `cnn_bn_train/64`): its training
/// step's kernels at batch 64, in the order the generated code calls them (read from the
/// expansion of `model!`: batch norm's, max pooling's and the dense layer's first gradient
/// overwrite, the relus' backward passes are done by the poolings'). Each kernel's name
/// says what it moves or computes per call, for the GFLOP/s or GB/s of BENCHMARKS.md.
fn cnn_bn(c: &mut Criterion) {
    let b = 64;
    let model = CnnBn::<f32>::new(&mut StdRng::seed_from_u64(5));
    let g1 = Conv2dGeom::new(1, 28, 28, 16, 3, 3, 1, 1).unwrap();
    let g2 = Conv2dGeom::new(16, 14, 14, 32, 3, 3, 1, 1).unwrap();
    let p1 = ops::Pool2dGeom::new(16, 28, 28, 2, 2, 0).unwrap();
    let p2 = ops::Pool2dGeom::new(32, 14, 14, 2, 2, 0).unwrap();
    let x = uniform(6, b * 784);
    let t = one_hot(b);
    let t = t.as_flattened();
    let (w1, c1b) = (model.conv1.weight.value(), model.conv1.bias.value());
    let (w2, c2b) = (model.conv2.weight.value(), model.conv2.bias.value());
    let (wf, bf) = (model.fc.weight.value(), model.fc.bias.value());
    let (gamma1, beta1) = (vec![1.0f32; 16], vec![0.0f32; 16]);
    let (gamma2, beta2) = (vec![1.0f32; 32], vec![0.0f32; 32]);
    let (mut rm1, mut rv1, mut sm1, mut si1) = (zeros(16), vec![1.0; 16], zeros(16), zeros(16));
    let (mut rm2, mut rv2, mut sm2, mut si2) = (zeros(32), vec![1.0; 32], zeros(32), zeros(32));
    let (mut cols1, mut cols2) = (zeros(g1.workspace_len(b)), zeros(g2.workspace_len(b)));
    let (n1, n2) = (b * 16 * 784, b * 32 * 196);
    let (mut h1, mut z1, mut a1, mut q1) = (zeros(n1), zeros(n1), zeros(n1), zeros(n1 / 4));
    let (mut h2, mut z2, mut a2, mut q2) = (zeros(n2), zeros(n2), zeros(n2), zeros(n2 / 4));
    let mut logits = zeros(b * 10);

    let mut group = c.benchmark_group(format!("kernels:cnn_bn_train/{b}"));
    let mut model_z = model.clone();
    kernel(&mut group, 0, "zero_grad (82 KB)", || model_z.zero_grad());
    kernel(&mut group, 1, "conv1 conv2d (14.5 MFLOP)", || {
        ops::conv2d(&g1, black_box(&x), w1, Some(c1b), b, &mut cols1, &mut h1).unwrap()
    });
    kernel(&mut group, 2, "bn1 batch_norm2d_train (12.8 MB)", || {
        let stats = (&mut rm1[..], &mut rv1[..], &mut sm1[..], &mut si1[..]);
        ops::batch_norm2d_train(
            black_box(&h1),
            b,
            16,
            784,
            &gamma1,
            &beta1,
            1e-5,
            0.1,
            stats.0,
            stats.1,
            stats.2,
            stats.3,
            &mut z1,
        )
        .unwrap()
    });
    kernel(&mut group, 3, "relu (6.4 MB)", || {
        ops::relu(black_box(&z1), &mut a1).unwrap()
    });
    kernel(&mut group, 4, "pool1 max_pool2d (4.0 MB)", || {
        ops::max_pool2d(&p1, black_box(&a1), b, &mut q1).unwrap()
    });
    kernel(&mut group, 5, "conv2 conv2d (116 MFLOP)", || {
        ops::conv2d(&g2, black_box(&q1), w2, Some(c2b), b, &mut cols2, &mut h2).unwrap()
    });
    kernel(&mut group, 6, "bn2 batch_norm2d_train (6.4 MB)", || {
        let stats = (&mut rm2[..], &mut rv2[..], &mut sm2[..], &mut si2[..]);
        ops::batch_norm2d_train(
            black_box(&h2),
            b,
            32,
            196,
            &gamma2,
            &beta2,
            1e-5,
            0.1,
            stats.0,
            stats.1,
            stats.2,
            stats.3,
            &mut z2,
        )
        .unwrap()
    });
    kernel(&mut group, 7, "relu (3.2 MB)", || {
        ops::relu(black_box(&z2), &mut a2).unwrap()
    });
    kernel(&mut group, 8, "pool2 max_pool2d (2.0 MB)", || {
        ops::max_pool2d(&p2, black_box(&a2), b, &mut q2).unwrap()
    });
    kernel(&mut group, 9, "fc dense (2.0 MFLOP)", || {
        ops::dense(black_box(&q2), wf, Some(bf), b, 1568, 10, &mut logits).unwrap()
    });
    kernel(&mut group, 10, "softmax_cross_entropy", || {
        black_box(ops::softmax_cross_entropy(black_box(&logits), t, 10).unwrap());
    });
    let mut dlogits = zeros(b * 10);
    kernel(&mut group, 11, "softmax_cross_entropy_backward", || {
        let l = black_box(&logits);
        ops::softmax_cross_entropy_backward(l, t, 10, 1.0, Some(&mut dlogits), None).unwrap()
    });
    let (mut dq2, mut dwf, mut dbf) = (zeros(q2.len()), zeros(wf.len()), zeros(10));
    kernel(
        &mut group,
        12,
        "fc dense_backward_overwrite (4.0 MFLOP)",
        || {
            let (dx, dw, db) = (Some(&mut dq2[..]), Some(&mut dwf[..]), Some(&mut dbf[..]));
            ops::dense_backward_overwrite(black_box(&q2), wf, &dlogits, b, 1568, 10, dx, dw, db)
                .unwrap()
        },
    );
    let mut dz2 = zeros(n2);
    kernel(
        &mut group,
        13,
        "pool2 max_pool2d_backward_through_relu (4.0 MB)",
        || {
            ops::max_pool2d_backward_through_relu(&p2, black_box(&a2), &q2, &dq2, b, &mut dz2)
                .unwrap()
        },
    );
    let (mut dh2, mut dg2, mut db2) = (zeros(n2), zeros(32), zeros(32));
    kernel(
        &mut group,
        14,
        "bn2 batch_norm2d_train_backward_overwrite (8.0 MB)",
        || {
            let g = (Some(&mut dh2[..]), Some(&mut dg2[..]), Some(&mut db2[..]));
            ops::batch_norm2d_train_backward_overwrite(
                black_box(&h2),
                b,
                32,
                196,
                &gamma2,
                &sm2,
                &si2,
                &dz2,
                g.0,
                g.1,
                g.2,
            )
            .unwrap()
        },
    );
    // with dx the columns do not survive a repetition: laid out again each time, which the
    // generated code (Kept) does not do
    let (mut dq1, mut dw2, mut dc2b) = (zeros(q1.len()), zeros(w2.len()), zeros(32));
    kernel(
        &mut group,
        15,
        "conv2 conv2d_backward_overwrite (231 MFLOP)",
        || {
            ops::conv2d_backward_overwrite(
                &g2,
                black_box(&q1),
                w2,
                &dh2,
                b,
                &mut cols2,
                ops::Conv2dCols::Recompute,
                Some(&mut dq1),
                Some(&mut dw2),
                Some(&mut dc2b),
            )
            .unwrap()
        },
    );
    let mut dz1 = zeros(n1);
    kernel(
        &mut group,
        16,
        "pool1 max_pool2d_backward_through_relu (8.0 MB)",
        || {
            ops::max_pool2d_backward_through_relu(&p1, black_box(&a1), &q1, &dq1, b, &mut dz1)
                .unwrap()
        },
    );
    let (mut dh1, mut dg1, mut db1) = (zeros(n1), zeros(16), zeros(16));
    kernel(
        &mut group,
        17,
        "bn1 batch_norm2d_train_backward_overwrite (16.1 MB)",
        || {
            let g = (Some(&mut dh1[..]), Some(&mut dg1[..]), Some(&mut db1[..]));
            ops::batch_norm2d_train_backward_overwrite(
                black_box(&h1),
                b,
                16,
                784,
                &gamma1,
                &sm1,
                &si1,
                &dz1,
                g.0,
                g.1,
                g.2,
            )
            .unwrap()
        },
    );
    // conv1's columns kept from its forward pass: its backward pass computes no dx
    ops::conv2d(&g1, &x, w1, Some(c1b), b, &mut cols1, &mut h1).unwrap();
    let (mut dw1, mut dc1b) = (zeros(w1.len()), zeros(16));
    kernel(
        &mut group,
        18,
        "conv1 conv2d_backward, no dx (14.5 MFLOP)",
        || {
            ops::conv2d_backward(
                &g1,
                black_box(&x),
                w1,
                &dh1,
                b,
                &mut cols1,
                ops::Conv2dCols::Kept,
                None,
                Some(&mut dw1),
                Some(&mut dc1b),
            )
            .unwrap()
        },
    );
    // row 15 in its two halves, for where conv2's backward time goes (conv2's input is
    // padded again for dweight, its columns laid out again, on every repetition)
    kernel(
        &mut group,
        20,
        "conv2 conv2d_backward, dweight only (116 MFLOP)",
        || {
            let cols = ops::Conv2dCols::Recompute;
            let (dx, dw, db) = (None, Some(&mut dw2[..]), None);
            ops::conv2d_backward(
                &g2,
                black_box(&q1),
                w2,
                &dh2,
                b,
                &mut cols2,
                cols,
                dx,
                dw,
                db,
            )
            .unwrap()
        },
    );
    kernel(
        &mut group,
        21,
        "conv2 conv2d_backward_overwrite, dx only (116 MFLOP)",
        || {
            let cols = ops::Conv2dCols::Recompute;
            let (dx, dw, db) = (Some(&mut dq1[..]), None, None);
            ops::conv2d_backward_overwrite(
                &g2,
                black_box(&q1),
                w2,
                &dh2,
                b,
                &mut cols2,
                cols,
                dx,
                dw,
                db,
            )
            .unwrap()
        },
    );
    // rows 2 and 3, and 6 and 7, as the generated code runs them since: one pass
    let (mut a1f, mut a2f) = (zeros(n1), zeros(n2));
    kernel(
        &mut group,
        22,
        "bn1 batch_norm2d_train_relu (12.8 MB)",
        || {
            let stats = (&mut rm1[..], &mut rv1[..], &mut sm1[..], &mut si1[..]);
            let (g, bb) = (&gamma1, &beta1);
            let (h, e, m) = (black_box(&h1), 1e-5, 0.1);
            let (s0, s1, s2, s3) = stats;
            ops::batch_norm2d_train_relu(h, b, 16, 784, g, bb, e, m, s0, s1, s2, s3, &mut a1f)
                .unwrap()
        },
    );
    kernel(
        &mut group,
        23,
        "bn2 batch_norm2d_train_relu (6.4 MB)",
        || {
            let stats = (&mut rm2[..], &mut rv2[..], &mut sm2[..], &mut si2[..]);
            let (g, bb) = (&gamma2, &beta2);
            let (h, e, m) = (black_box(&h2), 1e-5, 0.1);
            let (s0, s1, s2, s3) = stats;
            ops::batch_norm2d_train_relu(h, b, 32, 196, g, bb, e, m, s0, s1, s2, s3, &mut a2f)
                .unwrap()
        },
    );
    // rows 22 + 4 + 16 + 17, and 23 + 8 + 13 + 14, as the generated code runs them in a
    // training step since: the relu's plane never written, a winner byte per window (and the
    // winning values) in the relu's region
    let (mut q1f, mut q2f) = (zeros(n1 / 4), zeros(n2 / 4));
    let (mut win1, mut win2) = (zeros(n1), zeros(n2));
    kernel(
        &mut group,
        24,
        "bn1 + pool1 batch_norm2d_train_relu_max_pool2d (11.4 MB)",
        || {
            let stats = (&mut rm1[..], &mut rv1[..], &mut sm1[..], &mut si1[..]);
            let (g, bb, h, e, m) = (&gamma1, &beta1, black_box(&h1), 1e-5, 0.1);
            let (s0, s1, s2, s3) = stats;
            ops::batch_norm2d_train_relu_max_pool2d(
                h,
                b,
                &p1,
                g,
                bb,
                e,
                m,
                s0,
                s1,
                s2,
                s3,
                &mut q1f,
                ops::workspace_bytes_mut(&mut win1),
            )
            .unwrap()
        },
    );
    kernel(
        &mut group,
        25,
        "bn2 + pool2 batch_norm2d_train_relu_max_pool2d (5.7 MB)",
        || {
            let stats = (&mut rm2[..], &mut rv2[..], &mut sm2[..], &mut si2[..]);
            let (g, bb, h, e, m) = (&gamma2, &beta2, black_box(&h2), 1e-5, 0.1);
            let (s0, s1, s2, s3) = stats;
            ops::batch_norm2d_train_relu_max_pool2d(
                h,
                b,
                &p2,
                g,
                bb,
                e,
                m,
                s0,
                s1,
                s2,
                s3,
                &mut q2f,
                ops::workspace_bytes_mut(&mut win2),
            )
            .unwrap()
        },
    );
    kernel(
        &mut group,
        26,
        "pool1 + bn1 batch_norm2d_train_relu_max_pool2d_backward_overwrite (9.2 MB)",
        || {
            let g = (Some(&mut dh1[..]), Some(&mut dg1[..]), Some(&mut db1[..]));
            let (h, s) = (black_box(&h1), (&sm1, &si1));
            ops::batch_norm2d_train_relu_max_pool2d_backward_overwrite(
                h,
                b,
                &p1,
                &gamma1,
                s.0,
                s.1,
                ops::workspace_bytes(&win1),
                &dq1,
                g.0,
                g.1,
                g.2,
            )
            .unwrap()
        },
    );
    kernel(
        &mut group,
        27,
        "pool2 + bn2 batch_norm2d_train_relu_max_pool2d_backward_overwrite (4.6 MB)",
        || {
            let g = (Some(&mut dh2[..]), Some(&mut dg2[..]), Some(&mut db2[..]));
            let (h, s) = (black_box(&h2), (&sm2, &si2));
            ops::batch_norm2d_train_relu_max_pool2d_backward_overwrite(
                h,
                b,
                &p2,
                &gamma2,
                s.0,
                s.1,
                ops::workspace_bytes(&win2),
                &dq2,
                g.0,
                g.1,
                g.2,
            )
            .unwrap()
        },
    );
    let mut stepped = model.clone();
    let xs = images(6, b);
    stepped.loss_backward(&xs, &one_hot(b)).unwrap();
    let mut opt = Sgd::new(0.05).momentum(0.9);
    kernel(&mut group, 19, "Sgd::step (20,586 parameters)", || {
        opt.step(&mut stepped).unwrap()
    });
    group.finish();
}

fn tiny(c: &mut Criterion) {
    let m = Tiny::<f32>::new(&mut StdRng::seed_from_u64(2));
    let x = [0.3f32, -0.7];
    let (mut h, mut a, mut y) = (zeros(8), zeros(8), zeros(1));
    let mut group = c.benchmark_group("kernels:tiny_infer/1");
    let (w1, b1) = (m.hidden.weight.value(), Some(m.hidden.bias.value()));
    let (w2, b2) = (m.out.weight.value(), Some(m.out.bias.value()));
    kernel(&mut group, 1, "hidden dense", || {
        ops::dense(black_box(&x), w1, b1, 1, 2, 8, &mut h).unwrap()
    });
    kernel(&mut group, 2, "relu", || {
        ops::relu(black_box(&h), &mut a).unwrap()
    });
    kernel(&mut group, 3, "out dense", || {
        ops::dense(black_box(&a), w2, b2, 1, 8, 1, &mut y).unwrap()
    });
    group.finish();
}

/// The GPT's GELU (`benches/models.rs`, `gpt/`) alone, at its two sizes: one 64-token
/// sequence's `[64, 512]` (`forward`) and a batch of 12's (the training step), on inputs
/// spread like the block's pre-activations. Group `kernels:gelu/<elements>`; divide the
/// median by the elements for nanoseconds per element.
fn gelu(c: &mut Criterion) {
    for n in [64 * 512, 12 * 64 * 512] {
        let x: Vec<f32> = uniform(7, n).iter().map(|v| 8.0 * v).collect();
        let dy = uniform(8, n);
        let (mut y, mut dx) = (zeros(n), zeros(n));
        let mut group = c.benchmark_group(format!("kernels:gelu/{n}"));
        kernel(&mut group, 0, "gelu", || {
            ops::gelu(black_box(&x), &mut y).unwrap();
        });
        kernel(&mut group, 1, "gelu_backward", || {
            ops::gelu_backward(black_box(&x), &y, &dy, &mut dx).unwrap();
        });
        kernel(&mut group, 2, "gelu_backward_overwrite", || {
            ops::gelu_backward_overwrite(black_box(&x), &y, &dy, &mut dx).unwrap();
        });
        group.finish();
    }
}

/// The GPT's causal multi-head attention core (`benches/models.rs`, `gpt/`: `t = 64`,
/// `c = 128`, 4 heads of 32) alone, forward and overwriting backward, at one sequence and at
/// the training step's batch of 12, on the `[n, t, 3c]` packed projections the layer hands
/// it. Group `kernels:gpt_attention/<n>`. Products counted over the visible pairs only
/// (`t(t+1)/2 = 2080` per head): forward `q·kᵀ` and `P·v`, `2 · 2080 · 32 · 2` = 266,240
/// FLOP per head; backward `q·kᵀ` again, `dout·vᵀ`, `Pᵀ·dout`, `dS·k`, `dSᵀ·q`, 665,600 FLOP
/// per head; times `4n` heads.
fn gpt_attention(c: &mut Criterion) {
    let (t, ch, heads) = (64, 128, 4);
    for n in [1, 12] {
        let qkv = uniform(11, n * t * 3 * ch);
        let dout = uniform(12, n * t * ch);
        let (mut out, mut lse) = (zeros(n * t * ch), zeros(n * heads * t));
        let mut dqkv = zeros(n * t * 3 * ch);
        let mut scratch = zeros(ops::mha_attention_scratch_len(t, ch, heads));
        ops::mha_attention(
            &qkv,
            n,
            t,
            ch,
            heads,
            true,
            &mut out,
            &mut lse,
            &mut scratch,
        )
        .unwrap();
        let mut group = c.benchmark_group(format!("kernels:gpt_attention/{n}"));
        let mut out2 = zeros(n * t * ch);
        let mut lse2 = zeros(n * heads * t);
        kernel(&mut group, 0, "mha_attention", || {
            ops::mha_attention(
                black_box(&qkv),
                n,
                t,
                ch,
                heads,
                true,
                &mut out2,
                &mut lse2,
                &mut scratch,
            )
            .unwrap()
        });
        kernel(&mut group, 1, "mha_attention_backward_overwrite", || {
            ops::mha_attention_backward_overwrite(
                black_box(&qkv),
                &out,
                &lse,
                &dout,
                n,
                t,
                ch,
                heads,
                true,
                &mut dqkv,
                &mut scratch,
            )
            .unwrap()
        });
        group.finish();
    }
}

criterion::criterion_group!(benches, mlp, cnn, cnn_bn, tiny, gelu, gpt_attention);
criterion::criterion_main!(benches);
