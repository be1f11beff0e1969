//! One model, many threads: every generated model is `Send + Sync`, and `forward` takes
//! `&self`, so threads share one model by reference; each thread computes in its own
//! workspace and gets the same bits as one thread alone.

use nanograd::prelude::*;
use nanograd::rand::{rngs::StdRng, SeedableRng};
use nanograd::testing::random_vec;

model! {
    pub struct Mlp {
        fc1: Dense(64 -> 96),
        fc2: Dense(96 -> 10),
    }
    fn forward(x: [B, 64]) -> [B, 10] {
        fc2(relu(fc1(x)))
    }
}

model! {
    const T: usize = 8;
    pub struct Block {
        ln: LayerNorm(32),
        attn: MultiHeadAttention(32, heads = 4, causal = true),
        fc: Dense(32 -> 128),
        proj: Dense(128 -> 32),
    }
    fn forward(x: [B, T, 32]) -> [B, T, 32] {
        let x = x + attn(ln(x));
        x + proj(gelu(fc(ln(x))))
    }
}

model! {
    pub struct Lm {
        wte: Embedding(50 -> 32),
        h: [Block; 2],
        head: Dense(32 -> 50, bias = false),
    }
    fn forward(idx: u32[B, 8]) -> [B, 8, 50] {
        head(h(wte(idx)))
    }
}

fn assert_send_sync<M: Send + Sync>() {}

#[test]
fn generated_models_are_send_and_sync() {
    assert_send_sync::<Mlp<f32>>();
    assert_send_sync::<Mlp<f64>>();
    assert_send_sync::<Lm<f32>>();
    assert_send_sync::<Block<f64>>();
}

#[test]
fn threads_sharing_a_model_get_one_thread_s_bits() {
    let mlp = Mlp::<f32>::new(&mut StdRng::seed_from_u64(1));
    let lm = Lm::<f32>::new(&mut StdRng::seed_from_u64(2));
    let inputs: Vec<Vec<[f32; 64]>> = (0..4)
        .map(|t| {
            random_vec::<f32>(10 + t, 5 * 64, -1.0, 1.0)
                .chunks(64)
                .map(|c| std::array::from_fn(|i| c[i]))
                .collect()
        })
        .collect();
    let ids: Vec<Vec<[u32; 8]>> = (0..4)
        .map(|t| {
            random_vec::<f64>(20 + t, 3 * 8, 0.0, 50.0)
                .chunks(8)
                .map(|c| std::array::from_fn(|i| c[i] as u32))
                .collect()
        })
        .collect();
    // three calls per input on this thread, each input from a fresh thread cache: the first
    // call computes unpacked, the later ones read packed weights (other rounding)
    let calls = |t: usize| {
        (0..3)
            .map(|_| {
                (
                    mlp.forward(&inputs[t]).unwrap(),
                    lm.forward(&ids[t]).unwrap(),
                )
            })
            .collect::<Vec<_>>()
    };
    let alone: Vec<_> = (0..4)
        .map(|t| {
            Workspace::<f32>::release_thread_cache();
            calls(t)
        })
        .collect();
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|t| {
                let (mlp, lm, x, idx) = (&mlp, &lm, &inputs[t], &ids[t]);
                s.spawn(move || {
                    // several calls: the second and later read packed weights
                    (0..3)
                        .map(|_| (mlp.forward(x).unwrap(), lm.forward(idx).unwrap()))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        for (t, h) in handles.into_iter().enumerate() {
            assert!(
                h.join().unwrap() == alone[t],
                "thread {t} differs from one thread alone"
            );
        }
    });
}
