//! Test helpers shared by the runtime's and the generated code's tests: [`assert_close!`](crate::assert_close)
//! and central-difference gradient checks.

use crate::Float;
use rand::{rngs::StdRng, RngExt, SeedableRng};

/// Values that [`assert_close!`](crate::assert_close) can compare: scalars, slices, arrays and vectors of floats.
pub trait CloseValues {
    /// The values as `f64`, in order.
    fn close_values(&self) -> Vec<f64>;
}

impl<T: Float> CloseValues for T {
    fn close_values(&self) -> Vec<f64> {
        vec![self.to_f64()]
    }
}
impl<T: Float> CloseValues for [T] {
    fn close_values(&self) -> Vec<f64> {
        self.iter().map(|x| x.to_f64()).collect()
    }
}
impl<T: Float, const N: usize> CloseValues for [T; N] {
    fn close_values(&self) -> Vec<f64> {
        self[..].close_values()
    }
}
impl<T: Float> CloseValues for Vec<T> {
    fn close_values(&self) -> Vec<f64> {
        self[..].close_values()
    }
}
/// Compares two sequences elementwise: `|a - e| <= tol * max(1, |e|)`. Returns a report of
/// the first mismatch, or of differing lengths.
pub fn compare_close(actual: &[f64], expected: &[f64], tol: f64) -> Result<(), String> {
    if actual.len() != expected.len() {
        return Err(format!(
            "lengths differ: actual has {}, expected has {}",
            actual.len(),
            expected.len()
        ));
    }
    for (i, (&a, &e)) in actual.iter().zip(expected).enumerate() {
        let ok = (a - e).abs() <= tol * e.abs().max(1.0) || (a.is_nan() && e.is_nan());
        if !ok {
            return Err(format!(
                "at index {i}: actual {a:e}, expected {e:e} (difference {:e}, tolerance {tol:e})",
                (a - e).abs()
            ));
        }
    }
    Ok(())
}

/// Asserts that two floats, or two sequences of floats, agree to a tolerance (default 1e-6)
/// relative to `max(1, |expected|)`.
///
/// ```
/// use nanograd_runtime::assert_close;
/// assert_close!([1.0f32, 2.0], vec![1.0f64, 2.0 + 1e-9]);
/// assert_close!(0.1f64 + 0.2, 0.3, 1e-12);
/// ```
#[macro_export]
macro_rules! assert_close {
    ($actual:expr, $expected:expr $(,)?) => {
        $crate::assert_close!($actual, $expected, 1e-6)
    };
    ($actual:expr, $expected:expr, $tol:expr $(,)?) => {{
        use $crate::testing::CloseValues as _;
        let (a, e) = (($actual).close_values(), ($expected).close_values());
        if let Err(msg) = $crate::testing::compare_close(&a, &e, $tol) {
            panic!(
                "assert_close!({}, {}) failed {}\n  actual:   {:?}\n  expected: {:?}",
                stringify!($actual),
                stringify!($expected),
                msg,
                a,
                e
            );
        }
    }};
}

/// The central-difference gradient of `f` at `x`: `(f(x + h e_i) - f(x - h e_i)) / 2h`.
pub fn numeric_grad(mut f: impl FnMut(&[f64]) -> f64, x: &[f64], h: f64) -> Vec<f64> {
    let mut xp = x.to_vec();
    (0..x.len())
        .map(|i| {
            let orig = xp[i];
            xp[i] = orig + h;
            let up = f(&xp);
            xp[i] = orig - h;
            let down = f(&xp);
            xp[i] = orig;
            (up - down) / (2.0 * h)
        })
        .collect()
}

/// Asserts that `analytic` is the gradient of `f` at `x`, by central differences with step
/// 1e-6 and tolerance `tol` relative to `max(1, |numeric|)`. `f` should be a scalar function
/// in `f64`, usually `sum(w * op(x))` with random weights `w`, so that `analytic` is the
/// backward kernel's result for the upstream gradient `w`.
#[track_caller]
pub fn assert_gradient(
    name: &str,
    f: impl FnMut(&[f64]) -> f64,
    x: &[f64],
    analytic: &[f64],
    tol: f64,
) {
    let numeric = numeric_grad(f, x, 1e-6);
    if let Err(msg) = compare_close(analytic, &numeric, tol) {
        panic!(
            "gradient check of {name} failed {msg}\n  analytic: {analytic:?}\n  numeric:  {numeric:?}"
        );
    }
}

/// `n` uniform values in `[lo, hi)` from a seeded generator, for reproducible tests.
pub fn random_vec<T: Float>(seed: u64, n: usize, lo: f64, hi: f64) -> Vec<T> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..n)
        .map(|_| T::from_f64(rng.random_range(lo..hi)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numeric_grad_of_a_cubic() {
        // f(x) = x0^3 + 2 x0 x1, grad = [3 x0^2 + 2 x1, 2 x0] = [3*4 + 6, 4] at (2, 3)
        let g = numeric_grad(|x| x[0].powi(3) + 2.0 * x[0] * x[1], &[2.0, 3.0], 1e-6);
        assert_close!(g, [18.0f64, 4.0], 1e-7);
    }

    #[test]
    #[should_panic(expected = "at index 1")]
    fn assert_close_reports_the_index() {
        assert_close!([1.0f64, 2.0], [1.0f64, 2.1]);
    }

    #[test]
    #[should_panic(expected = "gradient check of wrong failed")]
    fn a_wrong_gradient_fails() {
        assert_gradient("wrong", |x| x[0] * x[0], &[3.0], &[5.0], 1e-6);
    }
}
