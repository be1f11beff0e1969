"""PyTorch reference for `cargo run --release --example mnist_mlp`: the same recipe on the same
data, to compare accuracy and training time on this machine.

784-128-64-10 perceptron with ReLU, Xavier-uniform weights and zero biases (nanograd's
Dense init), softmax cross-entropy (mean over the batch), Adam lr 1e-3 (PyTorch defaults
otherwise, as nanograd's Adam), mini-batches of 64 from a seeded shuffle, 15 epochs, f32,
one thread. The running training accuracy comes from each batch's logits before the step.
Training time covers the 15 epochs' training loops only (not data loading, not the test pass).

Run from the repository root: `python3 examples/reference/mnist_mlp.py [MNIST_DIR]`.
"""

import sys
import time

import torch
from torch import nn

from mnist import load_mnist

EPOCHS = 15
BATCH = 64


class Mlp(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(784, 128)
        self.fc2 = nn.Linear(128, 64)
        self.fc3 = nn.Linear(64, 10)
        for layer in (self.fc1, self.fc2, self.fc3):
            nn.init.xavier_uniform_(layer.weight)
            nn.init.zeros_(layer.bias)

    def forward(self, x):
        return self.fc3(torch.relu(self.fc2(torch.relu(self.fc1(x)))))


def main():
    torch.set_num_threads(1)
    torch.manual_seed(0)
    data_dir = sys.argv[1] if len(sys.argv) > 1 else "data/mnist-10k"
    (x_train, y_train), (x_test, y_test) = load_mnist(data_dir)
    x_train = x_train.reshape(-1, 784)
    x_test = x_test.reshape(-1, 784)
    print(f"MNIST from {data_dir}: {len(x_train)} training and {len(x_test)} test digits")

    model = Mlp()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = nn.CrossEntropyLoss()
    shuffle = torch.Generator().manual_seed(1)
    n = len(x_train)
    training_time = 0.0
    for epoch in range(1, EPOCHS + 1):
        model.train()
        start = time.perf_counter()
        loss_sum, correct = 0.0, 0
        perm = torch.randperm(n, generator=shuffle)
        for i in range(0, n, BATCH):
            idx = perm[i : i + BATCH]
            x, y = x_train[idx], y_train[idx]
            logits = model(x)
            loss = loss_fn(logits, y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            loss_sum += loss.item() * len(idx)
            correct += (logits.argmax(1) == y).sum().item()
        elapsed = time.perf_counter() - start
        training_time += elapsed

        model.eval()
        with torch.no_grad():
            test_acc = (model(x_test).argmax(1) == y_test).float().mean().item()
        print(
            f"epoch {epoch:2}/{EPOCHS}: loss {loss_sum / n:.4f}, "
            f"train accuracy {100 * correct / n:5.2f}%, test accuracy {100 * test_acc:5.2f}%"
            f"  ({elapsed:.2f} s)"
        )
    print(
        f"training time, {EPOCHS} epochs: {training_time:.2f} s "
        f"({1e3 * training_time / EPOCHS:.1f} ms per epoch)"
    )


if __name__ == "__main__":
    main()
