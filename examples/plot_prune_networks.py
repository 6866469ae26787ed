"""
Pruning a PyTorch network with DAM gates
========================================

A :class:`~skdam.nn.DAMGate` after a hidden layer lets the network learn how many of
its units it needs. All units of the gate share one learnable scalar ``beta``; the
penalty ``alpha * gate_penalty(model)`` pushes it down, and the gates close one at a
time, the least preferred unit first, until closing one more would cost the task loss
more than ``alpha``. A closed gate outputs exactly zero and passes no gradient, so
:func:`skdam.nn.prune` can cut its units out of the network afterwards, with the
same outputs: there is one training stage and no fine-tuning (Bu et al., NeurIPS
2021).

We train and prune two classifiers:

1. a multilayer perceptron on scikit-learn's handwritten digits, with a
   :class:`~skdam.nn.DAMGate` after its hidden layer;
2. a small convolutional network on Fashion-MNIST, with a
   :class:`~skdam.nn.DAMGate2d` after each convolution (on the digits as 8x8 images
   when Fashion-MNIST is not installed).
"""

# %%
# Training with the gate penalty
# ------------------------------
# The loss is the cross-entropy plus ``alpha`` times the soft number of open units,
# so a unit stays only while it lowers the cross-entropy by more than ``alpha``.
# With Adam, ``beta`` moves by about one learning rate per step, and sweeping the
# gates from all open (``beta = 1``) to all closed (``beta = -5``) takes about
# ``6 / lr`` steps; we give ``beta`` a larger learning rate than the weights so that
# the gates settle within a few epochs. All randomness comes from one
# :class:`torch.Generator`.

import gzip
import math
import time
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch import nn

from skdam.nn import DAMGate, DAMGate2d, gate_penalty, prune

generator = torch.Generator().manual_seed(0)
# These networks are small: splitting each operation over threads costs more than it
# saves, and on a busy machine far more (over ten times the CPU time, measured on two
# shared cores).
# One thread here; the setting is restored at the end.
previous_threads = torch.get_num_threads()
torch.set_num_threads(1)


def initialize(model, generator):
    """PyTorch's default initialisation of every layer, drawn from ``generator``."""
    with torch.no_grad():
        for layer in model.modules():
            if isinstance(layer, (nn.Linear, nn.Conv2d)):
                nn.init.kaiming_uniform_(layer.weight, a=math.sqrt(5), generator=generator)
                bound = 1 / math.sqrt(layer.weight[0].numel())
                nn.init.uniform_(layer.bias, -bound, bound, generator=generator)
    return model


def train(
    model, inputs, targets, *, alpha, epochs, generator, batch_size=64, learning_rate=3e-3, beta_learning_rate=0.05
):
    """Minimise cross-entropy + ``alpha * gate_penalty(model)`` with Adam, in one stage."""
    betas = [parameter for name, parameter in model.named_parameters() if name.endswith("beta")]
    weights = [parameter for name, parameter in model.named_parameters() if not name.endswith("beta")]
    optimizer = torch.optim.Adam(
        [{"params": weights}, {"params": betas, "lr": beta_learning_rate}], lr=learning_rate
    )
    model.train()
    for _ in range(epochs):
        order = torch.randperm(len(inputs), generator=generator)
        for start in range(0, len(inputs), batch_size):
            batch = order[start : start + batch_size]
            loss = nn.functional.cross_entropy(model(inputs[batch]), targets[batch])
            loss = loss + alpha * gate_penalty(model)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    return model.eval()


@torch.no_grad()
def accuracy(model, inputs, targets, batch_size=2000):
    batches = [inputs[start : start + batch_size] for start in range(0, len(inputs), batch_size)]
    predictions = torch.cat([model(batch).argmax(1) for batch in batches])
    return float((predictions == targets).float().mean())


def n_parameters(model):
    return sum(parameter.numel() for parameter in model.parameters())


@torch.no_grad()
def n_multiply_adds(model, example):
    """Multiply-adds of the Linear and Conv2d layers for one input."""
    total = 0

    def count(layer, layer_inputs, output):
        nonlocal total
        per_output = layer.weight[0].numel()  # inputs feeding one output value
        total += output[0].numel() * per_output

    layers = [layer for layer in model.modules() if isinstance(layer, (nn.Linear, nn.Conv2d))]
    hooks = [layer.register_forward_hook(count) for layer in layers]
    model(example[:1])
    for hook in hooks:
        hook.remove()
    return total


def report(name, model, pruned, test_inputs, test_targets):
    """Print and return size and accuracy of ``model`` before and after pruning."""
    rows = {}
    for stage, network in (("before pruning", model), ("after pruning", pruned)):
        rows[stage] = {
            "parameters": n_parameters(network),
            "multiply-adds": n_multiply_adds(network, test_inputs),
            "accuracy": accuracy(network, test_inputs, test_targets),
        }
    print(f"{name:<15} {'parameters':>11} {'multiply-adds':>14} {'test accuracy':>14}")
    for stage, row in rows.items():
        print(f"{stage:<15} {row['parameters']:>11,} {row['multiply-adds']:>14,} {row['accuracy']:>14.2%}")
    return rows


start_time = time.perf_counter()

# %%
# A multilayer perceptron on the digits
# -------------------------------------
# 64 pixels, one hidden layer of 256 ReLU units gated by a ``DAMGate(256)``, and 10
# classes. The pixels are standardised with statistics from the training split.

digits_inputs, digits_targets = load_digits(return_X_y=True)
train_inputs, test_inputs, train_targets, test_targets = train_test_split(
    digits_inputs, digits_targets, test_size=0.25, stratify=digits_targets, random_state=0
)
mean, std = train_inputs.mean(0), train_inputs.std(0) + 1e-6
train_inputs = torch.tensor((train_inputs - mean) / std, dtype=torch.float32)
test_inputs = torch.tensor((test_inputs - mean) / std, dtype=torch.float32)
train_targets, test_targets = torch.tensor(train_targets), torch.tensor(test_targets)

mlp = nn.Sequential(nn.Linear(64, 256), nn.ReLU(), DAMGate(256), nn.Linear(256, 10))
train(initialize(mlp, generator), train_inputs, train_targets, alpha=1e-3, epochs=30, generator=generator)
pruned_mlp = prune(mlp)
print(f"open hidden units: {mlp[2].n_open()} of 256\n")
mlp_rows = report("MLP", mlp, pruned_mlp, test_inputs, test_targets)
print(pruned_mlp)

# %%
# ``prune`` cut the closed units out of both linear layers and put a
# :class:`~skdam.nn.PrunedGate` in place of the gate: the open units' gate values as a
# fixed scale. The pruned network computes what the gated one did, to float rounding:

torch.testing.assert_close(pruned_mlp(test_inputs), mlp(test_inputs))

# %%
# For reference, the same network trained without the penalty (``alpha=0``) keeps all
# 256 units:

reference = nn.Sequential(nn.Linear(64, 256), nn.ReLU(), DAMGate(256), nn.Linear(256, 10))
train(initialize(reference, generator), train_inputs, train_targets, alpha=0.0, epochs=30, generator=generator)
reference_accuracy = accuracy(reference, test_inputs, test_targets)
print(f"without the penalty: {reference[2].n_open()} open units, test accuracy {reference_accuracy:.2%}")

# %%
# The gate values after training: the units with the lowest offsets ``mu_i = 5 i /
# 256`` are closed, the rest scaled by ``tanh(mu_i + beta)``.

gate_values = mlp[2].gate_values().detach().numpy()
n_closed = 256 - mlp[2].n_open()
figure, axis = plt.subplots(figsize=(7, 2.6), layout="constrained")
axis.axvspan(-0.5, n_closed - 0.5, color="0.9")
axis.text(n_closed / 2, 0.5, f"{n_closed} closed units:\nremoved by prune", ha="center", va="center")
axis.bar(np.arange(256), gate_values, width=1.0, color="tab:blue")
axis.set(
    xlabel="hidden unit i (offset mu_i = 5 i / 256)",
    ylabel="gate value",
    title=f"MLP hidden layer: {mlp[2].n_open()} of 256 gates open",
    xlim=(-0.5, 255.5),
    ylim=(0, 1),
)

# %%
# A small CNN on Fashion-MNIST
# ----------------------------
# Two convolutions, each followed by batch normalisation, ReLU, a ``DAMGate2d`` over
# its channels and 2x2 max pooling, then a gated hidden layer. ``prune`` removes
# closed channels from the convolution before the gate (and from its batch
# normalisation) and from the input of the next layer; through the ``Flatten`` each
# channel owns ``H * W`` consecutive inputs of the ``Linear``.
#
# Fashion-MNIST comes from the Debian package ``dataset-fashion-mnist``; the IDX files
# there are gzipped. To keep the example quick we train on 6,000 of the 60,000
# training images and test on all 10,000 test images.

FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")


def read_idx(path):
    """Array from an IDX file (the MNIST format), gzipped or not."""
    path = Path(path)
    if not path.exists():
        path = path.with_name(path.name + ".gz")
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as file:
        data = file.read()
    # Magic number: two zero bytes, a type code (0x08: unsigned byte), the rank; then
    # one big-endian 32-bit size per dimension.
    if data[:3] != b"\x00\x00\x08":
        raise ValueError(f"{path} is not an unsigned-byte IDX file.")
    rank = data[3]
    shape = tuple(int.from_bytes(data[4 + 4 * axis : 8 + 4 * axis], "big") for axis in range(rank))
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * rank).reshape(shape)


if (FASHION_MNIST / "train-images-idx3-ubyte.gz").exists() or (FASHION_MNIST / "train-images-idx3-ubyte").exists():
    dataset = "Fashion-MNIST"
    images = read_idx(FASHION_MNIST / "train-images-idx3-ubyte")
    labels = read_idx(FASHION_MNIST / "train-labels-idx1-ubyte")
    subset = torch.randperm(len(images), generator=generator)[:6000].numpy()
    train_images, train_labels = images[subset], labels[subset]
    test_images = read_idx(FASHION_MNIST / "t10k-images-idx3-ubyte")
    test_labels = read_idx(FASHION_MNIST / "t10k-labels-idx1-ubyte")
    cnn_epochs = 8
else:
    dataset = "digits (8x8)"
    print(
        f"Note: Fashion-MNIST is not installed in {FASHION_MNIST} (Debian package "
        "dataset-fashion-mnist); the CNN uses the digits as 8x8 images instead."
    )
    images = digits_inputs.reshape(-1, 8, 8)
    train_images, test_images, train_labels, test_labels = train_test_split(
        images, digits_targets, test_size=0.25, stratify=digits_targets, random_state=0
    )
    cnn_epochs = 30

train_images = torch.tensor(train_images, dtype=torch.float32)[:, None]
test_images = torch.tensor(test_images, dtype=torch.float32)[:, None]
pixel_mean, pixel_std = train_images.mean(), train_images.std()
train_images, test_images = (train_images - pixel_mean) / pixel_std, (test_images - pixel_mean) / pixel_std
train_labels = torch.tensor(train_labels.astype(np.int64))
test_labels = torch.tensor(test_labels.astype(np.int64))
side = train_images.shape[-1] // 4  # image side after two 2x2 poolings

cnn = nn.Sequential(
    nn.Conv2d(1, 16, 3, padding=1),
    nn.BatchNorm2d(16),
    nn.ReLU(),
    DAMGate2d(16),
    nn.MaxPool2d(2),
    nn.Conv2d(16, 32, 3, padding=1),
    nn.BatchNorm2d(32),
    nn.ReLU(),
    DAMGate2d(32),
    nn.MaxPool2d(2),
    nn.Flatten(),
    nn.Linear(32 * side * side, 64),
    nn.ReLU(),
    DAMGate(64),
    nn.Linear(64, 10),
)
train(initialize(cnn, generator), train_images, train_labels, alpha=1e-2, epochs=cnn_epochs, generator=generator)
pruned_cnn = prune(cnn)
cnn_gates = [layer for layer in cnn if isinstance(layer, DAMGate)]
print(f"{dataset}: open units per gate: " + ", ".join(f"{gate.n_open()} of {gate.width}" for gate in cnn_gates) + "\n")
cnn_rows = report("CNN", cnn, pruned_cnn, test_images, test_labels)
print(pruned_cnn)
torch.testing.assert_close(pruned_cnn(test_images[:500]), cnn(test_images[:500]))

# %%
# What pruning saved
# ------------------
# Both pruned networks are smaller and cheaper and classify the test set exactly as
# before: the accuracy does not move, because the outputs do not.

for name, rows in (("MLP", mlp_rows), ("CNN", cnn_rows)):
    before, after = rows["before pruning"], rows["after pruning"]
    change = 100 * (after["accuracy"] - before["accuracy"])
    print(
        f"{name}: {after['parameters'] / before['parameters']:.1%} of the parameters, "
        f"{after['multiply-adds'] / before['multiply-adds']:.1%} of the multiply-adds, "
        f"accuracy change {change:+.2f} points"
    )
    assert after["parameters"] < before["parameters"] and abs(change) <= 0.5

# %%
# The widths of the gated layers, and the size and cost of each network, before and
# after pruning (the test accuracy, the same for both, is under each network's name).

figure, axes = plt.subplots(1, 3, figsize=(11, 3.6), layout="constrained", width_ratios=(1.3, 1, 1))
gates = {"MLP\nhidden": mlp[2], "CNN\nconv 1": cnn_gates[0], "CNN\nconv 2": cnn_gates[1], "CNN\nhidden": cnn_gates[2]}
positions = np.arange(len(gates))
for offset, values, stage, color in (
    (-0.2, [gate.width for gate in gates.values()], "before pruning", "tab:gray"),
    (0.2, [gate.n_open() for gate in gates.values()], "after pruning", "tab:blue"),
):
    axes[0].bar_label(axes[0].bar(positions + offset, values, width=0.4, color=color, label=stage), fontsize=8)
axes[0].set(xticks=positions, xticklabels=list(gates), yscale="log", title="units or channels per gated layer")
axes[0].margins(y=0.15)
networks = [
    f"MLP, digits\n{mlp_rows['after pruning']['accuracy']:.1%} accuracy",
    f"CNN, {dataset}\n{cnn_rows['after pruning']['accuracy']:.1%} accuracy",
]
positions = np.arange(len(networks))
for axis, quantity in zip(axes[1:], ("parameters", "multiply-adds")):
    for offset, stage, color in ((-0.2, "before pruning", "tab:gray"), (0.2, "after pruning", "tab:blue")):
        values = [mlp_rows[stage][quantity], cnn_rows[stage][quantity]]
        bars = axis.bar(positions + offset, values, width=0.4, color=color, label=stage)
        axis.bar_label(bars, labels=[f"{value:,}" for value in values], fontsize=8)
    axis.set(xticks=positions, xticklabels=networks, yscale="log", title=quantity)
    axis.margins(y=0.15)
axes[0].legend(loc="upper right")
figure.suptitle("Same accuracy before and after pruning, with no fine-tuning")

print(f"\nexample ran in {time.perf_counter() - start_time:.0f} s")
torch.set_num_threads(previous_threads)
plt.show()
