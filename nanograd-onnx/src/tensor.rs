//! Constant tensors: initializers, `Constant` nodes and everything folded from them,
//! including the integer shape vectors the exporters compute (`Shape`, `Gather`, `Concat`,
//! ...), whose entries may be the run-time batch size.

use crate::proto::{tensor_proto::DataType, TensorProto};

/// One entry of an integer tensor: a number, or the batch size (known only at run time).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Int {
    Known(i64),
    Batch,
}

/// The values of a constant tensor.
#[derive(Clone, Debug, PartialEq)]
pub enum Data {
    /// float16/float32/float64 values, kept as f32 (the generated model's element type).
    Float(Vec<f32>),
    /// int32/int64/bool values (and shape entries that are the batch size).
    Int(Vec<Int>),
}

/// A tensor known at conversion time.
#[derive(Clone, Debug, PartialEq)]
pub struct Const {
    pub dims: Vec<usize>,
    pub data: Data,
}

impl Const {
    pub fn float(dims: Vec<usize>, values: Vec<f32>) -> Self {
        Const {
            dims,
            data: Data::Float(values),
        }
    }

    pub fn ints(dims: Vec<usize>, values: Vec<Int>) -> Self {
        Const {
            dims,
            data: Data::Int(values),
        }
    }

    pub fn len(&self) -> usize {
        match &self.data {
            Data::Float(v) => v.len(),
            Data::Int(v) => v.len(),
        }
    }

    /// The values as known integers, or `None` if one is the batch size or they are floats.
    pub fn known_ints(&self) -> Option<Vec<i64>> {
        match &self.data {
            Data::Int(v) => v
                .iter()
                .map(|i| match i {
                    Int::Known(k) => Some(*k),
                    Int::Batch => None,
                })
                .collect(),
            Data::Float(_) => None,
        }
    }

    /// The values as integers whose entries may be the batch size (floats are truncated,
    /// as `Cast` to an integer type does).
    pub fn sym_ints(&self) -> Vec<Int> {
        match &self.data {
            Data::Int(v) => v.clone(),
            Data::Float(v) => v.iter().map(|&f| Int::Known(f as i64)).collect(),
        }
    }

    /// The values as floats, or `None` if one is the batch size.
    pub fn floats(&self) -> Option<Vec<f32>> {
        match &self.data {
            Data::Float(v) => Some(v.clone()),
            Data::Int(_) => self
                .known_ints()
                .map(|v| v.iter().map(|&i| i as f32).collect()),
        }
    }

    /// The single value of a tensor with one element, as a float.
    pub fn scalar(&self) -> Option<f32> {
        match self.floats() {
            Some(v) if v.len() == 1 => Some(v[0]),
            _ => None,
        }
    }

    /// A copy with the elements in the order of `index` (a gather of flat positions).
    pub fn pick(&self, dims: Vec<usize>, index: &[usize]) -> Const {
        let data = match &self.data {
            Data::Float(v) => Data::Float(index.iter().map(|&i| v[i]).collect()),
            Data::Int(v) => Data::Int(index.iter().map(|&i| v[i]).collect()),
        };
        Const { dims, data }
    }
}

/// The number of elements of a shape, or `None` on overflow.
pub fn numel(dims: &[usize]) -> Option<usize> {
    dims.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d))
}

/// The most elements a tensor may have (counting a 0 dimension as 1, so that no product of
/// some of its dimensions can overflow).
pub const MAX_ELEMENTS: usize = 1 << 32;

/// The product of `dims` if it is at most [`MAX_ELEMENTS`] (0 counting as 1).
pub fn bounded(dims: &[usize]) -> Result<usize, String> {
    dims.iter()
        .try_fold(1usize, |acc, &d| {
            acc.checked_mul(d.max(1)).filter(|&n| n <= MAX_ELEMENTS)
        })
        .ok_or_else(|| format!("dims {dims:?} hold more than {MAX_ELEMENTS} elements"))?;
    Ok(dims.iter().product())
}

/// Reads an initializer or a `Constant`'s tensor. Errors (as text for the caller to
/// report) on external data, an unsupported element type, or a size that does not match
/// the dims.
pub fn from_proto(t: &TensorProto) -> Result<Const, String> {
    if t.data_location == Some(1) {
        return Err(
            "its data is stored outside the .onnx file (data_location = EXTERNAL); \
                    export with the weights inside the file (external_data=False)"
                .into(),
        );
    }
    let dims: Vec<usize> = t
        .dims
        .iter()
        .map(|&d| usize::try_from(d).map_err(|_| format!("negative dimension {d}")))
        .collect::<Result<_, _>>()?;
    let n = bounded(&dims)?;
    let raw = t.raw_data.as_deref();
    let dtype = t.data_type.unwrap_or(0);
    let data = match DataType::try_from(dtype) {
        Ok(DataType::Float) => Data::Float(match raw {
            Some(b) => le_chunks::<4>(b, n)?.map(f32::from_le_bytes).collect(),
            None => t.float_data.clone(),
        }),
        Ok(DataType::Double) => Data::Float(match raw {
            Some(b) => le_chunks::<8>(b, n)?
                .map(|c| f64::from_le_bytes(c) as f32)
                .collect(),
            None => t.double_data.iter().map(|&d| d as f32).collect(),
        }),
        Ok(DataType::Float16) => Data::Float(match raw {
            Some(b) => le_chunks::<2>(b, n)?
                .map(|c| f16_to_f32(u16::from_le_bytes(c)))
                .collect(),
            None => t.int32_data.iter().map(|&h| f16_to_f32(h as u16)).collect(),
        }),
        Ok(DataType::Int64) => Data::Int(match raw {
            Some(b) => le_chunks::<8>(b, n)?
                .map(|c| Int::Known(i64::from_le_bytes(c)))
                .collect(),
            None => t.int64_data.iter().map(|&i| Int::Known(i)).collect(),
        }),
        Ok(DataType::Int32) => Data::Int(match raw {
            Some(b) => le_chunks::<4>(b, n)?
                .map(|c| Int::Known(i32::from_le_bytes(c).into()))
                .collect(),
            None => t.int32_data.iter().map(|&i| Int::Known(i.into())).collect(),
        }),
        Ok(DataType::Bool) => Data::Int(match raw {
            Some(b) => le_chunks::<1>(b, n)?
                .map(|c| Int::Known(i64::from(c[0] != 0)))
                .collect(),
            None => t
                .int32_data
                .iter()
                .map(|&i| Int::Known(i64::from(i != 0)))
                .collect(),
        }),
        Ok(other) => {
            return Err(format!(
                "element type {} is not supported",
                other.as_str_name()
            ))
        }
        Err(_) => return Err(format!("unknown element type {dtype}")),
    };
    let c = Const { dims, data };
    if c.len() != n {
        return Err(format!(
            "it holds {} values but its dims {:?} need {n}",
            c.len(),
            t.dims
        ));
    }
    Ok(c)
}

fn le_chunks<const N: usize>(
    b: &[u8],
    n: usize,
) -> Result<impl Iterator<Item = [u8; N]> + '_, String> {
    if n.checked_mul(N) != Some(b.len()) {
        return Err(format!(
            "its raw data has {} bytes but {n} values of {N} bytes need {}",
            b.len(),
            n.saturating_mul(N)
        ));
    }
    Ok(b.chunks_exact(N).map(|c| {
        let mut a = [0u8; N];
        a.copy_from_slice(c);
        a
    }))
}

/// IEEE half precision to single precision (exact).
fn f16_to_f32(h: u16) -> f32 {
    let sign = u32::from(h >> 15) << 31;
    let exp = u32::from((h >> 10) & 0x1f);
    let man = u32::from(h & 0x3ff);
    let bits = match (exp, man) {
        (0, 0) => sign,
        (0, m) => {
            // subnormal: value m * 2^-24
            return f32::from_bits(sign)
                + (if sign != 0 { -1.0 } else { 1.0 }) * m as f32 * 2f32.powi(-24);
        }
        (0x1f, m) => sign | 0x7f80_0000 | (m << 13),
        (e, m) => sign | ((e + 112) << 23) | (m << 13),
    };
    f32::from_bits(bits)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn half_precision_values() {
        // 0x3c00 = 1.0, 0xc000 = -2.0, 0x3555 = 0.333251953125, 0x0001 = 2^-24
        assert_eq!(f16_to_f32(0x3c00), 1.0);
        assert_eq!(f16_to_f32(0xc000), -2.0);
        assert_eq!(f16_to_f32(0x3555), 0.333_251_95);
        assert_eq!(f16_to_f32(0x0001), 2f32.powi(-24));
    }

    #[test]
    fn raw_data_of_the_wrong_length_is_an_error() {
        let t = TensorProto {
            dims: vec![2],
            data_type: Some(DataType::Float as i32),
            raw_data: Some(vec![0; 7]),
            ..Default::default()
        };
        let e = from_proto(&t).unwrap_err();
        assert_eq!(e, "its raw data has 7 bytes but 2 values of 4 bytes need 8");
    }
}
