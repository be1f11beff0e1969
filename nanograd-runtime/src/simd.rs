//! Run-time instruction-set dispatch for the elementwise loops.
//!
//! A plain Rust loop compiles for the baseline x86-64 target: SSE2, four `f32` lanes. Inside
//! [`vectorize`], a [`Kernel`] is compiled again for AVX-512 and for AVX2 (through `pulp`,
//! which the `gemm` crate already uses) and the best one the CPU has runs, so its loops
//! vectorise to full width with no `unsafe` here and no `-C target-cpu` for users.

/// A loop to run at the CPU's best width. `run` must be `#[inline(always)]` and call only
/// `#[inline(always)]` code, so that the loop is compiled inside the dispatched function.
pub(crate) trait Kernel {
    type Output;
    fn run(self) -> Self::Output;
}

struct Dispatch<K>(K);

impl<K: Kernel> pulp::WithSimd for Dispatch<K> {
    type Output = K::Output;

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _simd: S) -> K::Output {
        self.0.run()
    }
}

/// Runs `kernel` compiled for the best instruction set of this CPU.
#[inline]
pub(crate) fn vectorize<K: Kernel>(kernel: K) -> K::Output {
    pulp::Arch::new().dispatch(Dispatch(kernel))
}

/// Runs `kernel` dispatched when it touches at least `SMALL` elements (`work`), and as
/// compiled for the baseline otherwise: for a handful of elements, detecting the CPU costs
/// more than the wider vectors save.
#[inline]
pub(crate) fn vectorize_above<K: Kernel>(work: usize, kernel: K) -> K::Output {
    if work >= SMALL {
        vectorize(kernel)
    } else {
        kernel.run()
    }
}

/// Below this many elements a kernel runs without dispatch.
const SMALL: usize = 256;

/// `x·y + acc` with one rounding (a fused multiply-add), which a [`Kernel`] compiles to a
/// vector FMA instruction. Outside a dispatched [`Kernel`] (a CPU without FMA) it is a call
/// to the C library's `fma`, correct but slow.
#[inline(always)]
pub(crate) fn mul_add<T: crate::Float>(x: T, y: T, acc: T) -> T {
    x.mul_add(y, acc)
}

/// The sum of the `N` (a power of two) lanes of an accumulator, halving: `N / 2` additions
/// of independent pairs, then half of that, ..., which stay vector additions where an
/// in-order sum would be a chain of `N` dependent scalar additions. Every horizontal sum of
/// the kernels takes this order, so their results do not depend on which one ran.
#[inline(always)]
pub(crate) fn sum_lanes<T: crate::Float, const N: usize>(mut acc: [T; N]) -> T {
    let mut half = N / 2;
    while half > 0 {
        for l in 0..half {
            acc[l] += acc[l + half];
        }
        half /= 2;
    }
    acc[0]
}

/// The mask of the first `len` lanes of a sixteen-lane AVX-512 register (all of them for
/// `len >= 16`): the loads and stores of a row's last, partial register.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
pub(crate) fn first_lanes(len: usize) -> u16 {
    (((1u32 << len.min(16)) - 1) & 0xffff) as u16
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mul_add_rounds_once() {
        // (1 + 2^-23)·(1 - 2^-23) = 1 - 2^-46: rounded to f32 it is 1, so with one rounding
        // x·y - 1 = -2^-46, with two it is 0
        let (x, y) = (1.0f32 + f32::EPSILON, 1.0f32 - f32::EPSILON);
        assert_eq!(mul_add(x, y, -1.0f32), -(2.0f32.powi(-46)));
        let (x, y) = (1.0f64 + f64::EPSILON, 1.0f64 - f64::EPSILON);
        assert_eq!(mul_add(x, y, -1.0f64), -(2.0f64.powi(-104)));
        assert_eq!(mul_add(3.0f32, 4.0, 5.0), 17.0);
    }
}
