"""The DAM paper's MNIST comparison, on Fashion-MNIST: test MSE against the dimension.

For each point of an alpha sweep, ``DAMAutoencoder(alpha=...)`` is fitted on the
60000 training images (pixels scaled to [-1, 1]); its test MSE (10000 test images,
in pixel units) is compared at the dimension it found with

- PCA at the same dimension (exact: PCA(64) fitted once, truncated), and
- the paper's L1-gated baseline (``benchmarks/_l1_baseline.py``: skdam's network,
  warm start and optimiser with the DAM gate replaced by per-unit scales
  ``max(0, s_i)`` and the penalty ``lambda * mean(|gate|)``), swept over lambda; its
  curve of test MSE against dimension is interpolated linearly at DAM's dimension.

A logistic-regression accuracy (StandardScaler + LogisticRegression) on each
embedding, and the spread of ``n_components_`` over 5 seeds at the default alpha.

Usage: ``python benchmarks/fashion_mnist.py [--threads 1]``
"""

import argparse
import warnings

import numpy as np

from _common import add_common_arguments, limit_threads, save_figure, start_report, timed_fit

ALPHAS = [0.002, 0.005, 0.01, 0.02, 0.05, 0.1]
# The L1 curve must span every dimension the DAM sweep finds: alpha=0.1 keeps 3,
# and 30 was the largest penalty until it did (4 dimensions).
PENALTIES = [0.2, 0.4, 0.7, 1.0, 1.5, 2.0, 3.0, 5.0, 8.0, 15.0, 30.0, 60.0, 120.0]


def test_mse(reducer, X_test):
    return float(np.mean((reducer.inverse_transform(reducer.transform(X_test)) - X_test) ** 2))


def accuracy(Z_train, y_train, Z_test, y_test):
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    classifier = make_pipeline(StandardScaler(), LogisticRegression(max_iter=300))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        classifier.fit(Z_train, y_train)
    return float(classifier.score(Z_test, y_test))


def main():
    parser = add_common_arguments(argparse.ArgumentParser(description=__doc__.splitlines()[0]))
    parser.add_argument("--alphas", type=float, nargs="+", default=ALPHAS)
    parser.add_argument("--penalties", type=float, nargs="+", default=PENALTIES)
    parser.add_argument("--l1-epochs", type=int, default=15)
    parser.add_argument("--seeds", type=int, default=5, help="seeds at the default alpha")
    args = parser.parse_args()
    limit_threads(args.threads)

    from sklearn.decomposition import PCA

    from _fashion_mnist import ensure_installed, load_fashion_mnist
    from _l1_baseline import L1GatedAutoencoder
    from skdam import DAMAutoencoder

    ensure_installed()
    X, y = load_fashion_mnist("train")
    X_test, y_test = load_fashion_mnist("test")
    report = start_report("fashion_mnist", "Fashion-MNIST: test MSE against dimension", args.threads)
    report("60000 training and 10000 test images of 784 pixels scaled to [-1, 1]; MSE in those units on the test images.\n")

    # PCA: one fit, truncated to every dimension; the test MSE of the top k axes.
    pca = PCA(64, random_state=0).fit(X)
    projections = (X_test - pca.mean_) @ pca.components_.T
    total = np.square(X_test - pca.mean_).sum(axis=1).mean()
    pca_mse = {k: float((total - np.square(projections[:, :k]).sum(axis=1).mean()) / X.shape[1]) for k in range(1, 65)}
    pca_train = (X - pca.mean_) @ pca.components_.T
    pca_accuracy = {}

    def pca_accuracy_at(k):
        if k not in pca_accuracy:
            pca_accuracy[k] = accuracy(pca_train[:, :k], y, projections[:, :k], y_test)
        return pca_accuracy[k]

    # DAM sweep.
    dam_points = []
    default_fits = []
    for alpha in args.alphas:
        estimator, seconds, warned = timed_fit(DAMAutoencoder(alpha=alpha, random_state=0), X)
        k = estimator.n_components_
        point = dict(alpha=alpha, k=k, mse=test_mse(estimator, X_test), seconds=seconds, epochs=estimator.n_iter_,
                     accuracy=accuracy(estimator.transform(X), y, estimator.transform(X_test), y_test), warnings=warned)
        dam_points.append(point)
        if alpha == 0.01:  # the default: seed 0 of the spread over seeds
            default_fits.append(point)
        print("DAM", point, flush=True)

    # L1 sweep.
    l1_points = []
    for penalty in args.penalties:
        baseline, seconds, _ = timed_fit(L1GatedAutoencoder(penalty, epochs=args.l1_epochs, random_state=0), X)
        point = dict(penalty=penalty, k=baseline.n_components_, mse=test_mse(baseline, X_test), seconds=seconds,
                     accuracy=accuracy(baseline.transform(X), y, baseline.transform(X_test), y_test) if baseline.n_components_ else float("nan"))
        l1_points.append(point)
        print("L1", point, flush=True)
    l1_sorted = sorted((p for p in l1_points if p["k"] > 0), key=lambda p: p["k"])
    l1_dims = np.array([p["k"] for p in l1_sorted], dtype=float)
    l1_mse = np.array([p["mse"] for p in l1_sorted])

    def l1_at(k):
        # Several penalties can land on the same dimension: keep the best MSE there.
        dims, best = [], []
        for d, m in zip(l1_dims, l1_mse):
            if dims and dims[-1] == d:
                best[-1] = min(best[-1], m)
            else:
                dims.append(d)
                best.append(m)
        if not dims[0] <= k <= dims[-1]:
            return None
        return float(np.interp(k, dims, best))

    # Seeds at the default alpha; seed 0 came from the sweep when it holds 0.01.
    for seed in range(len(default_fits), args.seeds):
        estimator, seconds, _ = timed_fit(DAMAutoencoder(random_state=seed), X)
        default_fits.append(dict(k=estimator.n_components_, mse=test_mse(estimator, X_test), seconds=seconds, epochs=estimator.n_iter_))

    report("## DAMAutoencoder(alpha) against PCA and the L1 baseline at the same dimension\n")
    rows = []
    verdicts = []
    for point in dam_points:
        k = point["k"]
        l1 = l1_at(k)
        beats_pca = point["mse"] < pca_mse[k]
        beats_l1 = l1 is not None and point["mse"] < l1
        verdicts.append((point["alpha"], beats_pca, beats_l1, l1 is not None))
        rows.append((point["alpha"], k, point["epochs"], point["seconds"], point["mse"], pca_mse[k], "outside its range" if l1 is None else f"{l1:.4f}",
                     point["accuracy"], pca_accuracy_at(k), ", ".join(point["warnings"]) or "-",
                     ("yes" if beats_pca else "NO") + " / " + ("n/a" if l1 is None else ("yes" if beats_l1 else "NO"))))
    report.table(["alpha", "dims", "epochs", "fit s", "DAM test MSE", "PCA test MSE", "L1 test MSE (interp.)", "DAM accuracy", "PCA accuracy", "warnings", "beats PCA / L1"],
                 rows, ["g", "d", "d", ".1f", ".4f", ".4f", "", ".4f", ".4f", "", ""])
    report("## L1-gated baseline sweep\n")
    report(f"Fixed {args.l1_epochs} epochs per penalty (DAM stopped after the epochs shown above).\n")
    report.table(["lambda", "dims", "fit s", "L1 test MSE", "PCA test MSE", "L1 accuracy", "PCA accuracy"],
                 [(p["penalty"], p["k"], p["seconds"], p["mse"], pca_mse[p["k"]] if p["k"] else float("nan"), p["accuracy"], pca_accuracy_at(p["k"]) if p["k"] else float("nan")) for p in l1_points],
                 ["g", "d", ".1f", ".4f", ".4f", ".4f", ".4f"])
    dims = [f["k"] for f in default_fits]
    report("## Default alpha=0.01 over seeds\n")
    report.table(["seed", "dims", "epochs", "fit s", "test MSE", "PCA test MSE"],
                 [(seed, f["k"], f["epochs"], f["seconds"], f["mse"], pca_mse[f["k"]]) for seed, f in enumerate(default_fits)],
                 ["d", "d", "d", ".1f", ".4f", ".4f"])
    spread = max(dims) - min(dims)
    default = default_fits[0]
    default_accuracy = next((p["accuracy"] for p in dam_points if p["alpha"] == 0.01), None)
    accuracy_text = "" if default_accuracy is None else f", logistic-regression accuracy {default_accuracy:.4f} (PCA at {default['k']}: {pca_accuracy_at(default['k']):.4f})"
    report(f"Default DAMAutoencoder(): {default['k']} dimensions (seed 0), test MSE {default['mse']:.4f} (PCA at {default['k']}: {pca_mse[default['k']]:.4f}){accuracy_text}; "
           f"n_components_ over {len(dims)} seeds {dims}, spread {spread} (target <= 2): {'PASS' if spread <= 2 else 'FAIL'}")
    beats_all = all(p and l for _, p, l, _ in verdicts)
    report(f"Acceptance: at every alpha DAM's test MSE below PCA's and below the L1 baseline's at the same dimension: {'PASS' if beats_all else 'FAIL'} "
           f"(PCA: {sum(p for _, p, _, _ in verdicts)}/{len(verdicts)}, L1: {sum(l for _, _, l, _ in verdicts)}/{len(verdicts)}, L1 curve covering: {sum(c for *_, c in verdicts)}/{len(verdicts)})")
    report.save()

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, 2, figsize=(11, 4))
    ks = np.arange(1, 65)
    axes[0].plot(ks, [pca_mse[k] for k in ks], "k-", label="PCA")
    axes[0].plot(l1_dims, l1_mse, "s--", color="tab:orange", label="L1-gated baseline (lambda sweep)")
    axes[0].plot([p["k"] for p in dam_points], [p["mse"] for p in dam_points], "o-", color="tab:blue", label="DAMAutoencoder (alpha sweep)")
    for p in dam_points:
        axes[0].annotate(f"{p['alpha']:g}", (p["k"], p["mse"]), textcoords="offset points", xytext=(4, 4), fontsize=7, color="tab:blue")
    axes[0].set(xlabel="dimension", ylabel="test MSE (pixels in [-1, 1])", title="Fashion-MNIST reconstruction", yscale="log")
    axes[0].legend(fontsize=8)
    axes[1].plot([p["k"] for p in dam_points], [p["accuracy"] for p in dam_points], "o-", label="DAMAutoencoder")
    axes[1].plot(l1_dims, [p["accuracy"] for p in l1_sorted], "s--", label="L1-gated baseline")
    pca_ks = sorted({p["k"] for p in dam_points} | {int(k) for k in l1_dims})
    axes[1].plot(pca_ks, [pca_accuracy_at(k) for k in pca_ks], "k.-", label="PCA")
    axes[1].set(xlabel="dimension", ylabel="logistic-regression test accuracy", title="linear probe on the embedding")
    axes[1].legend(fontsize=8)
    save_figure(figure, "fashion_mnist")


if __name__ == "__main__":
    main()
