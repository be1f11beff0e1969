//! The IDX reader and MNIST loader on the repository's `data/mnist-10k`, on crafted files for
//! every error, and on truncated, mutated and random bytes (never a panic); shuffled batches.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use flate2::{read::GzDecoder, write::GzEncoder, Compression};
use nanograd_runtime::data::{
    gather, idx::parse_idx, read_idx, Batches, Mnist, IMAGE_SIZE, TEST_IMAGES, TEST_LABELS,
    TRAIN_IMAGES, TRAIN_LABELS,
};
use nanograd_runtime::rand::{rngs::StdRng, RngExt, SeedableRng};
use nanograd_runtime::Error;

const FILES: [&str; 4] = [TRAIN_IMAGES, TRAIN_LABELS, TEST_IMAGES, TEST_LABELS];

fn repo_data() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/mnist-10k")
}

/// The repository's set, loaded once for all tests of this file.
fn mnist() -> &'static Mnist {
    static M: OnceLock<Mnist> = OnceLock::new();
    M.get_or_init(|| Mnist::load(repo_data()).expect("data/mnist-10k loads"))
}

/// The gzipped bytes of one of the repository's files.
fn gz_file(name: &str) -> Vec<u8> {
    std::fs::read(repo_data().join(format!("{name}.gz"))).unwrap()
}

/// The decompressed bytes of one of the repository's files, decompressed once.
fn raw_file(name: &str) -> &'static [u8] {
    static RAW: [OnceLock<Vec<u8>>; 4] = [const { OnceLock::new() }; 4];
    let i = FILES.iter().position(|f| *f == name).unwrap();
    RAW[i].get_or_init(|| {
        let mut raw = Vec::new();
        GzDecoder::new(&gz_file(name)[..])
            .read_to_end(&mut raw)
            .unwrap();
        raw
    })
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = GzEncoder::new(Vec::new(), Compression::fast());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

/// A fresh, empty folder under the system's temporary directory, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(test: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("nanograd-data-{}-{test}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
    fn write(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, bytes).unwrap();
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// An IDX file of unsigned bytes: header for `dims`, then `data`.
fn idx(dims: &[u32], data: &[u8]) -> Vec<u8> {
    let mut b = vec![0, 0, 8, dims.len() as u8];
    for d in dims {
        b.extend_from_slice(&d.to_be_bytes());
    }
    b.extend_from_slice(data);
    b
}

fn images(n: u32) -> Vec<u8> {
    let px: Vec<u8> = (0..n as usize * IMAGE_SIZE)
        .map(|i| (i % 256) as u8)
        .collect();
    idx(&[n, 28, 28], &px)
}

/// A valid small set: 3 training and 2 test images; `edit` replaces some files' bytes.
fn small_set(test: &str, edit: &[(&str, Vec<u8>)]) -> TempDir {
    let dir = TempDir::new(test);
    let files = [
        (TRAIN_IMAGES, images(3)),
        (TRAIN_LABELS, idx(&[3], &[0, 9, 5])),
        (TEST_IMAGES, images(2)),
        (TEST_LABELS, idx(&[2], &[1, 2])),
    ];
    for (name, bytes) in files {
        let bytes = edit
            .iter()
            .find(|(n, _)| *n == name)
            .map_or(bytes, |(_, b)| b.clone());
        dir.write(name, &bytes);
    }
    dir
}

/// Loads `dir` and returns the error's message and path, which must be a [`Error::Format`].
fn format_error(dir: &TempDir) -> (String, PathBuf) {
    match Mnist::load(&dir.0) {
        Err(Error::Format { path, msg }) => (format!("{}: {msg}", path.display()), path),
        other => panic!("expected a format error, got {other:?}"),
    }
}

// The facts below were read from the files with Python's standard library alone, not with this
// crate:
//   import gzip, struct, collections
//   b = gzip.open('data/mnist-10k/train-labels-idx1-ubyte.gz').read()
//   struct.unpack('>II', b[:8]); list(b[8:20]); collections.Counter(b[8:])
//   b = gzip.open('data/mnist-10k/train-images-idx3-ubyte.gz').read()
//   struct.unpack('>IIII', b[:16]); sum(b[16:]); d = b[16:16+784]
//   sum(d), sum(1 for x in d if x), d[14*28+14]
// and the same for the t10k files.
#[test]
fn reads_the_repository_set() {
    let m = mnist();
    assert_eq!(m.train_images.len(), 8000);
    assert_eq!(m.train_labels.len(), 8000);
    assert_eq!(m.test_images.len(), 2000);
    assert_eq!(m.test_labels.len(), 2000);
    assert_eq!(m.train_labels[..12], [8, 1, 7, 4, 3, 4, 3, 3, 0, 0, 4, 3]);
    assert_eq!(m.test_labels[..12], [1, 4, 0, 6, 0, 1, 8, 6, 2, 6, 0, 7]);
    let count = |labels: &[u8]| {
        let mut c = [0usize; 10];
        labels.iter().for_each(|&l| c[usize::from(l)] += 1);
        c
    };
    let train_counts = [799, 908, 795, 819, 793, 684, 829, 844, 745, 784];
    assert_eq!(count(&m.train_labels), train_counts);
    let test_counts = [202, 219, 196, 213, 187, 179, 185, 226, 199, 194];
    assert_eq!(count(&m.test_labels), test_counts);

    // pixels are byte / 255: every one in [0, 1], and 255 times it is the byte back
    let bytes = |imgs: &[[f32; IMAGE_SIZE]]| -> Vec<u64> {
        imgs.iter()
            .flatten()
            .map(|&p| {
                assert!((0.0..=1.0).contains(&p), "pixel {p}");
                let b = (p * 255.0).round();
                assert!(
                    (p * 255.0 - b).abs() < 1e-4,
                    "pixel {p} is not a byte / 255"
                );
                b as u64
            })
            .collect()
    };
    let train = bytes(&m.train_images);
    assert_eq!(train.iter().sum::<u64>(), 209_634_951);
    assert_eq!(train.iter().max(), Some(&255));
    let first = &train[..IMAGE_SIZE];
    assert_eq!(first.iter().sum::<u64>(), 22_235);
    assert_eq!(first.iter().filter(|&&b| b != 0).count(), 156);
    assert_eq!(first[14 * 28 + 14], 170);
    let test = bytes(&m.test_images);
    assert_eq!(test.iter().sum::<u64>(), 52_511_649);
    assert_eq!(test[..IMAGE_SIZE].iter().sum::<u64>(), 8_844);
    assert_eq!(test[14 * 28 + 14], 254);
    assert_eq!(m.test_images[0][14 * 28 + 14], 254.0 / 255.0);

    // the IDX headers as read_idx gives them
    let labels = read_idx(repo_data().join("t10k-labels-idx1-ubyte.gz")).unwrap();
    assert_eq!(labels.dims(), [2000]);
    assert_eq!(labels.data(), &m.test_labels[..]);
    let raw = raw_file(TEST_IMAGES);
    assert_eq!(raw[..4], [0, 0, 8, 3]); // magic 2051
    assert_eq!(parse_idx(raw, "x").unwrap().dims(), [2000, 28, 28]);
}

#[test]
fn raw_and_gzipped_files_read_the_same() {
    // all four raw, then two raw and two gzipped
    let dir = TempDir::new("raw");
    for name in FILES {
        dir.write(name, raw_file(name));
    }
    assert_eq!(&Mnist::load(&dir.0).unwrap(), mnist());
    let mixed = TempDir::new("mixed");
    for (i, name) in FILES.into_iter().enumerate() {
        if i % 2 == 0 {
            mixed.write(name, raw_file(name));
        } else {
            let gz = gz_file(name);
            // a gzipped file under the raw name: gzip is recognised by its magic, not its name
            mixed.write(name, &gz);
        }
    }
    assert_eq!(&Mnist::load(&mixed.0).unwrap(), mnist());
}

#[test]
fn small_valid_set_and_its_pixels() {
    let dir = small_set("valid", &[]);
    let m = Mnist::load(&dir.0).unwrap();
    assert_eq!(m.train_labels, [0, 9, 5]);
    assert_eq!(m.test_labels, [1, 2]);
    // pixel i is (i % 256) / 255: image 1 starts at i = 784, 784 % 256 = 16
    assert_eq!(m.train_images[1][0], 16.0 / 255.0);
    assert_eq!(m.train_images[0][255], 1.0);
}

#[test]
fn label_count_differs_from_image_count() {
    let dir = small_set("count", &[(TEST_LABELS, idx(&[1], &[3]))]);
    let (msg, path) = format_error(&dir);
    assert_eq!(path, dir.0.join(TEST_LABELS));
    assert_eq!(
        msg,
        format!(
            "{}: 1 labels but 2 images in t10k-images-idx3-ubyte",
            path.display()
        )
    );
}

#[test]
fn label_above_nine() {
    let dir = small_set("label", &[(TRAIN_LABELS, idx(&[3], &[0, 10, 5]))]);
    let (msg, path) = format_error(&dir);
    assert_eq!(path, dir.0.join(TRAIN_LABELS));
    assert!(msg.ends_with("train-labels-idx1-ubyte: label 10 at index 1 is not a class 0-9"));
}

#[test]
fn images_not_28_by_28() {
    let dir = small_set("size", &[(TRAIN_IMAGES, idx(&[3, 32, 32], &[0; 3 * 1024]))]);
    let (msg, path) = format_error(&dir);
    assert_eq!(path, dir.0.join(TRAIN_IMAGES));
    assert!(msg.ends_with("train-images-idx3-ubyte: images are [3, 32, 32], expected [n, 28, 28]"));
    let flat = small_set("flat", &[(TEST_IMAGES, idx(&[2, 784], &[0; 2 * 784]))]);
    let (msg, _) = format_error(&flat);
    assert!(msg.ends_with("t10k-images-idx3-ubyte: images are [2, 784], expected [n, 28, 28]"));
    let two_d = small_set("labels2d", &[(TEST_LABELS, idx(&[2, 1], &[1, 2]))]);
    let (msg, _) = format_error(&two_d);
    assert!(msg.ends_with("t10k-labels-idx1-ubyte: labels are [2, 1], expected [n]"));
}

#[test]
fn truncated_wrong_magic_and_type_name_the_file() {
    let labels = idx(&[3], &[0, 9, 5]);
    let cases: [(&str, Vec<u8>, &str); 5] = [
        (
            TRAIN_LABELS,
            labels[..10].to_vec(),
            "train-labels-idx1-ubyte: truncated data: dimensions [3] need 3 bytes after the \
             header, found 2",
        ),
        (
            TRAIN_LABELS,
            labels[..6].to_vec(),
            "train-labels-idx1-ubyte: truncated header: 1 dimensions need 4 bytes after the \
             magic number, found 2",
        ),
        (
            TEST_IMAGES,
            [&images(2)[..], &[7]].concat(),
            "t10k-images-idx3-ubyte: count mismatch: dimensions [2, 28, 28] need 1568 bytes \
             after the header, found 1569",
        ),
        (
            TRAIN_IMAGES,
            [&[0, 0, 0x0c, 3][..], &images(3)[4..]].concat(),
            "train-images-idx3-ubyte: unsupported type code 0x0c (i32) in magic number \
             0x00000c03: only 0x08 (unsigned byte) is supported",
        ),
        (
            TEST_LABELS,
            b"P5\n28 28\n255\n".to_vec(),
            "t10k-labels-idx1-ubyte: wrong magic number 0x50350a32 (not an IDX file): ",
        ),
    ];
    for (i, (name, bytes, want)) in cases.into_iter().enumerate() {
        let dir = small_set(&format!("bad{i}"), &[(name, bytes)]);
        let (msg, path) = format_error(&dir);
        assert_eq!(path, dir.0.join(name));
        assert!(msg.contains(want), "{msg}\ndoes not contain\n{want}");
    }
}

#[test]
fn gzipped_errors_name_the_gz_file_and_missing_files_are_io_errors() {
    let dir = small_set("gz", &[]);
    std::fs::remove_file(dir.0.join(TEST_LABELS)).unwrap();
    dir.write(&format!("{TEST_LABELS}.gz"), &gzip(&idx(&[3], &[1, 2, 3])));
    let (msg, path) = format_error(&dir);
    assert_eq!(path, dir.0.join("t10k-labels-idx1-ubyte.gz"));
    assert!(
        msg.ends_with("t10k-labels-idx1-ubyte.gz: 3 labels but 2 images in t10k-images-idx3-ubyte")
    );

    std::fs::remove_file(dir.0.join(format!("{TEST_LABELS}.gz"))).unwrap();
    match Mnist::load(&dir.0) {
        Err(e @ Error::Io { .. }) => assert!(
            e.to_string().ends_with(
                "t10k-labels-idx1-ubyte: no such file, nor `t10k-labels-idx1-ubyte.gz` beside it"
            ),
            "{e}"
        ),
        other => panic!("expected an I/O error, got {other:?}"),
    }
}

/// Whatever `parse_idx` returns for `bytes`, an `Ok` is self-consistent; a panic fails the test.
fn parse_any(bytes: &[u8]) -> bool {
    match parse_idx(bytes, "fuzz") {
        Ok(a) => {
            let n: usize = a.dims().iter().product();
            assert_eq!(n, a.data().len());
            true
        }
        Err(e) => {
            assert!(matches!(e, Error::Format { .. }), "{e:?}");
            assert!(e.to_string().starts_with("fuzz: "));
            false
        }
    }
}

#[test]
fn every_truncated_prefix_is_an_error() {
    // labels: every prefix, raw and gzipped
    let gz = gz_file(TEST_LABELS);
    for bytes in [raw_file(TEST_LABELS), &gz[..]] {
        assert!(parse_any(bytes));
        for len in 0..bytes.len() {
            assert!(!parse_any(&bytes[..len]), "prefix of {len} bytes parsed");
        }
    }
    // images: every prefix through the header and the first rows, then a sample to the end
    let raw = raw_file(TEST_IMAGES);
    let lens = (0..2000)
        .chain((2000..raw.len()).step_by(raw.len() / 16))
        .chain(raw.len() - 3..raw.len());
    for len in lens {
        assert!(!parse_any(&raw[..len]), "prefix of {len} bytes parsed");
    }
    let gz = gz_file(TEST_IMAGES);
    // the last: all the deflate data but one byte of the trailer (its CRC and length)
    for len in (0..200).chain([gz.len() - 1]) {
        assert!(!parse_any(&gz[..len]), "gz prefix of {len} bytes parsed");
    }
}

#[test]
fn random_and_mutated_bytes_never_panic() {
    let mut rng = StdRng::seed_from_u64(2024);
    let mut buf = Vec::new();
    for round in 0..3000 {
        buf.clear();
        match round % 4 {
            1 => buf.extend_from_slice(&[0x1f, 0x8b]),
            2 => buf.extend_from_slice(&[0, 0, 8, rng.random_range(0..5)]),
            3 => {
                // a valid-looking header with small dimensions, random data after it
                let ndim = rng.random_range(1..4);
                buf.extend_from_slice(&[0, 0, 8, ndim]);
                for _ in 0..ndim {
                    buf.extend_from_slice(&rng.random_range(0u32..6).to_be_bytes());
                }
            }
            _ => {}
        }
        let extra = rng.random_range(0..80);
        buf.extend((0..extra).map(|_| rng.random::<u8>()));
        parse_any(&buf);
    }
    // one byte of a real file replaced, raw and gzipped
    let raw = raw_file(TEST_LABELS);
    let gz = gz_file(TEST_LABELS);
    for (file, header_only) in [(raw, true), (&gz[..], false)] {
        let mut m = file.to_vec();
        for _ in 0..400 {
            let span = if header_only { 8 } else { m.len() };
            let i = rng.random_range(0..span);
            let old = m[i];
            m[i] = rng.random();
            parse_any(&m);
            m[i] = old;
        }
    }
}

#[test]
fn batches_over_the_training_set() {
    let m = mnist();
    let n = m.train_images.len();
    let mut batches = Batches::new(n, 64).unwrap();
    assert_eq!(batches.len(), 125); // 8000 / 64 = 125 exactly
    let mut rng = StdRng::seed_from_u64(7);
    let mut x = vec![[0.0f32; IMAGE_SIZE]; 64];
    let mut y = vec![0usize; 64];
    let mut epochs = Vec::new();
    for _ in 0..2 {
        let mut seen = vec![0u8; n];
        let mut order = Vec::with_capacity(n);
        for idx in batches.epoch(&mut rng) {
            let b = idx.len();
            gather(&m.train_images, idx, &mut x[..b]).unwrap();
            gather(&m.train_labels, idx, &mut y[..b]).unwrap();
            for (k, &i) in idx.iter().enumerate() {
                seen[i] += 1;
                assert_eq!(x[k], m.train_images[i]);
                assert_eq!(y[k], usize::from(m.train_labels[i]));
            }
            order.extend_from_slice(idx);
        }
        assert!(seen.iter().all(|&c| c == 1), "an index missed or repeated");
        epochs.push(order);
    }
    assert_ne!(epochs[0], epochs[1]);
    assert_ne!(epochs[0], (0..n).collect::<Vec<_>>());
    // the same seed replays both epochs
    let mut rng = StdRng::seed_from_u64(7);
    let mut replay = Batches::new(n, 64).unwrap();
    for e in &epochs {
        assert_eq!(
            &replay
                .epoch(&mut rng)
                .flatten()
                .copied()
                .collect::<Vec<_>>(),
            e
        );
    }
    // the test set in order with a partial last batch: 2000 = 31 * 64 + 16
    let mut eval = Batches::new(m.test_images.len(), 64).unwrap();
    let sizes: Vec<usize> = eval.in_order().map(<[usize]>::len).collect();
    assert_eq!((sizes.len(), sizes[30], sizes[31]), (32, 64, 16));
    let mut eval = eval.drop_last(true);
    assert_eq!(eval.in_order().flatten().count(), 1984);
}
