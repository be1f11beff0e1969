#!/usr/bin/env bash
# Runs benches/blas.rs per BLAS provider, single-threaded, RUNS times (default 1), and prints
# a Markdown table of GFLOP/s: criterion's median Gelem/s (each benchmark's throughput is its
# flop count), the best of the runs, since on a shared machine contention only slows a run.
# Raw criterion output goes to target/bench-blas/<provider>-<run>.txt.
# Usage: [RUNS=n] scripts/bench-blas.sh [gemm] [openblas] [mkl]   (default: all three)
# OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE are left as the machine sets them.
set -euo pipefail
cd "$(dirname "$0")/.."

providers=("$@")
[ ${#providers[@]} -gt 0 ] || providers=(gemm openblas mkl)
out=target/bench-blas
rm -rf "$out" && mkdir -p "$out"
args=(-- --warm-up-time 1 --measurement-time 3)

for run in $(seq "${RUNS:-1}"); do
    for p in "${providers[@]}"; do
        log="$out/$p-$run.txt"
        case "$p" in
            gemm) cargo bench --bench blas "${args[@]}" >"$log" 2>&1 ;;
            openblas)
                scripts/install-openblas.sh
                OPENBLAS_NUM_THREADS=1 cargo bench --bench blas --features openblas "${args[@]}" >"$log" 2>&1
                ;;
            mkl)
                export MKLROOT="${MKLROOT:-$PWD/target/mkl}"
                scripts/install-mkl.sh
                cargo bench --bench blas --features mkl "${args[@]}" >"$log" 2>&1
                ;;
            *) echo "bench-blas: unknown provider $p" >&2; exit 2 ;;
        esac
    done
done

python3 - "$out" "${providers[@]}" <<'PY'
import glob, re, sys
out, providers = sys.argv[1], sys.argv[2:]
scale = {"Kelem/s": 1e-6, "Melem/s": 1e-3, "Gelem/s": 1.0, "Telem/s": 1e3}
rows = {}
for p, path in ((p, f) for p in providers for f in sorted(glob.glob(f"{out}/{p}-*.txt"))):
    name = None
    for line in open(path):
        m = re.match(r"^(\S+/\S+)", line)
        if m and not line.startswith(("Benchmarking", "Found", "Gnuplot")):
            name = m.group(1)
        m = re.search(r"thrpt:\s+\[\S+ \S+ (\S+) (\S+)", line)
        if m and name:
            group, *rest = name.split("/")
            key = group + " " + rest[-1]  # e.g. "sgemm 256", "peak avx512_fma_f32"
            gflops = float(m.group(1)) * scale[m.group(2)]
            cell = rows.setdefault(key, {})
            cell[p] = max(cell.get(p, 0.0), gflops)
            name = None
print("| benchmark | " + " | ".join(providers) + " |")
print("| --- |" + " ---: |" * len(providers))
for key, v in rows.items():
    print(f"| {key} | " + " | ".join(f"{v[p]:.1f}" if p in v else "" for p in providers) + " |")
PY
