//! Every layer through `model!`'s struct form: Dense (with and without bias), Conv2d,
//! BatchNorm2d in training and evaluation mode, MaxPool2d, AvgPool2d and Param (Dropout has
//! `ops_macro_dropout.rs`). Each model's forward is compared with the runtime kernels
//! called by hand, its `loss_backward` with central differences of `loss` for every
//! parameter, and its `f32` instance with the `f64` one; layers called twice add both
//! gradient contributions. A layer without parameters follows one that has some, so that
//! its input gradient is checked through them.

mod ops_macro_util;

use nanograd::assert_close;
use nanograd::ops::{self, Conv2dGeom, Pool2dGeom};
use nanograd::prelude::*;
use nanograd::rand::{rngs::StdRng, SeedableRng};
use ops_macro_util::{check_param_grads, copy_to_f32, randomise_params, rnd, Vals};

fn dense_k(x: &[f64], l: &nanograd::layers::Dense<f64>, bias: bool, rows: usize) -> Vec<f64> {
    let (i, o) = (l.in_features(), l.out_features());
    let mut y = vec![0.0; rows * o];
    let b = if bias { Some(l.bias.value()) } else { None };
    ops::dense(x, l.weight.value(), b, rows, i, o, &mut y).unwrap();
    y
}

fn conv_k(
    x: &[f64],
    l: &nanograd::layers::Conv2d<f64>,
    bias: bool,
    n: usize,
    hw: usize,
) -> Vec<f64> {
    let (k, s, p) = (l.kernel_size(), l.stride(), l.padding());
    let g = Conv2dGeom::new(l.in_channels(), hw, hw, l.out_channels(), k, k, s, p).unwrap();
    let mut cols = vec![0.0; g.workspace_len(n)];
    let mut y = vec![0.0; n * g.output_len()];
    let b = if bias { Some(l.bias.value()) } else { None };
    ops::conv2d(&g, x, l.weight.value(), b, n, &mut cols, &mut y).unwrap();
    y
}

fn map(f: fn(&[f64], &mut [f64]) -> nanograd::Result<()>, x: &[f64]) -> Vec<f64> {
    let mut y = vec![0.0; x.len()];
    f(x, &mut y).unwrap();
    y
}

fn zip(a: &[f64], b: &[f64], f: impl Fn(f64, f64) -> f64) -> Vec<f64> {
    a.iter().zip(b).map(|(&a, &b)| f(a, b)).collect()
}

/// `n` samples of uniform values from `seed`.
fn batch<A: ops_macro_util::Arr>(n: u64, seed: u64) -> Vec<A> {
    (0..n).map(|i| rnd(seed + i, -1.0, 1.0)).collect()
}

fn flat<A: Vals>(v: &[A]) -> Vec<f64> {
    v.iter().flat_map(|a| a.vals()).collect()
}

model! {
    /// Dense layers, one called twice, one without bias, and a parameter used three times.
    struct DenseNet {
        fc: Dense(3 -> 4),
        sq: Dense(4 -> 4),
        head: Dense(4 -> 2, bias = false),
        scale: Param([2], init = uniform(-1, 1)),
    }

    fn forward(x: [B, 3]) -> [B, 2] { head(tanh(sq(sq(fc(x))))) * mul(scale, scale) + scale }

    fn loss(x: [B, 3], u: [B, 2]) -> [] { sum(forward(x) * u) }
}

#[test]
fn dense_and_param() {
    let mut model = DenseNet::<f64>::new(&mut StdRng::seed_from_u64(1));
    randomise_params(&mut model, 10, -1.0, 1.0);
    let x: Vec<[f64; 3]> = batch(4, 20);
    let u: Vec<[f64; 2]> = batch(4, 30);
    let h = dense_k(x.as_flattened(), &model.fc, true, 4);
    let h = dense_k(&h, &model.sq, true, 4);
    let h = map(ops::tanh, &dense_k(&h, &model.sq, true, 4));
    let h = dense_k(&h, &model.head, false, 4);
    let s = model.scale.value();
    let ss = zip(s, s, |a, b| a * b);
    let mut y = vec![0.0; 8];
    ops::mul(&h, &ss, &mut y).unwrap();
    let mut out = vec![0.0; 8];
    ops::add(&y, s, &mut out).unwrap();
    assert_close!(model.forward(&x).unwrap().as_flattened(), out, 1e-12);

    let base = model.clone();
    let loss = model.loss_backward(&x, &u).unwrap();
    assert_close!(loss, ops_macro_util::dotv(&out, u.as_flattened()), 1e-12);
    // `head` has no bias in the graph: its `bias` parameter gets no gradient
    let names = check_param_grads(&base, &model, |m| m.loss(&x, &u).unwrap(), 1e-6, &[]);
    // `bias = false`: no bias parameter at all, as PyTorch's `bias=False`
    assert!(!model.head.has_bias());
    assert_eq!(
        names,
        [
            "fc.weight",
            "fc.bias",
            "sq.weight",
            "sq.bias",
            "head.weight",
            "scale"
        ]
    );

    let mut m32 = DenseNet::<f32>::new(&mut StdRng::seed_from_u64(2));
    copy_to_f32(&base, &mut m32);
    let x32: Vec<[f32; 3]> = x.iter().map(|r| r.map(|v| v as f32)).collect();
    let u32: Vec<[f32; 2]> = u.iter().map(|r| r.map(|v| v as f32)).collect();
    assert_close!(m32.forward(&x32).unwrap().as_flattened(), out, 1e-5);
    m32.loss_backward(&x32, &u32).unwrap();
    ops_macro_util::assert_grads_close(&model, &m32, 1e-4);
}

model! {
    struct Lin {
        fc: Dense(2 -> 1),
    }

    fn loss(x: [B, 2]) -> [] { sum(fc(x)) }
}

#[test]
fn dense_hand_derived() {
    // weight [[2, -1]], bias [0.5]: rows [1, 3] and [0, 1] give -0.5 and -0.5, sum -1;
    // d/dweight = Σ rows = [1, 4], d/dbias = 2 rows
    let mut model = Lin::<f32>::new(&mut StdRng::seed_from_u64(0));
    model.fc.weight.value_mut().copy_from_slice(&[2.0, -1.0]);
    model.fc.bias.value_mut().copy_from_slice(&[0.5]);
    let x = [[1.0, 3.0], [0.0, 1.0]];
    assert_eq!(model.loss(&x).unwrap(), -1.0);
    assert_eq!(model.loss_into(&x, &mut Workspace::new()).unwrap(), -1.0);
    assert_eq!(model.loss_backward(&x).unwrap(), -1.0);
    assert_eq!(model.fc.weight.grad(), [1.0, 4.0]);
    assert_eq!(model.fc.bias.grad(), [2.0]);
    // gradients accumulate over steps until zero_grad
    model.loss_backward(&x).unwrap();
    assert_eq!(model.fc.weight.grad(), [2.0, 8.0]);
    model.zero_grad();
    assert_eq!(model.fc.bias.grad(), [0.0]);
}

model! {
    /// Convolutions, one called twice, one without bias.
    struct ConvNet {
        conv: Conv2d(2 -> 3, kernel = 3, stride = 2, padding = 1),
        same: Conv2d(3 -> 3, kernel = 3, padding = 1, bias = false),
    }

    fn forward(x: [B, 2, 5, 5]) -> [B, 3, 3, 3] { same(tanh(same(conv(x)))) }

    fn loss(x: [B, 2, 5, 5], u: [B, 3, 3, 3]) -> [] { sum(forward(x) * u) }
}

#[test]
fn conv2d_layers() {
    let mut model = ConvNet::<f64>::new(&mut StdRng::seed_from_u64(4));
    randomise_params(&mut model, 40, -0.5, 0.5);
    let x: Vec<[[[f64; 5]; 5]; 2]> = batch(2, 50);
    let u: Vec<[[[f64; 3]; 3]; 3]> = batch(2, 60);
    let h = conv_k(&flat(&x), &model.conv, true, 2, 5);
    let h = map(ops::tanh, &conv_k(&h, &model.same, false, 2, 3));
    let out = conv_k(&h, &model.same, false, 2, 3);
    assert_close!(flat(&model.forward(&x).unwrap()), out, 1e-12);

    let base = model.clone();
    let loss = model.loss_backward(&x, &u).unwrap();
    assert_close!(loss, ops_macro_util::dotv(&out, &flat(&u)), 1e-12);
    let names = check_param_grads(&base, &model, |m| m.loss(&x, &u).unwrap(), 1e-6, &[]);
    assert!(!model.same.has_bias());
    assert_eq!(names, ["conv.weight", "conv.bias", "same.weight"]);

    let mut m32 = ConvNet::<f32>::new(&mut StdRng::seed_from_u64(5));
    copy_to_f32(&base, &mut m32);
    let x32: Vec<_> = x
        .iter()
        .map(|r| r.map(|c| c.map(|row| row.map(|v| v as f32))))
        .collect();
    let u32: Vec<_> = u
        .iter()
        .map(|r| r.map(|c| c.map(|row| row.map(|v| v as f32))))
        .collect();
    assert_close!(flat(&m32.forward(&x32).unwrap()), out, 1e-5);
    m32.loss_backward(&x32, &u32).unwrap();
    ops_macro_util::assert_grads_close(&model, &m32, 1e-4);
}

model! {
    /// Batch norm after a convolution (so that its input gradient reaches `conv`), and a
    /// batch norm called twice.
    struct BnNet {
        conv: Conv2d(1 -> 2, kernel = 2),
        bn: BatchNorm2d(2),
        bn2: BatchNorm2d(2, eps = 0.001, momentum = 0.3),
    }

    fn forward(x: [B, 1, 4, 4]) -> [B, 2, 3, 3] { bn(conv(x)) }
    fn twice(x: [B, 1, 4, 4]) -> [B, 2, 3, 3] { bn2(tanh(bn2(conv(x)))) }

    fn loss(x: [B, 1, 4, 4], u: [B, 2, 3, 3]) -> [] { sum(forward(x) * u) }
    fn loss2(x: [B, 1, 4, 4], u: [B, 2, 3, 3]) -> [] { sum(twice(x) * u) }
}

/// Batch norm in training mode by the kernel: output, and the running statistics after.
fn bn_train_k(
    x: &[f64],
    l: &nanograd::layers::BatchNorm2d<f64>,
    rm: &mut [f64],
    rv: &mut [f64],
    n: usize,
) -> Vec<f64> {
    let c = l.num_features();
    let (mut sm, mut si) = (vec![0.0; c], vec![0.0; c]);
    let mut y = vec![0.0; x.len()];
    let hw = x.len() / (n * c);
    let (eps, mom) = (l.eps(), l.momentum());
    ops::batch_norm2d_train(
        x,
        n,
        c,
        hw,
        l.weight.value(),
        l.bias.value(),
        eps,
        mom,
        rm,
        rv,
        &mut sm,
        &mut si,
        &mut y,
    )
    .unwrap();
    y
}

fn bn_eval_k(x: &[f64], l: &nanograd::layers::BatchNorm2d<f64>, n: usize) -> Vec<f64> {
    let c = l.num_features();
    let mut y = vec![0.0; x.len()];
    let hw = x.len() / (n * c);
    ops::batch_norm2d_eval(
        x,
        n,
        c,
        hw,
        l.weight.value(),
        l.bias.value(),
        l.running_mean.data(),
        l.running_var.data(),
        l.eps(),
        &mut y,
    )
    .unwrap();
    y
}

fn bn_model() -> BnNet<f64> {
    let mut model = BnNet::<f64>::new(&mut StdRng::seed_from_u64(6));
    randomise_params(&mut model, 70, 0.5, 1.5);
    let mut s = 80;
    model.visit_buffers_mut(&mut |_, b| {
        let v = nanograd::testing::random_vec::<f64>(s, b.len(), 0.5, 1.5);
        b.data_mut().copy_from_slice(&v);
        s += 1;
    });
    model
}

#[test]
fn batch_norm_in_training_mode() {
    let mut model = bn_model();
    assert!(model.is_training());
    let x: Vec<[[[f64; 4]; 4]; 1]> = batch(3, 90);
    let u: Vec<[[[f64; 3]; 3]; 2]> = batch(3, 100);
    assert_eq!(model.bn.eps(), 1e-5);
    assert_eq!((model.bn2.eps(), model.bn2.momentum()), (0.001, 0.3));

    let h = conv_k(&flat(&x), &model.conv, true, 3, 4);
    let (mut rm, mut rv) = (
        model.bn.running_mean.to_vec(),
        model.bn.running_var.to_vec(),
    );
    let out = bn_train_k(&h, &model.bn, &mut rm, &mut rv, 3);
    // `forward` (&self) uses the batch statistics and leaves the running ones alone
    assert_close!(flat(&model.forward(&x).unwrap()), out, 1e-12);
    assert_ne!(rm, model.bn.running_mean.to_vec());

    // two calls of bn2: two updates of its running statistics, in order
    let (mut rm2, mut rv2) = (
        model.bn2.running_mean.to_vec(),
        model.bn2.running_var.to_vec(),
    );
    let t = map(
        ops::tanh,
        &bn_train_k(&h, &model.bn2, &mut rm2, &mut rv2, 3),
    );
    let out2 = bn_train_k(&t, &model.bn2, &mut rm2, &mut rv2, 3);
    assert_close!(flat(&model.twice(&x).unwrap()), out2, 1e-12);

    let base = model.clone();
    let loss = model.loss_backward(&x, &u).unwrap();
    assert_close!(loss, ops_macro_util::dotv(&out, &flat(&u)), 1e-12);
    assert_close!(model.bn.running_mean.data(), rm, 1e-15);
    assert_close!(model.bn.running_var.data(), rv, 1e-15);
    // in training mode a batch norm removes a per-channel constant: the conv bias has no
    // gradient; bn2 is not used by `loss`
    let names = check_param_grads(
        &base,
        &model,
        |m| m.loss(&x, &u).unwrap(),
        1e-6,
        &["conv.bias", "bn2.weight", "bn2.bias"],
    );
    assert_close!(model.conv.bias.grad(), [0.0, 0.0], 1e-12);
    assert_eq!(
        names,
        [
            "conv.weight",
            "conv.bias",
            "bn.weight",
            "bn.bias",
            "bn2.weight",
            "bn2.bias"
        ]
    );

    let mut model = base.clone();
    let loss2 = model.loss2_backward(&x, &u).unwrap();
    assert_close!(loss2, ops_macro_util::dotv(&out2, &flat(&u)), 1e-12);
    assert_close!(model.bn2.running_mean.data(), rm2, 1e-15);
    assert_close!(model.bn2.running_var.data(), rv2, 1e-15);
    check_param_grads(
        &base,
        &model,
        |m| m.loss2(&x, &u).unwrap(),
        1e-6,
        &["conv.bias", "bn.weight", "bn.bias"],
    );

    let mut m32 = BnNet::<f32>::new(&mut StdRng::seed_from_u64(7));
    copy_to_f32(&base, &mut m32);
    let x32: Vec<_> = x
        .iter()
        .map(|r| r.map(|c| c.map(|row| row.map(|v| v as f32))))
        .collect();
    let u32: Vec<_> = u
        .iter()
        .map(|r| r.map(|c| c.map(|row| row.map(|v| v as f32))))
        .collect();
    assert_close!(flat(&m32.forward(&x32).unwrap()), out, 1e-4);
    m32.loss_backward(&x32, &u32).unwrap();
    let mut m64 = base.clone();
    m64.loss_backward(&x, &u).unwrap();
    ops_macro_util::assert_grads_close(&m64, &m32, 1e-3);
}

#[test]
fn batch_norm_in_eval_mode() {
    let mut model = bn_model();
    model.set_eval_mode();
    let x: Vec<[[[f64; 4]; 4]; 1]> = batch(3, 110);
    let u: Vec<[[[f64; 3]; 3]; 2]> = batch(3, 120);
    let h = conv_k(&flat(&x), &model.conv, true, 3, 4);
    let out = bn_eval_k(&h, &model.bn, 3);
    assert_close!(flat(&model.forward(&x).unwrap()), out, 1e-12);
    let t = map(ops::tanh, &bn_eval_k(&h, &model.bn2, 3));
    let out2 = bn_eval_k(&t, &model.bn2, 3);
    assert_close!(flat(&model.twice(&x).unwrap()), out2, 1e-12);

    let base = model.clone();
    let loss = model.loss_backward(&x, &u).unwrap();
    assert_close!(loss, ops_macro_util::dotv(&out, &flat(&u)), 1e-12);
    // the running statistics stay as they were
    assert_eq!(
        model.bn.running_mean.to_vec(),
        base.bn.running_mean.to_vec()
    );
    assert_eq!(model.bn.running_var.to_vec(), base.bn.running_var.to_vec());
    let names = check_param_grads(
        &base,
        &model,
        |m| m.loss(&x, &u).unwrap(),
        1e-6,
        &["bn2.weight", "bn2.bias"],
    );
    assert_eq!(names.len(), 6);
    let mut model = base.clone();
    model.loss2_backward(&x, &u).unwrap();
    check_param_grads(
        &base,
        &model,
        |m| m.loss2(&x, &u).unwrap(),
        1e-6,
        &["bn.weight", "bn.bias"],
    );

    let mut m32 = BnNet::<f32>::new(&mut StdRng::seed_from_u64(8));
    copy_to_f32(&base, &mut m32);
    assert!(!m32.is_training());
    let x32: Vec<_> = x
        .iter()
        .map(|r| r.map(|c| c.map(|row| row.map(|v| v as f32))))
        .collect();
    assert_close!(flat(&m32.twice(&x32).unwrap()), out2, 1e-4);
}

model! {
    /// Batch norm, relu and a 2x2 max pooling in a row: in a training step one pass without
    /// the relu's plane each way (`batch_norm2d_train_relu_max_pool2d` and its backward
    /// pass), in eval mode the three ops one after the other.
    struct BnPoolNet {
        conv: Conv2d(1 -> 3, kernel = 3, padding = 1),
        bn: BatchNorm2d(3),
        mp: MaxPool2d(kernel = 2),
    }

    fn forward(x: [B, 1, 6, 6]) -> [B, 3, 3, 3] { mp(relu(bn(conv(x)))) }
    fn loss(x: [B, 1, 6, 6], u: [B, 3, 3, 3]) -> [] { sum(forward(x) * u) }
}

#[test]
fn batch_norm_relu_max_pool_in_both_modes() {
    let mut base = BnPoolNet::<f64>::new(&mut StdRng::seed_from_u64(9));
    randomise_params(&mut base, 130, -1.0, 1.0);
    let x: Vec<[[[f64; 6]; 6]; 1]> = batch(4, 140);
    let u: Vec<[[[f64; 3]; 3]; 3]> = batch(4, 150);
    for training in [true, false] {
        base.set_training_mode(training);
        let h = conv_k(&flat(&x), &base.conv, true, 4, 6);
        let (mut rm, mut rv) = (base.bn.running_mean.to_vec(), base.bn.running_var.to_vec());
        let normed = if training {
            bn_train_k(&h, &base.bn, &mut rm, &mut rv, 4)
        } else {
            bn_eval_k(&h, &base.bn, 4)
        };
        let g = Pool2dGeom::new(3, 6, 6, 2, 2, 0).unwrap();
        let mut out = vec![0.0; 4 * g.output_len()];
        ops::max_pool2d(&g, &map(ops::relu, &normed), 4, &mut out).unwrap();

        let mut model = base.clone();
        let loss = model.loss_backward(&x, &u).unwrap();
        assert_close!(loss, ops_macro_util::dotv(&out, &flat(&u)), 1e-12);
        // in training mode batch norm removes a per-channel constant: no conv bias gradient
        let zero_ok: &[&str] = if training { &["conv.bias"] } else { &[] };
        let names = check_param_grads(&base, &model, |m| m.loss(&x, &u).unwrap(), 1e-6, zero_ok);
        assert_eq!(names.len(), 4, "training = {training}");

        let mut m32 = BnPoolNet::<f32>::new(&mut StdRng::seed_from_u64(10));
        copy_to_f32(&base, &mut m32);
        let cast = |v: &[[[[f64; 6]; 6]; 1]]| -> Vec<[[[f32; 6]; 6]; 1]> {
            v.iter()
                .map(|r| r.map(|c| c.map(|row| row.map(|v| v as f32))))
                .collect()
        };
        let u32: Vec<_> = u
            .iter()
            .map(|r| r.map(|c| c.map(|row| row.map(|v| v as f32))))
            .collect();
        m32.loss_backward(&cast(&x), &u32).unwrap();
        ops_macro_util::assert_grads_close(&model, &m32, 1e-3);
    }
}

model! {
    /// Pooling layers after a convolution; the max pool is also called twice in a row.
    struct PoolNet {
        conv: Conv2d(1 -> 2, kernel = 3, padding = 1),
        mp: MaxPool2d(kernel = 2),
        ap: AvgPool2d(kernel = 3, stride = 1, padding = 1),
    }

    fn maxed(x: [B, 1, 4, 4]) -> [B, 2, 2, 2] { mp(conv(x)) }
    fn averaged(x: [B, 1, 4, 4]) -> [B, 2, 4, 4] { ap(conv(x)) }

    fn loss(x: [B, 1, 4, 4], u: [B, 2, 2, 2], v: [B, 2, 4, 4]) -> [] {
        sum(maxed(x) * u) + sum(averaged(x) * v) + sum(mp(mp(ap(conv(x)))))
    }
}

/// Max or average pooling of `n` images by the kernel, with geometry `g`.
fn pool_k(max: bool, x: &[f64], n: usize, g: Pool2dGeom) -> Vec<f64> {
    let mut y = vec![0.0; n * g.output_len()];
    if max {
        ops::max_pool2d(&g, x, n, &mut y).unwrap();
    } else {
        ops::avg_pool2d(&g, x, n, &mut y).unwrap();
    }
    y
}

#[test]
fn pooling_layers() {
    let mut model = PoolNet::<f64>::new(&mut StdRng::seed_from_u64(9));
    randomise_params(&mut model, 130, -1.0, 1.0);
    let x: Vec<[[[f64; 4]; 4]; 1]> = batch(2, 140);
    let u: Vec<[[[f64; 2]; 2]; 2]> = batch(2, 150);
    let v: Vec<[[[f64; 4]; 4]; 2]> = batch(2, 160);
    let h = conv_k(&flat(&x), &model.conv, true, 2, 4);
    let mx = pool_k(true, &h, 2, Pool2dGeom::new(2, 4, 4, 2, 2, 0).unwrap());
    assert_close!(flat(&model.maxed(&x).unwrap()), mx, 1e-12);
    let av = pool_k(false, &h, 2, Pool2dGeom::new(2, 4, 4, 3, 1, 1).unwrap());
    assert_close!(flat(&model.averaged(&x).unwrap()), av, 1e-12);
    let half = |hw| Pool2dGeom::new(2, hw, hw, 2, 2, 0).unwrap();
    let mm = pool_k(true, &pool_k(true, &av, 2, half(4)), 2, half(2));
    let want =
        ops_macro_util::dotv(&mx, &flat(&u)) + ops_macro_util::dotv(&av, &flat(&v)) + ops::sum(&mm);

    let base = model.clone();
    assert_close!(model.loss_backward(&x, &u, &v).unwrap(), want, 1e-12);
    let names = check_param_grads(&base, &model, |m| m.loss(&x, &u, &v).unwrap(), 1e-6, &[]);
    assert_eq!(names, ["conv.weight", "conv.bias"]);

    let mut m32 = PoolNet::<f32>::new(&mut StdRng::seed_from_u64(10));
    copy_to_f32(&base, &mut m32);
    let c32 = |b: &Vec<[[[f64; 4]; 4]; 2]>| -> Vec<[[[f32; 4]; 4]; 2]> {
        b.iter()
            .map(|r| r.map(|c| c.map(|row| row.map(|v| v as f32))))
            .collect()
    };
    let x32: Vec<_> = x
        .iter()
        .map(|r| r.map(|c| c.map(|row| row.map(|v| v as f32))))
        .collect();
    let u32: Vec<_> = u
        .iter()
        .map(|r| r.map(|c| c.map(|row| row.map(|v| v as f32))))
        .collect();
    assert_close!(m32.loss_backward(&x32, &u32, &c32(&v)).unwrap(), want, 1e-5);
    ops_macro_util::assert_grads_close(&model, &m32, 1e-4);
}
