//! [`Adam`]: adaptive moment estimation with bias correction (the seed's `make-adam`,
//! PyTorch's `torch.optim.Adam`), optionally AMSGrad. At step t:
//!
//! ```text
//! g ← g + w·p                          (coupled weight decay w ≠ 0; AdamW decouples it)
//! m ← β₁·m + (1 − β₁)·g                (computed as PyTorch's lerp)
//! v ← β₂·v + (1 − β₂)·g²
//! v̂ ← max(v̂, v) with AMSGrad, else v
//! p ← p − lr/(1 − β₁ᵗ) · m / (√v̂ / √(1 − β₂ᵗ) + eps)
//! ```
//!
//! Weight decay (either kind) applies to the parameters its [`DecayScope`] selects: all of
//! them by default, or only those with two or more dimensions.

use alloc::vec::Vec;
use serde::{Deserialize, Serialize};

use super::state::ParamKeys;
use super::weight_decay::{coupled, decoupled_factor};
use super::{check_range, lerp, DecayScope, Optimizer};
use crate::simd::{vectorize, Kernel};
use crate::{Float, Module, Result};

/// Adam. Defaults (PyTorch's): betas (0.9, 0.999), eps 1e-8, weight decay 0 on every
/// parameter, no AMSGrad.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(bound(serialize = "T: Float", deserialize = "T: Float"))]
pub struct Adam<T: Float> {
    lr: f64,
    beta1: f64,
    beta2: f64,
    eps: f64,
    weight_decay: f64,
    amsgrad: bool,
    /// AdamW's decoupled weight decay instead of the coupled L2 one.
    decoupled: bool,
    /// The parameters weight decay applies to; absent from optimizers serialised before it
    /// existed, which decayed every parameter.
    #[serde(default)]
    decay_scope: DecayScope,
    state: Option<AdamState<T>>,
}

/// Per-parameter moments (`max_exp_avg_sq` only with AMSGrad) and the step count.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(bound(serialize = "T: Float", deserialize = "T: Float"))]
struct AdamState<T: Float> {
    keys: ParamKeys,
    steps: u64,
    exp_avg: Vec<Vec<T>>,
    exp_avg_sq: Vec<Vec<T>>,
    max_exp_avg_sq: Vec<Vec<T>>,
}

impl<T: Float> Adam<T> {
    /// Adam with learning rate `lr` and PyTorch's defaults for everything else.
    pub fn new(lr: f64) -> Self {
        Adam {
            lr,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.0,
            amsgrad: false,
            decoupled: false,
            decay_scope: DecayScope::All,
            state: None,
        }
    }

    /// The same, with AdamW's decoupled weight decay `weight_decay`.
    pub(crate) fn new_decoupled(lr: f64, weight_decay: f64) -> Self {
        Adam {
            weight_decay,
            decoupled: true,
            ..Adam::new(lr)
        }
    }

    /// The decay rates β₁, β₂ of the first and second moments (default 0.9, 0.999).
    pub fn betas(mut self, beta1: f64, beta2: f64) -> Self {
        self.beta1 = beta1;
        self.beta2 = beta2;
        self
    }

    /// The constant added to the denominator (default 1e-8).
    pub fn eps(mut self, eps: f64) -> Self {
        self.eps = eps;
        self
    }

    /// Weight decay `w` (default 0): coupled L2 for Adam, decoupled for AdamW.
    pub fn weight_decay(mut self, weight_decay: f64) -> Self {
        self.weight_decay = weight_decay;
        self
    }

    /// AMSGrad: normalise by the largest second moment seen so far (default off).
    pub fn amsgrad(mut self, amsgrad: bool) -> Self {
        self.amsgrad = amsgrad;
        self
    }

    /// Which parameters weight decay applies to (default [`DecayScope::All`]).
    pub fn decay_scope(mut self, scope: DecayScope) -> Self {
        self.decay_scope = scope;
        self
    }

    /// Weight decay on parameters with two or more dimensions only:
    /// `decay_scope(DecayScope::MatricesOnly)`.
    pub fn decay_matrices_only(self) -> Self {
        self.decay_scope(DecayScope::MatricesOnly)
    }

    /// The parameters weight decay applies to.
    pub fn scope(&self) -> DecayScope {
        self.decay_scope
    }

    pub(crate) fn name(&self) -> &'static str {
        if self.decoupled {
            "adamw"
        } else {
            "adam"
        }
    }

    fn validate(&self) -> Result<()> {
        let op = self.name();
        check_range(op, "learning rate", self.lr, 0.0, None)?;
        check_range(op, "eps", self.eps, 0.0, None)?;
        check_range(op, "beta1", self.beta1, 0.0, Some(1.0))?;
        check_range(op, "beta2", self.beta2, 0.0, Some(1.0))?;
        check_range(op, "weight_decay", self.weight_decay, 0.0, None)
    }
}

fn new_state<T: Float>(keys: ParamKeys, amsgrad: bool) -> AdamState<T> {
    AdamState {
        exp_avg: keys.zeros(),
        exp_avg_sq: keys.zeros(),
        max_exp_avg_sq: if amsgrad { keys.zeros() } else { Vec::new() },
        keys,
        steps: 0,
    }
}

/// The constants of one Adam step.
struct Consts<T> {
    /// Decoupled decay factor `1 - lr·w` (AdamW), applied to the parameter first.
    shrink: T,
    /// Coupled weight decay `w`: `g += w·p` (Adam).
    wd: T,
    /// `1 - beta1`, the weight of the new gradient in the first moment.
    w1: T,
    b2: T,
    /// `1 - beta2`.
    w2: T,
    bc2_sqrt: T,
    eps: T,
    /// `-lr / (1 - beta1^t)`.
    neg_step: T,
}

/// One parameter's Adam update without amsgrad: the slices of one parameter.
struct Update<'a, T> {
    p: &'a mut [T],
    g: &'a [T],
    m: &'a mut [T],
    v: &'a mut [T],
    k: &'a Consts<T>,
}

/// [`Update`] with its options as constants of the instantiation, so that the loop has no
/// branch and vectorises; the arithmetic is exactly the general path's (`coupled`, and
/// `lerp` with its `w < 0.5` branch resolved by `SMALL_W`).
struct Flags<'a, T, const WD: bool, const SHRINK: bool, const SMALL_W: bool>(Update<'a, T>);

impl<T: Float, const WD: bool, const SHRINK: bool, const SMALL_W: bool> Kernel
    for Flags<'_, T, WD, SHRINK, SMALL_W>
{
    type Output = ();

    #[inline(always)]
    fn run(self) {
        let Update { p, g, m, v, k } = self.0;
        for (((pj, &gj), mj), vj) in p.iter_mut().zip(g).zip(m.iter_mut()).zip(v.iter_mut()) {
            if SHRINK {
                *pj *= k.shrink;
            }
            let gj = if WD { gj + k.wd * *pj } else { gj };
            *mj = if SMALL_W {
                *mj + k.w1 * (gj - *mj)
            } else {
                gj - (gj - *mj) * (T::one() - k.w1)
            };
            *vj = *vj * k.b2 + k.w2 * gj * gj;
            let denom = vj.sqrt() / k.bc2_sqrt + k.eps;
            *pj += k.neg_step * *mj / denom;
        }
    }
}

impl<T: Float> Optimizer<T> for Adam<T> {
    fn init(&mut self, model: &dyn Module<T>) -> Result<()> {
        self.state = Some(new_state(ParamKeys::of(model), self.amsgrad));
        Ok(())
    }

    fn step(&mut self, model: &mut dyn Module<T>) -> Result<()> {
        self.validate()?;
        let (op, amsgrad, scope) = (self.name(), self.amsgrad, self.decay_scope);
        let state = self
            .state
            .get_or_insert_with(|| new_state(ParamKeys::of(&*model), amsgrad));
        state.keys.check_buffers(op, "exp_avg", &state.exp_avg)?;
        state
            .keys
            .check_buffers(op, "exp_avg_sq", &state.exp_avg_sq)?;
        if amsgrad {
            state
                .keys
                .check_buffers(op, "max_exp_avg_sq", &state.max_exp_avg_sq)?;
        }
        // scalars in f64, as PyTorch computes them in Python floats
        let t = (state.steps + 1) as f64;
        let bias_correction1 = 1.0 - self.beta1.powf(t);
        let bias_correction2 = 1.0 - self.beta2.powf(t);
        let neg_step_size = T::from_f64(-(self.lr / bias_correction1));
        let bc2_sqrt = T::from_f64(bias_correction2.sqrt());
        let (one_minus_b1, b2, one_minus_b2) = (
            T::from_f64(1.0 - self.beta1),
            T::from_f64(self.beta2),
            T::from_f64(1.0 - self.beta2),
        );
        let eps = T::from_f64(self.eps);
        let (coupled_wd, shrink) = match (self.decoupled, self.weight_decay != 0.0) {
            (true, true) => (
                T::zero(),
                Some(T::from_f64(decoupled_factor(self.lr, self.weight_decay))),
            ),
            (true, false) => (T::zero(), None),
            (false, _) => (T::from_f64(self.weight_decay), None),
        };
        let AdamState {
            keys,
            exp_avg,
            exp_avg_sq,
            max_exp_avg_sq,
            ..
        } = state;
        let k = Consts {
            shrink: shrink.unwrap_or(T::one()),
            wd: coupled_wd,
            w1: one_minus_b1,
            b2,
            w2: one_minus_b2,
            bc2_sqrt,
            eps,
            neg_step: neg_step_size,
        };
        let small = one_minus_b1.abs() < T::from_f64(0.5);
        let wd = coupled_wd != T::zero();
        keys.for_each_param_with_ndim(op, model, |i, ndim, p, g| {
            // a parameter outside the scope: no shrink (PyTorch multiplies by 1 - lr·0 = 1,
            // which changes nothing) and no coupled term
            let decays = scope.decays(ndim);
            let (shrink_i, wd_i) = if decays {
                (k.shrink, coupled_wd)
            } else {
                (T::one(), T::zero())
            };
            if amsgrad {
                let moments = p
                    .iter_mut()
                    .zip(g)
                    .zip(exp_avg[i].iter_mut())
                    .zip(exp_avg_sq[i].iter_mut())
                    .zip(max_exp_avg_sq[i].iter_mut());
                for ((((pj, &gj), m), v), mx) in moments {
                    *pj *= shrink_i;
                    let gj = coupled(gj, *pj, wd_i);
                    *m = lerp(*m, gj, one_minus_b1);
                    *v = *v * b2 + one_minus_b2 * gj * gj;
                    *mx = maximum(*mx, *v);
                    let denom = mx.sqrt() / bc2_sqrt + eps;
                    *pj += neg_step_size * *m / denom;
                }
                return;
            }
            let (m, v) = (&mut exp_avg[i][..], &mut exp_avg_sq[i][..]);
            let u = Update { p, g, m, v, k: &k };
            match (wd && decays, shrink.is_some() && decays, small) {
                (false, false, true) => vectorize(Flags::<_, false, false, true>(u)),
                (false, false, false) => vectorize(Flags::<_, false, false, false>(u)),
                (true, false, true) => vectorize(Flags::<_, true, false, true>(u)),
                (true, false, false) => vectorize(Flags::<_, true, false, false>(u)),
                (_, true, true) => vectorize(Flags::<_, false, true, true>(u)),
                (_, true, false) => vectorize(Flags::<_, false, true, false>(u)),
            }
        })?;
        state.steps += 1;
        Ok(())
    }

    fn learning_rate(&self) -> f64 {
        self.lr
    }

    fn set_learning_rate(&mut self, lr: f64) {
        self.lr = lr;
    }

    fn config(&self) -> Vec<(&'static str, f64)> {
        vec![
            ("lr", self.lr),
            ("beta1", self.beta1),
            ("beta2", self.beta2),
            ("eps", self.eps),
            ("weight_decay", self.weight_decay),
            ("amsgrad", f64::from(u8::from(self.amsgrad))),
            (
                "decay_matrices_only",
                f64::from(u8::from(self.decay_scope == DecayScope::MatricesOnly)),
            ),
        ]
    }

    fn step_count(&self) -> u64 {
        self.state.as_ref().map_or(0, |s| s.steps)
    }
}

/// `max(a, b)`, NaN if either is NaN (PyTorch's `torch.maximum`).
#[inline(always)]
fn maximum<T: Float>(a: T, b: T) -> T {
    if a.is_nan() || b.is_nan() {
        a + b
    } else if a > b {
        a
    } else {
        b
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::assert_close;
    use crate::optim::test_util::{matrix_and_vector, scalar, trajectory};

    #[test]
    fn literal_constant_gradient() {
        // A constant gradient g gives m = (1 - b1^t) g and v = (1 - b2^t) g^2, so the
        // bias-corrected step is lr * g / (|g| + eps): with eps = 0, exactly lr per step.
        let mut opt = Adam::new(0.1).eps(0.0);
        assert_close!(trajectory::<f64>(&mut opt, 3), [0.9, 0.8, 0.7], 1e-14);
        // default eps 1e-8: step 1 is 0.1 * 0.5 / (0.5 + 1e-8), p = 1 - 0.1 / (1 + 2e-8)
        let p = trajectory::<f64>(&mut Adam::new(0.1), 1)[0];
        assert_close!(p, 1.0 - 0.1 / (1.0 + 2e-8), 1e-15);
        assert_close!(
            trajectory::<f32>(&mut Adam::new(0.1).betas(0.5, 0.9), 2),
            [0.9f32, 0.8]
        );
    }

    #[test]
    fn literal_coupled_weight_decay() {
        // p = 1, g = 0.5, weight decay 1, betas (0.5, 0.5), eps 0, lr 0.1
        // step 1: g' = 0.5 + 1 = 1.5, so a full step: p = 0.9
        // (m = 0.5 * 1.5 = 0.75, v = 0.5 * 2.25 = 1.125, bias corrections 0.5 and 0.5)
        // step 2: g' = 0.5 + 0.9 = 1.4; m = 0.5*0.75 + 0.5*1.4 = 1.075, v = 0.5*1.125 +
        //   0.5*1.96 = 1.5425; both bias corrections 0.75: m_hat = 1.4333.., v_hat = 2.05666..,
        //   p = 0.9 - 0.1 * 1.4333.. / 1.434108.. = 0.9 - 0.0999459... = 0.8000540...
        let mut opt = Adam::new(0.1).betas(0.5, 0.5).eps(0.0).weight_decay(1.0);
        let expected = 0.9 - 0.1 * (1.075 / 0.75) / (1.5425f64 / 0.75).sqrt();
        assert_close!(trajectory::<f64>(&mut opt, 2), [0.9, expected], 1e-14);
        assert_close!(expected, 0.800054, 1e-6);
    }

    #[test]
    fn literal_amsgrad_keeps_the_largest_second_moment() {
        // g = 0.5 then 0: with betas (0, 0.5), m = g, v = 0.125 then 0.0625; AMSGrad keeps
        // 0.125; lr 0.1, eps 0. Step 2 moves by 0.1 * 0 = 0, so the test uses g = 0.5, 0.1:
        // v = 0.125, then 0.0625 + 0.005 = 0.0675 < 0.125 (kept); bc2 = 0.75;
        // p = 0.9 - 0.1 * 0.1 / (sqrt(0.125) / sqrt(0.75)) = 0.9 - 0.01 / 0.40825 = 0.875505
        let mut m = scalar::<f64>(1.0);
        let mut opt = Adam::new(0.1).betas(0.0, 0.5).eps(0.0).amsgrad(true);
        for g in [0.5, 0.1] {
            m.0[0].1.grad_mut()[0] = g;
            opt.step(&mut m).unwrap();
        }
        let expected = 0.9 - 0.01 / (0.125f64.sqrt() / 0.75f64.sqrt());
        assert_close!(m.0[0].1.value(), [expected], 1e-14);
        assert_close!(expected, 0.875505, 1e-6);
    }

    #[test]
    fn invalid_configuration_is_an_error() {
        let mut m = scalar::<f64>(1.0);
        let err = Adam::new(0.1).betas(0.9, 1.0).step(&mut m).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid argument to adam: beta2 must be in [0, 1), got 1"
        );
        assert!(Adam::new(0.1).eps(-1.0).step(&mut m).is_err());
        assert!(Adam::new(-1.0).step(&mut m).is_err());
        assert!(Adam::new(0.1).weight_decay(-0.1).step(&mut m).is_err());
        assert_eq!(
            Adam::<f64>::new(1e-3).config(),
            [
                ("lr", 1e-3),
                ("beta1", 0.9),
                ("beta2", 0.999),
                ("eps", 1e-8),
                ("weight_decay", 0.0),
                ("amsgrad", 0.0),
                ("decay_matrices_only", 0.0)
            ]
        );
    }

    #[test]
    fn literal_coupled_decay_of_matrices_only() {
        // the matrix follows literal_coupled_weight_decay (0.9, 0.800054...), the vector
        // the undecayed constant-gradient path (lr per step: 0.9, 0.8)
        let mut opt = Adam::new(0.1)
            .betas(0.5, 0.5)
            .eps(0.0)
            .weight_decay(1.0)
            .decay_matrices_only();
        assert_eq!(opt.scope(), DecayScope::MatricesOnly);
        assert_eq!(opt.config()[6], ("decay_matrices_only", 1.0));
        let expected = 0.9 - 0.1 * (1.075 / 0.75) / (1.5425f64 / 0.75).sqrt();
        let got = matrix_and_vector::<f64>(&mut opt, 2);
        assert_close!(got[0].0, 0.9, 1e-14);
        assert_close!(got[1].0, expected, 1e-14);
        assert_close!(got[0].1, 0.9, 1e-14);
        assert_close!(got[1].1, 0.8, 1e-14);
        // AMSGrad takes the same decision per parameter
        let mut opt = Adam::new(0.1)
            .betas(0.5, 0.5)
            .eps(0.0)
            .weight_decay(1.0)
            .amsgrad(true)
            .decay_scope(DecayScope::MatricesOnly);
        let got = matrix_and_vector::<f64>(&mut opt, 2);
        assert_close!(got[1].0, expected, 1e-14);
        assert_close!(got[1].1, 0.8, 1e-14);
        // the default scope decays both
        let mut opt = Adam::new(0.1).betas(0.5, 0.5).eps(0.0).weight_decay(1.0);
        let got = matrix_and_vector::<f64>(&mut opt, 2);
        assert_close!(got[1].0, expected, 1e-14);
        assert_close!(got[1].1, expected, 1e-14);
    }

    #[test]
    fn state_serialised_before_the_decay_scope_still_loads() {
        let mut m = scalar::<f64>(1.0);
        let mut opt = Adam::new(0.1).weight_decay(0.1);
        m.0[0].1.grad_mut()[0] = 0.5;
        opt.step(&mut m).unwrap();
        let json = serde_json::to_string(&opt).unwrap();
        assert!(json.contains(r#""decay_scope":"All""#), "{json}");
        let old = json.replace(r#""decay_scope":"All","#, "");
        assert_ne!(old, json);
        let back: Adam<f64> = serde_json::from_str(&old).unwrap();
        assert_eq!(back, opt);
        assert_eq!(back.scope(), DecayScope::All);
        let only = serde_json::to_string(&opt.clone().decay_matrices_only()).unwrap();
        let back: Adam<f64> = serde_json::from_str(&only).unwrap();
        assert_eq!(back.scope(), DecayScope::MatricesOnly);
    }

    #[test]
    fn corrupt_state_is_an_error() {
        let mut m = scalar::<f64>(1.0);
        let mut opt = Adam::new(0.1);
        opt.step(&mut m).unwrap();
        let json = serde_json::to_string(&opt).unwrap();
        let bad = json.replace("\"exp_avg\":[[", "\"exp_avg\":[[1.0,");
        assert_ne!(bad, json);
        let mut bad: Adam<f64> = serde_json::from_str(&bad).unwrap();
        let err = bad.step(&mut m).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid argument to adam: state `exp_avg` of `w` has 2 elements, expected 1"
        );
    }
}
