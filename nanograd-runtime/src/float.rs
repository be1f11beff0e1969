//! The element type of every tensor: [`Float`], implemented for `f32` and `f64`.
//!
//! Generated code and every kernel are generic over `T: Float`; the trait carries the
//! arithmetic, the handful of elementary functions the ops need, and (through its
//! [`crate::blas::Scalar`] supertrait) the dispatch to `sgemm`/`dgemm` and friends.
//!
//! The elementary functions are the standard library's with the `std` feature and `libm`'s
//! without it (`libm` is the Rust port of musl's, the same functions to within an ulp).

use core::fmt::{Debug, Display};
use core::iter::Sum;
use core::ops::{Add, AddAssign, Div, DivAssign, Mul, MulAssign, Neg, Sub, SubAssign};

use crate::blas::{Avx512, Scalar};

/// A floating-point element type: `f32` or `f64`. It is serialisable so that parameters and
/// optimizer state can go into checkpoints.
pub trait Float:
    Scalar
    + Avx512
    + Copy
    + Default
    + Debug
    + Display
    + PartialOrd
    + PartialEq
    + Send
    + Sync
    + 'static
    + Add<Output = Self>
    + Sub<Output = Self>
    + Mul<Output = Self>
    + Div<Output = Self>
    + Neg<Output = Self>
    + AddAssign
    + SubAssign
    + MulAssign
    + DivAssign
    + Sum
    + serde::Serialize
    + serde::de::DeserializeOwned
{
    /// `"f32"` or `"f64"`, as the seed's `tensor-dtype` and safetensors name them.
    const DTYPE: &'static str;
    /// Machine epsilon.
    const EPSILON: Self;
    /// The largest finite value.
    const MAX: Self;
    /// Negative infinity.
    const NEG_INFINITY: Self;

    /// `0`.
    fn zero() -> Self;
    /// `1`.
    fn one() -> Self;
    /// Converts from `f64`, rounding to nearest for `f32`.
    fn from_f64(x: f64) -> Self;
    /// Converts from `usize` (exact up to 2^24 for `f32`).
    fn from_usize(n: usize) -> Self;
    /// Converts to `f64` (exact).
    fn to_f64(self) -> f64;

    /// `e^self`.
    fn exp(self) -> Self;
    /// The natural logarithm.
    fn ln(self) -> Self;
    /// `ln(1 + self)`, accurate near 0.
    fn ln_1p(self) -> Self;
    /// The square root.
    fn sqrt(self) -> Self;
    /// The hyperbolic tangent.
    fn tanh(self) -> Self;
    /// The absolute value.
    fn abs(self) -> Self;
    /// `self^n`.
    fn powi(self, n: i32) -> Self;
    /// `self^e`.
    fn powf(self, e: Self) -> Self;
    /// The larger of the two (the other one if one is NaN).
    fn max(self, other: Self) -> Self;
    /// The smaller of the two (the other one if one is NaN).
    fn min(self, other: Self) -> Self;
    /// Whether the value is NaN.
    fn is_nan(self) -> bool;
    /// Whether the value is neither infinite nor NaN.
    fn is_finite(self) -> bool;
    /// `self·a + b` with one rounding (a fused multiply-add).
    fn mul_add(self, a: Self, b: Self) -> Self;
}

/// The standard library's function with `std`, `libm`'s without.
#[cfg(feature = "std")]
macro_rules! elementary {
    ($std:expr, $libm:expr) => {
        $std
    };
}
#[cfg(not(feature = "std"))]
macro_rules! elementary {
    ($std:expr, $libm:expr) => {
        $libm
    };
}

/// The cosine (the standard library's with `std`, `libm`'s without).
#[inline]
pub(crate) fn cos(x: f64) -> f64 {
    elementary!(x.cos(), libm::cos(x))
}

/// The sine (the standard library's with `std`, `libm`'s without).
#[inline]
pub(crate) fn sin(x: f64) -> f64 {
    elementary!(x.sin(), libm::sin(x))
}

macro_rules! impl_float {
    ($t:ident, $name:literal) => {
        impl Float for $t {
            const DTYPE: &'static str = $name;
            const EPSILON: Self = $t::EPSILON;
            const MAX: Self = $t::MAX;
            const NEG_INFINITY: Self = $t::NEG_INFINITY;

            #[inline(always)]
            fn zero() -> Self {
                0.0
            }
            #[inline(always)]
            fn one() -> Self {
                1.0
            }
            #[inline(always)]
            fn from_f64(x: f64) -> Self {
                x as $t
            }
            #[inline(always)]
            fn from_usize(n: usize) -> Self {
                n as $t
            }
            #[inline(always)]
            fn to_f64(self) -> f64 {
                self as f64
            }
            #[inline(always)]
            fn exp(self) -> Self {
                elementary!($t::exp(self), libm::Libm::<$t>::exp(self))
            }
            #[inline(always)]
            fn ln(self) -> Self {
                elementary!($t::ln(self), libm::Libm::<$t>::log(self))
            }
            #[inline(always)]
            fn ln_1p(self) -> Self {
                elementary!($t::ln_1p(self), libm::Libm::<$t>::log1p(self))
            }
            #[inline(always)]
            fn sqrt(self) -> Self {
                elementary!($t::sqrt(self), libm::Libm::<$t>::sqrt(self))
            }
            #[inline(always)]
            fn tanh(self) -> Self {
                elementary!($t::tanh(self), libm::Libm::<$t>::tanh(self))
            }
            #[inline(always)]
            fn abs(self) -> Self {
                elementary!($t::abs(self), libm::Libm::<$t>::fabs(self))
            }
            #[inline(always)]
            fn powi(self, n: i32) -> Self {
                elementary!($t::powi(self, n), libm::Libm::<$t>::pow(self, n as $t))
            }
            #[inline(always)]
            fn powf(self, e: Self) -> Self {
                elementary!($t::powf(self, e), libm::Libm::<$t>::pow(self, e))
            }
            #[inline(always)]
            fn max(self, other: Self) -> Self {
                $t::max(self, other)
            }
            #[inline(always)]
            fn min(self, other: Self) -> Self {
                $t::min(self, other)
            }
            #[inline(always)]
            fn is_nan(self) -> bool {
                $t::is_nan(self)
            }
            #[inline(always)]
            fn is_finite(self) -> bool {
                $t::is_finite(self)
            }
            #[inline(always)]
            fn mul_add(self, a: Self, b: Self) -> Self {
                elementary!($t::mul_add(self, a, b), libm::Libm::<$t>::fma(self, a, b))
            }
        }
    };
}

impl_float!(f32, "f32");
impl_float!(f64, "f64");

/// `x` as a slice of `f32` when `T` is `f32`, for kernels with an `f32` path of their own
/// (all of them `x86_64` AVX-512 paths so far: elsewhere nothing calls it).
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
pub(crate) fn as_f32<T: Float>(x: &[T]) -> Option<&[f32]> {
    if core::any::TypeId::of::<T>() != core::any::TypeId::of::<f32>() {
        return None;
    }
    // SAFETY: `T` is `f32` (the type ids are equal), so the slice is one of `f32` already.
    Some(unsafe { core::slice::from_raw_parts(x.as_ptr().cast::<f32>(), x.len()) })
}

/// [`as_f32`] for a mutable slice.
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
pub(crate) fn as_f32_mut<T: Float>(x: &mut [T]) -> Option<&mut [f32]> {
    if core::any::TypeId::of::<T>() != core::any::TypeId::of::<f32>() {
        return None;
    }
    // SAFETY: `T` is `f32` (the type ids are equal), so the slice is one of `f32` already.
    Some(unsafe { core::slice::from_raw_parts_mut(x.as_mut_ptr().cast::<f32>(), x.len()) })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip<T: Float>(x: f64) -> f64 {
        T::from_f64(x).to_f64()
    }

    #[test]
    fn conversions_and_constants() {
        assert_eq!(roundtrip::<f64>(0.1), 0.1);
        assert_eq!(roundtrip::<f32>(0.5), 0.5);
        assert_ne!(roundtrip::<f32>(0.1), 0.1); // f32 rounds
        assert_eq!(<f32 as Float>::DTYPE, "f32");
        assert_eq!(<f64 as Float>::DTYPE, "f64");
        assert_eq!(f64::zero() + f64::one(), 1.0);
        assert_eq!(format!("{}", <f32 as Float>::from_f64(2.5)), "2.5");
    }
}
