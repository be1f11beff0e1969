//! The inference logic of the `infer` example (`examples/shared/classify.rs`, the same file
//! the example compiles) with the committed weights: the committed sample images get their
//! true labels, the test set gets the accuracy `mnist_mlp` reported, classifying allocates
//! nothing, and bad input is an error that says what is wrong.

#[path = "../examples/shared/classify.rs"]
mod classify;
#[path = "support/counting_alloc.rs"]
mod counting_alloc;
#[path = "../examples/shared/mlp.rs"]
mod mlp;

use std::path::{Path, PathBuf};

use classify::{read_images, Classifier, Prediction, Session, EMBEDDED_WEIGHTS};
use counting_alloc::allocations;
use nanograd::data::read_idx;
use nanograd::prelude::QuantizedSafetensors;

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// The committed sample images with the test-set index and label in their names
/// (`t10k-0011-digit-7.pgm`).
fn samples() -> Vec<(PathBuf, usize, usize)> {
    let mut samples: Vec<_> = std::fs::read_dir(repo("examples/images"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "pgm"))
        .map(|p| {
            let name = p.file_stem().unwrap().to_str().unwrap().to_string();
            let parts: Vec<&str> = name.split('-').collect();
            let (index, label) = (parts[1].parse().unwrap(), parts[3].parse().unwrap());
            (p, index, label)
        })
        .collect();
    samples.sort();
    samples
}

#[test]
fn sample_images_get_their_labels() {
    let samples = samples();
    assert!(samples.len() >= 2, "sample images: {samples:?}");
    let mut classifier = Classifier::new(EMBEDDED_WEIGHTS).unwrap();
    for (path, _, label) in &samples {
        let images = read_images(path).unwrap();
        assert_eq!(images.len(), 1, "{}", path.display());
        let p = classifier.classify(&images[0]).unwrap();
        assert_eq!(p.label, *label, "{}: {p:?}", path.display());
        assert!(
            p.probability > 0.5 && p.probability <= 1.0,
            "{}: {p:?}",
            path.display()
        );
    }
}

#[test]
fn a_sample_pgm_holds_the_pixels_of_its_test_image() {
    let test_images = read_images(&repo("data/mnist-10k/t10k-images-idx3-ubyte.gz")).unwrap();
    for (path, index, _) in samples() {
        assert_eq!(read_images(&path).unwrap()[0], test_images[index]);
    }
}

#[test]
fn the_test_set_is_classified_as_well_as_training_reported() {
    let images = read_images(&repo("data/mnist-10k/t10k-images-idx3-ubyte.gz")).unwrap();
    let labels = read_idx(repo("data/mnist-10k/t10k-labels-idx1-ubyte.gz")).unwrap();
    assert_eq!(images.len(), 2000);
    let mut classifier = Classifier::new(EMBEDDED_WEIGHTS).unwrap();
    let correct = images
        .iter()
        .zip(labels.data())
        .filter(|(x, &t)| classifier.classify(x).unwrap().label == usize::from(t))
        .count();
    // mnist_mlp printed 95.70 % (1,914) for the weights committed; a CPU with other SIMD
    // widths may round a borderline image the other way
    assert!(correct >= 1900, "{correct} of 2000 correct");
}

#[test]
fn threads_sharing_the_model_classify_as_one_classifier() {
    // infer --threads N: sessions on other threads over one classifier's model
    let images = read_images(&repo("data/mnist-10k/t10k-images-idx3-ubyte.gz")).unwrap();
    let images = &images[..200];
    let mut one = Classifier::new(EMBEDDED_WEIGHTS).unwrap();
    let want: Vec<Prediction> = images.iter().map(|x| one.classify(x).unwrap()).collect();
    let model = one.model();
    let got: Vec<Prediction> = std::thread::scope(|s| {
        let handles: Vec<_> = images
            .chunks(70)
            .map(|chunk| {
                s.spawn(move || {
                    let mut session = Session::new(model).unwrap();
                    chunk
                        .iter()
                        .map(|x| session.classify(x).unwrap())
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    assert_eq!(got, want);
}

#[test]
fn weights_from_a_file_classify_as_the_embedded_ones() {
    let path = std::env::temp_dir().join(format!("examples_smoke_{}.st", std::process::id()));
    std::fs::write(&path, EMBEDDED_WEIGHTS).unwrap();
    let mut from_file = Classifier::from_file(&path).unwrap();
    std::fs::remove_file(&path).unwrap();
    let mut embedded = Classifier::new(EMBEDDED_WEIGHTS).unwrap();
    for (path, _, _) in samples() {
        let x = read_images(&path).unwrap();
        assert_eq!(
            from_file.classify(&x[0]).unwrap(),
            embedded.classify(&x[0]).unwrap()
        );
    }
    let err = Classifier::from_file(&repo("examples/images/t10k-0002-digit-0.pgm"));
    assert!(err.is_err());
}

// ---------------------------------------------------------------------------------------
// no allocation per image

#[test]
fn classifying_allocates_nothing_after_start_up() {
    let images = read_images(&repo("data/mnist-10k/t10k-images-idx3-ubyte.gz")).unwrap();
    let before = allocations();
    let mut classifier = Classifier::new(EMBEDDED_WEIGHTS).unwrap();
    let after_start_up = allocations();
    assert!(
        after_start_up > before,
        "start-up allocates (the counter counts)"
    );
    let mut predictions = [Prediction {
        label: 0,
        probability: 0.0,
    }; 100];
    for (p, x) in predictions.iter_mut().zip(&images) {
        *p = classifier.classify(x).unwrap();
    }
    let n = allocations() - after_start_up;
    assert_eq!(n, 0, "100 images allocated {n} times");
    assert!(predictions.iter().any(|p| p.label != predictions[0].label));
}

// ---------------------------------------------------------------------------------------
// bad input

/// The error message of reading `bytes` as an image file.
fn read_error(name: &str, bytes: &[u8]) -> String {
    let path = std::env::temp_dir().join(format!("examples_smoke_{}_{name}", std::process::id()));
    std::fs::write(&path, bytes).unwrap();
    let err = read_images(&path).unwrap_err().to_string();
    std::fs::remove_file(&path).unwrap();
    let prefix = format!("{}: ", path.display());
    err.strip_prefix(&prefix)
        .unwrap_or_else(|| panic!("`{err}` does not start with the path"))
        .to_string()
}

fn pgm(header: &str, pixels: usize) -> Vec<u8> {
    let mut bytes = header.as_bytes().to_vec();
    bytes.resize(bytes.len() + pixels, 7);
    bytes
}

#[test]
fn bad_input_is_an_error_naming_the_problem() {
    let missing = repo("examples/images/no-such-file.pgm");
    let err = read_images(&missing).unwrap_err().to_string();
    assert!(
        err.starts_with(&format!("{}: ", missing.display())) && err.contains("No such file"),
        "{err}"
    );
    assert_eq!(
        read_error("big.pgm", &pgm("P5 32 32 255\n", 1024)),
        "PGM image is 32x32, expected 28x28"
    );
    assert_eq!(
        read_error("short.pgm", &pgm("P5\n28 28\n255\n", 700)),
        "PGM pixels: expected 784 bytes after the header, found 700"
    );
    assert_eq!(
        read_error("deep.pgm", &pgm("P5\n28 28\n65535\n", 1568)),
        "PGM maxval is 65535, expected 1 to 255 (one byte per pixel)"
    );
    assert_eq!(
        read_error("header.pgm", b"P5\n28 x\n"),
        "PGM header: expected the height at byte 6"
    );
    assert_eq!(
        read_error("bright.pgm", &pgm("P5\n28 28\n5\n", 784)),
        "PGM pixel 0 is 7, above the maxval 5"
    );
    assert_eq!(
        read_error("plain.pgm", b"P2\n28 28\n255\n0 0 0"),
        "Netpbm format P2 is not supported, expected a binary greymap (P5) or an IDX file"
    );
    // a valid PGM with a comment, maxval 14: pixels 7 / 14
    let path = std::env::temp_dir().join(format!("examples_smoke_{}_ok.pgm", std::process::id()));
    std::fs::write(&path, pgm("P5\n# a comment\n28 28\n14\n", 784)).unwrap();
    let image = read_images(&path).unwrap();
    std::fs::remove_file(&path).unwrap();
    assert_eq!(image, vec![[0.5f32; 784]]);

    // IDX: labels instead of images, a truncated gzip stream, not IDX at all
    let labels = std::fs::read(repo("data/mnist-10k/t10k-labels-idx1-ubyte.gz")).unwrap();
    assert_eq!(
        read_error("labels.gz", &labels),
        "IDX array is [2000], expected images [n, 28, 28]"
    );
    let images = std::fs::read(repo("data/mnist-10k/t10k-images-idx3-ubyte.gz")).unwrap();
    assert!(read_error("truncated.gz", &images[..5000]).starts_with("corrupt gzip data"));
    assert!(read_error("junk.bin", b"hello world").starts_with("wrong magic number 0x68656c6c"));
}

#[test]
fn int8_classifier_agrees_with_float_and_round_trips_its_file() {
    // infer --int8, --save-int8 FILE and --int8-weights FILE
    let images = read_images(&repo("data/mnist-10k/t10k-images-idx3-ubyte.gz")).unwrap();
    let labels = read_idx(repo("data/mnist-10k/t10k-labels-idx1-ubyte.gz")).unwrap();
    let mut float = Classifier::new(EMBEDDED_WEIGHTS).unwrap();
    let mut int8 = Classifier::new(EMBEDDED_WEIGHTS)
        .unwrap()
        .quantized()
        .unwrap();
    let classify::Model::Int8(q) = int8.model() else {
        panic!("quantized() gives an int8 model");
    };
    let path = std::env::temp_dir().join(format!("infer-int8-{}.safetensors", std::process::id()));
    q.save_safetensors(&path).unwrap();
    let mut loaded = Classifier::from_int8_file(&path).unwrap();
    std::fs::remove_file(&path).unwrap();
    let (mut correct_f, mut correct_q) = (0, 0);
    for (x, &t) in images.iter().zip(labels.data()) {
        let (pf, pq) = (float.classify(x).unwrap(), int8.classify(x).unwrap());
        assert_eq!(loaded.classify(x).unwrap(), pq);
        correct_f += usize::from(pf.label == usize::from(t));
        correct_q += usize::from(pq.label == usize::from(t));
    }
    // within 0.3 points: 6 of the 2,000 digits
    assert!(
        correct_f.abs_diff(correct_q) <= 6,
        "float {correct_f}, int8 {correct_q}"
    );
}
