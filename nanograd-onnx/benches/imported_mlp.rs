//! The imported MLP fixture (`tests/fixtures/mlp_ts17.onnx`: 8-16-12-12-5 with ReLU, tanh,
//! sigmoid, log-softmax) through the generated `forward`, at batch 1 and 64, one thread.
//! `benches/ort_mlp.py` times ONNX Runtime on the same file and inputs; README, "Importing
//! ONNX", has both.

use criterion::{criterion_group, criterion_main, Criterion};
use nanograd::prelude::*;
use nanograd::rand::{rngs::StdRng, SeedableRng};

mod mlp_ts17 {
    include!("../tests/generated/mlp_ts17.rs");
}

fn bench(c: &mut Criterion) {
    let bytes = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/mlp_ts17.onnx"
    ))
    .unwrap();
    let converted = nanograd_onnx::convert(&bytes, "MlpTs17").unwrap();
    let mut model = mlp_ts17::MlpTs17::<f32>::new(&mut StdRng::seed_from_u64(0));
    model
        .load_safetensors_bytes(&converted.safetensors)
        .unwrap();
    model.set_eval_mode();
    for batch in [1usize, 64] {
        // the same inputs as ort_mlp.py: x[i][j] = ((i * 8 + j) % 17) / 8 - 1
        let x: Vec<[f32; 8]> = (0..batch)
            .map(|i| std::array::from_fn(|j| ((i * 8 + j) % 17) as f32 / 8.0 - 1.0))
            .collect();
        let mut out = vec![[0f32; 5]; batch];
        let mut ws = Workspace::new();
        model.forward_into(&x, &mut out, &mut ws).unwrap();
        c.bench_function(&format!("imported mlp forward_into, batch {batch}"), |b| {
            b.iter(|| {
                model
                    .forward_into(std::hint::black_box(&x), &mut out, &mut ws)
                    .unwrap()
            })
        });
        c.bench_function(&format!("imported mlp forward, batch {batch}"), |b| {
            b.iter(|| model.forward(std::hint::black_box(&x)).unwrap())
        });
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
