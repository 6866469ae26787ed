"""Discovery on manifolds of known dimension: DAM against intrinsic-dimension estimators.

Every data set is generated here (N = 2000 by default, 5000 for the DAM paper's two
kernels, as published), five times (seeds 0-4), and every method runs on the same
draws in the same process:

- ``DAMAutoencoder()`` and ``DAMEmbedding()`` with their defaults;
- ``PCA(n_components="mle")`` (Minka) and ``PCA(n_components=0.95)``;
- scikit-dimension's TwoNN, MLE (Levina-Bickel) and lPCA (local PCA on 100 neighbours,
  pointwise estimates averaged), with their defaults.

The suite: a Swiss roll, an S-curve, an open helix, circles, spheres, tori and
products of spheres, affine subspaces, Gaussian latents through random networks
(ELU as in the paper, tanh), the paper's MLP kernel and quadratic kernel (k = 20 in
d = 100), and open products of arcs, each latent coordinate through a sine and a
cosine, whose linear span is twice their dimension; some with 1 % and 5 % noise.

A method's estimate for a data set is the median over the draws (rounded to an integer
for the exact count). Its target is the intrinsic dimension, except for the DAM
estimators on closed manifolds, whose target is the embedding dimension: the fewest
coordinates a continuous encoder can use without tearing the manifold (a circle needs
2, the sphere S^n needs n + 1, a torus T^n needs n + 1, S^p x S^q needs p + q + 1), the
most an autoencoder's bottleneck can be asked for. Reported per method: exact counts
(rounded median == target), hits within ``max(1, 10 %)`` of the target, and the mean
relative error ``|median - target| / target`` over the data sets.

The acceptance criteria (issue 12) compare DAMAutoencoder() with the best of the three
intrinsic-dimension estimators (TwoNN, MLE, lPCA) in the same run, check the Swiss
roll, the S-curve and the paper's kernels on every seed, the spread of
``n_components_`` over the seeds, and DAMAutoencoder's fit times (median under 15 s,
none over 60 s); each prints a PASS or FAIL line (SKIP when ``--sets`` left its data
out). The PCA rules are context.

Usage: ``python benchmarks/manifolds.py [--sets NAME ...] [--n-samples N] [--seeds 5]
[--threads 1] [--name manifolds] [--training-rows] [--list] [--replot]``

``--sets`` keeps the data sets whose label contains one of the given strings (case
ignored); ``--list`` prints the labels and exits; ``--n-samples`` gives every data set
that many rows instead of its own default. The default ``DAMAutoencoder()`` judges its
rule on a held-out tenth of the rows (``early_stopping="auto"`` from 1000 rows, so on
every set here); ``--training-rows`` adds ``DAMAutoencoder(early_stopping=False)``, the
rule judged on the training rows, as a column of its own on the same draws (the
acceptance lines stay the default's).
"""

import argparse
import json
import statistics
from dataclasses import dataclass

import numpy as np

from _common import RESULTS, add_common_arguments, limit_threads, save_figure, start_report, timed_fit


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


def _unit_sphere_points(n, dimension, rng):
    points = rng.normal(size=(n, dimension + 1))
    return points / np.linalg.norm(points, axis=1, keepdims=True)


def sphere(dimension, n_features):
    def make(n, rng):
        points = _unit_sphere_points(n, dimension, rng)
        return points if n_features == dimension + 1 else _rotate_into(points, n_features, rng)

    return make


def circle(n_features):
    return sphere(1, n_features)


def sphere_product(first, second, n_features):
    """``S^first x S^second``, uniform on each factor, rotated into ``n_features`` dimensions."""

    def make(n, rng):
        points = np.hstack([_unit_sphere_points(n, first, rng), _unit_sphere_points(n, second, rng)])
        return _rotate_into(points, n_features, rng)

    return make


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


def sine_cosine_arcs(dimension, n_features, arc=1.5 * np.pi):
    """Each of ``dimension`` uniform angles in ``[0, arc)`` through a sine and a cosine.

    A product of open arcs (``arc`` < 2 pi): open, curved, of intrinsic and embedding
    dimension ``dimension``, and of linear span ``2 * dimension``, rotated into
    ``n_features`` dimensions.
    """

    def make(n, rng):
        angles = rng.uniform(0, arc, size=(n, dimension))
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


def tanh_mlp_latent(dimension, n_features, hidden_size=64, gain=2.0):
    """Gaussian latents through a random ``tanh`` layer of ``hidden_size``, then a linear map.

    The first layer's pre-activations have standard deviation about ``gain``, so most
    units bend (tanh saturates beyond 1): a curved manifold whose linear span is the
    whole ambient space.
    """

    def make(n, rng):
        latent = rng.normal(size=(n, dimension))
        hidden = np.tanh(latent @ (rng.normal(size=(dimension, hidden_size)) * gain / np.sqrt(dimension)) + rng.uniform(-1, 1, size=hidden_size))
        return hidden @ (rng.normal(size=(hidden_size, n_features)) / np.sqrt(hidden_size))

    return make


def quadratic_latent(dimension, n_features):
    def make(n, rng):
        from skdam.datasets import make_quadratic_latent

        return make_quadratic_latent(n, dimension, n_features, random_state=rng)[0]

    return make


@dataclass
class DataSet:
    name: str
    make: object
    dimension: int
    embedding_dimension: int
    n_features: int
    noise: float = 0.0
    #: Rows drawn unless ``--n-samples`` says otherwise.
    n_samples: int = 2000

    @property
    def label(self):
        return self.name + (f", {self.noise:.0%} noise" if self.noise else "")

    @property
    def closed(self):
        return self.embedding_dimension != self.dimension

    def target(self, method):
        """The DAM estimators give an embedding: of a closed manifold, one more coordinate."""
        return self.embedding_dimension if method in DAM_METHODS else self.dimension

    def with_noise(self, noise):
        return DataSet(self.name, self.make, self.dimension, self.embedding_dimension, self.n_features, noise, self.n_samples)

    def draw(self, n_samples, seed):
        rng = np.random.RandomState(seed)
        return _noisy(self.make(n_samples or self.n_samples, rng), self.noise, rng)


PAPER_MLP_KERNEL = "MLP kernel 20 in R^100 (paper)"
PAPER_QUADRATIC_KERNEL = "quadratic kernel 20 in R^100 (paper)"


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
        DataSet("S^2 x S^1 in R^10", sphere_product(2, 1, 10), 3, 4, 10),
        DataSet("S^2 x S^2 in R^20", sphere_product(2, 2, 20), 4, 5, 20),
        DataSet("S^3 x S^2 in R^40", sphere_product(3, 2, 40), 5, 6, 40),
        DataSet("sin-cos arcs 2 (span 4) in R^10", sine_cosine_arcs(2, 10), 2, 2, 10),
        DataSet("sin-cos arcs 3 (span 6) in R^20", sine_cosine_arcs(3, 20), 3, 3, 20),
        DataSet("sin-cos arcs 4 (span 8) in R^30", sine_cosine_arcs(4, 30), 4, 4, 30),
        DataSet("sin-cos arcs 5 (span 10) in R^40", sine_cosine_arcs(5, 40), 5, 5, 40),
        DataSet("affine 5 in R^20", affine(5, 20), 5, 5, 20),
        DataSet("affine 10 in R^50", affine(10, 50), 10, 10, 50),
        DataSet("MLP latent 2 in R^3", mlp_latent(2, 3), 2, 2, 3),
        DataSet("MLP latent 4 in R^10", mlp_latent(4, 10), 4, 4, 10),
        DataSet("MLP latent 8 in R^30", mlp_latent(8, 30), 8, 8, 30),
        DataSet("MLP latent 12 in R^50", mlp_latent(12, 50), 12, 12, 50),
        DataSet("MLP latent 16 in R^80", mlp_latent(16, 80), 16, 16, 80),
        DataSet("MLP latent 24 in R^100", mlp_latent(24, 100), 24, 24, 100),
        DataSet("tanh MLP latent 3 in R^10", tanh_mlp_latent(3, 10), 3, 3, 10),
        DataSet("tanh MLP latent 4 in R^20", tanh_mlp_latent(4, 20), 4, 4, 20),
        DataSet("tanh MLP latent 5 in R^30", tanh_mlp_latent(5, 30), 5, 5, 30),
        DataSet("tanh MLP latent 6 in R^40", tanh_mlp_latent(6, 40), 6, 6, 40),
        DataSet(PAPER_MLP_KERNEL, mlp_latent(20, 100), 20, 20, 100, n_samples=5000),
        DataSet(PAPER_QUADRATIC_KERNEL, quadratic_latent(20, 100), 20, 20, 100, n_samples=5000),
    ]
    noisy_bases = [
        "Swiss roll",
        "sphere S^2 in R^3",
        "torus T^2 in R^3",
        "affine 5 in R^20",
        "MLP latent 8 in R^30",
        "MLP latent 16 in R^80",
        "sin-cos arcs 3 (span 6) in R^20",
        "tanh MLP latent 5 in R^30",
    ]
    noisy = [next(d for d in clean if d.name == name).with_noise(noise) for name in noisy_bases for noise in (0.01, 0.05)]
    return clean + noisy


def select(sets, patterns):
    """The data sets whose label contains one of ``patterns`` (case ignored); all if none."""
    if not patterns:
        return sets
    chosen = [d for d in sets if any(p.lower() in d.label.lower() for p in patterns)]
    if not chosen:
        raise SystemExit(f"--sets {patterns} matches no data set; --list prints the labels.")
    return chosen


class LocalPCA:
    """skdim's lPCA on each point's 100 nearest neighbours, the pointwise estimates averaged."""

    def fit(self, X):
        import skdim

        self.dimension_ = float(np.mean(skdim.id.lPCA().fit_pw(X, n_neighbors=100, n_jobs=1).dimension_pw_))
        return self


def methods(training_rows=False):
    """Name: (the estimator for a seed, the fitted attribute holding its estimate)."""
    import skdim
    from sklearn.decomposition import PCA

    from skdam import DAMAutoencoder, DAMEmbedding

    judged_on_training_rows = {
        TRAINING_ROWS_AUTOENCODER: (lambda seed: DAMAutoencoder(early_stopping=False, random_state=seed), "n_components_")
    }
    return {
        "DAMAutoencoder()": (lambda seed: DAMAutoencoder(random_state=seed), "n_components_"),
        **(judged_on_training_rows if training_rows else {}),
        "DAMEmbedding()": (lambda seed: DAMEmbedding(random_state=seed), "n_components_"),
        'PCA("mle")': (lambda seed: PCA("mle"), "n_components_"),
        "PCA(0.95)": (lambda seed: PCA(0.95), "n_components_"),
        "TwoNN": (lambda seed: skdim.id.TwoNN(), "dimension_"),
        "MLE": (lambda seed: skdim.id.MLE(), "dimension_"),
        "lPCA (local, k=100)": (lambda seed: LocalPCA(), "dimension_"),
    }


TRAINING_ROWS_AUTOENCODER = "DAMAutoencoder(early_stopping=False)"
DAM_METHODS = ("DAMAutoencoder()", TRAINING_ROWS_AUTOENCODER, "DAMEmbedding()")
AUTOENCODER = "DAMAutoencoder()"
#: The intrinsic-dimension estimators of the acceptance criterion; the PCA rules are context.
ID_ESTIMATORS = ("TwoNN", "MLE", "lPCA (local, k=100)")
#: The issue's speed target for one DAMAutoencoder() fit on this suite, in seconds.
MEDIAN_FIT_LIMIT, MAX_FIT_LIMIT = 15.0, 60.0


def within(estimate, target):
    return abs(round(estimate) - target) <= max(1, 0.1 * target)


@dataclass
class Scores:
    exact: dict
    hits: dict
    relative_error: dict


def score(sets, names, estimates):
    """Table rows, and per method the exact count, the hit count and the mean relative error."""
    rows = []
    exact = {name: 0 for name in names}
    hits = {name: 0 for name in names}
    errors = {name: [] for name in names}
    for data_set in sets:
        truth = f"{data_set.dimension}" + (f" ({data_set.embedding_dimension})" if data_set.closed else "")
        row = [data_set.label, data_set.n_features, truth]
        for name in names:
            values = estimates[data_set.label, name]
            median = statistics.median(values)
            target = data_set.target(name)
            is_exact = round(median) == target
            exact[name] += is_exact
            hits[name] += within(median, target)
            errors[name].append(abs(median - target) / target)
            mark = "=" if is_exact else ("~" if within(median, target) else "")
            if name in DAM_METHODS:
                row.append(f"{round(median)}{mark} [{int(min(values))}-{int(max(values))}]")
            else:
                row.append(f"{median:.1f}{mark}")
        rows.append(row)
    return rows, Scores(exact, hits, {name: float(np.mean(errors[name])) for name in names})


def verdict(passed):
    return "PASS" if passed else "FAIL"


def acceptance(report, sets, estimates, scores, fit_seconds, n_threads):
    """Print one PASS / FAIL / SKIP line per acceptance item of issue 12 on this suite."""
    labels = {d.label for d in sets}
    ae = AUTOENCODER
    best_exact = max(ID_ESTIMATORS, key=lambda n: scores.exact[n])
    best_error = min(ID_ESTIMATORS, key=lambda n: scores.relative_error[n])
    passed = scores.exact[ae] > scores.exact[best_exact] and scores.relative_error[ae] < scores.relative_error[best_error]
    report(
        f"{verdict(passed)}: {ae} exact on {scores.exact[ae]}/{len(sets)} data sets against the best intrinsic-dimension "
        f"estimator's {scores.exact[best_exact]} ({best_exact}); mean relative error {scores.relative_error[ae]:.3f} "
        f"against the lowest of theirs, {scores.relative_error[best_error]:.3f} ({best_error})."
    )
    for label, low, high in [("Swiss roll", 2, 2), ("S-curve", 2, 2), (PAPER_MLP_KERNEL, 19, 21), (PAPER_QUADRATIC_KERNEL, 18, 22)]:
        wanted = f"{low}" if low == high else f"{(low + high) // 2} +- {(high - low) // 2}"
        if label not in labels:
            report(f"SKIP: {label} not in this run (wanted {wanted} on every seed).")
            continue
        found = [round(v) for v in estimates[label, ae]]
        on_target = sum(low <= k <= high for k in found)
        report(f"{verdict(on_target == len(found))}: {label}: {ae} {wanted} on {on_target}/{len(found)} seeds ({found}).")
    spreads = {d.label: max(estimates[d.label, ae]) - min(estimates[d.label, ae]) for d in sets}
    wide = {label: spread for label, spread in spreads.items() if spread > 1}
    report(f"{verdict(not wide)}: seed spread of {ae}'s n_components_ at most 1 on every data set (max {max(spreads.values()):.0f}" + (f"; over 1 on {wide}" if wide else "") + ").")
    everything = [s for label in labels for s in fit_seconds[label]]
    median, longest = statistics.median(everything), max(everything)
    report(
        f"{verdict(median < MEDIAN_FIT_LIMIT and longest <= MAX_FIT_LIMIT)}: {ae} fit time median {median:.2f} s "
        f"(target < {MEDIAN_FIT_LIMIT:.0f} s), max {longest:.2f} s (target <= {MAX_FIT_LIMIT:.0f} s), "
        f"over {len(everything)} fits with {n_threads} thread(s) per pool (the target is for 2 cores)."
    )


def main():
    parser = add_common_arguments(argparse.ArgumentParser(description=__doc__.splitlines()[0]))
    parser.add_argument("--n-samples", type=int, default=None, help="rows per data set (default: 2000, 5000 for the paper's kernels)")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--sets", nargs="+", default=None, metavar="NAME", help="keep the data sets whose label contains one of these strings")
    parser.add_argument("--list", action="store_true", help="print the data sets' labels and exit")
    parser.add_argument("--training-rows", action="store_true", help="add DAMAutoencoder(early_stopping=False) as a column")
    parser.add_argument("--name", default="manifolds", help="stem of the files written under benchmarks/results/")
    parser.add_argument("--replot", action="store_true", help="redraw the figure from results/<name>_estimates.json")
    args = parser.parse_args()
    sets = select(data_sets(), args.sets)
    if args.list:
        for data_set in sets:
            print(data_set.label)
        return
    if args.replot:
        stored = json.loads((RESULTS / f"{args.name}_estimates.json").read_text())
        estimates = {tuple(key.split(" | ")): values for key, values in stored.items()}
        sets = [d for d in sets if (d.label, AUTOENCODER) in estimates]
        plot(sets, list(dict.fromkeys(name for _, name in estimates)), estimates, args.name)
        return
    limit_threads(args.threads)
    report = start_report(args.name, "Discovery on manifolds of known dimension", args.threads)
    sizes = f"N = {args.n_samples} per data set" if args.n_samples else "N = 2000 per data set (5000 for the paper's kernels)"
    report(f"{sizes}, seeds 0-{args.seeds - 1}; estimate = median over the seeds.\n")

    all_methods = methods(args.training_rows)
    names = list(all_methods)
    # One throw-away fit: the first Adam in a process imports torch._dynamo (seconds),
    # which would otherwise land in the first data set's fit time.
    timed_fit(all_methods[AUTOENCODER][0](0), sets[0].draw(200, 0))
    estimates = {}  # (label, method) -> list over seeds
    seconds = {name: [] for name in names}
    fit_seconds = {}  # label -> DAMAutoencoder() fit seconds per seed
    warned = []  # (label, seed, method, warning class names) of every DAM fit that warned
    for data_set in sets:
        for seed in range(args.seeds):
            X = data_set.draw(args.n_samples, seed)
            for name, (make_estimator, estimate) in all_methods.items():
                fitted, elapsed, caught = timed_fit(make_estimator(seed), X)
                if name in DAM_METHODS and caught:
                    warned.append((data_set.label, seed, name, caught))
                estimates.setdefault((data_set.label, name), []).append(float(getattr(fitted, estimate)))
                seconds[name].append(elapsed)
                if name == AUTOENCODER:
                    fit_seconds.setdefault(data_set.label, []).append(elapsed)
        print(data_set.label, {name: estimates[data_set.label, name] for name in names}, f"{AUTOENCODER} s {[round(s, 2) for s in fit_seconds[data_set.label]]}", flush=True)

    rows, scores = score(sets, names, estimates)
    for row, data_set in zip(rows, sets):
        fits = fit_seconds[data_set.label]
        row.insert(2, args.n_samples or data_set.n_samples)
        row.append(f"{statistics.median(fits):.2f} / {max(fits):.2f}")
    report(
        "Median estimate per data set. Target: the intrinsic dimension, and for the DAM estimators on closed manifolds "
        "the embedding dimension (in brackets after the true dimension). `=` exact, `~` within max(1, 10 %); "
        "DAM columns show [min-max] over the seeds; the last column is DAMAutoencoder()'s fit seconds (median / max).\n"
    )
    report.table(["data set", "ambient", "N", "true dim (embedding)", *names, "AE fit s"], rows)
    summary = []
    for name in names:
        spreads = [max(estimates[d.label, name]) - min(estimates[d.label, name]) for d in sets] if name in DAM_METHODS else None
        summary.append(
            (
                name,
                f"{scores.exact[name]}/{len(sets)}",
                f"{scores.hits[name]}/{len(sets)}",
                scores.relative_error[name],
                "-" if spreads is None else f"{statistics.median(spreads):.0f} / {max(spreads):.0f}",
                statistics.median(seconds[name]),
                max(seconds[name]),
            )
        )
    report.table(["method", "exact", "within max(1, 10 %)", "mean relative error", "spread over seeds (median / max)", "median s per fit", "max s per fit"], summary, ["", "", "", ".3f", "", ".3f", ".2f"])
    report_warnings(report, warned, len(sets) * args.seeds * sum(name in DAM_METHODS for name in names))
    report("Acceptance (issue 12, manifold suite):")
    acceptance(report, sets, estimates, scores, fit_seconds, args.threads)
    report.save()
    (RESULTS / f"{args.name}_estimates.json").write_text(json.dumps({f"{label} | {name}": values for (label, name), values in estimates.items()}, indent=0))
    plot(sets, names, estimates, args.name)


def report_warnings(report, warned, n_fits):
    """Say which DAM fits warned (a ConvergenceWarning: max_iter left a count unchecked)."""
    report(f"DAM fits that warned: {len(warned)} of {n_fits}.")
    for label, seed, method, caught in warned:
        report(f"- {method} on {label}, seed {seed}: {', '.join(caught)}")
    report("")


def plot(sets, names, estimates, name):
    _, scores = score(sets, names, estimates)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, 2, figsize=(12, 4.2), gridspec_kw={"width_ratios": [3, 2]})
    markers = dict(zip(names, "os^v<>DP"))
    for method in names:
        truth = [d.target(method) for d in sets]
        found = [statistics.median(estimates[d.label, method]) for d in sets]
        jitter = (names.index(method) - len(names) / 2) * 0.08
        axes[0].scatter(np.array(truth) + jitter, found, marker=markers[method], label=method, alpha=0.75, s=22)
    limit = max(d.embedding_dimension for d in sets) * 1.3
    diagonal = np.geomspace(0.8, limit, 50)
    axes[0].plot(diagonal, diagonal, "k:", linewidth=1, label="estimate = target")
    axes[0].set(xlabel="target dimension", ylabel="estimate (median over seeds)", title="estimates against the target", xscale="log", yscale="log")
    axes[0].legend(fontsize=7)
    positions = np.arange(len(names))
    axes[1].bar(positions - 0.2, [scores.hits[n] for n in names], 0.4, label="within max(1, 10 %)")
    axes[1].bar(positions + 0.2, [scores.exact[n] for n in names], 0.4, label="exact")
    axes[1].axhline(len(sets), color="k", linestyle=":", linewidth=1)
    axes[1].set_xticks(positions, names, rotation=40, ha="right", fontsize=8)
    axes[1].set(ylabel=f"data sets (of {len(sets)})")
    axes[1].legend(fontsize=7, loc="lower center", bbox_to_anchor=(0.5, 1.02), ncol=2)
    save_figure(figure, name)


if __name__ == "__main__":
    main()
