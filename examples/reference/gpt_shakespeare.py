"""PyTorch reference for nanograd's character-level GPT example: the same model and recipe on
the same text, to compare validation loss and training time on this machine.

Data: data/shakespeare/input.txt; every character is a token (the vocabulary is the sorted
set of the file's characters, 75 of them); the first 90 % of the characters train, the last
10 % validate.

Model (f32, no dropout, no weight tying), with PyTorch's default initialisation:
    wte      token embedding, nn.Embedding(vocab, 128)
    wpe      position embedding, a [64, 128] parameter drawn from N(0, 1)
    h.0..3   four blocks, each
                 x = x + attn(ln_1(x))                      causal self-attention, 4 heads
                 x = x + proj(gelu(fc(ln_2(x))))            128 -> 512 -> 128, tanh GELU
             ln_1, ln_2 nn.LayerNorm(128); attn nn.MultiheadAttention(128, 4, bias=True,
             batch_first=True) with a boolean mask above the diagonal; fc, proj nn.Linear
    ln_f     nn.LayerNorm(128)
    lm_head  nn.Linear(128, vocab, bias=False)
820,736 parameters; the names are those of the state dict nanograd's model uses.

Recipe: batches of 12 random windows of 64 characters (and the next character of each as the
target), mean cross-entropy over all 12 x 64 positions; AdamW lr 1e-3, betas (0.9, 0.99),
eps 1e-8, weight decay 0.1 on the parameters with 2 or more dimensions only (two parameter
groups; nanograd's `AdamW::new(lr).weight_decay(0.1).decay_matrices_only()`); gradients
clipped to norm 1.0; learning rate per step s (from 0) of STEPS:
    s < 100:  1e-3 * (s + 1) / 101
    else:     1e-4 + (1e-3 - 1e-4) * (1 + cos(pi * (s - 100) / (STEPS - 100))) / 2
which is nanograd's `LinearWarmup { warmup: 100, then: CosineAnnealing { base: 1e-3,
min: 1e-4, total: STEPS - 100 } }`. 2000 steps by default; one thread; seeded (model 1337,
training windows 1, validation windows 2).

Validation loss: the mean cross-entropy over 20 fixed batches of 12 windows of the validation
text (240 windows, 15,360 predicted characters), drawn once; measured before training, every
250 steps and at the end, in evaluation mode. Training time covers the training steps only
(not the validation passes, data loading or sampling).

Run from the repository root: `python3 examples/reference/gpt_shakespeare.py [--steps N]
[--sample] [--data FILE]`; `--sample` prints 500 characters generated after training.
"""

import argparse
import math
import time

import torch
import torch.nn.functional as F
from torch import nn

CTX = 64
EMB = 128
HEADS = 4
FF = 512
LAYERS = 4
BATCH = 12
LEARNING_RATE = 1e-3
MIN_LEARNING_RATE = 1e-4
WARMUP = 100
WEIGHT_DECAY = 0.1
EVAL_EVERY = 250
EVAL_BATCHES = 20
SAMPLE_CHARS = 500


class Block(nn.Module):
    """Pre-norm transformer block: causal self-attention, then a tanh-GELU MLP."""

    def __init__(self, emb, heads, ff):
        super().__init__()
        self.ln_1 = nn.LayerNorm(emb)
        self.attn = nn.MultiheadAttention(emb, heads, bias=True, batch_first=True)
        self.ln_2 = nn.LayerNorm(emb)
        self.fc = nn.Linear(emb, ff)
        self.proj = nn.Linear(ff, emb)

    def forward(self, x, mask):
        h = self.ln_1(x)
        x = x + self.attn(h, h, h, attn_mask=mask, need_weights=False)[0]
        return x + self.proj(F.gelu(self.fc(self.ln_2(x)), approximate="tanh"))


class Gpt(nn.Module):
    """Token and position embeddings, `layers` blocks, a final LayerNorm, a linear head."""

    def __init__(self, vocab, ctx=CTX, emb=EMB, heads=HEADS, ff=FF, layers=LAYERS):
        super().__init__()
        self.wte = nn.Embedding(vocab, emb)
        self.wpe = nn.Parameter(torch.randn(ctx, emb))
        self.h = nn.ModuleList(Block(emb, heads, ff) for _ in range(layers))
        self.ln_f = nn.LayerNorm(emb)
        self.lm_head = nn.Linear(emb, vocab, bias=False)

    def forward(self, idx):
        """Logits [B, T, vocab] of the next token at every position of `idx` [B, T]."""
        t = idx.shape[1]
        x = self.wte(idx) + self.wpe[:t]
        # True above the diagonal: position i does not attend to positions after it
        mask = torch.triu(torch.ones(t, t), 1).bool()
        for block in self.h:
            x = block(x, mask)
        return self.lm_head(self.ln_f(x))


def loss_of(model, x, y):
    """Mean cross-entropy over every position of the batch."""
    logits = model(x)
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))


def windows(data, generator, batch=BATCH):
    """`batch` random windows of CTX tokens and their targets (the same windows shifted by one)."""
    starts = torch.randint(len(data) - CTX, (batch,), generator=generator)
    x = torch.stack([data[i : i + CTX] for i in starts])
    y = torch.stack([data[i + 1 : i + 1 + CTX] for i in starts])
    return x, y


def learning_rate(step, steps):
    """Linear warm-up over WARMUP steps, then half a cosine down to MIN_LEARNING_RATE."""
    if step < WARMUP:
        return LEARNING_RATE * (step + 1) / (WARMUP + 1)
    phase = math.pi * (step - WARMUP) / max(1, steps - WARMUP)
    return MIN_LEARNING_RATE + (LEARNING_RATE - MIN_LEARNING_RATE) * (1 + math.cos(phase)) / 2


def evaluate(model, batches):
    model.eval()
    with torch.no_grad():
        loss = sum(loss_of(model, x, y).item() for x, y in batches) / len(batches)
    model.train()
    return loss


def sample(model, start, n, generator):
    """`n` tokens drawn one by one from the model's softmax (temperature 1), after `start`."""
    model.eval()
    idx = torch.tensor([[start]])
    with torch.no_grad():
        for _ in range(n):
            logits = model(idx[:, -CTX:])[0, -1]
            probs = torch.softmax(logits, dim=-1)
            nxt = torch.multinomial(probs, 1, generator=generator)
            idx = torch.cat([idx, nxt.view(1, 1)], dim=1)
    return idx[0, 1:].tolist()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=2000, help="training steps (default 2000)")
    parser.add_argument("--sample", action="store_true", help=f"print {SAMPLE_CHARS} generated characters")
    parser.add_argument("--data", default="data/shakespeare/input.txt", help="the text file")
    args = parser.parse_args()
    steps = args.steps

    torch.set_num_threads(1)
    torch.manual_seed(1337)
    with open(args.data, encoding="utf-8") as f:
        text = f.read()
    chars = sorted(set(text))
    stoi = {c: i for i, c in enumerate(chars)}
    data = torch.tensor([stoi[c] for c in text], dtype=torch.long)
    n_train = int(0.9 * len(data))
    train, val = data[:n_train], data[n_train:]
    print(
        f"{args.data}: {len(text):,} characters, vocabulary {len(chars)}, "
        f"{len(train):,} for training and {len(val):,} for validation"
    )

    model = Gpt(len(chars))
    n_params = sum(p.numel() for p in model.parameters())
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": WEIGHT_DECAY}, {"params": no_decay, "weight_decay": 0.0}],
        lr=LEARNING_RATE,
        betas=(0.9, 0.99),
    )
    print(
        f"GPT: {LAYERS} blocks, {HEADS} heads, width {EMB}, context {CTX}: {n_params:,} parameters "
        f"({sum(p.numel() for p in decay):,} in {len(decay)} decayed matrices)"
    )

    val_gen = torch.Generator().manual_seed(2)
    val_batches = [windows(val, val_gen) for _ in range(EVAL_BATCHES)]
    train_gen = torch.Generator().manual_seed(1)

    print(f"step {0:5}/{steps}: validation loss {evaluate(model, val_batches):.4f}")
    training_time = 0.0
    loss_sum, loss_count = 0.0, 0
    for step in range(steps):
        start = time.perf_counter()
        lr = learning_rate(step, steps)
        for group in opt.param_groups:
            group["lr"] = lr
        x, y = windows(train, train_gen)
        loss = loss_of(model, x, y)
        opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        loss_value = loss.item()
        training_time += time.perf_counter() - start
        loss_sum += loss_value
        loss_count += 1
        done = step + 1
        if done % EVAL_EVERY == 0 or done == steps:
            print(
                f"step {done:5}/{steps}: training loss {loss_sum / loss_count:.4f} (mean of the last "
                f"{loss_count} steps), validation loss {evaluate(model, val_batches):.4f}, lr {lr:.2e}"
                f"  ({training_time:.1f} s)"
            )
            loss_sum, loss_count = 0.0, 0

    final = evaluate(model, val_batches)
    print(
        f"training time, {steps} steps: {training_time:.2f} s "
        f"({1e3 * training_time / max(1, steps):.1f} ms per step)"
    )
    print(f"final validation loss: {final:.4f}")
    if args.sample:
        tokens = sample(model, stoi["\n"], SAMPLE_CHARS, torch.Generator().manual_seed(3))
        print("sample:\n" + "".join(chars[t] for t in tokens))


if __name__ == "__main__":
    main()
