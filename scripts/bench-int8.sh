#!/usr/bin/env bash
# The int8 perceptron against float32 and against ONNX Runtime's dynamic quantization, one
# thread, back to back on the same machine: the criterion benches of benches/models.rs
# (mlp_forward, mlp_int8_forward, mlp_infer, mlp_int8_infer at batch 1 and 64), then
# benches/reference/bench_int8_reference.py (ORT float32 and quantize_dynamic QInt8 of the
# same trained perceptron, I/O binding), RUNS rounds (default 1) alternating the two; prints
# the Markdown table of BENCHMARKS.md ("int8 inference"), each cell the best of the rounds.
# Raw outputs go to target/bench-int8/.
# Usage: [RUNS=n] [WARM_UP=1] [MEASUREMENT_TIME=3] scripts/bench-int8.sh
# Needs: pip install -r benches/reference/requirements.txt
set -euo pipefail
cd "$(dirname "$0")/.."

warm=${WARM_UP:-1}
measure=${MEASUREMENT_TIME:-3}
out=target/bench-int8
mkdir -p "$out"
stamp=$(date -u +%Y%m%dT%H%M%SZ)
python3 -c "import torch, onnx, onnxruntime" 2>/dev/null || {
    echo "bench-int8: pip install -r benches/reference/requirements.txt first" >&2
    exit 2
}
cargo bench --bench models --no-run >"$out/build-$stamp.txt" 2>&1
ours=() refs=()
for run in $(seq "${RUNS:-1}"); do
    tag=$stamp-$run
    since=$(date +%s)
    echo "bench-int8: round $run: cargo bench --bench models (mlp inference)" >&2
    cargo bench --bench models -- '^mlp_(int8_)?(infer|forward)/' \
        --warm-up-time "$warm" --measurement-time "$measure" >"$out/models-$tag.txt" 2>&1
    python3 benches/reference/compare_table.py collect --criterion target/criterion \
        --since "$since" --out "$out/nanograd-$tag.json"
    echo "bench-int8: round $run: benches/reference/bench_int8_reference.py" >&2
    python3 benches/reference/bench_int8_reference.py --warm-up "$warm" \
        --measurement-time "$measure" --out "$out/reference-$tag.json" 2>"$out/reference-$tag.txt"
    ours+=("$out/nanograd-$tag.json")
    refs+=("$out/reference-$tag.json")
done
python3 benches/reference/int8_table.py --ours "${ours[@]}" --reference "${refs[@]}" |
    tee "$out/table-$stamp.md"
