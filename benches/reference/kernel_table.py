#!/usr/bin/env python3
"""Prints where the time of each workload goes, from criterion's results of
benches/kernels.rs (group `kernels:<workload>`, one benchmark per kernel call, named
`NN kernel` in calling order) and benches/models.rs (the whole workload, `<workload>`).

For each workload: every kernel's median and its share of the whole model's median, then the
sum of the kernels and the rest (the generated code between kernel calls: batch checks,
workspace splits, output copies; negative when the kernels ran faster alone than inside the
model, e.g. with warmer caches).

Usage: kernel_table.py [--criterion target/criterion] [--since EPOCH_SECONDS]
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
    args = ap.parse_args()

    kernels, models = {}, {}
    pattern = os.path.join(args.criterion, "**", "new", "benchmark.json")
    for bench in glob.glob(pattern, recursive=True):
        est = os.path.join(os.path.dirname(bench), "estimates.json")
        if not os.path.exists(est) or os.path.getmtime(est) < args.since:
            continue
        with open(bench) as f:
            b = json.load(f)
        with open(est) as f:
            median = json.load(f)["median"]["point_estimate"]
        group = b["group_id"]
        if group.startswith("kernels:"):
            kernels.setdefault(group[len("kernels:"):], []).append((b["function_id"], median))
        else:
            models[b["full_id"]] = median

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
