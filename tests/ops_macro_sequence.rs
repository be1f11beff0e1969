//! The transformer language through `model!`: transpose, concat, batched matmul, causal_mask
//! and attention in the function form (values against loops written here, every input's
//! gradient against central differences, f32 against f64), and `u32` inputs, `Embedding`,
//! `LayerNorm`, `MultiHeadAttention` and layer arrays in the struct form (every parameter's
//! gradient against central differences, the fused layer against the same network written
//! op by op).

mod ops_macro_util;

use nanograd::assert_close;
use nanograd::prelude::*;
use nanograd::rand::{rngs::StdRng, SeedableRng};
use ops_macro_util::{
    check_param_grads, copy_to_f32, param, params, randomise_params, rnd, set_param, Vals,
};

model! {
    fn tr12(x: [2, 3, 4]) -> [2, 4, 3] { transpose(x, 1, 2) }
    fn tr_neg(x: [2, 3, 4]) -> [4, 3, 2] { transpose(x, 0, -1) }
    fn cat_last(a: [2, 3], b: [2, 2]) -> [2, 5] { concat(a, b, dim = 1) }
    fn cat_first(a: [2, 3], b: [1, 3]) -> [3, 3] { concat(a, b, dim = 0) }
    fn bmm(a: [2, 3, 4], b: [2, 4, 5]) -> [2, 3, 5] { matmul(a, b) }
    fn masked_softmax(s: [2, 3, 3]) -> [2, 3, 3] { softmax(causal_mask(s)) }
    fn att(q: [2, 3, 4], k: [2, 5, 4], v: [2, 5, 2]) -> [2, 3, 2] { attention(q, k, v) }
    fn att_causal(q: [2, 3, 4], k: [2, 5, 4], v: [2, 5, 2]) -> [2, 3, 2] {
        attention(q, k, v, causal = true)
    }
    // the same attention, op by op (1/√4 = 0.5)
    fn att_by_hand(q: [2, 3, 4], k: [2, 3, 4], v: [2, 3, 2]) -> [2, 3, 2] {
        matmul(softmax(causal_mask(scale(matmul(q, transpose(k, 1, 2)), 0.5))), v)
    }
    fn att_fused(q: [2, 3, 4], k: [2, 3, 4], v: [2, 3, 2]) -> [2, 3, 2] {
        attention(q, k, v, causal = true)
    }
    fn self_att(x: [3, 4]) -> [3, 4] { attention(x, x, x) }
}

/// `[d0, d1, d2]` row-major with dimensions `a` and `b` swapped.
fn transpose3(x: &[f64], d: [usize; 3], a: usize, b: usize) -> Vec<f64> {
    let mut od = d;
    od.swap(a, b);
    let mut y = vec![0.0; x.len()];
    for i in 0..d[0] {
        for j in 0..d[1] {
            for k in 0..d[2] {
                let mut idx = [i, j, k];
                idx.swap(a, b);
                y[(idx[0] * od[1] + idx[1]) * od[2] + idx[2]] = x[(i * d[1] + j) * d[2] + k];
            }
        }
    }
    y
}

/// Attention of each group with loops: `softmax(q kᵀ / √d (masked)) v`.
#[allow(clippy::too_many_arguments)]
fn attention_loops(
    q: &[f64],
    k: &[f64],
    v: &[f64],
    groups: usize,
    tq: usize,
    tk: usize,
    d: usize,
    dv: usize,
    causal: bool,
) -> Vec<f64> {
    let mut out = vec![0.0; groups * tq * dv];
    for g in 0..groups {
        for i in 0..tq {
            let mut s: Vec<f64> = (0..tk)
                .map(|j| {
                    let dotp: f64 = (0..d)
                        .map(|c| q[(g * tq + i) * d + c] * k[(g * tk + j) * d + c])
                        .sum();
                    if causal && j > i {
                        f64::NEG_INFINITY
                    } else {
                        dotp / (d as f64).sqrt()
                    }
                })
                .collect();
            let m = s.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            let z: f64 = s.iter().map(|x| (x - m).exp()).sum();
            for x in &mut s {
                *x = (*x - m).exp() / z;
            }
            for c in 0..dv {
                out[(g * tq + i) * dv + c] = (0..tk).map(|j| s[j] * v[(g * tk + j) * dv + c]).sum();
            }
        }
    }
    out
}

#[test]
fn transpose_and_concat() {
    let x: [[[f64; 4]; 3]; 2] = rnd(1, -1.0, 1.0);
    check_fn!(tr12, tr12_vjp, [x => gx], expected = transpose3(&x.vals(), [2, 3, 4], 1, 2), tol = 1e-7);
    check_fn!(tr_neg, tr_neg_vjp, [x => gx], expected = transpose3(&x.vals(), [2, 3, 4], 0, 2), tol = 1e-7);
    // by hand: rows of a then b
    let a = [[1.0f64, 2.0, 3.0], [4.0, 5.0, 6.0]];
    let b = [[7.0f64, 8.0], [9.0, 10.0]];
    assert_eq!(
        cat_last(&a, &b),
        [[1.0, 2.0, 3.0, 7.0, 8.0], [4.0, 5.0, 6.0, 9.0, 10.0]]
    );
    let c = [[7.0f64, 8.0, 9.0]];
    assert_eq!(
        cat_first(&a, &c),
        [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0], [7.0, 8.0, 9.0]]
    );
    check_fn!(cat_last, cat_last_vjp, [a => ga, b => gb], expected = vec![1.0, 2.0, 3.0, 7.0, 8.0, 4.0, 5.0, 6.0, 9.0, 10.0], tol = 1e-7);
    // the gradient of a concat splits the upstream gradient back
    let u = [[0.1f64, 0.2, 0.3, 0.4, 0.5], [0.6, 0.7, 0.8, 0.9, 1.0]];
    let (_, ga, gb) = cat_last_vjp(&a, &b, &u);
    assert_eq!(ga, [[0.1, 0.2, 0.3], [0.6, 0.7, 0.8]]);
    assert_eq!(gb, [[0.4, 0.5], [0.9, 1.0]]);
}

#[test]
fn batched_matmul() {
    let a: [[[f64; 4]; 3]; 2] = rnd(2, -1.0, 1.0);
    let b: [[[f64; 5]; 4]; 2] = rnd(3, -1.0, 1.0);
    let mut want = Vec::new();
    for (ag, bg) in a.iter().zip(&b) {
        for row in ag {
            want.extend((0..5).map(|j| (0..4).map(|k| row[k] * bg[k][j]).sum::<f64>()));
        }
    }
    check_fn!(bmm, bmm_vjp, [a => ga, b => gb], expected = want, tol = 1e-7);
}

#[test]
fn causal_mask_under_softmax() {
    // row i of each [3, 3] block is a softmax over its first i + 1 entries
    let s: [[[f64; 3]; 3]; 2] = rnd(4, -1.0, 1.0);
    let mut want = Vec::new();
    for blk in &s {
        for (i, row) in blk.iter().enumerate() {
            let z: f64 = row[..=i].iter().map(|x| x.exp()).sum();
            want.extend((0..3).map(|j| if j <= i { row[j].exp() / z } else { 0.0 }));
        }
    }
    check_fn!(masked_softmax, masked_softmax_vjp, [s => gs], expected = want, tol = 1e-7);
    // the masked entries get no gradient
    let u = [[[1.0f64; 3]; 3]; 2];
    let (_, gs) = masked_softmax_vjp(&s, &u);
    for blk in &gs {
        assert_eq!([blk[0][1], blk[0][2], blk[1][2]], [0.0, 0.0, 0.0]);
    }
}

#[test]
fn attention_forward_and_gradients() {
    let q: [[[f64; 4]; 3]; 2] = rnd(5, -1.0, 1.0);
    let k: [[[f64; 4]; 5]; 2] = rnd(6, -1.0, 1.0);
    let v: [[[f64; 2]; 5]; 2] = rnd(7, -1.0, 1.0);
    let (qv, kv, vv) = (q.vals(), k.vals(), v.vals());
    check_fn!(att, att_vjp, [q => gq, k => gk, v => gv], expected = attention_loops(&qv, &kv, &vv, 2, 3, 5, 4, 2, false), tol = 1e-7);
    check_fn!(att_causal, att_causal_vjp, [q => gq, k => gk, v => gv], expected = attention_loops(&qv, &kv, &vv, 2, 3, 5, 4, 2, true), tol = 1e-7);
    let x: [[f64; 4]; 3] = rnd(8, -1.0, 1.0);
    let xv = x.vals();
    check_fn!(self_att, self_att_vjp, [x => gx], expected = attention_loops(&xv, &xv, &xv, 1, 3, 3, 4, 4, false), tol = 1e-7);
}

#[test]
fn fused_attention_equals_its_ops() {
    let q: [[[f64; 4]; 3]; 2] = rnd(9, -1.0, 1.0);
    let k: [[[f64; 4]; 3]; 2] = rnd(10, -1.0, 1.0);
    let v: [[[f64; 2]; 3]; 2] = rnd(11, -1.0, 1.0);
    let u: [[[f64; 2]; 3]; 2] = rnd(12, -1.0, 1.0);
    let (y1, gq1, gk1, gv1) = att_by_hand_vjp(&q, &k, &v, &u);
    let (y2, gq2, gk2, gv2) = att_fused_vjp(&q, &k, &v, &u);
    assert_close!(y2.vals(), y1.vals(), 1e-12);
    assert_close!(gq2.vals(), gq1.vals(), 1e-12);
    assert_close!(gk2.vals(), gk1.vals(), 1e-12);
    assert_close!(gv2.vals(), gv1.vals(), 1e-12);
}

model! {
    const T: usize = 3;
    const C: usize = 4;
    const V: usize = 7;
    /// A one-block language model small enough for central differences.
    pub struct TinyLm {
        wte: Embedding(V -> C),
        wpe: Param([T, C]),
        ln: LayerNorm(C),
        attn: MultiHeadAttention(C, heads = 2, causal = true),
        head: Dense(C -> V),
    }
    fn forward(idx: u32[B, T]) -> [B, T, V] {
        let x = wte(idx) + wpe;
        let x = x + attn(ln(x));
        head(x)
    }
    fn loss(idx: u32[B, T], targets: u32[B, T]) -> [] {
        softmax_cross_entropy(forward(idx), targets)
    }
}

model! {
    /// `TinyLm`'s attention written op by op, with the layer's parameters as plain ones.
    pub struct ByHand {
        wq: Param([4, 4]),
        bq: Param([4]),
        wk: Param([4, 4]),
        bk: Param([4]),
        wv: Param([4, 4]),
        bv: Param([4]),
        out_w: Param([4, 4]),
        out_b: Param([4]),
    }
    fn forward(x: [B, 3, 4]) -> [B, 3, 4] {
        let q = transpose(reshape(dense(x, wq, bq), [B, 3, 2, 2]), 1, 2);
        let k = transpose(reshape(dense(x, wk, bk), [B, 3, 2, 2]), 1, 2);
        let v = transpose(reshape(dense(x, wv, bv), [B, 3, 2, 2]), 1, 2);
        let heads: [B, 2, 3, 2] = attention(q, k, v, causal = true);
        dense(reshape(transpose(heads, 1, 2), [B, 3, 4]), out_w, out_b)
    }
}

model! {
    /// The layer alone, to compare with `ByHand`.
    pub struct Fused {
        attn: MultiHeadAttention(4, heads = 2, causal = true),
    }
    fn forward(x: [B, 3, 4]) -> [B, 3, 4] {
        attn(x)
    }
}

fn ids(seed: u64, rows: usize, vocab: u32) -> Vec<[u32; 3]> {
    let r = nanograd::testing::random_vec::<f64>(seed, rows * 3, 0.0, f64::from(vocab));
    r.chunks(3)
        .map(|c| [c[0] as u32, c[1] as u32, c[2] as u32])
        .collect()
}

#[test]
fn language_model_gradients() {
    let mut base = TinyLm::<f64>::new(&mut StdRng::seed_from_u64(1));
    randomise_params(&mut base, 20, -0.8, 0.8);
    let names: Vec<String> = params(&base).into_iter().map(|(n, _, _)| n).collect();
    assert_eq!(
        names,
        [
            "wte.weight",
            "wpe",
            "ln.weight",
            "ln.bias",
            "attn.in_proj_weight",
            "attn.in_proj_bias",
            "attn.out_proj.weight",
            "attn.out_proj.bias",
            "head.weight",
            "head.bias"
        ]
    );
    let idx = ids(30, 2, 7);
    let targets = ids(31, 2, 7);
    let mut model = base.clone();
    model.zero_grad();
    let loss = model.loss_backward(&idx, &targets).unwrap();
    assert_close!(loss, base.loss(&idx, &targets).unwrap(), 1e-12);
    check_param_grads(
        &base,
        &model,
        |m| m.loss(&idx, &targets).unwrap(),
        1e-6,
        &[],
    );

    // f32 follows f64
    let mut m32 = TinyLm::<f32>::new(&mut StdRng::seed_from_u64(2));
    copy_to_f32(&base, &mut m32);
    let l32 = m32.loss_backward(&idx, &targets).unwrap();
    assert_close!(f64::from(l32), loss, 1e-5);
    ops_macro_util::assert_grads_close(&model, &m32, 1e-4);
    let logits = m32.forward(&idx).unwrap();
    assert_eq!(logits.len(), 2);
}

#[test]
fn out_of_range_ids_are_errors() {
    let model = TinyLm::<f32>::new(&mut StdRng::seed_from_u64(1));
    let err = model
        .forward(&[[1, 2, 3], [4, 9, 0]])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains('9') && err.contains('4') && err.contains('7'),
        "{err}"
    );
    let err = model
        .loss(&[[1, 2, 3]], &[[0, 1, 7]])
        .unwrap_err()
        .to_string();
    assert!(err.contains('7'), "{err}");
}

#[test]
fn multi_head_attention_equals_its_ops() {
    let mut fused = Fused::<f64>::new(&mut StdRng::seed_from_u64(3));
    randomise_params(&mut fused, 40, -0.9, 0.9);
    let mut by_hand = ByHand::<f64>::new(&mut StdRng::seed_from_u64(4));
    // in_proj_weight stacks the q, k and v projections: rows 0..4, 4..8, 8..12
    let (w, b) = (
        param(&fused, "attn.in_proj_weight"),
        param(&fused, "attn.in_proj_bias"),
    );
    for (i, (pw, pb)) in [("wq", "bq"), ("wk", "bk"), ("wv", "bv")]
        .iter()
        .enumerate()
    {
        set_param(&mut by_hand, pw, &w[i * 16..(i + 1) * 16]);
        set_param(&mut by_hand, pb, &b[i * 4..(i + 1) * 4]);
    }
    set_param(
        &mut by_hand,
        "out_w",
        &param(&fused, "attn.out_proj.weight"),
    );
    set_param(&mut by_hand, "out_b", &param(&fused, "attn.out_proj.bias"));
    let x: Vec<[[f64; 4]; 3]> = (0..2).map(|i| rnd(50 + i, -1.0, 1.0)).collect();
    let a = fused.forward(&x).unwrap();
    let b = by_hand.forward(&x).unwrap();
    assert_close!(a.vals(), b.vals(), 1e-12);
}

model! {
    /// A residual block that keeps its shape, for layer arrays.
    pub struct Res {
        ln: LayerNorm(4),
        fc: Dense(4 -> 4),
    }
    fn forward(x: [B, 2, 4]) -> [B, 2, 4] {
        x + tanh(fc(ln(x)))
    }
}

model! {
    pub struct Stack {
        h: [Res; 3],
        head: Dense(4 -> 1),
    }
    fn forward(x: [B, 2, 4]) -> [B, 2, 4] {
        h(x)
    }
    fn middle(x: [B, 2, 4]) -> [B, 2, 4] {
        h[1](x)
    }
    fn loss(x: [B, 2, 4], t: [B, 2, 1]) -> [] {
        mse_loss(head(h(x)), t)
    }
}

#[test]
fn layer_arrays_run_in_order() {
    let mut base = Stack::<f64>::new(&mut StdRng::seed_from_u64(5));
    randomise_params(&mut base, 60, -0.9, 0.9);
    let names: Vec<String> = params(&base).into_iter().map(|(n, _, _)| n).collect();
    assert_eq!(names[0], "h.0.ln.weight");
    assert_eq!(names[4], "h.1.ln.weight");
    assert_eq!(names[11], "h.2.fc.bias");
    assert_eq!(names.len(), 14);
    let x: Vec<[[f64; 4]; 2]> = (0..3).map(|i| rnd(70 + i, -1.0, 1.0)).collect();
    // the array runs h[0], h[1], h[2]; each element is a model of its own
    let mut want = x.clone();
    for blk in &base.h {
        want = blk.forward(&want).unwrap();
    }
    assert_close!(base.forward(&x).unwrap().vals(), want.vals(), 1e-12);
    assert_close!(
        base.middle(&x).unwrap().vals(),
        base.h[1].forward(&x).unwrap().vals(),
        1e-12
    );
    let t: Vec<[[f64; 1]; 2]> = (0..3).map(|i| rnd(80 + i, -1.0, 1.0)).collect();
    let mut model = base.clone();
    model.zero_grad();
    model.loss_backward(&x, &t).unwrap();
    check_param_grads(&base, &model, |m| m.loss(&x, &t).unwrap(), 1e-6, &[]);
}

// The README's self-attention with the heads split by hand, word for word.
mod readme {
    use nanograd::prelude::*;
    model! {
        const T: usize = 64;
        const C: usize = 128;
        const H: usize = 4;
        const D: usize = 32;
        pub struct SelfAttention {
            wq: Dense(C -> C),
            wk: Dense(C -> C),
            wv: Dense(C -> C),
            wo: Dense(C -> C),
        }
        fn forward(x: [B, T, C]) -> [B, T, C] {
            let q = transpose(reshape(wq(x), [B, T, H, D]), 1, 2);   // [B, H, T, D]
            let k = transpose(reshape(wk(x), [B, T, H, D]), 1, 2);
            let v = transpose(reshape(wv(x), [B, T, H, D]), 1, 2);
            let heads: [B, H, T, D] = attention(q, k, v, causal = true);
            wo(reshape(transpose(heads, 1, 2), [B, T, C]))
        }
    }
}
use readme::SelfAttention;

model! {
    pub struct Mha128 {
        attn: MultiHeadAttention(128, heads = 4, causal = true),
    }
    fn forward(x: [B, 64, 128]) -> [B, 64, 128] {
        attn(x)
    }
}

#[test]
fn readme_self_attention_equals_the_layer() {
    let by_hand = SelfAttention::<f64>::new(&mut StdRng::seed_from_u64(6));
    let mut layer = Mha128::<f64>::new(&mut StdRng::seed_from_u64(7));
    let mut w = Vec::new();
    let mut b = Vec::new();
    for name in ["wq", "wk", "wv"] {
        w.extend(param(&by_hand, &format!("{name}.weight")));
        b.extend(param(&by_hand, &format!("{name}.bias")));
    }
    set_param(&mut layer, "attn.in_proj_weight", &w);
    set_param(&mut layer, "attn.in_proj_bias", &b);
    set_param(
        &mut layer,
        "attn.out_proj.weight",
        &param(&by_hand, "wo.weight"),
    );
    set_param(
        &mut layer,
        "attn.out_proj.bias",
        &param(&by_hand, "wo.bias"),
    );
    let x: Vec<[[f64; 128]; 64]> = (0..2)
        .map(|i| {
            let v = nanograd::testing::random_vec::<f64>(90 + i, 64 * 128, -1.0, 1.0);
            std::array::from_fn(|t| std::array::from_fn(|c| v[t * 128 + c]))
        })
        .collect();
    assert_close!(
        by_hand.forward(&x).unwrap().vals(),
        layer.forward(&x).unwrap().vals(),
        1e-12
    );
}
