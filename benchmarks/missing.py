"""Completion of data with holes: held-out error of the DAM estimators against the usual imputers.

On digits (1797 x 64, sklearn) and a seeded subset of Fashion-MNIST's training
images (784 pixels in [-1, 1]; Debian's dataset-fashion-mnist, ``_fashion_mnist.py``),
10, 30 and 50 % of the entries are hidden completely at random (seeded). Every
method sees the matrix with its holes and fills them; the error is the RMSE on the
hidden entries, in the data's units and as a ratio to mean imputation's:

- ``SimpleImputer(strategy="mean")``;
- ``KNNImputer()`` (5 neighbours, nan-Euclidean distances);
- ``IterativeImputer()`` (BayesianRidge, 10 rounds) on digits only: on Fashion-MNIST's
  784 columns one round is 784 regressions on up to 783 columns, far beyond this
  script's budget on 2 cores;
- the iterative low-rank SVD (soft-impute with a rank cap, ``_completion.py``), its
  rank and shrinkage chosen on a validation part (10 %) of the *observed* entries;
- ``DAMEmbedding`` and ``DAMAutoencoder`` under the SVD's protocol: ``alpha`` chosen
  on the same validation entries (each alpha of a small grid fitted on the rest,
  the one with the least validation RMSE refitted on all observed entries and
  filled with ``complete``); the chosen alpha and the dimension found are printed.

The label-free alternative is reported beside it, without being used: the alpha
each estimator's own ``score`` (log-likelihood of observed entries) prefers. From
the same validation fits, the held-out log-likelihood of the validation entries
given the rest of their row is ``score_samples`` of the rows with them minus
``score_samples`` of the rows without them (free); for ``DAMEmbedding``, also a
3-fold ``GridSearchCV`` over rows on the matrix with holes (cheap for it; nine
more fits of ``DAMAutoencoder`` are not).

Fit times are ratios to KNNImputer's ``fit_transform`` on the same matrix, timed in
the same run.

Usage: ``python benchmarks/missing.py [--threads 1] [--fashion-rows 3000] [--levels 0.1 0.3 0.5]
[--datasets digits Fashion-MNIST] [--name missing]``
"""

import argparse
import warnings

import numpy as np

from _common import add_common_arguments, limit_threads, start_report, timed

FRACTIONS = [0.1, 0.3, 0.5]
SVD_GRID = [(rank, shrinkage) for rank in (10, 20, 40) for shrinkage in (0.0, 0.03, 0.1)]
VALIDATION_FRACTION = 0.1
#: Small grids: each DAMAutoencoder fit takes minutes on 2 cores.
ALPHA_GRIDS = {"DAMEmbedding": [0.03, 0.01, 0.003, 0.001, 0.0003], "DAMAutoencoder": [0.03, 0.01, 0.003, 0.001]}
DATASETS = ["digits", "Fashion-MNIST"]


def imputers(name):
    """The imputers compared on data set ``name``: label -> a function filling a matrix with holes."""
    from sklearn.experimental import enable_iterative_imputer  # noqa: F401
    from sklearn.impute import IterativeImputer, KNNImputer, SimpleImputer

    # keep_empty_features: a column that is constant at 0 (digits' borders) stays.
    methods = {
        "mean (SimpleImputer)": lambda X: SimpleImputer(strategy="mean", keep_empty_features=True).fit_transform(X),
        "KNNImputer": lambda X: KNNImputer(keep_empty_features=True).fit_transform(X),
    }
    if name == "digits":
        methods["IterativeImputer"] = lambda X: IterativeImputer(random_state=0, keep_empty_features=True).fit_transform(X)
    return methods


def main():
    parser = add_common_arguments(argparse.ArgumentParser(description=__doc__.splitlines()[0]))
    parser.add_argument("--fashion-rows", type=int, default=3000, help="rows of the seeded Fashion-MNIST subset")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--levels", type=float, nargs="+", default=FRACTIONS, help="shares of entries hidden")
    parser.add_argument("--datasets", nargs="+", default=DATASETS, choices=DATASETS)
    parser.add_argument("--name", default="missing", help="results/<name>.txt")
    parser.add_argument("--autoencoder-alphas", type=float, nargs="+", default=ALPHA_GRIDS["DAMAutoencoder"],
                        help="DAMAutoencoder's alpha grid (minutes a fit on 2 cores)")
    args = parser.parse_args()
    limit_threads(args.threads)
    alpha_grids = {**ALPHA_GRIDS, "DAMAutoencoder": args.autoencoder_alphas}

    from sklearn.datasets import load_digits

    from _completion import hide_entries, rmse, select_iterative_svd, select_on_validation, with_holes
    from _fashion_mnist import ensure_installed, load_fashion_mnist
    from skdam import DAMAutoencoder, DAMEmbedding

    ensure_installed()
    fashion, _ = load_fashion_mnist("train", dtype=np.float64)
    subset = np.random.RandomState(args.seed).permutation(fashion.shape[0])[: args.fashion_rows]
    data = {"digits": load_digits().data, "Fashion-MNIST": fashion[np.sort(subset)]}
    data = {name: data[name] for name in args.datasets}
    estimators = {"DAMEmbedding": DAMEmbedding, "DAMAutoencoder": DAMAutoencoder}

    report = start_report(args.name, "Completion of entries missing completely at random", args.threads)
    report(f"digits: 1797 x 64 (pixels 0-16); Fashion-MNIST: a seeded subset of {args.fashion_rows} training images x 784 "
           f"(pixels in [-1, 1]). Data sets run: {', '.join(data)}; missing shares: {', '.join(f'{level:.0%}' for level in args.levels)}. Entries hidden completely at random (seed "
           f"{args.seed}); RMSE on the hidden entries. Iterative SVD: rank and shrinkage (share of the largest singular value) "
           f"chosen on {VALIDATION_FRACTION:.0%} of the observed entries from {SVD_GRID}. DAM estimators: alpha chosen on the same "
           f"validation entries from {alpha_grids}, then refitted on all observed entries.\n")

    results, choices = {}, []
    for name, X in data.items():
        rows = []
        for fraction in args.levels:
            random_state = np.random.RandomState(args.seed)
            observed, hidden = hide_entries(np.ones(X.shape, dtype=bool), fraction, random_state)
            X_holes = with_holes(X, observed)
            scores = {}
            for label, fill in imputers(name).items():
                completed, seconds = timed(lambda: fill(X_holes))
                scores[label] = dict(rmse=rmse(completed, X, hidden), seconds=seconds, dims="-", note="")
            (completed, chosen, _), seconds = timed(lambda: select_iterative_svd(X_holes, SVD_GRID, VALIDATION_FRACTION, np.random.RandomState(args.seed)))
            scores["iterative SVD"] = dict(rmse=rmse(completed, X, hidden), seconds=seconds, dims=str(chosen[0]),
                                           note=f"rank {chosen[0]}, shrinkage {chosen[1]:g}; time includes the choice")
            for label, estimator_class in estimators.items():
                def fit_complete(X_fit, alpha, X_observed=X_holes, estimator_class=estimator_class):
                    with warnings.catch_warnings(record=True) as caught:
                        warnings.simplefilter("always")
                        estimator = estimator_class(alpha=alpha, random_state=args.seed).fit(X_fit)
                    # Log-likelihood of the entries hidden from this fit given the rest of
                    # their row (zero for the refit, which hides nothing).
                    held_out = float(np.mean(estimator.score_samples(X_observed) - estimator.score_samples(X_fit)))
                    return estimator.complete(X_fit), (estimator, held_out, sorted({type(w.message).__name__ for w in caught}))

                grid = alpha_grids[label]
                (completed, alpha, validation, (estimator, _, warned)), seconds = timed(
                    lambda: select_on_validation(X_holes, grid, fit_complete, VALIDATION_FRACTION, np.random.RandomState(args.seed)))
                by_likelihood = max(grid, key=lambda a: validation[a][1][1])
                choice = dict(rmse=rmse(completed, X, hidden), seconds=seconds, dims=str(estimator.n_components_),
                              note=f"alpha {alpha:g}, {estimator.n_iter_} epochs; time includes the choice" + (f"; {', '.join(warned)}" if warned else ""))
                scores[label] = choice
                grid_search = None
                if label == "DAMEmbedding":
                    from sklearn.model_selection import GridSearchCV

                    grid_search = GridSearchCV(estimator_class(random_state=args.seed), {"alpha": grid}, cv=3).fit(X_holes).best_params_["alpha"]
                for a in grid:
                    error, (fitted, held_out, _) = validation[a]
                    choices.append((name, f"{fraction:.0%}", label, f"{a:g}", error, fitted.n_components_, held_out,
                                    "yes" if a == alpha else "", "yes" if a == by_likelihood else "",
                                    "-" if grid_search is None else ("yes" if a == grid_search else "")))
            mean_rmse, knn_seconds = scores["mean (SimpleImputer)"]["rmse"], scores["KNNImputer"]["seconds"]
            for label, score in scores.items():
                rows.append((f"{fraction:.0%}", label, score["rmse"], score["rmse"] / mean_rmse, score["dims"], score["seconds"],
                             score["seconds"] / knn_seconds, score["note"]))
            results[name, fraction] = scores
            print(f"{name} {fraction:.0%}: " + ", ".join(f"{label} {score['rmse']:.4f}" for label, score in scores.items()), flush=True)
        report(f"## {name}\n")
        report.table(["missing", "method", "RMSE", "/ mean's", "dimension", "fit s", "fit time / KNN's", "note"], rows,
                     ["", "", ".4f", ".3f", "", ".2f", ".2f", ""])

    report("## The choice of alpha\n")
    report("Per alpha, fitted on the observed entries less the validation part: validation RMSE (the criterion used), dimension "
           "found, held-out log-likelihood of the validation entries given the rest of their row (mean per row); which alpha "
           "each criterion picks. `GridSearchCV`: 3-fold over rows by the estimator's `score`, DAMEmbedding only.\n")
    report.table(["data", "missing", "estimator", "alpha", "validation RMSE", "dimension", "held-out log-lik.", "picked by RMSE",
                  "picked by log-lik.", "picked by GridSearchCV"], choices, ["", "", "", "", ".4f", "", ".2f", "", "", ""])

    report("## Acceptance at 30 % missing: below KNNImputer and the iterative SVD, far below the mean (ratio < 0.7)\n")
    if 0.3 not in args.levels:
        report("(30 % not run.)")
    for name in data if 0.3 in args.levels else []:
        scores = results[name, 0.3]
        for estimator in ("DAMAutoencoder", "DAMEmbedding"):
            ours = scores[estimator]["rmse"]
            checks = [ours < scores["KNNImputer"]["rmse"], ours < scores["iterative SVD"]["rmse"], ours < 0.7 * scores["mean (SimpleImputer)"]["rmse"]]
            report(f"- {name}, {estimator}: RMSE {ours:.4f} against KNN {scores['KNNImputer']['rmse']:.4f}, iterative SVD "
                   f"{scores['iterative SVD']['rmse']:.4f}, mean {scores['mean (SimpleImputer)']['rmse']:.4f}: {'PASS' if all(checks) else 'FAIL'}")
    report.save()


if __name__ == "__main__":
    main()
