"""ONNX Runtime's dynamic int8 quantization of the MNIST perceptron, beside its float32 graph,
one thread: the reference side of scripts/bench-int8.sh.

The perceptron is the 784-128-64-10 MLP (ReLU) with the weights `mnist_mlp` trained
(examples/weights/mnist_mlp.safetensors, read here with the header parser below, so no
safetensors package is needed). Its ONNX graph is bench_reference.py's (Gemm with transB,
Relu); `onnxruntime.quantization.quantize_dynamic(weight_type=QuantType.QInt8)` turns it into
the int8 graph (weights int8, activations quantized per call: DynamicQuantizeLinear +
MatMulInteger, or the fused MatMulIntegerToFloat after graph optimisation), with its default
per-tensor weight scales, and with `--per-channel` also as per-channel.

Providers (keys of the JSON, per workload `mlp_infer/{1,64}`):

  ort_iobinding         float32 graph through I/O binding (as bench_reference.py)
  ort_int8_iobinding    the quantize_dynamic QInt8 graph, same session options and binding
  ort_int8_pc_iobinding the same with per_channel=True

It also reports each graph's accuracy on the 2,000 test digits of data/mnist-10k and the
size of each .onnx file (printed, and under "accuracy" and "bytes" in the JSON).

Usage: python3 bench_int8_reference.py [--out target/bench-int8-reference.json]
                                       [--warm-up 1.0] [--measurement-time 3.0]
"""

import argparse
import gzip
import json
import logging
import os
import struct
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_reference as ref  # noqa: E402  (sets one thread everywhere on import)

import numpy as np  # noqa: E402
import onnxruntime as ort  # noqa: E402
import torch  # noqa: E402
from onnxruntime.quantization import QuantType, quantize_dynamic  # noqa: E402

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")


def read_safetensors(path):
    """name -> float32 numpy array of a safetensors file of F32 tensors."""
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + n])
    out = {}
    for name, t in header.items():
        if name == "__metadata__":
            continue
        assert t["dtype"] == "F32", (name, t["dtype"])
        a, b = t["data_offsets"]
        out[name] = np.frombuffer(data[8 + n + a : 8 + n + b], dtype="<f4").reshape(t["shape"])
    return out


def read_idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    dims = data[3]
    shape = struct.unpack(">" + "I" * dims, data[4 : 4 + 4 * dims])
    return np.frombuffer(data[4 + 4 * dims :], dtype=np.uint8).reshape(shape)


def trained_mlp():
    w = read_safetensors(os.path.join(ROOT, "examples/weights/mnist_mlp.safetensors"))
    model = ref.mlp()
    with torch.no_grad():
        for i, name in ((0, "fc1"), (2, "fc2"), (4, "fc3")):
            model[i].weight.copy_(torch.from_numpy(w[f"{name}.weight"].copy()))
            model[i].bias.copy_(torch.from_numpy(w[f"{name}.bias"].copy()))
    return model.eval()


def bound(sess, x):
    """run_with_iobinding on `x` with input and output bound once."""
    binding = sess.io_binding()
    x_ort = ort.OrtValue.ortvalue_from_numpy(x)
    y_ort = ort.OrtValue.ortvalue_from_shape_and_type([x.shape[0], 10], np.float32)
    binding.bind_ortvalue_input("x", x_ort)
    binding.bind_ortvalue_output("y", y_ort)
    return lambda: sess.run_with_iobinding(binding)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="target/bench-int8-reference.json")
    ap.add_argument("--warm-up", type=float, default=1.0)
    ap.add_argument("--measurement-time", type=float, default=3.0)
    args = ap.parse_args()
    # quantize_dynamic suggests shape-inference pre-processing, which this graph (fixed
    # weights, one symbolic batch dimension) does not need
    logging.getLogger().setLevel(logging.ERROR)

    model = trained_mlp()
    float_bytes = ref.onnx_graph(model, [784])
    graphs = {"ort_iobinding": float_bytes}
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "mlp.onnx")
        with open(src, "wb") as f:
            f.write(float_bytes)
        for key, per_channel in (("ort_int8_iobinding", False), ("ort_int8_pc_iobinding", True)):
            dst = os.path.join(tmp, f"{key}.onnx")
            quantize_dynamic(src, dst, weight_type=QuantType.QInt8, per_channel=per_channel)
            with open(dst, "rb") as f:
                graphs[key] = f.read()

    images = read_idx(os.path.join(ROOT, "data/mnist-10k/t10k-images-idx3-ubyte.gz"))
    labels = read_idx(os.path.join(ROOT, "data/mnist-10k/t10k-labels-idx1-ubyte.gz"))
    test = (images.reshape(len(images), 784).astype(np.float32) / 255.0).copy()
    sessions = {k: ref.ort_session(g) for k, g in graphs.items()}
    accuracy, sizes = {}, {}
    for k, sess in sessions.items():
        logits = sess.run(["y"], {"x": test})[0]
        accuracy[k] = float(100.0 * np.mean(logits.argmax(1) == labels))
        sizes[k] = len(graphs[k])
        print(f"{k:22} accuracy {accuracy[k]:.2f} %   {sizes[k]} bytes", file=sys.stderr)

    g = torch.Generator().manual_seed(1)
    results = {}
    for b in (1, 64):
        x = (torch.rand(b, 784, generator=g) * 2 - 1).numpy()
        for k, sess in sessions.items():
            ns = ref.median_ns(bound(sess, x), args.warm_up, args.measurement_time)
            results.setdefault(f"mlp_infer/{b}", {})[k] = ns
            print(f"mlp_infer/{b:<3} {k:22} {ns / 1e3:10.3f} µs", file=sys.stderr)

    meta = {
        "onnxruntime": ort.__version__,
        "unit": "ns per call, median over samples",
        "warm_up_s": args.warm_up,
        "measurement_time_s": args.measurement_time,
    }
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(
            {"meta": meta, "results": results, "accuracy": accuracy, "bytes": sizes}, f, indent=1
        )
    print(f"wrote {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
