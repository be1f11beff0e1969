//! [`Module`]: what layers and generated models have in common (the seed's layer protocol):
//! named parameters, named buffers, and a training / evaluation mode.
//!
//! Names follow PyTorch: a layer calls its own tensors `weight`, `bias`, `running_mean`, ...;
//! a container prefixes its children's names with the field name and a dot (`fc1.weight`,
//! `blk1.a.bias`) through [`visit_child_params`] and its siblings, which build the joined
//! name on the stack, so visiting allocates nothing for names up to 128 bytes. Arrays and
//! vectors of modules are modules too, their elements named by position (`0.weight`), as in
//! PyTorch's `nn.Sequential`.
//!
//! A container is written by hand like this (the `model!` macro generates the same):
//!
//! ```
//! use nanograd_runtime::module::{self, Module};
//! use nanograd_runtime::{layers::Dense, Param, Float};
//!
//! struct Mlp<T: Float> { fc1: Dense<T>, fc2: Dense<T>, training: bool }
//!
//! impl<T: Float> Module<T> for Mlp<T> {
//!     fn visit_params(&self, f: &mut dyn FnMut(&str, &Param<T>)) {
//!         module::visit_child_params("fc1", &self.fc1, f);
//!         module::visit_child_params("fc2", &self.fc2, f);
//!     }
//!     fn visit_params_mut(&mut self, f: &mut dyn FnMut(&str, &mut Param<T>)) {
//!         module::visit_child_params_mut("fc1", &mut self.fc1, f);
//!         module::visit_child_params_mut("fc2", &mut self.fc2, f);
//!     }
//!     fn set_training_mode(&mut self, training: bool) {
//!         self.training = training;
//!         self.fc1.set_training_mode(training);
//!         self.fc2.set_training_mode(training);
//!     }
//!     fn is_training(&self) -> bool { self.training }
//! }
//!
//! use nanograd_runtime::rand::{rngs::StdRng, SeedableRng};
//! let mut rng = StdRng::seed_from_u64(0);
//! let mlp = Mlp::<f32> {
//!     fc1: Dense::new(4, 3, &mut rng)?,
//!     fc2: Dense::new(3, 2, &mut rng)?,
//!     training: true,
//! };
//! let mut names = Vec::new();
//! mlp.visit_params(&mut |name, _| names.push(name.to_string()));
//! assert_eq!(names, ["fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"]);
//! assert_eq!(mlp.num_parameters(), 4 * 3 + 3 + 3 * 2 + 2);
//! # Ok::<(), nanograd_runtime::Error>(())
//! ```

use crate::{fmt_shape, Float, Param, Tensor};
use alloc::string::{String, ToString};
use alloc::vec::Vec;

/// A network or a part of one: it owns named parameters (and possibly buffers) and has a
/// training mode. Implemented by the layers of [`crate::layers`] and by the models that
/// `model!` generates. The trait is object safe: optimizers take `&mut dyn Module<T>`.
pub trait Module<T: Float> {
    /// Calls `f` with the name and the value of every trainable parameter, in a fixed order
    /// (the seed's `parameters`). Names follow PyTorch: `weight`, `bias`, `fc1.weight`.
    fn visit_params(&self, f: &mut dyn FnMut(&str, &Param<T>));

    /// Like [`Module::visit_params`], with mutable access, in the same order.
    fn visit_params_mut(&mut self, f: &mut dyn FnMut(&str, &mut Param<T>));

    /// Calls `f` with every non-trainable state tensor (batch-norm `running_mean`,
    /// `running_var`). None by default.
    fn visit_buffers(&self, f: &mut dyn FnMut(&str, &Tensor<T>)) {
        let _ = f;
    }

    /// Like [`Module::visit_buffers`], with mutable access, in the same order.
    fn visit_buffers_mut(&mut self, f: &mut dyn FnMut(&str, &mut Tensor<T>)) {
        let _ = f;
    }

    /// The random stream of the module's dropout layers, if it keeps one (models made by
    /// `model!` do); checkpoints save and restore it so that resumed training is identical.
    fn rng(&self) -> Option<&crate::WorkspaceRng> {
        None
    }

    /// Like [`Module::rng`], mutably.
    fn rng_mut(&mut self) -> Option<&mut crate::WorkspaceRng> {
        None
    }

    /// Switches training behaviour on or off (the seed's `set-training-mode!`): batch norm
    /// uses batch statistics and updates its running ones, dropout drops. A container passes
    /// the flag on to its children.
    fn set_training_mode(&mut self, training: bool);

    /// Whether the module is in training mode (the default of a new layer, as in PyTorch).
    fn is_training(&self) -> bool;

    /// Sets every parameter's gradient to zero (the seed's `zero-grad-layer!`).
    fn zero_grad(&mut self) {
        self.visit_params_mut(&mut |_, p| p.zero_grad());
    }

    /// Evaluation mode: `set_training_mode(false)` (the seed's `set-eval-mode!`).
    fn set_eval_mode(&mut self) {
        self.set_training_mode(false);
    }

    /// The number of trainable scalars.
    fn num_parameters(&self) -> usize {
        let mut n = 0;
        self.visit_params(&mut |_, p| n += p.len());
        n
    }

    /// A table of parameter names, shapes and element counts with the total, then the
    /// buffers if there are any (the seed's `summary`):
    ///
    /// ```text
    /// parameter   shape   count
    /// weight      [3, 2]      6
    /// bias        [3]         3
    /// total parameters: 9
    /// ```
    fn summary(&self) -> String {
        let mut rows = vec![(
            "parameter".to_string(),
            "shape".to_string(),
            "count".to_string(),
        )];
        self.visit_params(&mut |name, p| {
            rows.push((name.to_string(), fmt_shape(p.shape()), p.len().to_string()));
        });
        let n_params = rows.len();
        self.visit_buffers(&mut |name, b| {
            rows.push((name.to_string(), fmt_shape(b.shape()), b.len().to_string()));
        });
        let w0 = rows.iter().map(|r| r.0.len()).max().unwrap_or(0);
        let w1 = rows.iter().map(|r| r.1.len()).max().unwrap_or(0);
        let w2 = rows.iter().map(|r| r.2.len()).max().unwrap_or(0);
        let line =
            |r: &(String, String, String)| format!("{:<w0$}  {:<w1$}  {:>w2$}\n", r.0, r.1, r.2);
        let mut out = String::new();
        for r in &rows[..n_params] {
            out.push_str(&line(r));
        }
        out.push_str(&format!("total parameters: {}", self.num_parameters()));
        if rows.len() > n_params {
            out.push_str(&format!(
                "\n{:<w0$}  {:<w1$}  {:>w2$}\n",
                "buffer", "shape", "count"
            ));
            for r in &rows[n_params..] {
                out.push_str(&line(r));
            }
            out.pop();
        }
        out
    }
}

/// One row of a model's layer table: the layer's name, its kind, the shape of its output
/// (as the model's `forward` uses it) and its number of parameters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LayerRow {
    /// The field name, `fc1`.
    pub name: String,
    /// The layer kind, `Dense`.
    pub kind: String,
    /// The output shape, `[B, 128]`.
    pub output: String,
    /// The number of trainable scalars.
    pub params: usize,
}

/// A model's layer table, like torchinfo's: one row per layer with its output shape and
/// parameter count, then the totals. Models made by `model!` return it from
/// [`Module::summary`].
///
/// ```
/// use nanograd_runtime::module::{layer_table, LayerRow};
/// let row = |name: &str, kind: &str, output: &str, params| LayerRow {
///     name: name.into(), kind: kind.into(), output: output.into(), params,
/// };
/// let t = layer_table("Mlp", "[B, 10]", &[row("fc1", "Dense", "[B, 32]", 25_120),
///                                          row("fc2", "Dense", "[B, 10]", 330)], 0);
/// assert!(t.contains("fc1 (Dense)"));
/// assert!(t.contains("Total params: 25,450"));
/// ```
pub fn layer_table(model: &str, output: &str, rows: &[LayerRow], buffers: usize) -> String {
    let line = "=".repeat(72);
    let mut out = format!(
        "{line}\n{:<40}{:<20}{:>12}\n{line}\n",
        "Layer (type)", "Output Shape", "Param #"
    );
    out.push_str(&format!("{:<40}{:<20}{:>12}\n", model, output, "--"));
    let mut total = 0;
    for r in rows {
        let label = format!("  {} ({})", r.name, r.kind);
        out.push_str(&format!(
            "{:<40}{:<20}{:>12}\n",
            label,
            r.output,
            thousands(r.params)
        ));
        total += r.params;
    }
    out.push_str(&format!("{line}\nTotal params: {}\n", thousands(total)));
    out.push_str(&format!("Trainable params: {}\n", thousands(total)));
    out.push_str(&format!(
        "Non-trainable buffers: {}\n{line}",
        thousands(buffers)
    ));
    out
}

/// `1234567` as `1,234,567`.
fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Calls `f` with `prefix.name`, built on the stack when it fits in 128 bytes (`name` alone
/// when `prefix` is empty).
pub fn with_prefixed_name<R>(prefix: &str, name: &str, f: impl FnOnce(&str) -> R) -> R {
    if prefix.is_empty() {
        return f(name);
    }
    let len = prefix.len() + 1 + name.len();
    let mut buf = [0u8; 128];
    if len > buf.len() {
        return f(&format!("{prefix}.{name}"));
    }
    buf[..prefix.len()].copy_from_slice(prefix.as_bytes());
    buf[prefix.len()] = b'.';
    buf[prefix.len() + 1..len].copy_from_slice(name.as_bytes());
    match core::str::from_utf8(&buf[..len]) {
        Ok(joined) => f(joined),
        // unreachable: two UTF-8 strings joined by an ASCII dot are UTF-8
        Err(_) => f(&format!("{prefix}.{name}")),
    }
}

/// Visits the parameters of a child module, its names prefixed by `prefix.`.
pub fn visit_child_params<T: Float, M: Module<T> + ?Sized>(
    prefix: &str,
    child: &M,
    f: &mut dyn FnMut(&str, &Param<T>),
) {
    child.visit_params(&mut |name, p| with_prefixed_name(prefix, name, |full| f(full, p)));
}

/// Visits the parameters of a child module mutably, its names prefixed by `prefix.`.
pub fn visit_child_params_mut<T: Float, M: Module<T> + ?Sized>(
    prefix: &str,
    child: &mut M,
    f: &mut dyn FnMut(&str, &mut Param<T>),
) {
    child.visit_params_mut(&mut |name, p| with_prefixed_name(prefix, name, |full| f(full, p)));
}

/// Visits the buffers of a child module, their names prefixed by `prefix.`.
pub fn visit_child_buffers<T: Float, M: Module<T> + ?Sized>(
    prefix: &str,
    child: &M,
    f: &mut dyn FnMut(&str, &Tensor<T>),
) {
    child.visit_buffers(&mut |name, b| with_prefixed_name(prefix, name, |full| f(full, b)));
}

/// Visits the buffers of a child module mutably, their names prefixed by `prefix.`.
pub fn visit_child_buffers_mut<T: Float, M: Module<T> + ?Sized>(
    prefix: &str,
    child: &mut M,
    f: &mut dyn FnMut(&str, &mut Tensor<T>),
) {
    child.visit_buffers_mut(&mut |name, b| with_prefixed_name(prefix, name, |full| f(full, b)));
}

/// Calls `f` with `index.name` (`0.weight`), without allocating.
pub fn with_indexed_name<R>(index: usize, name: &str, f: impl FnOnce(&str) -> R) -> R {
    let mut digits = [0u8; 20]; // u64::MAX has 20 digits
    let mut start = digits.len();
    let mut n = index;
    loop {
        start -= 1;
        digits[start] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    match core::str::from_utf8(&digits[start..]) {
        Ok(prefix) => with_prefixed_name(prefix, name, f),
        // unreachable: ASCII digits are UTF-8
        Err(_) => f(&format!("{index}.{name}")),
    }
}

/// A list of modules is a module whose children are named by position, as in PyTorch's
/// `nn.Sequential` and `nn.ModuleList`: `0.weight`, `0.bias`, `1.weight`, ... It is in
/// training mode when every element is.
macro_rules! impl_module_for_list {
    ([$($generics:tt)*], $ty:ty) => {
        impl<T: Float, M: Module<T>, $($generics)*> Module<T> for $ty {
            fn visit_params(&self, f: &mut dyn FnMut(&str, &Param<T>)) {
                for (i, m) in self.iter().enumerate() {
                    m.visit_params(&mut |name, p| with_indexed_name(i, name, |full| f(full, p)));
                }
            }
            fn visit_params_mut(&mut self, f: &mut dyn FnMut(&str, &mut Param<T>)) {
                for (i, m) in self.iter_mut().enumerate() {
                    m.visit_params_mut(&mut |name, p| with_indexed_name(i, name, |full| f(full, p)));
                }
            }
            fn visit_buffers(&self, f: &mut dyn FnMut(&str, &Tensor<T>)) {
                for (i, m) in self.iter().enumerate() {
                    m.visit_buffers(&mut |name, b| with_indexed_name(i, name, |full| f(full, b)));
                }
            }
            fn visit_buffers_mut(&mut self, f: &mut dyn FnMut(&str, &mut Tensor<T>)) {
                for (i, m) in self.iter_mut().enumerate() {
                    m.visit_buffers_mut(&mut |name, b| with_indexed_name(i, name, |full| f(full, b)));
                }
            }
            fn set_training_mode(&mut self, training: bool) {
                for m in self.iter_mut() {
                    m.set_training_mode(training);
                }
            }
            fn is_training(&self) -> bool {
                self.iter().all(|m| m.is_training())
            }
        }
    };
}

impl_module_for_list!([], Vec<M>);
impl_module_for_list!([const N: usize], [M; N]);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layers::{BatchNorm2d, Dense};
    use rand::{rngs::StdRng, SeedableRng};

    /// A block nested in a model: names must come out as `blk1.a.weight`.
    struct Block {
        a: Dense<f64>,
        bn: BatchNorm2d<f64>,
        training: bool,
    }

    impl Module<f64> for Block {
        fn visit_params(&self, f: &mut dyn FnMut(&str, &Param<f64>)) {
            visit_child_params("a", &self.a, f);
            visit_child_params("bn", &self.bn, f);
        }
        fn visit_params_mut(&mut self, f: &mut dyn FnMut(&str, &mut Param<f64>)) {
            visit_child_params_mut("a", &mut self.a, f);
            visit_child_params_mut("bn", &mut self.bn, f);
        }
        fn visit_buffers(&self, f: &mut dyn FnMut(&str, &Tensor<f64>)) {
            visit_child_buffers("bn", &self.bn, f);
        }
        fn visit_buffers_mut(&mut self, f: &mut dyn FnMut(&str, &mut Tensor<f64>)) {
            visit_child_buffers_mut("bn", &mut self.bn, f);
        }
        fn set_training_mode(&mut self, training: bool) {
            self.training = training;
            self.a.set_training_mode(training);
            self.bn.set_training_mode(training);
        }
        fn is_training(&self) -> bool {
            self.training
        }
    }

    struct Net {
        fc1: Dense<f64>,
        blk1: Block,
        training: bool,
    }

    impl Module<f64> for Net {
        fn visit_params(&self, f: &mut dyn FnMut(&str, &Param<f64>)) {
            visit_child_params("fc1", &self.fc1, f);
            visit_child_params("blk1", &self.blk1, f);
        }
        fn visit_params_mut(&mut self, f: &mut dyn FnMut(&str, &mut Param<f64>)) {
            visit_child_params_mut("fc1", &mut self.fc1, f);
            visit_child_params_mut("blk1", &mut self.blk1, f);
        }
        fn visit_buffers(&self, f: &mut dyn FnMut(&str, &Tensor<f64>)) {
            visit_child_buffers("blk1", &self.blk1, f);
        }
        fn visit_buffers_mut(&mut self, f: &mut dyn FnMut(&str, &mut Tensor<f64>)) {
            visit_child_buffers_mut("blk1", &mut self.blk1, f);
        }
        fn set_training_mode(&mut self, training: bool) {
            self.training = training;
            self.fc1.set_training_mode(training);
            self.blk1.set_training_mode(training);
        }
        fn is_training(&self) -> bool {
            self.training
        }
    }

    fn net() -> Net {
        let mut rng = StdRng::seed_from_u64(3);
        Net {
            fc1: Dense::new(3, 2, &mut rng).unwrap(),
            blk1: Block {
                a: Dense::new(2, 2, &mut rng).unwrap(),
                bn: BatchNorm2d::new(2).unwrap(),
                training: true,
            },
            training: true,
        }
    }

    #[test]
    fn nested_names_follow_pytorch() {
        let mut net = net();
        let mut names = Vec::new();
        net.visit_params(&mut |name, p| names.push(format!("{name} {:?}", p.shape())));
        assert_eq!(
            names,
            [
                "fc1.weight [2, 3]",
                "fc1.bias [2]",
                "blk1.a.weight [2, 2]",
                "blk1.a.bias [2]",
                "blk1.bn.weight [2]",
                "blk1.bn.bias [2]",
            ]
        );
        let mut mut_names = Vec::new();
        net.visit_params_mut(&mut |name, _| mut_names.push(name.to_string()));
        assert_eq!(names.len(), mut_names.len());
        for (a, b) in names.iter().zip(&mut_names) {
            assert!(a.starts_with(b.as_str()));
        }
        let mut buffers = Vec::new();
        net.visit_buffers_mut(&mut |name, _| buffers.push(name.to_string()));
        net.visit_buffers(&mut |name, _| buffers.push(name.to_string()));
        assert_eq!(
            buffers,
            [
                "blk1.bn.running_mean",
                "blk1.bn.running_var",
                "blk1.bn.running_mean",
                "blk1.bn.running_var"
            ]
        );
    }

    #[test]
    fn provided_methods() {
        let mut net = net();
        // 2*3 + 2 + 2*2 + 2 + 2 + 2 = 18
        assert_eq!(net.num_parameters(), 18);
        net.visit_params_mut(&mut |_, p| p.grad_mut().fill(1.0));
        net.zero_grad();
        net.visit_params(&mut |name, p| assert!(p.grad().iter().all(|&g| g == 0.0), "{name}"));
        assert!(net.is_training() && net.blk1.bn.is_training());
        net.set_eval_mode();
        assert!(!net.is_training() && !net.blk1.bn.is_training() && !net.fc1.is_training());
        net.set_training_mode(true);
        assert!(net.blk1.bn.is_training());
    }

    #[test]
    fn summary_table() {
        assert_eq!(
            net().summary(),
            "\
parameter             shape   count
fc1.weight            [2, 3]      6
fc1.bias              [2]         2
blk1.a.weight         [2, 2]      4
blk1.a.bias           [2]         2
blk1.bn.weight        [2]         2
blk1.bn.bias          [2]         2
total parameters: 18
buffer                shape   count
blk1.bn.running_mean  [2]         2
blk1.bn.running_var   [2]         2"
        );
    }

    #[test]
    fn lists_name_children_by_position() {
        let mut rng = StdRng::seed_from_u64(1);
        let mut layers = [
            Dense::<f32>::new(2, 3, &mut rng).unwrap(),
            Dense::<f32>::new(3, 1, &mut rng).unwrap(),
        ];
        let mut names = Vec::new();
        layers.visit_params(&mut |n, p| names.push(format!("{n} {:?}", p.shape())));
        assert_eq!(
            names,
            [
                "0.weight [3, 2]",
                "0.bias [3]",
                "1.weight [1, 3]",
                "1.bias [1]"
            ]
        );
        assert_eq!(layers.num_parameters(), 13);
        layers.set_eval_mode();
        assert!(!layers.is_training() && !layers[1].is_training());
        let mut blocks: Vec<BatchNorm2d<f64>> =
            (0..11).map(|_| BatchNorm2d::new(1).unwrap()).collect();
        let mut buffers = Vec::new();
        blocks.visit_buffers_mut(&mut |n, _| buffers.push(n.to_string()));
        assert_eq!(buffers[20..], ["10.running_mean", "10.running_var"]);
        blocks[3].set_training_mode(false);
        assert!(!blocks.is_training());
        blocks.set_training_mode(true);
        assert!(blocks.is_training());
        assert_eq!(
            with_indexed_name(usize::MAX, "w", |s| s.to_string()),
            format!("{}.w", usize::MAX)
        );
    }

    #[test]
    fn long_names_fall_back_to_the_heap() {
        let long = "x".repeat(200);
        let joined = with_prefixed_name(&long, "weight", |s| s.to_string());
        assert_eq!(joined, format!("{long}.weight"));
        assert_eq!(with_prefixed_name("", "bias", |s| s.to_string()), "bias");
        assert_eq!(with_prefixed_name("é", "ü", |s| s.to_string()), "é.ü");
    }
}
