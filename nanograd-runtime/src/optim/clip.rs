//! Gradient clipping (the seed's `clip-grad-norm!`, PyTorch's `torch.nn.utils`):
//!
//! - [`clip_grad_norm`]: `n = ‖all gradients‖₂`; if `c = max_norm / (n + 1e-6) < 1`, every
//!   gradient is multiplied by `c`. Returns `n`, the norm before clipping.
//! - [`clip_grad_value`]: clamps every gradient element into `[−clip, clip]`.
//!
//! As in PyTorch, a NaN or infinite norm propagates into the gradients (`c` is NaN or 0);
//! guard with [`ensure_finite`](super::ensure_finite) first when that matters.

use crate::{blas, Float, Module};

/// Scales all gradients of `model` together so that their joint L2 norm is at most
/// `max_norm` (PyTorch's `clip_grad_norm_` with `norm_type = 2`), and returns the norm
/// before clipping.
pub fn clip_grad_norm<T: Float, M: Module<T> + ?Sized>(model: &mut M, max_norm: T) -> T {
    let mut sum_sq = T::zero();
    model.visit_params(&mut |_, p| {
        let n = blas::dot(p.grad(), p.grad()).sqrt();
        sum_sq += n * n;
    });
    let total = sum_sq.sqrt();
    let coef = max_norm / (total + T::from_f64(1e-6));
    // PyTorch multiplies by clamp(coef, max=1), so a NaN coefficient propagates
    if coef < T::one() || coef.is_nan() {
        model.visit_params_mut(&mut |_, p| blas::scal(coef, p.grad_mut()));
    }
    total
}

/// Clamps every gradient element of `model` into `[−clip, clip]` (PyTorch's
/// `clip_grad_value_`; NaN stays NaN).
pub fn clip_grad_value<T: Float, M: Module<T> + ?Sized>(model: &mut M, clip: T) {
    let (lo, hi) = (-clip, clip);
    model.visit_params_mut(&mut |_, p| {
        for g in p.grad_mut() {
            // torch.clamp(g, min=lo, max=hi) = min(max(g, lo), hi)
            let up = if *g < lo { lo } else { *g };
            *g = if up > hi { hi } else { up };
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{assert_close, Param};

    /// Two parameters as a module, for the tests.
    struct Pair(Param<f64>, Param<f64>);

    impl Module<f64> for Pair {
        fn visit_params(&self, f: &mut dyn FnMut(&str, &Param<f64>)) {
            f("a", &self.0);
            f("b", &self.1);
        }
        fn visit_params_mut(&mut self, f: &mut dyn FnMut(&str, &mut Param<f64>)) {
            f("a", &mut self.0);
            f("b", &mut self.1);
        }
        fn set_training_mode(&mut self, _: bool) {}
        fn is_training(&self) -> bool {
            true
        }
    }

    fn pair(ga: &[f64], gb: &[f64]) -> Pair {
        let mut a = Param::zeros(&[ga.len()]).unwrap();
        a.grad_mut().copy_from_slice(ga);
        let mut b = Param::zeros(&[gb.len()]).unwrap();
        b.grad_mut().copy_from_slice(gb);
        Pair(a, b)
    }

    #[test]
    fn norm_clipping_by_hand() {
        // grads [3, 0] and [4]: norm sqrt(9 + 16) = 5; max_norm 1 scales by 1 / (5 + 1e-6)
        let mut m = pair(&[3.0, 0.0], &[4.0]);
        let n = clip_grad_norm(&mut m, 1.0);
        assert_close!(n, 5.0, 1e-15);
        let c = 1.0 / (5.0 + 1e-6);
        assert_close!(m.0.grad(), [3.0 * c, 0.0], 1e-15);
        assert_close!(m.1.grad(), [4.0 * c], 1e-15);
        // a norm below max_norm leaves the gradients alone
        let mut m = pair(&[3.0, 0.0], &[4.0]);
        assert_close!(clip_grad_norm(&mut m, 10.0), 5.0, 1e-15);
        assert_eq!((m.0.grad(), m.1.grad()), (&[3.0, 0.0][..], &[4.0][..]));
    }

    #[test]
    fn norm_clipping_in_f32() {
        struct One(Param<f32>);
        impl Module<f32> for One {
            fn visit_params(&self, f: &mut dyn FnMut(&str, &Param<f32>)) {
                f("w", &self.0);
            }
            fn visit_params_mut(&mut self, f: &mut dyn FnMut(&str, &mut Param<f32>)) {
                f("w", &mut self.0);
            }
            fn set_training_mode(&mut self, _: bool) {}
            fn is_training(&self) -> bool {
                true
            }
        }
        let mut m = One(Param::zeros(&[2]).unwrap());
        m.0.grad_mut().copy_from_slice(&[6.0, 8.0]);
        // norm 10, max 5: grads halve (up to the 1e-6)
        assert_close!(clip_grad_norm(&mut m, 5.0f32), 10.0f32);
        assert_close!(m.0.grad(), [3.0f32, 4.0], 1e-6);
    }

    #[test]
    fn value_clipping_by_hand() {
        let mut m = pair(&[-3.0, 0.5, f64::NAN], &[2.0]);
        clip_grad_value(&mut m, 1.0);
        assert_eq!(&m.0.grad()[..2], &[-1.0, 0.5]);
        assert!(m.0.grad()[2].is_nan());
        assert_eq!(m.1.grad(), &[1.0]);
    }
}
