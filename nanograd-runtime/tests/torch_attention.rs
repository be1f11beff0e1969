//! Attention kernels and causal_mask against PyTorch (fixtures: tests/fixtures/gen_attention.py).

mod common;

use nanograd_runtime::assert_close;
use nanograd_runtime::ops;

fn flag(c: &common::Case, name: &str) -> bool {
    c.args
        .get(name)
        .and_then(|v| v.as_bool())
        .unwrap_or_else(|| panic!("fixture has no boolean arg `{name}`"))
}

/// `F.scaled_dot_product_attention` on `[*batch, t, d]`: every leading dimension is a group.
fn check_sdpa(name: &str) {
    let c = common::case("attention", name);
    let (q, k, v) = (c.input("q"), c.input("k"), c.input("v"));
    let r = q.shape.len();
    let (tq, d, tk, dv) = (
        q.shape[r - 2],
        q.shape[r - 1],
        k.shape[r - 2],
        v.shape[r - 1],
    );
    let groups = q.shape[..r - 2].iter().product();
    let causal = flag(&c, "is_causal");
    let mut out = vec![f64::NAN; groups * tq * dv];
    let mut lse = vec![f64::NAN; groups * tq];
    let mut scratch = vec![f64::NAN; ops::attention_scratch_len(tq, tk, d, dv)];
    ops::attention(
        &q.data,
        &k.data,
        &v.data,
        groups,
        tq,
        tk,
        d,
        dv,
        causal,
        &mut out,
        &mut lse,
        &mut scratch,
    )
    .unwrap();
    assert_close!(out, c.output.data, 1e-12);
    assert_close!(lse, c.extra("lse").data, 1e-12);
    // the gradients accumulate: start from 1 and subtract it again
    let mut dq = vec![1.0; q.data.len()];
    let mut dk = vec![1.0; k.data.len()];
    let mut dvg = vec![1.0; v.data.len()];
    ops::attention_backward(
        &q.data,
        &k.data,
        &v.data,
        &out,
        &lse,
        &c.upstream.data,
        groups,
        tq,
        tk,
        d,
        dv,
        causal,
        Some(&mut dq),
        Some(&mut dk),
        Some(&mut dvg),
        &mut scratch,
    )
    .unwrap();
    let minus_one = |g: Vec<f64>| g.into_iter().map(|x| x - 1.0).collect::<Vec<_>>();
    assert_close!(minus_one(dq), c.grad("q").data, 1e-12);
    assert_close!(minus_one(dk), c.grad("k").data, 1e-12);
    assert_close!(minus_one(dvg), c.grad("v").data, 1e-12);
}

#[test]
fn sdpa_matches_torch() {
    check_sdpa("sdpa");
    check_sdpa("sdpa_causal");
}

#[test]
fn sdpa_tq_ne_tk_matches_torch() {
    check_sdpa("sdpa_tq_lt_tk");
    check_sdpa("sdpa_tq_lt_tk_causal");
    check_sdpa("sdpa_tq_gt_tk_causal");
    check_sdpa("sdpa_single");
}

#[test]
fn sdpa_f32_matches_torch() {
    let c = common::case("attention", "sdpa_causal");
    let (q, k, v) = (c.input("q"), c.input("k"), c.input("v"));
    let (groups, tq, d, tk, dv) = (6, 4, 5, 4, 3);
    let (qf, kf, vf) = (q.to::<f32>(), k.to::<f32>(), v.to::<f32>());
    let mut out = vec![0.0f32; groups * tq * dv];
    let mut lse = vec![0.0f32; groups * tq];
    let mut scratch = vec![0.0f32; ops::attention_scratch_len(tq, tk, d, dv)];
    ops::attention(
        &qf,
        &kf,
        &vf,
        groups,
        tq,
        tk,
        d,
        dv,
        true,
        &mut out,
        &mut lse,
        &mut scratch,
    )
    .unwrap();
    assert_close!(out, c.output.data, 1e-5);
    let mut dq = vec![0.0f32; qf.len()];
    ops::attention_backward(
        &qf,
        &kf,
        &vf,
        &out,
        &lse,
        &c.upstream.to::<f32>(),
        groups,
        tq,
        tk,
        d,
        dv,
        true,
        Some(&mut dq),
        None,
        None,
        &mut scratch,
    )
    .unwrap();
    assert_close!(dq, c.grad("q").data, 1e-5);
}

/// The core of `nn.MultiheadAttention` on its packed in-projection; applying the recorded
/// out_proj to our output must give the module's own output.
fn check_mha(name: &str) {
    let c = common::case("attention", name);
    let qkv = c.input("qkv");
    let (n, t, c3) = (qkv.shape[0], qkv.shape[1], qkv.shape[2]);
    let ch = c3 / 3;
    let heads = c.arg("heads") as usize;
    let causal = flag(&c, "causal");
    let mut out = vec![f64::NAN; n * t * ch];
    let mut lse = vec![f64::NAN; n * heads * t];
    let mut scratch = vec![f64::NAN; ops::mha_attention_scratch_len(t, ch, heads)];
    ops::mha_attention(
        &qkv.data,
        n,
        t,
        ch,
        heads,
        causal,
        &mut out,
        &mut lse,
        &mut scratch,
    )
    .unwrap();
    assert_close!(out, c.output.data, 1e-12);
    assert_close!(lse, c.extra("lse").data, 1e-12);
    // out_proj: y = out·Wᵀ + b
    let (w, b) = (
        &c.extra("out_proj_weight").data,
        &c.extra("out_proj_bias").data,
    );
    let projected: Vec<f64> = out
        .chunks_exact(ch)
        .flat_map(|row| {
            (0..ch).map(move |o| {
                b[o] + row
                    .iter()
                    .zip(&w[o * ch..(o + 1) * ch])
                    .map(|(x, y)| x * y)
                    .sum::<f64>()
            })
        })
        .collect();
    assert_close!(projected, c.extra("module_out").data, 1e-12);
    let mut dqkv = vec![0.0; qkv.data.len()];
    ops::mha_attention_backward(
        &qkv.data,
        &out,
        &lse,
        &c.upstream.data,
        n,
        t,
        ch,
        heads,
        causal,
        &mut dqkv,
        &mut scratch,
    )
    .unwrap();
    assert_close!(dqkv, c.grad("qkv").data, 1e-12);
}

#[test]
fn mha_attention_matches_torch() {
    check_mha("mha");
    check_mha("mha_causal");
    check_mha("mha_one_head_causal");
}

#[test]
fn causal_mask_then_softmax_matches_torch() {
    let c = common::case("attention", "causal_mask_softmax");
    let x = c.input("x");
    let t = x.shape[x.shape.len() - 1];
    let mut masked = vec![0.0; x.data.len()];
    ops::causal_mask(&x.data, t, &mut masked).unwrap();
    // the mask's own output: -inf exactly where PyTorch's triu mask hides, x elsewhere
    for ((&y, &xi), &hidden) in masked.iter().zip(&x.data).zip(&c.extra("masked").data) {
        if hidden == 1.0 {
            assert_eq!(y, f64::NEG_INFINITY);
        } else {
            assert_eq!(y, xi);
        }
    }
    let mut y = vec![0.0; x.data.len()];
    ops::softmax(&masked, t, &mut y).unwrap();
    assert_close!(y, c.output.data, 1e-14);
    let mut dmasked = vec![0.0; x.data.len()];
    ops::softmax_backward(&y, &c.upstream.data, t, &mut dmasked).unwrap();
    let mut dx = vec![0.0; x.data.len()];
    ops::causal_mask_backward(&dmasked, t, &mut dx).unwrap();
    assert_close!(dx, c.grad("x").data, 1e-14);
}
