//! `F.scaled_dot_product_attention(q, k, v, is_causal=..)` written by hand → `attention(q, k,
//! v, causal = ..)`.
//!
//! The exporters write it as `softmax(q·s · kᵀ·s (+ mask))·v`, but reach `kᵀ` (and sometimes
//! `q` and `v`) through transposes of several dimensions at once or reshapes that merge the
//! batch into the heads, which the DSL cannot write op by op. Its nodes are converted as
//! usual but speculatively (their problems held back); at the final product the region is
//! read back: each of `q`, `k·ᵀ` and `v` is followed from the nearest converted tensor
//! through its `Reshape`, `Transpose` and scalar `Mul`/`Div` nodes as a rearrangement of
//! that tensor's dimensions ([`Layout`]), and it is taken for `attention` when `q` and `v`
//! come out as `[B, h, t, d]` of whole dimensions, `kᵀ` as `[B, h, d, t]`, the scales
//! multiply to `1/√d` and the mask is absent or exactly the causal one. Else the held-back
//! problems are reported.

use std::collections::HashSet;

use super::patterns::{Kind, Region};
use super::{fmt_dims, Act, Converter, Dim, Value};
use crate::consts::{dims_src, Role};
use crate::proto::NodeProto;
use crate::tensor::Int;

fn op_of(n: &NodeProto) -> &str {
    n.op_type.as_deref().unwrap_or("")
}

/// Operators a `q`, `kᵀ` or `v` chain may hold.
const CHAIN: &[&str] = &["Mul", "Div", "Transpose", "Reshape"];

/// A tensor as a rearrangement of a source tensor: the source's dimensions cut into
/// `atoms` (sizes in the source's row-major order; `None` is the batch), and each current
/// dimension the atoms it merges, in order.
#[derive(Clone, Debug)]
struct Layout {
    /// `(id, size)` in the source's memory order.
    atoms: Vec<(usize, Option<usize>)>,
    dims: Vec<Vec<usize>>,
    next_id: usize,
}

impl Layout {
    fn new(shape: &[Dim]) -> Layout {
        let atoms: Vec<(usize, Option<usize>)> = shape
            .iter()
            .enumerate()
            .map(|(i, d)| match d {
                Dim::Batch => (i, None),
                Dim::Fixed(n, _) => (i, Some(*n)),
            })
            .collect();
        Layout {
            dims: (0..atoms.len()).map(|i| vec![i]).collect(),
            next_id: atoms.len(),
            atoms,
        }
    }

    fn size(&self, id: usize) -> Option<Option<usize>> {
        self.atoms.iter().find(|a| a.0 == id).map(|a| a.1)
    }

    fn transpose(&mut self, perm: &[usize]) -> Option<()> {
        if perm.len() != self.dims.len() {
            return None;
        }
        let mut seen = perm.to_vec();
        seen.sort_unstable();
        if seen != (0..perm.len()).collect::<Vec<_>>() {
            return None;
        }
        self.dims = perm.iter().map(|&p| self.dims[p].clone()).collect();
        Some(())
    }

    /// Splits atom `id` (of a known size divisible by `first`) into `first` and the rest.
    fn split(&mut self, id: usize, first: usize) -> Option<(usize, usize)> {
        let k = self.atoms.iter().position(|a| a.0 == id)?;
        let size = self.atoms[k].1?;
        if first == 0 || size % first != 0 {
            return None;
        }
        let (a, b) = (self.next_id, self.next_id + 1);
        self.next_id += 2;
        self.atoms
            .splice(k..=k, [(a, Some(first)), (b, Some(size / first))]);
        for d in &mut self.dims {
            if let Some(p) = d.iter().position(|&x| x == id) {
                d.splice(p..=p, [a, b]);
            }
        }
        Some((a, b))
    }

    /// `Reshape` to `target` (its entries may be the batch, `-1` or `0`).
    fn reshape(&mut self, target: &[Int]) -> Option<()> {
        // resolve the target: `0` copies, the batch stays symbolic, `-1` takes what is left
        let known: usize = self.atoms.iter().filter_map(|a| a.1).product();
        let mut sizes: Vec<Option<Option<usize>>> = Vec::new(); // None: the -1 entry
        for (i, t) in target.iter().enumerate() {
            sizes.push(match *t {
                Int::Batch => Some(None),
                Int::Known(0) => {
                    let d = self.dims.get(i)?;
                    match d.as_slice() {
                        [one] => Some(self.size(*one)?),
                        _ => return None,
                    }
                }
                Int::Known(-1) => None,
                Int::Known(n) if n > 0 => Some(Some(n as usize)),
                Int::Known(_) => return None,
            });
        }
        let fixed: usize = sizes.iter().flatten().flatten().product();
        let has_batch = sizes.iter().any(|s| matches!(s, Some(None)));
        let mut seq: Vec<usize> = self.dims.concat();
        let mut dims = Vec::new();
        for s in sizes {
            let mut group = Vec::new();
            // the entry's size, and whether it holds the batch
            let (mut need, batch) = match s {
                Some(None) => (1, true),
                Some(Some(n)) => (n, false),
                None if fixed > 0 && known.is_multiple_of(fixed) => (known / fixed, !has_batch),
                None => return None,
            };
            let mut batch_left = batch;
            while need > 1 || batch_left {
                let &id = seq.first()?;
                match self.size(id)? {
                    None if batch_left => {
                        batch_left = false;
                        group.push(seq.remove(0));
                    }
                    None | Some(0) => return None,
                    Some(n) if n <= need && need % n == 0 => {
                        need /= n;
                        group.push(seq.remove(0));
                    }
                    Some(n) if n.is_multiple_of(need) => {
                        let (a, b) = self.split(id, need)?;
                        seq.splice(0..1, [a, b]);
                        need = 1;
                        group.push(seq.remove(0));
                    }
                    Some(_) => return None,
                }
            }
            // size-1 atoms belong to the entry they follow
            while seq
                .first()
                .is_some_and(|&id| self.size(id) == Some(Some(1)) && !group.is_empty())
            {
                group.push(seq.remove(0));
            }
            if group.is_empty() {
                return None;
            }
            dims.push(group);
        }
        if !seq.is_empty() {
            return None;
        }
        self.dims = dims;
        Some(())
    }

    /// The DSL expression of this layout from the source expression `src` of shape
    /// `shape`: a reshape to the atoms, then transposes; `None` where the DSL cannot
    /// express it (the batch not first and whole, dimensions left merged).
    fn expression(&self, src: &str, shape: &[Dim]) -> Option<(String, Vec<Dim>)> {
        if self.dims.iter().any(|d| d.len() != 1) {
            return None;
        }
        // an atom that is a whole dimension of the source keeps that dimension's symbol
        let dim_of = |id: usize, size: Option<usize>| match (size, shape.get(id)) {
            (None, _) => Dim::Batch,
            (Some(n), Some(d)) if *d == Dim::fixed(n) => *d,
            (Some(n), _) => Dim::fixed(n),
        };
        let atom_dims: Vec<Dim> = self.atoms.iter().map(|a| dim_of(a.0, a.1)).collect();
        if atom_dims.first() != Some(&Dim::Batch) || self.dims.first()? != &[self.atoms[0].0] {
            return None;
        }
        let mut expr = if atom_dims == shape {
            src.to_string()
        } else {
            format!("reshape({src}, {})", dims_src(&atom_dims))
        };
        // the wanted order of the atoms, reached by swaps that never move the batch
        let want: Vec<usize> = self.dims.iter().map(|d| d[0]).collect();
        let mut order: Vec<usize> = self.atoms.iter().map(|a| a.0).collect();
        for (i, &w) in want.iter().enumerate().skip(1) {
            let j = order.iter().position(|&x| x == w)?;
            if j != i {
                expr = format!("transpose({expr}, {i}, {j})");
                order.swap(i, j);
            }
        }
        let dims = want
            .iter()
            .map(|&id| self.size(id).map(|s| dim_of(id, s)))
            .collect::<Option<Vec<Dim>>>()?;
        Some((expr, dims))
    }
}

impl Converter<'_> {
    /// The attention around the `Softmax` node `sm`: its scores are a product of two
    /// run-time tensors (scaled, a constant mask added), its output multiplies a third.
    pub(super) fn sdpa_region(&self, sm: usize, rt: &HashSet<String>) -> Option<Region> {
        let producer = |t: &str| {
            self.nodes
                .iter()
                .position(|n| n.output.iter().any(|o| o == t))
        };
        let s_out = self.nodes[sm].output.first()?;
        let &m2 = match self.consumers.get(s_out)?.as_slice() {
            [one] => one,
            _ => return None,
        };
        let out = &self.nodes[m2];
        if op_of(out) != "MatMul"
            || out.input.first() != Some(s_out)
            || !rt.contains(out.input.get(1)?)
        {
            return None;
        }
        let mut nodes = vec![sm, m2];
        // back from the softmax: the mask's add and scalings, then the product of q and kᵀ
        let mut cur = self.nodes[sm].input.first()?.clone();
        let m1 = loop {
            let p = producer(&cur)?;
            let node = &self.nodes[p];
            let runtime: Vec<&String> = node.input.iter().filter(|i| rt.contains(*i)).collect();
            match (op_of(node), runtime.as_slice()) {
                ("MatMul", [_, _]) => break p,
                ("Add" | "Mul" | "Div", [one]) if nodes.len() < 6 => {
                    nodes.push(p);
                    cur = (*one).clone();
                }
                _ => return None,
            }
        };
        nodes.push(m1);
        // the chains of q, kᵀ and v
        for t in [
            &self.nodes[m1].input[0],
            &self.nodes[m1].input[1],
            &out.input[1],
        ] {
            let mut cur = t.clone();
            for _ in 0..8 {
                let Some(p) = producer(&cur) else { break };
                let node = &self.nodes[p];
                if !CHAIN.contains(&op_of(node)) {
                    break;
                }
                let runtime: Vec<&String> = node.input.iter().filter(|i| rt.contains(*i)).collect();
                let [one] = runtime.as_slice() else { break };
                nodes.push(p);
                cur = (*one).clone();
            }
        }
        nodes.sort_unstable();
        nodes.dedup();
        if nodes.last() != Some(&m2) {
            return None;
        }
        Some(Region {
            nodes,
            kind: Kind::Sdpa {
                softmax: sm,
                m1,
                m2,
            },
        })
    }

    /// The layout of the tensor `t` from the farthest converted tensor up its chain of
    /// region nodes, and the product of the scalar factors on the way.
    fn follow(&self, t: &str, region: &HashSet<usize>) -> Option<(Act, Layout, f64)> {
        // back to the nearest converted tensor that is not a scaling (a scaling is read
        // as a factor instead)
        let mut chain = Vec::new();
        let mut best = None;
        let mut cur = t.to_string();
        loop {
            let producer = self
                .nodes
                .iter()
                .position(|n| n.output.first() == Some(&cur))
                .filter(|p| region.contains(p) && CHAIN.contains(&op_of(&self.nodes[*p])));
            let scaling = producer.is_some_and(|p| matches!(op_of(&self.nodes[p]), "Mul" | "Div"));
            if let Some(Value::Act(a)) = self.values.get(&cur) {
                if !a.index && !scaling {
                    best = Some((a.clone(), chain.len()));
                    break;
                }
            }
            let Some(p) = producer else { break };
            let node = &self.nodes[p];
            let next = node
                .input
                .iter()
                .find(|i| !matches!(self.values.get(*i), Some(Value::Const(_))))?
                .clone();
            chain.push(p);
            cur = next;
        }
        let (src, len) = best?;
        let src = self.materialize(&src);
        let mut layout = Layout::new(&src.shape);
        let mut scale = 1.0f64;
        for &p in chain[..len].iter().rev() {
            let node = &self.nodes[p];
            let konst = |k: usize| match self.values.get(node.input.get(k)?) {
                Some(Value::Const(c)) => Some(c.clone()),
                _ => None,
            };
            match op_of(node) {
                "Transpose" => {
                    let perm: Vec<usize> = super::attr_ints(node, "perm")?
                        .iter()
                        .map(|&a| usize::try_from(a).ok())
                        .collect::<Option<_>>()?;
                    layout.transpose(&perm)?;
                }
                "Reshape" => {
                    if super::attr_i(node, "allowzero", 0) != 0
                        && konst(1)?.sym_ints().contains(&Int::Known(0))
                    {
                        return None;
                    }
                    layout.reshape(&konst(1)?.sym_ints())?
                }
                "Mul" => {
                    let c = konst(0).or_else(|| konst(1))?;
                    scale *= f64::from(c.scalar()?);
                }
                "Div" => scale /= f64::from(konst(1)?.scalar()?),
                _ => return None,
            }
        }
        Some((src, layout, scale))
    }

    /// `attention(q, k, v, causal = ..)` if the region is scaled dot-product attention.
    pub(super) fn sdpa(
        &mut self,
        nodes: &[usize],
        sm: usize,
        m1: usize,
        m2: usize,
    ) -> Result<(String, Act), Option<String>> {
        let fail = |m: &str| {
            Err(Some(format!(
                "not converted as scaled dot-product attention: {m}"
            )))
        };
        let region: HashSet<usize> = nodes.iter().copied().collect();
        let axis = super::attr_i(&self.nodes[sm], "axis", -1);
        let (a, b, v) = (
            self.nodes[m1].input[0].clone(),
            self.nodes[m1].input[1].clone(),
            self.nodes[m2].input[1].clone(),
        );
        let Some((qs, ql, s_q)) = self.follow(&a, &region) else {
            return fail("q is not a rearrangement of a converted tensor");
        };
        let Some((ks, kl, s_k)) = self.follow(&b, &region) else {
            return fail("kᵀ is not a rearrangement of a converted tensor");
        };
        let Some((vs, vl, s_v)) = self.follow(&v, &region) else {
            return fail("v is not a rearrangement of a converted tensor");
        };
        // kᵀ's last two dimensions swapped back: k
        let mut kl = kl;
        let r = kl.dims.len();
        if r < 2 {
            return Err(None);
        }
        kl.dims.swap(r - 1, r - 2);
        let (Some((q, qd)), Some((k, kd)), Some((vv, vd))) = (
            ql.expression(&qs.expr, &qs.shape),
            kl.expression(&ks.expr, &ks.shape),
            vl.expression(&vs.expr, &vs.shape),
        ) else {
            return fail("q, k or v is not a tensor of whole dimensions with the batch first");
        };
        if s_v != 1.0 {
            return fail("v is scaled");
        }
        let rank = qd.len();
        let d = match qd.last() {
            Some(Dim::Fixed(d, _)) => *d,
            _ => return Err(None),
        };
        if rank < 3
            || kd.len() != rank
            || vd.len() != rank
            || qd[..rank - 2] != kd[..rank - 2]
            || kd[..rank - 1] != vd[..rank - 1]
            || qd[rank - 1] != kd[rank - 1]
            || (axis != -1 && axis != rank as i64 - 1)
        {
            return fail(&format!(
                "q {}, k {} and v {} do not fit",
                fmt_dims(&qd),
                fmt_dims(&kd),
                fmt_dims(&vd)
            ));
        }
        // the scalings between the product and the softmax, and the mask added there
        let mut scale = s_q * s_k;
        let mut mask = None;
        let m1_out = self.nodes[m1].output.first().cloned().ok_or(None)?;
        let mut cur = self.nodes[sm].input.first().cloned().ok_or(None)?;
        while cur != m1_out {
            let p = nodes
                .iter()
                .copied()
                .find(|&p| self.nodes[p].output.first() == Some(&cur))
                .ok_or(None)?;
            let node = &self.nodes[p];
            let (mut konst, mut next) = (None, None);
            for i in &node.input {
                match self.values.get(i) {
                    Some(Value::Const(c)) => konst = Some(c.clone()),
                    _ => next = Some(i.clone()),
                }
            }
            let (Some(c), Some(next)) = (konst, next) else {
                return Err(None);
            };
            match op_of(node) {
                "Add" if mask.is_none() => mask = Some(c),
                "Mul" => scale *= f64::from(c.scalar().ok_or(None)?),
                "Div" if node.input.first() == Some(&next) => {
                    scale /= f64::from(c.scalar().ok_or(None)?)
                }
                _ => return fail("the scores pass through another operation"),
            }
            cur = next;
        }
        let want = 1.0 / (d as f64).sqrt();
        if (scale - want).abs() > 1e-6 * want {
            return fail(&format!("the scores are scaled by {scale}, not 1/√{d}"));
        }
        let (tq, tk) = match (&qd[rank - 2], &kd[rank - 2]) {
            (Dim::Fixed(a, _), Dim::Fixed(b, _)) => (*a, *b),
            _ => return Err(None),
        };
        let mut causal = false;
        if let Some(m) = mask {
            let v = m.floats().ok_or(None)?;
            let mut dims = m.dims.clone();
            while dims.len() > 2 && dims[0] == 1 {
                dims.remove(0);
            }
            if dims != [tq, tk] {
                return fail(&format!("the mask has dims {:?}, not [{tq}, {tk}]", m.dims));
            }
            causal = (0..tq * tk).all(|i| {
                let (r, c) = (i / tk, i % tk);
                if c > r {
                    v[i] <= f32::MIN // -inf, or the lowest float as the default exporter writes
                } else {
                    v[i] == 0.0
                }
            });
            if !causal && v.iter().any(|&x| x != 0.0) {
                return fail(
                    "the mask is neither absent nor the causal one (-inf above the diagonal)",
                );
            }
        }
        // q, k and v share their leading dimensions and heads, q and k their width: one
        // role each; the heads and their width get their names here
        for i in 0..rank - 2 {
            self.syms.unify(qd[i], kd[i]);
            self.syms.unify(kd[i], vd[i]);
        }
        self.syms.unify(qd[rank - 1], kd[rank - 1]);
        self.syms.unify(kd[rank - 2], vd[rank - 2]);
        if rank == 4 {
            self.syms.name(qd[1], Role::found("HEADS", "HEADS"));
            self.syms
                .name(qd[3], Role::found("HEAD_DIM", "QK_HEAD_DIM"));
            self.syms.name(vd[3], Role::found("HEAD_DIM", "V_HEAD_DIM"));
        }
        self.syms.unite_splits();
        let mut shape = qd.clone();
        shape[rank - 1] = vd[rank - 1];
        let causal = if causal { ", causal = true" } else { "" };
        let out = self.nodes[m2].output.first().cloned().ok_or(None)?;
        Ok((
            out,
            Act::new(format!("attention({q}, {k}, {vv}{causal})"), shape),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const B: Dim = Dim::Batch;
    fn f(n: usize) -> Dim {
        Dim::fixed(n)
    }

    #[test]
    fn k_transposed_through_merged_heads_is_k() {
        // k [B, 2, 8, 4] → reshape [-1, 8, 4] (the batch merged with the heads) →
        // transpose [0, 2, 1] → reshape [B, 2, 4, 8]: kᵀ; its last two swapped back are k
        let shape = [B, f(2), f(8), f(4)];
        let mut l = Layout::new(&shape);
        l.reshape(&[Int::Known(-1), Int::Known(8), Int::Known(4)])
            .unwrap();
        assert_eq!(l.dims, [vec![0, 1], vec![2], vec![3]]);
        l.transpose(&[0, 2, 1]).unwrap();
        l.reshape(&[Int::Batch, Int::Known(2), Int::Known(4), Int::Known(8)])
            .unwrap();
        l.dims.swap(2, 3);
        assert_eq!(
            l.expression("k", &shape),
            Some(("k".into(), shape.to_vec()))
        );
    }

    #[test]
    fn heads_split_from_the_width_and_moved() {
        // q [B, 8, 16] viewed as [B, 8, 2, 8] (16 split into 2 × 8), then transpose(1, 2);
        // TorchScript's kᵀ: the same view transposed [0, 2, 3, 1], swapped back
        let shape = [B, f(8), f(16)];
        let mut q = Layout::new(&shape);
        q.reshape(&[Int::Batch, Int::Known(8), Int::Known(2), Int::Known(8)])
            .unwrap();
        let mut k = q.clone();
        q.transpose(&[0, 2, 1, 3]).unwrap();
        let heads = vec![B, f(2), f(8), f(8)];
        assert_eq!(
            q.expression("q", &shape),
            Some((
                "transpose(reshape(q, [B, 8, 2, 8]), 1, 2)".into(),
                heads.clone()
            ))
        );
        k.transpose(&[0, 2, 3, 1]).unwrap();
        k.dims.swap(2, 3);
        assert_eq!(
            k.expression("k", &shape),
            Some(("transpose(reshape(k, [B, 8, 2, 8]), 1, 2)".into(), heads))
        );
    }

    #[test]
    fn what_the_dsl_cannot_write_has_no_expression() {
        let shape = [B, f(8), f(16)];
        // the batch moved away from the front
        let mut l = Layout::new(&shape);
        l.transpose(&[1, 0, 2]).unwrap();
        assert_eq!(l.expression("x", &shape), None);
        // dimensions left merged
        let mut l = Layout::new(&[B, f(2), f(8), f(4)]);
        l.reshape(&[Int::Batch, Int::Known(16), Int::Known(4)])
            .unwrap();
        assert_eq!(l.expression("x", &shape), None);
        // sizes that do not divide, and a perm of the wrong length
        let mut l = Layout::new(&shape);
        assert_eq!(
            l.reshape(&[Int::Batch, Int::Known(3), Int::Known(-1)]),
            None
        );
        assert_eq!(l.transpose(&[0, 1]), None);
    }
}
