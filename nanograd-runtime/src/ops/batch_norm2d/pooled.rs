//! Batch norm's training backward pass when its output goes through relu into a max
//! pooling (`conv → batch norm → relu → max pool`, the block CNNs are built of).
//!
//! Done one after the other, the pooling's backward pass writes the gradient of batch
//! norm's output, a whole `[n, c, h, w]` tensor, and batch norm's two passes read it back
//! from memory: at `mnist_cnn`'s first block (batch 64, 16 × 28 × 28) that is 3.2 MB written
//! and read twice. Here the pooling's backward pass runs channel by channel into a scratch
//! of one channel's runs (`n · h · w` values, 200 KB there), which batch norm's passes for
//! that channel read while it is still in cache. Every value is the one the two ops give:
//! the same pooling gradient, and batch norm's sums over the same runs in the same order.

use super::{channel_backward, check_dims, check_grads, Grads};
use crate::ops::max_pool2d::{max_pool2d_channel_backward_through_relu, Pool2dGeom};
use crate::simd::{vectorize_above, Kernel};
use crate::{check_len, invalid, Float, Result};

/// The values a pooling's backward pass reads: its input `r = relu(batch_norm(x))`, its
/// output `y` and the gradient `dy` of that output.
pub type PoolValues<'a, T> = (&'a [T], &'a [T], &'a [T]);

/// [`batch_norm2d_train_backward`](super::batch_norm2d_train_backward) of a batch norm whose
/// output `h` reaches the loss only as `max_pool2d(relu(h))`: its gradient `dh` is
/// [`max_pool2d_backward_through_relu`](crate::ops::max_pool2d_backward_through_relu)`(pool,
/// r, y, dy)`, computed here channel by channel into `scratch` (at least `n · hw` values)
/// instead of a tensor of its own (see the module's doc). Accumulates into `dx`, `dweight`
/// and `dbias` (each optional). The pooling's input planes are batch norm's (`pool.c == c`,
/// `pool.h · pool.w == hw`); a `y` that is not the pooling of `r` is an error naming the
/// window, as the pooling's backward pass gives it (`dx` may then hold part of the
/// gradient).
#[allow(clippy::too_many_arguments)]
pub fn batch_norm2d_train_relu_max_pool2d_backward<T: Float>(
    x: &[T],
    n: usize,
    c: usize,
    hw: usize,
    weight: &[T],
    save_mean: &[T],
    save_invstd: &[T],
    pool: &Pool2dGeom,
    values: PoolValues<'_, T>,
    scratch: &mut [T],
    dx: Option<&mut [T]>,
    dweight: Option<&mut [T]>,
    dbias: Option<&mut [T]>,
) -> Result<()> {
    let stats = (save_mean, save_invstd);
    let grads = (dx, dweight, dbias);
    pooled::<T, true>(x, (n, c, hw), weight, stats, pool, values, scratch, grads)
}

/// [`batch_norm2d_train_relu_max_pool2d_backward`] for a `dx` that holds nothing yet: `dx` is
/// overwritten, whatever it held; `dweight` and `dbias` are added to.
#[allow(clippy::too_many_arguments)]
pub fn batch_norm2d_train_relu_max_pool2d_backward_overwrite<T: Float>(
    x: &[T],
    n: usize,
    c: usize,
    hw: usize,
    weight: &[T],
    save_mean: &[T],
    save_invstd: &[T],
    pool: &Pool2dGeom,
    values: PoolValues<'_, T>,
    scratch: &mut [T],
    dx: Option<&mut [T]>,
    dweight: Option<&mut [T]>,
    dbias: Option<&mut [T]>,
) -> Result<()> {
    let stats = (save_mean, save_invstd);
    let grads = (dx, dweight, dbias);
    pooled::<T, false>(x, (n, c, hw), weight, stats, pool, values, scratch, grads)
}

/// Both forms: `dx` added to when `ADD`, else overwritten.
#[allow(clippy::too_many_arguments)]
fn pooled<T: Float, const ADD: bool>(
    x: &[T],
    (n, c, hw): (usize, usize, usize),
    weight: &[T],
    stats: (&[T], &[T]),
    pool: &Pool2dGeom,
    (r, y, dy): PoolValues<'_, T>,
    scratch: &mut [T],
    mut grads: Grads<'_, T>,
) -> Result<()> {
    const OP: &str = "batch_norm2d_train_relu_max_pool2d_backward";
    check_dims(OP, x.len(), n, c, hw)?;
    check_len(OP, "weight", c, weight.len())?;
    check_len(OP, "save_mean", c, stats.0.len())?;
    check_len(OP, "save_invstd", c, stats.1.len())?;
    check_grads(OP, x.len(), c, &grads)?;
    if pool.c != c || pool.h.checked_mul(pool.w) != Some(hw) {
        return Err(invalid(
            OP,
            format!(
                "the pooling's input [{}, {}, {}] is not batch norm's output [{c}, {hw}] per image",
                pool.c, pool.h, pool.w
            ),
        ));
    }
    pool.check(OP, n, ("r", r.len()), ("y", y.len()))?;
    pool.check(OP, n, ("r", r.len()), ("dy", dy.len()))?;
    let need = n * hw;
    if scratch.len() < need {
        return Err(invalid(
            OP,
            format!(
                "scratch holds {} values, needs n * hw = {need}",
                scratch.len()
            ),
        ));
    }
    let g = &mut scratch[..need];
    for k in 0..c {
        max_pool2d_channel_backward_through_relu(pool, (r, y, dy), k, g)?;
        let (dx, dw, db) = &mut grads;
        let kernel = Channel::<T, ADD> {
            x,
            dims: (n, c, hw, k),
            weight,
            stats,
            g,
            grads: (dx.as_deref_mut(), dw.as_deref_mut(), db.as_deref_mut()),
        };
        vectorize_above(need, kernel);
    }
    Ok(())
}

/// Batch norm's backward pass of one channel, from that channel's runs of the gradient alone.
struct Channel<'a, T, const ADD: bool> {
    x: &'a [T],
    dims: (usize, usize, usize, usize),
    weight: &'a [T],
    stats: (&'a [T], &'a [T]),
    g: &'a [T],
    grads: Grads<'a, T>,
}

impl<T: Float, const ADD: bool> Kernel for Channel<'_, T, ADD> {
    type Output = ();
    #[inline(always)]
    fn run(self) {
        let Self {
            x,
            dims,
            weight,
            stats,
            g,
            grads,
        } = self;
        channel_backward::<T, ADD>(x, dims, weight, stats, (g, 1, 0), grads);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::assert_close;
    use crate::ops::{
        batch_norm2d_train_backward, batch_norm2d_train_backward_overwrite,
        batch_norm2d_train_relu, max_pool2d, max_pool2d_backward_through_relu,
    };
    use crate::testing::{assert_gradient, random_vec};

    /// The training forward pass of batch norm → relu → max pooling: `(r, y, mean, invstd)`.
    #[allow(clippy::type_complexity)]
    fn forward<T: Float>(
        pool: &Pool2dGeom,
        x: &[T],
        n: usize,
        (weight, bias): (&[T], &[T]),
    ) -> (Vec<T>, Vec<T>, Vec<T>, Vec<T>) {
        let (c, hw) = (pool.c, pool.h * pool.w);
        let (mut rm, mut rv) = (vec![T::zero(); c], vec![T::one(); c]);
        let (mut sm, mut si) = (vec![T::zero(); c], vec![T::zero(); c]);
        let mut r = vec![T::zero(); x.len()];
        let (eps, momentum) = (T::from_f64(1e-5), T::from_f64(0.1));
        let (stats, out) = ((&mut rm[..], &mut rv[..]), (&mut sm[..], &mut si[..]));
        batch_norm2d_train_relu(
            x, n, c, hw, weight, bias, eps, momentum, stats.0, stats.1, out.0, out.1, &mut r,
        )
        .unwrap();
        let mut y = vec![T::zero(); n * pool.output_len()];
        max_pool2d(pool, &r, n, &mut y).unwrap();
        (r, y, sm, si)
    }

    #[test]
    fn literal() {
        // one image, one channel of 2x2, pooled to one value:
        // x = [0, 0, 0, 4]: mean 1, var 3, eps 1 -> invstd 0.5, x̂ = [-.5, -.5, -.5, 1.5];
        // weight 3, bias -1: h = [-2.5, -2.5, -2.5, 3.5], r = relu(h) = [0, 0, 0, 3.5],
        // pooled 3.5 from position 3; dy = 2, so dh = [0, 0, 0, 2]:
        // Σg = 2, Σg·x̂ = 3, a = weight·invstd/N = 0.375,
        // dx = a·(4 dh - 2 - 3 x̂) = 0.375·[-0.5, -0.5, -0.5, 1.5], dweight 3, dbias 2,
        // added onto dx = 1, dweight = 10, dbias = 0
        let pool = Pool2dGeom::new(1, 2, 2, 2, 2, 0).unwrap();
        let x = [0.0, 0.0, 0.0, 4.0];
        let (mean, invstd) = ([1.0], [0.5]);
        let values = (&[0.0, 0.0, 0.0, 3.5][..], &[3.5][..], &[2.0][..]);
        let (mut dx, mut dw, mut db) = (vec![1.0; 4], vec![10.0], vec![0.0]);
        let mut scratch = [f64::NAN; 4];
        batch_norm2d_train_relu_max_pool2d_backward(
            &x,
            1,
            1,
            4,
            &[3.0],
            &mean,
            &invstd,
            &pool,
            values,
            &mut scratch,
            Some(&mut dx),
            Some(&mut dw),
            Some(&mut db),
        )
        .unwrap();
        assert_close!(dx, [0.8125, 0.8125, 0.8125, 1.5625]);
        assert_close!(dw, [13.0]);
        assert_close!(db, [2.0]);
    }

    /// The fused pass against the pooling's backward pass and then batch norm's, to the bit,
    /// both forms, every gradient asked for or not.
    fn same_as_two_ops<T: Float>() {
        let geoms = [
            (Pool2dGeom::new(3, 4, 6, 2, 2, 0).unwrap(), 2),
            (Pool2dGeom::new(2, 5, 7, 2, 2, 0).unwrap(), 3),
            (Pool2dGeom::new(16, 28, 28, 2, 2, 0).unwrap(), 5),
            (Pool2dGeom::new(2, 6, 5, 3, 2, 1).unwrap(), 4),
            (Pool2dGeom::new(1, 4, 4, 2, 2, 0).unwrap(), 1),
        ];
        for (s, (pool, n)) in geoms.into_iter().enumerate() {
            let (c, hw) = (pool.c, pool.h * pool.w);
            let s = s as u64 * 10;
            let x: Vec<T> = random_vec(s, n * c * hw, -2.0, 3.0);
            let weight: Vec<T> = random_vec(s + 1, c, 0.5, 2.0);
            let bias: Vec<T> = random_vec(s + 2, c, -0.5, 0.5);
            let (r, y, sm, si) = forward(&pool, &x, n, (&weight, &bias));
            let dy: Vec<T> = random_vec(s + 3, y.len(), -1.0, 1.0);
            let mut dh = vec![T::zero(); x.len()];
            max_pool2d_backward_through_relu(&pool, &r, &y, &dy, n, &mut dh).unwrap();
            let start: Vec<T> = random_vec(s + 4, x.len(), -1.0, 1.0);
            for add in [true, false] {
                for ask in [
                    (true, true, true),
                    (true, false, false),
                    (false, true, true),
                ] {
                    let fresh = || {
                        let dx = ask.0.then(|| start.clone());
                        let dw = ask.1.then(|| vec![T::one(); c]);
                        let db = ask.2.then(|| vec![T::zero(); c]);
                        (dx, dw, db)
                    };
                    let (mut ex, mut ew, mut eb) = fresh();
                    let two = if add {
                        batch_norm2d_train_backward
                    } else {
                        batch_norm2d_train_backward_overwrite
                    };
                    let (dx, dw, db) = (ex.as_deref_mut(), ew.as_deref_mut(), eb.as_deref_mut());
                    two(&x, n, c, hw, &weight, &sm, &si, &dh, dx, dw, db).unwrap();
                    let (mut gx, mut gw, mut gb) = fresh();
                    let fused = if add {
                        batch_norm2d_train_relu_max_pool2d_backward
                    } else {
                        batch_norm2d_train_relu_max_pool2d_backward_overwrite
                    };
                    // a scratch longer than needed, holding garbage
                    let mut scratch = vec![T::from_f64(7.0); n * hw + 3];
                    let (dx, dw, db) = (gx.as_deref_mut(), gw.as_deref_mut(), gb.as_deref_mut());
                    let values = (&r[..], &y[..], &dy[..]);
                    fused(
                        &x,
                        n,
                        c,
                        hw,
                        &weight,
                        &sm,
                        &si,
                        &pool,
                        values,
                        &mut scratch,
                        dx,
                        dw,
                        db,
                    )
                    .unwrap();
                    let bits = |v: &Option<Vec<T>>| {
                        v.as_ref()
                            .map(|v| v.iter().map(|a| a.to_f64().to_bits()).collect::<Vec<_>>())
                    };
                    let what = format!("pool {pool:?}, n = {n}, add = {add}, asked {ask:?}");
                    assert_eq!(bits(&gx), bits(&ex), "dx, {what}");
                    assert_eq!(bits(&gw), bits(&ew), "dweight, {what}");
                    assert_eq!(bits(&gb), bits(&eb), "dbias, {what}");
                }
            }
        }
    }

    #[test]
    fn same_as_two_ops_f32() {
        same_as_two_ops::<f32>();
    }

    #[test]
    fn same_as_two_ops_f64() {
        same_as_two_ops::<f64>();
    }

    /// Central differences of `Σ u·max_pool2d(relu(batch_norm_train(x)))` in `x`, `weight`
    /// and `bias`.
    #[test]
    fn gradient() {
        let (pool, n) = (Pool2dGeom::new(2, 4, 6, 2, 2, 0).unwrap(), 3);
        let (c, hw) = (pool.c, pool.h * pool.w);
        let x: Vec<f64> = random_vec(1, n * c * hw, -2.0, 3.0);
        let weight: Vec<f64> = random_vec(2, c, 0.5, 2.0);
        let bias: Vec<f64> = random_vec(3, c, -0.5, 0.5);
        let u: Vec<f64> = random_vec(4, n * pool.output_len(), -1.0, 1.0);
        let loss = |x: &[f64], w: &[f64], b: &[f64]| {
            let (_, y, _, _) = forward(&pool, x, n, (w, b));
            y.iter().zip(&u).map(|(p, q)| p * q).sum::<f64>()
        };
        let (r, y, sm, si) = forward(&pool, &x, n, (&weight, &bias));
        let (mut dx, mut dw, mut db) = (vec![0.0; x.len()], vec![0.0; c], vec![0.0; c]);
        let mut scratch = vec![0.0; n * hw];
        batch_norm2d_train_relu_max_pool2d_backward_overwrite(
            &x,
            n,
            c,
            hw,
            &weight,
            &sm,
            &si,
            &pool,
            (&r, &y, &u),
            &mut scratch,
            Some(&mut dx),
            Some(&mut dw),
            Some(&mut db),
        )
        .unwrap();
        let name = "batch_norm2d_train_relu_max_pool2d_backward";
        assert_gradient(name, |x| loss(x, &weight, &bias), &x, &dx, 1e-6);
        assert_gradient(name, |w| loss(&x, w, &bias), &weight, &dw, 1e-6);
        assert_gradient(name, |b| loss(&x, &weight, b), &bias, &db, 1e-6);
    }

    #[test]
    fn bad_input_is_an_error() {
        let (pool, n) = (Pool2dGeom::new(2, 2, 4, 2, 2, 0).unwrap(), 2);
        let (c, hw) = (pool.c, pool.h * pool.w);
        let x: Vec<f32> = random_vec(5, n * c * hw, -2.0, 3.0);
        let (w, b) = (vec![1.0f32; c], vec![0.0f32; c]);
        let (r, mut y, sm, si) = forward(&pool, &x, n, (&w, &b));
        let dy = vec![1.0f32; y.len()];
        let run = |pool: &Pool2dGeom, y: &[f32], scratch: &mut [f32]| {
            let mut dx = vec![0.0f32; x.len()];
            let values = (&r[..], y, &dy[..]);
            batch_norm2d_train_relu_max_pool2d_backward_overwrite(
                &x,
                n,
                c,
                hw,
                &w,
                &sm,
                &si,
                pool,
                values,
                scratch,
                Some(&mut dx),
                None,
                None,
            )
            .map_err(|e| e.to_string())
        };
        let mut scratch = vec![0.0f32; n * hw];
        assert_eq!(run(&pool, &y, &mut scratch), Ok(()));
        let short = run(&pool, &y, &mut scratch[..n * hw - 1]).unwrap_err();
        assert!(
            short.contains("scratch holds 15 values, needs n * hw = 16"),
            "{short}"
        );
        let other = Pool2dGeom::new(2, 2, 2, 2, 2, 0).unwrap();
        let shape = run(&other, &y, &mut scratch).unwrap_err();
        assert!(shape.contains("is not batch norm's output"), "{shape}");
        // image 1's window (0, 1) of channel 1 (plane 1·2 + 1 = 3) holds no such value
        y[3 * 2 + 1] = 1e6;
        let wrong = run(&pool, &y, &mut scratch).unwrap_err();
        assert!(wrong.contains("window (0, 1) of plane 3"), "{wrong}");
    }
}
