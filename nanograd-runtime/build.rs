//! Links the C BLAS library of the provider chosen by cargo feature (`mkl` wins over
//! `openblas`); the default provider, the pure-Rust `gemm` crate, links nothing.
//!
//! - `openblas`: the system OpenBLAS (Debian: `libopenblas-dev`, installed by
//!   `scripts/install-openblas.sh`), found through pkg-config, else plain `-lopenblas`.
//! - `mkl`: Intel MKL, static, LP64 (32-bit ints, as `cblas-sys` declares them), sequential:
//!   `mkl_intel_lp64 + mkl_sequential + mkl_core`, plus pthread, m and dl. The MKL folder is
//!   `$MKLROOT`, else `target/mkl` (where `scripts/install-mkl.sh` puts the PyPI wheels
//!   `mkl-static` and `mkl-include`). Its libraries are in `lib/` (wheel and oneAPI layout)
//!   or `lib/intel64/` (classic layout).
//!
//! Why this script and not the `intel-mkl-src` crate (measured, see BENCHMARKS.md): that
//! crate defaults to ILP64 (64-bit ints, wrong for `cblas-sys`), silently tries a download
//! when MKL is missing and then fails as a link error, copies MKL into a ~640 MB rlib, and
//! pulls in a few dozen crates of download tooling. Here a missing MKL is a build error that
//! says what to run, and nothing is copied.
//!
//! The three MKL archives depend on each other in a cycle, so GNU ld must read them inside
//! `--start-group/--end-group`. Link arguments given by a build script reach only this
//! package's own binaries, not those of the crates that depend on it, so instead this script
//! writes `libnanograd_mkl.a` into `OUT_DIR` as a linker script, `GROUP ( ... )`, and links it
//! as a static library (`-bundle`, so the rlib copies nothing): GNU ld and lld both read a
//! library that is not an archive as a linker script, as they do glibc's `libc.so`.

use std::env;
use std::path::{Path, PathBuf};

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    if env::var_os("CARGO_FEATURE_MKL").is_some() {
        link_mkl();
    } else if env::var_os("CARGO_FEATURE_OPENBLAS").is_some() {
        link_openblas();
    }
}

fn link_openblas() {
    #[cfg(feature = "openblas")]
    if pkg_config::Config::new()
        .cargo_metadata(true)
        .probe("openblas")
        .is_ok()
    {
        return;
    }
    println!("cargo:rustc-link-lib=dylib=openblas");
}

/// The MKL archives of the LP64, sequential configuration, in link order.
const MKL_LIBS: [&str; 3] = ["mkl_intel_lp64", "mkl_sequential", "mkl_core"];

fn link_mkl() {
    println!("cargo:rerun-if-env-changed=MKLROOT");
    let manifest = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    let root = match env::var_os("MKLROOT") {
        Some(root) => PathBuf::from(root),
        None => manifest.join("../target/mkl"),
    };
    let lib_dir = [root.join("lib/intel64"), root.join("lib")]
        .into_iter()
        .find(|dir| dir.join("libmkl_core.a").is_file())
        .and_then(|dir| dir.canonicalize().ok())
        .unwrap_or_else(|| {
            panic!(
                "feature `mkl`: no libmkl_core.a under {}/lib or {}/lib/intel64; \
                 run scripts/install-mkl.sh, or set MKLROOT to an MKL folder",
                root.display(),
                root.display()
            )
        });
    let archives: Vec<PathBuf> = MKL_LIBS
        .iter()
        .map(|name| lib_dir.join(format!("lib{name}.a")))
        .collect();
    for archive in &archives {
        assert!(
            archive.is_file(),
            "feature `mkl`: {} is missing",
            archive.display()
        );
        println!("cargo:rerun-if-changed={}", archive.display());
    }

    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("OUT_DIR"));
    write_group(&out_dir.join("libnanograd_mkl.a"), &archives);
    println!("cargo:rustc-link-search=native={}", out_dir.display());
    println!("cargo:rustc-link-lib=static:-bundle=nanograd_mkl");
    for lib in ["pthread", "m", "dl"] {
        println!("cargo:rustc-link-lib=dylib={lib}");
    }
}

/// Writes at `path` a linker script that links `archives` as one group.
fn write_group(path: &Path, archives: &[PathBuf]) {
    let quoted: Vec<String> = archives
        .iter()
        .map(|a| format!("\"{}\"", a.display()))
        .collect();
    let script = format!(
        "/* written by nanograd-runtime's build.rs: MKL LP64 sequential */\nGROUP ( {} )\n",
        quoted.join(" ")
    );
    std::fs::write(path, script)
        .unwrap_or_else(|e| panic!("feature `mkl`: cannot write {}: {e}", path.display()));
}
