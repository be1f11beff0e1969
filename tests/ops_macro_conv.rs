//! Convolution and pooling through `model!`: conv2d (with and without bias, stride,
//! padding, on [C, H, W] and [N, C, H, W]), max_pool2d, avg_pool2d and global_avg_pool2d,
//! against the runtime kernels and central differences of the generated gradients (every
//! input: image, weight, bias), in f64 and f32, and on a batch in the struct form.

mod ops_macro_util;

use nanograd::assert_close;
use nanograd::ops::{self, Conv2dGeom, Pool2dGeom};
use nanograd::prelude::*;
use nanograd::rand::{rngs::StdRng, SeedableRng};
use ops_macro_util::{check_param_grads, rnd, Vals};

model! {
    fn conv_chw(x: [2, 5, 5], w: [3, 2, 3, 3], b: [3]) -> [3, 3, 3] { conv2d(x, w, b) }
    fn conv_stride_pad(x: [2, 5, 5], w: [3, 2, 3, 3]) -> [3, 3, 3] {
        conv2d(x, w, stride = 2, padding = 1)
    }
    fn conv_nchw(x: [2, 2, 4, 4], w: [3, 2, 2, 2], b: [3]) -> [2, 3, 2, 2] {
        conv2d(x, w, b, stride = 2)
    }
    fn conv_nchw_pad(x: [2, 1, 3, 3], w: [2, 1, 3, 3], b: [2]) -> [2, 2, 3, 3] {
        conv2d(x, w, b, padding = 1)
    }
    fn maxp(x: [2, 4, 4]) -> [2, 2, 2] { max_pool2d(x) }
    fn maxp_kw(x: [2, 2, 5, 5]) -> [2, 2, 3, 3] { max_pool2d(x, kernel = 3, stride = 2, padding = 1) }
    fn maxp_overlap(x: [1, 4, 4]) -> [1, 3, 3] { max_pool2d(x, stride = 1) }
    fn avgp(x: [2, 4, 4]) -> [2, 2, 2] { avg_pool2d(x) }
    fn avgp_kw(x: [2, 2, 5, 5]) -> [2, 2, 3, 3] { avg_pool2d(x, kernel = 3, stride = 2, padding = 1) }
    fn gap(x: [2, 3, 3]) -> [2] { global_avg_pool2d(x) }
    fn gap4(x: [2, 2, 3, 3]) -> [2, 2] { global_avg_pool2d(x) }
}

model! {
    // values used twice
    fn conv_twice(x: [2, 4, 4], w: [2, 2, 3, 3]) -> [2, 2, 2] {
        conv2d(tanh(conv2d(x, w, padding = 1)), w)
    }
    /// The image is its own kernel: conv = Σ x².
    fn conv_self(x: [1, 3, 3]) -> [1, 1, 1] { conv2d(x, reshape(x, [1, 1, 3, 3])) }
    fn pools_of_one(x: [1, 4, 4]) -> [1, 2, 2] { max_pool2d(x) + avg_pool2d(x) * max_pool2d(x) }
}

fn conv_k(g: Conv2dGeom, n: usize, x: &[f64], w: &[f64], b: Option<&[f64]>) -> Vec<f64> {
    let mut cols = vec![0.0; g.workspace_len(n)];
    let mut y = vec![0.0; n * g.output_len()];
    ops::conv2d(&g, x, w, b, n, &mut cols, &mut y).unwrap();
    y
}

fn geom(c_in: usize, hw: usize, c_out: usize, k: usize, stride: usize, pad: usize) -> Conv2dGeom {
    Conv2dGeom::new(c_in, hw, hw, c_out, k, k, stride, pad).unwrap()
}

fn pool_k(max: bool, g: Pool2dGeom, n: usize, x: &[f64]) -> Vec<f64> {
    let mut y = vec![0.0; n * g.output_len()];
    if max {
        ops::max_pool2d(&g, x, n, &mut y).unwrap();
    } else {
        ops::avg_pool2d(&g, x, n, &mut y).unwrap();
    }
    y
}

fn gap_k(x: &[f64], n: usize, c: usize, hw: usize) -> Vec<f64> {
    let mut y = vec![0.0; n * c];
    ops::global_avg_pool2d(x, n, c, hw, &mut y).unwrap();
    y
}

#[test]
fn conv2d_with_and_without_bias_stride_padding() {
    let x: [[[f64; 5]; 5]; 2] = rnd(1, -1.0, 1.0);
    let w: [[[[f64; 3]; 3]; 2]; 3] = rnd(2, -1.0, 1.0);
    let b: [f64; 3] = rnd(3, -1.0, 1.0);
    let y = conv_k(
        geom(2, 5, 3, 3, 1, 0),
        1,
        &x.vals(),
        &w.vals(),
        Some(&b.vals()),
    );
    check_fn!(conv_chw, conv_chw_vjp, [x => gx, w => gw, b => gb], expected = y, tol = 1e-7);
    let y = conv_k(geom(2, 5, 3, 3, 2, 1), 1, &x.vals(), &w.vals(), None);
    check_fn!(conv_stride_pad, conv_stride_pad_vjp, [x => gx, w => gw], expected = y, tol = 1e-7);

    let xn: [[[[f64; 4]; 4]; 2]; 2] = rnd(4, -1.0, 1.0);
    let wn: [[[[f64; 2]; 2]; 2]; 3] = rnd(5, -1.0, 1.0);
    let y = conv_k(
        geom(2, 4, 3, 2, 2, 0),
        2,
        &xn.vals(),
        &wn.vals(),
        Some(&b.vals()),
    );
    check_fn!(conv_nchw, conv_nchw_vjp, [xn => gx, wn => gw, b => gb], expected = y, tol = 1e-7);
    let xp: [[[[f64; 3]; 3]; 1]; 2] = rnd(6, -1.0, 1.0);
    let wp: [[[[f64; 3]; 3]; 1]; 2] = rnd(7, -1.0, 1.0);
    let bp: [f64; 2] = rnd(8, -1.0, 1.0);
    let y = conv_k(
        geom(1, 3, 2, 3, 1, 1),
        2,
        &xp.vals(),
        &wp.vals(),
        Some(&bp.vals()),
    );
    check_fn!(conv_nchw_pad, conv_nchw_pad_vjp, [xp => gx, wp => gw, bp => gb], expected = y, tol = 1e-7);
}

#[test]
fn hand_derived_convolution() {
    // a 1x3x3 image of 1..9 with a 1x1x3x3 kernel of ones, padding 1: the centre output is
    // Σ 1..9 = 45, the corner (0, 0) is 1 + 2 + 4 + 5 = 12; with bias 0.5 added.
    // With upstream 1 at every output, d/dbias = 9 outputs, d/dw[1][1] = Σ x = 45.
    let x = [
        [[[1.0f64, 2.0, 3.0], [4.0, 5.0, 6.0], [7.0, 8.0, 9.0]]],
        [[[0.0; 3]; 3]],
    ];
    let w = [[[[1.0; 3]; 3]], [[[0.0; 3]; 3]]];
    let b = [0.5, 0.0];
    let (y, _gx, gw, gb) = conv_nchw_pad_vjp(&x, &w, &b, &[[[[1.0; 3]; 3]; 2]; 2]);
    assert_eq!(y[0][0][1][1], 45.5);
    assert_eq!(y[0][0][0][0], 12.5);
    assert_eq!(y[0][1], [[0.0; 3]; 3]);
    assert_eq!(gw[0][0][1][1], 45.0);
    // each image contributes 9 outputs per channel
    assert_eq!(gb, [18.0, 18.0]);
    let y32 = conv_nchw_pad(
        &[
            [[[1.0f32, 2.0, 3.0], [4.0, 5.0, 6.0], [7.0, 8.0, 9.0]]],
            [[[0.0; 3]; 3]],
        ],
        &[[[[1.0; 3]; 3]], [[[0.0; 3]; 3]]],
        &[0.5, 0.0],
    );
    assert_eq!(y32[0][0][1][1], 45.5f32);
}

#[test]
fn pooling() {
    let x: [[[f64; 4]; 4]; 2] = rnd(9, -1.0, 1.0);
    let y = pool_k(
        true,
        Pool2dGeom::new(2, 4, 4, 2, 2, 0).unwrap(),
        1,
        &x.vals(),
    );
    check_fn!(maxp, maxp_vjp, [x => gx], expected = y, tol = 1e-7);
    let y = pool_k(
        false,
        Pool2dGeom::new(2, 4, 4, 2, 2, 0).unwrap(),
        1,
        &x.vals(),
    );
    check_fn!(avgp, avgp_vjp, [x => gx], expected = y, tol = 1e-7);

    let xn: [[[[f64; 5]; 5]; 2]; 2] = rnd(10, -1.0, 1.0);
    let g = Pool2dGeom::new(2, 5, 5, 3, 2, 1).unwrap();
    let y = pool_k(true, g, 2, &xn.vals());
    check_fn!(maxp_kw, maxp_kw_vjp, [xn => gx], expected = y, tol = 1e-7);
    let y = pool_k(false, g, 2, &xn.vals());
    check_fn!(avgp_kw, avgp_kw_vjp, [xn => gx], expected = y, tol = 1e-7);

    let o: [[[f64; 4]; 4]; 1] = rnd(11, -1.0, 1.0);
    let y = pool_k(
        true,
        Pool2dGeom::new(1, 4, 4, 2, 1, 0).unwrap(),
        1,
        &o.vals(),
    );
    let g = check_fn!(maxp_overlap, maxp_overlap_vjp, [o => go], expected = y, tol = 1e-7);
    // overlapping windows: the gradient of every output lands on its window's maximum
    let u = ops_macro_util::random_like(&[0.0f64; 9], 0x5eed);
    let ov = o.vals();
    let mut want = vec![0.0; 16];
    for i in 0..3 {
        for j in 0..3 {
            let cells = [
                i * 4 + j,
                i * 4 + j + 1,
                (i + 1) * 4 + j,
                (i + 1) * 4 + j + 1,
            ];
            let m = cells
                .into_iter()
                .max_by(|&a, &b| ov[a].total_cmp(&ov[b]))
                .unwrap();
            want[m] += u[i * 3 + j];
        }
    }
    assert_close!(g[0], want, 1e-15);

    let c: [[[f64; 3]; 3]; 2] = rnd(12, -1.0, 1.0);
    check_fn!(gap, gap_vjp, [c => gc], expected = gap_k(&c.vals(), 1, 2, 9), tol = 1e-7);
    let c4: [[[[f64; 3]; 3]; 2]; 2] = rnd(13, -1.0, 1.0);
    check_fn!(gap4, gap4_vjp, [c4 => gc], expected = gap_k(&c4.vals(), 2, 2, 9), tol = 1e-7);

    // hand-derived: max and mean of the 2x2 blocks of 0..16
    let mut ramp = [[[0.0f32; 4]; 4]; 2];
    for (i, v) in ramp
        .as_flattened_mut()
        .as_flattened_mut()
        .iter_mut()
        .enumerate()
    {
        *v = i as f32;
    }
    assert_eq!(maxp(&ramp)[0], [[5.0, 7.0], [13.0, 15.0]]);
    assert_eq!(avgp(&ramp)[0], [[2.5, 4.5], [10.5, 12.5]]);
    assert_eq!(gap(&[[[1.0f32; 3]; 3], [[2.0; 3]; 3]]), [1.0, 2.0]);
}

#[test]
fn values_used_twice() {
    let x: [[[f64; 4]; 4]; 2] = rnd(14, -1.0, 1.0);
    let w: [[[[f64; 3]; 3]; 2]; 2] = rnd(15, -0.5, 0.5);
    let (xv, wv) = (x.vals(), w.vals());
    let h = conv_k(geom(2, 4, 2, 3, 1, 1), 1, &xv, &wv, None);
    let mut th = vec![0.0; h.len()];
    ops::tanh(&h, &mut th).unwrap();
    let y = conv_k(geom(2, 4, 2, 3, 1, 0), 1, &th, &wv, None);
    check_fn!(conv_twice, conv_twice_vjp, [x => gx, w => gw], expected = y, tol = 1e-7);

    let s: [[[f64; 3]; 3]; 1] = rnd(16, -1.0, 1.0);
    let sv = s.vals();
    let y = conv_k(geom(1, 3, 1, 3, 1, 0), 1, &sv, &sv, None);
    assert_close!(y[0], sv.iter().map(|v| v * v).sum::<f64>(), 1e-15);
    let g = check_fn!(conv_self, conv_self_vjp, [s => gs], expected = y, tol = 1e-7);
    // d Σx² / dx = 2x
    let u = ops_macro_util::random_like(&0.0f64, 0x5eed);
    assert_close!(
        g[0],
        sv.iter().map(|v| 2.0 * v * u).collect::<Vec<_>>(),
        1e-12
    );

    let p: [[[f64; 4]; 4]; 1] = rnd(17, -1.0, 1.0);
    let g2 = Pool2dGeom::new(1, 4, 4, 2, 2, 0).unwrap();
    let (mx, av) = (
        pool_k(true, g2, 1, &p.vals()),
        pool_k(false, g2, 1, &p.vals()),
    );
    let y: Vec<f64> = (0..4).map(|i| mx[i] + av[i] * mx[i]).collect();
    check_fn!(pools_of_one, pools_of_one_vjp, [p => gp], expected = y, tol = 1e-7);
}

model! {
    /// A convolution and pooling on a batch.
    struct Convs {
        w: Param([3, 2, 3, 3]),
        b: Param([3]),
    }

    fn forward(x: [B, 2, 5, 5]) -> [B, 3, 3, 3] { conv2d(x, w, b, stride = 2, padding = 1) }

    fn pooled(x: [B, 2, 5, 5]) -> [B, 3] {
        let h = forward(x);
        global_avg_pool2d(max_pool2d(h, stride = 1))
            + global_avg_pool2d(avg_pool2d(h, kernel = 3, padding = 1))
    }

    fn loss(x: [B, 2, 5, 5], u: [B, 3]) -> [] { sum(pooled(x) * u) }
}

#[test]
fn batched_convolution_and_pooling_in_the_struct_form() {
    let mut model = Convs::<f64>::new(&mut StdRng::seed_from_u64(1));
    let x: Vec<[[[f64; 5]; 5]; 2]> = (0..3).map(|i| rnd(20 + i, -1.0, 1.0)).collect();
    let u: Vec<[f64; 3]> = (0..3).map(|i| rnd(30 + i, -1.0, 1.0)).collect();
    let xf: Vec<f64> = x.iter().flat_map(|r| r.vals()).collect();
    let h = conv_k(
        geom(2, 5, 3, 3, 2, 1),
        3,
        &xf,
        model.w.value(),
        Some(model.b.value()),
    );
    let out: Vec<f64> = model
        .forward(&x)
        .unwrap()
        .iter()
        .flat_map(|r| r.vals())
        .collect();
    assert_close!(out, h, 1e-12);
    let mp = pool_k(true, Pool2dGeom::new(3, 3, 3, 2, 1, 0).unwrap(), 3, &h);
    let ap = pool_k(false, Pool2dGeom::new(3, 3, 3, 3, 3, 1).unwrap(), 3, &h);
    let (g1, g2) = (gap_k(&mp, 3, 3, 4), gap_k(&ap, 3, 3, 1));
    let pooled: Vec<f64> = g1.iter().zip(&g2).map(|(a, b)| a + b).collect();
    assert_close!(model.pooled(&x).unwrap().as_flattened(), pooled, 1e-12);

    let base = model.clone();
    let loss = model.loss_backward(&x, &u).unwrap();
    assert_close!(loss, ops_macro_util::dotv(&pooled, u.as_flattened()), 1e-12);
    let names = check_param_grads(&base, &model, |m| m.loss(&x, &u).unwrap(), 1e-6, &[]);
    assert_eq!(names, ["w", "b"]);

    let mut m32 = Convs::<f32>::new(&mut StdRng::seed_from_u64(2));
    ops_macro_util::copy_to_f32(&base, &mut m32);
    let x32: Vec<_> = x
        .iter()
        .map(|r| r.map(|c| c.map(|row| row.map(|v| v as f32))))
        .collect();
    let u32: Vec<[f32; 3]> = u.iter().map(|r| r.map(|v| v as f32)).collect();
    assert_close!(m32.pooled(&x32).unwrap().as_flattened(), pooled, 1e-5);
    m32.loss_backward(&x32, &u32).unwrap();
    ops_macro_util::assert_grads_close(&model, &m32, 1e-4);
}
