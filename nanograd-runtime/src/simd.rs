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
