//! Helpers shared by the `ops_macro_*` tests, which run every op and layer through `model!`:
//! nested arrays seen as flat data, casts to `f32`, finite-difference checks of a generated
//! `_vjp` ([`check_fn!`]) and of a struct model's parameter gradients ([`check_param_grads`]).

#![allow(dead_code)]

use std::collections::HashMap;

use nanograd::testing::{assert_gradient, random_vec};
use nanograd::Module;

/// A float or a nested fixed-size array of floats, read as its flat row-major values.
pub trait Vals {
    fn push_vals(&self, out: &mut Vec<f64>);
    /// The flat values, as `f64`.
    fn vals(&self) -> Vec<f64> {
        let mut out = Vec::new();
        self.push_vals(&mut out);
        out
    }
}

impl Vals for f64 {
    fn push_vals(&self, out: &mut Vec<f64>) {
        out.push(*self);
    }
}

impl Vals for f32 {
    fn push_vals(&self, out: &mut Vec<f64>) {
        out.push(f64::from(*self));
    }
}

impl<A: Vals, const N: usize> Vals for [A; N] {
    fn push_vals(&self, out: &mut Vec<f64>) {
        for a in self {
            a.push_vals(out);
        }
    }
}

impl<A: Vals> Vals for Vec<A> {
    fn push_vals(&self, out: &mut Vec<f64>) {
        for a in self {
            a.push_vals(out);
        }
    }
}

/// An `f64` or a nested fixed-size array of `f64`: the inputs of generated functions.
pub trait Arr: Copy + Vals {
    /// The same shape in `f32`.
    type F32: Copy + Vals;
    /// The number of scalars.
    const LEN: usize;
    fn zeroed() -> Self;
    /// Overwrites the values from `v` (of length [`Arr::LEN`]), row-major.
    fn load(&mut self, v: &[f64]);
    fn to32(&self) -> Self::F32;
}

impl Arr for f64 {
    type F32 = f32;
    const LEN: usize = 1;
    fn zeroed() -> Self {
        0.0
    }
    fn load(&mut self, v: &[f64]) {
        *self = v[0];
    }
    fn to32(&self) -> f32 {
        *self as f32
    }
}

impl<A: Arr, const N: usize> Arr for [A; N] {
    type F32 = [A::F32; N];
    const LEN: usize = N * A::LEN;
    fn zeroed() -> Self {
        [A::zeroed(); N]
    }
    fn load(&mut self, v: &[f64]) {
        assert_eq!(v.len(), Self::LEN, "wrong number of values to load");
        for (a, chunk) in self.iter_mut().zip(v.chunks(A::LEN)) {
            a.load(chunk);
        }
    }
    fn to32(&self) -> Self::F32 {
        self.map(|a| a.to32())
    }
}

/// An array of uniform values in `[lo, hi)` from `seed`.
pub fn rnd<A: Arr>(seed: u64, lo: f64, hi: f64) -> A {
    let mut a = A::zeroed();
    a.load(&random_vec::<f64>(seed, A::LEN, lo, hi));
    a
}

/// An array of `v`'s shape filled from `seed`: a random upstream gradient for a `_vjp`.
pub fn random_like<A: Arr>(_v: &A, seed: u64) -> A {
    rnd(seed, -1.0, 1.0)
}

/// `Σ a_i b_i`.
pub fn dotv(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Asserts that no value of `xs` lies within `gap` of a kink of a piecewise op (0 for relu):
/// central differences are valid only away from them.
pub fn assert_no_kinks(xs: &[f64], kinks: &[f64], gap: f64) {
    for (i, &x) in xs.iter().enumerate() {
        for &k in kinks {
            assert!(
                (x - k).abs() > gap,
                "x[{i}] = {x} is within {gap} of the kink {k}"
            );
        }
    }
}

/// Checks a generated function `f` and its `f_vjp` on `f64` inputs:
///
/// 1. `f(inputs)` equals `expected` (the runtime kernels called by hand) to 1e-12;
/// 2. `f_vjp(inputs, u)` with a random upstream `u` returns the same value, and each input's
///    gradient equals the central differences of `<u, f(..)>` to `tol`;
/// 3. the same in `f32`: the value and every gradient agree with the `f64` ones to 1e-4.
///
/// For a scalar `f`, `grad = f_grad` also checks that `f_grad(inputs)` is `f_vjp(inputs, 1)`.
/// Returns the `f64` gradients, one `Vec` per input.
///
/// ```text
/// check_fn!(mm, mm_vjp, [a => ga, b => gb], expected = kernel_result, tol = 1e-7);
/// check_fn!(dot_fn, dot_fn_vjp, grad = dot_fn_grad, [x => gx, y => gy], expected = .., tol = ..);
/// ```
#[macro_export]
macro_rules! check_fn {
    ($f:ident, $vjp:ident, grad = $grad:ident, [$($x:ident => $gx:ident),+ $(,)?], expected = $expected:expr, tol = $tol:expr $(,)?) => {{
        let g64 = $crate::check_fn!($f, $vjp, [$($x => $gx),+], expected = $expected, tol = $tol);
        let by_grad = {
            let (value, $($gx),+) = $grad($(&$x),+);
            (value.vals(), vec![$($gx.vals()),+])
        };
        let by_vjp = {
            let (value, $($gx),+) = $vjp($(&$x,)+ &1.0);
            (value.vals(), vec![$($gx.vals()),+])
        };
        assert_eq!(by_grad, by_vjp, "{} differs from {} with upstream 1", stringify!($grad), stringify!($vjp));
        g64
    }};
    ($f:ident, $vjp:ident, [$($x:ident => $gx:ident),+ $(,)?], expected = $expected:expr, tol = $tol:expr $(,)?) => {{
        use $crate::ops_macro_util::{Arr as _, Vals as _};
        let out = $f($(&$x),+);
        let expected: Vec<f64> = $expected;
        nanograd::assert_close!(out.vals(), expected, 1e-12);
        let u = $crate::ops_macro_util::random_like(&out, 0x5eed);
        let (value, $($gx),+) = $vjp($(&$x,)+ &u);
        nanograd::assert_close!(value.vals(), out.vals(), 1e-12);
        $crate::check_fn!(@each $f, u, ($($x),+), $tol; $($x => $gx),+);
        let g64: Vec<Vec<f64>> = vec![$($gx.vals()),+];
        let out32 = $f::<f32>($(&$x.to32()),+);
        nanograd::assert_close!(out32.vals(), out.vals(), 1e-4);
        let (value32, $($gx),+) = $vjp::<f32>($(&$x.to32(),)+ &u.to32());
        nanograd::assert_close!(value32.vals(), out.vals(), 1e-4);
        let g32: Vec<Vec<f64>> = vec![$($gx.vals()),+];
        for (a, b) in g32.iter().zip(&g64) {
            nanograd::assert_close!(a, b, 1e-4);
        }
        g64
    }};
    (@each $f:ident, $u:ident, $all:tt, $tol:expr; $x:ident => $gx:ident $(, $rx:ident => $rgx:ident)*) => {
        $crate::check_fn!(@one $f, $u, $all, $tol, $x, $gx);
        $crate::check_fn!(@each $f, $u, $all, $tol; $($rx => $rgx),*);
    };
    (@each $f:ident, $u:ident, $all:tt, $tol:expr;) => {};
    (@one $f:ident, $u:ident, ($($a:ident),+), $tol:expr, $x:ident, $gx:ident) => {{
        let base = $x;
        let f = |v: &[f64]| {
            let mut $x = base;
            $x.load(v);
            $crate::ops_macro_util::dotv(&$f($(&$a),+).vals(), &$u.vals())
        };
        nanograd::testing::assert_gradient(
            concat!(stringify!($f), " with respect to ", stringify!($x)),
            f,
            &base.vals(),
            &$gx.vals(),
            $tol,
        );
    }};
}

/// Every parameter of a model: name, value, gradient.
pub fn params<M: Module<f64>>(m: &M) -> Vec<(String, Vec<f64>, Vec<f64>)> {
    let mut out = Vec::new();
    m.visit_params(&mut |n, p| out.push((n.to_string(), p.value().to_vec(), p.grad().to_vec())));
    out
}

/// The value of the parameter `name`.
pub fn param<M: Module<f64>>(m: &M, name: &str) -> Vec<f64> {
    params(m)
        .into_iter()
        .find(|(n, _, _)| n == name)
        .unwrap_or_else(|| panic!("no parameter {name}"))
        .1
}

/// Overwrites the value of the parameter `name`.
pub fn set_param<M: Module<f64>>(m: &mut M, name: &str, v: &[f64]) {
    let mut found = false;
    m.visit_params_mut(&mut |n, p| {
        if n == name {
            p.value_mut().copy_from_slice(v);
            found = true;
        }
    });
    assert!(found, "no parameter {name}");
}

/// Sets every parameter to uniform values in `[lo, hi)`, so that no test starts from the
/// special values of an initialiser (batch norm's ones and zeros, zero biases).
pub fn randomise_params<M: Module<f64>>(m: &mut M, seed: u64, lo: f64, hi: f64) {
    let mut s = seed;
    m.visit_params_mut(&mut |_, p| {
        let v = random_vec::<f64>(s, p.len(), lo, hi);
        p.value_mut().copy_from_slice(&v);
        s += 1;
    });
}

/// Checks the gradient that a generated `_backward` left in `trained` (started from `base`,
/// gradients zero) against central differences of `loss` at `base`, for every parameter;
/// returns their names. `loss` gets a fresh clone of `base` with one parameter changed. A
/// gradient that is zero everywhere fails the check (it would make it vacuous) unless the
/// parameter is in `zero_ok`.
pub fn check_param_grads<M: Module<f64> + Clone>(
    base: &M,
    trained: &M,
    loss: impl Fn(&mut M) -> f64,
    tol: f64,
    zero_ok: &[&str],
) -> Vec<String> {
    let mut names = Vec::new();
    for (name, _, grad) in params(trained) {
        let value = param(base, &name);
        if !zero_ok.contains(&name.as_str()) {
            assert!(
                grad.iter().any(|g| g.abs() > 1e-9),
                "the gradient of {name} is zero everywhere: {grad:?}"
            );
        }
        let f = |v: &[f64]| {
            let mut m = base.clone();
            set_param(&mut m, &name, v);
            loss(&mut m)
        };
        assert_gradient(&name, f, &value, &grad, tol);
        names.push(name);
    }
    names
}

/// Copies every parameter and buffer of an `f64` model into the same model in `f32`, and
/// its training mode.
pub fn copy_to_f32<A: Module<f64>, B: Module<f32>>(src: &A, dst: &mut B) {
    let mut values: HashMap<String, Vec<f64>> = HashMap::new();
    src.visit_params(&mut |n, p| {
        values.insert(format!("p:{n}"), p.value().to_vec());
    });
    src.visit_buffers(&mut |n, b| {
        values.insert(format!("b:{n}"), b.data().to_vec());
    });
    let mut copied = 0;
    dst.visit_params_mut(&mut |n, p| {
        for (d, s) in p.value_mut().iter_mut().zip(&values[&format!("p:{n}")]) {
            *d = *s as f32;
        }
        copied += 1;
    });
    dst.visit_buffers_mut(&mut |n, b| {
        for (d, s) in b.data_mut().iter_mut().zip(&values[&format!("b:{n}")]) {
            *d = *s as f32;
        }
        copied += 1;
    });
    assert_eq!(copied, values.len(), "the models differ");
    dst.set_training_mode(src.is_training());
}

/// Asserts that the `f32` model's gradients agree with the `f64` one's to `tol`.
pub fn assert_grads_close<A: Module<f64>, B: Module<f32>>(m64: &A, m32: &B, tol: f64) {
    let mut g32: HashMap<String, Vec<f64>> = HashMap::new();
    m32.visit_params(&mut |n, p| {
        g32.insert(
            n.to_string(),
            p.grad().iter().map(|&g| f64::from(g)).collect(),
        );
    });
    for (name, _, grad) in params(m64) {
        let got = &g32[&name];
        if let Err(msg) = nanograd::testing::compare_close(got, &grad, tol) {
            panic!("f32 gradient of {name}: {msg}");
        }
    }
}
