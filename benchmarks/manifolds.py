"""Discovery on manifolds of known dimension: DAM against intrinsic-dimension estimators.

Every data set is generated here (N = 2000 by default), five times (seeds 0-4), and
every method runs on the same five draws in the same process:

- ``DAMAutoencoder()`` and ``DAMEmbedding()`` with their defaults;
- ``PCA(n_components="mle")`` (Minka) and ``PCA(n_components=0.95)``;
- scikit-dimension's TwoNN, MLE (Levina-Bickel) and lPCA (local PCA on 100 neighbours,
  pointwise estimates averaged), with their defaults.

A method's estimate for a data set is the median over the five draws, rounded to an
integer; it is a hit when it lies within ``max(1, 10 %)`` of the target. Two targets:

- strict: the intrinsic dimension;
- embedding: the fewest coordinates a continuous encoder can use without tearing the
  manifold, the most an autoencoder's bottleneck can be asked for: a closed curve
  needs 2, the sphere S^n needs n + 1, a torus T^n needs n + 1; elsewhere it equals
  the intrinsic dimension. It applies to the DAM estimators; the intrinsic-dimension
  estimators are scored against the intrinsic dimension in both views.

The acceptance criterion compares DAMAutoencoder() with the best of the three
intrinsic-dimension estimators (TwoNN, MLE, lPCA); the PCA rules are shown for
context. Exact counts (estimate == target) are reported beside the tolerance counts,
since a tolerance of 1 accepts 3 for a 2-dimensional manifold.

Usage: ``python benchmarks/manifolds.py [--n-samples 2000] [--seeds 5] [--threads 1]``
"""

import argparse
import statistics
import time
import warnings
from dataclasses import dataclass

import numpy as np

from _common import Report, add_common_arguments, command_line, limit_threads, machine_description, save_figure


def _rotate_into(X, n_features, rng):
    """Embed ``X`` isometrically in ``n_features`` dimensions by a random rotation."""
    basis, _ = np.linalg.qr(rng.normal(size=(n_features, X.shape[1])))
    return X @ basis.T


def _noisy(X, noise, rng):
    if noise == 0:
        return X
    scale = np.sqrt(X.var(axis=0).mean())
    return X + noise * scale * rng.normal(size=X.shape)


def swiss_roll(n, rng):
    from sklearn.datasets import make_swiss_roll

    return make_swiss_roll(n, random_state=rng)[0]


def s_curve(n, rng):
    from sklearn.datasets import make_s_curve

    return make_s_curve(n, random_state=rng)[0]


def sphere(dimension, n_features):
    def make(n, rng):
        points = rng.normal(size=(n, dimension + 1))
        points /= np.linalg.norm(points, axis=1, keepdims=True)
        return points if n_features == dimension + 1 else _rotate_into(points, n_features, rng)

    return make


def circle(n_features):
    return sphere(1, n_features)


def helix(turns=3):
    """An open helix in R^3: a curve, unrollable to one coordinate."""

    def make(n, rng):
        t = rng.uniform(0, 2 * np.pi * turns, size=n)
        return np.column_stack([np.cos(t), np.sin(t), t / (2 * np.pi)])

    return make


def torus_in_3d(n, rng):
    """The ring torus with radii 2 and 1 (uniform angles)."""
    u, v = rng.uniform(0, 2 * np.pi, size=(2, n))
    return np.column_stack([(2 + np.cos(v)) * np.cos(u), (2 + np.cos(v)) * np.sin(u), np.sin(v)])


def flat_torus(dimension, n_features):
    """The product of ``dimension`` unit circles, rotated into ``n_features`` dimensions."""

    def make(n, rng):
        angles = rng.uniform(0, 2 * np.pi, size=(n, dimension))
        points = np.column_stack([np.cos(angles), np.sin(angles)])
        return _rotate_into(points, n_features, rng)

    return make


def affine(dimension, n_features):
    def make(n, rng):
        from skdam.datasets import make_linear_latent

        return make_linear_latent(n, dimension, n_features, random_state=rng)[0] + rng.normal(size=n_features) * 5

    return make


def mlp_latent(dimension, n_features):
    def make(n, rng):
        from skdam.datasets import make_mlp_latent

        return make_mlp_latent(n, dimension, n_features, random_state=rng)[0]

    return make


@dataclass
class DataSet:
    name: str
    make: object
    dimension: int
    embedding_dimension: int
    n_features: int
    noise: float = 0.0

    @property
    def label(self):
        return self.name + (f", {self.noise:.0%} noise" if self.noise else "")

    def draw(self, n_samples, seed):
        rng = np.random.RandomState(seed)
        return _noisy(self.make(n_samples, rng), self.noise, rng)


def data_sets():
    clean = [
        DataSet("Swiss roll", swiss_roll, 2, 2, 3),
        DataSet("S-curve", s_curve, 2, 2, 3),
        DataSet("helix (open, 3 turns)", helix(), 1, 1, 3),
        DataSet("circle S^1 in R^10", circle(10), 1, 2, 10),
        DataSet("sphere S^2 in R^3", sphere(2, 3), 2, 3, 3),
        DataSet("sphere S^4 in R^10", sphere(4, 10), 4, 5, 10),
        DataSet("torus T^2 in R^3", torus_in_3d, 2, 3, 3),
        DataSet("flat torus T^3 in R^12", flat_torus(3, 12), 3, 4, 12),
        DataSet("affine 5 in R^20", affine(5, 20), 5, 5, 20),
        DataSet("affine 10 in R^50", affine(10, 50), 10, 10, 50),
        DataSet("MLP latent 2 in R^3", mlp_latent(2, 3), 2, 2, 3),
        DataSet("MLP latent 4 in R^10", mlp_latent(4, 10), 4, 4, 10),
        DataSet("MLP latent 8 in R^30", mlp_latent(8, 30), 8, 8, 30),
        DataSet("MLP latent 12 in R^50", mlp_latent(12, 50), 12, 12, 50),
        DataSet("MLP latent 16 in R^80", mlp_latent(16, 80), 16, 16, 80),
        DataSet("MLP latent 24 in R^100", mlp_latent(24, 100), 24, 24, 100),
    ]
    noisy = []
    for name in ["Swiss roll", "sphere S^2 in R^3", "torus T^2 in R^3", "affine 5 in R^20", "MLP latent 8 in R^30", "MLP latent 16 in R^80"]:
        base = next(d for d in clean if d.name == name)
        for noise in (0.01, 0.05):
            noisy.append(DataSet(base.name, base.make, base.dimension, base.embedding_dimension, base.n_features, noise))
    return clean + noisy


def methods():
    import skdim
    from sklearn.decomposition import PCA

    from skdam import DAMAutoencoder, DAMEmbedding

    def quiet(function):
        def wrapped(X, seed):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return function(X, seed)

        return wrapped

    return {
        "DAMAutoencoder()": quiet(lambda X, seed: DAMAutoencoder(random_state=seed).fit(X).n_components_),
        "DAMEmbedding()": quiet(lambda X, seed: DAMEmbedding(random_state=seed).fit(X).n_components_),
        'PCA("mle")': quiet(lambda X, seed: PCA("mle").fit(X).n_components_),
        "PCA(0.95)": quiet(lambda X, seed: PCA(0.95).fit(X).n_components_),
        "TwoNN": quiet(lambda X, seed: skdim.id.TwoNN().fit(X).dimension_),
        "MLE": quiet(lambda X, seed: skdim.id.MLE().fit(X).dimension_),
        "lPCA (local, k=100)": quiet(lambda X, seed: float(np.mean(skdim.id.lPCA().fit_pw(X, n_neighbors=100, n_jobs=1).dimension_pw_))),
    }


DAM_METHODS = ("DAMAutoencoder()", "DAMEmbedding()")
#: The intrinsic-dimension estimators of the acceptance criterion; the PCA rules are context.
ID_ESTIMATORS = ("TwoNN", "MLE", "lPCA (local, k=100)")


def within(estimate, target):
    return abs(round(estimate) - target) <= max(1, 0.1 * target)


def score(sets, names, estimates):
    """Table rows and four hit counts per method: strict, embedding view, exact, exact embedding view."""
    rows = []
    strict_hits = {name: 0 for name in names}
    embedding_hits = {name: 0 for name in names}
    exact_hits = {name: 0 for name in names}
    exact_embedding_hits = {name: 0 for name in names}
    for data_set in sets:
        row = [data_set.label, data_set.n_features, f"{data_set.dimension}" + (f" ({data_set.embedding_dimension})" if data_set.embedding_dimension != data_set.dimension else "")]
        for name in names:
            values = estimates[data_set.label, name]
            median = statistics.median(values)
            strict = within(median, data_set.dimension)
            embedded = within(median, data_set.embedding_dimension if name in DAM_METHODS else data_set.dimension)
            strict_hits[name] += strict
            exact_hits[name] += round(median) == data_set.dimension
            exact_embedding_hits[name] += round(median) == data_set.dimension or (name in DAM_METHODS and round(median) == data_set.embedding_dimension)
            embedding_hits[name] += strict or embedded
            mark = "*" if strict else ("+" if embedded else "")
            if name in DAM_METHODS:
                row.append(f"{round(median)}{mark} [{int(min(values))}-{int(max(values))}]")
            else:
                row.append(f"{median:.1f}{mark}")
        rows.append(row)
    return rows, (strict_hits, embedding_hits, exact_hits, exact_embedding_hits)


def main():
    parser = add_common_arguments(argparse.ArgumentParser(description=__doc__.splitlines()[0]))
    parser.add_argument("--n-samples", type=int, default=2000)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--replot", action="store_true", help="redraw the figure from results/manifolds_estimates.json")
    args = parser.parse_args()
    if args.replot:
        import json

        from _common import RESULTS

        stored = json.loads((RESULTS / "manifolds_estimates.json").read_text())
        estimates = {tuple(key.split(" | ")): values for key, values in stored.items()}
        plot(data_sets(), list(dict.fromkeys(name for _, name in estimates)), estimates)
        return
    limit_threads(args.threads)
    report = Report("manifolds")
    report(f"# Discovery on manifolds of known dimension\n\n`{command_line()}`\n")
    report(f"Machine: {machine_description(args.threads)}\n")
    report(f"N = {args.n_samples} per data set, seeds 0-{args.seeds - 1}; estimate = median over the seeds, rounded; hit = within max(1, 10 %) of the target.\n")

    all_methods = methods()
    sets = data_sets()
    estimates = {}  # (label, method) -> list over seeds
    seconds = {name: [] for name in all_methods}
    for data_set in sets:
        for seed in range(args.seeds):
            X = data_set.draw(args.n_samples, seed)
            for name, method in all_methods.items():
                start = time.perf_counter()
                estimates.setdefault((data_set.label, name), []).append(float(method(X, seed)))
                seconds[name].append(time.perf_counter() - start)
        print(data_set.label, {name: estimates[data_set.label, name] for name in all_methods}, flush=True)

    names = list(all_methods)
    rows, (strict_hits, embedding_hits, exact_hits, exact_embedding_hits) = score(sets, names, estimates)
    report("Median estimate per data set; `*` hit against the intrinsic dimension, `+` hit only against the embedding dimension (in brackets after the true dimension); DAM columns show [min-max] over the seeds.\n")
    report.table(["data set", "ambient", "true dim (embedding)", *names], rows)
    summary = []
    for name in names:
        spreads = [max(estimates[d.label, name]) - min(estimates[d.label, name]) for d in sets] if name in DAM_METHODS else None
        summary.append(
            (
                name,
                f"{exact_hits[name]}/{len(sets)}",
                f"{exact_embedding_hits[name]}/{len(sets)}",
                f"{strict_hits[name]}/{len(sets)}",
                f"{embedding_hits[name]}/{len(sets)}",
                "-" if spreads is None else f"{statistics.median(spreads):.0f} / {max(spreads):.0f}",
                statistics.median(seconds[name]),
            )
        )
    report.table(["method", "exact", "exact, embedding view", "hits, strict", "hits, embedding view", "spread over seeds (median / max)", "median s per fit"], summary, ["", "", "", "", "", "", ".3f"])
    for view, hits in [("strict", strict_hits), ("embedding view", embedding_hits), ("exact", exact_hits), ("exact, embedding view", exact_embedding_hits)]:
        best_name = max(ID_ESTIMATORS, key=lambda n: hits[n])
        verdict = "PASS" if hits["DAMAutoencoder()"] >= hits[best_name] else "FAIL"
        report(f"Acceptance ({view}): DAMAutoencoder() {hits['DAMAutoencoder()']} hits against the best intrinsic-dimension estimator's {hits[best_name]} ({best_name}): {verdict}")
    report.save()
    import json

    from _common import RESULTS

    (RESULTS / "manifolds_estimates.json").write_text(json.dumps({f"{label} | {name}": values for (label, name), values in estimates.items()}, indent=0))

    plot(sets, names, estimates)


def plot(sets, names, estimates):
    _, (strict_hits, embedding_hits, exact_hits, exact_embedding_hits) = score(sets, names, estimates)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, 2, figsize=(12, 4.2), gridspec_kw={"width_ratios": [3, 2]})
    markers = dict(zip(names, "os^v<>D"))
    for name in names:
        truth = [d.dimension for d in sets]
        found = [statistics.median(estimates[d.label, name]) for d in sets]
        jitter = (names.index(name) - len(names) / 2) * 0.08
        axes[0].scatter(np.array(truth) + jitter, found, marker=markers[name], label=name, alpha=0.75, s=22)
    limit = max(d.dimension for d in sets) * 1.3
    diagonal = np.geomspace(0.8, limit, 50)
    axes[0].plot(diagonal, diagonal, "k:", linewidth=1, label="estimate = truth")
    axes[0].set(xlabel="intrinsic dimension", ylabel="estimate (median over seeds)", title="estimates against the truth", xscale="log", yscale="log")
    axes[0].legend(fontsize=7)
    positions = np.arange(len(names))
    for offset, (label, hits) in zip((-0.3, -0.1, 0.1, 0.3), [("within tolerance, strict", strict_hits), ("within tolerance, embedding view", embedding_hits), ("exact", exact_hits), ("exact, embedding view", exact_embedding_hits)]):
        axes[1].bar(positions + offset, [hits[n] for n in names], 0.2, label=label)
    axes[1].axhline(len(sets), color="k", linestyle=":", linewidth=1)
    axes[1].set_xticks(positions, names, rotation=40, ha="right", fontsize=8)
    axes[1].set(ylabel=f"data sets (of {len(sets)})")
    axes[1].legend(fontsize=7, loc="lower center", bbox_to_anchor=(0.5, 1.08), ncol=2)
    save_figure(figure, "manifolds")


if __name__ == "__main__":
    main()
