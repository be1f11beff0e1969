//! Tests of [`super`]: hand-derived values, central differences in `f64`, the causal mask
//! against an explicit one, the packed heads against `attention` on gathered heads, `f32`
//! against `f64`, and the shape errors. PyTorch's values are in `tests/torch_attention.rs`.

use super::*;
use crate::assert_close;
use crate::testing::{assert_gradient, random_vec};

fn weighted(y: &[f64], w: &[f64]) -> f64 {
    y.iter().zip(w).map(|(a, b)| a * b).sum()
}

/// `attention` with freshly allocated outputs: `(out, lse)`.
#[allow(clippy::too_many_arguments)]
fn run<T: Float>(
    q: &[T],
    k: &[T],
    v: &[T],
    groups: usize,
    tq: usize,
    tk: usize,
    d: usize,
    dv: usize,
    causal: bool,
) -> (Vec<T>, Vec<T>) {
    let mut out = vec![T::zero(); groups * tq * dv];
    let mut lse = vec![T::zero(); groups * tq];
    let mut scratch = vec![T::zero(); attention_scratch_len(tq, tk, d, dv)];
    attention(
        q,
        k,
        v,
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
    (out, lse)
}

fn literal<T: Float>(tol: f64) {
    // tq = tk = 2, d = dv = 1 (scale 1): q = [1, 0], k = [ln 3, 0], v = [4, 8]
    // S = q kᵀ = [[ln 3, 0], [0, 0]]
    // row 0: e^S = [3, 1] -> P = [3/4, 1/4], out = 3 + 2 = 5, lse = ln 4
    // row 1: e^S = [1, 1] -> P = [1/2, 1/2], out = 2 + 4 = 6, lse = ln 2
    // causal: row 0 sees key 0 only -> P = [1, 0], out = 4, lse = ln 3; row 1 unchanged
    let c = |v: &[f64]| -> Vec<T> { v.iter().map(|&x| T::from_f64(x)).collect() };
    let l3 = 3.0f64.ln();
    let (q, k, v) = (c(&[1.0, 0.0]), c(&[l3, 0.0]), c(&[4.0, 8.0]));
    let (out, lse) = run(&q, &k, &v, 1, 2, 2, 1, 1, false);
    assert_close!(out, [5.0f64, 6.0], tol);
    assert_close!(lse, [4.0f64.ln(), 2.0f64.ln()], tol);
    let (out_c, lse_c) = run(&q, &k, &v, 1, 2, 2, 1, 1, true);
    assert_close!(out_c, [4.0f64, 6.0], tol);
    assert_close!(lse_c, [l3, 2.0f64.ln()], tol);

    // backward with dout = [1, 1], every gradient starting at 1 (it must accumulate):
    // dv = Pᵀ dout = column sums of P = [3/4 + 1/2, 1/4 + 1/2] = [5/4, 3/4]
    // dP = dout vᵀ = [[4, 8], [4, 8]], D = dout∘out = [5, 6]
    // dS row 0 = [3/4 (4 - 5), 1/4 (8 - 5)] = [-3/4, 3/4]; row 1 = [1/2 (-2), 1/2 (2)] = [-1, 1]
    // dq = dS k = [-3/4 ln 3, -ln 3];  dk = dSᵀ q = [-3/4, 3/4] (q_1 = 0)
    let dout = c(&[1.0, 1.0]);
    let mut scratch = vec![T::zero(); attention_scratch_len(2, 2, 1, 1)];
    let (mut dq, mut dk, mut dvg) = (c(&[1.0; 2]), c(&[1.0; 2]), c(&[1.0; 2]));
    attention_backward(
        &q,
        &k,
        &v,
        &out,
        &lse,
        &dout,
        1,
        2,
        2,
        1,
        1,
        false,
        Some(&mut dq),
        Some(&mut dk),
        Some(&mut dvg),
        &mut scratch,
    )
    .unwrap();
    assert_close!(dvg, [2.25f64, 1.75], tol);
    assert_close!(dq, [1.0 - 0.75 * l3, 1.0 - l3], tol);
    assert_close!(dk, [0.25f64, 1.75], tol);
    // causal: P = [[1, 0], [1/2, 1/2]]: dv = [1 + 1/2, 1/2];
    // dS row 0 = [1 (4 - 4), 0] = 0, row 1 = [-1, 1] as before:
    // dq = [0, -ln 3], dk = dSᵀ q = 0 (row 0 of dS is 0 and q_1 = 0)
    let (mut dq, mut dk, mut dvg) = (c(&[1.0; 2]), c(&[1.0; 2]), c(&[1.0; 2]));
    attention_backward(
        &q,
        &k,
        &v,
        &out_c,
        &lse_c,
        &dout,
        1,
        2,
        2,
        1,
        1,
        true,
        Some(&mut dq),
        Some(&mut dk),
        Some(&mut dvg),
        &mut scratch,
    )
    .unwrap();
    assert_close!(dvg, [2.5f64, 1.5], tol);
    assert_close!(dq, [1.0, 1.0 - l3], tol);
    assert_close!(dk, [1.0f64, 1.0], tol);

    // the scale is 1/√d: d = 4, q = [1, 1, 1, 1], k = [[ln 3 / 2; 4], [0; 4]]:
    // q·k₀ = 2 ln 3, scaled by 1/2 -> S = [ln 3, 0], P = [3/4, 1/4], out = 5, lse = ln 4
    let q4 = c(&[1.0; 4]);
    let k4 = c(&[l3 / 2.0, l3 / 2.0, l3 / 2.0, l3 / 2.0, 0.0, 0.0, 0.0, 0.0]);
    let (out4, lse4) = run(&q4, &k4, &v, 1, 1, 2, 4, 1, false);
    assert_close!(out4, [5.0f64], tol);
    assert_close!(lse4, [4.0f64.ln()], tol);
}

#[test]
fn literal_f64() {
    literal::<f64>(1e-14);
}

#[test]
fn literal_f32() {
    literal::<f32>(1e-6);
}

#[test]
fn exp_matches_the_library() {
    // relative error against std's exp over the range the kernels use (and a bit above 0)
    let mut worst = (0.0f64, 0.0f32);
    for i in 0..=200_000 {
        let x = -700.0 + 701.0 * f64::from(i) / 200_000.0;
        let e = x.exp();
        worst.0 = worst.0.max((exp(x) - e).abs() / e);
        let xf = x as f32;
        if xf > -87.0 {
            let ef = xf.exp();
            worst.1 = worst.1.max((exp(xf) - ef).abs() / ef);
        }
    }
    assert!(
        worst.0 < 4.0 * f64::EPSILON,
        "f64 relative error {}",
        worst.0
    );
    assert!(
        worst.1 < 2.0 * f32::EPSILON,
        "f32 relative error {}",
        worst.1
    );
    assert_eq!(exp(0.0f64), 1.0);
    assert_eq!(exp(0.0f32), 1.0);
    assert!(exp(-1000.0f64) < 1e-307);
    assert!(exp(f64::NAN).is_nan());
    assert!(exp(f32::NAN).is_nan());
}

#[test]
fn large_scores_do_not_overflow() {
    // d = 1, q = [1000], k = [0, 1000 - ln 3 ... ]: S = [0, 1000²], one key dominates;
    // without the max subtraction e^(10⁶) would be inf and out NaN
    let (out, lse) = run(
        &[1000.0f32],
        &[0.0, 1000.0],
        &[1.0, 2.0],
        1,
        1,
        2,
        1,
        1,
        false,
    );
    assert_close!(out, [2.0f32]);
    assert_close!(lse, [1.0e6f32]);
}

/// Central-difference check of all three gradients of `Σ w∘out`.
#[allow(clippy::too_many_arguments)]
fn gradcheck(groups: usize, tq: usize, tk: usize, d: usize, dv: usize, causal: bool, seed: u64) {
    let q: Vec<f64> = random_vec(seed, groups * tq * d, -1.5, 1.5);
    let k: Vec<f64> = random_vec(seed + 1, groups * tk * d, -1.5, 1.5);
    let v: Vec<f64> = random_vec(seed + 2, groups * tk * dv, -1.0, 1.0);
    let w: Vec<f64> = random_vec(seed + 3, groups * tq * dv, -1.0, 1.0);
    let (out, lse) = run(&q, &k, &v, groups, tq, tk, d, dv, causal);
    let mut dq = vec![0.0; q.len()];
    let mut dk = vec![0.0; k.len()];
    let mut dvg = vec![0.0; v.len()];
    let mut scratch = vec![f64::NAN; attention_scratch_len(tq, tk, d, dv)];
    attention_backward(
        &q,
        &k,
        &v,
        &out,
        &lse,
        &w,
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
    let loss = |q: &[f64], k: &[f64], v: &[f64]| {
        weighted(&run(q, k, v, groups, tq, tk, d, dv, causal).0, &w)
    };
    let name = format!("attention tq={tq} tk={tk} causal={causal}");
    assert_gradient(&format!("{name} dq"), |x| loss(x, &k, &v), &q, &dq, 1e-7);
    assert_gradient(&format!("{name} dk"), |x| loss(&q, x, &v), &k, &dk, 1e-7);
    assert_gradient(&format!("{name} dv"), |x| loss(&q, &k, x), &v, &dvg, 1e-7);
    // None skips a gradient and leaves the others as they were
    let mut dk_only = vec![0.0; k.len()];
    attention_backward(
        &q,
        &k,
        &v,
        &out,
        &lse,
        &w,
        groups,
        tq,
        tk,
        d,
        dv,
        causal,
        None,
        Some(&mut dk_only),
        None,
        &mut scratch,
    )
    .unwrap();
    assert_close!(dk_only, dk, 1e-14);
    let mut dv_only = vec![0.0; v.len()];
    attention_backward(
        &q,
        &k,
        &v,
        &out,
        &lse,
        &w,
        groups,
        tq,
        tk,
        d,
        dv,
        causal,
        None,
        None,
        Some(&mut dv_only),
        &mut scratch,
    )
    .unwrap();
    assert_close!(dv_only, dvg, 1e-14);
}

#[test]
fn gradcheck_square() {
    gradcheck(2, 4, 4, 3, 2, false, 10);
    gradcheck(2, 4, 4, 3, 2, true, 20);
}

#[test]
fn gradcheck_tq_ne_tk() {
    // fewer queries than keys, and more (the rows past tk see every key when causal)
    gradcheck(2, 3, 5, 4, 3, false, 30);
    gradcheck(2, 3, 5, 4, 3, true, 40);
    gradcheck(3, 5, 2, 2, 4, false, 50);
    gradcheck(3, 5, 2, 2, 4, true, 60);
}

#[test]
fn gradcheck_causal_row_blocks() {
    // more rows than one causal block (CAUSAL_ROWS), with a partial last block
    const { assert!(CAUSAL_ROWS < 35) };
    gradcheck(1, 40, 35, 2, 2, true, 100);
    gradcheck(2, 35, 70, 2, 1, true, 110);
}

#[test]
fn causal_matches_an_explicit_mask() {
    for (tq, tk) in [(4, 6), (45, 50), (70, 40), (64, 64)] {
        causal_matches_an_explicit_mask_at(tq, tk);
    }
}

fn causal_matches_an_explicit_mask_at(tq: usize, tk: usize) {
    // causal attention equals attending row i to keys 0..=i only: check row by row
    // against the non-causal kernel on the first i + 1 keys
    let (d, dv) = (3, 2);
    let q: Vec<f64> = random_vec(70, tq * d, -1.0, 1.0);
    let k: Vec<f64> = random_vec(71, tk * d, -1.0, 1.0);
    let v: Vec<f64> = random_vec(72, tk * dv, -1.0, 1.0);
    let (out, lse) = run(&q, &k, &v, 1, tq, tk, d, dv, true);
    let (full, _) = run(&q, &k, &v, 1, tq, tk, d, dv, false);
    for i in 0..tq {
        let seen = (i + 1).min(tk);
        let (oi, li) = run(
            &q[i * d..(i + 1) * d],
            &k[..seen * d],
            &v[..seen * dv],
            1,
            1,
            seen,
            d,
            dv,
            false,
        );
        assert_close!(out[i * dv..(i + 1) * dv], oi, 1e-14);
        assert_close!(lse[i], li[0], 1e-14);
    }
    // and the mask matters: the first row differs from the unmasked one
    assert!((out[0] - full[0]).abs() > 1e-3);
}

/// `[n, t, 3c]` -> q, k, v as `[n·heads, t, dh]` each, gathered by hand.
fn gather(qkv: &[f64], n: usize, t: usize, c: usize, heads: usize) -> [Vec<f64>; 3] {
    let dh = c / heads;
    let mut parts = [vec![], vec![], vec![]];
    for (part, buf) in parts.iter_mut().enumerate() {
        for b in 0..n {
            for h in 0..heads {
                for i in 0..t {
                    for j in 0..dh {
                        buf.push(qkv[(b * t + i) * 3 * c + part * c + h * dh + j]);
                    }
                }
            }
        }
    }
    parts
}

/// `[n·heads, t, dh]` -> `[n, t, c]` (heads side by side), scattered by hand.
fn scatter(x: &[f64], n: usize, t: usize, c: usize, heads: usize) -> Vec<f64> {
    let dh = c / heads;
    let mut y = vec![0.0; n * t * c];
    for b in 0..n {
        for h in 0..heads {
            for i in 0..t {
                for j in 0..dh {
                    y[(b * t + i) * c + h * dh + j] = x[((b * heads + h) * t + i) * dh + j];
                }
            }
        }
    }
    y
}

fn mha(
    qkv: &[f64],
    n: usize,
    t: usize,
    c: usize,
    heads: usize,
    causal: bool,
) -> (Vec<f64>, Vec<f64>) {
    let mut out = vec![0.0; n * t * c];
    let mut lse = vec![0.0; n * heads * t];
    let mut scratch = vec![f64::NAN; mha_attention_scratch_len(t, c, heads)];
    mha_attention(
        qkv,
        n,
        t,
        c,
        heads,
        causal,
        &mut out,
        &mut lse,
        &mut scratch,
    )
    .unwrap();
    (out, lse)
}

#[test]
fn mha_equals_attention_on_gathered_heads() {
    let (n, t, c, heads) = (2, 5, 6, 3);
    let dh = c / heads;
    let qkv: Vec<f64> = random_vec(80, n * t * 3 * c, -1.5, 1.5);
    let w: Vec<f64> = random_vec(81, n * t * c, -1.0, 1.0);
    let [q, k, v] = gather(&qkv, n, t, c, heads);
    // the upstream gradient per head, gathered the same way (as if it were a q block)
    let mut w3 = vec![0.0; n * t * 3 * c];
    for r in 0..n * t {
        w3[r * 3 * c..r * 3 * c + c].copy_from_slice(&w[r * c..(r + 1) * c]);
    }
    let [wh, _, _] = gather(&w3, n, t, c, heads);
    for causal in [false, true] {
        let (out, lse) = mha(&qkv, n, t, c, heads, causal);
        let (out_h, lse_h) = run(&q, &k, &v, n * heads, t, t, dh, dh, causal);
        assert_close!(out, scatter(&out_h, n, t, c, heads), 1e-14);
        assert_close!(lse, lse_h, 1e-14);

        let mut dqkv = vec![0.5; qkv.len()];
        let mut scratch = vec![f64::NAN; mha_attention_scratch_len(t, c, heads)];
        mha_attention_backward(
            &qkv,
            &out,
            &lse,
            &w,
            n,
            t,
            c,
            heads,
            causal,
            &mut dqkv,
            &mut scratch,
        )
        .unwrap();
        let (mut dq, mut dk, mut dv) = (vec![0.0; q.len()], vec![0.0; k.len()], vec![0.0; v.len()]);
        let mut scratch = vec![f64::NAN; attention_scratch_len(t, t, dh, dh)];
        attention_backward(
            &q,
            &k,
            &v,
            &out_h,
            &lse_h,
            &wh,
            n * heads,
            t,
            t,
            dh,
            dh,
            causal,
            Some(&mut dq),
            Some(&mut dk),
            Some(&mut dv),
            &mut scratch,
        )
        .unwrap();
        let expected: Vec<f64> = {
            let (sq, sk, sv) = (
                scatter(&dq, n, t, c, heads),
                scatter(&dk, n, t, c, heads),
                scatter(&dv, n, t, c, heads),
            );
            (0..n * t)
                .flat_map(|r| {
                    let row = |s: &[f64]| s[r * c..(r + 1) * c].to_vec();
                    [row(&sq), row(&sk), row(&sv)].concat()
                })
                .map(|g| g + 0.5)
                .collect()
        };
        assert_close!(dqkv, expected, 1e-14);
    }
}

#[test]
fn mha_gradcheck() {
    mha_gradcheck_at(2, 4, 6, 2, &[false, true]);
    // several causal row blocks
    mha_gradcheck_at(1, 37, 4, 2, &[true]);
}

fn mha_gradcheck_at(n: usize, t: usize, c: usize, heads: usize, causal_cases: &[bool]) {
    let qkv: Vec<f64> = random_vec(90, n * t * 3 * c, -1.5, 1.5);
    let w: Vec<f64> = random_vec(91, n * t * c, -1.0, 1.0);
    for &causal in causal_cases {
        let (out, lse) = mha(&qkv, n, t, c, heads, causal);
        let mut dqkv = vec![0.0; qkv.len()];
        let mut scratch = vec![0.0; mha_attention_scratch_len(t, c, heads)];
        mha_attention_backward(
            &qkv,
            &out,
            &lse,
            &w,
            n,
            t,
            c,
            heads,
            causal,
            &mut dqkv,
            &mut scratch,
        )
        .unwrap();
        let loss = |x: &[f64]| weighted(&mha(x, n, t, c, heads, causal).0, &w);
        assert_gradient(
            &format!("mha_attention causal={causal}"),
            loss,
            &qkv,
            &dqkv,
            1e-7,
        );
    }
}

#[test]
fn bad_shapes_are_errors() {
    let (groups, tq, tk, d, dv) = (2, 3, 4, 2, 5);
    let q = vec![0.0f64; groups * tq * d];
    let k = vec![0.0f64; groups * tk * d];
    let v = vec![0.0f64; groups * tk * dv];
    let mut out = vec![0.0f64; groups * tq * dv];
    let mut lse = vec![0.0f64; groups * tq];
    let need = attention_scratch_len(tq, tk, d, dv);
    let mut scratch = vec![0.0f64; need + 7]; // longer is fine
    let mut fwd = |q: &[f64], k: &[f64], v: &[f64], dims: [usize; 5], scratch_len: usize| {
        let [g, a, b, c, e] = dims;
        attention(
            q,
            k,
            v,
            g,
            a,
            b,
            c,
            e,
            true,
            &mut out,
            &mut lse,
            &mut scratch[..scratch_len],
        )
        .map_err(|e| e.to_string())
    };
    let dims = [groups, tq, tk, d, dv];
    assert_eq!(fwd(&q, &k, &v, dims, need), Ok(()));
    assert_eq!(fwd(&q, &k, &v, dims, need + 7), Ok(()));
    assert_eq!(
        fwd(&q, &k, &v, dims, need - 1),
        Err(format!(
            "invalid argument to attention: `scratch` has {} elements, needs at least {need}",
            need - 1
        ))
    );
    assert_eq!(
        fwd(&q, &k[1..], &v, dims, need),
        Err("length mismatch in attention: `k` has 15 elements, expected 16".into())
    );
    assert!(fwd(&q, &k, &v[1..], dims, need).is_err());
    assert!(fwd(&q[1..], &k, &v, dims, need).is_err());
    assert_eq!(
        fwd(&q, &k, &v, [groups, tq, tk, 0, dv], need),
        Err("invalid argument to attention: `d` must be positive, got 0".into())
    );
    assert!(fwd(&[], &[], &[], [0, tq, tk, d, dv], need).is_err());
    assert!(fwd(&q, &k, &v, [usize::MAX, 2, tk, d, dv], need).is_err());
    assert!(attention(
        &q,
        &k,
        &v,
        groups,
        tq,
        tk,
        d,
        dv,
        false,
        &mut out[1..],
        &mut lse,
        &mut scratch
    )
    .is_err());
    assert!(attention(
        &q,
        &k,
        &v,
        groups,
        tq,
        tk,
        d,
        dv,
        false,
        &mut out,
        &mut lse[1..],
        &mut scratch
    )
    .is_err());

    let mut dq = vec![0.0f64; q.len()];
    let mut bwd = |dout: &[f64], dq: Option<&mut [f64]>, scratch_len: usize| {
        attention_backward(
            &q,
            &k,
            &v,
            &out,
            &lse,
            dout,
            groups,
            tq,
            tk,
            d,
            dv,
            false,
            dq,
            None,
            None,
            &mut scratch[..scratch_len],
        )
        .map_err(|e| e.to_string())
    };
    let dout = vec![0.0f64; groups * tq * dv];
    assert_eq!(bwd(&dout, Some(&mut dq), need), Ok(()));
    assert!(bwd(&dout[1..], Some(&mut dq), need).is_err());
    assert!(bwd(&dout, Some(&mut dq[1..]), need).is_err());
    assert!(bwd(&dout, Some(&mut dq), need - 1).is_err());
    // a short scratch is an error even when no gradient is asked for
    assert!(bwd(&dout, None, need - 1).is_err());

    // mha: heads must divide c
    let (n, t, c, heads) = (2, 3, 6, 4);
    let qkv = vec![0.0f64; n * t * 3 * c];
    let mut out = vec![0.0f64; n * t * c];
    let mut lse = vec![0.0f64; n * heads * t];
    let mut scratch = vec![0.0f64; 1000];
    let err = mha_attention(
        &qkv,
        n,
        t,
        c,
        heads,
        false,
        &mut out,
        &mut lse,
        &mut scratch,
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid argument to mha_attention: the embedding size c = 6 is not a multiple of heads = 4"
    );
    let heads = 3;
    let mut lse = vec![0.0f64; n * heads * t];
    let need = mha_attention_scratch_len(t, c, heads);
    assert!(mha_attention(
        &qkv,
        n,
        t,
        c,
        heads,
        true,
        &mut out,
        &mut lse,
        &mut scratch[..need]
    )
    .is_ok());
    let err = mha_attention(
        &qkv,
        n,
        t,
        c,
        heads,
        true,
        &mut out,
        &mut lse,
        &mut scratch[..need - 1],
    )
    .unwrap_err();
    assert!(err.to_string().contains("`scratch` has"), "{err}");
    assert!(mha_attention(&qkv, n, t, c, 0, true, &mut out, &mut lse, &mut scratch).is_err());
    assert!(mha_attention(
        &qkv[1..],
        n,
        t,
        c,
        heads,
        true,
        &mut out,
        &mut lse,
        &mut scratch
    )
    .is_err());
    assert!(mha_attention(
        &qkv,
        n,
        t,
        c,
        heads,
        true,
        &mut out,
        &mut lse[1..],
        &mut scratch
    )
    .is_err());
    assert!(
        mha_attention::<f64>(&[], 0, t, c, heads, true, &mut [], &mut [], &mut scratch).is_err()
    );
    let dout = vec![0.0f64; n * t * c];
    let mut dqkv = vec![0.0f64; qkv.len()];
    assert!(mha_attention_backward(
        &qkv,
        &out,
        &lse,
        &dout,
        n,
        t,
        c,
        heads,
        true,
        &mut dqkv,
        &mut scratch
    )
    .is_ok());
    assert!(mha_attention_backward(
        &qkv,
        &out,
        &lse,
        &dout,
        n,
        t,
        c,
        heads,
        true,
        &mut dqkv[1..],
        &mut scratch
    )
    .is_err());
    assert!(mha_attention_backward(
        &qkv,
        &out,
        &lse,
        &dout[1..],
        n,
        t,
        c,
        heads,
        true,
        &mut dqkv,
        &mut scratch
    )
    .is_err());
    assert!(mha_attention_backward(
        &qkv,
        &out,
        &lse,
        &dout,
        n,
        t,
        c,
        4,
        true,
        &mut dqkv,
        &mut scratch
    )
    .is_err());
    assert!(mha_attention_backward(
        &qkv,
        &out,
        &lse,
        &dout,
        n,
        t,
        c,
        heads,
        true,
        &mut dqkv,
        &mut scratch[..need - 1]
    )
    .is_err());
}

/// The `f32` heads (AVX-512 when the CPU has it) against the `f64` path, over tail
/// shapes: `t` not a multiple of the 6-row tiles or 16-lane registers, head widths
/// 1, 7, 32, 33.
#[test]
fn mha_f32_matches_f64() {
    for (t, dh, heads) in [
        (1, 7, 2),
        (5, 1, 3),
        (17, 33, 2),
        (37, 7, 1),
        (64, 32, 4),
        (70, 33, 1),
    ] {
        let (n, c) = (2, dh * heads);
        let qkv: Vec<f64> = random_vec(100, n * t * 3 * c, -2.0, 2.0);
        let w: Vec<f64> = random_vec(101, n * t * c, -1.0, 1.0);
        let to32 = |x: &[f64]| x.iter().map(|&v| v as f32).collect::<Vec<f32>>();
        // the reference on the f32 inputs, in f64
        let qkv64: Vec<f64> = to32(&qkv).iter().map(|&v| v as f64).collect();
        let w64: Vec<f64> = to32(&w).iter().map(|&v| v as f64).collect();
        for causal in [false, true] {
            let (out, lse) = mha(&qkv64, n, t, c, heads, causal);
            let mut dqkv = vec![0.25; qkv.len()];
            let mut scratch = vec![f64::NAN; mha_attention_scratch_len(t, c, heads)];
            mha_attention_backward(
                &qkv64,
                &out,
                &lse,
                &w64,
                n,
                t,
                c,
                heads,
                causal,
                &mut dqkv,
                &mut scratch,
            )
            .unwrap();

            let q32 = to32(&qkv);
            let mut out32 = vec![0.0f32; out.len()];
            let mut lse32 = vec![0.0f32; lse.len()];
            let mut scratch = vec![f32::NAN; mha_attention_scratch_len(t, c, heads)];
            mha_attention(
                &q32,
                n,
                t,
                c,
                heads,
                causal,
                &mut out32,
                &mut lse32,
                &mut scratch,
            )
            .unwrap();
            let mut d32 = vec![0.25f32; qkv.len()];
            scratch.fill(f32::NAN);
            mha_attention_backward(
                &q32,
                &out32,
                &lse32,
                &to32(&w),
                n,
                t,
                c,
                heads,
                causal,
                &mut d32,
                &mut scratch,
            )
            .unwrap();
            let close = |name: &str, got: &[f32], want: &[f64]| {
                for (i, (&g, &e)) in got.iter().zip(want).enumerate() {
                    let tol = 2e-5 * (1.0 + e.abs());
                    assert!(
                        (g as f64 - e).abs() <= tol,
                        "{name} t={t} dh={dh} causal={causal} [{i}]: {g} vs {e}"
                    );
                }
            };
            close("out", &out32, &out);
            close("lse", &lse32, &lse);
            close("dqkv", &d32, &dqkv);
        }
    }
}

/// The overwriting backward pass equals the accumulating one run onto zeros, on `f64`
/// (the portable path, which zeroes first) and `f32` (the AVX-512 heads where the CPU has
/// them, writing their products' sums directly), whatever `dqkv` held (NaN here).
fn overwrite_matches_accumulate_onto_zeros<T: Float>() {
    for (t, dh, heads) in [(1, 7, 2), (17, 33, 2), (64, 32, 4), (70, 33, 1)] {
        let (n, c) = (2, dh * heads);
        let from = |v: Vec<f64>| v.into_iter().map(T::from_f64).collect::<Vec<T>>();
        let qkv = from(random_vec(110, n * t * 3 * c, -2.0, 2.0));
        let dout = from(random_vec(111, n * t * c, -1.0, 1.0));
        for causal in [false, true] {
            let mut out = vec![T::zero(); n * t * c];
            let mut lse = vec![T::zero(); n * heads * t];
            let mut scratch = vec![T::zero(); mha_attention_scratch_len(t, c, heads)];
            mha_attention(
                &qkv,
                n,
                t,
                c,
                heads,
                causal,
                &mut out,
                &mut lse,
                &mut scratch,
            )
            .unwrap();
            let mut want = vec![T::zero(); qkv.len()];
            let (dims, d) = ((n, t, c, heads, causal), &dout);
            mha_backward(&qkv, &out, &lse, d, dims, &mut want, &mut scratch, false).unwrap();
            let mut got = vec![T::from_f64(f64::NAN); qkv.len()];
            mha_attention_backward_overwrite(
                &qkv,
                &out,
                &lse,
                &dout,
                n,
                t,
                c,
                heads,
                causal,
                &mut got,
                &mut scratch,
            )
            .unwrap();
            assert_eq!(got, want, "t={t} dh={dh} heads={heads} causal={causal}");
        }
    }
}

#[test]
fn overwrite_matches_accumulate_onto_zeros_f64() {
    overwrite_matches_accumulate_onto_zeros::<f64>();
}

#[test]
fn overwrite_matches_accumulate_onto_zeros_f32() {
    overwrite_matches_accumulate_onto_zeros::<f32>();
}

#[test]
fn scratch_formulas() {
    assert_eq!(attention_scratch_len(3, 5, 4, 2), 2 * 3 * 5 + 3);
    assert_eq!(attention_scratch_len(64, 64, 32, 32), 2 * 64 * 64 + 64);
    assert_eq!(
        mha_attention_scratch_len(64, 128, 4),
        2 * 64 * 64 + 64 + 8 * 64 * 32
    );
    assert_eq!(mha_attention_scratch_len(3, 6, 2), 18 + 3 + 8 * 3 * 3);
    // no panic on nonsense sizes; the kernels reject them
    assert_eq!(mha_attention_scratch_len(3, 6, 0), 21);
    assert_eq!(attention_scratch_len(usize::MAX, 2, 1, 1), usize::MAX);
    const AT_COMPILE_TIME: usize = mha_attention_scratch_len(4, 8, 2);
    assert_eq!(AT_COMPILE_TIME, 32 + 4 + 8 * 4 * 4);
}
