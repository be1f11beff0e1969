#!/usr/bin/env python3
"""The Markdown table of scripts/bench-compare.sh: nanograd's criterion medians against the
reference medians of bench_reference.py, with the issue's targets.

`collect` reads every target/criterion/**/new/{benchmark,estimates}.json written after
--since (so a stale result of an earlier run is never used) and saves criterion's median
and throughput of each benchmark as JSON. `table` then takes one or more such files and one
or more reference JSONs (one per round of the script) and keeps, for every cell, the best
median over the rounds: on a shared machine contention only ever slows a run down. For
each workload it prints the target, nanograd's median, its GFLOP/s (criterion throughput,
which benches/models.rs and benches/blas.rs set to the useful flops of a call) and its
fraction of the single-thread f32 peak measured in the same rounds (benches/blas.rs
`peak/avx512_fma_f32`, best round: the guest's CPU has changed between sessions, so no
constant serves; PEAK_GFLOPS only when a run has no peak row), then each reference median
with the ratio reference / nanograd (> 1: nanograd is faster),
candle's median (benches/candle, criterion files of `collect` given with --candle, best over
the rounds too) with the ratio candle / nanograd, and whether the target is met. A row
whose workload has no benchmark of its own on the reference side (gpt/forward_into/1) shows
the reference's cells of the workload it computes (gpt/forward/1), candle's included.

Usage: compare_table.py collect --criterion target/criterion --since EPOCH_SECONDS --out F
       compare_table.py table --ours F [F ...] --reference R [R ...] [--candle C [C ...]]
"""

import argparse
import glob
import json
import os
import re

# A single-thread f32 peak, GFLOP/s, for runs without a `peak/avx512_fma_f32` row: that of
# the Zen 5 guest of the first sessions (BENCHMARKS.md, "BLAS providers").
PEAK_GFLOPS = 272.0

# Reference providers, in column order, with their headers.
PROVIDERS = [
    ("torch_eager", "PyTorch eager"),
    ("torch_eager_fused", "PyTorch eager, fused optimizer"),
    ("torch_jit", "PyTorch jit trace+freeze"),
    ("ort", "ONNX Runtime"),
    ("ort_iobinding", "ONNX Runtime, I/O binding"),
]

# Rows: our criterion id, the reference workload, the target's text.
ROWS = [
    ("mlp_infer/1", "mlp_infer/1", "≤ 3 µs, 2× faster than ONNX Runtime"),
    ("mlp_infer/64", "mlp_infer/64", "≥ 220 GFLOP/s useful"),
    # `forward`, the first call a user makes (issue 10): against ONNX Runtime and against
    # nanograd's own forward_into row of the same run
    ("mlp_forward/1", "mlp_infer/1", "≤ 1.15× forward_into, 2× faster than ONNX Runtime"),
    ("mlp_forward/64", "mlp_infer/64", "≤ 1.15× forward_into, as fast as ONNX Runtime"),
    ("mlp_train_adam/64", "mlp_train_adam/64", "≤ 170 µs, 3× faster than PyTorch fused Adam"),
    ("cnn_infer/1", "cnn_infer/1", "4× faster than PyTorch eager"),
    ("cnn_train_sgd/32", "cnn_train_sgd/32", "3× faster than PyTorch"),
    ("cnn_bn_train/64", "cnn_bn_train/64", "3× faster than PyTorch"),
    ("tiny_infer/1", "tiny_infer/1", "< 50 ns"),
    ("tiny_forward/1", "tiny_infer/1", "≤ 2× forward_into, 30× faster than ONNX Runtime"),
    ("sgemm/gemm/64", "sgemm/64", ""),
    ("sgemm/gemm/256", "sgemm/256", ""),
    ("sgemm/gemm/1024", "sgemm/1024", ""),
    ("gpt/train_step/12", "gpt/train_step/12", "2× faster than PyTorch eager (aim 3×)"),
    ("gpt/forward/1", "gpt/forward/1", "4× faster than PyTorch eager"),
    # the same forward pass through forward_into with a kept Workspace: PyTorch's cell is
    # its one forward pass again
    ("gpt/forward_into/1", "gpt/forward/1", "4× faster than PyTorch eager"),
]


# `forward` rows: (the forward_into row of the same inference, at most this many times its
# time, at least this many times faster than ONNX Runtime's faster binding)
FORWARD_TARGETS = {
    "mlp_forward/1": ("mlp_infer/1", 1.15, 2),
    "mlp_forward/64": ("mlp_infer/64", 1.15, 1),
    "tiny_forward/1": ("tiny_infer/1", 2, 30),
}


def fmt_time(ns):
    if ns < 1e3:
        return f"{ns:.1f} ns"
    if ns < 1e6:
        return f"{ns / 1e3:.2f} µs"
    return f"{ns / 1e6:.2f} ms"


def verdict(row, ns, gflops, ref, ours):
    """The target check of a row: (met, text), or None for rows without a target. `ours`:
    nanograd's cells of the run, for rows measured against another of them."""

    def ratio(*providers):
        times = [ref[p] for p in providers if p in ref]
        return min(times) / ns if times else None

    checks = []
    if row == "mlp_infer/1":
        checks.append((ns <= 3e3, f"{fmt_time(ns)} vs ≤ 3 µs"))
        r = ratio("ort", "ort_iobinding")
        if r is not None:
            checks.append((r >= 2, f"{r:.2f}× ONNX Runtime vs ≥ 2×"))
    elif row == "mlp_infer/64":
        checks.append((gflops >= 220, f"{gflops:.0f} vs ≥ 220 GFLOP/s"))
    elif row == "mlp_train_adam/64":
        checks.append((ns <= 170e3, f"{fmt_time(ns)} vs ≤ 170 µs"))
        r = ratio("torch_eager_fused")
        if r is not None:
            checks.append((r >= 3, f"{r:.2f}× PyTorch fused Adam vs ≥ 3×"))
    elif row == "cnn_infer/1":
        r = ratio("torch_eager")
        if r is not None:
            checks.append((r >= 4, f"{r:.2f}× PyTorch eager vs ≥ 4×"))
    elif row in ("cnn_train_sgd/32", "cnn_bn_train/64"):
        r = ratio("torch_eager", "torch_eager_fused")  # the faster PyTorch
        if r is not None:
            checks.append((r >= 3, f"{r:.2f}× PyTorch vs ≥ 3×"))
    elif row == "gpt/train_step/12":
        r = ratio("torch_eager", "torch_eager_fused")  # the faster PyTorch
        if r is not None:
            aim = "aim 3× reached" if r >= 3 else "aim 3× not reached"
            checks.append((r >= 2, f"{r:.2f}× PyTorch vs ≥ 2× ({aim})"))
    elif row in ("gpt/forward/1", "gpt/forward_into/1"):
        r = ratio("torch_eager")
        if r is not None:
            checks.append((r >= 4, f"{r:.2f}× PyTorch eager vs ≥ 4×"))
    elif row == "tiny_infer/1":
        checks.append((ns < 50, f"{fmt_time(ns)} vs < 50 ns"))
    elif row in FORWARD_TARGETS:
        into, most, ort_at_least = FORWARD_TARGETS[row]
        if into in ours:
            r = ns / ours[into][0]
            checks.append((r <= most, f"{r:.2f}× {into} vs ≤ {most}×"))
        r = ratio("ort", "ort_iobinding")
        if r is not None:
            checks.append((r >= ort_at_least, f"{r:.2f}× ONNX Runtime vs ≥ {ort_at_least}×"))
    if not checks:
        return None
    met = all(ok for ok, _ in checks)
    return met, ("**met**: " if met else "**missed**: ") + "; ".join(
        ("" if ok else "✗ ") + text for ok, text in checks
    )


def candle_version():
    """The candle-core version locked in benches/candle/Cargo.lock, or "?"."""
    lock = os.path.join(os.path.dirname(__file__), "..", "candle", "Cargo.lock")
    try:
        with open(lock) as f:
            m = re.search(r'name = "candle-core"\nversion = "([^"]+)"', f.read())
    except OSError:
        return "?"
    return m.group(1) if m else "?"


def criterion_medians(root, since):
    """full_id -> (median ns, flops per call or None) of results written after `since`."""
    out = {}
    for bench in glob.glob(os.path.join(root, "**", "new", "benchmark.json"), recursive=True):
        est = os.path.join(os.path.dirname(bench), "estimates.json")
        if not os.path.exists(est) or os.path.getmtime(est) < since:
            continue
        with open(bench) as f:
            b = json.load(f)
        with open(est) as f:
            e = json.load(f)
        flops = (b.get("throughput") or {}).get("Elements")
        out[b["full_id"]] = (e["median"]["point_estimate"], flops)
    return out


def best_of(runs):
    """Per key (and provider), the smallest median over `runs`."""
    best = {}
    for run in runs:
        for key, cell in run.items():
            if isinstance(cell, dict):
                b = best.setdefault(key, {})
                for p, ns in cell.items():
                    b[p] = min(ns, b.get(p, ns))
            elif key not in best or cell[0] < best[key][0]:
                best[key] = cell
    return best


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="command", required=True)
    collect = sub.add_parser("collect")
    collect.add_argument("--criterion", default="target/criterion")
    collect.add_argument("--since", type=float, default=0.0)
    collect.add_argument("--out", required=True)
    table = sub.add_parser("table")
    table.add_argument("--ours", nargs="+", required=True)
    table.add_argument("--reference", nargs="+", required=True)
    table.add_argument("--candle", nargs="+", default=[], help="collect files of benches/candle")
    args = ap.parse_args()

    if args.command == "collect":
        with open(args.out, "w") as f:
            json.dump(criterion_medians(args.criterion, args.since), f, indent=1)
        return

    runs = []
    for path in args.ours:
        with open(path) as f:
            runs.append(json.load(f))
    ours = best_of(runs)
    references = []
    for path in args.reference:
        with open(path) as f:
            references.append(json.load(f))
    reference = references[-1]
    refs = best_of([r["results"] for r in references])
    candle_runs = []
    for path in args.candle:
        with open(path) as f:
            candle_runs.append(json.load(f))
    candle = best_of(candle_runs)
    peak = PEAK_GFLOPS
    measured_peak = None
    if "peak/avx512_fma_f32" in ours:
        ns, flops = ours["peak/avx512_fma_f32"]
        measured_peak = peak = flops / ns

    head = ["workload", "target", "nanograd", "GFLOP/s (% of peak)"]
    head += [h for _, h in PROVIDERS] + (["candle"] if candle_runs else []) + ["target met?"]
    print("| " + " | ".join(head) + " |")
    n_providers = len(PROVIDERS) + (1 if candle_runs else 0)
    print("| --- | --- | ---: | ---: |" + " ---: |" * n_providers + " --- |")
    for row, ref_name, target in ROWS:
        if row not in ours:
            continue
        ns, flops = ours[row]
        gflops = flops / ns if flops else None
        ref = refs.get(ref_name, {})
        cells = [row, target, fmt_time(ns)]
        if gflops is not None and (row.startswith(("mlp", "sgemm", "gpt", "cnn_bn"))):
            cells.append(f"{gflops:.1f}" + f" ({100 * gflops / peak:.0f} %)")
        else:
            cells.append("")
        for p, _ in PROVIDERS:
            cells.append(f"{fmt_time(ref[p])} ({ref[p] / ns:.2f}×)" if p in ref else "")
        if candle_runs:
            c = candle.get(row, candle.get(ref_name, (None,)))[0]
            cells.append(f"{fmt_time(c)} ({c / ns:.2f}×)" if c is not None else "")
        v = verdict(row, ns, gflops, ref, ours)
        cells.append(v[1] if v else "")
        print("| " + " | ".join(cells) + " |")
    print()
    rounds = f"{len(runs)} nanograd and {len(references)} reference"
    if candle_runs:
        rounds = f"{len(runs)} nanograd, {len(references)} reference and {len(candle_runs)} candle"
    print(f"Best median of {rounds} rounds per cell.")
    if measured_peak:
        print(f"% of peak: of {measured_peak:.1f} GFLOP/s, the single-thread FMA peak measured in"
              " these rounds (benches/blas.rs, best round).")
    else:
        print(f"% of peak: of {PEAK_GFLOPS:.0f} GFLOP/s (no peak measured in these rounds).")
    m = reference["meta"]
    print(
        f"Reference: PyTorch {m['torch']} ({m['torch_cpu_capability']}, {m['torch_threads']} thread), "
        f"ONNX Runtime {m['onnxruntime']}, Python {m['python']}; {m['date']}."
    )
    if candle_runs:
        print(f"candle: candle-core {candle_version()} (benches/candle, CPU, one thread).")
    print("Ratio = reference (or candle) median / nanograd median: above 1, nanograd is faster.")


if __name__ == "__main__":
    main()
