//! The validated, shape-resolved graph of one `fn`: what code generation reads. Every
//! shape here has been checked; nothing after this stage can fail.

use crate::shape::Shape;
use proc_macro2::TokenStream;
use syn::Ident;

pub type NodeId = usize;

/// A value of the graph: the op that makes it, its operands, its shape.
pub struct Node {
    pub op: Op,
    pub inputs: Vec<NodeId>,
    pub shape: Shape,
}

/// Convolution geometry, all fixed.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct ConvGeom {
    pub c_in: usize,
    pub h: usize,
    pub w: usize,
    pub c_out: usize,
    pub kh: usize,
    pub kw: usize,
    pub stride: usize,
    pub padding: usize,
}

impl ConvGeom {
    pub fn out_h(&self) -> usize {
        (self.h + 2 * self.padding - self.kh) / self.stride + 1
    }
    pub fn out_w(&self) -> usize {
        (self.w + 2 * self.padding - self.kw) / self.stride + 1
    }
    pub fn col_len(&self) -> usize {
        self.c_in * self.kh * self.kw * self.out_h() * self.out_w()
    }
    /// The kernels' workspace per image: its columns. Mirrors
    /// `nanograd_runtime::ops::Conv2dGeom::workspace_per_image`; the kernels check the
    /// workspace length exactly, so a difference is an error at once.
    pub fn workspace_per_image(&self) -> usize {
        if self.is_shifted() {
            return (self.c_in + self.c_out) * self.padded_plane();
        }
        self.col_len()
    }
    /// Whether the kernels run as GEMMs on shifted views of one padded copy of the input
    /// (`Conv2dGeom::is_shifted`: stride 1, padding below the kernel, 8 channels or more).
    fn is_shifted(&self) -> bool {
        self.stride == 1 && self.padding < self.kh && self.padding < self.kw && self.c_in >= 8
    }
    /// One image's padded plane, `(h + p)·(w + p)`.
    fn padded_plane(&self) -> usize {
        (self.h + self.padding) * (self.w + self.padding)
    }
    /// The kernels' workspace that does not grow with the batch (the weight's gradient
    /// transposed, stride-phase planes, one chunk's output). Mirrors
    /// `nanograd_runtime::ops::Conv2dGeom::workspace_fixed`.
    pub fn workspace_fixed(&self) -> usize {
        if self.is_shifted() {
            // the padded input's tails, dY's margins, one chunk's product, the weight and
            // its gradient by tap
            let pw = self.w + self.padding;
            let plane = self.padded_plane();
            let width = 1024usize.div_ceil(plane) * plane;
            let margin = (self.kh - 1) * pw + self.kw - 1;
            let weight = self.c_out * self.c_in * self.kh * self.kw;
            return self.c_in * (self.kh * pw + self.kw)
                + self.c_out * margin
                + (self.c_out * width).max(self.c_in * self.kh * self.kw * (width + margin))
                + 2 * weight;
        }
        let ohw = self.out_h() * self.out_w();
        let chunk = if ohw == 0 || (ohw >= 256 && ohw.is_multiple_of(16)) {
            1
        } else {
            1024usize.div_ceil(ohw)
        };
        let chunk_out = if chunk > 1 {
            chunk * self.c_out * ohw
        } else {
            0
        };
        let aligned = self.out_h() * self.stride == self.h && self.out_w() * self.stride == self.w;
        let phases = if self.stride > 1 && aligned {
            2 * self.h * self.w
        } else {
            0
        };
        self.c_out * self.c_in * self.kh * self.kw + phases + chunk_out
    }
}

/// Pooling geometry, all fixed.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct PoolGeom {
    pub c: usize,
    pub h: usize,
    pub w: usize,
    pub kernel: usize,
    pub stride: usize,
    pub padding: usize,
}

impl PoolGeom {
    pub fn out_h(&self) -> usize {
        (self.h + 2 * self.padding - self.kernel) / self.stride + 1
    }
    pub fn out_w(&self) -> usize {
        (self.w + 2 * self.padding - self.kernel) / self.stride + 1
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Unary {
    Relu,
    Tanh,
    Sigmoid,
    SigmoidStable,
    Gelu,
    /// `gelu(x, approximate = "none")`: the exact GELU, `x Φ(x)`.
    GeluErf,
    Silu,
}

impl Unary {
    pub fn name(self) -> &'static str {
        match self {
            Unary::Relu => "relu",
            Unary::Tanh => "tanh",
            Unary::Sigmoid => "sigmoid",
            Unary::SigmoidStable => "sigmoid_stable",
            Unary::Gelu => "gelu",
            Unary::GeluErf => "gelu_erf",
            Unary::Silu => "silu",
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Binary {
    Add,
    Sub,
    Mul,
    Div,
}

impl Binary {
    pub fn name(self) -> &'static str {
        match self {
            Binary::Add => "add",
            Binary::Sub => "sub",
            Binary::Mul => "mul",
            Binary::Div => "div",
        }
    }
}

/// What a node computes. Counts that depend on the batch are derived from the operands'
/// shapes by code generation; the op keeps only what the shapes cannot tell.
pub enum Op {
    /// The `i`-th argument of the fn.
    Input(usize),
    /// The `i`-th argument of the fn, declared `u32[..]`: indices, not a differentiable value.
    IndexInput(usize),
    /// A trainable tensor of the model: `self.<field>`, `self.<field>.<sub>` or deeper
    /// (`self.attn.out_proj.weight`).
    Param {
        field: Ident,
        sub: Vec<Ident>,
    },
    /// A number written in the source, as a one-element tensor.
    Const(f64),
    Binary(Binary),
    SafeDiv(f64),
    Scale(f64),
    /// `[m, k] x [k, n]`, `[m, n] x [n]`, `[m] x [m, n]`, `[n] . [n]`.
    MatMul,
    /// `[.., m, k] x [.., k, n]` with equal leading dimensions.
    BatchedMatMul,
    MatVec,
    VecMat,
    Dot,
    /// `dense(x, w, b?)`, also what a `Dense` layer lowers to.
    Dense {
        bias: bool,
    },
    Sum,
    Mean,
    Product,
    /// `reduce(x, init, f, grad = rule)`: closures as written.
    Reduce {
        init: f64,
        f: TokenStream,
        rule: Option<TokenStream>,
    },
    /// Rows `start..start + len` of the first dimension.
    Slice {
        start: usize,
        len: usize,
    },
    /// `reshape` and `flatten`: the same data seen with another shape (no code).
    Reshape,
    /// `transpose(x, a, b)`: dimensions `a` and `b` (counted with the batch as 0) swapped.
    Transpose {
        a: usize,
        b: usize,
    },
    /// `concat(a, b, dim = d)`: joined along dimension `dim` (counted with the batch as 0).
    Concat {
        dim: usize,
    },
    /// `causal_mask(x)` on `[.., t, t]`.
    CausalMask,
    /// `attention(q, k, v, causal = ..)`: fused scaled dot-product attention.
    Attention {
        causal: bool,
    },
    /// The core of a `MultiHeadAttention` layer, between its in- and out-projections: the
    /// packed `[.., t, 3c]` projections to the heads' outputs side by side, `[.., t, c]`.
    MhaAttention {
        heads: usize,
        causal: bool,
    },
    /// An `Embedding` layer: inputs are the `u32` ids and the weight `[vocab, dim]`.
    Embedding,
    Unary(Unary),
    LeakyRelu(f64),
    Softplus(f64),
    Softmax,
    LogSoftmax,
    MseLoss,
    CrossEntropyLoss,
    SoftmaxCrossEntropy,
    /// `softmax_cross_entropy(logits, targets)` with `u32` class indices as targets.
    SoftmaxCrossEntropyIndices,
    Conv2d {
        geom: ConvGeom,
        bias: bool,
    },
    MaxPool2d(PoolGeom),
    AvgPool2d(PoolGeom),
    GlobalAvgPool2d,
    /// A `BatchNorm2d` layer: inputs are x, weight, bias; running statistics live in the layer.
    BatchNorm2d {
        layer: Ident,
        eps: f64,
        momentum: f64,
    },
    RmsNorm(f64),
    LayerNorm {
        eps: f64,
        weight: bool,
        bias: bool,
    },
    L2Normalize(f64),
    CosineSimilarity,
    /// A `Dropout` layer.
    Dropout(f64),
    /// A model declared by another `model!`, used as a layer: its `forward`.
    SubModel {
        layer: Ident,
        /// The element of a layer array (`h: [Block; 4]`) this call runs.
        index: Option<usize>,
        /// Elements of one batch row of its input (all of them if unbatched).
        in_row: usize,
        /// The workspace it needs: per batch row, and fixed.
        ws_per_row: usize,
        ws_fixed: usize,
        /// The packed-weight caches its inference pass reads.
        packs: usize,
    },
}

impl Op {
    /// Ops whose output is their first input's data under another shape.
    pub fn is_alias(&self) -> bool {
        matches!(self, Op::Reshape)
    }

    /// Ops whose value is `u32` indices: no buffer of `T`, no gradient.
    pub fn is_index(&self) -> bool {
        matches!(self, Op::IndexInput(_))
    }
}

/// The graph of one `fn`, in definition order (a topological order by construction).
pub struct Graph {
    pub nodes: Vec<Node>,
    pub output: NodeId,
}
