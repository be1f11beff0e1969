//! MNIST and Fashion-MNIST: the four standard IDX files of a folder, checked and with pixels
//! scaled to `[0, 1]`.

use std::path::Path;

use super::idx::{find_file, read_idx, IdxArray};
use crate::{fmt_shape, Error, Float, Result};

/// Rows and columns of an image.
pub const IMAGE_SIDE: usize = 28;
/// Pixels of an image, `28 * 28`.
pub const IMAGE_SIZE: usize = IMAGE_SIDE * IMAGE_SIDE;
/// Number of classes: the digits 0-9 (or Fashion-MNIST's ten kinds of clothing).
pub const NUM_CLASSES: usize = 10;

/// The standard file names, each read as is or with `.gz` appended.
pub const TRAIN_IMAGES: &str = "train-images-idx3-ubyte";
/// See [`TRAIN_IMAGES`].
pub const TRAIN_LABELS: &str = "train-labels-idx1-ubyte";
/// See [`TRAIN_IMAGES`].
pub const TEST_IMAGES: &str = "t10k-images-idx3-ubyte";
/// See [`TRAIN_IMAGES`].
pub const TEST_LABELS: &str = "t10k-labels-idx1-ubyte";

/// A training and a test set of 28x28 grayscale images with labels 0-9: MNIST, Fashion-MNIST or
/// any subset of them in the same format (such as the repository's `data/mnist-10k`).
///
/// Pixels are `byte / 255` in `T`, as torchvision's `ToTensor` gives them; image `i` is the
/// row-major 28x28 array `train_images[i]`, with label `train_labels[i]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Mnist<T = f32> {
    /// Training images, pixels in `[0, 1]`.
    pub train_images: Vec<[T; IMAGE_SIZE]>,
    /// Training labels, each in `0..10`.
    pub train_labels: Vec<u8>,
    /// Test images, pixels in `[0, 1]`.
    pub test_images: Vec<[T; IMAGE_SIZE]>,
    /// Test labels, each in `0..10`.
    pub test_labels: Vec<u8>,
}

impl Mnist<f32> {
    /// Reads `train-images-idx3-ubyte`, `train-labels-idx1-ubyte`, `t10k-images-idx3-ubyte` and
    /// `t10k-labels-idx1-ubyte` from `dir`, each gzipped (`.gz` appended) or not, with pixels
    /// as `f32`. [`Mnist::load_as`] reads them as another [`Float`].
    ///
    /// ```
    /// use nanograd_runtime::data::Mnist;
    /// # let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../data/mnist-10k");
    /// let mnist = Mnist::load(dir)?; // e.g. "data/mnist-10k"
    /// assert_eq!(mnist.train_images.len(), 8000);
    /// assert_eq!(mnist.test_labels.len(), 2000);
    /// assert!(mnist.test_images[0].iter().all(|&p| (0.0..=1.0).contains(&p)));
    /// # Ok::<(), nanograd_runtime::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Io`] if a file is missing or unreadable; [`Error::Format`] naming the file if it
    /// is not a valid IDX file of unsigned bytes, if images are not `[n, 28, 28]` or labels
    /// not `[n]`, if a set has not as many labels as images, or if a label is above 9.
    pub fn load(dir: impl AsRef<Path>) -> Result<Self> {
        Self::load_as(dir)
    }
}

impl<T: Float> Mnist<T> {
    /// [`Mnist::load`] with pixels in any [`Float`]: `Mnist::<f64>::load_as(dir)`.
    ///
    /// # Errors
    /// As [`Mnist::load`].
    pub fn load_as(dir: impl AsRef<Path>) -> Result<Self> {
        let dir = dir.as_ref();
        let (train_images, train_labels) = load_split(dir, TRAIN_IMAGES, TRAIN_LABELS)?;
        let (test_images, test_labels) = load_split(dir, TEST_IMAGES, TEST_LABELS)?;
        Ok(Mnist {
            train_images,
            train_labels,
            test_images,
            test_labels,
        })
    }
}

/// Images in `[0, 1]` and labels of one split, checked against each other.
type Split<T> = (Vec<[T; IMAGE_SIZE]>, Vec<u8>);

/// Reads and checks one pair of image and label files.
fn load_split<T: Float>(dir: &Path, images_name: &str, labels_name: &str) -> Result<Split<T>> {
    let images_path = find_file(dir, images_name)?;
    let labels_path = find_file(dir, labels_name)?;
    let images = read_idx(&images_path)?;
    let labels = read_idx(&labels_path)?;
    let fail = |path: &Path, msg: String| Error::Format {
        path: path.to_path_buf(),
        msg,
    };

    let n = match *images.dims() {
        [n, IMAGE_SIDE, IMAGE_SIDE] => n,
        _ => {
            let msg = format!(
                "images are {}, expected [n, {IMAGE_SIDE}, {IMAGE_SIDE}]",
                fmt_shape(images.dims())
            );
            return Err(fail(&images_path, msg));
        }
    };
    if labels.dims().len() != 1 {
        let msg = format!("labels are {}, expected [n]", fmt_shape(labels.dims()));
        return Err(fail(&labels_path, msg));
    }
    if labels.dims()[0] != n {
        let images_file = images_path.file_name().unwrap_or_default();
        let msg = format!(
            "{} labels but {n} images in {}",
            labels.dims()[0],
            images_file.to_string_lossy()
        );
        return Err(fail(&labels_path, msg));
    }
    if let Some((i, &l)) = labels
        .data()
        .iter()
        .enumerate()
        .find(|&(_, &l)| usize::from(l) >= NUM_CLASSES)
    {
        let msg = format!(
            "label {l} at index {i} is not a class 0-{}",
            NUM_CLASSES - 1
        );
        return Err(fail(&labels_path, msg));
    }
    Ok((scale_pixels(&images), labels.into_data()))
}

/// `byte / 255` in `T`, one image per row.
fn scale_pixels<T: Float>(images: &IdxArray) -> Vec<[T; IMAGE_SIZE]> {
    let table: [T; 256] = std::array::from_fn(|b| T::from_usize(b) / T::from_usize(255));
    images
        .data()
        .chunks_exact(IMAGE_SIZE)
        .map(|px| std::array::from_fn(|i| table[usize::from(px[i])]))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pixels_are_bytes_over_255() {
        // magic 0x00000803, dims [1, 28, 28], then pixels 0, 51, 255, 0, 0, ...
        let mut bytes = vec![0, 0, 8, 3, 0, 0, 0, 1, 0, 0, 0, 28, 0, 0, 0, 28];
        let mut px = [0u8; IMAGE_SIZE];
        px[1] = 51;
        px[2] = 255;
        bytes.extend_from_slice(&px);
        let idx = super::super::idx::parse_idx(&bytes, "x").unwrap();
        let f: Vec<[f32; IMAGE_SIZE]> = scale_pixels(&idx);
        // 51 / 255 = 0.2 exactly in real numbers; f32 rounds it once
        assert_eq!(f[0][..3], [0.0, 0.2, 1.0]);
        let d: Vec<[f64; IMAGE_SIZE]> = scale_pixels(&idx);
        assert_eq!(d[0][..3], [0.0, 0.2, 1.0]);
        assert_eq!(d.len(), 1);
    }
}
