#!/usr/bin/env bash
# Installs Intel MKL (static libraries and C headers) for the `mkl` cargo feature, from the
# Python registry's wheels `mkl-static` and `mkl-include`, into $MKLROOT, by default
# target/mkl of this repository (kept out of git, so a clean clone starts without it).
# The `intel-mkl-src` crate links MKL from $MKLROOT, so builds need it set to that folder.
#
# `pip install --prefix` lays the wheels out as lib/libmkl_*.a and include/*.h (with no
# lib/intel64/ as in a classic MKL folder); `--target` would drop the lib/ files.
# Idempotent: prints nothing and does nothing when the libraries are already there.
set -euo pipefail

version="${MKL_VERSION:-2026.2.0}"
root="${MKLROOT:-$(cd "$(dirname "$0")/.." && pwd)/target/mkl}"

have() {
    local f
    for f in lib/libmkl_intel_lp64.a lib/libmkl_sequential.a lib/libmkl_core.a \
        include/mkl.h include/mkl_cblas.h; do
        [ -f "$root/$f" ] || return 1
    done
}
if have; then
    exit 0
fi

echo "install-mkl: installing mkl-static and mkl-include $version into $root"
mkdir -p "$root"
python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore \
    --no-warn-script-location --no-deps --ignore-installed --prefix "$root" \
    "mkl-static==$version" "mkl-include==$version"
have || { echo "install-mkl: the wheels did not provide lib/libmkl_*.a under $root" >&2; exit 1; }
echo "install-mkl: done ($(du -sh "$root" | cut -f1)); build with MKLROOT=$root"
