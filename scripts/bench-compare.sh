#!/usr/bin/env bash
# nanograd against PyTorch, ONNX Runtime and candle on the workloads of the "Speed" issue,
# float32, one thread, back to back on the same machine: our criterion benches
# (benches/models.rs, and benches/blas.rs for sgemm 64/256/1024 and the FMA peak), then the
# reference script benches/reference/bench_reference.py, then the same workloads in candle
# (benches/candle, a crate of its own, run with RAYON_NUM_THREADS=1), RUNS rounds (default 1)
# alternating the three; prints a Markdown table of medians (each cell the best of the rounds:
# on a shared machine contention only ever slows a run down), ratios (reference or candle /
# nanograd, > 1 means nanograd is faster), GFLOP/s and the issue's targets
# (benches/reference/compare_table.py). The script stops if candle fails to build or run.
# The workloads include cnn_bn_train/64, the training step of examples/mnist_cnn.rs's network
# (batch norm in training mode, max pooling) at batch 64, beside PyTorch eager; candle has no
# such row yet, so its cell stays empty (ONLY=cnn_bn runs that row alone).
# With KERNELS=1 it then runs benches/kernels.rs and prints where each workload's time goes
# (benches/reference/kernel_table.py).
# Raw outputs go to target/bench-compare/ (criterion's logs, medians and reference JSONs,
# the tables); the last reference JSON is also copied to target/bench-reference.json. candle
# builds in benches/candle/target, where criterion also writes its results.
# With ONLY=REGEX (e.g. ONLY=gpt) only the workloads whose ids match REGEX run, on every side
# (criterion's filter for benches/models.rs and benches/candle, --only for the reference
# script), and of benches/blas.rs only the FMA peak, which tells how busy the machine was.
# Usage: [RUNS=n] [WARM_UP=1] [MEASUREMENT_TIME=3] [KERNELS=1] [ONLY=REGEX] scripts/bench-compare.sh
# Needs: pip install -r benches/reference/requirements.txt
# OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE are left as the machine sets them.
set -euo pipefail
cd "$(dirname "$0")/.."

warm=${WARM_UP:-1}
measure=${MEASUREMENT_TIME:-3}
out=target/bench-compare
mkdir -p "$out"
stamp=$(date -u +%Y%m%dT%H%M%SZ)
args=(--warm-up-time "$warm" --measurement-time "$measure")
only=${ONLY:-}
if [ -n "$only" ]; then
    filter=("$only") ref_filter=(--only "$only") blas_filter='^peak/avx512_fma_f32$'
else
    filter=() ref_filter=() blas_filter='^(sgemm/gemm/(64|256|1024)|peak/avx512_fma_f32)$'
fi
python3 -c "import torch, onnx, onnxruntime" 2>/dev/null || {
    echo "bench-compare: pip install -r benches/reference/requirements.txt first" >&2
    exit 2
}
cargo bench --bench models --bench blas --no-run >"$out/build-$stamp.txt" 2>&1
# candle's own target directory, absolute: criterion (run from benches/candle) reads it too.
candle_target=$PWD/benches/candle/target
candle=(env CARGO_TARGET_DIR="$candle_target" cargo bench --manifest-path benches/candle/Cargo.toml)
"${candle[@]}" --no-run >"$out/build-candle-$stamp.txt" 2>&1 || {
    echo "bench-compare: benches/candle failed to build, see $out/build-candle-$stamp.txt" >&2
    exit 1
}

ours=() refs=() candles=()
for run in $(seq "${RUNS:-1}"); do
    tag=$stamp-$run
    since=$(date +%s)
    echo "bench-compare: round $run: cargo bench --bench models" >&2
    cargo bench --bench models -- "${filter[@]}" "${args[@]}" >"$out/models-$tag.txt" 2>&1
    echo "bench-compare: round $run: cargo bench --bench blas ($blas_filter)" >&2
    cargo bench --bench blas -- "$blas_filter" "${args[@]}" >"$out/blas-$tag.txt" 2>&1
    python3 benches/reference/compare_table.py collect --criterion target/criterion \
        --since "$since" --out "$out/nanograd-$tag.json"
    echo "bench-compare: round $run: benches/reference/bench_reference.py" >&2
    python3 benches/reference/bench_reference.py --warm-up "$warm" --measurement-time "$measure" \
        "${ref_filter[@]}" --out "$out/reference-$tag.json" 2>"$out/reference-$tag.txt"
    echo "bench-compare: round $run: benches/candle (cargo bench, RAYON_NUM_THREADS=1)" >&2
    since=$(date +%s)
    RAYON_NUM_THREADS=1 "${candle[@]}" -- "${filter[@]}" "${args[@]}" >"$out/candle-$tag.txt" 2>&1 || {
        echo "bench-compare: benches/candle failed, see $out/candle-$tag.txt" >&2
        exit 1
    }
    python3 benches/reference/compare_table.py collect --criterion "$candle_target/criterion" \
        --since "$since" --out "$out/candle-$tag.json"
    ours+=("$out/nanograd-$tag.json")
    refs+=("$out/reference-$tag.json")
    candles+=("$out/candle-$tag.json")
done
cp "${refs[-1]}" target/bench-reference.json

python3 benches/reference/compare_table.py table --ours "${ours[@]}" --reference "${refs[@]}" \
    --candle "${candles[@]}" |
    tee "$out/table-$stamp.md"

if [ "${KERNELS:-0}" = 1 ]; then
    echo "bench-compare: cargo bench --bench kernels" >&2
    since=$(date +%s)
    cargo bench --bench kernels -- "${args[@]}" >"$out/kernels-$stamp.txt" 2>&1
    echo
    python3 benches/reference/kernel_table.py --criterion target/criterion --since "$since" \
        --ours "${ours[@]}" |
        tee "$out/kernels-$stamp.md"
fi
