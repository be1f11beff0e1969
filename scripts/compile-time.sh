#!/usr/bin/env bash
# Compile time of `model!` definitions, from a warm dependency cache.
#
#   scripts/compile-time.sh                  ResNet-18 (examples/resnet18.rs), 3 runs each
#   scripts/compile-time.sh --scaling        generated models of 10, 20, 40 conv blocks
#   scripts/compile-time.sh --scaling 10 80  ... of the given sizes
#   scripts/compile-time.sh --all [N...]     both
#   --runs N                                 runs per measurement (default 3); medians printed
#
# Each measurement runs its command once untimed (to bring everything up to date), then
# N times timed, and reports the median. ResNet-18 measurements:
#   check, cold      the example's incremental cache deleted, then `cargo check --example
#                    resnet18`: expanding the macro and type-checking all the generated code
#   check, touched   `touch` then `cargo check`: expansion, with rustc's incremental cache
#   check, edited    a one-character edit (`CLASSES` 10 <-> 11: the classifier's size and the
#                    model's output type) then `cargo check`
#   build, edited    the same edit then `cargo build --example resnet18` (debug)
#   release, edited  the same edit then `cargo build --release --example resnet18`
# The example is restored byte for byte when the script exits, however it exits.
#
# Scaling: a crate generated under target/compile-time/scale/ (not committed, its own
# `[workspace]`, sharing this target directory so nothing else rebuilds) with one binary per
# size N: a stem conv + batch norm and N - 1 residual blocks `relu(bn(conv(h)) + h)`, global
# average pooling, a dense classifier and a loss (so the backward is generated too). Each is
# timed as "check, cold".
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
export CARGO_TARGET_DIR=$TARGET
WORK=$TARGET/compile-time
mkdir -p "$WORK"
LOG=$WORK/cargo.log
EXAMPLE=examples/resnet18.rs
BACKUP=$WORK/resnet18.rs.orig

RUNS=3
DO_RESNET=1
DO_SCALING=0
SIZES=()
while [ $# -gt 0 ]; do
    case "$1" in
        --runs) RUNS=$2; shift 2 ;;
        --scaling) DO_RESNET=0; DO_SCALING=1; shift
            while [ $# -gt 0 ] && [[ $1 =~ ^[0-9]+$ ]]; do SIZES+=("$1"); shift; done ;;
        --all) DO_RESNET=1; DO_SCALING=1; shift
            while [ $# -gt 0 ] && [[ $1 =~ ^[0-9]+$ ]]; do SIZES+=("$1"); shift; done ;;
        -h|--help) sed -n '2,25p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
    esac
done
[ ${#SIZES[@]} -gt 0 ] || SIZES=(10 20 40)
for n in "${SIZES[@]}"; do
    [ "$n" -ge 1 ] || { echo "a model needs at least 1 conv block, not $n" >&2; exit 2; }
done

# runs a cargo command quietly; on failure shows its output and stops
cargo_quiet() {
    if ! cargo "$@" >"$LOG" 2>&1; then
        cat "$LOG" >&2
        echo "failed: cargo $*" >&2
        exit 1
    fi
}

# seconds taken by `cargo_quiet "$@"`, printed with millisecond precision
time_cargo() {
    local t0 t1
    t0=$(date +%s%N)
    cargo_quiet "$@"
    t1=$(date +%s%N)
    awk -v ns=$((t1 - t0)) 'BEGIN { printf "%.2f", ns / 1e9 }'
}

median() {
    printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'
}

# one table row: name, command shown, function run before each timed run, cargo arguments...
measure() {
    local name=$1 shown=$2 prepare=$3
    shift 3
    local times=() i t
    cargo_quiet "$@" # brings the state up to date, untimed
    for ((i = 0; i < RUNS; i++)); do
        "$prepare"
        t=$(time_cargo "$@") || exit 1
        times+=("$t")
    done
    printf '| %s | `%s` | %s | **%s** |\n' "$name" "$shown" "${times[*]}" "$(median "${times[@]}")"
}

header() {
    echo "machine: $(lscpu | sed -n 's/^Model name: *//p'), nproc $(nproc)"
    echo "date: $(date -u '+%Y-%m-%d %H:%M UTC'); $(rustc -V)"
    echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo
    echo "| measurement | command | runs (s) | median (s) |"
    echo "| --- | --- | --- | --- |"
}

restore_example() {
    if [ -f "$BACKUP" ] && ! cmp -s "$BACKUP" "$EXAMPLE"; then
        cp "$BACKUP" "$EXAMPLE"
    fi
}

# the example's incremental caches (check and build, debug profile)
forget_example() {
    rm -rf "$TARGET"/debug/incremental/resnet18-*
    touch "$EXAMPLE"
}

touch_example() { touch "$EXAMPLE"; }

# `pub const CLASSES: usize = 10;` <-> `11`: one character
edit_example() {
    if grep -q 'pub const CLASSES: usize = 10;' "$EXAMPLE"; then
        sed -i 's/pub const CLASSES: usize = 10;/pub const CLASSES: usize = 11;/' "$EXAMPLE"
    else
        sed -i 's/pub const CLASSES: usize = 11;/pub const CLASSES: usize = 10;/' "$EXAMPLE"
    fi
}

resnet() {
    grep -q 'pub const CLASSES: usize = 10;' "$EXAMPLE" || {
        echo "$EXAMPLE: expected the line 'pub const CLASSES: usize = 10;'" >&2
        exit 1
    }
    cp "$EXAMPLE" "$BACKUP"
    trap restore_example EXIT
    echo "## ResNet-18 ($EXAMPLE: 20 conv + batch norm, 8 residual blocks), $RUNS runs each"
    echo
    header
    measure "check, cold" "cargo check --example resnet18" forget_example \
        check --example resnet18
    measure "check, touched" "cargo check --example resnet18" touch_example \
        check --example resnet18
    measure "check, one-char edit" "cargo check --example resnet18" edit_example \
        check --example resnet18
    measure "debug build, one-char edit" "cargo build --example resnet18" edit_example \
        build --example resnet18
    measure "release build, one-char edit" "cargo build --release --example resnet18" \
        edit_example build --release --example resnet18
    restore_example
    echo
}

# a model of `n` conv blocks, each conv followed by batch norm
generate_model() {
    local n=$1 i
    echo "//! Generated by scripts/compile-time.sh: $n conv blocks."
    echo "use nanograd::prelude::*;"
    echo "use nanograd::rand::{rngs::StdRng, SeedableRng};"
    echo
    echo "model! {"
    echo "    pub struct Convs$n {"
    echo "        conv0: Conv2d(3 -> 64, kernel = 3, padding = 1, bias = false),"
    echo "        bn0: BatchNorm2d(64),"
    for ((i = 1; i < n; i++)); do
        echo "        conv$i: Conv2d(64 -> 64, kernel = 3, padding = 1, bias = false),"
        echo "        bn$i: BatchNorm2d(64),"
    done
    echo "        fc: Dense(64 -> 10),"
    echo "    }"
    echo
    echo "    fn forward(x: [B, 3, 32, 32]) -> [B, 10] {"
    echo "        let h = relu(bn0(conv0(x)));"
    for ((i = 1; i < n; i++)); do
        echo "        let h = relu(bn$i(conv$i(h)) + h);"
    done
    echo "        fc(global_avg_pool2d(h))"
    echo "    }"
    echo
    echo "    fn loss(x: [B, 3, 32, 32], target: [B, 10]) -> [] {"
    echo "        softmax_cross_entropy(forward(x), target)"
    echo "    }"
    echo "}"
    echo
    echo "fn main() {"
    echo "    let mut model = Convs$n::<f32>::new(&mut StdRng::seed_from_u64(0));"
    echo "    let x = vec![[[[0.5f32; 32]; 32]; 3]; 2];"
    echo "    let t = vec![[0.1f32; 10]; 2];"
    echo "    println!(\"{}\", model.loss_backward(&x, &t).unwrap());"
    echo "}"
}

SCALE_DIR=$WORK/scale
SCALE_N=0
forget_scaled() {
    rm -rf "$TARGET"/debug/incremental/convs"$SCALE_N"-*
    touch "$SCALE_DIR/src/convs$SCALE_N.rs"
}

scaling() {
    mkdir -p "$SCALE_DIR/src"
    {
        echo "# Generated by scripts/compile-time.sh."
        echo "[package]"
        echo "name = \"nanograd-compile-time-scale\""
        echo "version = \"0.0.0\""
        echo "edition = \"2021\""
        echo "publish = false"
        echo
        echo "[workspace]"
        echo
        echo "[dependencies]"
        echo "nanograd = { path = \"$ROOT\" }"
        for n in "${SIZES[@]}"; do
            echo
            echo "[[bin]]"
            echo "name = \"convs$n\""
            echo "path = \"src/convs$n.rs\""
        done
    } >"$SCALE_DIR/Cargo.toml"
    # the workspace's lock file: the same dependency versions, so nothing new is resolved
    cp "$ROOT/Cargo.lock" "$SCALE_DIR/Cargo.lock"
    for n in "${SIZES[@]}"; do
        generate_model "$n" >"$SCALE_DIR/src/convs$n.rs.new"
        # rewrite only on change, so that an unchanged model is not rebuilt for nothing
        if cmp -s "$SCALE_DIR/src/convs$n.rs.new" "$SCALE_DIR/src/convs$n.rs"; then
            rm "$SCALE_DIR/src/convs$n.rs.new"
        else
            mv "$SCALE_DIR/src/convs$n.rs.new" "$SCALE_DIR/src/convs$n.rs"
        fi
    done
    local manifest=$SCALE_DIR/Cargo.toml
    echo "## Scaling: N conv blocks (conv + batch norm + relu + residual), $RUNS runs each"
    echo
    header
    for n in "${SIZES[@]}"; do
        SCALE_N=$n
        measure "check, cold, N = $n" "cargo check --bin convs$n" forget_scaled \
            check --manifest-path "$manifest" --bin "convs$n"
    done
    echo
}

[ "$DO_RESNET" = 1 ] && resnet
[ "$DO_SCALING" = 1 ] && scaling
exit 0
