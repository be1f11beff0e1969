#!/usr/bin/env python3
"""The reference side of benches/models.rs: the same workloads in PyTorch and ONNX Runtime.

float32, one thread, the same models and batch sizes as the criterion benchmarks:

  mlp_infer/{1,64}    MLP 784-128-64-10 (ReLU) inference
  mlp_train_adam/64   one training step: zero_grad, cross entropy on one-hot targets
                      (probability targets, as our softmax_cross_entropy), backward, Adam 1e-3
  cnn_infer/1         conv 1->8 3x3 pad 1, ReLU, conv 8->16 3x3 stride 2 pad 1, ReLU,
                      global average pool, dense 16->10, on 1x28x28
  cnn_train_sgd/32    one training step of that CNN, SGD lr 0.01 momentum 0.9
  cnn_bn_train/64     one training step of the network of examples/mnist_cnn.rs (conv 1->16,
                      batch norm, ReLU, 2x2 max pool, conv 16->32, batch norm, ReLU, 2x2 max
                      pool, dense 1568->10; training mode), SGD lr 0.05 momentum 0.9, batch 64
  tiny_infer/1        dense 2->8, ReLU, dense 8->1
  gpt/train_step/12   the character-level GPT of examples/shared/gpt.rs (4 pre-norm blocks of
                      width 128, 4 causal heads, context 64, vocabulary 75, feed-forward 512,
                      tanh GELU): one training step at batch 12, zero_grad, mean cross-entropy
                      over the 12 x 64 positions, backward, clip_grad_norm_(1.0), AdamW (lr
                      1e-3, betas 0.9/0.99, weight decay 0.1 on the parameters of 2 or more
                      dimensions only: two parameter groups)
  gpt/forward/1       that GPT's logits of one sequence of 64 tokens
  sgemm/{64,256,1024} square C = A.B (torch.mm into a preallocated `out`, MKL)

Providers (the keys of the JSON):

  torch_eager         the nn.Module called under torch.inference_mode() (training: eager
                      autograd, the optimizer's default implementation, `foreach` on CPU)
  torch_eager_fused   training only: the optimizer with fused=True
  torch_jit           torch.jit.freeze(torch.jit.trace(model.eval(), x)) under inference_mode
  ort                 ONNX Runtime InferenceSession.run, one intra- and one inter-op thread,
                      sequential execution, all graph optimisations
  ort_iobinding       the same session through I/O binding (input and output OrtValues bound
                      once, run_with_iobinding)

The GPT is written here as examples/reference/gpt_shakespeare.py writes it (same modules,
names, configuration and forward, including the boolean causal mask built on every call;
not imported, so that this script stands alone), with PyTorch's default initialisation and
wpe drawn from N(0, 1). It has torch_eager and torch_eager_fused training steps and
torch_eager and torch_jit forward passes; it has no ONNX graph here.

The ONNX graphs of the MLP, CNN and tiny model are written here with onnx.helper from the
PyTorch model's weights (Gemm with transB, Relu, Conv, GlobalAveragePool, Flatten), with no
exporter involved, and checked against the PyTorch outputs before timing.

Timing follows criterion's way: a warm-up that also estimates the time of one call, then
SAMPLES samples of k calls each (k chosen so that the samples fill the measurement time),
the median over samples of (sample time / k), in nanoseconds, with Python's garbage
collector off while sampling. Python's loop adds some tens of ns per call, which is included.

Usage: python3 bench_reference.py [--out target/bench-reference.json]
                                  [--warm-up 1.0] [--measurement-time 3.0] [--only REGEX]
"""

import argparse
import copy
import datetime
import gc
import json
import os
import platform
import re
import statistics
import sys
import time
import warnings

# One thread everywhere, before the libraries read their environment.
for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ[var] = "1"

import numpy as np  # noqa: E402
import onnx  # noqa: E402
import onnxruntime as ort  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

torch.set_num_threads(1)
# torch.jit is deprecated in favour of torch.compile, but still the documented way to trace
# and freeze a model for inference; its warnings would only clutter the output.
warnings.filterwarnings("ignore", category=FutureWarning, message=r".*torch\.jit")
torch.set_num_interop_threads(1)

SAMPLES = 50
# Every provider a workload may have (the keys of its calls; see the module doc).
PROVIDERS = ("torch_eager", "torch_eager_fused", "torch_jit", "ort", "ort_iobinding")


def median_ns(fn, warm_up, measure):
    """Median time of one call of `fn` in ns, criterion-style (see the module doc)."""
    start, n = time.perf_counter(), 0
    while n < 3 or time.perf_counter() - start < warm_up:
        fn()
        n += 1
    per_call = (time.perf_counter() - start) / n
    k = max(1, int(measure / SAMPLES / per_call))
    times = []
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        for _ in range(SAMPLES):
            t = time.perf_counter_ns()
            for _ in range(k):
                fn()
            times.append((time.perf_counter_ns() - t) / k)
    finally:
        if gc_was_enabled:
            gc.enable()
    return statistics.median(times)


# ------------------------------------------------------------------------------------------
# models


def mlp():
    return torch.nn.Sequential(
        torch.nn.Linear(784, 128),
        torch.nn.ReLU(),
        torch.nn.Linear(128, 64),
        torch.nn.ReLU(),
        torch.nn.Linear(64, 10),
    )


def cnn():
    return torch.nn.Sequential(
        torch.nn.Conv2d(1, 8, 3, padding=1),
        torch.nn.ReLU(),
        torch.nn.Conv2d(8, 16, 3, stride=2, padding=1),
        torch.nn.ReLU(),
        torch.nn.AdaptiveAvgPool2d(1),
        torch.nn.Flatten(),
        torch.nn.Linear(16, 10),
    )


def tiny():
    return torch.nn.Sequential(
        torch.nn.Linear(2, 8), torch.nn.ReLU(), torch.nn.Linear(8, 1)
    )


class Block(torch.nn.Module):
    """One pre-norm transformer block of the GPT: causal self-attention, then a tanh-GELU
    feed-forward layer, each added to the residual stream. Module names as nanograd's
    `Block` (examples/shared/gpt.rs) and examples/reference/gpt_shakespeare.py."""

    def __init__(self):
        super().__init__()
        self.ln_1 = torch.nn.LayerNorm(GPT_EMB)
        self.attn = torch.nn.MultiheadAttention(GPT_EMB, GPT_HEADS, batch_first=True)
        self.ln_2 = torch.nn.LayerNorm(GPT_EMB)
        self.fc = torch.nn.Linear(GPT_EMB, GPT_FF)
        self.proj = torch.nn.Linear(GPT_FF, GPT_EMB)

    def forward(self, x, mask):
        h = self.ln_1(x)
        x = x + self.attn(h, h, h, attn_mask=mask, need_weights=False)[0]
        return x + self.proj(F.gelu(self.fc(self.ln_2(x)), approximate="tanh"))


class Gpt(torch.nn.Module):
    """The character-level GPT: token and position embeddings, four blocks, a final layer
    norm and the next-token logits at every position (`Gpt` of examples/shared/gpt.rs)."""

    def __init__(self):
        super().__init__()
        self.wte = torch.nn.Embedding(GPT_VOCAB, GPT_EMB)
        self.wpe = torch.nn.Parameter(torch.randn(GPT_CTX, GPT_EMB))
        self.h = torch.nn.ModuleList(Block() for _ in range(GPT_LAYERS))
        self.ln_f = torch.nn.LayerNorm(GPT_EMB)
        self.lm_head = torch.nn.Linear(GPT_EMB, GPT_VOCAB, bias=False)

    def forward(self, idx):
        """Logits [B, T, vocab] of the next token at every position of `idx` [B, T]."""
        t = idx.shape[1]
        x = self.wte(idx) + self.wpe[:t]
        # True above the diagonal: position i does not attend to the positions after it
        mask = torch.triu(torch.ones(t, t), 1).bool()
        for block in self.h:
            x = block(x, mask)
        return self.lm_head(self.ln_f(x))


# as examples/shared/gpt.rs: VOCAB is the 75 distinct characters of data/shakespeare/input.txt
GPT_VOCAB, GPT_CTX, GPT_EMB, GPT_HEADS, GPT_FF, GPT_LAYERS = 75, 64, 128, 4, 512, 4


def tokens(b, generator):
    """`b` sequences of GPT_CTX random token ids below GPT_VOCAB."""
    return torch.randint(GPT_VOCAB, (b, GPT_CTX), generator=generator)


def one_hot(b):
    t = torch.zeros(b, 10)
    t[torch.arange(b), (3 * torch.arange(b) + 1) % 10] = 1.0
    return t


# ------------------------------------------------------------------------------------------
# ONNX graphs from the PyTorch weights


def onnx_graph(model, in_shape):
    """The ONNX model of a Sequential of Linear / ReLU / Conv2d / AdaptiveAvgPool2d(1) /
    Flatten, input `x` of `in_shape` with a symbolic batch dimension, output `y`."""
    nodes, inits, cur = [], [], "x"
    for i, layer in enumerate(model):
        out = f"h{i}"
        if isinstance(layer, torch.nn.Linear):
            w, b = f"w{i}", f"b{i}"
            inits += [
                numpy_helper.from_array(layer.weight.detach().numpy(), w),
                numpy_helper.from_array(layer.bias.detach().numpy(), b),
            ]
            nodes.append(helper.make_node("Gemm", [cur, w, b], [out], transB=1))
        elif isinstance(layer, torch.nn.Conv2d):
            w, b = f"w{i}", f"b{i}"
            inits += [
                numpy_helper.from_array(layer.weight.detach().numpy(), w),
                numpy_helper.from_array(layer.bias.detach().numpy(), b),
            ]
            (kh, kw), (sh, sw), (ph, pw) = layer.kernel_size, layer.stride, layer.padding
            nodes.append(
                helper.make_node(
                    "Conv",
                    [cur, w, b],
                    [out],
                    kernel_shape=[kh, kw],
                    strides=[sh, sw],
                    pads=[ph, pw, ph, pw],
                )
            )
        elif isinstance(layer, torch.nn.ReLU):
            nodes.append(helper.make_node("Relu", [cur], [out]))
        elif isinstance(layer, torch.nn.AdaptiveAvgPool2d):
            nodes.append(helper.make_node("GlobalAveragePool", [cur], [out]))
        elif isinstance(layer, torch.nn.Flatten):
            nodes.append(helper.make_node("Flatten", [cur], [out], axis=1))
        else:
            raise TypeError(f"no ONNX node for {layer}")
        cur = out
    nodes[-1].output[0] = "y"
    n_out = model[-1].out_features
    graph = helper.make_graph(
        nodes,
        "reference",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["B", *in_shape])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["B", n_out])],
        inits,
    )
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    onnx.checker.check_model(m)
    return m.SerializeToString()


def ort_session(model_bytes):
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(
        model_bytes, sess_options=so, providers=["CPUExecutionProvider"]
    )


# ------------------------------------------------------------------------------------------
# workloads: name -> {provider: callable}


def inference(model, x):
    """torch_eager, torch_jit, ort and ort_iobinding calls of `model` on `x`, after
    checking that all of them compute the same output."""
    model.eval()
    with torch.inference_mode():
        want = model(x).numpy()
        jit = torch.jit.freeze(torch.jit.trace(model, x))
        np.testing.assert_allclose(jit(x).numpy(), want, rtol=1e-4, atol=1e-5)
    sess = ort_session(onnx_graph(model, list(x.shape[1:])))
    x_np = x.numpy()
    np.testing.assert_allclose(
        sess.run(["y"], {"x": x_np})[0], want, rtol=1e-4, atol=1e-5
    )
    binding = sess.io_binding()
    x_ort = ort.OrtValue.ortvalue_from_numpy(x_np)
    y_ort = ort.OrtValue.ortvalue_from_shape_and_type(list(want.shape), np.float32)
    binding.bind_ortvalue_input("x", x_ort)
    binding.bind_ortvalue_output("y", y_ort)
    sess.run_with_iobinding(binding)
    np.testing.assert_allclose(y_ort.numpy(), want, rtol=1e-4, atol=1e-5)

    def eager():
        with torch.inference_mode():
            return model(x)

    def traced():
        with torch.inference_mode():
            return jit(x)

    return {
        "torch_eager": eager,
        "torch_jit": traced,
        "ort": lambda: sess.run(["y"], {"x": x_np}),
        "ort_iobinding": lambda: sess.run_with_iobinding(binding),
    }


def training(model, x, t, make_opt):
    """torch_eager (the optimizer's default implementation) and torch_eager_fused
    (fused=True, where this PyTorch has it on CPU) training steps."""
    model.train()
    calls = {}
    for key, kw in (("torch_eager", {}), ("torch_eager_fused", {"fused": True})):
        m = copy.deepcopy(model)
        try:
            opt = make_opt(m.parameters(), **kw)
        except (RuntimeError, TypeError, ValueError) as e:
            print(f"  {key}: not available ({e})", file=sys.stderr)
            continue

        def step(m=m, opt=opt):
            opt.zero_grad()
            loss = F.cross_entropy(m(x), t)
            loss.backward()
            opt.step()
            return loss

        try:
            step()
        except (RuntimeError, TypeError, ValueError) as e:
            print(f"  {key}: not available ({e})", file=sys.stderr)
            continue
        calls[key] = step
    return calls


def gpt_inference(model, idx):
    """torch_eager (and torch_jit, where tracing the model works and agrees with eager)
    forward passes of the GPT on `idx`."""
    model.eval()
    with torch.inference_mode():
        want = model(idx)
    assert want.shape == (idx.shape[0], GPT_CTX, GPT_VOCAB)

    def eager():
        with torch.inference_mode():
            return model(idx)

    calls = {"torch_eager": eager}
    try:
        with torch.inference_mode():
            jit = torch.jit.freeze(torch.jit.trace(model, idx))
            torch.testing.assert_close(jit(idx), want, rtol=1e-4, atol=1e-4)

        def traced():
            with torch.inference_mode():
                return jit(idx)

        calls["torch_jit"] = traced
    except (RuntimeError, TypeError, ValueError, AssertionError) as e:
        print(f"  torch_jit: not available for the GPT ({e})", file=sys.stderr)
    return calls


def gpt_training(model, idx, targets):
    """torch_eager and torch_eager_fused training steps of the GPT, as the example trains it:
    zero_grad, loss, backward, gradient clipping at norm 1.0, AdamW with weight decay on
    matrices only."""
    model.train()
    calls = {}
    for key, kw in (("torch_eager", {}), ("torch_eager_fused", {"fused": True})):
        m = copy.deepcopy(model)
        decay = [p for p in m.parameters() if p.dim() >= 2]
        no_decay = [p for p in m.parameters() if p.dim() < 2]
        groups = [
            {"params": decay, "weight_decay": 0.1},
            {"params": no_decay, "weight_decay": 0.0},
        ]
        try:
            opt = torch.optim.AdamW(groups, lr=1e-3, betas=(0.9, 0.99), **kw)
        except (RuntimeError, TypeError, ValueError) as e:
            print(f"  {key}: not available ({e})", file=sys.stderr)
            continue

        def step(m=m, opt=opt):
            opt.zero_grad()
            logits = m(idx)
            loss = F.cross_entropy(logits.reshape(-1, GPT_VOCAB), targets.reshape(-1))
            loss.backward()
            torch.nn.utils.clip_grad_norm_(m.parameters(), 1.0)
            opt.step()
            return loss

        try:
            losses = [step().item() for _ in range(3)]
        except (RuntimeError, TypeError, ValueError) as e:
            print(f"  {key}: not available ({e})", file=sys.stderr)
            continue
        assert losses[-1] < losses[0], f"gpt/train_step {key}: losses {losses}"
        calls[key] = step
    return calls


def sgemm(n):
    g = torch.Generator().manual_seed(n)
    a = torch.rand(n, n, generator=g) * 2 - 1
    b = torch.rand(n, n, generator=g) * 2 - 1
    c = torch.empty(n, n)
    torch.mm(a, b, out=c)
    torch.testing.assert_close(c, a.double().mm(b.double()).float(), rtol=1e-4, atol=1e-3)

    def mm():
        with torch.inference_mode():
            return torch.mm(a, b, out=c)

    return {"torch_eager": mm}


def cnn_bn():
    return torch.nn.Sequential(
        torch.nn.Conv2d(1, 16, 3, padding=1),
        torch.nn.BatchNorm2d(16),
        torch.nn.ReLU(),
        torch.nn.MaxPool2d(2),
        torch.nn.Conv2d(16, 32, 3, padding=1),
        torch.nn.BatchNorm2d(32),
        torch.nn.ReLU(),
        torch.nn.MaxPool2d(2),
        torch.nn.Flatten(),
        torch.nn.Linear(32 * 7 * 7, 10),
    )


def workloads():
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(1)

    def rand(*shape):
        return torch.rand(*shape, generator=g) * 2 - 1

    the_mlp, the_cnn, the_tiny = mlp(), cnn(), tiny()
    yield "mlp_infer/1", lambda: inference(the_mlp, rand(1, 784))
    yield "mlp_infer/64", lambda: inference(the_mlp, rand(64, 784))
    yield "mlp_train_adam/64", lambda: training(
        mlp(), rand(64, 784), one_hot(64), lambda p, **kw: torch.optim.Adam(p, lr=1e-3, **kw)
    )
    yield "cnn_infer/1", lambda: inference(the_cnn, rand(1, 1, 28, 28))
    yield "cnn_train_sgd/32", lambda: training(
        cnn(),
        rand(32, 1, 28, 28),
        one_hot(32),
        lambda p, **kw: torch.optim.SGD(p, lr=0.01, momentum=0.9, **kw),
    )
    yield "cnn_bn_train/64", lambda: training(
        cnn_bn(),
        rand(64, 1, 28, 28),
        one_hot(64),
        lambda p, **kw: torch.optim.SGD(p, lr=0.05, momentum=0.9, **kw),
    )
    yield "tiny_infer/1", lambda: inference(the_tiny, rand(1, 2))
    for n in (64, 256, 1024):
        yield f"sgemm/{n}", lambda n=n: sgemm(n)
    the_gpt = Gpt()
    yield "gpt/train_step/12", lambda: gpt_training(Gpt(), tokens(12, g), tokens(12, g))
    yield "gpt/forward/1", lambda: gpt_inference(the_gpt, tokens(1, g))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="target/bench-reference.json")
    ap.add_argument("--warm-up", type=float, default=1.0, help="seconds per benchmark")
    ap.add_argument("--measurement-time", type=float, default=3.0, help="seconds per benchmark")
    ap.add_argument("--only", default="", help="regex on workload/provider")
    args = ap.parse_args()
    only = re.compile(args.only)

    results = {}
    for name, make in workloads():
        if not any(only.search(f"{name}/{p}") for p in PROVIDERS):
            continue  # not built: its models, traces and sessions would take time for nothing
        calls = make()
        for provider, fn in calls.items():
            if not only.search(f"{name}/{provider}"):
                continue
            ns = median_ns(fn, args.warm_up, args.measurement_time)
            results.setdefault(name, {})[provider] = ns
            print(f"{name:20} {provider:18} {ns / 1e3:12.3f} µs", file=sys.stderr)

    meta = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "onnx": onnx.__version__,
        "onnxruntime": ort.__version__,
        "torch_threads": torch.get_num_threads(),
        "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "samples": SAMPLES,
        "warm_up_s": args.warm_up,
        "measurement_time_s": args.measurement_time,
        "unit": "ns per call, median over samples",
    }
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump({"meta": meta, "results": results}, f, indent=1)
    print(f"wrote {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
