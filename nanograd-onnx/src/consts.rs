//! Named dimensions: every known size of the generated source is a `const` at the top of
//! the `model!` block, named after the role it plays, as a person would write the model.
//!
//! While the graph is walked, each fixed dimension carries a symbol ([`Sym`]). A layer or
//! an input that introduces a size makes a fresh symbol with a [`Role`] (`fc1`'s output
//! width, the input's channels); an operation that needs two sizes to be the same one
//! (a dense layer's input width, the operands of `+`, the inner dimensions of `matmul`)
//! unites their symbols; a dimension that only moves (transpose, an activation, the leading
//! dimensions kept by a reshape) keeps its symbol. The source is written with placeholders
//! (`\u{1}sym:size\u{2}`), and [`Syms::resolve`] turns each into its const's name or, for a
//! size no role names (a flattened or pooled size), its literal:
//!
//! - a class of united symbols takes the role of its best member: the graph's input first,
//!   then its output (`OUT`), then layers and embeddings, then sizes found by a pattern
//!   (`HEADS`, `HEAD_DIM`), the earliest made on a tie;
//! - classes share a const when their short names, values, kinds and groups agree
//!   (`h_0_fc` and `h_1_fc`, both 32, are one `H_FC`: the group is the layer's name without
//!   its inner block indices); otherwise each takes its long name (`H_0_FC`, `H_1_FC`;
//!   `WTE_VOCAB`, `PTE_VOCAB`); a name still taken (by another const, `B`, the struct)
//!   gets `_2`, `_3`, ...
//!
//! A placeholder whose class has another value (a size built by arithmetic on a dimension)
//! is written as its literal, so naming can never change a shape.

use std::collections::HashMap;

use crate::convert::Dim;

/// The symbol of a fixed dimension; [`Sym::NONE`] is a size with no role (a literal).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Sym(pub u32);

impl Sym {
    pub const NONE: Sym = Sym(0);
}

/// What a size is, as a name: `short` when no other class claims it with another value,
/// else `long` (which qualifies it by its layer or input).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Role {
    /// 0: the graph's input, 1: its output, 2: a layer's size, 3: a size a pattern found.
    pub rank: u8,
    pub short: String,
    pub long: String,
    /// Classes whose short names agree share a const only if they come from the same
    /// group too: the layer's name without its block indices (`h_0_attn` and `h_1_attn`
    /// are `H_ATTN`), empty for the input, the output and a pattern's sizes.
    pub group: String,
}

impl Role {
    pub fn input(name: &str) -> Role {
        Role {
            rank: 0,
            short: name.into(),
            long: name.into(),
            group: String::new(),
        }
    }

    pub fn output(name: &str) -> Role {
        Role {
            rank: 1,
            short: name.into(),
            long: name.into(),
            group: String::new(),
        }
    }

    /// The width a layer introduces: `h_0_fc` → `H_FC` (inner block indices dropped, so
    /// repeated blocks share it), long `H_0_FC`.
    pub fn layer(layer: &str) -> Role {
        let group = block_free(layer);
        Role {
            rank: 2,
            short: group.clone(),
            long: layer.to_ascii_uppercase(),
            group,
        }
    }

    /// One of several sizes of a layer: `short` (`VOCAB`), long `WTE_` + `long_suffix`.
    pub fn layer_part(layer: &str, short: &str, long_suffix: &str) -> Role {
        Role {
            rank: 2,
            short: short.into(),
            long: format!("{}_{long_suffix}", layer.to_ascii_uppercase()),
            group: block_free(layer),
        }
    }

    /// A size a recognised pattern names (the heads of an attention).
    pub fn found(short: &str, long: &str) -> Role {
        Role {
            rank: 3,
            short: short.into(),
            long: long.into(),
            group: String::new(),
        }
    }
}

/// `h_0_fc` → `H_FC`: uppercase, the inner words that are block indices dropped. A last
/// numeric word is kept: it may be the `_2` that told two layers of one name apart
/// (`fc`, `fc_2`), or an index into a list of layers (`layers_1`), neither a shared role.
fn block_free(layer: &str) -> String {
    let upper = layer.to_ascii_uppercase();
    let words: Vec<&str> = upper.split('_').collect();
    let last = words.len().saturating_sub(1);
    let kept: Vec<&str> = words
        .iter()
        .enumerate()
        .filter(|&(i, w)| i == last || !w.chars().all(|c| c.is_ascii_digit()))
        .map(|(_, w)| *w)
        .collect();
    kept.join("_")
}

const OPEN: char = '\u{1}';
const CLOSE: char = '\u{2}';

/// The source text of one dimension: `B`, a literal, or a placeholder for [`Syms::resolve`].
pub fn dim_src(d: &Dim) -> String {
    match d {
        Dim::Batch => "B".into(),
        Dim::Fixed(n, Sym::NONE) => n.to_string(),
        Dim::Fixed(n, s) => format!("{OPEN}{}:{n}{CLOSE}", s.0),
    }
}

/// `[B, ⟨fc1⟩]`: a shape in the source, its sizes as placeholders.
pub fn dims_src(dims: &[Dim]) -> String {
    let parts: Vec<String> = dims.iter().map(dim_src).collect();
    format!("[{}]", parts.join(", "))
}

/// The symbols of one conversion: a union-find over the dimensions' symbols.
pub struct Syms {
    parent: Vec<u32>,
    value: Vec<usize>,
    role: Vec<Option<Role>>,
    /// Reshapes that split one size into several: the parts, and the size split.
    splits: Vec<(Vec<Sym>, Sym)>,
}

impl Default for Syms {
    fn default() -> Self {
        Syms {
            parent: vec![0],
            value: vec![0],
            role: vec![None],
            splits: Vec::new(),
        }
    }
}

/// How many names a class may try (`_2` ... ) before it is written as a literal.
const MAX_SUFFIX: usize = 1000;

impl Syms {
    /// A new size `n`, with its role if it has one.
    pub fn fresh(&mut self, n: usize, role: Option<Role>) -> Dim {
        let id = self.parent.len() as u32;
        self.parent.push(id);
        self.value.push(n);
        self.role.push(role);
        Dim::Fixed(n, Sym(id))
    }

    fn find(&self, s: Sym) -> u32 {
        let mut i = s.0;
        while let Some(&p) = self.parent.get(i as usize) {
            if p == i {
                return i;
            }
            i = p;
        }
        0
    }

    fn same_class(&self, a: Sym, b: Sym) -> bool {
        a != Sym::NONE && b != Sym::NONE && self.find(a) == self.find(b)
    }

    /// `a` and `b` are one size in one role (their values must agree; else nothing).
    pub fn unify(&mut self, a: Dim, b: Dim) {
        let (Dim::Fixed(x, sa), Dim::Fixed(y, sb)) = (a, b) else {
            return;
        };
        if x != y || sa == Sym::NONE || sb == Sym::NONE {
            return;
        }
        let (ra, rb) = (self.find(sa), self.find(sb));
        if ra != rb {
            let (lo, hi) = (ra.min(rb), ra.max(rb));
            self.parent[hi as usize] = lo;
        }
    }

    /// Gives `d`'s symbol a role (kept beside the others of its class; the best one wins).
    pub fn name(&mut self, d: Dim, role: Role) {
        if let Dim::Fixed(n, s) = d {
            if s != Sym::NONE && self.value.get(s.0 as usize) == Some(&n) {
                let id = self.fresh(n, Some(role));
                self.unify(d, id);
            }
        }
    }

    /// `to`, the dimensions of a reshape of `from`, with the symbols of the dimensions it
    /// keeps (the leading and trailing ones of the same sizes); a size split in several
    /// gets fresh symbols, remembered, so that merging those parts back gives the size's
    /// own symbol again.
    pub fn reshape(&mut self, from: &[Dim], mut to: Vec<Dim>) -> Vec<Dim> {
        let mut p = 0;
        while p < from.len() && p < to.len() && from[p] == to[p] {
            to[p] = from[p];
            p += 1;
        }
        let mut s = 0;
        while s < from.len() - p
            && s < to.len() - p
            && from[from.len() - 1 - s] == to[to.len() - 1 - s]
        {
            let k = to.len() - 1 - s;
            to[k] = from[from.len() - 1 - s];
            s += 1;
        }
        let (mid_from, mid_to) = (&from[p..from.len() - s], p..to.len() - s);
        match (mid_from, mid_to.len()) {
            ([whole @ Dim::Fixed(_, ws)], n) if n > 1 && *ws != Sym::NONE => {
                let mut parts = Vec::new();
                for k in mid_to {
                    if let Dim::Fixed(v, _) = to[k] {
                        to[k] = self.fresh(v, None);
                    }
                    if let Dim::Fixed(_, ps) = to[k] {
                        parts.push(ps);
                    }
                }
                if let Dim::Fixed(_, ws) = whole {
                    self.splits.push((parts, *ws));
                }
            }
            (parts, 1) if parts.len() > 1 => {
                let syms: Vec<Sym> = parts
                    .iter()
                    .map(|d| match d {
                        Dim::Fixed(_, s) => *s,
                        Dim::Batch => Sym::NONE,
                    })
                    .collect();
                let k = mid_to.start;
                let found = self.splits.iter().find(|(ps, _)| {
                    ps.len() == syms.len()
                        && ps.iter().zip(&syms).all(|(a, b)| self.same_class(*a, *b))
                });
                if let (Some(&(_, whole)), Dim::Fixed(v, _)) = (found, to[k]) {
                    if self.value.get(whole.0 as usize) == Some(&v) {
                        to[k] = Dim::Fixed(v, whole);
                    }
                }
            }
            _ => {}
        }
        to
    }

    /// The sizes split by reshapes whose parts are now one class each are one size too
    /// (`q`, `k` and `v` split into the same heads).
    pub fn unite_splits(&mut self) {
        let splits = self.splits.clone();
        for (i, (pa, wa)) in splits.iter().enumerate() {
            for (pb, wb) in &splits[i + 1..] {
                if pa.len() == pb.len() && pa.iter().zip(pb).all(|(a, b)| self.same_class(*a, *b)) {
                    let (va, vb) = (self.value[wa.0 as usize], self.value[wb.0 as usize]);
                    self.unify(Dim::Fixed(va, *wa), Dim::Fixed(vb, *wb));
                }
            }
        }
    }

    /// The best role of every class: (rank, earliest symbol, role).
    fn class_roles(&self) -> HashMap<u32, (u8, u32, &Role)> {
        let mut best: HashMap<u32, (u8, u32, &Role)> = HashMap::new();
        for (i, r) in self.role.iter().enumerate() {
            let Some(r) = r else { continue };
            let root = self.find(Sym(i as u32));
            let cand = (r.rank, i as u32, r);
            match best.get(&root) {
                Some(b) if (b.0, b.1) <= (cand.0, cand.1) => {}
                _ => {
                    best.insert(root, cand);
                }
            }
        }
        best
    }

    /// Names the placeholders of `pieces` (in that order of first appearance) and returns
    /// the consts to declare (name, value) and the pieces with the names in place.
    /// `reserved`: names no const may take.
    pub fn resolve(
        &self,
        pieces: &[&str],
        reserved: &[&str],
    ) -> (Vec<(String, usize)>, Vec<String>) {
        let roles = self.class_roles();
        // the classes in order of first appearance, each with its value
        let mut order: Vec<u32> = Vec::new();
        for piece in pieces {
            for (s, n) in placeholders(piece) {
                let root = self.find(s);
                if s != Sym::NONE
                    && self.value.get(root as usize) == Some(&n)
                    && roles.contains_key(&root)
                    && !order.contains(&root)
                {
                    order.push(root);
                }
            }
        }
        let value = |r: u32| self.value[r as usize];
        // the classes claiming each short name: (rank, group, value)
        let mut by_short: HashMap<&str, Vec<(u8, &str, usize)>> = HashMap::new();
        for &r in &order {
            let role = roles[&r].2;
            by_short
                .entry(&role.short)
                .or_default()
                .push((role.rank, &role.group, value(r)));
        }
        // each name taken, with the claim it was taken for when other classes may share it
        let mut taken: HashMap<String, Option<(u8, &str, usize)>> =
            reserved.iter().map(|r| (r.to_string(), None)).collect();
        let mut names: HashMap<u32, String> = HashMap::new();
        let mut consts = Vec::new();
        for &r in &order {
            let role = roles[&r].2;
            let v = value(r);
            let me = (role.rank, role.group.as_str(), v);
            let shared = by_short[role.short.as_str()].iter().all(|&x| x == me);
            let base = if shared { &role.short } else { &role.long };
            let mut name = None;
            for k in 1..=MAX_SUFFIX {
                let cand = if k == 1 {
                    base.clone()
                } else {
                    format!("{base}_{k}")
                };
                match taken.get(&cand) {
                    // the same name for the same size in the same role: one const
                    Some(Some(x)) if *x == me && shared => {
                        name = Some(cand);
                        break;
                    }
                    Some(_) => continue,
                    None => {
                        taken.insert(cand.clone(), (shared && k == 1).then_some(me));
                        consts.push((cand.clone(), v));
                        name = Some(cand);
                        break;
                    }
                }
            }
            if let Some(n) = name {
                names.insert(r, n);
            }
        }
        let out = pieces
            .iter()
            .map(|piece| {
                substitute(piece, |s, n| {
                    let root = self.find(s);
                    match names.get(&root) {
                        Some(name) if self.value.get(root as usize) == Some(&n) => name.clone(),
                        _ => n.to_string(),
                    }
                })
            })
            .collect();
        (consts, out)
    }
}

/// The placeholders of `text`, in order.
fn placeholders(text: &str) -> Vec<(Sym, usize)> {
    let mut out = Vec::new();
    substitute(text, |s, n| {
        out.push((s, n));
        String::new()
    });
    out
}

/// `text` with every placeholder replaced by `f(sym, size)`; a malformed one is dropped
/// to its size (or nothing), never left in.
fn substitute(text: &str, mut f: impl FnMut(Sym, usize) -> String) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find(OPEN) {
        out.push_str(&rest[..i]);
        let after = &rest[i + OPEN.len_utf8()..];
        let Some(j) = after.find(CLOSE) else {
            rest = after;
            continue;
        };
        let inner = &after[..j];
        if let Some((s, n)) = inner.split_once(':') {
            if let (Ok(s), Ok(n)) = (s.parse::<u32>(), n.parse::<usize>()) {
                out.push_str(&f(Sym(s), n));
            }
        }
        rest = &after[j + CLOSE.len_utf8()..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn named(syms: &Syms, text: &str) -> (Vec<(String, usize)>, String) {
        let (consts, mut out) = syms.resolve(&[text], &["B"]);
        (consts, out.remove(0))
    }

    #[test]
    fn united_sizes_take_the_best_role_and_others_stay_literals() {
        let mut s = Syms::default();
        let x = s.fresh(8, Some(Role::input("IN")));
        let fc = s.fresh(8, Some(Role::layer("fc")));
        let loose = s.fresh(8, None);
        s.unify(x, fc); // x + fc(x): one size, the input's name wins
        let other = s.fresh(3, Some(Role::layer("proj")));
        s.unify(fc, other); // 8 and 3 are never one size
        let text = format!(
            "{} {} {} {} {}",
            dims_src(&[Dim::Batch, x]),
            dim_src(&fc),
            dim_src(&loose),
            dim_src(&other),
            dim_src(&Dim::fixed(4))
        );
        let (consts, out) = named(&s, &text);
        assert_eq!(out, "[B, IN] IN 8 PROJ 4");
        assert_eq!(consts, [("IN".to_string(), 8), ("PROJ".to_string(), 3)]);
    }

    #[test]
    fn a_split_merged_back_is_the_size_it_was_split_from() {
        let mut s = Syms::default();
        let t = s.fresh(8, Some(Role::input("SEQ")));
        let c = s.fresh(16, Some(Role::layer("q")));
        // [B, 8, 16] → [B, 8, 2, 8]: 8 kept (SEQ), 16 split in two fresh sizes
        let split = s.reshape(
            &[Dim::Batch, t, c],
            vec![Dim::Batch, Dim::fixed(8), Dim::fixed(2), Dim::fixed(8)],
        );
        assert_eq!(named(&s, &dims_src(&split)).1, "[B, SEQ, 2, 8]");
        s.name(split[2], Role::found("HEADS", "HEADS"));
        s.name(split[3], Role::found("HEAD_DIM", "HEAD_DIM"));
        assert_eq!(named(&s, &dims_src(&split)).1, "[B, SEQ, HEADS, HEAD_DIM]");
        // and back: [B, 8, 2, 8] → [B, 8, 16] is q's width again
        let merged = s.reshape(&split, vec![Dim::Batch, Dim::fixed(8), Dim::fixed(16)]);
        assert_eq!(named(&s, &dims_src(&merged)).1, "[B, SEQ, Q]");
        // a merge of other sizes is a literal
        let (p, q) = (s.fresh(4, None), s.fresh(4, None));
        let other = s.reshape(&[Dim::Batch, p, q], vec![Dim::Batch, Dim::fixed(16)]);
        assert_eq!(named(&s, &dims_src(&other)).1, "[B, 16]");
    }

    #[test]
    fn shared_short_names_need_the_same_value_group_and_rank() {
        let mut s = Syms::default();
        let a = s.fresh(32, Some(Role::layer("h_0_fc")));
        let b = s.fresh(32, Some(Role::layer("h_1_fc")));
        let (consts, out) = named(&s, &format!("{} {}", dim_src(&a), dim_src(&b)));
        assert_eq!(out, "H_FC H_FC");
        assert_eq!(consts, [("H_FC".to_string(), 32)]);
        let c = s.fresh(64, Some(Role::layer("h_2_fc")));
        let (consts, out) = named(
            &s,
            &format!("{} {} {}", dim_src(&a), dim_src(&b), dim_src(&c)),
        );
        assert_eq!(out, "H_0_FC H_1_FC H_2_FC");
        assert_eq!(consts.len(), 3);
        // a trailing number is not a block index: `fc` and `fc_2` are two layers
        let mut s = Syms::default();
        let f1 = s.fresh(8, Some(Role::layer("fc")));
        let f2 = s.fresh(8, Some(Role::layer("fc_2")));
        let (_, out) = named(&s, &format!("{} {}", dim_src(&f1), dim_src(&f2)));
        assert_eq!(out, "FC FC_2");
        // two embeddings with one vocabulary size: two tables, two consts
        let mut s = Syms::default();
        let v1 = s.fresh(11, Some(Role::layer_part("wte", "VOCAB", "VOCAB")));
        let v2 = s.fresh(11, Some(Role::layer_part("pte", "VOCAB", "VOCAB")));
        let (_, out) = named(&s, &format!("{} {}", dim_src(&v1), dim_src(&v2)));
        assert_eq!(out, "WTE_VOCAB PTE_VOCAB");
    }

    #[test]
    fn reserved_names_and_malformed_placeholders() {
        let mut s = Syms::default();
        let b = s.fresh(4, Some(Role::input("B")));
        let (consts, out) = named(
            &s,
            &format!("{} \u{1}x:3\u{2} \u{1}99:5\u{2} \u{1}", dim_src(&b)),
        );
        assert_eq!(out, "B_2  5 ");
        assert_eq!(consts, [("B_2".to_string(), 4)]);
        // a placeholder whose size is not its class's is its literal
        let (_, out) = named(&s, &format!("\u{1}{}:7\u{2}", 1));
        assert_eq!(out, "7");
    }
}
