//! One-hot targets from class labels, for losses that take probabilities
//! ([`crate::ops::cross_entropy_loss`], [`crate::ops::softmax_cross_entropy`]).

use crate::{check_len, invalid, Float, Result};

/// The `N`-vector with 1 at `label` and 0 elsewhere. `label` is a `u8` or a `usize`.
///
/// ```
/// use nanograd_runtime::data::one_hot;
/// let y: [f32; 10] = one_hot(3u8)?;
/// assert_eq!(y, [0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]);
/// assert!(one_hot::<f32, 10, _>(10u8).is_err());
/// # Ok::<(), nanograd_runtime::Error>(())
/// ```
///
/// # Errors
/// [`crate::Error::InvalidArgument`] if `label >= N`.
pub fn one_hot<T: Float, const N: usize, L: Into<usize>>(label: L) -> Result<[T; N]> {
    let mut y = [T::zero(); N];
    set_one_hot(label.into(), &mut y)?;
    Ok(y)
}

/// `dst[k] = one_hot(labels[k])` for every `k`, into a buffer the caller owns.
///
/// ```
/// use nanograd_runtime::data::one_hot_into;
/// let mut y = [[9.0f64; 3]; 2];
/// one_hot_into(&[2u8, 0], &mut y)?;
/// assert_eq!(y, [[0.0, 0.0, 1.0], [1.0, 0.0, 0.0]]);
/// # Ok::<(), nanograd_runtime::Error>(())
/// ```
///
/// # Errors
/// [`crate::Error::LengthMismatch`] if `dst` has not one row per label;
/// [`crate::Error::InvalidArgument`] if a label is `>= N`.
pub fn one_hot_into<T: Float, const N: usize, L: Copy + Into<usize>>(
    labels: &[L],
    dst: &mut [[T; N]],
) -> Result<()> {
    check_len("one_hot", "dst", labels.len(), dst.len())?;
    for (&l, row) in labels.iter().zip(dst.iter_mut()) {
        set_one_hot(l.into(), row)?;
    }
    Ok(())
}

fn set_one_hot<T: Float>(label: usize, row: &mut [T]) -> Result<()> {
    if label >= row.len() {
        let msg = format!("label {label} is out of range for {} classes", row.len());
        return Err(invalid("one_hot", msg));
    }
    row.fill(T::zero());
    row[label] = T::one();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literal_and_errors() {
        let y: [f64; 4] = one_hot(0usize).unwrap();
        assert_eq!(y, [1.0, 0.0, 0.0, 0.0]);
        let y: [f32; 2] = one_hot(1u8).unwrap();
        assert_eq!(y, [0.0, 1.0]);
        assert_eq!(
            one_hot::<f32, 10, _>(12u8).unwrap_err().to_string(),
            "invalid argument to one_hot: label 12 is out of range for 10 classes"
        );
        let mut dst = [[5.0f32; 3]; 2];
        assert_eq!(
            one_hot_into(&[0u8], &mut dst).unwrap_err().to_string(),
            "length mismatch in one_hot: `dst` has 2 elements, expected 1"
        );
        assert!(one_hot_into(&[0u8, 3], &mut dst).is_err());
        one_hot_into(&[1usize, 1], &mut dst).unwrap();
        assert_eq!(dst, [[0.0, 1.0, 0.0], [0.0, 1.0, 0.0]]);
    }
}
