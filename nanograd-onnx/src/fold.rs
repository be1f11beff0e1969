//! Constant folding: the operators whose inputs are all known at conversion time, which the
//! exporters emit around reshapes (`Shape` → `Gather` → `Unsqueeze` → `Concat` → the target
//! of a `Reshape`) and for literal values. Each function returns the folded tensor or says
//! what it cannot fold.

use crate::tensor::{numel, Const, Data, Int};

type Folded = Result<Const, String>;

/// Normalises a possibly negative axis against a rank.
pub fn axis(a: i64, rank: usize) -> Result<usize, String> {
    let r = rank as i64;
    let k = if a < 0 { a + r } else { a };
    if (0..r).contains(&k) {
        Ok(k as usize)
    } else {
        Err(format!("axis {a} is out of range for rank {rank}"))
    }
}

fn strides(dims: &[usize]) -> Vec<usize> {
    let mut s = vec![1; dims.len()];
    for i in (0..dims.len().saturating_sub(1)).rev() {
        s[i] = s[i + 1] * dims[i + 1];
    }
    s
}

/// `Gather(data, indices, axis)`.
pub fn gather(data: &Const, indices: &Const, ax: i64) -> Folded {
    let ax = axis(ax, data.dims.len())?;
    let idx = indices
        .known_ints()
        .ok_or("the indices are not known integers")?;
    let n = *data.dims.get(ax).ok_or("gather on a scalar")? as i64;
    let idx: Vec<usize> = idx
        .iter()
        .map(|&i| {
            let k = if i < 0 { i + n } else { i };
            if (0..n).contains(&k) {
                Ok(k as usize)
            } else {
                Err(format!("index {i} is out of range for {n}"))
            }
        })
        .collect::<Result<_, String>>()?;
    let outer: usize = data.dims[..ax].iter().product();
    let inner: usize = data.dims[ax + 1..].iter().product();
    let mut pos = Vec::with_capacity(outer * idx.len() * inner);
    for o in 0..outer {
        for &i in &idx {
            for k in 0..inner {
                pos.push((o * data.dims[ax] + i) * inner + k);
            }
        }
    }
    let dims = [&data.dims[..ax], &indices.dims[..], &data.dims[ax + 1..]].concat();
    Ok(data.pick(dims, &pos))
}

/// `Unsqueeze(data, axes)`: new dimensions of size 1.
pub fn unsqueeze(data: &Const, axes: &[i64]) -> Folded {
    let rank = data.dims.len() + axes.len();
    let mut ax: Vec<usize> = axes
        .iter()
        .map(|&a| axis(a, rank))
        .collect::<Result<_, _>>()?;
    ax.sort_unstable();
    let mut dims = data.dims.clone();
    for a in ax {
        dims.insert(a, 1);
    }
    Ok(Const {
        dims,
        data: data.data.clone(),
    })
}

/// `Squeeze(data, axes?)`: removes dimensions of size 1 (all of them without axes).
pub fn squeeze(data: &Const, axes: Option<&[i64]>) -> Folded {
    let ax: Vec<usize> = match axes {
        Some(a) => a
            .iter()
            .map(|&a| axis(a, data.dims.len()))
            .collect::<Result<_, _>>()?,
        None => (0..data.dims.len())
            .filter(|&i| data.dims[i] == 1)
            .collect(),
    };
    if let Some(&bad) = ax.iter().find(|&&a| data.dims[a] != 1) {
        return Err(format!(
            "dimension {bad} has size {}, not 1",
            data.dims[bad]
        ));
    }
    let dims = data
        .dims
        .iter()
        .enumerate()
        .filter(|(i, _)| !ax.contains(i))
        .map(|(_, &d)| d)
        .collect();
    Ok(Const {
        dims,
        data: data.data.clone(),
    })
}

/// `Concat(inputs, axis)`.
pub fn concat(parts: &[&Const], ax: i64) -> Folded {
    let first = parts.first().ok_or("no inputs")?;
    let ax = axis(ax, first.dims.len())?;
    for p in parts {
        if p.dims.len() != first.dims.len()
            || p.dims
                .iter()
                .zip(&first.dims)
                .enumerate()
                .any(|(i, (a, b))| i != ax && a != b)
        {
            return Err(format!(
                "inputs of shapes {:?} and {:?} do not concatenate on axis {ax}",
                first.dims, p.dims
            ));
        }
    }
    let outer: usize = first.dims[..ax].iter().product();
    let float = parts.iter().any(|p| matches!(p.data, Data::Float(_)));
    let mut f = Vec::new();
    let mut i = Vec::new();
    for o in 0..outer {
        for p in parts {
            let block: usize = p.dims[ax..].iter().product();
            let range = o * block..(o + 1) * block;
            if float {
                f.extend_from_slice(&p.floats().ok_or("a batch-sized entry among floats")?[range]);
            } else {
                i.extend_from_slice(&p.sym_ints()[range]);
            }
        }
    }
    let mut dims = first.dims.clone();
    dims[ax] = parts.iter().map(|p| p.dims[ax]).sum();
    Ok(if float {
        Const::float(dims, f)
    } else {
        Const::ints(dims, i)
    })
}

/// `Slice(data, starts, ends, axes?, steps?)`.
pub fn slice(
    data: &Const,
    starts: &[i64],
    ends: &[i64],
    axes: Option<&[i64]>,
    steps: Option<&[i64]>,
) -> Folded {
    let rank = data.dims.len();
    let axes: Vec<usize> = match axes {
        Some(a) => a.iter().map(|&a| axis(a, rank)).collect::<Result<_, _>>()?,
        None => (0..starts.len()).collect(),
    };
    if starts.len() != axes.len() || ends.len() != axes.len() {
        return Err("starts, ends and axes differ in length".into());
    }
    let mut ranges: Vec<Vec<usize>> = data.dims.iter().map(|&d| (0..d).collect()).collect();
    for (k, &a) in axes.iter().enumerate() {
        let n = data.dims[a] as i64;
        let step = steps.map_or(1, |s| s.get(k).copied().unwrap_or(1));
        if step == 0 {
            return Err("a step of 0".into());
        }
        let clamp = |v: i64, lo: i64, hi: i64| v.max(lo).min(hi);
        let norm = |v: i64| if v < 0 { v + n } else { v };
        let mut picked = Vec::new();
        if step > 0 {
            let (mut i, e) = (clamp(norm(starts[k]), 0, n), clamp(norm(ends[k]), 0, n));
            while i < e {
                picked.push(i as usize);
                i += step;
            }
        } else {
            let (mut i, e) = (
                clamp(norm(starts[k]), -1, n - 1),
                clamp(norm(ends[k]), -1, n - 1),
            );
            while i > e {
                picked.push(i as usize);
                i += step;
            }
        }
        ranges[a] = picked;
    }
    let st = strides(&data.dims);
    let dims: Vec<usize> = ranges.iter().map(Vec::len).collect();
    let mut pos = vec![0usize];
    for (a, r) in ranges.iter().enumerate() {
        let sa = st[a];
        pos = pos
            .iter()
            .flat_map(|&p| r.iter().map(move |&i| p + i * sa))
            .collect();
    }
    Ok(data.pick(dims, &pos))
}

/// `Transpose(data, perm)`.
pub fn transpose(data: &Const, perm: &[usize]) -> Folded {
    let rank = data.dims.len();
    let mut seen = vec![false; rank];
    if perm.len() != rank
        || perm
            .iter()
            .any(|&p| p >= rank || std::mem::replace(&mut seen[p], true))
    {
        return Err(format!("perm {perm:?} is not a permutation of {rank} axes"));
    }
    let st = strides(&data.dims);
    let dims: Vec<usize> = perm.iter().map(|&p| data.dims[p]).collect();
    let mut pos = vec![0usize];
    for &p in perm {
        let sp = st[p];
        pos = pos
            .iter()
            .flat_map(|&q| (0..data.dims[p]).map(move |i| q + i * sp))
            .collect();
    }
    Ok(data.pick(dims, &pos))
}

/// `Reshape(data, shape)` on a constant (0 copies the input's dimension unless
/// `allowzero`, -1 is inferred).
pub fn reshape(data: &Const, shape: &[i64], allowzero: bool) -> Folded {
    let mut dims = Vec::with_capacity(shape.len());
    let mut infer = None;
    for (i, &s) in shape.iter().enumerate() {
        match s {
            -1 if infer.is_none() => {
                infer = Some(i);
                dims.push(1);
            }
            0 if !allowzero => dims.push(
                *data
                    .dims
                    .get(i)
                    .ok_or("0 copies a dimension the input lacks")?,
            ),
            s if s >= 0 => dims.push(s as usize),
            _ => return Err(format!("target {shape:?} is not a valid shape")),
        }
    }
    let known = numel(&dims).ok_or("overflow")?;
    if let Some(i) = infer {
        if known == 0 || !data.len().is_multiple_of(known) {
            return Err(format!("{} values do not reshape to {shape:?}", data.len()));
        }
        dims[i] = data.len() / known;
    } else if known != data.len() {
        return Err(format!("{} values do not reshape to {shape:?}", data.len()));
    }
    Ok(Const {
        dims,
        data: data.data.clone(),
    })
}

/// `Cast(data, to)`: to a float type or an integer type.
pub fn cast(data: &Const, to_float: bool) -> Folded {
    Ok(if to_float {
        Const::float(
            data.dims.clone(),
            data.floats().ok_or("the batch size cast to a float")?,
        )
    } else {
        Const::ints(data.dims.clone(), data.sym_ints())
    })
}

/// `ConstantOfShape(shape, value)`: a tensor of the given (known) shape filled with the
/// one-element `value` (a float 0 when absent). The exporters build a causal mask with it.
pub fn constant_of_shape(shape: &Const, value: Option<&Const>) -> Folded {
    let dims = shape
        .known_ints()
        .ok_or("the shape is not known while converting (it holds the batch size)")?;
    if dims.iter().any(|&d| d < 0) {
        return Err(format!("the shape {dims:?} has a negative dimension"));
    }
    let dims: Vec<usize> = dims.iter().map(|&d| d as usize).collect();
    let n = crate::tensor::bounded(&dims)?;
    Ok(match value {
        None => Const::float(dims, vec![0.0; n]),
        Some(v) if v.len() == 1 => match &v.data {
            Data::Float(f) => Const::float(dims, vec![f[0]; n]),
            Data::Int(i) => Const::ints(dims, vec![i[0]; n]),
        },
        Some(v) => return Err(format!("the value has {} elements, not 1", v.len())),
    })
}

/// `Trilu(x, k, upper)`: keeps the upper (or lower) triangle of the last two dimensions from
/// the `k`-th diagonal on (`j - i >= k`, or `j - i <= k`), zeroes the rest.
pub fn trilu(data: &Const, k: i64, upper: bool) -> Folded {
    let r = data.dims.len();
    if r < 2 {
        return Err(format!("Trilu needs two dimensions, got {:?}", data.dims));
    }
    let dims_of_trilu = data.dims.clone();
    let (rows, cols) = (data.dims[r - 2].max(1), data.dims[r - 1].max(1));
    let keep = |flat: usize| {
        let d = (flat % cols) as i64 - ((flat / cols) % rows) as i64;
        if upper {
            d >= k
        } else {
            d <= k
        }
    };
    let data = match &data.data {
        Data::Float(v) => Data::Float(
            v.iter()
                .enumerate()
                .map(|(f, &x)| if keep(f) { x } else { 0.0 })
                .collect(),
        ),
        Data::Int(v) => Data::Int(
            v.iter()
                .enumerate()
                .map(|(f, &x)| if keep(f) { x } else { Int::Known(0) })
                .collect(),
        ),
    };
    Ok(Const {
        dims: dims_of_trilu,
        data,
    })
}

/// The broadcast shape of several operands (NumPy's rules), or an error naming them.
fn broadcast_dims(all: &[&[usize]]) -> Result<Vec<usize>, String> {
    let rank = all.iter().map(|d| d.len()).max().unwrap_or(0);
    let mut out = vec![1; rank];
    for d in all {
        for (k, &n) in d.iter().enumerate() {
            let o = &mut out[rank - d.len() + k];
            if *o == 1 {
                *o = n;
            } else if n != 1 && n != *o {
                return Err(format!("shapes {all:?} do not broadcast"));
            }
        }
    }
    Ok(out)
}

/// For every position of the broadcast shape `out`, the flat position it reads in an
/// operand of shape `dims`.
fn broadcast_positions(out: &[usize], dims: &[usize]) -> Vec<usize> {
    let pad = [vec![1; out.len() - dims.len()], dims.to_vec()].concat();
    let (so, si) = (strides(out), strides(&pad));
    let n: usize = out.iter().product();
    (0..n)
        .map(|f| {
            (0..out.len())
                .map(|a| {
                    if pad[a] == 1 {
                        0
                    } else {
                        (f / so[a]) % out[a] * si[a]
                    }
                })
                .sum()
        })
        .collect()
}

/// `Expand(data, shape)`: `data` broadcast to `shape` (NumPy's rules, in both directions).
pub fn expand(data: &Const, shape: &[i64]) -> Folded {
    if shape.iter().any(|&d| d < 0) {
        return Err(format!("the shape {shape:?} has a negative dimension"));
    }
    let target: Vec<usize> = shape.iter().map(|&d| d as usize).collect();
    let dims = broadcast_dims(&[&data.dims, &target])?;
    crate::tensor::bounded(&dims)?;
    Ok(data.pick(dims.clone(), &broadcast_positions(&dims, &data.dims)))
}

/// `Where(cond, a, b)` with NumPy broadcasting: `a` where `cond` is non-zero, else `b`
/// (picked, so a `-inf` of one side never meets a 0 of the other).
pub fn where_(cond: &Const, a: &Const, b: &Const) -> Folded {
    let c: Vec<bool> = match &cond.data {
        Data::Int(v) => v.iter().map(|i| *i != Int::Known(0)).collect(),
        Data::Float(v) => v.iter().map(|&x| x != 0.0).collect(),
    };
    let dims = broadcast_dims(&[&cond.dims, &a.dims, &b.dims])?;
    crate::tensor::bounded(&dims)?;
    let (pc, pa, pb) = (
        broadcast_positions(&dims, &cond.dims),
        broadcast_positions(&dims, &a.dims),
        broadcast_positions(&dims, &b.dims),
    );
    match (&a.data, &b.data) {
        (Data::Int(x), Data::Int(y)) => Ok(Const::ints(
            dims,
            (0..pc.len())
                .map(|k| if c[pc[k]] { x[pa[k]] } else { y[pb[k]] })
                .collect(),
        )),
        _ => {
            let (x, y) = (
                a.floats().ok_or("an operand holds the batch size")?,
                b.floats().ok_or("an operand holds the batch size")?,
            );
            Ok(Const::float(
                dims,
                (0..pc.len())
                    .map(|k| if c[pc[k]] { x[pa[k]] } else { y[pb[k]] })
                    .collect(),
            ))
        }
    }
}

/// Elementwise `Add`/`Sub`/`Mul`/`Div` (and `Equal`, `Pow`, integer `Mod`) with NumPy
/// broadcasting.
pub fn binary(op: &str, a: &Const, b: &Const) -> Folded {
    let rank = a.dims.len().max(b.dims.len());
    let pad = |d: &[usize]| [vec![1; rank - d.len()], d.to_vec()].concat();
    let (da, db) = (pad(&a.dims), pad(&b.dims));
    let mut dims = Vec::with_capacity(rank);
    for (&x, &y) in da.iter().zip(&db) {
        dims.push(match (x, y) {
            (x, y) if x == y => x,
            (1, y) => y,
            (x, 1) => x,
            _ => {
                return Err(format!(
                    "shapes {:?} and {:?} do not broadcast",
                    a.dims, b.dims
                ))
            }
        });
    }
    let (sa, sb, so) = (strides(&da), strides(&db), strides(&dims));
    let n = numel(&dims).ok_or("overflow")?;
    let index = |flat: usize, d: &[usize], s: &[usize]| -> usize {
        (0..rank)
            .map(|k| {
                if d[k] == 1 {
                    0
                } else {
                    (flat / so[k]) % dims[k] * s[k]
                }
            })
            .sum()
    };
    let float = matches!(a.data, Data::Float(_)) || matches!(b.data, Data::Float(_)) || op == "Pow";
    if float && op == "Mod" {
        return Err("`Mod` of floats is not supported".into());
    }
    if float {
        let (va, vb) = (
            a.floats().ok_or("the batch size in float arithmetic")?,
            b.floats().ok_or("the batch size in float arithmetic")?,
        );
        let f = |x: f32, y: f32| match op {
            "Add" => x + y,
            "Sub" => x - y,
            "Mul" => x * y,
            "Div" => x / y,
            "Pow" => x.powf(y),
            _ => f32::from(u8::from(x == y)),
        };
        let v = (0..n)
            .map(|i| f(va[index(i, &da, &sa)], vb[index(i, &db, &sb)]))
            .collect();
        return Ok(if op == "Equal" {
            Const::ints(dims, float_to_bool(v))
        } else {
            Const::float(dims, v)
        });
    }
    let (va, vb) = (a.sym_ints(), b.sym_ints());
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let (x, y) = (va[index(i, &da, &sa)], vb[index(i, &db, &sb)]);
        out.push(match (op, x, y) {
            ("Add" | "Sub" | "Mul" | "Div", Int::Known(x), Int::Known(y)) => {
                let v = match op {
                    "Add" => x.checked_add(y),
                    "Sub" => x.checked_sub(y),
                    "Mul" => x.checked_mul(y),
                    _ => x.checked_div_euclid(y),
                };
                Int::Known(v.ok_or_else(|| {
                    format!("{op} of the integer constants {x} and {y} overflows or divides by 0")
                })?)
            }
            // ONNX's integer `Mod` (fmod = 0) takes the divisor's sign, as Python's `%`
            ("Mod", Int::Known(x), Int::Known(y)) if y != 0 => {
                // `wrapping_rem` only wraps for i64::MIN % -1, whose remainder is 0; adding
                // y to a remainder of the other sign cannot overflow
                let r = x.wrapping_rem(y);
                Int::Known(if r != 0 && (r < 0) != (y < 0) {
                    r + y
                } else {
                    r
                })
            }
            ("Mod", Int::Known(x), Int::Known(0)) => {
                return Err(format!("Mod of the integer constant {x} by 0"))
            }
            ("Equal", Int::Known(x), Int::Known(y)) => Int::Known(i64::from(x == y)),
            ("Mul" | "Div", Int::Batch, Int::Known(1)) | ("Mul", Int::Known(1), Int::Batch) => {
                Int::Batch
            }
            ("Add" | "Sub", Int::Batch, Int::Known(0)) | ("Add", Int::Known(0), Int::Batch) => {
                Int::Batch
            }
            _ => {
                return Err(format!(
                    "{op} of {x:?} and {y:?} involves the run-time batch size"
                ))
            }
        });
    }
    Ok(Const::ints(dims, out))
}

fn float_to_bool(v: Vec<f32>) -> Vec<Int> {
    v.into_iter()
        .map(|x| Int::Known(i64::from(x != 0.0)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ints(dims: Vec<usize>, v: &[i64]) -> Const {
        Const::ints(dims, v.iter().map(|&i| Int::Known(i)).collect())
    }

    #[test]
    fn integer_overflow_is_an_error_not_a_panic() {
        let big = ints(vec![], &[i64::MAX]);
        for op in ["Add", "Mul"] {
            let e = binary(op, &big, &ints(vec![], &[2])).unwrap_err();
            assert!(e.contains("overflows"), "{e}");
        }
        let e = binary("Sub", &ints(vec![], &[i64::MIN]), &ints(vec![], &[1])).unwrap_err();
        assert!(e.contains("overflows"), "{e}");
        assert!(binary("Div", &ints(vec![], &[i64::MIN]), &ints(vec![], &[-1])).is_err());
        assert!(binary("Div", &ints(vec![], &[7]), &ints(vec![], &[0])).is_err());
        let e = binary("Mod", &ints(vec![], &[7]), &ints(vec![], &[0])).unwrap_err();
        assert!(e.contains("by 0"), "{e}");
        // Python's %: the divisor's sign, and no overflow at the extremes
        let m = |x: i64, y: i64| binary("Mod", &ints(vec![], &[x]), &ints(vec![], &[y])).unwrap();
        assert_eq!(m(-7, 3), ints(vec![], &[2]));
        assert_eq!(m(7, -3), ints(vec![], &[-2]));
        assert_eq!(m(-6, 3), ints(vec![], &[0]));
        assert_eq!(m(i64::MIN, -1), ints(vec![], &[0]));
        assert_eq!(m(-1, i64::MAX), ints(vec![], &[i64::MAX - 1]));
    }

    #[test]
    fn shape_arithmetic_of_a_view() {
        // Shape of [B, 3, 3, 3] -> Gather 0 -> Unsqueeze 0 -> Concat with [-1] = [B, -1]
        let shape = Const::ints(
            vec![4],
            vec![Int::Batch, Int::Known(3), Int::Known(3), Int::Known(3)],
        );
        let b = gather(&shape, &ints(vec![], &[0]), 0).unwrap();
        assert_eq!(b, Const::ints(vec![], vec![Int::Batch]));
        let b = unsqueeze(&b, &[0]).unwrap();
        let t = concat(&[&b, &ints(vec![1], &[-1])], 0).unwrap();
        assert_eq!(t, Const::ints(vec![2], vec![Int::Batch, Int::Known(-1)]));
    }

    #[test]
    fn slices_transposes_and_broadcasts() {
        // [[0, 1, 2], [3, 4, 5]]
        let x = Const::float(vec![2, 3], (0..6).map(|i| i as f32).collect());
        let s = slice(&x, &[1], &[i64::MAX], Some(&[1]), None).unwrap();
        assert_eq!(s, Const::float(vec![2, 2], vec![1.0, 2.0, 4.0, 5.0]));
        let r = slice(&x, &[-1], &[i64::MIN], Some(&[1]), Some(&[-1])).unwrap();
        assert_eq!(
            r,
            Const::float(vec![2, 3], vec![2.0, 1.0, 0.0, 5.0, 4.0, 3.0])
        );
        let t = transpose(&x, &[1, 0]).unwrap();
        assert_eq!(
            t,
            Const::float(vec![3, 2], vec![0.0, 3.0, 1.0, 4.0, 2.0, 5.0])
        );
        let y = binary("Add", &x, &Const::float(vec![3], vec![10.0, 20.0, 30.0])).unwrap();
        assert_eq!(
            y,
            Const::float(vec![2, 3], vec![10.0, 21.0, 32.0, 13.0, 24.0, 35.0])
        );
        assert!(binary("Add", &x, &Const::float(vec![2], vec![1.0, 2.0])).is_err());
        let g = gather(&x, &ints(vec![2], &[2, 0]), 1).unwrap();
        assert_eq!(g, Const::float(vec![2, 2], vec![2.0, 0.0, 5.0, 3.0]));
        assert_eq!(reshape(&x, &[-1], false).unwrap().dims, vec![6]);
        assert!(reshape(&x, &[4, -1], false).is_err());
    }

    #[test]
    fn a_causal_mask_folds() {
        // TorchScript's mask: ConstantOfShape([3, 3], true), Trilu(upper, k = 1), Where(mask,
        // -inf, 0): -inf strictly above the diagonal, 0 on and below it
        let shape = Const::ints(vec![2], vec![Int::Known(3), Int::Known(3)]);
        let ones =
            constant_of_shape(&shape, Some(&Const::ints(vec![1], vec![Int::Known(1)]))).unwrap();
        assert_eq!(ones.sym_ints(), vec![Int::Known(1); 9]);
        let upper = trilu(&ones, 1, true).unwrap();
        let k = |v: &[i64]| v.iter().map(|&x| Int::Known(x)).collect::<Vec<_>>();
        assert_eq!(upper.sym_ints(), k(&[0, 1, 1, 0, 0, 1, 0, 0, 0]));
        let ninf = f32::NEG_INFINITY;
        let mask = where_(
            &upper,
            &Const::float(vec![], vec![ninf]),
            &Const::float(vec![3, 3], vec![0.0; 9]),
        )
        .unwrap();
        assert_eq!(mask.dims, [3, 3]);
        assert_eq!(
            mask.floats().unwrap(),
            [0.0, ninf, ninf, 0.0, 0.0, ninf, 0.0, 0.0, 0.0]
        );
        // the lower triangle (upper = 0, k = 0) of a [2, 2, 2] stack, row by row
        let x = Const::float(vec![2, 2, 2], (1..=8).map(|v| v as f32).collect());
        assert_eq!(
            trilu(&x, 0, false).unwrap().floats().unwrap(),
            [1.0, 0.0, 3.0, 4.0, 5.0, 0.0, 7.0, 8.0]
        );
        // no value: float zeros; an unknown (batch) shape cannot be folded
        assert_eq!(
            constant_of_shape(&shape, None).unwrap().floats().unwrap(),
            [0.0; 9]
        );
        let batch = Const::ints(vec![1], vec![Int::Batch]);
        assert!(constant_of_shape(&batch, None).is_err());
        assert!(trilu(&Const::float(vec![3], vec![1.0; 3]), 0, true).is_err());
    }

    #[test]
    fn where_broadcasts_and_mod_takes_the_divisors_sign() {
        // cond [2, 1] against a [1, 3] and b scalar
        let cond = Const::ints(vec![2, 1], vec![Int::Known(1), Int::Known(0)]);
        let a = Const::float(vec![1, 3], vec![1.0, 2.0, 3.0]);
        let b = Const::float(vec![], vec![-1.0]);
        let w = where_(&cond, &a, &b).unwrap();
        assert_eq!(w.dims, [2, 3]);
        assert_eq!(w.floats().unwrap(), [1.0, 2.0, 3.0, -1.0, -1.0, -1.0]);
        let bad = Const::float(vec![2], vec![0.0; 2]);
        assert!(where_(&cond, &Const::float(vec![3], vec![0.0; 3]), &bad).is_err());
        // 2 mod 3 = 2, -2 mod 3 = 1, 2 mod -3 = -1 (Python's %)
        let m = binary(
            "Mod",
            &Const::ints(vec![3], vec![Int::Known(2), Int::Known(-2), Int::Known(2)]),
            &Const::ints(vec![3], vec![Int::Known(3), Int::Known(3), Int::Known(-3)]),
        )
        .unwrap();
        assert_eq!(m.known_ints().unwrap(), [2, 1, -1]);
        assert!(binary("Mod", &b, &b).is_err());
    }
}
