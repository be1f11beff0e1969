"""The four MNIST IDX files of a folder (gzipped or not) as PyTorch tensors, pixels scaled to
[0, 1] as nanograd's `Mnist::load` does: images [n, 1, 28, 28] float32, labels [n] int64."""

import gzip
import os
import struct

import numpy as np
import torch


def read_idx(path):
    """An IDX file of unsigned bytes as a numpy array; `path` or `path.gz`."""
    if not os.path.exists(path):
        path += ".gz"
    with open(path, "rb") as f:
        raw = f.read()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    zero, code, ndim = struct.unpack(">HBB", raw[:4])
    if zero != 0 or code != 0x08:
        raise ValueError(f"{path}: not an IDX file of unsigned bytes")
    dims = struct.unpack(f">{ndim}I", raw[4 : 4 + 4 * ndim])
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    return data.reshape(dims)


def load_split(folder, images, labels):
    x = torch.from_numpy(read_idx(os.path.join(folder, images)).astype(np.float32) / 255.0)
    y = torch.from_numpy(read_idx(os.path.join(folder, labels)).astype(np.int64))
    return x.reshape(-1, 1, 28, 28), y


def load_mnist(folder):
    """((train images, train labels), (test images, test labels))."""
    return (
        load_split(folder, "train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
        load_split(folder, "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
    )
