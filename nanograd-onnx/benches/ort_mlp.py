"""ONNX Runtime on the MLP fixture (tests/fixtures/mlp_ts17.onnx), one thread, batch 1 and
64, with the inputs of benches/imported_mlp.rs: the median time per call of `run` and of
`run_with_iobinding` (preallocated input and output), over 20 rounds of 2,000 calls.

Run from this directory: `python3 ort_mlp.py` (needs onnxruntime and numpy).
"""

import pathlib
import statistics
import time

import numpy as np
import onnxruntime as ort

HERE = pathlib.Path(__file__).resolve().parent
MODEL = HERE.parent / "tests" / "fixtures" / "mlp_ts17.onnx"


def median_us(fn, calls=2000, rounds=20):
    fn()
    times = []
    for _ in range(rounds):
        t = time.perf_counter()
        for _ in range(calls):
            fn()
        times.append((time.perf_counter() - t) / calls * 1e6)
    return statistics.median(times)


def main():
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    sess = ort.InferenceSession(str(MODEL), opts, providers=["CPUExecutionProvider"])
    for batch in (1, 64):
        x = np.array([[((i * 8 + j) % 17) / 8 - 1 for j in range(8)] for i in range(batch)], dtype=np.float32)
        run = median_us(lambda: sess.run(None, {"x": x}))
        binding = sess.io_binding()
        binding.bind_cpu_input("x", x)
        y = np.empty((batch, 5), dtype=np.float32)
        binding.bind_output("y", "cpu", 0, np.float32, y.shape, y.ctypes.data)
        bound = median_us(lambda: sess.run_with_iobinding(binding))
        print(f"onnxruntime {ort.__version__}, batch {batch}: run {run:.2f} us, run_with_iobinding {bound:.2f} us")


if __name__ == "__main__":
    main()
