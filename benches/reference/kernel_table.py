#!/usr/bin/env python3
"""Prints where the time of each workload goes, from criterion's results of
benches/kernels.rs (group `kernels:<workload>`, one benchmark per kernel call, named
`NN kernel` in calling order) and benches/models.rs (the whole workload, `<workload>`).

For each workload: every kernel's median and its share of the whole model's median, then the
sum of the kernels and the rest (the generated code between kernel calls: batch checks,
workspace splits, output copies; negative when the kernels ran faster alone than inside the
model, e.g. with warmer caches, or when the machine was busier during one of the two runs).

The whole model's median is the best over the `compare_table.py collect` files given with
--ours (scripts/bench-compare.sh passes its rounds), else the one in target/criterion.
--since applies to the kernels' results.

Usage: kernel_table.py [--criterion target/criterion] [--since EPOCH_SECONDS] [--ours F ...]
"""

import argparse
import glob
import json
import os


def fmt_time(ns):
    if abs(ns) < 1e3:
        return f"{ns:.1f} ns"
    if abs(ns) < 1e6:
        return f"{ns / 1e3:.2f} µs"
    return f"{ns / 1e6:.2f} ms"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--criterion", default="target/criterion")
    ap.add_argument("--since", type=float, default=0.0)
    ap.add_argument("--ours", nargs="*", default=[])
    args = ap.parse_args()

    kernels, models = {}, {}
    pattern = os.path.join(args.criterion, "**", "new", "benchmark.json")
    for bench in glob.glob(pattern, recursive=True):
        est = os.path.join(os.path.dirname(bench), "estimates.json")
        if not os.path.exists(est):
            continue
        with open(bench) as f:
            b = json.load(f)
        with open(est) as f:
            median = json.load(f)["median"]["point_estimate"]
        group = b["group_id"]
        if group.startswith("kernels:"):
            if os.path.getmtime(est) >= args.since:
                kernels.setdefault(group[len("kernels:"):], []).append((b["function_id"], median))
        elif not args.ours:
            models[b["full_id"]] = median
    for path in args.ours:
        with open(path) as f:
            for key, (median, _) in json.load(f).items():
                models[key] = min(median, models.get(key, median))

    for workload in sorted(kernels):
        rows = sorted(kernels[workload])
        total = sum(ns for _, ns in rows)
        whole = models.get(workload)
        base = whole or total
        print(f"#### `{workload}`" + (f": {fmt_time(whole)} in models.rs" if whole else ""))
        print()
        print("| step | kernel | median | share |")
        print("| ---: | --- | ---: | ---: |")
        for name, ns in rows:
            step, _, kernel = name.partition(" ")
            print(f"| {int(step)} | {kernel} | {fmt_time(ns)} | {100 * ns / base:.1f} % |")
        print(f"| | sum of the kernels | {fmt_time(total)} | {100 * total / base:.1f} % |")
        if whole:
            print(f"| | rest (generated code) | {fmt_time(whole - total)} | "
                  f"{100 * (whole - total) / whole:.1f} % |")
        print()


if __name__ == "__main__":
    main()
