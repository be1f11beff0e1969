//! Linear algebra through `model!`: matmul in its four rank cases, dot and dense, in the
//! function form (every input's gradient) and the struct form with a batch dimension (every
//! parameter's gradient), against the runtime kernels and central differences.

mod ops_macro_util;

use nanograd::assert_close;
use nanograd::ops;
use nanograd::prelude::*;
use nanograd::rand::{rngs::StdRng, SeedableRng};
use ops_macro_util::{check_param_grads, copy_to_f32, rnd, Vals};

model! {
    fn mm(a: [2, 3], b: [3, 4]) -> [2, 4] { matmul(a, b) }
    fn mv(a: [2, 3], x: [3]) -> [2] { matmul(a, x) }
    fn vm(x: [2], b: [2, 3]) -> [3] { matmul(x, b) }
    fn vv(x: [3], y: [3]) -> [] { matmul(x, y) }
    fn dot_fn(x: [3], y: [3]) -> [] { dot(x, y) }
    fn dense_fn(x: [2, 3], w: [4, 3], b: [4]) -> [2, 4] { dense(x, w, b) }
    fn dense_vec(x: [3], w: [4, 3]) -> [4] { dense(x, w) }
}

model! {
    // values used twice
    fn square(a: [3, 3]) -> [3, 3] { matmul(a, a) }
    fn energy(x: [3], y: [3]) -> [] { let z = x + y; dot(z, z) }
    fn self_matvec(a: [3, 3], x: [3]) -> [] { dot(x, matmul(a, x)) }
    fn vv_self(x: [3]) -> [] { matmul(x, x) }
    fn vm_self(x: [3], b: [3, 3]) -> [3] { matmul(matmul(x, b), b) }
    fn dense_self(w: [3, 3]) -> [3, 3] { dense(w, w) }
}

fn matmul_k(a: &[f64], b: &[f64], m: usize, k: usize, n: usize) -> Vec<f64> {
    let mut y = vec![0.0; m * n];
    ops::matmul(a, b, m, k, n, &mut y).unwrap();
    y
}

fn matvec_k(a: &[f64], x: &[f64], m: usize, n: usize) -> Vec<f64> {
    let mut y = vec![0.0; m];
    ops::matvec(a, x, m, n, &mut y).unwrap();
    y
}

fn vecmat_k(x: &[f64], b: &[f64], m: usize, n: usize) -> Vec<f64> {
    let mut y = vec![0.0; n];
    ops::vecmat(x, b, m, n, &mut y).unwrap();
    y
}

#[test]
fn matmul_in_all_four_rank_cases() {
    let a: [[f64; 3]; 2] = rnd(1, -1.0, 1.0);
    let b: [[f64; 4]; 3] = rnd(2, -1.0, 1.0);
    let x: [f64; 3] = rnd(3, -1.0, 1.0);
    let y: [f64; 3] = rnd(4, -1.0, 1.0);
    let v: [f64; 2] = rnd(5, -1.0, 1.0);
    let c: [[f64; 3]; 2] = rnd(6, -1.0, 1.0);
    check_fn!(mm, mm_vjp, [a => ga, b => gb], expected = matmul_k(&a.vals(), &b.vals(), 2, 3, 4), tol = 1e-7);
    check_fn!(mv, mv_vjp, [a => ga, x => gx], expected = matvec_k(&a.vals(), &x.vals(), 2, 3), tol = 1e-7);
    check_fn!(vm, vm_vjp, [v => gv, c => gc], expected = vecmat_k(&v.vals(), &c.vals(), 2, 3), tol = 1e-7);
    check_fn!(vv, vv_vjp, grad = vv_grad, [x => gx, y => gy], expected = vec![ops::dot(&x.vals(), &y.vals()).unwrap()], tol = 1e-7);
}

#[test]
fn hand_derived_matmul() {
    // [1 2; 3 4] [5; 6] = [17; 39]; with upstream [1, -1]: dA = u xᵀ = [5 6; -5 -6],
    // dx = Aᵀ u = [1 - 3, 2 - 4]
    let a = [[1.0f64, 2.0], [3.0, 4.0]];
    let x = [5.0, 6.0];
    let (y, ga, gb) = mm_small_vjp(&a, &x, &[1.0, -1.0]);
    assert_eq!(y, [17.0, 39.0]);
    assert_eq!(ga, [[5.0, 6.0], [-5.0, -6.0]]);
    assert_eq!(gb, [-2.0, -2.0]);
    assert_eq!(
        mm_small(&[[1.0f32, 2.0], [3.0, 4.0]], &[5.0, 6.0]),
        [17.0f32, 39.0]
    );
}

model! {
    fn mm_small(a: [2, 2], x: [2]) -> [2] { matmul(a, x) }
}

#[test]
fn dot_and_dense() {
    let x: [f64; 3] = rnd(7, -1.0, 1.0);
    let y: [f64; 3] = rnd(8, -1.0, 1.0);
    check_fn!(dot_fn, dot_fn_vjp, grad = dot_fn_grad, [x => gx, y => gy], expected = vec![ops::dot(&x.vals(), &y.vals()).unwrap()], tol = 1e-7);

    let xs: [[f64; 3]; 2] = rnd(9, -1.0, 1.0);
    let w: [[f64; 3]; 4] = rnd(10, -1.0, 1.0);
    let b: [f64; 4] = rnd(11, -1.0, 1.0);
    let mut out = vec![0.0; 8];
    ops::dense(&xs.vals(), &w.vals(), Some(&b.vals()), 2, 3, 4, &mut out).unwrap();
    check_fn!(dense_fn, dense_fn_vjp, [xs => gx, w => gw, b => gb], expected = out, tol = 1e-7);

    let mut out = vec![0.0; 4];
    ops::dense(&x.vals(), &w.vals(), None, 1, 3, 4, &mut out).unwrap();
    check_fn!(dense_vec, dense_vec_vjp, [x => gx, w => gw], expected = out, tol = 1e-7);
}

#[test]
fn values_used_twice() {
    let a: [[f64; 3]; 3] = rnd(12, -1.0, 1.0);
    let x: [f64; 3] = rnd(13, -1.0, 1.0);
    let y: [f64; 3] = rnd(14, -1.0, 1.0);
    let av = a.vals();
    let g = check_fn!(square, square_vjp, [a => ga], expected = matmul_k(&av, &av, 3, 3, 3), tol = 1e-7);
    // d<U, A A>/dA = U Aᵀ + Aᵀ U
    let u = ops_macro_util::random_like(&a, 0x5eed).vals();
    let mut want = vec![0.0; 9];
    ops::matmul_backward(&av, &av, &u, 3, 3, 3, Some(&mut want), None).unwrap();
    ops::matmul_backward(&av, &av, &u, 3, 3, 3, None, Some(&mut want)).unwrap();
    assert_close!(g[0], want, 1e-12);

    let z: Vec<f64> = x.vals().iter().zip(y.vals()).map(|(a, b)| a + b).collect();
    let g = check_fn!(energy, energy_vjp, grad = energy_grad, [x => gx, y => gy], expected = vec![ops::dot(&z, &z).unwrap()], tol = 1e-7);
    // d(z.z)/dx = 2z u
    let u = ops_macro_util::random_like(&0.0f64, 0x5eed);
    let want: Vec<f64> = z.iter().map(|z| 2.0 * z * u).collect();
    assert_close!(g[0], want, 1e-12);
    assert_close!(g[1], want, 1e-12);

    let ax = matvec_k(&av, &x.vals(), 3, 3);
    check_fn!(self_matvec, self_matvec_vjp, grad = self_matvec_grad, [a => ga, x => gx], expected = vec![ops::dot(&x.vals(), &ax).unwrap()], tol = 1e-7);
    check_fn!(vv_self, vv_self_vjp, grad = vv_self_grad, [x => gx], expected = vec![ops::dot(&x.vals(), &x.vals()).unwrap()], tol = 1e-7);
    let xb = vecmat_k(&x.vals(), &av, 3, 3);
    check_fn!(vm_self, vm_self_vjp, [x => gx, a => ga], expected = vecmat_k(&xb, &av, 3, 3), tol = 1e-7);
    let mut out = vec![0.0; 9];
    ops::dense(&av, &av, None, 3, 3, 3, &mut out).unwrap();
    check_fn!(dense_self, dense_self_vjp, [a => ga], expected = out, tol = 1e-7);
}

model! {
    /// Batched operands against parameters: matmul [B, 3] x [3, 4] and [B, 3] x [3], dense.
    struct Batched {
        w: Param([3, 4]),
        v: Param([3]),
        dw: Param([4, 3]),
        db: Param([4]),
    }

    fn mat(x: [B, 3]) -> [B, 4] { matmul(x, w) }
    fn vec(x: [B, 3]) -> [B] { matmul(x, v) }
    fn lin(x: [B, 3]) -> [B, 4] { dense(x, dw, db) }

    fn loss(x: [B, 3], u: [B, 4], s: [B]) -> [] {
        sum(mat(x) * u) + sum(vec(x) * s) + sum(lin(x) * u * mat(x))
    }
}

#[test]
fn batched_operands_in_the_struct_form() {
    let mut model = Batched::<f64>::new(&mut StdRng::seed_from_u64(1));
    let x: Vec<[f64; 3]> = (0..5).map(|i| rnd(20 + i, -1.0, 1.0)).collect();
    let u: Vec<[f64; 4]> = (0..5).map(|i| rnd(30 + i, -1.0, 1.0)).collect();
    let s: Vec<f64> = nanograd::testing::random_vec(40, 5, -1.0, 1.0);
    let xf = x.as_flattened();
    let (w, v) = (model.w.value(), model.v.value());
    let m = matmul_k(xf, w, 5, 3, 4);
    assert_close!(model.mat(&x).unwrap().as_flattened(), m, 1e-12);
    let mvx = matvec_k(xf, v, 5, 3);
    assert_close!(model.vec(&x).unwrap(), mvx, 1e-12);
    let mut lin = vec![0.0; 20];
    ops::dense(
        xf,
        model.dw.value(),
        Some(model.db.value()),
        5,
        3,
        4,
        &mut lin,
    )
    .unwrap();
    assert_close!(model.lin(&x).unwrap().as_flattened(), lin, 1e-12);

    let base = model.clone();
    let loss = model.loss_backward(&x, &u, &s).unwrap();
    let uf = u.as_flattened();
    let want = ops_macro_util::dotv(&m, uf)
        + ops_macro_util::dotv(&mvx, &s)
        + lin
            .iter()
            .zip(uf)
            .zip(&m)
            .map(|((a, b), c)| a * b * c)
            .sum::<f64>();
    assert_close!(loss, want, 1e-12);
    let names = check_param_grads(&base, &model, |m| m.loss(&x, &u, &s).unwrap(), 1e-6, &[]);
    assert_eq!(names, ["w", "v", "dw", "db"]);

    let mut m32 = Batched::<f32>::new(&mut StdRng::seed_from_u64(2));
    copy_to_f32(&base, &mut m32);
    let x32: Vec<[f32; 3]> = x.iter().map(|r| r.map(|v| v as f32)).collect();
    let u32: Vec<[f32; 4]> = u.iter().map(|r| r.map(|v| v as f32)).collect();
    let s32: Vec<f32> = s.iter().map(|&v| v as f32).collect();
    assert_close!(m32.mat(&x32).unwrap().as_flattened(), m, 1e-5);
    let l32 = m32.loss_backward(&x32, &u32, &s32).unwrap();
    assert_close!(l32, want, 1e-5);
    ops_macro_util::assert_grads_close(&model, &m32, 1e-4);
}
