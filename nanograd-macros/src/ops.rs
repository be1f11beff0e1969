//! The op table: every op the DSL knows, with its positional arguments and keyword
//! arguments (with the seed's defaults). The runtime's kernels carry the same names
//! (`nanograd_runtime::ops::<name>`), so one grep finds every piece of an op.

/// The argument form of one op.
pub struct OpSpec {
    pub name: &'static str,
    /// Names of the positional arguments, required first.
    pub args: &'static [&'static str],
    /// How many of the trailing `args` may be left out.
    pub optional: usize,
    /// Keyword arguments and their defaults.
    pub kwargs: &'static [(&'static str, f64)],
}

const fn op(
    name: &'static str,
    args: &'static [&'static str],
    optional: usize,
    kwargs: &'static [(&'static str, f64)],
) -> OpSpec {
    OpSpec {
        name,
        args,
        optional,
        kwargs,
    }
}

/// Every op of the DSL.
pub const OPS: &[OpSpec] = &[
    op("add", &["a", "b"], 0, &[]),
    op("sub", &["a", "b"], 0, &[]),
    op("mul", &["a", "b"], 0, &[]),
    op("div", &["a", "b"], 0, &[]),
    op("safe_div", &["a", "b"], 0, &[("eps", 1e-8)]),
    op("scale", &["x", "factor"], 0, &[]),
    op("matmul", &["a", "b"], 0, &[]),
    op("transpose", &["x", "a", "b"], 0, &[]),
    op("concat", &["a", "b"], 0, &[("dim", -1.0)]),
    op("causal_mask", &["x"], 0, &[]),
    // `causal` is a bool, read by the lowering of `attention` itself
    op("attention", &["q", "k", "v"], 0, &[("causal", 0.0)]),
    op("dot", &["a", "b"], 0, &[]),
    op("dense", &["x", "weight", "bias"], 1, &[]),
    op("sum", &["x"], 0, &[]),
    op("mean", &["x"], 0, &[]),
    op("product", &["x"], 0, &[]),
    // `grad` is a closure, handled by the lowering of `reduce` itself
    op("reduce", &["x", "init", "f"], 0, &[("grad", f64::NAN)]),
    op("slice", &["x", "start", "len"], 0, &[]),
    op("reshape", &["x", "shape"], 0, &[]),
    op("flatten", &["x"], 0, &[]),
    op("relu", &["x"], 0, &[]),
    op("tanh", &["x"], 0, &[]),
    op("sigmoid", &["x"], 0, &[]),
    op("sigmoid_stable", &["x"], 0, &[]),
    // `approximate` is a string ("tanh", the default, or "none"), read by the lowering of
    // `gelu` itself: 0 stands for "tanh"
    op("gelu", &["x"], 0, &[("approximate", 0.0)]),
    op("silu", &["x"], 0, &[]),
    op("leaky_relu", &["x"], 0, &[("alpha", 0.01)]),
    op("softplus", &["x"], 0, &[("beta", 1.0)]),
    op("softmax", &["x"], 0, &[]),
    op("log_softmax", &["x"], 0, &[]),
    op("mse_loss", &["pred", "target"], 0, &[]),
    op("cross_entropy_loss", &["pred", "target"], 0, &[]),
    op("softmax_cross_entropy", &["logits", "target"], 0, &[]),
    op(
        "conv2d",
        &["x", "weight", "bias"],
        1,
        &[("stride", 1.0), ("padding", 0.0)],
    ),
    op(
        "max_pool2d",
        &["x"],
        0,
        &[("kernel", 2.0), ("stride", f64::NAN), ("padding", 0.0)],
    ),
    op(
        "avg_pool2d",
        &["x"],
        0,
        &[("kernel", 2.0), ("stride", f64::NAN), ("padding", 0.0)],
    ),
    op("global_avg_pool2d", &["x"], 0, &[]),
    op("rmsnorm", &["x", "weight"], 0, &[("eps", 1e-5)]),
    op("layer_norm", &["x", "weight", "bias"], 2, &[("eps", 1e-5)]),
    op("l2_normalize", &["x"], 0, &[("eps", 1e-8)]),
    op("cosine_similarity", &["a", "b"], 0, &[]),
];

pub fn find(name: &str) -> Option<&'static OpSpec> {
    OPS.iter().find(|s| s.name == name)
}

impl OpSpec {
    /// `relu(x)`, `conv2d(x, weight, bias?, stride = 1, padding = 0)`, for messages.
    pub fn signature(&self) -> String {
        let required = self.args.len() - self.optional;
        let mut parts: Vec<String> = self
            .args
            .iter()
            .enumerate()
            .map(|(i, a)| {
                if i < required {
                    a.to_string()
                } else {
                    format!("{a}?")
                }
            })
            .collect();
        for (k, d) in self.kwargs {
            if *k == "causal" {
                parts.push(format!("{k} = false"));
            } else if *k == "approximate" {
                parts.push(format!("{k} = \"tanh\""));
            } else if d.is_nan() {
                parts.push(format!("{k} = .."));
            } else {
                parts.push(format!("{k} = {d}"));
            }
        }
        format!("{}({})", self.name, parts.join(", "))
    }
}

/// The closest of `candidates` to `name`, if it is close enough to be a likely typo.
pub fn closest<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|c| (edit_distance(name, c), c))
        .filter(|&(d, c)| d <= (name.len().max(c.len()) / 3).max(1))
        .min_by_key(|&(d, _)| d)
        .map(|(_, c)| c)
}

/// Edit distance counting an insertion, a deletion, a substitution or a swap of two
/// neighbours as one edit (optimal string alignment).
fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = best;
        }
    }
    d[a.len()][b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions() {
        let names = OPS.iter().map(|s| s.name);
        assert_eq!(closest("rleu", names.clone()), Some("relu"));
        assert_eq!(closest("softmx", names.clone()), Some("softmax"));
        assert_eq!(closest("zzzzzz", names), None);
        assert_eq!(closest("inptu", ["input", "x"]), Some("input"));
        assert_eq!(
            find("conv2d").unwrap().signature(),
            "conv2d(x, weight, bias?, stride = 1, padding = 0)"
        );
    }
}
