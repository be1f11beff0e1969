//! conv2d forward and backward (`nanograd::ops`) for the two convolutions of the small CNN
//! training step: conv1 `1 -> 8, 3x3, padding 1` on 28x28 and conv2 `8 -> 16, 3x3, stride 2,
//! padding 1` on 8x28x28; and three stride-1 convolutions of 16 channels or more (the
//! shifted kernels, `ops/conv2d/shifted.rs`): `mnist_cnn`'s conv2 `16 -> 32` on 14x14, `64 ->
//! 64` on 14x14 and `32 -> 32` on 28x28, all 3x3 with padding 1; each at batch 1 and 32, in
//! f32.
//!
//! - `forward`: [`conv2d`];
//! - `forward+backward`: [`conv2d`] then [`conv2d_backward`] with every gradient, the
//!   columns kept from the forward pass;
//! - `forward+backward-no-dx`, conv1 only: the pair as the CNN's training step calls it for
//!   its first convolution, whose input is the data (conv2's step is `forward+backward`).
//!
//! ```sh
//! cargo bench --bench conv -- --warm-up-time 1 --measurement-time 3
//! ```

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use nanograd::ops::{conv2d, conv2d_backward, Conv2dCols, Conv2dGeom};
use std::hint::black_box;

/// `len` deterministic values in `[-1, 1)`.
fn fill(len: usize, seed: usize) -> Vec<f32> {
    (0..len)
        .map(|i| ((i * 7919 + seed * 104_729) % 2000) as f32 / 1000.0 - 1.0)
        .collect()
}

/// The two convolutions of the small CNN and three shifted ones: (name, geometry, whether
/// the training step asks for `dx`).
fn convs() -> [(&'static str, Conv2dGeom, bool); 5] {
    [
        (
            "conv1",
            Conv2dGeom::new(1, 28, 28, 8, 3, 3, 1, 1).unwrap(),
            false,
        ),
        (
            "conv2",
            Conv2dGeom::new(8, 28, 28, 16, 3, 3, 2, 1).unwrap(),
            true,
        ),
        (
            "s16-32-14",
            Conv2dGeom::new(16, 14, 14, 32, 3, 3, 1, 1).unwrap(),
            true,
        ),
        (
            "s64-64-14",
            Conv2dGeom::new(64, 14, 14, 64, 3, 3, 1, 1).unwrap(),
            true,
        ),
        (
            "s32-32-28",
            Conv2dGeom::new(32, 28, 28, 32, 3, 3, 1, 1).unwrap(),
            true,
        ),
    ]
}

fn bench_conv(c: &mut Criterion) {
    let mut group = c.benchmark_group("conv2d");
    for (name, g, step_dx) in convs() {
        for n in [1usize, 32] {
            let x = fill(n * g.input_len(), 1);
            let w = fill(g.weight_len(), 2);
            let b = fill(g.c_out, 3);
            let dy = fill(n * g.output_len(), 4);
            let mut ws = vec![0.0f32; g.workspace_len(n)];
            let mut y = vec![0.0f32; n * g.output_len()];
            let (mut dx, mut dw, mut db) = (
                vec![0.0f32; x.len()],
                vec![0.0f32; w.len()],
                vec![0.0f32; g.c_out],
            );
            let id = |pass: &str| BenchmarkId::new(pass, format!("{name}/b{n}"));
            group.bench_function(id("forward"), |bench| {
                bench.iter(|| {
                    conv2d(&g, black_box(&x), &w, Some(&b), n, &mut ws, &mut y).unwrap();
                    black_box(&mut y);
                })
            });
            let passes = [
                ("forward+backward", true),
                ("forward+backward-no-dx", false),
            ];
            for (pass, with_dx) in passes.into_iter().filter(|&(_, dx)| dx || !step_dx) {
                group.bench_function(id(pass), |bench| {
                    bench.iter(|| {
                        conv2d(&g, black_box(&x), &w, Some(&b), n, &mut ws, &mut y).unwrap();
                        conv2d_backward(
                            &g,
                            &x,
                            &w,
                            black_box(&dy),
                            n,
                            &mut ws,
                            Conv2dCols::Kept,
                            with_dx.then_some(&mut dx[..]),
                            Some(&mut dw),
                            Some(&mut db),
                        )
                        .unwrap();
                        black_box((&mut dx, &mut dw, &mut db));
                    })
                });
            }
        }
    }
    group.finish();
}

criterion_group!(benches, bench_conv);
criterion_main!(benches);
