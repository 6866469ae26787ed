"""Speed of skdam against the DAM paper's published recipe, with PCA beside them.

Everything runs in one process (the scaling section in one subprocess per fit), one
thread per pool unless --threads says otherwise, and every figure is a median over
repeats with its ratio to the peer measured in the same run.

Sections (``--sections`` picks some):

- ``linear``: the paper's linear experiment (N=5000, k=10, d=100). The recipe
  (100->50->100 linear, Adam lr 0.01, weight decay 1e-6, lambda 0.01, 2000 full-batch
  epochs) is run in full; ``DAMEmbedding()`` over seeds; PCA.
- ``mlp_kernel``: the paper's MLP-kernel experiment (k=20). The recipe's 10000
  full-batch epochs are extrapolated from a timed slice; ``DAMAutoencoder()``; PCA.
- ``fashion_mnist``: 60000 x 784. The recipe's 100 epochs (batch 512) extrapolated
  from a timed slice; ``DAMAutoencoder()`` fit, and the same trained in float32
  (``mixed_precision=False``), test MSE against PCA at the same dimension;
  transform throughput of DAMEmbedding, DAMAutoencoder and PCA.
- ``scaling``: fit time and peak memory at N = 1e4, 1e5, 1e6 (d=100, float32).
- ``compile``: eager against ``torch.compile`` per training step.
- ``precision``: float32 against bfloat16 autocast per training step, over step
  sizes from the manifolds' to Fashion-MNIST's: where ``mixed_precision="auto"``
  draws its line.
- ``internals``: choices inside the package, each against its alternative: one
  matrix product for the linear path and the residual against two, by width; Adam's
  fused kernel against its loop; the size of the blocks the covariance is summed over.

Usage: ``python benchmarks/speed.py [--sections linear mlp_kernel ...] [--threads 1]``
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from functools import partial

import numpy as np

from _common import add_common_arguments, limit_threads, median_seconds, save_figure, start_report, timed, timed_fit

#: DAMAutoencoder's default perceptron and step size, for the per-step sections that
#: build the module themselves; main() checks that they still are the defaults.
AUTOENCODER_HIDDEN, AUTOENCODER_ACTIVATION, AUTOENCODER_LEARNING_RATE = (128, 128), "tanh", 3e-3
SECTIONS = ["linear", "mlp_kernel", "fashion_mnist", "scaling", "compile", "precision", "internals"]


def warm_up():
    """The first Adam of a process imports torch._dynamo: seconds no fit should pay here."""
    from skdam import DAMEmbedding
    from skdam.datasets import make_linear_latent

    timed_fit(DAMEmbedding(max_iter=1, random_state=0), make_linear_latent(200, 3, 10, random_state=0)[0])


def time_dam(Estimator, X, seeds):
    """Fit over seeds: median seconds, all seconds, dimensions found, epochs."""
    seconds, dims, epochs, estimators = [], [], [], []
    for seed in seeds:
        estimator, fit_seconds, _ = timed_fit(Estimator(random_state=seed), X)
        seconds.append(fit_seconds)
        dims.append(estimator.n_components_)
        epochs.append(estimator.n_iter_)
        estimators.append(estimator)
    return statistics.median(seconds), seconds, dims, epochs, estimators


def time_recipe_slice(name, X, slice_epochs, repeats, device="cpu"):
    """Median seconds per epoch of the recipe over ``repeats`` slices of epochs.

    Each slice is a fresh training of the recipe; its figure is the median of its
    epochs' times.
    """
    from _paper_recipe import RecipeTraining

    per_epoch = []
    for repeat in range(repeats):
        training = RecipeTraining(name, X, seed=repeat, device=device)
        epoch_median, _, _ = median_seconds(training.run_epoch, slice_epochs)
        per_epoch.append(epoch_median)
    return statistics.median(per_epoch), per_epoch, training.epochs


# ---------------------------------------------------------------------------------


def section_linear(report, args):
    import torch
    from sklearn.decomposition import PCA

    from _paper_recipe import train_recipe
    from skdam import DAMEmbedding
    from skdam.datasets import make_linear_latent

    report("## Linear experiment (N=5000, k=10, d=100)\n")
    X = make_linear_latent(random_state=0)[0].astype(np.float32)
    centred = torch.from_numpy(X - X.mean(axis=0))
    recipe_seconds, recipe_dims = [], []
    for seed in range(args.repeats):
        model, seconds = timed(partial(train_recipe, "linear", centred, seed=seed))
        recipe_seconds.append(seconds)
        recipe_dims.append(model.gate.n_open())
    dam_median, dam_seconds, dam_dims, dam_epochs, _ = time_dam(DAMEmbedding, X, range(args.seeds))
    pca_median, pca_seconds, _ = median_seconds(lambda: PCA(10).fit(X), args.repeats)
    mle_median, _, mle = median_seconds(lambda: PCA("mle").fit(X), args.repeats)
    recipe_median = statistics.median(recipe_seconds)
    rows = [
        ("paper recipe, 2000 full-batch epochs (run in full)", recipe_median, 1.0, " ".join(map(str, recipe_dims)), "2000"),
        ("DAMEmbedding()", dam_median, recipe_median / dam_median, " ".join(map(str, dam_dims)), " ".join(map(str, dam_epochs))),
        ("PCA(10) (told the answer)", pca_median, recipe_median / pca_median, "10", "-"),
        ('PCA("mle")', mle_median, recipe_median / mle_median, str(mle.n_components_), "-"),
    ]
    report.table(["method", "median fit s", "speed-up vs recipe", "dimensions found", "epochs"], rows, ["", ".3f", ".1f", "", ""])
    report(f"recipe fit seconds {[round(s, 2) for s in recipe_seconds]}; DAMEmbedding {[round(s, 2) for s in dam_seconds]}")
    speedup = recipe_median / dam_median
    passed = all(k == 10 for k in dam_dims) and speedup >= 10
    report(f"Acceptance (linear): exactly 10 dims on {sum(k == 10 for k in dam_dims)}/{len(dam_dims)} seeds, {speedup:.1f}x faster than the recipe (target >= 10x): {'PASS' if passed else 'FAIL'}\n")
    return {"linear_speedup": speedup, "linear_pass": passed,
            "times_linear": {"paper recipe": recipe_median, "DAMEmbedding()": dam_median, "PCA(10)": pca_median}}


def section_mlp_kernel(report, args):
    import torch
    from sklearn.decomposition import PCA

    from skdam import DAMAutoencoder
    from skdam.datasets import make_mlp_latent

    report("## MLP-kernel experiment (N=5000, k=20, d=100)\n")
    X = make_mlp_latent(random_state=0)[0].astype(np.float32)
    tensor = torch.from_numpy(X - X.mean(axis=0))
    per_epoch, slices, total_epochs = time_recipe_slice("mlp_kernel", tensor, args.mlp_slice, args.repeats)
    recipe_estimate = per_epoch * total_epochs
    dam_median, dam_seconds, dam_dims, dam_epochs, _ = time_dam(DAMAutoencoder, X, range(args.seeds))
    pca_median, _, _ = median_seconds(lambda: PCA(20).fit(X), args.repeats)
    rows = [
        (f"paper recipe, {total_epochs} full-batch epochs (EXTRAPOLATED from {args.repeats} slices of {args.mlp_slice} epochs)", recipe_estimate, 1.0, "-", str(total_epochs)),
        ("DAMAutoencoder()", dam_median, recipe_estimate / dam_median, " ".join(map(str, dam_dims)), " ".join(map(str, dam_epochs))),
        ("PCA(20) (told the answer)", pca_median, recipe_estimate / pca_median, "20", "-"),
    ]
    report.table(["method", "median fit s", "speed-up vs recipe", "dimensions found", "epochs"], rows, ["", ".2f", ".1f", "", ""])
    report(f"recipe: median {per_epoch * 1e3:.2f} ms per epoch (slice medians {[round(s * 1e3, 2) for s in slices]} ms); DAMAutoencoder fit seconds {[round(s, 2) for s in dam_seconds]}")
    speedup = recipe_estimate / dam_median
    passed = all(abs(k - 20) <= 2 for k in dam_dims) and speedup >= 10
    report(f"Acceptance (MLP-kernel): 20 +- 2 on {sum(abs(k - 20) <= 2 for k in dam_dims)}/{len(dam_dims)} seeds, {speedup:.0f}x faster than the recipe (target >= 10x): {'PASS' if passed else 'FAIL'}\n")
    return {"mlp_kernel_speedup": speedup, "mlp_kernel_pass": passed,
            "times_mlp_kernel": {"paper recipe (extrapolated)": recipe_estimate, "DAMAutoencoder()": dam_median, "PCA(20)": pca_median}}


def _test_mse(reducer, X_test):
    return float(np.mean((reducer.inverse_transform(reducer.transform(X_test)) - X_test) ** 2))


class _SearchTimer:
    """Runs an estimator's unit search, noting when it starts and ends and the epochs before it."""

    def __init__(self, unit_count, phases):
        self.unit_count, self.phases = unit_count, phases

    @property
    def errors(self):
        return self.unit_count.errors

    @property
    def count_unchecked(self):
        return self.unit_count.count_unchecked

    def __call__(self, trainer, *args):
        self.phases.update(search_start=time.perf_counter(), epochs_before=trainer.epochs_run)
        try:
            return self.unit_count(trainer, *args)
        finally:
            self.phases["search_end"] = time.perf_counter()


def time_phases(X, seed, **params):
    """One ``DAMAutoencoder(**params)`` fit split into what comes before the unit search, and the search.

    Returns the seconds before the search (the warm start and the epochs of training
    until the gates settle), the search's seconds, the epochs before it and the fit's.
    """
    from skdam import DAMAutoencoder

    phases = {}

    class PhaseTimed(DAMAutoencoder):
        def _unit_count(self, linear_errors, search):
            return _SearchTimer(super()._unit_count(linear_errors, search), phases)

    started = time.perf_counter()
    fitted = PhaseTimed(random_state=seed, **params).fit(X)
    return phases["search_start"] - started, phases["search_end"] - phases["search_start"], phases["epochs_before"], fitted.n_iter_


def section_fashion_mnist(report, args):
    import torch
    from sklearn.decomposition import PCA

    from _fashion_mnist import ensure_installed, load_fashion_mnist
    from skdam import DAMAutoencoder, DAMEmbedding

    ensure_installed()
    X, _ = load_fashion_mnist("train")
    X_test, _ = load_fashion_mnist("test")
    report("## Fashion-MNIST (60000 x 784 float32, pixels scaled to [-1, 1])\n")
    per_epoch, slices, total_epochs = time_recipe_slice("fashion_mnist", torch.from_numpy(X), args.fashion_slice, args.repeats, args.device)
    recipe_estimate = per_epoch * total_epochs
    report(f"Recipe and DAMAutoencoder train on {args.device}; PCA on the CPU.\n")
    default = partial(DAMAutoencoder, device=args.device)
    dam_median, dam_seconds, dam_dims, dam_epochs, fitted = time_dam(default, X, range(args.fashion_seeds))
    autoencoder = fitted[0]
    k = autoencoder.n_components_
    pca_median, _, pca = median_seconds(lambda: PCA(k).fit(X), args.repeats)
    dam_mse = [_test_mse(estimator, X_test) for estimator in fitted]
    pca_mse_by_k = {d: _test_mse(PCA(d).fit(X), X_test) for d in sorted(set(dam_dims))}
    # For context: the default trained in float32 throughout, as on a CPU without
    # bfloat16 matrix units (mixed_precision="auto" resolves to float32 there).
    float32 = partial(DAMAutoencoder, mixed_precision=False, device=args.device)
    f32_median, f32_seconds, f32_dims, f32_epochs, f32_fitted = time_dam(float32, X, range(args.fashion_seeds))
    f32_mse = [_test_mse(estimator, X_test) for estimator in f32_fitted]
    pca_mse_by_k.update({d: _test_mse(PCA(d).fit(X), X_test) for d in sorted(set(f32_dims) - set(pca_mse_by_k))})
    rows = [
        (f"paper recipe, {total_epochs} epochs of batch 512 (EXTRAPOLATED from {args.repeats} slices of {args.fashion_slice} epochs)", recipe_estimate, 1.0, "-", "-", "-", "-"),
        ("DAMAutoencoder()", dam_median, recipe_estimate / dam_median, " ".join(map(str, dam_dims)), " ".join(map(str, dam_epochs)), " ".join(f"{m:.4f}" for m in dam_mse), " ".join(f"{pca_mse_by_k[d]:.4f}" for d in dam_dims)),
        ("DAMAutoencoder(mixed_precision=False) (float32 training)", f32_median, recipe_estimate / f32_median, " ".join(map(str, f32_dims)), " ".join(map(str, f32_epochs)), " ".join(f"{m:.4f}" for m in f32_mse), " ".join(f"{pca_mse_by_k[d]:.4f}" for d in f32_dims)),
        (f"PCA({k})", pca_median, recipe_estimate / pca_median, str(k), "-", f"{pca_mse_by_k[k]:.4f}", "-"),
    ]
    report.table(["method", "median fit s", "speed-up vs recipe", "dimensions", "epochs", "test MSE", "PCA test MSE, same dims"], rows, ["", ".1f", ".1f", "", "", "", ""])
    report(f"recipe: median {per_epoch:.2f} s per epoch (slice medians {[round(s, 2) for s in slices]}); DAMAutoencoder() fit seconds {[round(s, 1) for s in dam_seconds]}; float32 {[round(s, 1) for s in f32_seconds]}")
    report(f"DAMAutoencoder() resolved mixed_precision='auto' to {autoencoder.mixed_precision_} on this machine; the recipe trains in float32, as published.")
    f32_speedup = recipe_estimate / f32_median
    report(f"Context: trained in float32 throughout (as on a CPU without AMX), the default is {f32_speedup:.1f}x faster than the recipe.")
    before, search, epochs_before, epochs = time_phases(X, 0, mixed_precision=False, device=args.device)
    report(
        f"Where the float32 fit's time goes (one more fit, seed 0): {before:.1f} s until the gates settle ({epochs_before} epochs, "
        f"the warm start included), {search:.1f} s in the unit search ({epochs - epochs_before} epochs' worth of steps): "
        f"{search / (before + search):.0%} of the fit. 10x the recipe is {recipe_estimate / 10:.1f} s in all, "
        f"{recipe_estimate / 10 / before:.2f} of the time before the search alone."
    )
    speedup = recipe_estimate / dam_median
    mse_ok = all(m < pca_mse_by_k[d] for m, d in zip(dam_mse, dam_dims))
    report(f"Acceptance (Fashion-MNIST fit): {speedup:.1f}x faster than the recipe's 100 epochs (target >= 10x), test MSE below PCA's at the same dimension on {sum(m < pca_mse_by_k[d] for m, d in zip(dam_mse, dam_dims))}/{len(dam_mse)} seeds: {'PASS' if speedup >= 10 and mse_ok else 'FAIL'}\n")

    report("### transform throughput on the 60000 training rows (float32)\n")
    embedding = timed_fit(DAMEmbedding(random_state=0), X).estimator
    pca_embedding = PCA(embedding.n_components_).fit(X)
    rows = []
    throughput = {}
    for name, reducer in [
        (f"PCA({embedding.n_components_}).transform", pca_embedding),
        (f"DAMEmbedding.transform ({embedding.n_components_} dims)", embedding),
        (f"PCA({k}).transform", pca),
        (f"DAMAutoencoder.transform ({k} dims)", autoencoder),
    ]:
        reducer.transform(X[:1000])
        seconds, _, _ = median_seconds(lambda: reducer.transform(X), args.transform_repeats)
        throughput[name] = X.shape[0] / seconds
        rows.append((name, seconds, X.shape[0] / seconds))
    names = list(throughput)
    rows = [(*row, throughput[row[0]] / throughput[names[0] if i < 2 else names[2]]) for i, row in enumerate(rows)]
    report.table(["transform", "median s", "rows/s", "ratio to PCA at same dims"], rows, ["", ".3f", ",.0f", ".2f"])
    ratio = throughput[names[1]] / throughput[names[0]]
    report(f"Acceptance (transform): DAMEmbedding.transform at {ratio:.2f} of PCA.transform's rows/s (target >= 0.5): {'PASS' if ratio >= 0.5 else 'FAIL'}\n")
    return {"fashion_speedup": speedup, "fashion_float32_speedup": f32_speedup, "fashion_mse_ok": mse_ok, "transform_ratio": ratio,
            "times_fashion_mnist": {"paper recipe (extrapolated)": recipe_estimate, "DAMAutoencoder()": dam_median, f"PCA({k})": pca_median}}


# ---------------------------------------------------------------------------------


def _rss_bytes(field):
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"{field} not in /proc/self/status")


def scaling_child(n_samples, method, seed, threads):
    """One fit in a fresh process; prints a JSON line with its time and peak memory."""
    limit_threads(threads)
    import torch  # noqa: F401  (imported before the baseline is taken)
    from sklearn.decomposition import PCA

    from skdam import DAMAutoencoder, DAMEmbedding
    from skdam.datasets import make_linear_latent

    warm_up()
    # Load every kernel of both estimators before the baseline: code pages are not fit's memory.
    timed_fit(DAMAutoencoder(max_iter=2, random_state=0), make_linear_latent(300, 3, 100, random_state=0)[0].astype(np.float32))
    # make_linear_latent's model (Gaussian latents, one Gaussian map to 100 features),
    # generated in blocks straight into float32 so that no float64 copy inflates the peak.
    rng = np.random.RandomState(seed)
    mixing = rng.normal(size=(10, 100))
    X = np.empty((n_samples, 100), dtype=np.float32)
    for start in range(0, n_samples, 100_000):
        stop = min(start + 100_000, n_samples)
        X[start:stop] = rng.normal(size=(stop - start, 10)) @ mixing
    estimator = {"DAMEmbedding": lambda: DAMEmbedding(random_state=seed), "DAMAutoencoder": lambda: DAMAutoencoder(random_state=seed), "PCA(10)": lambda: PCA(10, random_state=seed)}[method]()
    # Writing 5 to clear_refs resets the peak resident set size (VmHWM) to the current one.
    with open("/proc/self/clear_refs", "w") as clear:
        clear.write("5")
    baseline = _rss_bytes("VmRSS")
    _, seconds, _ = timed_fit(estimator, X)
    peak = _rss_bytes("VmHWM")
    model_bytes = 0
    if hasattr(estimator, "module_"):
        # parameters, their gradients and Adam's two moments
        model_bytes = 4 * sum(p.numel() * p.element_size() for p in estimator.module_.parameters())
    print(json.dumps({"seconds": seconds, "peak_growth": peak - baseline, "input_bytes": X.nbytes, "model_bytes": model_bytes, "n_components": int(getattr(estimator, "n_components_", 10)), "epochs": int(getattr(estimator, "n_iter_", 0))}))


def section_scaling(report, args):
    report("## Scaling with N (d=100, float32 input, make_linear_latent k=10)\n")
    report(
        "Each fit runs in a fresh subprocess. The data are generated first; then the peak resident set size is reset "
        "(`echo 5 > /proc/self/clear_refs`), the current RSS is read as the baseline, the estimator is fitted, and "
        "the peak RSS (VmHWM) minus the baseline is the fit's peak memory growth: every byte fit touches, numpy, "
        "torch and Python alike. The budget is twice the float32 input plus the model (parameters, gradients and "
        "Adam's two moments).\n"
    )
    sizes = [int(float(n)) for n in args.scaling_sizes]
    methods = ["DAMEmbedding", "DAMAutoencoder", "PCA(10)"]
    results = {}
    for method in methods:
        for n_samples in sizes:
            runs = []
            for seed in range(args.repeats):
                output = subprocess.run(
                    [sys.executable, __file__, "--scaling-child", str(n_samples), method, str(seed), "--threads", str(args.threads)],
                    check=True, capture_output=True, text=True, env={**os.environ},
                ).stdout
                runs.append(json.loads(output.strip().splitlines()[-1]))
            results[method, n_samples] = runs
            print(method, n_samples, [round(r["seconds"], 2) for r in runs], flush=True)
    rows = []
    verdicts = []
    slopes = {}
    for method in methods:
        previous = None
        for n_samples in sizes:
            runs = results[method, n_samples]
            seconds = statistics.median(r["seconds"] for r in runs)
            growth = max(r["peak_growth"] for r in runs)
            input_bytes, model_bytes = runs[0]["input_bytes"], runs[0]["model_bytes"]
            budget = 2 * input_bytes + model_bytes
            growth_ratio = "-" if previous is None else f"{seconds / previous[1]:.1f} for {n_samples / previous[0]:.0f}x rows"
            rows.append(
                (method, f"{n_samples:.0e}", seconds, growth_ratio, " ".join(str(r["epochs"]) for r in runs), " ".join(str(r["n_components"]) for r in runs), growth / 2**20, input_bytes / 2**20, growth / input_bytes, "yes" if growth < budget else "NO")
            )
            if method != "PCA(10)":
                verdicts.append(growth < budget)
            previous = (n_samples, seconds)
        medians = [statistics.median(r["seconds"] for r in results[method, n]) for n in sizes]
        slope = float(np.polyfit(np.log(sizes), np.log(medians), 1)[0])
        slopes[method] = slope
        if method != "PCA(10)":
            verdicts.append(slope <= 1.1)
    report.table(
        ["method", "N", "median fit s", "time growth", "epochs per run", "dims per run", "peak growth MiB", "input MiB", "peak / input", "under budget"],
        rows,
        ["", "", ".2f", "", "", "", ".0f", ".0f", ".2f", ""],
    )
    passed = all(verdicts)
    report("Slope of log(median fit time) against log(N), least squares over the sizes: " + ", ".join(f"{m} {slopes[m]:.2f}" for m in methods) + ".")
    report("Time counts as at most linear when that slope is at most 1.1 (a 10 % allowance for the noise of a shared machine).\n")
    report(f"Acceptance (scaling): time at most linear in N and peak growth under 2 x input + model for both estimators: {'PASS' if passed else 'FAIL'}\n")

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    for method in methods:
        seconds = [statistics.median(r["seconds"] for r in results[method, n]) for n in sizes]
        growth = [max(r["peak_growth"] for r in results[method, n]) / 2**20 for n in sizes]
        axes[0].loglog(sizes, seconds, "o-", label=method)
        axes[1].loglog(sizes, growth, "o-", label=method)
    axes[0].loglog(sizes, [seconds_ * 0 + statistics.median(r["seconds"] for r in results["DAMEmbedding", sizes[0]]) * n / sizes[0] for seconds_, n in zip(sizes, sizes)], "k:", label="linear in N")
    axes[1].loglog(sizes, [2 * n * 100 * 4 / 2**20 for n in sizes], "k:", label="2 x float32 input")
    axes[0].set(xlabel="rows N", ylabel="median fit seconds", title="fit time")
    axes[1].set(xlabel="rows N", ylabel="peak RSS growth (MiB)", title="peak memory of fit")
    for axis in axes:
        axis.legend(fontsize=7)
    save_figure(figure, f"{args.name}_scaling")
    return {"scaling_pass": passed}


# ---------------------------------------------------------------------------------


def section_compile(report, args):
    import torch

    from skdam.nn import GatedAutoencoder

    import tempfile

    # A fresh inductor cache, so that compile time is what a first fit on a machine pays.
    os.environ["TORCHINDUCTOR_CACHE_DIR"] = tempfile.mkdtemp(prefix="skdam-inductor-")
    report("## torch.compile against eager, per training step\n")
    report("The step is the estimators' own: normalise, encode, gate, decode, MSE + alpha * soft open count, Adam (the loss and its backward compiled, inductor's C++ backend). Compile time is the first compiled step, with an empty inductor cache.\n")
    rows = []
    for name, n_features, hidden, batch in [("DAMEmbedding, d=100", 100, (), 100), ("DAMAutoencoder, d=100", 100, AUTOENCODER_HIDDEN, 100), ("DAMAutoencoder, Fashion-MNIST", 784, AUTOENCODER_HIDDEN, 1024)]:
        X = torch.randn(20 * batch, n_features)
        medians = {}
        compile_seconds = float("nan")
        for mode in ["eager", "compiled"]:
            torch.manual_seed(0)
            module = GatedAutoencoder(n_features, 64, hidden, AUTOENCODER_ACTIVATION)
            optimizer = torch.optim.Adam(module.parameters(), lr=1e-3)

            def objective(batch_):
                normalised = module.normalize(batch_)
                return torch.nn.functional.mse_loss(module.decode_normalized(module.encode_normalized(normalised)), normalised) + 0.01 * module.gate.soft_open_count()

            loss_function = torch.compile(objective) if mode == "compiled" else objective

            def step(i):
                loss = loss_function(X[(i % 20) * batch : (i % 20 + 1) * batch])
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()

            def steps():
                for i in range(args.compile_steps):
                    step(i)

            _, first = timed(partial(step, 0))
            if mode == "compiled":
                compile_seconds = first
            seconds, _, _ = median_seconds(steps, args.repeats)
            medians[mode] = seconds / args.compile_steps
        steps_to_repay = compile_seconds / (medians["eager"] - medians["compiled"]) if medians["compiled"] < medians["eager"] else float("inf")
        rows.append((name, batch, medians["eager"] * 1e3, medians["compiled"] * 1e3, medians["eager"] / medians["compiled"], compile_seconds, steps_to_repay))
    report.table(["model", "batch", "eager ms/step", "compiled ms/step", "speed-up", "compile s", "steps to repay compile"], rows, ["", "d", ".3f", ".3f", ".2f", ".1f", ".0f"])
    return {}


# ---------------------------------------------------------------------------------


def section_precision(report, args):
    import torch

    from skdam._base import GATE_LEARNING_RATE
    from skdam._runtime import MIXED_PRECISION_MIN_WORK, multiplies_bfloat16_natively, step_work
    from skdam._training import GateTrainer, TrainingSettings
    from skdam.nn import GatedAutoencoder

    report("## Mixed precision: float32 against bfloat16 matrix products, per training step\n")
    native = multiplies_bfloat16_natively(torch.device("cpu"))
    report(f"This CPU multiplies bfloat16 natively (AMX): {native}. Each step is the trainer's own (GateTrainer.run_epoch over 50 batches); medians of {args.repeats} epochs after one warm-up epoch. mixed_precision='auto' uses bfloat16 from {MIXED_PRECISION_MIN_WORK:,} multiply-adds per step (batch rows x parameters), and only on such hardware.\n")
    rows = []
    for name, n_features, hidden, batch in [
        ("manifold in R^3 (N=2000)", 3, AUTOENCODER_HIDDEN, 40),
        ("digits (N=1797)", 64, AUTOENCODER_HIDDEN, 36),
        ("linear experiment, DAMEmbedding", 100, (), 100),
        ("MLP kernel, DAMAutoencoder", 100, AUTOENCODER_HIDDEN, 100),
        # batch_size="auto" steps with at most 256 rows, as the unit search does.
        ("Fashion-MNIST, DAMEmbedding", 784, (), 256),
        ("Fashion-MNIST, DAMAutoencoder", 784, AUTOENCODER_HIDDEN, 256),
        ("N >= 12800, d=100, DAMAutoencoder", 100, AUTOENCODER_HIDDEN, 256),
        # Larger steps, for a batch_size set by hand.
        ("Fashion-MNIST, DAMAutoencoder, batch_size=1200", 784, AUTOENCODER_HIDDEN, 1200),
        ("d=100, DAMAutoencoder, batch_size=20000", 100, AUTOENCODER_HIDDEN, 20000),
    ]:
        X = torch.randn(50 * batch, n_features)
        per_step = {}
        for dtype in ["float32", "bfloat16"]:
            module = GatedAutoencoder(n_features, min(64, n_features), hidden, AUTOENCODER_ACTIVATION).reset_parameters(torch.Generator().manual_seed(0))
            settings = TrainingSettings(alpha=0.01, batch_size=batch, learning_rate=AUTOENCODER_LEARNING_RATE, gate_learning_rate=GATE_LEARNING_RATE, min_open=1, matmul_dtype=dtype)
            trainer = GateTrainer(module, settings, torch.Generator().manual_seed(0))
            trainer.run_epoch(X)
            seconds, _, _ = median_seconds(lambda: trainer.run_epoch(X), args.repeats)
            per_step[dtype] = seconds / 50
        work = step_work(module, batch)
        rows.append((name, batch, f"2^{np.log2(work):.1f}", "bfloat16" if native and work >= MIXED_PRECISION_MIN_WORK else "float32", per_step["float32"] * 1e3, per_step["bfloat16"] * 1e3, per_step["float32"] / per_step["bfloat16"]))
    report.table(["step", "batch", "multiply-adds", "auto picks", "float32 ms/step", "bfloat16 ms/step", "bfloat16 speed-up"], rows, ["", "d", "", "", ".2f", ".2f", ".2f"])
    return {}


# ---------------------------------------------------------------------------------


def _principal_axes_in_blocks(X, n_directions, rows_per_block):
    """Mean, spread and top principal axes of ``X``, its moments summed over blocks of rows.

    The covariance path of ``skdam._statistics.principal_axes`` with the block size
    as a parameter (the package derives it from X's shape), so that block sizes can
    be timed against each other without changing the package.
    """
    n_samples, n_features = X.shape
    blocks = [slice(start, start + rows_per_block) for start in range(0, n_samples, rows_per_block)]
    mean = sum(X[rows].sum(axis=0, dtype=np.float64) for rows in blocks) / n_samples
    largest_deviation = max(
        float(max(np.max(X[rows].max(axis=0) - mean), np.max(mean - X[rows].min(axis=0)))) for rows in blocks
    )
    scatter = np.zeros((n_features, n_features))
    for rows in blocks:
        centred = (X[rows] - mean) / largest_deviation  # float64
        scatter += centred.T @ centred
    spread = largest_deviation * float(np.sqrt(np.trace(scatter) / (n_samples * n_features)))
    _, eigenvectors = np.linalg.eigh(scatter)
    return mean, spread, eigenvectors[:, ::-1][:, :n_directions].T


def _module_as_told():
    from skdam.nn import GatedAutoencoder

    class ModuleAsTold(GatedAutoencoder):
        """The package's module, sharing its matrix products and skipping closed units as told, whatever the width.

        None leaves the choice to the package.
        """

        def __init__(self, *args, fuse=None, skips=None, **kwargs):
            super().__init__(*args, **kwargs)
            self.fuse, self.skips = fuse, skips

        def _fuses_products(self):
            return super()._fuses_products() if self.fuse is None else self.fuse

        def _skips_closed_units(self):
            return super()._skips_closed_units() if self.skips is None else self.skips

    return ModuleAsTold


def _closed_units_table(report, args):
    """One training step through every unit of the bottleneck against through the open ones."""
    import torch

    from skdam._training import batch_error
    from skdam.nn import GatedAutoencoder

    ModuleAsTold = _module_as_told()
    blocks = 10 * args.repeats
    report(
        f"\nClosed units: one training step of the default perceptron (the package's `batch_error`, float32) with the "
        "products through every unit of the bottleneck, against through the span of the open ones (the closed units "
        f"add exactly zero); median of {blocks} blocks of 20 steps, the two ways taking turns (a few per cent apart, "
        "so turns, not runs one after the other, keep the machine's drift out), at the manifolds' batches and the unit search's.\n"
    )
    rows = []
    for n_features, width, n_open, batch_rows in [(20, 20, 4, 40), (40, 40, 5, 256), (100, 64, 20, 256), (784, 64, 17, 256), (784, 64, 9, 256)]:
        x = torch.randn(batch_rows, n_features)
        block_seconds = {False: [], True: []}
        trainers = {}
        for skips in block_seconds:
            module = ModuleAsTold(n_features, width, AUTOENCODER_HIDDEN, AUTOENCODER_ACTIVATION, skips=skips)
            module.reset_parameters(torch.Generator().manual_seed(0)).set_open_count(n_open)
            trainers[skips] = module, torch.optim.Adam(module.parameters(), lr=1e-3, fused=True)

        def steps(skips):
            module, optimizer = trainers[skips]
            for _ in range(20):
                loss = batch_error(module, x, False)[0]
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()

        for block in range(blocks + 1):
            for skips in block_seconds:
                seconds = timed(partial(steps, skips))[1]
                if block:  # the first block warms up
                    block_seconds[skips].append(seconds)
        per_step = {skips: statistics.median(seconds) / 20 for skips, seconds in block_seconds.items()}
        package_skips = GatedAutoencoder(n_features, width, AUTOENCODER_HIDDEN)._skips_closed_units()
        rows.append((n_features, width, n_open, batch_rows, per_step[False] * 1e3, per_step[True] * 1e3, per_step[False] / per_step[True], "open" if package_skips else "every"))
    report.table(
        ["features", "units", "open", "rows", "every unit ms/step", "open units ms/step", "open's speed-up", "the package's"],
        rows, ["d", "d", "d", "d", ".2f", ".2f", ".2f", ""],
    )  # fmt: skip


def section_internals(report, args):
    import torch

    from skdam._statistics import principal_axes, row_chunks
    from skdam.nn import GatedAutoencoder

    ModuleAsTold = _module_as_told()

    report("## Inside the package: each choice against the one it replaced\n")
    report(
        f"One training step of the default perceptron ({' -> '.join(map(str, AUTOENCODER_HIDDEN))} -> 64, {AUTOENCODER_ACTIVATION}) on "
        "as many features as the manifolds' (3 to 100, batch 256, the adaptation's) and Fashion-MNIST's (784, batch 1200, an epoch's "
        f"step), median of {args.repeats} x 50 steps. Products: the linear path and the perceptron sharing one matrix product at the input "
        "and one at the output, against two each (the same function). Adam: torch's fused kernel against its loop over the tensors. "
        "Each row times one choice with the other as the package makes it at that width; the last column is what the package picks.\n"
    )
    rows = []
    for n_features, batch_rows, dtype in [(3, 256, torch.float32), (30, 256, torch.float32), (100, 256, torch.float32), (784, 1200, torch.float32), (784, 1200, torch.bfloat16)]:
        x = torch.randn(batch_rows, n_features)
        package_fuses = GatedAutoencoder(n_features, 64, AUTOENCODER_HIDDEN)._fuses_products()
        variants = {
            "products: two": (False, True), "products: one": (True, True),
            "Adam: loop": (package_fuses, False), "Adam: fused": (package_fuses, True),
        }
        per_step = {}
        for name, (fuse, fused_adam) in variants.items():
            module = ModuleAsTold(n_features, 64, AUTOENCODER_HIDDEN, AUTOENCODER_ACTIVATION, fuse=fuse).reset_parameters(torch.Generator().manual_seed(0))
            optimizer = torch.optim.Adam(module.parameters(), lr=1e-3, fused=fused_adam)

            def steps(module=module, optimizer=optimizer, dtype=dtype, x=x):
                for _ in range(50):
                    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=dtype == torch.bfloat16):
                        reconstruction = module.decode_normalized(module.encode_normalized(x))
                    loss = torch.nn.functional.mse_loss(reconstruction.float(), x)
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    optimizer.step()

            steps()
            per_step[name] = median_seconds(steps, args.repeats)[0] / 50
        rows.append((
            n_features, batch_rows, str(dtype).removeprefix("torch."),
            per_step["products: two"] * 1e3, per_step["products: one"] * 1e3, per_step["products: two"] / per_step["products: one"],
            per_step["Adam: loop"] * 1e3, per_step["Adam: fused"] * 1e3, per_step["Adam: loop"] / per_step["Adam: fused"],
            "one" if package_fuses else "two",
        ))  # fmt: skip
    report.table(
        ["features", "rows", "products in", "two products ms/step", "one product ms/step", "one's speed-up",
         "Adam loop ms/step", "Adam fused ms/step", "fused's speed-up", "the package's products"],
        rows, ["d", "d", "", ".2f", ".2f", ".2f", ".2f", ".2f", ".2f", ""],
    )  # fmt: skip

    _closed_units_table(report, args)

    from _fashion_mnist import ensure_installed, load_fashion_mnist

    ensure_installed()
    X, _ = load_fashion_mnist("train")
    report(f"\nMean, spread and top 64 principal axes of Fashion-MNIST (60000 x 784 float32), summed in float64 over blocks; median of {args.repeats}.\n")
    package_rows = row_chunks(X)[0].stop
    earlier_rows = 2**17 // X.shape[1]  # 1 MiB of float64
    package_seconds, _, package_axes = median_seconds(lambda: principal_axes(X, 64, np.random.RandomState(0)), args.repeats)
    rows = [("a sixteenth of X, 1 to 8 MiB (the package)", len(row_chunks(X)), package_seconds, 1.0)]
    for label, rows_per_block in [("the same, in this script's copy", package_rows), ("1 MiB (the earlier fixed size), in the copy", earlier_rows)]:
        seconds, _, (mean, spread, _) = median_seconds(partial(_principal_axes_in_blocks, X, 64, rows_per_block), args.repeats)
        # The copy must compute what the package does, or its times say nothing about the package.
        assert np.allclose(mean, package_axes.mean) and np.isclose(spread, package_axes.spread), "the copy drifted from skdam._statistics"
        rows.append((label, -(-X.shape[0] // rows_per_block), seconds, seconds / package_seconds))
    report.table(["blocks", "number of blocks", "median s", "time / the package's"], rows, ["", "d", ".3f", ".2f"])
    return {}


def main():
    parser = add_common_arguments(argparse.ArgumentParser(description=__doc__.splitlines()[0]))
    parser.add_argument("--sections", nargs="+", choices=SECTIONS, default=SECTIONS)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seeds", type=int, default=5, help="seeds of DAM fits on the paper's synthetic data")
    parser.add_argument("--fashion-seeds", type=int, default=3)
    parser.add_argument("--mlp-slice", type=int, default=100, help="epochs per timed slice of the MLP-kernel recipe")
    parser.add_argument("--fashion-slice", type=int, default=2, help="epochs per timed slice of the Fashion-MNIST recipe")
    parser.add_argument("--device", default="cpu", help="where the recipe and DAMAutoencoder train in the fashion_mnist section")
    parser.add_argument("--transform-repeats", type=int, default=5)
    parser.add_argument("--compile-steps", type=int, default=200)
    parser.add_argument("--scaling-sizes", nargs="+", default=["1e4", "1e5", "1e6"])
    parser.add_argument("--scaling-child", nargs=3, metavar=("N", "METHOD", "SEED"), help=argparse.SUPPRESS)
    parser.add_argument("--name", default="speed", help="name of the text copy in benchmarks/results/, and the prefix of its plots")
    args = parser.parse_args()
    if args.scaling_child:
        n_samples, method, seed = args.scaling_child
        scaling_child(int(n_samples), method, int(seed), args.threads)
        return
    limit_threads(args.threads)
    from skdam import DAMAutoencoder

    defaults = DAMAutoencoder().get_params()
    assert (AUTOENCODER_HIDDEN, AUTOENCODER_ACTIVATION, AUTOENCODER_LEARNING_RATE) == (defaults["hidden_layer_sizes"], defaults["activation"], defaults["learning_rate_init"])
    report = start_report(args.name, "Speed against the paper's recipe", args.threads)
    report("Medians over repeats; ratios against the recipe timed in the same process. Where the recipe's epochs are extrapolated from a timed slice, the table says so.\n")
    warm_up()
    outcome = {}
    for section in args.sections:
        outcome.update(globals()[f"section_{section}"](report, args))
        report.save()
    times = {key[len("times_"):]: outcome.pop(key) for key in list(outcome) if key.startswith("times_")}
    report(f"Summary: {outcome}")
    report.save()
    if times:
        plot_fit_times(times, args.name)


def plot_fit_times(times, report_name):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, len(times), figsize=(4 * len(times), 3.6), squeeze=False)
    for axis, (experiment, methods) in zip(axes[0], times.items()):
        names = list(methods)
        bars = axis.bar(range(len(names)), [methods[n] for n in names], color=["tab:gray", "tab:blue", "k"][: len(names)])
        axis.set_yscale("log")
        axis.set_xticks(range(len(names)), names, rotation=20, ha="right", fontsize=8)
        axis.set(ylabel="median fit seconds (log)", title=experiment)
        for bar, name in zip(bars, names):
            axis.annotate(f"{methods[name]:.3g} s", (bar.get_x() + bar.get_width() / 2, bar.get_height()), ha="center", va="bottom", fontsize=7)
    figure.suptitle("Fit time against the paper's recipe (same process, 1 thread)")
    save_figure(figure, f"{report_name}_fit_times")


if __name__ == "__main__":
    main()
