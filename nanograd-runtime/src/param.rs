//! [`Param`]: a trainable tensor (value and gradient), and [`Tensor`]: a plain tensor with no
//! gradient, for non-trainable state such as batch-norm running statistics.
//!
//! Both are a shape and a row-major buffer whose length the shape implies; the constructors
//! check it, and so does deserialisation. They print like the seed's `print-tensor`: shape,
//! dtype, then the data (and the gradient) nested by shape, summarised beyond 1000 elements.
//!
//! ```
//! use nanograd_runtime::Param;
//! let mut p = Param::new(&[2, 2], vec![1.0f64, 2.0, 3.0, 4.0])?;
//! p.add_to_grad(&[0.5, 0.5, 0.5, 0.5])?;
//! assert_eq!(p.grad(), &[0.5; 4]);
//! assert_eq!(p.to_string(), "Param shape=[2, 2] dtype=f64\n  value: [[1.0, 2.0],\n          [3.0, 4.0]]\n  grad:  [[0.5, 0.5],\n          [0.5, 0.5]]");
//! # Ok::<(), nanograd_runtime::Error>(())
//! ```

use alloc::vec::Vec;
use core::fmt;
use core::sync::atomic::Ordering;

use serde::{Deserialize, Serialize};

use crate::{blas, check_len, fmt_shape, invalid, Error, Float, Result};

/// Tensors with more elements than this print only their first and last few entries per
/// dimension, as PyTorch does.
const SUMMARY_THRESHOLD: usize = 1000;
/// How many leading and trailing entries per dimension a summarised tensor prints.
const EDGE_ITEMS: usize = 3;

/// The number of elements of `shape`, or an error if it overflows `usize`.
pub(crate) fn numel(op: &'static str, shape: &[usize]) -> Result<usize> {
    shape
        .iter()
        .try_fold(1usize, |n, &d| n.checked_mul(d))
        .ok_or_else(|| {
            invalid(
                op,
                format!(
                    "shape {} has more elements than fit in memory",
                    fmt_shape(shape)
                ),
            )
        })
}

/// A trainable tensor: a shape, its value and its gradient (the seed's tensor with
/// `requires-grad? #t`). Backward passes accumulate into [`Param::grad_mut`]; optimizers read
/// the gradient and update [`Param::value_mut`].
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(try_from = "ParamData<T>", bound(deserialize = "T: Float"))]
pub struct Param<T: Float> {
    shape: Vec<usize>,
    value: Vec<T>,
    grad: Vec<T>,
    /// Names the current state of `value`: drawn afresh on every mutable access, so that
    /// caches of the value (packed weights) know when they are stale. A clone shares it, and
    /// holds the same value until either is mutated, which draws a new stamp.
    #[serde(skip)]
    stamp: u64,
}

/// Two parameters are equal when their shapes, values and gradients are; stamps are ignored.
impl<T: Float> PartialEq for Param<T> {
    fn eq(&self, other: &Self) -> bool {
        self.shape == other.shape && self.value == other.value && self.grad == other.grad
    }
}

/// A stamp no parameter has held before (never 0, which caches use for "none").
#[cfg(target_has_atomic = "64")]
fn fresh_stamp() -> u64 {
    static NEXT: core::sync::atomic::AtomicU64 = core::sync::atomic::AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// A stamp no parameter has held recently, on targets without 64-bit atomics (32-bit
/// microcontrollers): pointer-sized, so it repeats after 2^32 mutations. Stamps only tell
/// packed weights (an x86 AVX-512 path, absent on such targets) when they are stale.
#[cfg(not(target_has_atomic = "64"))]
fn fresh_stamp() -> u64 {
    static NEXT: core::sync::atomic::AtomicUsize = core::sync::atomic::AtomicUsize::new(1);
    match NEXT.fetch_add(1, Ordering::Relaxed) {
        0 => NEXT.fetch_add(1, Ordering::Relaxed) as u64,
        n => n as u64,
    }
}

/// What a serialised [`Param`] holds, before its lengths are checked. A missing gradient
/// reads as zeros.
#[derive(Deserialize)]
#[serde(bound(deserialize = "T: Float"))]
struct ParamData<T: Float> {
    shape: Vec<usize>,
    value: Vec<T>,
    #[serde(default)]
    grad: Option<Vec<T>>,
}

impl<T: Float> TryFrom<ParamData<T>> for Param<T> {
    type Error = Error;
    fn try_from(d: ParamData<T>) -> Result<Self> {
        let mut p = Param::new(&d.shape, d.value)?;
        if let Some(grad) = d.grad {
            check_len("Param", "grad", p.len(), grad.len())?;
            p.grad = grad;
        }
        Ok(p)
    }
}

impl<T: Float> Param<T> {
    /// A parameter of the given shape holding `value` (row-major), with a zero gradient.
    /// Errors if `value` does not have the number of elements the shape implies.
    pub fn new(shape: &[usize], value: Vec<T>) -> Result<Self> {
        check_len("Param", "value", numel("Param", shape)?, value.len())?;
        Ok(Param {
            shape: shape.to_vec(),
            grad: vec![T::zero(); value.len()],
            value,
            stamp: fresh_stamp(),
        })
    }

    /// A parameter of the given shape filled with zeros (value and gradient).
    pub fn zeros(shape: &[usize]) -> Result<Self> {
        Param::new(shape, vec![T::zero(); numel("Param", shape)?])
    }

    /// A parameter of the given shape with every value `v` and a zero gradient.
    pub fn full(shape: &[usize], v: T) -> Result<Self> {
        Param::new(shape, vec![v; numel("Param", shape)?])
    }

    /// The value, row-major (the seed's `tensor-data`).
    pub fn value(&self) -> &[T] {
        &self.value
    }

    /// The value, for in-place updates.
    pub fn value_mut(&mut self) -> &mut [T] {
        self.stamp = fresh_stamp();
        &mut self.value
    }

    /// The gradient accumulated since the last [`Param::zero_grad`] (the seed's `tensor-grad`).
    pub fn grad(&self) -> &[T] {
        &self.grad
    }

    /// The gradient, for backward kernels to accumulate into.
    pub fn grad_mut(&mut self) -> &mut [T] {
        &mut self.grad
    }

    /// The value (mutable) and the gradient at once, as an optimizer step needs them.
    pub fn value_and_grad_mut(&mut self) -> (&mut [T], &mut [T]) {
        self.stamp = fresh_stamp();
        (&mut self.value, &mut self.grad)
    }

    /// Names the current state of the value: two calls return the same stamp exactly when
    /// no mutable access to the value came between them. Caches of the value (such as
    /// [`crate::blas::PackedWeight`]) compare stamps to know whether they are stale.
    pub fn stamp(&self) -> u64 {
        self.stamp
    }

    /// The shape (the seed's `tensor-shape`).
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// The number of elements.
    pub fn len(&self) -> usize {
        self.value.len()
    }

    /// Whether the parameter has no elements (a dimension of size 0).
    pub fn is_empty(&self) -> bool {
        self.value.is_empty()
    }

    /// Sets the gradient to zero (the seed's `zero-grad!`).
    pub fn zero_grad(&mut self) {
        self.grad.fill(T::zero());
    }

    /// `grad += delta` through BLAS `axpy` (the seed's `add-to-grad!`).
    pub fn add_to_grad(&mut self, delta: &[T]) -> Result<()> {
        check_len("add_to_grad", "delta", self.len(), delta.len())?;
        blas::axpy(T::one(), delta, &mut self.grad);
        Ok(())
    }

    /// A copy of the value (the seed's `tensor->list`).
    pub fn to_vec(&self) -> Vec<T> {
        self.value.clone()
    }

    /// `"f32"` or `"f64"` (the seed's `tensor-dtype`).
    pub fn dtype(&self) -> &'static str {
        T::DTYPE
    }
}

/// Prints shape, dtype, value and gradient (the seed's `print-tensor`). A precision such as
/// `{:.3}` applies to every element.
impl<T: Float> fmt::Display for Param<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "Param shape={} dtype={}",
            fmt_shape(&self.shape),
            T::DTYPE
        )?;
        write!(f, "  value: ")?;
        write_nested(f, &self.value, &self.shape, 9)?;
        write!(f, "\n  grad:  ")?;
        write_nested(f, &self.grad, &self.shape, 9)
    }
}

/// A tensor with no gradient: a shape and its row-major data. Used for non-trainable state
/// (batch-norm `running_mean`, `running_var`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "TensorData<T>", bound(deserialize = "T: Float"))]
pub struct Tensor<T: Float> {
    shape: Vec<usize>,
    data: Vec<T>,
}

/// What a serialised [`Tensor`] holds, before its length is checked.
#[derive(Deserialize)]
#[serde(bound(deserialize = "T: Float"))]
struct TensorData<T: Float> {
    shape: Vec<usize>,
    data: Vec<T>,
}

impl<T: Float> TryFrom<TensorData<T>> for Tensor<T> {
    type Error = Error;
    fn try_from(d: TensorData<T>) -> Result<Self> {
        Tensor::new(&d.shape, d.data)
    }
}

impl<T: Float> Tensor<T> {
    /// A tensor of the given shape holding `data` (row-major); errors if the length is wrong.
    pub fn new(shape: &[usize], data: Vec<T>) -> Result<Self> {
        check_len("Tensor", "data", numel("Tensor", shape)?, data.len())?;
        Ok(Tensor {
            shape: shape.to_vec(),
            data,
        })
    }

    /// A tensor of the given shape filled with zeros.
    pub fn zeros(shape: &[usize]) -> Result<Self> {
        Tensor::full(shape, T::zero())
    }

    /// A tensor of the given shape with every element `v`.
    pub fn full(shape: &[usize], v: T) -> Result<Self> {
        Tensor::new(shape, vec![v; numel("Tensor", shape)?])
    }

    /// The data, row-major.
    pub fn data(&self) -> &[T] {
        &self.data
    }

    /// The data, for in-place updates.
    pub fn data_mut(&mut self) -> &mut [T] {
        &mut self.data
    }

    /// The shape.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// The number of elements.
    pub fn len(&self) -> usize {
        self.data.len()
    }

    /// Whether the tensor has no elements.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// A copy of the data.
    pub fn to_vec(&self) -> Vec<T> {
        self.data.clone()
    }

    /// `"f32"` or `"f64"`.
    pub fn dtype(&self) -> &'static str {
        T::DTYPE
    }
}

/// Prints shape, dtype and data, nested by shape.
impl<T: Float> fmt::Display for Tensor<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "Tensor shape={} dtype={}",
            fmt_shape(&self.shape),
            T::DTYPE
        )?;
        write!(f, "  data: ")?;
        write_nested(f, &self.data, &self.shape, 8)
    }
}

/// Writes `data` as nested brackets following `shape`; rows of a matrix go on their own
/// lines, aligned under the opening bracket at column `indent`.
fn write_nested<T: Float>(
    f: &mut fmt::Formatter<'_>,
    data: &[T],
    shape: &[usize],
    indent: usize,
) -> fmt::Result {
    let summarise = data.len() > SUMMARY_THRESHOLD;
    write_level(f, data, shape, indent, summarise)
}

fn write_level<T: Float>(
    f: &mut fmt::Formatter<'_>,
    data: &[T],
    shape: &[usize],
    indent: usize,
    summarise: bool,
) -> fmt::Result {
    let Some((&n, rest)) = shape.split_first() else {
        return match (data.first(), f.precision()) {
            (Some(v), Some(p)) => write!(f, "{v:.p$?}"),
            (Some(v), None) => write!(f, "{v:?}"),
            (None, _) => Ok(()),
        };
    };
    let stride: usize = rest.iter().product();
    let skip = summarise && n > 2 * EDGE_ITEMS;
    write!(f, "[")?;
    let mut i = 0;
    while i < n {
        if i > 0 {
            if rest.is_empty() {
                write!(f, ", ")?;
            } else {
                write!(f, ",\n{:w$}", "", w = indent + 1)?;
            }
        }
        if skip && i == EDGE_ITEMS {
            write!(f, "...")?;
            i = n - EDGE_ITEMS;
            continue;
        }
        write_level(
            f,
            &data[i * stride..(i + 1) * stride],
            rest,
            indent + 1,
            summarise,
        )?;
        i += 1;
    }
    write!(f, "]")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::assert_close;

    #[test]
    fn new_checks_the_length() {
        let err = Param::<f32>::new(&[2, 3], vec![0.0; 5]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "length mismatch in Param: `value` has 5 elements, expected 6"
        );
        let err = Param::<f64>::zeros(&[usize::MAX, 2]).unwrap_err();
        assert!(
            err.to_string().contains("[18446744073709551615, 2]"),
            "{err}"
        );
        let err = Tensor::<f64>::new(&[4], vec![0.0; 3]).unwrap_err();
        assert!(
            err.to_string().contains("has 3 elements, expected 4"),
            "{err}"
        );
    }

    #[test]
    fn accessors_and_gradient_accumulation() {
        let mut p = Param::new(&[3], vec![1.0f32, 2.0, 3.0]).unwrap();
        assert_eq!((p.shape(), p.len(), p.dtype()), (&[3usize][..], 3, "f32"));
        assert_eq!(p.grad(), &[0.0; 3]);
        // add-to-grad! accumulates: 0 + [1, 2, 3] + [0.5, 0.5, 0.5] = [1.5, 2.5, 3.5]
        p.add_to_grad(&[1.0, 2.0, 3.0]).unwrap();
        p.add_to_grad(&[0.5, 0.5, 0.5]).unwrap();
        assert_close!(p.grad(), [1.5f32, 2.5, 3.5]);
        assert!(p.add_to_grad(&[1.0]).is_err());
        p.value_mut()[0] = 7.0;
        assert_eq!(p.to_vec(), vec![7.0, 2.0, 3.0]);
        p.zero_grad();
        assert_eq!(p.grad(), &[0.0; 3]);
        let (v, g) = p.value_and_grad_mut();
        v[1] += g[1] + 1.0;
        assert_eq!(p.value()[1], 3.0);
        assert_eq!(Param::<f64>::full(&[], 2.5).unwrap().value(), &[2.5]);
        assert!(Param::<f64>::zeros(&[0, 4]).unwrap().is_empty());
    }

    #[test]
    fn display_nests_by_shape() {
        let mut p = Param::new(&[2, 3], vec![1.0f64, -2.5, 3.0, 4.0, 5.0, 6.25]).unwrap();
        p.grad_mut()[5] = 1.0;
        assert_eq!(
            p.to_string(),
            "Param shape=[2, 3] dtype=f64\n  value: [[1.0, -2.5, 3.0],\n          [4.0, 5.0, 6.25]]\n  grad:  [[0.0, 0.0, 0.0],\n          [0.0, 0.0, 1.0]]"
        );
        let p = Param::new(&[2], vec![1.0f32 / 3.0, 2.0]).unwrap();
        assert_eq!(
            format!("{p:.2}"),
            "Param shape=[2] dtype=f32\n  value: [0.33, 2.00]\n  grad:  [0.00, 0.00]"
        );
        let t = Tensor::new(&[], vec![1.5f64]).unwrap();
        assert_eq!(t.to_string(), "Tensor shape=[] dtype=f64\n  data: 1.5");
    }

    #[test]
    fn display_summarises_large_tensors() {
        let t = Tensor::new(&[2000], (0..2000).map(|i| i as f64).collect()).unwrap();
        assert_eq!(
            t.to_string(),
            "Tensor shape=[2000] dtype=f64\n  data: [0.0, 1.0, 2.0, ..., 1997.0, 1998.0, 1999.0]"
        );
    }

    #[test]
    fn serde_round_trip_checks_lengths() {
        let mut p = Param::new(&[2], vec![1.0f64, 2.0]).unwrap();
        p.grad_mut()[1] = 3.0;
        let json = serde_json::to_string(&p).unwrap();
        assert_eq!(json, r#"{"shape":[2],"value":[1.0,2.0],"grad":[0.0,3.0]}"#);
        assert_eq!(serde_json::from_str::<Param<f64>>(&json).unwrap(), p);
        // a missing gradient reads as zeros; a wrong length is an error
        let q: Param<f32> = serde_json::from_str(r#"{"shape":[1],"value":[4.0]}"#).unwrap();
        assert_eq!((q.value(), q.grad()), (&[4.0f32][..], &[0.0f32][..]));
        let err = serde_json::from_str::<Param<f64>>(r#"{"shape":[3],"value":[1.0]}"#);
        assert!(err.unwrap_err().to_string().contains("expected 3"));
        let t = Tensor::new(&[1, 2], vec![1.0f32, 2.0]).unwrap();
        let back: Tensor<f32> = serde_json::from_str(&serde_json::to_string(&t).unwrap()).unwrap();
        assert_eq!(back, t);
    }
}
