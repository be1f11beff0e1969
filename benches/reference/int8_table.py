"""The Markdown table of scripts/bench-int8.sh: nanograd's float32 and int8 perceptron
(criterion medians collected by compare_table.py) beside ONNX Runtime's float32 and
quantize_dynamic QInt8 graphs (bench_int8_reference.py), best over the rounds, with the
speed-ups the int8 issue targets.

Usage: int8_table.py --ours F [F ..] --reference F [F ..]
"""

import argparse
import json

from compare_table import best_of
from compare_table import fmt_time as _fmt_time


def fmt_time(ns):
    return _fmt_time(ns) if ns else "n/a"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ours", nargs="+", required=True)
    ap.add_argument("--reference", nargs="+", required=True)
    args = ap.parse_args()
    ours = best_of([json.load(open(f)) for f in args.ours])
    refs = [json.load(open(f)) for f in args.reference]
    ref = best_of([r["results"] for r in refs])
    acc, size = refs[-1]["accuracy"], refs[-1]["bytes"]

    def t(key):
        cell = ours.get(key)
        return cell[0] if cell else None

    print("| batch | nanograd f32 `forward` | nanograd int8 `forward` | speed-up (target) "
          "| nanograd f32 `forward_into` | nanograd int8 `forward_into` | speed-up "
          "| ORT f32 | ORT int8 (QInt8) | ORT int8 per-channel | ORT int8 / nanograd int8 |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for b, target in ((1, 1.5), (64, 2.0)):
        f, q = t(f"mlp_forward/{b}"), t(f"mlp_int8_forward/{b}")
        fi, qi = t(f"mlp_infer/{b}"), t(f"mlp_int8_infer/{b}")
        r = ref.get(f"mlp_infer/{b}", {})
        rf, rq, rpc = r.get("ort_iobinding"), r.get("ort_int8_iobinding"), r.get("ort_int8_pc_iobinding")

        def ratio(a, c):
            return f"{a / c:.2f}x" if a and c else "n/a"

        print(
            f"| {b} | {fmt_time(f)} | {fmt_time(q)} | {ratio(f, q)} ({target}x) "
            f"| {fmt_time(fi)} | {fmt_time(qi)} | {ratio(fi, qi)} "
            f"| {fmt_time(rf)} | {fmt_time(rq)} | {fmt_time(rpc)} | {ratio(rq, q)} |"
        )
    print()
    print("ONNX Runtime on the 2,000 test digits: " + ", ".join(
        f"{k} {acc[k]:.2f} % ({size[k]:,} bytes)" for k in acc))


if __name__ == "__main__":
    main()
