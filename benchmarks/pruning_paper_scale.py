"""The pruning benchmark at the paper's scale, inside a fixed budget of GPU time.

``pruning.py --scale paper`` (ResNet-56 on all 60000 Fashion-MNIST images at 28x28)
trains seven networks; one of them at a time leaves a GPU mostly idle, launching
small kernels. This script runs them side by side, one process each:

1. every training process times a few steps while all of them run (the probe,
   started at one moment after each has loaded the data and warmed up);
2. the epochs are chosen so that the trainings and the fine-tuning of the slimmed
   networks (half as many epochs) fit in ``--budget`` seconds, at most the
   authors' 200;
3. the trainings, then the fine-tunings, each set side by side;
4. ``pruning.py --scale paper --epochs E`` reads them all from its cache and reports.

Usage: ``python benchmarks/pruning_paper_scale.py --budget 400``
"""

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import pruning

SCRIPT = str(Path(pruning.__file__).resolve())


def run_side_by_side(arguments_per_process):
    """Start one ``pruning.py`` process per argument list, wait for all; their stdout."""
    processes = [
        subprocess.Popen([sys.executable, SCRIPT, *arguments], stdout=subprocess.PIPE, text=True)
        for arguments in arguments_per_process
    ]
    outputs = [process.communicate()[0] for process in processes]
    failed = [arguments for arguments, process in zip(arguments_per_process, processes) if process.returncode]
    if failed:
        raise SystemExit(f"failed: {failed}")
    return outputs


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--budget", type=float, default=400, help="seconds for the trainings and fine-tunings")
    parser.add_argument("--n-train", type=int, default=None, help="training images (a seeded subset; all by default)")
    parser.add_argument("--probe-steps", type=int, default=30)
    parser.add_argument("--probe-delay", type=float, default=45, help="seconds from the start to the timed probe steps")
    parser.add_argument("--max-epochs", type=int, default=200)
    parser.add_argument("--alphas", default=None, help="comma-separated DAM alphas")
    parser.add_argument("--settle-alphas", default=None, help="comma-separated DAM alphas of the frozen-gates variant")
    parser.add_argument("--batch-size", type=int, default=None)
    arguments = parser.parse_args()
    scale = pruning.SCALES["paper"]
    common = ["--scale", "paper"]
    for option in ("n_train", "alphas", "settle_alphas", "batch_size"):
        if getattr(arguments, option) is not None:
            common += ["--" + option.replace("_", "-"), str(getattr(arguments, option))]
    alphas = scale.alphas if arguments.alphas is None else arguments.alphas.split(",")
    settle_alphas = scale.settle_alphas if arguments.settle_alphas is None else arguments.settle_alphas.split(",")
    trainings = (["unpruned", "slimming-sparse"] + [f"dam-{float(alpha)}" for alpha in alphas]
                 + [f"dam-{float(alpha)}-settle" for alpha in settle_alphas])

    start = time.perf_counter()
    probe = [*common, "--probe-steps", str(arguments.probe_steps), "--probe-start", str(time.time() + arguments.probe_delay)]
    probes = [json.loads(out.strip().splitlines()[-1]) for out in run_side_by_side([probe] * len(trainings))]
    seconds_per_epoch = max(probe["seconds_per_step"] for probe in probes) * probes[0]["steps_per_epoch"]
    # Fine-tuning takes half the epochs, with fewer processes side by side and
    # smaller networks: 1.5 epochs of the probe's pace per training epoch is an upper bound.
    epochs = int(min(arguments.max_epochs, arguments.budget / (1.5 * seconds_per_epoch)))
    epochs = max(epochs, 2)
    print(f"probe: {seconds_per_epoch:.2f} s per epoch with {len(trainings)} trainings side by side "
          f"({time.perf_counter() - start:.0f} s); {epochs} epochs per training", flush=True)
    common += ["--epochs", str(epochs)]

    started = time.perf_counter()
    run_side_by_side([[*common, "--only", name] for name in trainings])
    print(f"trainings: {time.perf_counter() - started:.0f} s", flush=True)
    keys = [name.removeprefix("dam-") for name in trainings if name.startswith("dam-")]
    started = time.perf_counter()
    run_side_by_side([[*common, "--only", f"slimming-fine-tuned-{key}"] for key in keys])
    print(f"fine-tunings: {time.perf_counter() - started:.0f} s", flush=True)
    subprocess.run([sys.executable, SCRIPT, *common], check=True)


if __name__ == "__main__":
    main()
