"""Why DAMAutoencoder probes, and why its perceptron is what it is.

Three measurements behind the probes of ``docs/method.rst`` ("Stuck at the linear
start"), on draws of ``manifolds.py``'s data sets (N = 2000):

1. Without probes the learned gate settles on the linear span of a 3-turn helix
   however long training runs: ``max_iter=300`` with a stopping rule that never fires.
2. How fast each network learns to do without a unit: ``n_components=k`` (the gate
   closes on a schedule, then training goes on) for a fixed number of epochs, with
   the reconstruction error (the unexplained share of the variance) after 10, 20,
   30 and 100 epochs. A probe gets 30 epochs and needs the error under ``alpha``
   (0.01) above the settled one.
3. The defaults with probes, per seed: the dimension found and the epochs taken.

Usage: ``python benchmarks/probes.py [--threads 1]``
"""

import argparse

from _common import add_common_arguments, limit_threads, start_report, timed_fit

import manifolds

#: The perceptron before the probes, and the defaults since.
NETWORKS = {
    "one ELU layer of 128, step 1e-3 (old default)": dict(hidden_layer_sizes=(128,), activation="elu", learning_rate_init=1e-3),
    "two ELU layers of 128, step 3e-3": dict(hidden_layer_sizes=(128, 128), activation="elu", learning_rate_init=3e-3),
    "two tanh layers of 128, step 3e-3 (default)": dict(hidden_layer_sizes=(128, 128), activation="tanh", learning_rate_init=3e-3),
    "two tanh layers of 128, step 2e-3": dict(hidden_layer_sizes=(128, 128), activation="tanh", learning_rate_init=2e-3),
}
CHECKPOINTS = (10, 20, 30, 100)
#: Data set, the number of units to force, and why.
FORCED = [
    ("helix (open, 3 turns)", 2, "one unit fewer than its linear span"),
    ("Swiss roll", 2, "its intrinsic dimension: unrolling it"),
]


def without_probes(**params):
    """``DAMAutoencoder(**params)`` with the probes switched off, for this benchmark only.

    The package has no parameter for it: the probes are part of what
    ``n_components="auto"`` means. This subclass overrides the estimator's hook for
    what follows settling so that the settled gates are the answer, as they were
    before the probes.
    """
    from skdam import DAMAutoencoder

    class DAMAutoencoderWithoutProbes(DAMAutoencoder):
        def _after_settling(self, linear_errors):
            return None

    return DAMAutoencoderWithoutProbes(**params)


def main():
    parser = add_common_arguments(argparse.ArgumentParser(description=__doc__.splitlines()[0]))
    parser.add_argument("--seeds", type=int, default=5)
    args = parser.parse_args()
    limit_threads(args.threads)
    from skdam import DAMAutoencoder

    data_sets = {data_set.label: data_set for data_set in manifolds.data_sets()}
    report = start_report("probes", "Probes for one unit fewer", args.threads)

    report("## 1. Without probes, the gates settle on the linear span\n")
    helix = data_sets["helix (open, 3 turns)"].draw(2000, 0)
    long_fit = timed_fit(without_probes(max_iter=300, n_iter_no_change=10**6, random_state=0), helix).estimator
    report(f"helix, seed 0, default network, probes off, 300 epochs: open gates per 50 epochs {long_fit.n_components_curve_[::50]}, error {long_fit.reconstruction_error_curve_[-1]:.4f}\n")

    report("## 2. Error with a unit forced shut, per network\n")
    rows = []
    for name, forced, why in FORCED:
        X = data_sets[name].draw(2000, 0)
        for network, settings in NETWORKS.items():
            model, seconds, _ = timed_fit(DAMAutoencoder(n_components=forced, max_iter=max(CHECKPOINTS), n_iter_no_change=10**6, random_state=0, **settings), X)
            curve = model.reconstruction_error_curve_
            rows.append((f"{name}, k={forced} ({why})", network, *(curve[epoch - 1] for epoch in CHECKPOINTS), seconds))
    report.table(["data, units", "network", *(f"error after {epoch}" for epoch in CHECKPOINTS), "s"], rows, ["", "", ".3f", ".3f", ".3f", ".3f", ".1f"])

    report("## 3. The defaults, with probes\n")
    rows = []
    for name in ["helix (open, 3 turns)", "circle S^1 in R^10", "Swiss roll", "flat torus T^3 in R^12", "affine 5 in R^20"]:
        for seed in range(args.seeds):
            X = data_sets[name].draw(2000, seed)
            model, seconds, _ = timed_fit(DAMAutoencoder(random_state=seed), X)
            rows.append((name, seed, model.n_components_, model.n_iter_, " ".join(map(str, _counts_in_order(model.n_components_curve_))), seconds))
    report.table(["data set", "seed", "n_components_", "epochs", "open gates, in order", "fit s"], rows, ["", "d", "d", "d", "", ".2f"])
    report.save()


def _counts_in_order(curve):
    """The open counts the curve passes through, without repeats."""
    return [count for index, count in enumerate(curve) if index == 0 or count != curve[index - 1]]


if __name__ == "__main__":
    main()
