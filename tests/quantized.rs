//! `quantize_int8`: the quantized perceptron and CNN against their float models on the
//! shipped MNIST test digits, quantized models against float ones on random inputs within a
//! bound derived from the scales, and the int8 safetensors files.

#[path = "../examples/shared/mlp.rs"]
mod mlp;

use nanograd::data::{Mnist, IMAGE_SIDE, IMAGE_SIZE, NUM_CLASSES};
use nanograd::prelude::*;
use nanograd::rand::{rngs::StdRng, RngExt, SeedableRng};

fn repo(path: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

fn argmax(row: &[f32]) -> usize {
    (0..row.len()).fold(0, |b, i| if row[i] > row[b] { i } else { b })
}

fn accuracy(logits: &[[f32; NUM_CLASSES]], labels: &[u8]) -> f64 {
    let correct = logits
        .iter()
        .zip(labels)
        .filter(|(l, &y)| argmax(&l[..]) == usize::from(y))
        .count();
    100.0 * correct as f64 / labels.len() as f64
}

fn mnist() -> Mnist {
    Mnist::load(repo("data/mnist-10k")).unwrap()
}

#[test]
fn perceptron_int8_within_0_3_points_and_under_30_percent_of_the_file() {
    let mut float = mlp::Mlp::<f32>::new(&mut StdRng::seed_from_u64(0));
    float
        .load_safetensors(repo("examples/weights/mnist_mlp.safetensors"))
        .unwrap();
    float.set_eval_mode();
    let q = float.quantize_int8().unwrap();
    assert_eq!(q.int8_weights(), ["fc1.weight", "fc2.weight", "fc3.weight"]);

    let data = mnist();
    assert_eq!(data.test_images.len(), 2000);
    let f_logits = float.forward(&data.test_images).unwrap();
    let q_logits = q.forward(&data.test_images).unwrap();
    let (fa, qa) = (
        accuracy(&f_logits, &data.test_labels),
        accuracy(&q_logits, &data.test_labels),
    );
    println!("perceptron: float {fa:.2} %, int8 {qa:.2} %");
    assert!((fa - qa).abs() <= 0.3, "float {fa:.2} % vs int8 {qa:.2} %");
    assert!(fa > 95.0, "{fa}");

    // the other fns run quantized too: probabilities are softmax of the int8 logits
    let p = q.probabilities(&data.test_images[..3]).unwrap();
    for (row, l) in p.iter().zip(&q_logits) {
        assert_eq!(argmax(row), argmax(l));
        assert!((row.iter().sum::<f32>() - 1.0).abs() < 1e-5);
    }

    // the file: int8 weights, f32 scales and biases, at most 30 % of the float file
    let bytes = q.to_safetensors_bytes().unwrap();
    let float_bytes = float.to_safetensors_bytes().unwrap();
    let ratio = bytes.len() as f64 / float_bytes.len() as f64;
    println!(
        "files: float {} bytes, int8 {} bytes ({:.1} %)",
        float_bytes.len(),
        bytes.len(),
        100.0 * ratio
    );
    assert!(ratio <= 0.30, "{ratio}");
    let loaded = mlp::MlpInt8::load_safetensors_bytes(&bytes).unwrap();
    assert_eq!(
        loaded.forward(&data.test_images[..64]).unwrap(),
        q_logits[..64].to_vec()
    );
    assert_eq!(loaded.quantized_layers(), q.quantized_layers());

    // forward_into in a workspace of one's own gives forward's bits
    let mut ws = Workspace::new();
    let mut out = vec![[0f32; NUM_CLASSES]; 7];
    q.forward_into(&data.test_images[..7], &mut out, &mut ws)
        .unwrap();
    assert_eq!(out, q_logits[..7].to_vec());
    let mut short = vec![[0f32; NUM_CLASSES]; 6];
    assert!(q
        .forward_into(&data.test_images[..7], &mut short, &mut ws)
        .is_err());
}

#[test]
fn loading_a_float_file_as_int8_names_every_tensor_at_fault() {
    let bytes = std::fs::read(repo("examples/weights/mnist_mlp.safetensors")).unwrap();
    let err = mlp::MlpInt8::load_safetensors_bytes(&bytes)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("tensor `fc1.weight` is F32 in the file but I8 in the quantized model"),
        "{err}"
    );
    assert!(
        err.contains("tensor `fc3.weight_scale` is missing"),
        "{err}"
    );
    assert!(mlp::MlpInt8::load_safetensors(repo("no/such/file")).is_err());
}

model! {
    /// One dense layer: its quantized output's error has a bound of its own.
    pub struct OneDense {
        fc: Dense(40 -> 12),
    }
    fn forward(x: [B, 40]) -> [B, 12] {
        fc(x)
    }
}

/// `|Σ x w − s_x s_w Σ xq wq| ≤ Σ_k |x_k| s_w / 2 + (|w_k| + s_w / 2) s_x / 2`, per output,
/// with `s_x = max|x| / 127` per row and `s_w` the channel's scale.
#[test]
fn one_dense_layer_within_the_scale_bound_on_random_inputs() {
    let mut rng = StdRng::seed_from_u64(7);
    let model = OneDense::<f32>::new(&mut rng);
    let q = model.quantize_int8().unwrap();
    let x: Vec<[f32; 40]> = (0..33)
        .map(|_| std::array::from_fn(|_| rng.random_range(-3.0..3.0)))
        .collect();
    let (yf, yq) = (model.forward(&x).unwrap(), q.forward(&x).unwrap());
    let w = model.fc.weight.value();
    let scales = q.quantized_layers()[0].scales();
    let mut worst = 0f32;
    for (r, xr) in x.iter().enumerate() {
        let sx = xr.iter().fold(0f32, |m, v| m.max(v.abs())) / 127.0;
        for c in 0..12 {
            let sw = scales[c];
            let bound: f32 = xr
                .iter()
                .zip(&w[c * 40..(c + 1) * 40])
                .map(|(xv, wv)| xv.abs() * sw / 2.0 + (wv.abs() + sw / 2.0) * sx / 2.0)
                .sum::<f32>()
                * 1.001
                + 1e-5;
            let err = (yf[r][c] - yq[r][c]).abs();
            worst = worst.max(err / bound);
            assert!(err <= bound, "({r}, {c}): {err} > {bound}");
        }
    }
    assert!(worst > 0.0, "the int8 path differs from f32 somewhere");
}

model! {
    /// Convolution, batch norm, relu, pooling and a dense layer, as the CNN example.
    pub struct SmallCnn {
        conv1: Conv2d(1 -> 8, kernel = 3, padding = 1),
        bn1: BatchNorm2d(8),
        pool1: MaxPool2d(kernel = 2),
        conv2: Conv2d(8 -> 16, kernel = 3, padding = 1),
        bn2: BatchNorm2d(16),
        pool2: MaxPool2d(kernel = 2),
        fc: Dense(784 -> 10),
    }
    fn forward(x: [B, 1, 28, 28]) -> [B, 10] {
        let h = pool1(relu(bn1(conv1(x))));
        let h = pool2(relu(bn2(conv2(h))));
        fc(flatten(h))
    }
    fn loss(x: [B, 1, 28, 28], target: [B, 10]) -> [] {
        softmax_cross_entropy(forward(x), target)
    }
}

type Image = [[[f32; IMAGE_SIDE]; IMAGE_SIDE]; 1];

fn as_images(rows: &[[f32; IMAGE_SIZE]]) -> &[Image] {
    let (lines, _) = rows.as_flattened().as_chunks::<IMAGE_SIDE>();
    let (planes, _) = lines.as_chunks::<IMAGE_SIDE>();
    let (images, _) = planes.as_chunks::<1>();
    images
}

/// Batch norm with running statistics of its own is folded into the convolution before it;
/// the whole network stays close to the float one in evaluation mode, and round-trips
/// through its file (without the folded batch norms' tensors).
#[test]
fn cnn_with_batch_norm_folds_and_stays_close() {
    let mut rng = StdRng::seed_from_u64(8);
    let mut model = SmallCnn::<f32>::new(&mut rng);
    for (name, lo, hi) in [("running_mean", -0.3, 0.3), ("running_var", 0.5, 2.0)] {
        model.visit_buffers_mut(&mut |n, b| {
            if n.ends_with(name) {
                b.data_mut()
                    .iter_mut()
                    .for_each(|v| *v = rng.random_range(lo..hi));
            }
        });
    }
    model
        .bn1
        .weight
        .value_mut()
        .iter_mut()
        .for_each(|v| *v = rng.random_range(0.5..1.5));
    model.set_eval_mode();
    let q = model.quantize_int8().unwrap();
    assert_eq!(
        q.int8_weights(),
        [
            "conv1.weight (with bn1 folded in)",
            "conv2.weight (with bn2 folded in)",
            "fc.weight"
        ]
    );
    let x: Vec<[f32; IMAGE_SIZE]> = (0..5)
        .map(|_| std::array::from_fn(|_| rng.random_range(0.0..1.0)))
        .collect();
    let (yf, yq) = (
        model.forward(as_images(&x)).unwrap(),
        q.forward(as_images(&x)).unwrap(),
    );
    let scale = yf.iter().flatten().fold(0f32, |m, v| m.max(v.abs()));
    for (a, b) in yf.iter().flatten().zip(yq.iter().flatten()) {
        assert!(
            (a - b).abs() <= 0.05 * scale,
            "{a} vs {b} (largest {scale})"
        );
    }
    let bytes = q.to_safetensors_bytes().unwrap();
    let st = nanograd_safetensors_names(&bytes);
    assert!(
        st.contains(&"conv1.bias".to_string()) && !st.iter().any(|n| n.starts_with("bn1.")),
        "{st:?}"
    );
    let loaded = SmallCnnInt8::load_safetensors_bytes(&bytes).unwrap();
    assert_eq!(loaded.forward(as_images(&x)).unwrap(), yq);
    // the loss runs quantized as well
    let t = vec![[0.1f32; 10]; 5];
    assert!(q.loss(as_images(&x), &t).unwrap().is_finite());
}

/// The tensor names of a safetensors file, from its JSON header.
fn nanograd_safetensors_names(bytes: &[u8]) -> Vec<String> {
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
    header
        .as_object()
        .unwrap()
        .keys()
        .filter(|k| *k != "__metadata__")
        .cloned()
        .collect()
}

#[path = "../examples/shared/cnn.rs"]
mod cnn;
use cnn::Cnn as MnistCnn;

/// The CNN example's trained network (`cargo run --release --example mnist_cnn`, 10 epochs,
/// 98.20 % on the test digits, weights copied to `examples/weights/`), quantized with its
/// batch norms folded: within 0.3 points of the float network.
#[test]
fn mnist_cnn_int8_within_0_3_points() {
    let mut float = MnistCnn::<f32>::new(&mut StdRng::seed_from_u64(0));
    float
        .load_safetensors(repo("examples/weights/mnist_cnn.safetensors"))
        .unwrap();
    float.set_eval_mode();
    let q = float.quantize_int8().unwrap();
    assert_eq!(
        q.int8_weights(),
        [
            "conv1.weight (with bn1 folded in)",
            "conv2.weight (with bn2 folded in)",
            "fc.weight"
        ]
    );
    let data = mnist();
    let x = as_images(&data.test_images);
    let (fa, qa) = (
        accuracy(&float.forward(x).unwrap(), &data.test_labels),
        accuracy(&q.forward(x).unwrap(), &data.test_labels),
    );
    println!("cnn: float {fa:.2} %, int8 {qa:.2} %");
    assert!(fa > 97.5, "{fa}");
    assert!((fa - qa).abs() <= 0.3, "float {fa:.2} % vs int8 {qa:.2} %");
    let bytes = q.to_safetensors_bytes().unwrap();
    let float_bytes = float.to_safetensors_bytes().unwrap();
    println!(
        "cnn files: float {} bytes, int8 {} bytes",
        float_bytes.len(),
        bytes.len()
    );
}

model! {
    /// A residual block of two dense layers, used as a layer by `Stack`.
    pub struct Res {
        fc1: Dense(16 -> 32),
        fc2: Dense(32 -> 16),
    }
    fn forward(x: [B, 16]) -> [B, 16] {
        x + fc2(relu(fc1(x)))
    }
}

model! {
    /// A model of models: one `Res`, an array of three, dense layers around them.
    pub struct Stack {
        inp: Dense(8 -> 16),
        blk: Res,
        h: [Res; 3],
        head: Dense(16 -> 4),
    }
    fn forward(x: [B, 8]) -> [B, 4] {
        head(h(blk(relu(inp(x)))))
    }
}

/// `dense_int8` on its own: the reference the quantized `Stack` must match bit for bit.
fn dense_int8_ref(x: &[f32], l: &nanograd::quant::QuantizedLayer, bias: &[f32]) -> Vec<f32> {
    let (in_f, out_f) = (l.in_features(), l.out_features());
    let rows = x.len() / in_f;
    let mut y = vec![0f32; rows * out_f];
    let mut scratch = vec![0f32; nanograd::quant::dense_int8_scratch_len(rows, in_f)];
    nanograd::quant::dense_int8(x, l, Some(bias), rows, in_f, out_f, &mut y, &mut scratch).unwrap();
    y
}

/// Models used as layers (`blk: Res`, `h: [Res; 3]`) are quantized too: their dense
/// weights are int8 under the float model's names (`h.1.fc2.weight`), the output is the
/// int8 pipeline's bit for bit (own layers first, then each model used as a layer in
/// field order), and the file round-trips without their float weights.
#[test]
fn models_used_as_layers_are_quantized_under_their_names() {
    let mut rng = StdRng::seed_from_u64(21);
    let model = Stack::<f32>::new(&mut rng);
    let q = model.quantize_int8().unwrap();
    let mut names = vec!["inp.weight".to_string(), "head.weight".to_string()];
    for p in ["blk", "h.0", "h.1", "h.2"] {
        names.push(format!("{p}.fc1.weight"));
        names.push(format!("{p}.fc2.weight"));
    }
    assert_eq!(q.int8_weights(), names);
    let blocks = [&model.blk, &model.h[0], &model.h[1], &model.h[2]];
    let ql = q.quantized_layers();
    assert_eq!(ql.len(), 10);
    for (i, b) in blocks.iter().enumerate() {
        let want = nanograd::quant::QuantizedLayer::new(b.fc2.weight.value(), &[16, 32]).unwrap();
        assert_eq!(ql[3 + 2 * i], want, "{}", names[3 + 2 * i]);
    }

    let x: Vec<[f32; 8]> = (0..7)
        .map(|_| std::array::from_fn(|_| rng.random_range(-2.0..2.0)))
        .collect();
    let flat: Vec<f32> = x.iter().flatten().copied().collect();
    let relu = |v: Vec<f32>| v.into_iter().map(|a| a.max(0.0)).collect::<Vec<_>>();
    let mut h = relu(dense_int8_ref(&flat, &ql[0], model.inp.bias.value()));
    for (i, b) in blocks.iter().enumerate() {
        let t = relu(dense_int8_ref(&h, &ql[2 + 2 * i], b.fc1.bias.value()));
        let t = dense_int8_ref(&t, &ql[3 + 2 * i], b.fc2.bias.value());
        h = h.iter().zip(&t).map(|(a, b)| a + b).collect();
    }
    let want = dense_int8_ref(&h, &ql[1], model.head.bias.value());
    let got = q.forward(&x).unwrap();
    assert_eq!(got.iter().flatten().copied().collect::<Vec<_>>(), want);
    // and close to the float model, which it is not equal to
    let yf = model.forward(&x).unwrap();
    let diff = yf
        .iter()
        .flatten()
        .zip(got.iter().flatten())
        .fold(0f32, |m, (a, b)| m.max((a - b).abs()));
    assert!(diff > 0.0 && diff < 0.1, "{diff}");

    let bytes = q.to_safetensors_bytes().unwrap();
    let st = nanograd_safetensors_names(&bytes);
    for n in &names {
        assert!(
            st.contains(n) && st.contains(&format!("{n}_scale")),
            "{n}: {st:?}"
        );
    }
    assert!(st.contains(&"h.2.fc1.bias".to_string()), "{st:?}");
    assert_eq!(st.len(), 3 * names.len(), "{st:?}"); // weight, scale and bias of each
    let loaded = StackInt8::load_safetensors_bytes(&bytes).unwrap();
    assert_eq!(loaded.forward(&x).unwrap(), got);
    assert_eq!(loaded.quantized_layers(), ql);
    // a file without one block's scales names it
    let float_file = model.to_safetensors_bytes().unwrap();
    let err = StackInt8::load_safetensors_bytes(&float_file).unwrap_err();
    assert!(err.to_string().contains("h.1.fc2.weight"), "{err}");
}
