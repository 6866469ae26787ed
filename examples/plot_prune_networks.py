"""
Pruning a residual network with DAM gates
=========================================

A :class:`~skdam.nn.DAMGate2d` after a batch normalisation lets a network learn how
many of that layer's channels it needs. All channels of a gate share one learnable
scalar ``beta``; a penalty pushes it down and the gates close one at a time, the
least preferred channel first, until closing one more would cost the task loss more
than the penalty buys. A closed gate outputs exactly zero and passes no gradient,
so :func:`skdam.nn.prune` can cut its channels out of the network afterwards with
the same outputs: one training stage, no fine-tuning (Bu et al., NeurIPS 2021).

:func:`~skdam.nn.prune` works through Torch-Pruning's dependency graph
(``pip install skdam[prune]``), so it handles what real networks contain: residual
additions, ``Flatten``, grouped convolutions. A closed channel is not always
removable, though. We train a small residual network with a gate after *every*
batch normalisation and look at which closed channels ``prune`` removed, and why
the others had to stay.

Fashion-MNIST comes from the Debian package ``dataset-fashion-mnist``; to keep the
example quick we train on 6,000 of its 60,000 training images, shrunk to 14x14, and
test on the 10,000 test images (the digits of scikit-learn stand in when the package
is not installed).
"""

# %%
# The network and its gates
# -------------------------
# A stem convolution, two residual blocks on a 16-channel stream, and a block that
# widens it to 32 channels with a 1x1 convolution on its shortcut. Each block computes
# ``relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x))``.
# :func:`~skdam.nn.place_gates` puts a gate after each batch normalisation: after
# ``bn1`` the gate sits *inside* a block, on channels only ``conv2`` reads; after
# ``bn2``, the stem's and the shortcut's batch normalisation it sits on the residual
# *stream*, channels that every block of the stage adds into.

import gzip
import time
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch import nn

from skdam.nn import DAMGate, beta_penalty, freeze_gates, place_gates, prune

generator = torch.Generator().manual_seed(0)
# Small networks: splitting each operation over threads costs more than it saves,
# and on a busy machine far more. One thread here; restored at the end.
previous_threads = torch.get_num_threads()
torch.set_num_threads(1)
start_time = time.perf_counter()


class Block(nn.Module):
    def __init__(self, in_channels, channels, stride=1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, channels, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)
        self.shortcut = nn.Identity()
        if stride != 1 or in_channels != channels:
            self.shortcut = nn.Sequential(nn.Conv2d(in_channels, channels, 1, stride, bias=False), nn.BatchNorm2d(channels))

    def forward(self, x):
        out = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(self.bn2(self.conv2(out)) + self.shortcut(x))


def make_network():
    with torch.random.fork_rng():
        torch.manual_seed(int(torch.randint(2**31, (1,), generator=generator)))
        return nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1, bias=False),
            nn.BatchNorm2d(16),
            nn.ReLU(),
            Block(16, 16),
            Block(16, 16),
            Block(16, 32, stride=2),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Linear(32, 10),
        )


network = make_network()
gates = place_gates(network)  # after every BatchNorm2d
print(list(gates))

# %%
# Data
# ----

FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")


def read_idx(path):
    """Array from an IDX file (the MNIST format), gzipped or not."""
    path = Path(path)
    if not path.exists():
        path = path.with_name(path.name + ".gz")
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as file:
        data = file.read()
    # Two zero bytes, a type code (0x08: unsigned byte), the rank; then one
    # big-endian 32-bit size per dimension.
    if data[:3] != b"\x00\x00\x08":
        raise ValueError(f"{path} is not an unsigned-byte IDX file.")
    rank = data[3]
    shape = tuple(int.from_bytes(data[4 + 4 * axis : 8 + 4 * axis], "big") for axis in range(rank))
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * rank).reshape(shape)


def shrink(images):
    """uint8 28x28 images -> float 14x14 in [-1, 1]."""
    images = torch.tensor(images, dtype=torch.float32)[:, None] / 127.5 - 1
    return nn.functional.avg_pool2d(images, 2)


if (FASHION_MNIST / "train-images-idx3-ubyte.gz").exists() or (FASHION_MNIST / "train-images-idx3-ubyte").exists():
    dataset = "Fashion-MNIST"
    images = read_idx(FASHION_MNIST / "train-images-idx3-ubyte")
    subset = torch.randperm(len(images), generator=generator)[:6000].numpy()
    train_images = shrink(images[subset])
    train_labels = torch.tensor(read_idx(FASHION_MNIST / "train-labels-idx1-ubyte")[subset].astype(np.int64))
    test_images = shrink(read_idx(FASHION_MNIST / "t10k-images-idx3-ubyte"))
    test_labels = torch.tensor(read_idx(FASHION_MNIST / "t10k-labels-idx1-ubyte").astype(np.int64))
else:
    dataset = "digits (8x8)"
    print(f"Note: Fashion-MNIST is not installed in {FASHION_MNIST}; using the digits.")
    digits, digit_labels = load_digits(return_X_y=True)
    train_x, test_x, train_y, test_y = train_test_split(digits, digit_labels, test_size=0.25, random_state=0)
    train_images = torch.tensor(train_x.reshape(-1, 1, 8, 8) / 8 - 1, dtype=torch.float32)
    test_images = torch.tensor(test_x.reshape(-1, 1, 8, 8) / 8 - 1, dtype=torch.float32)
    train_labels, test_labels = torch.tensor(train_y), torch.tensor(test_y)

# %%
# Training in one stage
# ---------------------
# The authors' recipe, shortened: SGD, ``beta`` frozen for a cold start
# (:func:`~skdam.nn.freeze_gates`; 20 of their 200 epochs, one of our eight), then
# ``alpha * beta_penalty(model)``, the mean of ``clamp(beta, min=-5)`` over the
# gates, added to the cross-entropy. The clamp stops pushing a gate once all its
# channels are closed.


def train(model, *, alpha, epochs=8, cold_start_epochs=1, batch_size=128, learning_rate=0.05):
    betas = [parameter for name, parameter in model.named_parameters() if name.endswith("beta")]
    weights = [parameter for name, parameter in model.named_parameters() if not name.endswith("beta")]
    optimizer = torch.optim.SGD(
        [{"params": weights, "weight_decay": 5e-4}, {"params": betas}], lr=learning_rate, momentum=0.9
    )
    steps = epochs * -(-len(train_images) // batch_size)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, steps)
    model.train()
    for epoch in range(epochs):
        freeze_gates(model, frozen=epoch < cold_start_epochs)
        order = torch.randperm(len(train_images), generator=generator)
        for first in range(0, len(order), batch_size):
            batch = order[first : first + batch_size]
            loss = nn.functional.cross_entropy(model(train_images[batch]), train_labels[batch])
            if epoch >= cold_start_epochs:
                loss = loss + alpha * beta_penalty(model)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
    return model.eval()


@torch.no_grad()
def accuracy(model):
    predictions = torch.cat([model(test_images[i : i + 2000]).argmax(1) for i in range(0, len(test_images), 2000)])
    return float((predictions == test_labels).float().mean())


train(network, alpha=0.4)
for name, gate in gates.items():
    print(f"{name:>12}: {gate.n_open():2d} of {gate.width} channels open (beta = {gate.beta.item():+.2f})")

# %%
# Pruning
# -------
# :func:`~skdam.nn.prune` traces the network on one example, asks Torch-Pruning which
# layers share each gate's channels, and removes the closed channels that may go.
# It returns a pruned copy and checks that it computes what the gated network did.

example = test_images[:1]
pruned = prune(network, example)
torch.testing.assert_close(pruned(test_images[:500]), network(test_images[:500]))
pruned_gates = {name: module for name, module in pruned.named_modules() if isinstance(module, DAMGate)}


def n_parameters(model):
    return sum(parameter.numel() for parameter in model.parameters())


def n_multiply_adds(model):
    """Multiply-adds of the convolutions and Linear layers for one input."""
    total = 0

    def count(layer, layer_inputs, output):
        nonlocal total
        total += output[0].numel() * layer.weight[0].numel()

    layers = [layer for layer in model.modules() if isinstance(layer, (nn.Linear, nn.Conv2d))]
    hooks = [layer.register_forward_hook(count) for layer in layers]
    with torch.no_grad():
        model(example)
    for hook in hooks:
        hook.remove()
    return total


before, after = n_multiply_adds(network), n_multiply_adds(pruned)
network_accuracy, pruned_accuracy = accuracy(network), accuracy(pruned)
print(f"{dataset}: test accuracy {network_accuracy:.2%} before pruning, {pruned_accuracy:.2%} after")
print(f"parameters {n_parameters(network):,} -> {n_parameters(pruned):,}; multiply-adds {before:,} -> {after:,}")

# %%
# Which closed channels went, and why
# -----------------------------------
# - **Inside a block** (after ``bn1``), a closed channel is read only by ``conv2``,
#   which receives zeros from it: ``conv1``'s filter, the batch-normalisation entry, the
#   gate entry and ``conv2``'s input slice all go.
# - **On the residual stream**, a channel is the sum of what the stem (or the
#   shortcut) and every block of the stage write into it. It may go only when
#   *every* writer's gate closes it; a channel that one writer still writes must stay
#   everywhere on the stream, in every gate that touches it, even where that gate
#   is closed. (Torch-Pruning alone would remove it, and change the outputs.) Gates
#   on the stream also close only the channels that all of them agree on, so
#   usually fewer go than inside the blocks.
# - A batch normalisation *after* a closed gate would turn its zeros into a
#   constant: gate after the normalisation, as :func:`~skdam.nn.place_gates` does.
#
# Grey: the channels the gate kept open; blue: closed and removed; orange: closed but
# kept, because another writer of the stream still uses the channel.

names = list(gates)
n_open = np.array([gates[name].n_open() for name in names])
width = np.array([gates[name].width for name in names])
kept = np.array([pruned_gates[f"{name}.1"].width for name in names])
positions = np.arange(len(names))
figure, axis = plt.subplots(figsize=(8, 3.4), layout="constrained")
axis.bar(positions, n_open, color="0.6", label="open")
axis.bar(positions, kept - n_open, bottom=n_open, color="tab:orange", label="closed, kept (shared stream)")
axis.bar(positions, width - kept, bottom=kept, color="tab:blue", label="closed, removed")
axis.set_xticks(positions, [name.replace(".", "\n", 1) for name in names], fontsize=8)
axis.set(ylabel="channels", title=f"Each gate's channels after prune ({dataset})")
axis.legend(fontsize=8)

# %%
# The pruned network is a plain torch model
# -----------------------------------------
# Its gates are still DAM gates, holding the offsets of the channels they kept: the
# open count and the penalty are unchanged, so training could go on (with a new
# optimiser: the pruned layers have new parameter tensors). Save it whole, with its
# architecture, and load it back with ``weights_only=False`` (only for files you
# trust):

import io  # noqa: E402

buffer = io.BytesIO()
torch.save(pruned, buffer)
buffer.seek(0)
loaded = torch.load(buffer, weights_only=False)
torch.testing.assert_close(loaded(test_images[:100]), pruned(test_images[:100]))
assert all(pruned_gates[name].n_open() == gates[name[:-2]].n_open() for name in pruned_gates)

print(f"\nexample ran in {time.perf_counter() - start_time:.0f} s")
torch.set_num_threads(previous_threads)
plt.show()
