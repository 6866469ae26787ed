"""Structured pruning of a residual network: DAM in one stage against network slimming.

A CIFAR-style ResNet-20 (three stages of three basic blocks, 16/32/64 channels,
1x1 convolution shortcuts where the shape changes) on Fashion-MNIST, with the
images average-pooled to 14x14 and a seeded subset of the training images, so that
the whole script takes about 20 CPU-minutes (one thread), well under 45 minutes of
wall-clock time on 2 busy cores:

1. the unpruned network, trained ``EPOCHS`` epochs;
2. DAM in one stage (the authors' recipe, shortened): ``place_gates`` puts a
   ``DAMGate2d`` after the first batch normalisation of every block (the block's
   internal channels), ``beta`` frozen for ``COLD_START_EPOCHS``, then
   ``alpha * beta_penalty(model)`` (the authors' ``mean(clamp(beta, -5))``) added
   to the loss, the same ``EPOCHS`` epochs in all, then ``skdam.nn.prune`` and no
   fine-tuning, at several alphas; and a variant with the gates frozen and the
   penalty off for the last ``SETTLE_EPOCHS``;
3. network slimming (Liu et al., ICCV 2017): an L1 penalty on the scales of the
   same batch normalisations for ``EPOCHS`` epochs, the channels with the smallest
   scales removed through Torch-Pruning's dependency graph until the FLOPs match
   each DAM network's, then ``FINE_TUNE_EPOCHS`` epochs of fine-tuning.

Parameters and FLOPs (multiply-accumulates, as Torch-Pruning's
``count_ops_and_params`` counts them, for one 14x14 image), test accuracy on the
10000 test images, total training epochs, and training time as a ratio to the
unpruned network's in the same run.

Trained networks are cached (``PRUNING_CACHE``, default ``/tmp/skdam-pruning-cache``)
so a second run repeats only what changed; ``--only unpruned,dam-0.2`` trains just
those networks and stops, so that the trainings can share the cores as separate
processes, and a last run without ``--only`` prunes, fine-tunes and reports.
Times are CPU seconds of the training process (one thread), as ratios to the
unpruned network's.

Usage: ``python benchmarks/pruning.py [--only NAME,...]``; needs ``pip install -e ".[prune,bench]"``
and Debian's ``dataset-fashion-mnist``.
"""

import copy
import math
import os
import subprocess
import time
from pathlib import Path

import torch
from torch import nn

from _common import Report, command_line, limit_threads, machine_description, save_figure
from _fashion_mnist import ensure_installed, load_fashion_mnist

N_THREADS = 1  # measured: on 2 shared cores a second torch thread made an epoch 4x slower
N_TRAIN = 12000
EPOCHS = 8
COLD_START_EPOCHS = 1  # the authors: 20 of 200 epochs
FINE_TUNE_EPOCHS = 4
BATCH_SIZE = 128
LEARNING_RATE = 0.05  # the authors' SGD learning rate
WEIGHT_DECAY = 5e-4
ALPHAS = [0.2, 0.27, 0.3, 0.35, 0.5]
# A variant: the gates frozen and the penalty off for the last epochs, so that the
# network adapts to the channels left (still one stage, the same epochs in all).
SETTLE_EPOCHS = 2
SETTLE_ALPHAS = [0.35]
SLIMMING_PENALTY = 1e-4  # Liu et al.'s lambda on CIFAR
SEED = 0
CACHE = Path(os.environ.get("PRUNING_CACHE", "/tmp/skdam-pruning-cache"))


class BasicBlock(nn.Module):
    """conv-bn-relu-conv-bn, plus the shortcut, then relu (He et al., option B)."""

    def __init__(self, in_channels, out_channels, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.shortcut = nn.Sequential()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride, bias=False), nn.BatchNorm2d(out_channels)
            )

    def forward(self, x):
        out = torch.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return torch.relu(out + self.shortcut(x))


def resnet20(widths=(16, 32, 64), n_classes=10, generator=None):
    layers = [nn.Conv2d(1, widths[0], 3, 1, 1, bias=False), nn.BatchNorm2d(widths[0]), nn.ReLU()]
    in_channels = widths[0]
    for stage, width in enumerate(widths):
        for block in range(3):
            layers.append(BasicBlock(in_channels, width, 2 if stage > 0 and block == 0 else 1))
            in_channels = width
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(in_channels, n_classes)]
    model = nn.Sequential(*layers)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, (nn.Conv2d, nn.Linear)):
                nn.init.kaiming_normal_(module.weight, nonlinearity="relu", generator=generator)
                if module.bias is not None:
                    module.bias.zero_()
    return model


def is_internal_batchnorm(name, module):
    """The first batch normalisation of each block: the block's internal channels."""
    return name.endswith("bn1") and isinstance(module, nn.BatchNorm2d)


def load_data(generator):
    X_train, y_train = load_fashion_mnist("train")
    X_test, y_test = load_fashion_mnist("test")

    def images(X):  # rows in [-1, 1] -> (N, 1, 14, 14)
        return nn.functional.avg_pool2d(torch.from_numpy(X).reshape(-1, 1, 28, 28), 2)

    subset = torch.randperm(len(X_train), generator=generator)[:N_TRAIN]
    return images(X_train)[subset], torch.from_numpy(y_train)[subset], images(X_test), torch.from_numpy(y_test)


def train(model, X, y, *, epochs, learning_rate, generator, penalty=None, cold_start_epochs=0, settle_epochs=0):
    """SGD with momentum and a cosine schedule; returns the CPU seconds of this process.

    CPU time, not wall-clock time: on a shared machine the wall clock counts the
    other processes' work too, and with one thread CPU time is the work done.

    ``penalty(model)`` is added to the cross-entropy after ``cold_start_epochs``;
    until then DAM gates (if any) are frozen; they are frozen again, and the penalty
    left out, for the last ``settle_epochs``.
    """
    from skdam.nn import DAMGate, freeze_gates

    has_gates = any(isinstance(module, DAMGate) for module in model.modules())
    betas = [parameter for name, parameter in model.named_parameters() if name.endswith("beta")]
    weights = [parameter for name, parameter in model.named_parameters() if not name.endswith("beta")]
    groups = [{"params": weights, "weight_decay": WEIGHT_DECAY}]
    if betas:
        groups.append({"params": betas, "weight_decay": 0.0})
    optimizer = torch.optim.SGD(groups, lr=learning_rate, momentum=0.9)
    steps_per_epoch = math.ceil(len(X) / BATCH_SIZE)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, epochs * steps_per_epoch)
    start = time.process_time()
    model.train()
    for epoch in range(epochs):
        gates_learn = cold_start_epochs <= epoch < epochs - settle_epochs
        if has_gates:
            freeze_gates(model, frozen=not gates_learn)
        order = torch.randperm(len(X), generator=generator)
        for first in range(0, len(X), BATCH_SIZE):
            batch = order[first : first + BATCH_SIZE]
            inputs = X[batch]
            flip = torch.rand(len(batch), generator=generator) < 0.5  # horizontal flips
            inputs = torch.where(flip[:, None, None, None], inputs.flip(-1), inputs)
            loss = nn.functional.cross_entropy(model(inputs), y[batch])
            if penalty is not None and gates_learn:
                loss = loss + penalty(model)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            scheduler.step()
    model.eval()
    return time.process_time() - start


@torch.no_grad()
def accuracy(model, X, y):
    model.eval()
    predictions = torch.cat([model(X[i : i + 1000]).argmax(1) for i in range(0, len(X), 1000)])
    return float((predictions == y).float().mean())


def count(model, example):
    import torch_pruning as tp

    macs, n_parameters = tp.utils.count_ops_and_params(model, example)
    return int(macs), int(n_parameters)


def cached(name, build, run):
    """Train ``build()`` with ``run(model) -> dict`` once; later runs load it."""
    path = CACHE / f"{name}.pt"
    model = build()
    if path.exists():
        saved = torch.load(path, weights_only=False)
        model.load_state_dict(saved["state"])
        return model.eval(), saved["record"]
    record = run(model)
    CACHE.mkdir(parents=True, exist_ok=True)
    torch.save({"state": model.state_dict(), "record": record}, path)
    return model.eval(), record


def slim(model, example, target_macs):
    """Remove the internal channels with the smallest |BN scale| until FLOPs <= target."""
    import torch_pruning as tp

    blocks = [module for module in model.modules() if isinstance(module, BasicBlock)]
    scales = torch.cat([block.bn1.weight.detach().abs() for block in blocks])

    def pruned_with(threshold):
        candidate = copy.deepcopy(model)
        graph = tp.DependencyGraph().build_dependency(candidate, example_inputs=example)
        for block in [module for module in candidate.modules() if isinstance(module, BasicBlock)]:
            weak = (block.bn1.weight.detach().abs() < threshold).nonzero().flatten().tolist()
            if len(weak) == block.bn1.num_features:  # keep the strongest channel
                weak.remove(int(block.bn1.weight.detach().abs().argmax()))
            if weak:
                graph.get_pruning_group(block.conv1, tp.prune_conv_out_channels, idxs=weak).prune()
        return candidate

    # The smallest threshold (fewest channels removed) whose FLOPs are at most the target.
    candidates = torch.sort(scales).values
    low, high = 0, len(candidates)
    while low < high:
        middle = (low + high) // 2
        if count(pruned_with(float(candidates[middle]) + 1e-12), example)[0] <= target_macs:
            high = middle
        else:
            low = middle + 1
    return pruned_with(float(candidates[min(low, len(candidates) - 1)]) + 1e-12)


def main():
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", default=None, help="comma-separated runs to train, then stop")
    parser.add_argument("--alphas", default=",".join(map(str, ALPHAS)), help="comma-separated DAM alphas")
    arguments = parser.parse_args()
    only = arguments.only
    alphas = [float(alpha) for alpha in arguments.alphas.split(",")]
    only = None if only is None else only.split(",")
    limit_threads(N_THREADS)
    report = Report("pruning")
    report(f"$ {command_line()}")
    report(machine_description(N_THREADS))
    cpu = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    report("lscpu: " + next((line.split(":", 1)[1].strip() for line in cpu.splitlines() if "Model name" in line), "?"))
    from importlib.metadata import version

    report(f"torch-pruning {version('torch-pruning')}")
    report(
        f"ResNet-20 (16/32/64), Fashion-MNIST at 14x14, {N_TRAIN} training images (seeded subset), "
        f"10000 test images; SGD lr {LEARNING_RATE}, momentum 0.9, cosine schedule, batch {BATCH_SIZE}, "
        f"weight decay {WEIGHT_DECAY}; {EPOCHS} epochs per training; DAM cold start {COLD_START_EPOCHS} "
        f"epoch(s); slimming lambda {SLIMMING_PENALTY}, fine-tuning {FINE_TUNE_EPOCHS} epochs at lr "
        f"{LEARNING_RATE / 5}; seed {SEED}."
    )
    report()
    ensure_installed()
    generator = torch.Generator().manual_seed(SEED)
    X_train, y_train, X_test, y_test = load_data(generator)
    example = X_test[:1]

    def fresh(seed):
        return resnet20(generator=torch.Generator().manual_seed(seed))

    def run_training(penalty=None, cold_start_epochs=0, settle_epochs=0):
        def run(model):
            seconds = train(
                model, X_train, y_train, epochs=EPOCHS, learning_rate=LEARNING_RATE, penalty=penalty,
                cold_start_epochs=cold_start_epochs, settle_epochs=settle_epochs,
                generator=torch.Generator().manual_seed(SEED + 1),
            )
            return {"seconds": seconds, "accuracy": accuracy(model, X_test, y_test)}

        return run

    from skdam.nn import beta_penalty, place_gates

    def gated():
        model = fresh(SEED)
        place_gates(model, is_internal_batchnorm)
        return model

    def slimming_penalty(model):
        return SLIMMING_PENALTY * sum(
            module.weight.abs().sum() for name, module in model.named_modules() if is_internal_batchnorm(name, module)
        )

    trainings = {
        "unpruned": (lambda: fresh(SEED), run_training()),
        **{
            f"dam-{alpha}": (gated, run_training(lambda m, alpha=alpha: alpha * beta_penalty(m), COLD_START_EPOCHS))
            for alpha in alphas
        },
        **{
            f"dam-{alpha}-settle": (
                gated,
                run_training(lambda m, alpha=alpha: alpha * beta_penalty(m), COLD_START_EPOCHS, SETTLE_EPOCHS),
            )
            for alpha in SETTLE_ALPHAS
        },
        "slimming-sparse": (lambda: fresh(SEED), run_training(slimming_penalty)),
    }
    if only is not None:  # train the named runs in this process, report nothing
        for name in only:
            cached(name, *trainings[name])
        return

    # 1. Unpruned.
    baseline, baseline_record = cached("unpruned", *trainings["unpruned"])
    base_seconds = baseline_record["seconds"]
    base_macs, base_parameters = count(baseline, example)
    report(f"unpruned: trained in {base_seconds:.0f} CPU s, test accuracy {baseline_record['accuracy']:.2%}")

    # 2. DAM in one stage, at several alphas.
    dam_runs = {}  # run name suffix -> (label, model, record)
    for key in [str(alpha) for alpha in alphas] + [f"{alpha}-settle" for alpha in SETTLE_ALPHAS]:
        model, record = cached(f"dam-{key}", *trainings[f"dam-{key}"])
        alpha = key.split("-")[0]
        label = f"alpha={alpha}" + (f", gates frozen last {SETTLE_EPOCHS} epochs" if key.endswith("settle") else "")
        dam_runs[key] = (label, model, record)
        report(f"DAM {label}: trained in {record['seconds']:.0f} CPU s, test accuracy {record['accuracy']:.2%}")

    # 3. Network slimming: sparse training once, then pruning and fine-tuning per target.
    sparse, sparse_record = cached("slimming-sparse", *trainings["slimming-sparse"])
    report(f"slimming sparse training: {sparse_record['seconds']:.0f} CPU s, test accuracy {sparse_record['accuracy']:.2%}")
    report()

    from skdam.nn import prune

    rows = [["unpruned", f"{base_parameters:,}", f"{base_macs:,}", "100.0%", f"{baseline_record['accuracy']:.2%}", "+0.00",
             str(EPOCHS), "1.00"]]
    figure_points = {"DAM (one stage)": [], "DAM, gates frozen at the end": [], "slimming + fine-tuning": []}
    for key, (label, model, record) in dam_runs.items():
        pruned = prune(model, example)
        with torch.no_grad():
            difference = float((pruned(X_test[:1000]) - model(X_test[:1000])).abs().max())
        macs, n_parameters = count(pruned, example)
        dam_accuracy = accuracy(pruned, X_test, y_test)
        open_channels = [gate.n_open() for gate in model.modules() if hasattr(gate, "n_open")]
        report(f"DAM {label}: open internal channels per block {open_channels}; "
               f"max |output difference| after pruning {difference:.1e}")
        rows.append([
            f"DAM {label}", f"{n_parameters:,}", f"{macs:,}", f"{macs / base_macs:.1%}", f"{dam_accuracy:.2%}",
            f"{100 * (dam_accuracy - baseline_record['accuracy']):+.2f}", str(EPOCHS),
            f"{record['seconds'] / base_seconds:.2f}",
        ])
        series = "DAM, gates frozen at the end" if key.endswith("settle") else "DAM (one stage)"
        figure_points[series].append((macs / base_macs, dam_accuracy))

        def fine_tune(slimmed, macs=macs):
            before = accuracy(slimmed, X_test, y_test)
            seconds = train(slimmed, X_train, y_train, epochs=FINE_TUNE_EPOCHS, learning_rate=LEARNING_RATE / 5,
                            generator=torch.Generator().manual_seed(SEED + 2))
            return {"seconds": seconds, "accuracy": accuracy(slimmed, X_test, y_test), "before_fine_tuning": before}

        slimmed_structure = slim(sparse, example, macs)
        slimmed, slim_record = cached(f"slimming-fine-tuned-{key}", lambda s=slimmed_structure: copy.deepcopy(s), fine_tune)
        slim_macs, slim_parameters = count(slimmed, example)
        slim_seconds = sparse_record["seconds"] + slim_record["seconds"]
        report(f"slimming matched to DAM {label}: accuracy {slim_record['before_fine_tuning']:.2%} before "
               f"fine-tuning, {slim_record['accuracy']:.2%} after")
        rows.append([
            f"slimming at DAM {label}", f"{slim_parameters:,}", f"{slim_macs:,}", f"{slim_macs / base_macs:.1%}",
            f"{slim_record['accuracy']:.2%}", f"{100 * (slim_record['accuracy'] - baseline_record['accuracy']):+.2f}",
            str(EPOCHS + FINE_TUNE_EPOCHS), f"{slim_seconds / base_seconds:.2f}",
        ])
        if not key.endswith("settle"):
            figure_points["slimming + fine-tuning"].append((slim_macs / base_macs, slim_record["accuracy"]))

    report()
    report.table(
        ["network", "parameters", "FLOPs (MACs)", "FLOPs kept", "test accuracy", "vs unpruned (points)",
         "training epochs", "training time / unpruned's"],
        rows,
    )
    report(f"The unpruned network's training took {base_seconds:.0f} CPU seconds (one thread).")
    report.save()

    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(6, 4), layout="constrained")
    for (label, points), marker in zip(figure_points.items(), ("o", "^", "s")):
        points = sorted(points)
        axis.plot([100 * p[0] for p in points], [100 * p[1] for p in points], marker=marker, label=label)
    axis.axhline(100 * baseline_record["accuracy"], color="0.5", linestyle="--", label="unpruned")
    axis.set(xlabel="FLOPs kept (% of the unpruned network)", ylabel="test accuracy (%)",
             title="ResNet-20, Fashion-MNIST (14x14)")
    axis.legend()
    save_figure(figure, "pruning")


if __name__ == "__main__":
    main()
