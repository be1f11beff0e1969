//! Normalisation ops and dropout against PyTorch (fixtures: tests/fixtures/gen_norm.py).

mod common;

use nanograd_runtime::assert_close;
use nanograd_runtime::ops;

/// `[n, c, hw]` of a batch-norm case's `[n, c, h, w]` input.
fn nchw(c: &common::Case) -> (usize, usize, usize) {
    let s = &c.input("x").shape;
    (s[0], s[1], s[2] * s[3])
}

fn check_batch_norm2d_train(name: &str) {
    let c = common::case("norm", name);
    let (n, ch, hw) = nchw(&c);
    let (x, w, b) = (
        &c.input("x").data,
        &c.input("weight").data,
        &c.input("bias").data,
    );
    let (eps, momentum) = (c.arg("eps"), c.arg("momentum"));
    let mut rm = c.extra("running_mean_before").data.clone();
    let mut rv = c.extra("running_var_before").data.clone();
    let (mut sm, mut si) = (vec![0.0; ch], vec![0.0; ch]);
    let mut y = vec![0.0; x.len()];
    ops::batch_norm2d_train(
        x, n, ch, hw, w, b, eps, momentum, &mut rm, &mut rv, &mut sm, &mut si, &mut y,
    )
    .unwrap();
    assert_close!(y, c.output.data, 1e-12);
    assert_close!(rm, c.extra("running_mean").data, 1e-12);
    assert_close!(rv, c.extra("running_var").data, 1e-12);
    assert_close!(sm, c.extra("save_mean").data, 1e-12);
    assert_close!(si, c.extra("save_invstd").data, 1e-12);
    let (mut dx, mut dw, mut db) = (vec![0.0; x.len()], vec![0.0; ch], vec![0.0; ch]);
    ops::batch_norm2d_train_backward(
        x,
        n,
        ch,
        hw,
        w,
        &sm,
        &si,
        &c.upstream.data,
        Some(&mut dx),
        Some(&mut dw),
        Some(&mut db),
    )
    .unwrap();
    assert_close!(dx, c.grad("x").data, 1e-11);
    assert_close!(dw, c.grad("weight").data, 1e-11);
    assert_close!(db, c.grad("bias").data, 1e-12);
}

#[test]
fn batch_norm2d_train_matches_torch() {
    check_batch_norm2d_train("batch_norm2d_train");
    check_batch_norm2d_train("batch_norm2d_train_n4_momentum");
    check_batch_norm2d_train("batch_norm2d_train_single_image");
}

#[test]
fn batch_norm2d_train_f32_matches_torch() {
    let c = common::case("norm", "batch_norm2d_train");
    let (n, ch, hw) = nchw(&c);
    let (x, w, b) = (
        c.input("x").to::<f32>(),
        c.input("weight").to::<f32>(),
        c.input("bias").to::<f32>(),
    );
    let mut rm = c.extra("running_mean_before").to::<f32>();
    let mut rv = c.extra("running_var_before").to::<f32>();
    let (mut sm, mut si) = (vec![0.0f32; ch], vec![0.0f32; ch]);
    let mut y = vec![0.0f32; x.len()];
    ops::batch_norm2d_train(
        &x, n, ch, hw, &w, &b, 1e-5, 0.1, &mut rm, &mut rv, &mut sm, &mut si, &mut y,
    )
    .unwrap();
    assert_close!(y, c.output.data, 1e-5);
    assert_close!(rv, c.extra("running_var").data, 1e-5);
    let mut dx = vec![0.0f32; x.len()];
    let dy = c.upstream.to::<f32>();
    ops::batch_norm2d_train_backward(&x, n, ch, hw, &w, &sm, &si, &dy, Some(&mut dx), None, None)
        .unwrap();
    assert_close!(dx, c.grad("x").data, 1e-5);
}

#[test]
fn batch_norm2d_eval_matches_torch() {
    let c = common::case("norm", "batch_norm2d_eval");
    let (n, ch, hw) = nchw(&c);
    let (x, w, b) = (
        &c.input("x").data,
        &c.input("weight").data,
        &c.input("bias").data,
    );
    let (rm, rv) = (&c.extra("running_mean").data, &c.extra("running_var").data);
    let eps = c.arg("eps");
    let mut y = vec![0.0; x.len()];
    ops::batch_norm2d_eval(x, n, ch, hw, w, b, rm, rv, eps, &mut y).unwrap();
    assert_close!(y, c.output.data, 1e-12);
    let (mut dx, mut dw, mut db) = (vec![0.0; x.len()], vec![0.0; ch], vec![0.0; ch]);
    ops::batch_norm2d_eval_backward(
        x,
        n,
        ch,
        hw,
        w,
        rm,
        rv,
        eps,
        &c.upstream.data,
        Some(&mut dx),
        Some(&mut dw),
        Some(&mut db),
    )
    .unwrap();
    assert_close!(dx, c.grad("x").data, 1e-12);
    assert_close!(dw, c.grad("weight").data, 1e-12);
    assert_close!(db, c.grad("bias").data, 1e-12);
}

#[test]
fn rmsnorm_matches_torch() {
    for name in ["rmsnorm", "rmsnorm_large_eps"] {
        let c = common::case("norm", name);
        let (x, w) = (&c.input("x").data, &c.input("weight").data);
        let (cols, eps) = (w.len(), c.arg("eps"));
        let mut y = vec![0.0; x.len()];
        ops::rmsnorm(x, w, cols, eps, &mut y).unwrap();
        assert_close!(y, c.output.data, 1e-12);
        let (mut dx, mut dw) = (vec![0.0; x.len()], vec![0.0; cols]);
        ops::rmsnorm_backward(
            x,
            w,
            &c.upstream.data,
            cols,
            eps,
            Some(&mut dx),
            Some(&mut dw),
        )
        .unwrap();
        assert_close!(dx, c.grad("x").data, 1e-12);
        assert_close!(dw, c.grad("weight").data, 1e-12);
    }
}

#[test]
fn layer_norm_matches_torch() {
    let c = common::case("norm", "layer_norm");
    let (x, w, b) = (
        &c.input("x").data,
        &c.input("weight").data,
        &c.input("bias").data,
    );
    let (cols, eps) = (w.len(), c.arg("eps"));
    let mut y = vec![0.0; x.len()];
    ops::layer_norm(x, Some(w), Some(b), cols, eps, &mut y).unwrap();
    assert_close!(y, c.output.data, 1e-12);
    let (mut dx, mut dw, mut db) = (vec![0.0; x.len()], vec![0.0; cols], vec![0.0; cols]);
    ops::layer_norm_backward(
        x,
        Some(w),
        &c.upstream.data,
        cols,
        eps,
        Some(&mut dx),
        Some(&mut dw),
        Some(&mut db),
    )
    .unwrap();
    assert_close!(dx, c.grad("x").data, 1e-12);
    assert_close!(dw, c.grad("weight").data, 1e-12);
    assert_close!(db, c.grad("bias").data, 1e-12);
}

#[test]
fn layer_norm_without_affine_matches_torch() {
    let c = common::case("norm", "layer_norm_no_affine");
    let x = &c.input("x").data;
    let (cols, eps) = (c.input("x").shape[1], c.arg("eps"));
    let mut y = vec![0.0; x.len()];
    ops::layer_norm(x, None, None, cols, eps, &mut y).unwrap();
    assert_close!(y, c.output.data, 1e-12);
    let mut dx = vec![0.0; x.len()];
    ops::layer_norm_backward(
        x,
        None,
        &c.upstream.data,
        cols,
        eps,
        Some(&mut dx),
        None,
        None,
    )
    .unwrap();
    assert_close!(dx, c.grad("x").data, 1e-12);
}

#[test]
fn l2_normalize_matches_torch() {
    for name in ["l2_normalize", "l2_normalize_small_row"] {
        let c = common::case("norm", name);
        let x = &c.input("x").data;
        let (cols, eps) = (c.input("x").shape[1], c.arg("eps"));
        let mut y = vec![0.0; x.len()];
        ops::l2_normalize(x, cols, eps, &mut y).unwrap();
        assert_close!(y, c.output.data, 1e-12);
        let mut dx = vec![0.0; x.len()];
        ops::l2_normalize_backward(x, &y, &c.upstream.data, cols, eps, &mut dx).unwrap();
        assert_close!(dx, c.grad("x").data, 1e-12);
    }
}

#[test]
fn cosine_similarity_matches_torch() {
    for name in ["cosine_similarity", "cosine_similarity_zero_row"] {
        let c = common::case("norm", name);
        let (a, b) = (&c.input("a").data, &c.input("b").data);
        let cols = c.input("a").shape[1];
        let mut y = vec![0.0; a.len() / cols];
        ops::cosine_similarity(a, b, cols, &mut y).unwrap();
        assert_close!(y, c.output.data, 1e-12);
        let (mut da, mut db) = (vec![0.0; a.len()], vec![0.0; b.len()]);
        ops::cosine_similarity_backward(a, b, &c.upstream.data, cols, Some(&mut da), Some(&mut db))
            .unwrap();
        assert_close!(da, c.grad("a").data, 1e-12);
        assert_close!(db, c.grad("b").data, 1e-12);
    }
}

#[test]
fn dropout_with_torch_mask_matches_torch() {
    let c = common::case("norm", "dropout");
    let (x, mask) = (&c.input("x").data, &c.extra("mask").data);
    let p = c.arg("p");
    // torch's mask holds exactly the values ours draws: 0 or 1/(1 - p)
    let scale = 1.0 / (1.0 - p);
    assert!(mask.iter().all(|&m| m == 0.0 || m == scale));
    let mut ours = vec![0.0; mask.len()];
    let mut rng = <rand_chacha::ChaCha8Rng as rand::SeedableRng>::seed_from_u64(1);
    ops::dropout_mask(p, &mut rng, &mut ours).unwrap();
    assert!(ours.iter().all(|&m| m == 0.0 || m == scale));
    let mut y = vec![0.0; x.len()];
    ops::dropout_apply(x, mask, &mut y).unwrap();
    assert_close!(y, c.output.data, 1e-12);
    let mut dx = vec![0.0; x.len()];
    ops::dropout_backward(mask, &c.upstream.data, &mut dx).unwrap();
    assert_close!(dx, c.grad("x").data, 1e-12);
}
