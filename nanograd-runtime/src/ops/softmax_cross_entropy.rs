//! Softmax cross-entropy on logits, fused and stable, as PyTorch's `F.cross_entropy` with its
//! default `reduction="mean"`: for a row-major `[rows, cols]` buffer of logits `x`,
//!
//! `L = (1/rows) Σ_r -Σ_j t_rj · log_softmax(x_r)_j`, where
//! `log_softmax(x)_j = (x_j - m) - ln Σ_k e^(x_k - m)`, `m = max_k x_k`,
//!
//! so logits of ±1000 give exact, finite losses. The target `t` is either a probability row
//! per sample ([`softmax_cross_entropy`], one-hot or soft) or a class index per sample, `t`
//! one-hot at that class: `usize` labels ([`softmax_cross_entropy_labels`]) or `u32` targets
//! such as the next tokens of a language model ([`softmax_cross_entropy_indices`]), where
//! `L = (1/rows) Σ_r -log_softmax(x_r)_{t_r}`.
//!
//! Derivatives: `∂L/∂x_rj = (softmax(x_r)_j · Σ_k t_rk - t_rj) / rows` and
//! `∂L/∂t_rj = -log_softmax(x_r)_j / rows`; with class indices
//! `∂L/∂x_rj = (softmax(x_r)_j - [j = t_r]) / rows`. The backward passes recompute the row
//! maximum and sum rather than take saved statistics; rows of up to a fixed width keep
//! their exponentials in a stack buffer, so each logit costs one exponential.

use super::row_count;
use super::softmax::{exps_into, max_and_sum_exp};
use crate::{check_len, invalid, Float, Result};

/// Classes per row whose exponentials the backward pass keeps on the stack.
const EXPS: usize = 64;

/// The number of rows, checked to be at least 1 (the loss is a mean over rows).
fn batch_rows(op: &'static str, len: usize, cols: usize) -> Result<usize> {
    let rows = row_count(op, "logits", len, cols)?;
    if rows == 0 {
        return Err(invalid(
            op,
            "`logits` is empty: the mean over 0 rows is undefined",
        ));
    }
    Ok(rows)
}

/// A class index per row: `usize` labels or `u32` targets (token ids).
trait ClassIndex: Copy + core::fmt::Display {
    fn index(self) -> usize;
}

impl ClassIndex for usize {
    #[inline]
    fn index(self) -> usize {
        self
    }
}

impl ClassIndex for u32 {
    #[inline]
    fn index(self) -> usize {
        self as usize
    }
}

/// How one flavour of the class-index loss names itself and its indices in errors.
struct Names {
    op: &'static str,
    /// the buffer: `labels`
    what: &'static str,
    /// one of its entries: `label`
    noun: &'static str,
}

const LABELS: Names = Names {
    op: "softmax_cross_entropy_labels",
    what: "labels",
    noun: "label",
};

const INDICES: Names = Names {
    op: "softmax_cross_entropy_indices",
    what: "targets",
    noun: "target",
};

/// Classes per row whose exponentials the class-index backward keeps on the stack, so that
/// it takes one exponential per logit (wider rows take two).
const CLASS_EXPS: usize = 1024;

/// Checks the logits, the number of class indices and every index against `cols` (naming
/// the first bad row); returns the number of rows.
fn check_classes<L: ClassIndex>(
    names: &Names,
    logits: usize,
    classes: &[L],
    cols: usize,
) -> Result<usize> {
    let rows = batch_rows(names.op, logits, cols)?;
    check_len(names.op, names.what, rows, classes.len())?;
    match classes.iter().position(|&l| l.index() >= cols) {
        Some(r) => Err(invalid(
            names.op,
            format!(
                "row {r} has {} {}, expected a class index below cols = {cols}",
                names.noun, classes[r]
            ),
        )),
        None => Ok(rows),
    }
}

/// The loss with one class index per row, for both flavours.
fn class_loss<T: Float, L: ClassIndex>(
    names: &Names,
    logits: &[T],
    classes: &[L],
    cols: usize,
) -> Result<T> {
    let rows = check_classes(names, logits.len(), classes, cols)?;
    let mut total = T::zero();
    for (xr, &l) in logits.chunks_exact(cols).zip(classes) {
        let (m, s) = max_and_sum_exp(xr);
        total -= (xr[l.index()] - m) - s.ln();
    }
    Ok(total / T::from_usize(rows))
}

/// The gradient with one class index per row, for both flavours: per row a pass for the
/// maximum, one that computes and sums the exponentials into a stack buffer, and one that
/// accumulates `(e_j / s - [j = label]) · dy / rows`.
fn class_backward<T: Float, L: ClassIndex>(
    names: &Names,
    logits: &[T],
    classes: &[L],
    cols: usize,
    dy: T,
    dlogits: &mut [T],
) -> Result<()> {
    check_len(names.op, "dlogits", logits.len(), dlogits.len())?;
    let rows = check_classes(names, logits.len(), classes, cols)?;
    let c = dy / T::from_usize(rows);
    let mut exps = [T::zero(); CLASS_EXPS];
    for ((xr, dr), &l) in logits
        .chunks_exact(cols)
        .zip(dlogits.chunks_exact_mut(cols))
        .zip(classes)
    {
        if cols <= CLASS_EXPS {
            let e = &mut exps[..cols];
            let (_, s) = exps_into(xr, e);
            let k = c / s;
            for (g, &ej) in dr.iter_mut().zip(e.iter()) {
                *g += ej * k;
            }
        } else {
            let (m, s) = max_and_sum_exp(xr);
            let k = c / s;
            for (g, &xj) in dr.iter_mut().zip(xr) {
                *g += (xj - m).exp() * k;
            }
        }
        dr[l.index()] -= c;
    }
    Ok(())
}

/// `mean over rows of -Σ_j target_j · log_softmax(logits)_j`, with `target` a probability row
/// (one-hot or soft) per sample.
pub fn softmax_cross_entropy<T: Float>(logits: &[T], target: &[T], cols: usize) -> Result<T> {
    let op = "softmax_cross_entropy";
    check_len(op, "target", logits.len(), target.len())?;
    let rows = batch_rows(op, logits.len(), cols)?;
    let mut total = T::zero();
    for (xr, tr) in logits.chunks_exact(cols).zip(target.chunks_exact(cols)) {
        let (m, s) = max_and_sum_exp(xr);
        let ln_s = s.ln();
        for (&xj, &tj) in xr.iter().zip(tr) {
            total -= tj * ((xj - m) - ln_s);
        }
    }
    Ok(total / T::from_usize(rows))
}

/// `dlogits += (softmax(logits) · Σ_j target_j - target) / rows · dy` and
/// `dtarget += -log_softmax(logits) / rows · dy`, row by row, for the upstream gradient `dy`
/// of the scalar loss. `None` skips a gradient.
pub fn softmax_cross_entropy_backward<T: Float>(
    logits: &[T],
    target: &[T],
    cols: usize,
    dy: T,
    mut dlogits: Option<&mut [T]>,
    mut dtarget: Option<&mut [T]>,
) -> Result<()> {
    let op = "softmax_cross_entropy";
    let n = logits.len();
    check_len(op, "target", n, target.len())?;
    if let Some(d) = dlogits.as_deref() {
        check_len(op, "dlogits", n, d.len())?;
    }
    if let Some(d) = dtarget.as_deref() {
        check_len(op, "dtarget", n, d.len())?;
    }
    let rows = batch_rows(op, n, cols)?;
    let c = dy / T::from_usize(rows);
    for (r, (xr, tr)) in logits
        .chunks_exact(cols)
        .zip(target.chunks_exact(cols))
        .enumerate()
    {
        let span = r * cols..(r + 1) * cols;
        // rows of up to EXPS classes keep their exponentials, which the gradient reuses
        let mut exps = [T::zero(); EXPS];
        let (m, s) = if cols <= EXPS {
            exps_into(xr, &mut exps[..cols])
        } else {
            max_and_sum_exp(xr)
        };
        if let Some(d) = dlogits.as_deref_mut() {
            let t_sum: T = tr.iter().copied().sum();
            let k = t_sum / s;
            let d = &mut d[span.clone()];
            if cols <= EXPS {
                for ((g, &e), &tj) in d.iter_mut().zip(&exps).zip(tr) {
                    *g += (e * k - tj) * c;
                }
            } else {
                for ((g, &xj), &tj) in d.iter_mut().zip(xr).zip(tr) {
                    *g += ((xj - m).exp() * k - tj) * c;
                }
            }
        }
        if let Some(d) = dtarget.as_deref_mut() {
            let ln_s = s.ln();
            for (g, &xj) in d[span].iter_mut().zip(xr) {
                *g -= ((xj - m) - ln_s) * c;
            }
        }
    }
    Ok(())
}

/// `mean over rows r of -log_softmax(logits_r)[labels[r]]`: PyTorch's `F.cross_entropy` with
/// class indices. A label `>= cols` is an error naming its row.
pub fn softmax_cross_entropy_labels<T: Float>(
    logits: &[T],
    labels: &[usize],
    cols: usize,
) -> Result<T> {
    class_loss(&LABELS, logits, labels, cols)
}

/// `dlogits += (softmax(logits) - onehot(labels)) / rows · dy`, for the upstream gradient `dy`
/// of the scalar loss.
pub fn softmax_cross_entropy_labels_backward<T: Float>(
    logits: &[T],
    labels: &[usize],
    cols: usize,
    dy: T,
    dlogits: &mut [T],
) -> Result<()> {
    class_backward(&LABELS, logits, labels, cols, dy, dlogits)
}

/// Mean over rows `r` of `-log_softmax(logits_r)[targets[r]]` with `u32` class indices:
/// PyTorch's `F.cross_entropy(logits.view(-1, cols), targets.view(-1))`, the language-model
/// loss over every position of a batch of sequences. A target `>= cols` is an error naming
/// the target, its row and `cols`.
pub fn softmax_cross_entropy_indices<T: Float>(
    logits: &[T],
    targets: &[u32],
    cols: usize,
) -> Result<T> {
    class_loss(&INDICES, logits, targets, cols)
}

/// `dlogits += (softmax(logits) - onehot(targets)) / rows · dy`, for the upstream gradient
/// `dy` of the scalar loss.
pub fn softmax_cross_entropy_indices_backward<T: Float>(
    logits: &[T],
    targets: &[u32],
    cols: usize,
    dy: T,
    dlogits: &mut [T],
) -> Result<()> {
    class_backward(&INDICES, logits, targets, cols, dy, dlogits)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::assert_close;
    use crate::testing::{assert_gradient, random_vec};

    // Two rows of two logits: [0, ln 3] has softmax [1/4, 3/4] and log_softmax
    // [-ln 4, ln 3 - ln 4]; [1000, 1000 + ln 3] has the same (1000 is subtracted first).
    fn logits() -> [f64; 4] {
        let l3 = 3.0f64.ln();
        [0.0, l3, 1000.0, 1000.0 + l3]
    }

    #[test]
    fn literal_with_probability_targets() {
        // targets [0, 1] and [1/2, 1/2]: row losses ln 4 - ln 3 and ln 4 - (ln 3)/2; mean of the two
        let (l3, l4) = (3.0f64.ln(), 4.0f64.ln());
        let t = [0.0, 1.0, 0.5, 0.5];
        let loss = softmax_cross_entropy(&logits(), &t, 2).unwrap();
        assert_close!(loss, (2.0 * l4 - 1.5 * l3) / 2.0, 1e-12);
        // dy = 4, rows = 2, so factor 2: dlogits = 2 (softmax · 1 - t) = 2 [1/4, -1/4 | -1/4, 1/4]
        // dtarget = -2 log_softmax = 2 [ln 4, ln 4 - ln 3 | ln 4, ln 4 - ln 3]; onto 1
        let (mut dl, mut dt) = ([1.0; 4], [1.0; 4]);
        softmax_cross_entropy_backward(&logits(), &t, 2, 4.0, Some(&mut dl), Some(&mut dt))
            .unwrap();
        assert_close!(dl, [1.5, 0.5, 0.5, 1.5], 1e-12);
        let (a, b) = (1.0 + 2.0 * l4, 1.0 + 2.0 * (l4 - l3));
        assert_close!(dt, [a, b, a, b], 1e-12);
    }

    #[test]
    fn soft_targets_that_do_not_sum_to_one() {
        // t = [1, 1] (Σ t = 2) on [0, ln 3]: L = ln 4 + (ln 4 - ln 3);
        // dlogits = softmax · 2 - t = [1/2 - 1, 3/2 - 1] = [-1/2, 1/2]
        let (l3, l4) = (3.0f64.ln(), 4.0f64.ln());
        let x = &logits()[..2];
        assert_close!(
            softmax_cross_entropy(x, &[1.0, 1.0], 2).unwrap(),
            2.0 * l4 - l3,
            1e-15
        );
        let mut dl = [0.0; 2];
        softmax_cross_entropy_backward(x, &[1.0, 1.0], 2, 1.0, Some(&mut dl), None).unwrap();
        assert_close!(dl, [-0.5, 0.5], 1e-15);
    }

    #[test]
    fn extreme_logits_stay_finite_and_exact() {
        // [1000, -1000] with target [0, 1]: log_softmax = [0, -2000], L = 2000;
        // softmax = [1, 0], dlogits = [1, -1]
        let x = [1000.0f64, -1000.0];
        assert_eq!(softmax_cross_entropy(&x, &[0.0, 1.0], 2).unwrap(), 2000.0);
        assert_eq!(softmax_cross_entropy_labels(&x, &[1], 2).unwrap(), 2000.0);
        let mut dl = [0.0; 2];
        softmax_cross_entropy_labels_backward(&x, &[1], 2, 1.0, &mut dl).unwrap();
        assert_eq!(dl, [1.0, -1.0]);
    }

    #[test]
    fn literal_with_labels() {
        // labels [1, 0]: row losses ln 4 - ln 3 and ln 4; mean (2 ln 4 - ln 3)/2
        let (l3, l4) = (3.0f64.ln(), 4.0f64.ln());
        let loss = softmax_cross_entropy_labels(&logits(), &[1, 0], 2).unwrap();
        assert_close!(loss, (2.0 * l4 - l3) / 2.0, 1e-12);
        // dy = 2, rows = 2: dlogits = softmax - onehot = [1/4, -1/4 | -3/4, 3/4]; onto 1
        let mut dl = [1.0; 4];
        softmax_cross_entropy_labels_backward(&logits(), &[1, 0], 2, 2.0, &mut dl).unwrap();
        assert_close!(dl, [1.25, 0.75, 0.25, 1.75], 1e-12);
    }

    #[test]
    fn f32_literal() {
        // [0, ln 3] with target [0, 1] and with label 1: L = ln(4/3); dlogits = [1/4, -1/4]
        let x = [0.0f32, 3.0f32.ln()];
        let want = (4.0f32 / 3.0).ln();
        assert_close!(softmax_cross_entropy(&x, &[0.0, 1.0], 2).unwrap(), want);
        assert_close!(softmax_cross_entropy_labels(&x, &[1], 2).unwrap(), want);
        let mut dl = [0.0f32; 2];
        softmax_cross_entropy_backward(&x, &[0.0, 1.0], 2, 1.0, Some(&mut dl), None).unwrap();
        assert_close!(dl, [0.25f32, -0.25]);
        let mut dl = [0.0f32; 2];
        softmax_cross_entropy_labels_backward(&x, &[1], 2, 1.0, &mut dl).unwrap();
        assert_close!(dl, [0.25f32, -0.25]);
    }

    #[test]
    fn gradcheck() {
        gradcheck_with(3, 4, 1e-7);
        // wider than the rows whose exponentials the backward keeps on the stack (a sum of
        // more terms: the central differences themselves are good to about 1e-7)
        gradcheck_with(2, EXPS + 6, 1e-6);
    }

    fn gradcheck_with(rows: usize, cols: usize, tol: f64) {
        let x: Vec<f64> = random_vec(23, rows * cols, -3.0, 3.0);
        let t: Vec<f64> = random_vec(24, rows * cols, 0.0, 1.0);
        let dy = 1.7;
        let (mut dl, mut dt) = (vec![0.0; rows * cols], vec![0.0; rows * cols]);
        softmax_cross_entropy_backward(&x, &t, cols, dy, Some(&mut dl), Some(&mut dt)).unwrap();
        let by_logits = |x: &[f64]| dy * softmax_cross_entropy(x, &t, cols).unwrap();
        assert_gradient("softmax_cross_entropy (logits)", by_logits, &x, &dl, tol);
        let by_target = |t: &[f64]| dy * softmax_cross_entropy(&x, t, cols).unwrap();
        assert_gradient("softmax_cross_entropy (target)", by_target, &t, &dt, tol);

        let labels: Vec<usize> = (0..rows).map(|r| (3 * r + 3) % cols).collect();
        let mut dl = vec![0.0; rows * cols];
        softmax_cross_entropy_labels_backward(&x, &labels, cols, dy, &mut dl).unwrap();
        let by_logits = |x: &[f64]| dy * softmax_cross_entropy_labels(x, &labels, cols).unwrap();
        assert_gradient("softmax_cross_entropy_labels", by_logits, &x, &dl, tol);
    }

    #[test]
    fn literal_with_indices() {
        // the same as literal_with_labels, with u32 targets: [1, 0]
        let (l3, l4) = (3.0f64.ln(), 4.0f64.ln());
        let loss = softmax_cross_entropy_indices(&logits(), &[1, 0], 2).unwrap();
        assert_close!(loss, (2.0 * l4 - l3) / 2.0, 1e-12);
        let mut dl = [1.0; 4];
        softmax_cross_entropy_indices_backward(&logits(), &[1, 0], 2, 2.0, &mut dl).unwrap();
        assert_close!(dl, [1.25, 0.75, 0.25, 1.75], 1e-12);
        // f32, and a row of 65 equal logits (the width of a character vocabulary): L = ln 65,
        // dlogits = 1/65 everywhere but the target, 1/65 - 1 there
        let x = [0.5f32; 65];
        let loss = softmax_cross_entropy_indices(&x, &[64], 65).unwrap();
        assert_close!(loss, 65.0f32.ln());
        let mut dl = [0.0f32; 65];
        softmax_cross_entropy_indices_backward(&x, &[64], 65, 1.0, &mut dl).unwrap();
        let mut want = [1.0f32 / 65.0; 65];
        want[64] -= 1.0;
        assert_close!(dl, want);
    }

    #[test]
    fn indices_gradcheck() {
        // narrow rows, the GPT width, and rows wider than the stack buffer of exponentials
        for (rows, cols, tol) in [(3, 4, 1e-7), (4, 65, 1e-7), (2, CLASS_EXPS + 3, 1e-6)] {
            let x: Vec<f64> = random_vec(31, rows * cols, -3.0, 3.0);
            let targets: Vec<u32> = (0..rows).map(|r| ((7 * r + 2) % cols) as u32).collect();
            let dy = -0.6;
            let mut dl = vec![0.0; rows * cols];
            softmax_cross_entropy_indices_backward(&x, &targets, cols, dy, &mut dl).unwrap();
            let f = |x: &[f64]| dy * softmax_cross_entropy_indices(x, &targets, cols).unwrap();
            assert_gradient("softmax_cross_entropy_indices", f, &x, &dl, tol);
            // the same as the usize labels
            let labels: Vec<usize> = targets.iter().map(|&t| t as usize).collect();
            let mut dl2 = vec![0.0; rows * cols];
            softmax_cross_entropy_labels_backward(&x, &labels, cols, dy, &mut dl2).unwrap();
            assert_eq!(dl, dl2);
        }
    }

    #[test]
    fn bad_indices_are_an_error() {
        let err = softmax_cross_entropy_indices(&[0.0f64; 6], &[0, 3], 3).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid argument to softmax_cross_entropy_indices: row 1 has target 3, expected a class index below cols = 3"
        );
        let err = softmax_cross_entropy_indices(&[0.0f64; 6], &[0, 1, 2], 3).unwrap_err();
        assert_eq!(
            err.to_string(),
            "length mismatch in softmax_cross_entropy_indices: `targets` has 3 elements, expected 2"
        );
        let err = softmax_cross_entropy_indices(&[0.0f64; 7], &[0, 1], 3).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid argument to softmax_cross_entropy_indices: `logits` has 7 elements, not a multiple of the row length 3"
        );
        assert!(softmax_cross_entropy_indices::<f64>(&[], &[], 3).is_err());
        assert!(softmax_cross_entropy_indices::<f64>(&[0.0; 3], &[0], 0).is_err());
        let mut dl = [0.0f64; 5];
        let err = softmax_cross_entropy_indices_backward(&[1.0; 6], &[0, 1], 3, 1.0, &mut dl)
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "length mismatch in softmax_cross_entropy_indices: `dlogits` has 5 elements, expected 6"
        );
        // a bad target leaves the gradient untouched
        let mut dl = [0.0f64; 6];
        let err =
            softmax_cross_entropy_indices_backward(&[1.0; 6], &[2, u32::MAX], 3, 1.0, &mut dl)
                .unwrap_err();
        assert!(
            err.to_string().contains("row 1 has target 4294967295"),
            "{err}"
        );
        assert_eq!(dl, [0.0; 6]);
    }

    #[test]
    fn bad_input_is_an_error() {
        let err = softmax_cross_entropy(&[0.0f64; 6], &[0.0; 6], 4).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid argument to softmax_cross_entropy: `logits` has 6 elements, not a multiple of the row length 4"
        );
        let err = softmax_cross_entropy(&[0.0f64; 6], &[0.0; 5], 3).unwrap_err();
        assert_eq!(
            err.to_string(),
            "length mismatch in softmax_cross_entropy: `target` has 5 elements, expected 6"
        );
        assert!(softmax_cross_entropy::<f64>(&[], &[], 3).is_err());
        let mut dt = [0.0f64; 4];
        let err = softmax_cross_entropy_backward(&[0.0; 6], &[0.0; 6], 3, 1.0, None, Some(&mut dt));
        assert_eq!(
            err.unwrap_err().to_string(),
            "length mismatch in softmax_cross_entropy: `dtarget` has 4 elements, expected 6"
        );

        let err = softmax_cross_entropy_labels(&[0.0f64; 6], &[0, 3], 3).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid argument to softmax_cross_entropy_labels: row 1 has label 3, expected a class index below cols = 3"
        );
        let err = softmax_cross_entropy_labels(&[0.0f64; 6], &[0], 3).unwrap_err();
        assert_eq!(
            err.to_string(),
            "length mismatch in softmax_cross_entropy_labels: `labels` has 1 elements, expected 2"
        );
        // a bad label leaves the gradient untouched
        let mut dl = [0.0f64; 6];
        assert!(
            softmax_cross_entropy_labels_backward(&[1.0; 6], &[2, 7], 3, 1.0, &mut dl).is_err()
        );
        assert_eq!(dl, [0.0; 6]);
    }
}
