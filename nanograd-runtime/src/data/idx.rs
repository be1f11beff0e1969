//! The IDX format of MNIST and Fashion-MNIST, gzipped or not.
//!
//! An IDX file is a 4-byte magic number `0x00 0x00 <type> <ndim>`, then `ndim` big-endian
//! `u32` dimensions, then the data in row-major order. MNIST's images are type `0x08`
//! (unsigned byte) with 3 dimensions `[n, 28, 28]` (magic 2051); its labels are `0x08` with one
//! dimension `[n]` (magic 2049). A file that starts with gzip's magic `0x1f 0x8b` is
//! decompressed first, whatever its name.
//!
//! Every way a file can be wrong (truncated, wrong magic, unsupported type, more or fewer data
//! bytes than its dimensions need, corrupt gzip) is an [`Error::Format`] naming the file; no
//! input makes the parser panic.

use std::io::{self, Read};
use std::path::{Path, PathBuf};

use flate2::read::MultiGzDecoder;

use crate::{fmt_shape, Error, Result};

/// The type code of unsigned bytes, the only one MNIST uses.
pub const TYPE_U8: u8 = 0x08;

/// The two bytes that open a gzip stream.
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// Data bytes reserved up front at most; the rest grows as it is read, so a header that claims
/// gigabytes cannot make the reader reserve them before the data is there.
const MAX_RESERVE: usize = 1 << 26;

/// An IDX array of unsigned bytes: its dimensions and its data in row-major order.
/// `data().len()` is always the product of `dims()`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdxArray {
    dims: Vec<usize>,
    data: Vec<u8>,
}

impl IdxArray {
    /// The dimensions, e.g. `[60000, 28, 28]` for MNIST's training images.
    pub fn dims(&self) -> &[usize] {
        &self.dims
    }

    /// The data in row-major order.
    pub fn data(&self) -> &[u8] {
        &self.data
    }

    /// The data, without copying.
    pub fn into_data(self) -> Vec<u8> {
        self.data
    }
}

/// Reads an IDX file of unsigned bytes, gzipped or not (recognised by gzip's magic number, not
/// by the file's name).
///
/// ```
/// use nanograd_runtime::data::idx::read_idx;
/// # let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../data/mnist-10k");
/// let labels = read_idx(format!("{dir}/t10k-labels-idx1-ubyte.gz"))?;
/// assert_eq!(labels.dims(), [2000]);
/// # Ok::<(), nanograd_runtime::Error>(())
/// ```
///
/// # Errors
/// [`Error::Io`] if the file cannot be read; [`Error::Format`] as [`parse_idx`].
pub fn read_idx(path: impl AsRef<Path>) -> Result<IdxArray> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })?;
    parse_idx(&bytes, path)
}

/// Parses the bytes of an IDX file of unsigned bytes, gzipped or not; `name` is the file name
/// that error messages show.
///
/// ```
/// use nanograd_runtime::data::idx::parse_idx;
/// // magic 0x00000802: unsigned bytes, 2 dimensions; then 2 and 3, big-endian; then 6 bytes
/// let bytes = [0, 0, 8, 2, 0, 0, 0, 2, 0, 0, 0, 3, 1, 2, 3, 4, 5, 6];
/// let a = parse_idx(&bytes, "tiny-idx2-ubyte")?;
/// assert_eq!(a.dims(), [2, 3]);
/// assert_eq!(a.data(), [1, 2, 3, 4, 5, 6]);
///
/// let err = parse_idx(&bytes[..16], "tiny-idx2-ubyte").unwrap_err();
/// assert_eq!(
///     err.to_string(),
///     "tiny-idx2-ubyte: truncated data: dimensions [2, 3] need 6 bytes after the header, found 4"
/// );
/// # Ok::<(), nanograd_runtime::Error>(())
/// ```
///
/// # Errors
/// [`Error::Format`] naming `name` if the header is truncated, the magic number is not an IDX
/// one, the type code is not `0x08`, the data is shorter or longer than the dimensions say, or
/// a gzip stream is corrupt.
pub fn parse_idx(bytes: &[u8], name: impl AsRef<Path>) -> Result<IdxArray> {
    let name = name.as_ref();
    if bytes.starts_with(&GZIP_MAGIC) {
        parse_from(MultiGzDecoder::new(bytes), name, true)
    } else {
        parse_from(bytes, name, false)
    }
}

/// Parses an IDX stream; `gzip` says whether read errors are a corrupt gzip stream.
fn parse_from(mut r: impl Read, name: &Path, gzip: bool) -> Result<IdxArray> {
    let fail = |msg: String| Error::Format {
        path: name.to_path_buf(),
        msg,
    };
    let read_err = |e: io::Error| {
        fail(if gzip {
            format!("corrupt gzip data: {e}")
        } else {
            format!("read failed: {e}")
        })
    };

    let mut magic = [0u8; 4];
    let got = read_up_to(&mut r, &mut magic).map_err(read_err)?;
    if got < magic.len() {
        return Err(fail(format!(
            "truncated header: {got} bytes, an IDX file starts with a 4-byte magic number"
        )));
    }
    check_magic(magic).map_err(fail)?;

    let ndim = usize::from(magic[3]);
    let mut raw_dims = [0u8; 4 * 255];
    let raw_dims = &mut raw_dims[..4 * ndim];
    let got = read_up_to(&mut r, raw_dims).map_err(read_err)?;
    if got < raw_dims.len() {
        return Err(fail(format!(
            "truncated header: {ndim} dimensions need {} bytes after the magic number, found {got}",
            raw_dims.len()
        )));
    }
    let dims: Vec<usize> = raw_dims
        .chunks_exact(4)
        .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize)
        .collect();
    let len = dims
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| {
            fail(format!(
                "dimensions {} hold more elements than fit in memory",
                fmt_shape(&dims)
            ))
        })?;

    // read one byte more than needed, to tell a file longer than its header says
    let mut data = Vec::with_capacity(len.min(MAX_RESERVE));
    let limit = (len as u64).saturating_add(1);
    r.by_ref()
        .take(limit)
        .read_to_end(&mut data)
        .map_err(read_err)?;
    if data.len() < len {
        return Err(fail(format!(
            "truncated data: dimensions {} need {len} bytes after the header, found {}",
            fmt_shape(&dims),
            data.len()
        )));
    }
    if data.len() > len {
        let rest = io::copy(&mut r, &mut io::sink()).map_err(read_err)?;
        let found = (len as u64).saturating_add(1).saturating_add(rest);
        return Err(fail(format!(
            "count mismatch: dimensions {} need {len} bytes after the header, found {found}",
            fmt_shape(&dims)
        )));
    }
    Ok(IdxArray { dims, data })
}

/// Checks `0x00 0x00 <type> <ndim>`: type `0x08` and at least one dimension.
fn check_magic(magic: [u8; 4]) -> std::result::Result<(), String> {
    let value = u32::from_be_bytes(magic);
    if magic[..2] != [0, 0] {
        return Err(format!(
            "wrong magic number 0x{value:08x} (not an IDX file): an IDX file starts with \
             0x0000, a type code and the number of dimensions, e.g. 0x00000803 for images"
        ));
    }
    let code = magic[2];
    if code != TYPE_U8 {
        let msg = match type_name(code) {
            Some(t) => format!(
                "unsupported type code 0x{code:02x} ({t}) in magic number 0x{value:08x}: \
                 only 0x08 (unsigned byte) is supported"
            ),
            None => format!(
                "unknown type code 0x{code:02x} in magic number 0x{value:08x}: IDX type \
                 codes are 0x08, 0x09, 0x0b, 0x0c, 0x0d and 0x0e"
            ),
        };
        return Err(msg);
    }
    if magic[3] == 0 {
        return Err(format!(
            "magic number 0x{value:08x} declares 0 dimensions, expected at least 1"
        ));
    }
    Ok(())
}

/// The element type of an IDX type code other than `0x08`.
fn type_name(code: u8) -> Option<&'static str> {
    match code {
        0x09 => Some("signed byte"),
        0x0b => Some("i16"),
        0x0c => Some("i32"),
        0x0d => Some("f32"),
        0x0e => Some("f64"),
        _ => None,
    }
}

/// Reads until `buf` is full or the stream ends; returns the number of bytes read.
fn read_up_to(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match r.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// `dir/name`, or `dir/name.gz` if only that exists; an [`Error::Io`] naming both if neither
/// does.
pub(crate) fn find_file(dir: &Path, name: &str) -> Result<PathBuf> {
    let raw = dir.join(name);
    if raw.is_file() {
        return Ok(raw);
    }
    let gz = dir.join(format!("{name}.gz"));
    if gz.is_file() {
        return Ok(gz);
    }
    Err(Error::Io {
        path: raw,
        source: io::Error::new(
            io::ErrorKind::NotFound,
            format!("no such file, nor `{name}.gz` beside it"),
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    /// An IDX header for unsigned bytes with these dimensions.
    fn header(dims: &[u32]) -> Vec<u8> {
        let mut h = vec![0, 0, TYPE_U8, dims.len() as u8];
        for d in dims {
            h.extend_from_slice(&d.to_be_bytes());
        }
        h
    }

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        enc.write_all(bytes).unwrap();
        enc.finish().unwrap()
    }

    fn message(bytes: &[u8]) -> String {
        parse_idx(bytes, "x-idx").unwrap_err().to_string()
    }

    #[test]
    fn literal_raw_and_gzip() {
        // magic 0x00000803, dims 2 x 1 x 2 (big-endian), then 4 data bytes
        let mut bytes = header(&[2, 1, 2]);
        assert_eq!(bytes[..8], [0, 0, 8, 3, 0, 0, 0, 2]);
        bytes.extend_from_slice(&[0, 127, 255, 9]);
        let a = parse_idx(&bytes, "x-idx").unwrap();
        assert_eq!(a.dims(), [2, 1, 2]);
        assert_eq!(a.data(), [0, 127, 255, 9]);
        assert_eq!(parse_idx(&gzip(&bytes), "x-idx").unwrap(), a);
        // two concatenated gzip members are one stream, as gzip(1) says
        let (head, tail) = bytes.split_at(10);
        let two = [gzip(head), gzip(tail)].concat();
        assert_eq!(parse_idx(&two, "x-idx").unwrap(), a);
        // a dimension of 0 is an empty array
        let empty = parse_idx(&header(&[0, 28, 28]), "x-idx").unwrap();
        assert_eq!(empty.dims(), [0, 28, 28]);
        assert!(empty.into_data().is_empty());
    }

    #[test]
    fn truncated() {
        assert_eq!(
            message(&[0, 0, 8]),
            "x-idx: truncated header: 3 bytes, an IDX file starts with a 4-byte magic number"
        );
        assert_eq!(
            message(&header(&[5, 2])[..9]),
            "x-idx: truncated header: 2 dimensions need 8 bytes after the magic number, found 5"
        );
        let mut b = header(&[3, 2]);
        b.extend_from_slice(&[1; 5]);
        assert_eq!(
            message(&b),
            "x-idx: truncated data: dimensions [3, 2] need 6 bytes after the header, found 5"
        );
        // the same through gzip
        assert_eq!(
            parse_idx(&gzip(&b), "x-idx").unwrap_err().to_string(),
            message(&b)
        );
    }

    #[test]
    fn longer_than_its_header_says() {
        let mut b = header(&[4]);
        b.extend_from_slice(&[1; 7]);
        let expected =
            "x-idx: count mismatch: dimensions [4] need 4 bytes after the header, found 7";
        assert_eq!(message(&b), expected);
        assert_eq!(message(&gzip(&b)), expected);
    }

    #[test]
    fn wrong_magic_and_type() {
        let m = message(&[0x12, 0x34, 0x56, 0x78, 0, 0, 0, 0]);
        assert!(
            m.starts_with("x-idx: wrong magic number 0x12345678 (not an IDX file): "),
            "{m}"
        );
        let m = message(&[0, 0, 0x0d, 1, 0, 0, 0, 1, 0, 0, 0, 0]);
        assert_eq!(
            m,
            "x-idx: unsupported type code 0x0d (f32) in magic number 0x00000d01: \
             only 0x08 (unsigned byte) is supported"
        );
        let m = message(&[0, 0, 0x07, 1, 0, 0, 0, 0]);
        assert!(
            m.starts_with("x-idx: unknown type code 0x07 in magic"),
            "{m}"
        );
        assert_eq!(
            message(&[0, 0, 8, 0]),
            "x-idx: magic number 0x00000800 declares 0 dimensions, expected at least 1"
        );
    }

    #[test]
    fn corrupt_gzip_and_overflowing_dims() {
        let mut b = gzip(&header(&[1]));
        let n = b.len();
        b[n - 8] ^= 0xff; // the CRC-32 of the trailer
        let m = message(&b);
        assert!(m.starts_with("x-idx: corrupt gzip data: "), "{m}");
        assert!(message(&[0x1f, 0x8b, 0, 0]).starts_with("x-idx: corrupt gzip data"));
        let huge = header(&[u32::MAX, u32::MAX, u32::MAX]);
        assert_eq!(
            message(&huge),
            "x-idx: dimensions [4294967295, 4294967295, 4294967295] hold more elements \
             than fit in memory"
        );
    }

    #[test]
    fn missing_file_is_io_error() {
        let err = read_idx("/nonexistent/nanograd/x-idx").unwrap_err();
        assert!(matches!(err, Error::Io { .. }), "{err:?}");
        assert!(err.to_string().starts_with("/nonexistent/nanograd/x-idx: "));
        let err = find_file(Path::new("/nonexistent/nanograd"), "x-idx").unwrap_err();
        assert_eq!(
            err.to_string(),
            "/nonexistent/nanograd/x-idx: no such file, nor `x-idx.gz` beside it"
        );
    }
}
