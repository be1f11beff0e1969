//! Links the system OpenBLAS for the `openblas` feature, and for the `mkl` feature checks that
//! `intel-mkl-src` (which links MKL) found one; the default provider, the pure-Rust `gemm`
//! crate, links nothing. `mkl` wins over `openblas` if both are on.
//!
//! - `openblas`: the system OpenBLAS (Debian: `libopenblas-dev`, installed by
//!   `scripts/install-openblas.sh`), found through pkg-config, else plain `-lopenblas`.
//! - `mkl`: the `intel-mkl-src` crate links MKL, static, LP64, sequential, from pkg-config's
//!   `mkl-static-lp64-seq`, `$MKLROOT` or `/opt/intel`, else from its own download. When none
//!   works its build script still succeeds, silently, and the build would end in a link error
//!   naming `cblas_*`. Cargo runs this script after that one (the crate declares `links`), so
//!   here the same search (`intel-mkl-tool`, the crate `intel-mkl-src` uses) and a look into
//!   the download's folder turn that case into an error that says what to run.

use std::env;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    if env::var_os("CARGO_FEATURE_MKL").is_some() {
        #[cfg(feature = "mkl")]
        mkl::check();
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

#[cfg(feature = "mkl")]
mod mkl {
    use intel_mkl_tool::{Config, Library};
    use std::env;
    use std::path::{Path, PathBuf};
    use std::str::FromStr;

    /// The `intel-mkl-src` feature that `Cargo.toml` selects.
    const VARIANT: &str = "mkl-static-lp64-seq";
    /// The archives of that variant, as the download unpacks them.
    const ARCHIVES: [&str; 3] = [
        "libmkl_intel_lp64.a",
        "libmkl_sequential.a",
        "libmkl_core.a",
    ];

    pub fn check() {
        println!("cargo:rerun-if-env-changed=MKLROOT");
        println!("cargo:rerun-if-env-changed=XDG_DATA_HOME");
        let config = Config::from_str(VARIANT).expect("a variant intel-mkl-tool knows");
        if Library::new(config).is_ok() || downloaded() {
            return;
        }
        let manifest = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("manifest dir"));
        let local = manifest.join("../target/mkl");
        let local = local.canonicalize().unwrap_or(local);
        let hint = match env::var_os("MKLROOT") {
            Some(root) => format!(
                "MKLROOT is {}, which holds no {VARIANT} libraries and mkl.h; run \
                 `MKLROOT={} scripts/install-mkl.sh`, or point MKLROOT at an MKL folder",
                Path::new(&root).display(),
                Path::new(&root).display()
            ),
            None if local.join("lib/libmkl_core.a").is_file() => format!(
                "scripts/install-mkl.sh installed it in {0}, but MKLROOT is not set: \
                 export MKLROOT={0}",
                local.display()
            ),
            None => format!(
                "run scripts/install-mkl.sh (Intel's wheels from the Python registry) \
                 and export MKLROOT={}",
                local.display()
            ),
        };
        panic!(
            "\n\nfeature `mkl`: intel-mkl-src found no Intel MKL ({VARIANT}): not through \
             pkg-config, $MKLROOT or /opt/intel, and its download did not succeed.\n\
             {hint};\nthen run `cargo clean -p intel-mkl-src` (its build script does not \
             run again by itself) and build again.\n\n"
        );
    }

    /// Whether intel-mkl-src's download left the variant's archives in ocipkg's folder.
    fn downloaded() -> bool {
        let Ok(dir) = ocipkg::local::data_dir() else {
            return false;
        };
        walk(&dir, 8)
    }

    fn walk(dir: &Path, depth: u32) -> bool {
        if ARCHIVES.iter().all(|a| dir.join(a).is_file()) {
            return true;
        }
        depth > 0
            && std::fs::read_dir(dir).is_ok_and(|entries| {
                entries
                    .flatten()
                    .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                    .any(|e| walk(&e.path(), depth - 1))
            })
    }
}
