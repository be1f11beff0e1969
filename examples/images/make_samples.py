"""Writes the sample images of the `infer` example: the first test digit of a few classes from
data/mnist-10k, as binary PGM (P5) 28x28 files named after their test index and label.

Run from the repository root: `python3 examples/images/make_samples.py`.
"""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "reference"))
from mnist import read_idx  # noqa: E402

DIGITS = [0, 3, 7]


def main():
    images = read_idx("data/mnist-10k/t10k-images-idx3-ubyte")
    labels = read_idx("data/mnist-10k/t10k-labels-idx1-ubyte")
    for digit in DIGITS:
        index = int((labels == digit).nonzero()[0][0])
        path = os.path.join(os.path.dirname(__file__), f"t10k-{index:04}-digit-{digit}.pgm")
        with open(path, "wb") as f:
            f.write(b"P5\n# MNIST test image %d, label %d\n28 28\n255\n" % (index, digit))
            f.write(images[index].tobytes())
        print(path)


if __name__ == "__main__":
    main()
