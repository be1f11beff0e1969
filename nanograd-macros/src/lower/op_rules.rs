//! Op calls (`relu(x)`, `matmul(a, b)`, `conv2d(x, w, stride = 2)`): argument forms and the
//! shape rule of every op.

use super::*;

impl Lower<'_> {
    pub(super) fn op_call(
        &mut self,
        e: &Expr,
        spec: &ops::OpSpec,
        name: &Ident,
        pos: Vec<&Expr>,
        kws: Vec<(&Ident, &Expr)>,
        env: &Env,
    ) -> Option<NodeId> {
        let required = spec.args.len() - spec.optional;
        if pos.len() < required || pos.len() > spec.args.len() {
            self.errs.at(
                e,
                format!(
                    "`{name}` takes {} argument{}, got {}: {}",
                    if spec.optional > 0 {
                        format!("{required} to {}", spec.args.len())
                    } else {
                        required.to_string()
                    },
                    if spec.args.len() == 1 { "" } else { "s" },
                    pos.len(),
                    spec.signature()
                ),
            );
            return None;
        }
        let mut kw = Keywords::new(kws, self.errs);
        let num = |kw: &mut Keywords, key: &str, errs: &mut Errors| -> Option<f64> {
            match kw.take(key) {
                Some(v) => eval_f64(v, errs),
                None => spec.kwargs.iter().find(|(k, _)| *k == key).map(|(_, d)| *d),
            }
        };
        let op = name.to_string();
        // Arguments that are not tensors are read by the op's own arm below.
        let tensor_args = match op.as_str() {
            "scale" | "reduce" | "slice" | "reshape" | "transpose" => 1,
            _ => pos.len(),
        };
        let args: Vec<Option<NodeId>> = pos[..tensor_args]
            .iter()
            .map(|a| self.expr(a, env))
            .collect();
        // u32 indices go only into the targets of softmax_cross_entropy
        let mut rejected = false;
        for (j, a) in args.iter().enumerate() {
            if let Some(a) = *a {
                if !(op == "softmax_cross_entropy" && j == 1) {
                    rejected |= self.reject_index(pos[j], a, &format!("`{op}`"));
                }
            }
        }
        if rejected {
            return None;
        }
        let causal = if op == "attention" {
            match kw.take("causal").map(|c| eval_bool(c, self.errs)) {
                Some(None) => return None,
                Some(Some(c)) => c,
                None => false,
            }
        } else {
            false
        };
        // `gelu(x, approximate = "none")` is the exact GELU; "tanh" (the default) the
        // approximation
        let exact_gelu = if op == "gelu" {
            match kw
                .take("approximate")
                .map(|a| eval_gelu_approximate(a, self.errs))
            {
                Some(None) => return None,
                Some(Some(exact)) => exact,
                None => false,
            }
        } else {
            false
        };
        let known: Vec<&str> = spec.kwargs.iter().map(|(k, _)| *k).collect();
        let result = match op.as_str() {
            "reduce" => {
                let x = args[0];
                let init = eval_f64(pos[1], self.errs);
                let f = pos[2].to_token_stream();
                let rule = kw.take("grad").map(|g| g.to_token_stream());
                kw.finish("reduce", &known, self.errs);
                let x = x?;
                Some(self.push(
                    Op::Reduce {
                        init: init?,
                        f,
                        rule,
                    },
                    vec![x],
                    Shape::scalar(),
                ))
            }
            _ => {
                let nums: HashMap<&str, Option<f64>> = known
                    .iter()
                    .map(|k| (*k, num(&mut kw, k, self.errs)))
                    .collect();
                kw.finish(&format!("`{op}`"), &known, self.errs);
                let args: Vec<NodeId> = args.into_iter().collect::<Option<_>>()?;
                let mut nums: HashMap<&str, f64> = nums
                    .into_iter()
                    .map(|(k, v)| v.map(|v| (k, v)))
                    .collect::<Option<_>>()?;
                if causal {
                    nums.insert("causal", 1.0);
                }
                if exact_gelu {
                    nums.insert("approximate", 1.0);
                }
                self.op_shape(e, &op, name, &pos, &args, &nums)
            }
        };
        result
    }

    /// Shape rule and node of each op, once its arguments are lowered.
    fn op_shape(
        &mut self,
        e: &Expr,
        op: &str,
        name: &Ident,
        pos: &[&Expr],
        args: &[NodeId],
        nums: &HashMap<&str, f64>,
    ) -> Option<NodeId> {
        let s: Vec<Shape> = args.iter().map(|&a| self.shape(a).clone()).collect();
        let d = |i: usize| describe(pos[i]);
        let same = |me: &mut Self, rule: Op| -> Option<NodeId> {
            let shape = s[0].clone();
            Some(me.push(rule, args.to_vec(), shape))
        };
        match op {
            "add" | "sub" | "mul" | "div" => {
                let b = match op {
                    "add" => Binary::Add,
                    "sub" => Binary::Sub,
                    "mul" => Binary::Mul,
                    _ => Binary::Div,
                };
                self.binary(e, b, pos[0], args[0], pos[1], args[1])
            }
            "safe_div" => {
                let shape = self.broadcast_or_err(e, op, pos, &s)?;
                Some(self.push(Op::SafeDiv(nums["eps"]), args.to_vec(), shape))
            }
            "scale" => {
                let f = eval_f64(pos[1], self.errs)?;
                same(self, Op::Scale(f))
            }
            "relu" | "tanh" | "sigmoid" | "sigmoid_stable" | "gelu" | "silu" => {
                let u = match op {
                    "relu" => Unary::Relu,
                    "tanh" => Unary::Tanh,
                    "sigmoid" => Unary::Sigmoid,
                    "sigmoid_stable" => Unary::SigmoidStable,
                    "gelu" if nums["approximate"] != 0.0 => Unary::GeluErf,
                    "gelu" => Unary::Gelu,
                    _ => Unary::Silu,
                };
                same(self, Op::Unary(u))
            }
            "leaky_relu" => same(self, Op::LeakyRelu(nums["alpha"])),
            "softplus" => same(self, Op::Softplus(nums["beta"])),
            "softmax" | "log_softmax" => {
                if s[0].is_scalar() {
                    self.errs.at(
                        pos[0],
                        format!(
                            "`{op}` works over the last dimension, but `{}` is a scalar",
                            d(0)
                        ),
                    );
                    return None;
                }
                same(
                    self,
                    if op == "softmax" {
                        Op::Softmax
                    } else {
                        Op::LogSoftmax
                    },
                )
            }
            "sum" | "mean" | "product" => {
                let o = match op {
                    "sum" => Op::Sum,
                    "mean" => Op::Mean,
                    _ => Op::Product,
                };
                Some(self.push(o, args.to_vec(), Shape::scalar()))
            }
            "softmax_cross_entropy" if self.nodes[args[1]].op.is_index() => {
                let mut want = s[0].dims.clone();
                want.pop();
                if s[0].rank() < 2 || !s[0].is_batched() || s[1].dims != want {
                    let expect = if s[0].is_scalar() {
                        "logits [B, n] or [B, t, n]".to_string()
                    } else {
                        format!("u32{}", s[0].with_dims(want))
                    };
                    self.errs.at(
                        e,
                        format!(
                            "`softmax_cross_entropy` with class indices takes logits [B, n] with targets u32[B] or logits [B, t, n] with targets u32[B, t]; `{}` is {} so the targets must be {expect}, but `{}` is u32{}",
                            d(0),
                            s[0],
                            d(1),
                            s[1]
                        ),
                    );
                    return None;
                }
                Some(self.push(
                    Op::SoftmaxCrossEntropyIndices,
                    args.to_vec(),
                    Shape::scalar(),
                ))
            }
            "mse_loss" | "cross_entropy_loss" | "softmax_cross_entropy" => {
                if s[0].dims != s[1].dims {
                    self.errs.at(
                        e,
                        format!(
                            "`{op}` needs `{}` and `{}` of one shape, but they are {} and {}",
                            d(0),
                            d(1),
                            s[0],
                            s[1]
                        ),
                    );
                    return None;
                }
                if op == "softmax_cross_entropy" && s[0].is_scalar() {
                    self.errs.at(
                        pos[0],
                        "`softmax_cross_entropy` needs logits with a class dimension",
                    );
                    return None;
                }
                let o = match op {
                    "mse_loss" => Op::MseLoss,
                    "cross_entropy_loss" => Op::CrossEntropyLoss,
                    _ => Op::SoftmaxCrossEntropy,
                };
                Some(self.push(o, args.to_vec(), Shape::scalar()))
            }
            "dot" => {
                if s[0].rank() != 1 || s[0].dims != s[1].dims {
                    self.errs.at(
                        e,
                        format!(
                            "`dot` needs two vectors of one length, but `{}` is {} and `{}` is {}",
                            d(0),
                            s[0],
                            d(1),
                            s[1]
                        ),
                    );
                    return None;
                }
                Some(self.push(Op::Dot, args.to_vec(), Shape::scalar()))
            }
            "matmul" => self.matmul(e, pos, args, &s),
            "transpose" => self.transpose(pos, args, &s),
            "concat" => self.concat(e, pos, args, &s, nums["dim"]),
            "causal_mask" => {
                let r = s[0].rank();
                let square = r >= 2
                    && s[0].fixed_at(r - 1).is_some()
                    && s[0].fixed_at(r - 1) == s[0].fixed_at(r - 2);
                if !square {
                    self.errs.at(
                        pos[0],
                        format!(
                            "`causal_mask` masks a square [.., t, t] (queries by keys), but `{}` is {}",
                            d(0),
                            s[0]
                        ),
                    );
                    return None;
                }
                same(self, Op::CausalMask)
            }
            "attention" => self.attention(e, pos, args, &s, nums["causal"] != 0.0),
            "dense" => {
                let (in_f, out_f) = match (s[1].rank(), s[1].fixed_at(0), s[1].fixed_at(1)) {
                    (2, Some(o), Some(i)) => (i, o),
                    _ => {
                        self.errs.at(
                            pos[1],
                            format!(
                                "`dense` needs a weight [out, in], but `{}` is {}",
                                d(1),
                                s[1]
                            ),
                        );
                        return None;
                    }
                };
                if s[0].last() != Some(in_f) {
                    self.errs.at(
                        pos[0],
                        format!(
                            "`dense` with weight {} expects [.., {in_f}] but `{}` is {}",
                            s[1],
                            d(0),
                            s[0]
                        ),
                    );
                    return None;
                }
                if args.len() == 3 && s[2].dims != [Dim::Fixed(out_f)] {
                    self.errs.at(
                        pos[2],
                        format!(
                            "`dense` expects a bias [{out_f}] but `{}` is {}",
                            d(2),
                            s[2]
                        ),
                    );
                    return None;
                }
                let shape = s[0].with_last(out_f);
                Some(self.push(
                    Op::Dense {
                        bias: args.len() == 3,
                    },
                    args.to_vec(),
                    shape,
                ))
            }
            "slice" => {
                let start = eval_usize(pos[1], self.consts, self.errs);
                let len = eval_usize(pos[2], self.consts, self.errs);
                let (start, len) = (start?, len?);
                let Some(rows) = s[0].fixed_at(0) else {
                    self.errs.at(
                        pos[0],
                        format!(
                            "`slice` cuts a fixed first dimension, but `{}` is {}",
                            d(0),
                            s[0]
                        ),
                    );
                    return None;
                };
                if len == 0 || start.saturating_add(len) > rows {
                    self.errs.at(
                        e,
                        format!(
                            "slice {start}..{} is out of range for `{}` {}, whose first dimension is {rows}",
                            start as u128 + len as u128,
                            d(0),
                            s[0]
                        ),
                    );
                    return None;
                }
                let mut dims = s[0].dims.clone();
                dims[0] = Dim::Fixed(len);
                let shape = s[0].with_dims(dims);
                Some(self.push(Op::Slice { start, len }, args.to_vec(), shape))
            }
            "reshape" => {
                let Expr::Array(arr) = pos[1] else {
                    self.errs.at(
                        pos[1],
                        "`reshape` takes the new shape as a list: `reshape(x, [2, 3])`",
                    );
                    return None;
                };
                let mut dims = Vec::new();
                for (i, el) in arr.elems.iter().enumerate() {
                    match el {
                        Expr::Path(p)
                            if i == 0
                                && s[0].is_batched()
                                && p.path.get_ident().is_some_and(|id| {
                                    !self.consts.contains_key(&id.to_string())
                                }) =>
                        {
                            dims.push(Dim::Batch)
                        }
                        other => dims.push(Dim::Fixed(eval_count(
                            other,
                            "a dimension",
                            self.consts,
                            self.errs,
                        )?)),
                    }
                }
                let shape = s[0].with_dims(dims);
                if shape.is_batched() != s[0].is_batched()
                    || shape.numel_fixed() != s[0].numel_fixed()
                {
                    self.errs.at(
                        pos[1],
                        format!(
                            "cannot reshape `{}` {} ({} elements{}) to {shape} ({} elements{})",
                            d(0),
                            s[0],
                            s[0].numel_fixed(),
                            if s[0].is_batched() {
                                " per batch row"
                            } else {
                                ""
                            },
                            shape.numel_fixed(),
                            if shape.is_batched() {
                                " per batch row"
                            } else {
                                ""
                            },
                        ),
                    );
                    return None;
                }
                Some(self.push(Op::Reshape, args.to_vec(), shape))
            }
            "flatten" => {
                let n = s[0].numel_fixed();
                let shape = s[0].batch_then(&[n]);
                Some(self.push(Op::Reshape, args.to_vec(), shape))
            }
            "conv2d" => {
                let w = &s[1];
                let (c_out, c_in, kh, kw) = match (
                    w.rank(),
                    w.fixed_at(0),
                    w.fixed_at(1),
                    w.fixed_at(2),
                    w.fixed_at(3),
                ) {
                    (4, Some(a), Some(b), Some(c), Some(dd)) => (a, b, c, dd),
                    _ => {
                        self.errs.at(
                            pos[1],
                            format!(
                                "`conv2d` needs a weight [C_out, C_in, KH, KW], but `{}` is {w}",
                                d(1)
                            ),
                        );
                        return None;
                    }
                };
                if args.len() == 3 && s[2].dims != [Dim::Fixed(c_out)] {
                    self.errs.at(
                        pos[2],
                        format!(
                            "`conv2d` expects a bias [{c_out}] but `{}` is {}",
                            d(2),
                            s[2]
                        ),
                    );
                    return None;
                }
                let stride = self.count_num(e, "stride", nums["stride"])?;
                let padding = self.index_num(e, "padding", nums["padding"])?;
                let geom =
                    self.conv_geom(pos[0], name, &s[0], c_in, c_out, kh, kw, stride, padding)?;
                let out = spatial_out(&s[0], c_out, geom.out_h(), geom.out_w());
                Some(self.push(
                    Op::Conv2d {
                        geom,
                        bias: args.len() == 3,
                    },
                    args.to_vec(),
                    out,
                ))
            }
            "max_pool2d" | "avg_pool2d" => {
                let kernel = self.count_num(e, "kernel", nums["kernel"])?;
                let stride = if nums["stride"].is_nan() {
                    kernel
                } else {
                    self.count_num(e, "stride", nums["stride"])?
                };
                let padding = self.index_num(e, "padding", nums["padding"])?;
                let g = self.pool_geom(
                    pos[0],
                    op,
                    name,
                    &s[0],
                    PoolCfg {
                        kernel,
                        stride,
                        padding,
                    },
                )?;
                let out = spatial_out(&s[0], g.c, g.out_h(), g.out_w());
                let o = if op == "max_pool2d" {
                    Op::MaxPool2d(g)
                } else {
                    Op::AvgPool2d(g)
                };
                Some(self.push(o, args.to_vec(), out))
            }
            "global_avg_pool2d" => {
                let (c, _, _) = self.image_dims(pos[0], op, name, &s[0])?;
                let mut dims = s[0].dims.clone();
                dims.truncate(dims.len() - 3);
                dims.push(Dim::Fixed(c));
                let shape = s[0].with_dims(dims);
                Some(self.push(Op::GlobalAvgPool2d, args.to_vec(), shape))
            }
            "rmsnorm" | "layer_norm" => {
                let Some(cols) = s[0].last() else {
                    self.errs.at(
                        pos[0],
                        format!(
                            "`{op}` normalises the last dimension, but `{}` is a scalar",
                            d(0)
                        ),
                    );
                    return None;
                };
                for i in 1..args.len() {
                    if s[i].dims != [Dim::Fixed(cols)] {
                        self.errs.at(
                            pos[i],
                            format!(
                                "`{op}` of `{}` {} expects `{}` to be [{cols}] but it is {}",
                                d(0),
                                s[0],
                                d(i),
                                s[i]
                            ),
                        );
                        return None;
                    }
                }
                let eps = nums["eps"];
                let o = if op == "rmsnorm" {
                    Op::RmsNorm(eps)
                } else {
                    Op::LayerNorm {
                        eps,
                        weight: args.len() > 1,
                        bias: args.len() > 2,
                    }
                };
                same(self, o)
            }
            "l2_normalize" => {
                if s[0].is_scalar() {
                    self.errs.at(
                        pos[0],
                        format!(
                            "`l2_normalize` works over the last dimension, but `{}` is a scalar",
                            d(0)
                        ),
                    );
                    return None;
                }
                same(self, Op::L2Normalize(nums["eps"]))
            }
            "cosine_similarity" => {
                if s[0].is_scalar() || s[0].dims != s[1].dims {
                    self.errs.at(
                        e,
                        format!("`cosine_similarity` needs `{}` and `{}` of one shape with a last dimension, but they are {} and {}", d(0), d(1), s[0], s[1]),
                    );
                    return None;
                }
                let mut dims = s[0].dims.clone();
                dims.pop();
                let shape = s[0].with_dims(dims);
                Some(self.push(Op::CosineSimilarity, args.to_vec(), shape))
            }
            _ => None,
        }
    }

    fn broadcast_or_err(
        &mut self,
        e: &Expr,
        op: &str,
        pos: &[&Expr],
        s: &[Shape],
    ) -> Option<Shape> {
        let r = s[0].broadcast(&s[1]);
        if r.is_none() {
            self.errs.at(
                e,
                format!(
                    "cannot {op} `{}` {} and `{}` {}: the shapes do not broadcast (the shorter must match the end of the longer)",
                    describe(pos[0]),
                    s[0],
                    describe(pos[1]),
                    s[1]
                ),
            );
        }
        r
    }

    fn count_num(&mut self, e: &Expr, what: &str, v: f64) -> Option<usize> {
        if v >= 1.0 && v.fract() == 0.0 && v < 1e9 {
            Some(v as usize)
        } else {
            self.errs
                .at(e, format!("`{what}` must be a positive integer, not {v}"));
            None
        }
    }

    fn index_num(&mut self, e: &Expr, what: &str, v: f64) -> Option<usize> {
        if v >= 0.0 && v.fract() == 0.0 && v < 1e9 {
            Some(v as usize)
        } else {
            self.errs.at(
                e,
                format!("`{what}` must be a non-negative integer, not {v}"),
            );
            None
        }
    }

    fn matmul(&mut self, e: &Expr, pos: &[&Expr], args: &[NodeId], s: &[Shape]) -> Option<NodeId> {
        let (a, b) = (&s[0], &s[1]);
        let inner_err = |me: &mut Self, ka: String, kb: String| {
            me.errs.at(
                e,
                format!(
                    "matmul inner dimensions differ: `{}` is {a} and `{}` is {b} ({ka} vs {kb})",
                    describe(pos[0]),
                    describe(pos[1])
                ),
            );
        };
        if b.is_batched() || b.rank() >= 3 {
            return self.batched_matmul(e, pos, args, s);
        }
        let show = |d: Option<&Dim>| match d {
            Some(Dim::Fixed(n)) => n.to_string(),
            _ => a.batch_name.clone().unwrap_or_else(|| "B".into()),
        };
        match (a.rank(), b.rank()) {
            (2, 2) => {
                if a.dims[1] != b.dims[0] {
                    inner_err(self, show(a.dims.get(1)), show(b.dims.first()));
                    return None;
                }
                let shape = a.with_dims(vec![a.dims[0], b.dims[1]]);
                Some(self.push(Op::MatMul, args.to_vec(), shape))
            }
            (2, 1) => {
                if a.dims[1] != b.dims[0] {
                    inner_err(self, show(a.dims.get(1)), show(b.dims.first()));
                    return None;
                }
                let shape = a.with_dims(vec![a.dims[0]]);
                Some(self.push(Op::MatVec, args.to_vec(), shape))
            }
            (1, 2) => {
                if a.dims[0] != b.dims[0] || a.is_batched() {
                    inner_err(self, show(a.dims.first()), show(b.dims.first()));
                    return None;
                }
                let shape = Shape::fixed(&[]).with_dims(vec![b.dims[1]]);
                Some(self.push(Op::VecMat, args.to_vec(), shape))
            }
            (1, 1) => {
                if a.dims != b.dims || a.is_batched() {
                    inner_err(self, show(a.dims.first()), show(b.dims.first()));
                    return None;
                }
                Some(self.push(Op::Dot, args.to_vec(), Shape::scalar()))
            }
            (r, 2) if r >= 3 => {
                // [.., m, k] x [k, n]: every leading row times one matrix
                if a.dims[r - 1] != b.dims[0] {
                    inner_err(self, show(a.dims.get(r - 1)), show(b.dims.first()));
                    return None;
                }
                let shape = a.with_last(b.fixed_at(1).unwrap_or(0));
                Some(self.push(Op::MatMul, args.to_vec(), shape))
            }
            _ => {
                self.errs.at(
                    e,
                    format!(
                        "`matmul` takes vectors, matrices and stacks of matrices ([.., m, k] by [.., k, n] or by [k, n]), but `{}` is {a} and `{}` is {b}",
                        describe(pos[0]),
                        describe(pos[1])
                    ),
                );
                None
            }
        }
    }
}
