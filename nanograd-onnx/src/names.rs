//! Readable Rust names for layers: from PyTorch's parameter names (`fc1.weight` → `fc1`,
//! `blocks.0.fc` → `blocks_0_fc`), else from the node's scope (`/conv1/Conv` → `conv1`),
//! else from the operator (`conv_1`).

use std::collections::HashSet;

/// `MlpNet` → `mlp_net`, `fc1.weight` → `fc1_weight`, `HTTPServer` → `http_server`:
/// lowercase words joined by `_`, never empty, never starting with a digit.
pub fn snake_case(s: &str) -> String {
    let chars: Vec<char> = s.chars().collect();
    let mut out = String::new();
    for (i, &c) in chars.iter().enumerate() {
        if c.is_ascii_alphanumeric() {
            if c.is_ascii_uppercase() && i > 0 {
                let prev = chars[i - 1];
                let next_lower = chars.get(i + 1).is_some_and(|n| n.is_ascii_lowercase());
                if prev.is_ascii_lowercase()
                    || prev.is_ascii_digit()
                    || (prev.is_ascii_uppercase() && next_lower)
                {
                    out.push('_');
                }
            }
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('_') {
            out.push('_');
        }
    }
    let out = out.trim_matches('_').to_string();
    let mut collapsed = String::with_capacity(out.len());
    for c in out.chars() {
        if !(c == '_' && collapsed.ends_with('_')) {
            collapsed.push(c);
        }
    }
    match collapsed.chars().next() {
        None => "layer".into(),
        Some(c) if c.is_ascii_digit() => format!("l{collapsed}"),
        Some(_) => collapsed,
    }
}

/// `mlp_net` → `MlpNet`: a valid Rust type name, or `None` if the name has no letter.
pub fn camel_case(s: &str) -> Option<String> {
    let snake = snake_case(s);
    if !s.chars().any(|c| c.is_ascii_alphabetic()) {
        return None;
    }
    Some(
        snake
            .split('_')
            .map(|w| {
                let mut c = w.chars();
                c.next()
                    .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                    .unwrap_or_default()
            })
            .collect(),
    )
}

/// Words the generated source cannot use as a layer's name: Rust keywords, the DSL's ops
/// and the names the generated fn uses itself.
const RESERVED: &[&str] = &[
    "as",
    "break",
    "const",
    "continue",
    "crate",
    "else",
    "enum",
    "extern",
    "false",
    "fn",
    "for",
    "if",
    "impl",
    "in",
    "let",
    "loop",
    "match",
    "mod",
    "move",
    "mut",
    "pub",
    "ref",
    "return",
    "self",
    "static",
    "struct",
    "super",
    "trait",
    "true",
    "type",
    "unsafe",
    "use",
    "where",
    "while",
    "async",
    "await",
    "dyn",
    "abstract",
    "become",
    "box",
    "do",
    "final",
    "macro",
    "override",
    "priv",
    "typeof",
    "unsized",
    "virtual",
    "yield",
    "try",
    "gen",
    "x",
    "forward",
    "add",
    "sub",
    "mul",
    "div",
    "matmul",
    "dot",
    "dense",
    "transpose",
    "concat",
    "causal_mask",
    "attention",
    "relu",
    "tanh",
    "sigmoid",
    "gelu",
    "silu",
    "softmax",
    "log_softmax",
    "reshape",
    "flatten",
    "slice",
    "sum",
    "mean",
    "conv2d",
    "max_pool2d",
    "avg_pool2d",
    "global_avg_pool2d",
    "layer_norm",
    "scale",
];

/// The Rust name of a graph input named `name`: its snake case, with `_in` appended when
/// that is a keyword or a word of the DSL (`type` → `type_in`); `x`, the usual input, stays.
pub fn input_var(name: &str) -> String {
    let var = snake_case(name);
    if var != "x" && RESERVED.contains(&var.as_str()) {
        var + "_in"
    } else {
        var
    }
}

/// Hands out unique snake-case names.
#[derive(Default)]
pub struct Names {
    used: HashSet<String>,
}

impl Names {
    /// Reserves `name` as is (an input's name, say); false if it was taken.
    pub fn reserve(&mut self, name: &str) -> bool {
        self.used.insert(name.to_string())
    }

    /// A fresh name from `base`: snake case, not reserved, `_2`, `_3`, ... appended on a
    /// clash.
    pub fn fresh(&mut self, base: &str) -> String {
        let mut base = snake_case(base);
        if RESERVED.contains(&base.as_str())
            || base.starts_with('h') && base[1..].chars().all(|c| c.is_ascii_digit())
        {
            base.push_str("_layer");
        }
        let mut name = base.clone();
        let mut k = 2;
        while !self.used.insert(name.clone()) {
            name = format!("{base}_{k}");
            k += 1;
        }
        name
    }
}

/// The layer name a node's parameters suggest: the PyTorch module path of its weight
/// (`conv1.weight` → `conv1`), else the node's scope (`/layer1/conv/Conv` → `layer1/conv`),
/// else `None`.
pub fn layer_base(weight_name: &str, node_name: &str) -> Option<String> {
    if !weight_name.contains("::") {
        if let Some(prefix) = weight_name.strip_suffix(".weight") {
            if !prefix.is_empty() {
                return Some(prefix.to_string());
            }
        }
    }
    let scope = node_name.trim_start_matches('/');
    if node_name.starts_with('/') {
        if let Some((path, _op)) = scope.rsplit_once('/') {
            if !path.is_empty() {
                return Some(path.to_string());
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snake_and_camel() {
        assert_eq!(snake_case("MlpNet"), "mlp_net");
        assert_eq!(snake_case("HTTPServer2"), "http_server2");
        assert_eq!(snake_case("blocks.0.fc"), "blocks_0_fc");
        assert_eq!(snake_case("/conv1/Conv"), "conv1_conv");
        assert_eq!(snake_case("0x"), "l0x");
        assert_eq!(snake_case("::"), "layer");
        assert_eq!(camel_case("mlp_net").as_deref(), Some("MlpNet"));
        assert_eq!(camel_case("MlpNet").as_deref(), Some("MlpNet"));
        assert_eq!(camel_case("123"), None);
    }

    #[test]
    fn layer_names_from_weights_then_scopes() {
        assert_eq!(
            layer_base("fc1.weight", "node_linear").as_deref(),
            Some("fc1")
        );
        assert_eq!(
            layer_base("onnx::Conv_32", "/conv1/Conv").as_deref(),
            Some("conv1")
        );
        assert_eq!(layer_base("val_3", "node_Conv_31"), None);
        let mut names = Names::default();
        assert_eq!(names.fresh("fc"), "fc");
        assert_eq!(names.fresh("fc"), "fc_2");
        assert_eq!(names.fresh("relu"), "relu_layer");
        assert_eq!(names.fresh("h1"), "h1_layer");
    }
}
