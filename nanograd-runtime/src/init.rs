//! Weight initialisers: fill a buffer with random values whose scale depends on the layer's
//! fan-in and fan-out, so that activations neither explode nor vanish with depth.
//!
//! | initialiser | distribution | used by |
//! | --- | --- | --- |
//! | [`xavier_uniform`] (Glorot) | U(−a, a), a = √(6 / (fan_in + fan_out)) | `Dense` (seed) |
//! | [`xavier_normal`] | N(0, 2 / (fan_in + fan_out)) | |
//! | [`kaiming_normal`] (He) | N(0, 2 / fan_in) | `Conv2d` (seed) |
//! | [`kaiming_uniform`] | U(−b, b), b = √(6 / fan_in) | |
//!
//! The Kaiming variants use PyTorch's ReLU gain √2 and `mode="fan_in"`. [`fans`] computes
//! the fans of a weight shape as PyTorch does (`[out, in, k, k]` has fan_in = in·k·k).
//! Values are drawn in `f64` and rounded to `T`; normal draws use the Box–Muller transform.

use rand::{Rng, RngExt};

use crate::{fmt_shape, invalid, Float, Result};

/// `(fan_in, fan_out)` of a weight of shape `[out, in, k..]`: `in · Πk` and `out · Πk`
/// (PyTorch's `_calculate_fan_in_and_fan_out`). Errors on fewer than two dimensions.
pub fn fans(shape: &[usize]) -> Result<(usize, usize)> {
    match shape {
        [out, inp, kernel @ ..] => {
            let field: usize = kernel.iter().product();
            Ok((inp * field, out * field))
        }
        _ => Err(invalid(
            "fans",
            format!(
                "a weight needs at least 2 dimensions, got {}",
                fmt_shape(shape)
            ),
        )),
    }
}

/// Fills `out` with independent draws from U(lo, hi).
pub fn uniform<T: Float>(lo: f64, hi: f64, rng: &mut impl Rng, out: &mut [T]) -> Result<()> {
    if !(lo.is_finite() && hi.is_finite() && lo < hi) {
        return Err(invalid(
            "uniform",
            format!("needs finite lo < hi, got [{lo}, {hi})"),
        ));
    }
    for v in out {
        *v = T::from_f64(rng.random_range(lo..hi));
    }
    Ok(())
}

/// Fills `out` with independent draws from N(mean, std²), by the Box–Muller transform.
pub fn normal<T: Float>(mean: f64, std: f64, rng: &mut impl Rng, out: &mut [T]) -> Result<()> {
    if !(mean.is_finite() && std.is_finite() && std >= 0.0) {
        return Err(invalid(
            "normal",
            format!("needs a finite mean and std >= 0, got mean {mean}, std {std}"),
        ));
    }
    for pair in out.chunks_mut(2) {
        // u1 in (0, 1] keeps ln(u1) finite
        let u1: f64 = 1.0 - rng.random::<f64>();
        let u2: f64 = rng.random::<f64>();
        let r = (-2.0 * u1.ln()).sqrt();
        let theta = core::f64::consts::TAU * u2;
        pair[0] = T::from_f64(mean + std * r * crate::float::cos(theta));
        if let Some(second) = pair.get_mut(1) {
            *second = T::from_f64(mean + std * r * crate::float::sin(theta));
        }
    }
    Ok(())
}

/// Glorot / Xavier uniform: U(−a, a) with a = √(6 / (fan_in + fan_out)), so that the
/// variance is 2 / (fan_in + fan_out). Errors when both fans are zero.
pub fn xavier_uniform<T: Float>(
    fan_in: usize,
    fan_out: usize,
    rng: &mut impl Rng,
    out: &mut [T],
) -> Result<()> {
    let fan = fan_sum("xavier_uniform", fan_in, fan_out)?;
    let a = (6.0 / fan).sqrt();
    uniform(-a, a, rng, out)
}

/// Glorot / Xavier normal: N(0, 2 / (fan_in + fan_out)). Errors when both fans are zero.
pub fn xavier_normal<T: Float>(
    fan_in: usize,
    fan_out: usize,
    rng: &mut impl Rng,
    out: &mut [T],
) -> Result<()> {
    let fan = fan_sum("xavier_normal", fan_in, fan_out)?;
    normal(0.0, (2.0 / fan).sqrt(), rng, out)
}

/// He / Kaiming normal for ReLU networks: N(0, 2 / fan_in). Errors when `fan_in` is zero.
pub fn kaiming_normal<T: Float>(fan_in: usize, rng: &mut impl Rng, out: &mut [T]) -> Result<()> {
    let fan = positive_fan("kaiming_normal", fan_in)?;
    normal(0.0, (2.0 / fan).sqrt(), rng, out)
}

/// He / Kaiming uniform for ReLU networks: U(−b, b) with b = √(6 / fan_in), variance
/// 2 / fan_in. Errors when `fan_in` is zero.
pub fn kaiming_uniform<T: Float>(fan_in: usize, rng: &mut impl Rng, out: &mut [T]) -> Result<()> {
    let fan = positive_fan("kaiming_uniform", fan_in)?;
    let b = (6.0 / fan).sqrt();
    uniform(-b, b, rng, out)
}

fn fan_sum(op: &'static str, fan_in: usize, fan_out: usize) -> Result<f64> {
    match fan_in.checked_add(fan_out) {
        Some(n) if n > 0 => Ok(n as f64),
        _ => Err(invalid(
            op,
            format!("needs fan_in + fan_out > 0, got fan_in {fan_in}, fan_out {fan_out}"),
        )),
    }
}

fn positive_fan(op: &'static str, fan_in: usize) -> Result<f64> {
    if fan_in == 0 {
        Err(invalid(op, "needs fan_in > 0, got 0"))
    } else {
        Ok(fan_in as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{rngs::StdRng, SeedableRng};

    /// Mean, variance, min, max, and the fraction within one standard deviation of 0.
    fn stats(v: &[f64], std: f64) -> (f64, f64, f64, f64, f64) {
        let n = v.len() as f64;
        let mean = v.iter().sum::<f64>() / n;
        let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n;
        let min = v.iter().cloned().fold(f64::INFINITY, f64::min);
        let max = v.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let within = v.iter().filter(|x| x.abs() < std).count() as f64 / n;
        (mean, var, min, max, within)
    }

    const N: usize = 200_000;

    #[test]
    fn xavier_uniform_statistics() {
        // fan_in 30, fan_out 70: a = sqrt(6/100) = 0.2449..., variance a^2/3 = 2/100 = 0.02
        let mut rng = StdRng::seed_from_u64(1);
        let mut w = vec![0.0f64; N];
        xavier_uniform(30, 70, &mut rng, &mut w).unwrap();
        let a = 0.06f64.sqrt();
        let (mean, var, min, max, within) = stats(&w, a / 3f64.sqrt());
        assert!(mean.abs() < 2e-3, "mean {mean}");
        assert!((var - 0.02).abs() < 0.02 * 0.02, "variance {var}");
        assert!(min >= -a && max < a, "bounds [{min}, {max}] vs {a}");
        assert!(min < -0.99 * a && max > 0.99 * a, "fills the interval");
        // uniform: P(|x| < a/sqrt(3)) = 1/sqrt(3) = 0.577...
        assert!((within - 0.5774).abs() < 0.01, "within {within}");
    }

    #[test]
    fn kaiming_normal_statistics() {
        // fan_in 50: std = sqrt(2/50) = 0.2, variance 0.04
        let mut rng = StdRng::seed_from_u64(2);
        let mut w = vec![0.0f64; N + 1]; // odd length: the last pair is half used
        kaiming_normal(50, &mut rng, &mut w).unwrap();
        let (mean, var, _, _, within) = stats(&w, 0.2);
        assert!(mean.abs() < 2e-3, "mean {mean}");
        assert!((var - 0.04).abs() < 0.04 * 0.02, "variance {var}");
        // normal: P(|x| < sigma) = 0.6827
        assert!((within - 0.6827).abs() < 0.01, "within {within}");
        assert!(w[N] != 0.0);
    }

    #[test]
    fn kaiming_uniform_and_xavier_normal_statistics() {
        // kaiming_uniform, fan_in 24: b = sqrt(6/24) = 0.5, variance b^2/3 = 1/12
        let mut rng = StdRng::seed_from_u64(3);
        let mut w = vec![0.0f32; N];
        kaiming_uniform(24, &mut rng, &mut w).unwrap();
        let w: Vec<f64> = w.iter().map(|&x| x as f64).collect();
        let (mean, var, min, max, _) = stats(&w, 1.0);
        assert!(mean.abs() < 3e-3, "mean {mean}");
        assert!((var - 1.0 / 12.0).abs() < 0.02 / 12.0, "variance {var}");
        assert!(min >= -0.5 && max <= 0.5 && min < -0.49 && max > 0.49);
        // xavier_normal, fans 10 + 40: variance 2/50 = 0.04
        let mut w = vec![0.0f64; N];
        xavier_normal(10, 40, &mut rng, &mut w).unwrap();
        let (mean, var, _, _, within) = stats(&w, 0.2);
        assert!(
            mean.abs() < 2e-3 && (var - 0.04).abs() < 0.04 * 0.02,
            "{mean} {var}"
        );
        assert!((within - 0.6827).abs() < 0.01, "within {within}");
    }

    #[test]
    fn fans_of_weight_shapes() {
        assert_eq!(fans(&[128, 784]).unwrap(), (784, 128));
        // conv [c_out=16, c_in=8, 3, 3]: fan_in = 8*9 = 72, fan_out = 16*9 = 144
        assert_eq!(fans(&[16, 8, 3, 3]).unwrap(), (72, 144));
        assert!(fans(&[5]).unwrap_err().to_string().contains("got [5]"));
    }

    #[test]
    fn bad_arguments_are_errors() {
        let mut rng = StdRng::seed_from_u64(4);
        let mut w = [0.0f64; 4];
        let err = xavier_uniform(0, 0, &mut rng, &mut w).unwrap_err();
        assert!(err.to_string().contains("fan_in 0, fan_out 0"), "{err}");
        assert!(kaiming_normal(0, &mut rng, &mut w).is_err());
        assert!(kaiming_uniform(0, &mut rng, &mut w).is_err());
        assert!(uniform(1.0, 1.0, &mut rng, &mut w).is_err());
        assert!(normal(0.0, -1.0, &mut rng, &mut w).is_err());
        // same seed, same draws
        let (mut a, mut b) = ([0.0f64; 3], [0.0f64; 3]);
        kaiming_normal(3, &mut StdRng::seed_from_u64(9), &mut a).unwrap();
        kaiming_normal(3, &mut StdRng::seed_from_u64(9), &mut b).unwrap();
        assert_eq!(a, b);
    }
}
