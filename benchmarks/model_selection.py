"""Choosing alpha without labels: GridSearchCV over alpha, scored by the estimators' own score.

``GridSearchCV(estimator, {"alpha": grid}, cv=3).fit(X)`` with no ``y`` ranks each
alpha by ``estimator.score`` on the held-out folds (issue 12: a held-out
log-likelihood), then refits the best on all of ``X``; the dimension it picks is
``best_estimator_.n_components_``. Two parts, seeds 0-4 (seed s draws the data and
seeds the estimator):

- ``DAMEmbedding`` on low-rank data with isotropic noise,
  ``skdam.datasets.make_linear_latent`` with rank 5, 10 and 20 in d = 50, 75 and 100
  (N = 1000), at two noise levels; acceptance: the pick is the rank on every seed.
- ``DAMAutoencoder`` on four noisy curved sets of ``manifolds.py`` (open manifolds:
  intrinsic and embedding dimension agree); acceptance: the median pick over the seeds
  is within 1 of the intrinsic dimension on at least 3 of the 4.

For context, the same run picks PCA's dimension the same way,
``GridSearchCV(PCA(), {"n_components": range(1, d)}, cv=3)`` (PCA's ``score`` is the
probabilistic-PCA log-likelihood), as in scikit-learn's example "Model selection with
Probabilistic PCA and Factor Analysis".

Usage: ``python benchmarks/model_selection.py [--part embedding autoencoder]
[--seeds 5] [--n-samples N] [--sets NAME ...] [--threads 1] [--name model_selection]``

``--n-samples`` replaces every data set's rows (1000 for the low-rank sets, the
manifold suite's own for the curved ones); ``--sets`` keeps the data sets whose label
contains one of the given strings.
"""

import argparse
import statistics

from _common import add_common_arguments, limit_threads, start_report, timed_fit
from manifolds import AUTOENCODER, data_sets

EMBEDDING_GRID = [1e-4, 3e-4, 1e-3, 3e-3, 0.01, 0.03, 0.1, 0.3]
AUTOENCODER_GRID = [1e-3, 3e-3, 0.01, 0.03, 0.1]
LOW_RANK = [(5, 50), (10, 75), (20, 100)]
NOISE_LEVELS = (0.1, 0.5)
CURVED_NOISY = [
    "Swiss roll, 5% noise",
    "sin-cos arcs 3 (span 6) in R^20, 5% noise",
    "tanh MLP latent 5 in R^30, 5% noise",
    "MLP latent 8 in R^30, 5% noise",
]


def pick(estimator, grid_name, grid, X):
    """The dimension GridSearchCV(cv=3) picks without y, the winning parameter, and seconds."""
    from sklearn.model_selection import GridSearchCV

    search, seconds, _ = timed_fit(GridSearchCV(estimator, {grid_name: grid}, cv=3), X)
    return int(search.best_estimator_.n_components_), search.best_params_[grid_name], seconds


def pca_pick(X):
    from sklearn.decomposition import PCA

    return pick(PCA(), "n_components", list(range(1, X.shape[1])), X)[0]


def low_rank_sets(n_samples):
    from skdam.datasets import make_linear_latent

    for rank, n_features in LOW_RANK:
        for noise in NOISE_LEVELS:
            label = f"rank {rank} in R^{n_features}, noise {noise:g}"
            yield label, rank, lambda seed, r=rank, d=n_features, s=noise: make_linear_latent(n_samples or 1000, r, d, noise=s, random_state=seed)[0]


def curved_sets(n_samples):
    suite = {d.label: d for d in data_sets()}
    for label in CURVED_NOISY:
        data_set = suite[label]
        yield label, data_set.target(AUTOENCODER), lambda seed, d=data_set: d.draw(n_samples, seed)


def run_part(report, title, Estimator, grid, sets, seeds, tolerance, n_needed):
    """Search alpha on every set and seed; report the picks and return whether the part passes."""
    report(f"## {title}\n\nalpha grid: {grid}\n")
    rows, on_target = [], 0
    for label, truth, draw in sets:
        picks, alphas, pca_picks, seconds = [], [], [], []
        for seed in range(seeds):
            X = draw(seed)
            found, alpha, elapsed = pick(Estimator(random_state=seed), "alpha", grid, X)
            picks.append(found)
            alphas.append(alpha)
            seconds.append(elapsed)
            pca_picks.append(pca_pick(X))
        if tolerance == 0:
            hit = all(k == truth for k in picks)
        else:
            hit = abs(statistics.median(picks) - truth) <= tolerance
        on_target += hit
        row = [label, truth, " ".join(map(str, picks)), " ".join(f"{a:g}" for a in alphas), " ".join(map(str, pca_picks)), "yes" if hit else "no", statistics.median(seconds)]
        rows.append(row)
        print(*row, flush=True)
    report.table(["data", "true dim", f"{Estimator.__name__} pick per seed", "best alpha per seed", "PCA pick per seed", "on target", "median s per search"], rows, ["", "", "", "", "", "", ".1f"])
    return on_target, len(rows), on_target >= n_needed(len(rows))


def main():
    parser = add_common_arguments(argparse.ArgumentParser(description=__doc__.splitlines()[0]))
    parser.add_argument("--part", nargs="+", choices=["embedding", "autoencoder"], default=["embedding", "autoencoder"])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--n-samples", type=int, default=None)
    parser.add_argument("--sets", nargs="+", default=None, metavar="NAME", help="keep the data sets whose label contains one of these strings")
    parser.add_argument("--name", default="model_selection", help="stem of the files written under benchmarks/results/")
    args = parser.parse_args()
    limit_threads(args.threads)

    from skdam import DAMAutoencoder, DAMEmbedding

    def keep(sets):
        sets = list(sets)
        return sets if not args.sets else [s for s in sets if any(p.lower() in s[0].lower() for p in args.sets)]

    report = start_report(args.name, "Choosing alpha without labels: GridSearchCV(cv=3) on the estimators' score", args.threads)
    report(f"Seeds 0-{args.seeds - 1}; seed s draws the data and seeds the estimator.\n")
    verdicts = []
    if "embedding" in args.part:
        sets = keep(low_rank_sets(args.n_samples))
        if sets:
            hits, total, passed = run_part(report, "DAMEmbedding on low-rank data with isotropic noise", DAMEmbedding, EMBEDDING_GRID, sets, args.seeds, 0, lambda n: n)
            verdicts.append(f"{'PASS' if passed else 'FAIL'}: GridSearchCV over alpha picks the rank with DAMEmbedding on every seed on {hits}/{total} low-rank data sets (all needed).")
    if "autoencoder" in args.part:
        sets = keep(curved_sets(args.n_samples))
        if sets:
            needed = lambda n: max(1, round(3 * n / 4))  # 3 of the 4 sets
            hits, total, passed = run_part(report, "DAMAutoencoder on noisy curved manifolds", DAMAutoencoder, AUTOENCODER_GRID, sets, args.seeds, 1, needed)
            verdicts.append(f"{'PASS' if passed else 'FAIL'}: GridSearchCV over alpha lands DAMAutoencoder (median over seeds) within 1 of the intrinsic dimension on {hits}/{total} noisy curved sets ({needed(total)} needed).")
    report("Acceptance (issue 12, model selection):")
    for line in verdicts:
        report(line)
    report.save()


if __name__ == "__main__":
    main()
