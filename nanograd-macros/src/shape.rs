//! Shapes as the macro knows them: every dimension is a number known while compiling,
//! except a leading batch dimension, known only at run time.

use std::fmt;

/// The most elements one sample of a value may have (2^40): every size the generated code
/// computes stays far from overflow.
pub const MAX_ELEMENTS: usize = 1 << 40;

/// One dimension.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dim {
    /// The batch dimension (`B` in `[B, 784]`), always the leading one.
    Batch,
    Fixed(usize),
}

/// A shape; `[]` is a scalar.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Shape {
    pub dims: Vec<Dim>,
    /// How the batch dimension was spelled, for messages (`B`, `N`, ...).
    pub batch_name: Option<String>,
}

impl Shape {
    pub fn fixed(dims: &[usize]) -> Shape {
        Shape {
            dims: dims.iter().map(|&d| Dim::Fixed(d)).collect(),
            batch_name: None,
        }
    }

    pub fn scalar() -> Shape {
        Shape::fixed(&[])
    }

    pub fn rank(&self) -> usize {
        self.dims.len()
    }

    pub fn is_scalar(&self) -> bool {
        self.dims.is_empty()
    }

    pub fn is_batched(&self) -> bool {
        self.dims.first() == Some(&Dim::Batch)
    }

    /// The product of the fixed dimensions: the element count per batch row if batched
    /// (saturating: see [`Shape::too_large`]).
    pub fn numel_fixed(&self) -> usize {
        self.dims.iter().fold(1usize, |acc, d| match d {
            Dim::Batch => acc,
            Dim::Fixed(n) => acc.saturating_mul(*n),
        })
    }

    /// Whether one sample of this shape has more elements than a model may hold.
    pub fn too_large(&self) -> bool {
        self.numel_fixed() > MAX_ELEMENTS
    }

    /// The last dimension, if fixed.
    pub fn last(&self) -> Option<usize> {
        match self.dims.last() {
            Some(Dim::Fixed(n)) => Some(*n),
            _ => None,
        }
    }

    /// The fixed dimension at `i`, if any.
    pub fn fixed_at(&self, i: usize) -> Option<usize> {
        match self.dims.get(i) {
            Some(Dim::Fixed(n)) => Some(*n),
            _ => None,
        }
    }

    /// A copy whose dims are `dims`, keeping the batch spelling.
    pub fn with_dims(&self, dims: Vec<Dim>) -> Shape {
        Shape {
            dims,
            batch_name: self.batch_name.clone(),
        }
    }

    /// The same shape with its last dimension replaced.
    pub fn with_last(&self, n: usize) -> Shape {
        let mut dims = self.dims.clone();
        if let Some(last) = dims.last_mut() {
            *last = Dim::Fixed(n);
        }
        self.with_dims(dims)
    }

    /// The shape with the batch dimension kept and every other dim fixed to `rest`.
    pub fn batch_then(&self, rest: &[usize]) -> Shape {
        let mut dims = Vec::new();
        if self.is_batched() {
            dims.push(Dim::Batch);
        }
        dims.extend(rest.iter().map(|&d| Dim::Fixed(d)));
        self.with_dims(dims)
    }

    /// Elementwise compatibility: equal, or the shorter is a suffix of the longer (a scalar
    /// is the empty suffix). Returns the result shape.
    pub fn broadcast(&self, other: &Shape) -> Option<Shape> {
        let (long, short) = if self.rank() >= other.rank() {
            (self, other)
        } else {
            (other, self)
        };
        let offset = long.rank() - short.rank();
        if long.dims[offset..] == short.dims[..] {
            Some(long.clone())
        } else {
            None
        }
    }
}

impl fmt::Display for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[")?;
        for (i, d) in self.dims.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            match d {
                Dim::Batch => f.write_str(self.batch_name.as_deref().unwrap_or("B"))?,
                Dim::Fixed(n) => write!(f, "{n}")?,
            }
        }
        f.write_str("]")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batched(rest: &[usize]) -> Shape {
        Shape::scalar().with_dims(
            std::iter::once(Dim::Batch)
                .chain(rest.iter().map(|&d| Dim::Fixed(d)))
                .collect(),
        )
    }

    #[test]
    fn display_and_broadcast() {
        assert_eq!(batched(&[784]).to_string(), "[B, 784]");
        assert_eq!(Shape::scalar().to_string(), "[]");
        let a = batched(&[10]);
        assert_eq!(a.broadcast(&Shape::fixed(&[10])), Some(a.clone()));
        assert_eq!(Shape::scalar().broadcast(&a), Some(a.clone()));
        assert_eq!(a.broadcast(&Shape::fixed(&[9])), None);
        assert_eq!(Shape::fixed(&[2, 3]).broadcast(&Shape::fixed(&[2])), None);
    }
}
