#!/usr/bin/env bash
# Installs the system OpenBLAS (Debian's libopenblas-dev) for the `openblas` cargo feature.
# Idempotent: prints nothing and does nothing when the package is already installed.
set -euo pipefail

pkg=libopenblas-dev
if dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
    exit 0
fi

sudo=""
if [ "$(id -u)" -ne 0 ]; then
    sudo="sudo"
fi
echo "install-openblas: installing $pkg"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "$pkg" pkg-config >/dev/null
echo "install-openblas: $(dpkg-query -W -f='${Package} ${Version}' "$pkg")"
