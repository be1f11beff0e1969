"""PyTorch reference for `cargo run --release --example mnist_cnn`: the same recipe on the same
data, to compare accuracy and training time on this machine.

conv 1->16 (3x3, padding 1) - batch norm - relu - max pool 2, conv 16->32 - batch norm - relu
- max pool 2, dense 1568->10; nanograd's initialisation (He normal, fan-in, for the
convolutions, Xavier uniform for the dense layer, zero biases, batch norm weight 1 and bias
0); softmax cross-entropy (mean over the batch); SGD lr 0.05, momentum 0.9, the learning rate
ramped up linearly over the first epoch's steps as in the Rust example; mini-batches of 64
from a seeded shuffle, 10 epochs, f32, one thread; evaluation mode for each test pass.
Training time covers the 10 epochs' training loops only (not data loading, not the test pass).

Run from the repository root: `python3 examples/reference/mnist_cnn.py [MNIST_DIR]`.
"""

import sys
import time

import torch
from torch import nn

from mnist import load_mnist

EPOCHS = 10
BATCH = 64
LEARNING_RATE = 0.05


def warmup(step, steps):
    """Linear ramp up to LEARNING_RATE over the first `steps` steps, then constant."""
    return LEARNING_RATE * min(1.0, (step + 1) / steps)


class Cnn(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 16, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(16)
        self.conv2 = nn.Conv2d(16, 32, 3, padding=1)
        self.bn2 = nn.BatchNorm2d(32)
        self.fc = nn.Linear(32 * 7 * 7, 10)
        for conv in (self.conv1, self.conv2):
            nn.init.kaiming_normal_(conv.weight, nonlinearity="relu")
            nn.init.zeros_(conv.bias)
        nn.init.xavier_uniform_(self.fc.weight)
        nn.init.zeros_(self.fc.bias)

    def forward(self, x):
        h = nn.functional.max_pool2d(torch.relu(self.bn1(self.conv1(x))), 2)
        h = nn.functional.max_pool2d(torch.relu(self.bn2(self.conv2(h))), 2)
        return self.fc(h.flatten(1))


def main():
    torch.set_num_threads(1)
    torch.manual_seed(0)
    data_dir = sys.argv[1] if len(sys.argv) > 1 else "data/mnist-10k"
    (x_train, y_train), (x_test, y_test) = load_mnist(data_dir)
    print(f"MNIST from {data_dir}: {len(x_train)} training and {len(x_test)} test digits")

    model = Cnn()
    opt = torch.optim.SGD(model.parameters(), lr=LEARNING_RATE, momentum=0.9)
    loss_fn = nn.CrossEntropyLoss()
    shuffle = torch.Generator().manual_seed(1)
    n = len(x_train)
    warmup_steps = (n + BATCH - 1) // BATCH
    step = 0
    training_time = 0.0
    for epoch in range(1, EPOCHS + 1):
        model.train()
        start = time.perf_counter()
        loss_sum = 0.0
        perm = torch.randperm(n, generator=shuffle)
        for i in range(0, n, BATCH):
            idx = perm[i : i + BATCH]
            x, y = x_train[idx], y_train[idx]
            for group in opt.param_groups:
                group["lr"] = warmup(step, warmup_steps)
            step += 1
            loss = loss_fn(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            loss_sum += loss.item() * len(idx)
        elapsed = time.perf_counter() - start
        training_time += elapsed

        model.eval()
        with torch.no_grad():
            correct = sum(
                (model(x_test[i : i + 250]).argmax(1) == y_test[i : i + 250]).sum().item()
                for i in range(0, len(x_test), 250)
            )
        print(
            f"epoch {epoch:2}/{EPOCHS}: loss {loss_sum / n:.4f}, "
            f"test accuracy {100 * correct / len(x_test):5.2f}%  ({elapsed:.2f} s)"
        )
    print(
        f"training time, {EPOCHS} epochs: {training_time:.2f} s "
        f"({training_time / EPOCHS:.2f} s per epoch)"
    )


if __name__ == "__main__":
    main()
