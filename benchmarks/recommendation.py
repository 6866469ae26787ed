"""Rating completion on MovieLens-100k: test RMSE of the DAM estimators against the usual baselines.

The 100,000 ratings (943 users, 1682 movies, 1 to 5 stars) are read in memory from
the PyPI package ``recbole`` (``_movielens.py``; installed with ``pip install
--no-deps recbole`` when missing; the data are never written to disk). A seeded
random 80/20 split of the ratings; the training ratings make an item-by-user
matrix with NaN where a user did not rate a movie (rows are movies, as in
I-AutoRec, Sedhain et al., WWW 2015). Every method predicts the test ratings:

- the global mean of the training ratings;
- user and item biases, ``mean + b_item + b_user``, fitted by alternating
  regularised least squares;
- the iterative low-rank SVD (soft-impute with a rank cap, ``_completion.py``) on
  what the biases leave;
- ``DAMEmbedding`` and ``DAMAutoencoder`` on what the biases leave, completed with
  their ``complete`` method.

The last three go through one wrapper, :class:`RatingCompleter`: biases removed
first, the estimator completes the residual matrix, the biases are added back and
the predictions clipped to the 1-5 scale. Every setting (the biases'
regularisation, the SVD's rank and shrinkage, the estimators' alpha, and the
weight of the estimator's residual completion) is chosen on a validation part
(10 %) of the training ratings, then the chosen setting is refitted on all
training ratings; the test ratings are used once, for the figures printed. Fit times are ratios to the iterative SVD's at its chosen
setting, timed in the same run.

Usage: ``python benchmarks/recommendation.py [--threads 1] [--seed 0] [--name recommendation]``
"""

import argparse

import numpy as np

from _common import add_common_arguments, limit_threads, start_report, timed

TEST_FRACTION = 0.2
VALIDATION_FRACTION = 0.1
RATING_RANGE = (1.0, 5.0)
BIAS_REGULARIZATIONS = [1.0, 3.0, 10.0, 30.0]
SVD_GRID = [(rank, shrinkage) for rank in (10, 20, 40) for shrinkage in (0.3, 0.4, 0.5)]
#: DAMEmbedding's alphas, in units of ``1 / n_users``: the share of the variance
#: that one direction of isotropic noise explains. On ratings the noise dwarfs the
#: signal, so every direction explains about that much and the signal's stand out
#: by little: the useful alphas lie just above it (the graphs' page says the same
#: of adjacency rows). Below it, noise directions pass the rule too.
EMBEDDING_ALPHAS_PER_NOISE_SHARE = [1.2, 1.5, 2.0, 3.0]
#: DAMAutoencoder's alphas: the earlier grid, with 0.003 added.
AUTOENCODER_ALPHAS = [0.003, 0.01, 0.03]
#: How much of an estimator's residual completion is added to the biases: on a
#: matrix 94 % empty a fill without enough shrinkage carries noise (the
#: autoencoder's has none of its own); the weight is chosen on the validation ratings.
RESIDUAL_WEIGHTS = [0.0, 0.25, 0.5, 0.75, 1.0]


def rating_matrix(items, users, ratings, shape):
    """Item-by-user matrix of the ratings, NaN where there is none."""
    matrix = np.full(shape, np.nan)
    matrix[items, users] = ratings
    return matrix


def fit_biases(R, regularization, n_sweeps=20):
    """Global mean, item and user biases of the item-by-user matrix ``R`` (NaN unobserved).

    Alternating regularised least squares on ``R ~ mean + b_item + b_user``: each
    sweep solves for the item biases given the user biases in closed form, then the
    other way round; 20 sweeps settle them to well below a thousandth of a star.
    """
    observed = ~np.isnan(R)
    mean = float(np.nanmean(R))
    residual = np.where(observed, R - mean, 0.0)
    item_counts, user_counts = observed.sum(axis=1), observed.sum(axis=0)
    item_bias, user_bias = np.zeros(R.shape[0]), np.zeros(R.shape[1])
    for _ in range(n_sweeps):
        item_bias = (residual - observed * user_bias).sum(axis=1) / (item_counts + regularization)
        user_bias = (residual - observed * item_bias[:, None]).sum(axis=0) / (user_counts + regularization)
    return mean, item_bias, user_bias


class RatingCompleter:
    """Ratings as biases plus what an estimator completes of the rest, clipped to the scale.

    ``fit`` removes the regularised global mean, item and user biases from the
    observed ratings and fits ``estimator`` (anything with ``fit(X)`` and
    ``complete(X)`` that accepts NaN: ``DAMAutoencoder``, ``DAMEmbedding``, the
    iterative SVD) on the residual matrix; ``predict`` adds the biases back to the
    estimator's completion, times ``residual_weight``, and clips to
    ``rating_range``. Movies and users without
    a training rating are left out of the estimator's matrix (a row with nothing
    observed cannot be fitted) and predicted by their biases alone. With
    ``estimator=None`` it is the bias baseline.
    """

    def __init__(self, estimator=None, bias_regularization=10.0, residual_weight=1.0, rating_range=RATING_RANGE):
        self.estimator = estimator
        self.bias_regularization = bias_regularization
        self.residual_weight = residual_weight
        self.rating_range = rating_range

    def fit(self, R):
        self.mean_, self.item_bias_, self.user_bias_ = fit_biases(R, self.bias_regularization)
        residual = R - self._biases()
        observed = ~np.isnan(residual)
        self.rows_, self.columns_ = observed.any(axis=1), observed.any(axis=0)
        self.residual_completion_ = np.zeros(R.shape)
        if self.estimator is not None:
            inner = residual[np.ix_(self.rows_, self.columns_)]
            self.estimator.fit(inner)
            self.residual_completion_[np.ix_(self.rows_, self.columns_)] = self.estimator.complete(inner)
        return self

    def _biases(self):
        return self.mean_ + self.item_bias_[:, None] + self.user_bias_[None, :]

    def predict(self, items, users):
        """Predicted ratings of the (item, user) pairs, on the rating scale."""
        predicted = self._biases()[items, users] + self.residual_weight * self.residual_completion_[items, users]
        return np.clip(predicted, *self.rating_range)


def rmse(predicted, ratings):
    return float(np.sqrt(np.mean((predicted - ratings) ** 2)))


def main():
    parser = add_common_arguments(argparse.ArgumentParser(description=__doc__.splitlines()[0]))
    parser.add_argument("--seed", type=int, default=0, help="seed of the splits and the estimators")
    parser.add_argument("--name", default="recommendation", help="results/<name>.txt")
    args = parser.parse_args()
    limit_threads(args.threads)

    from _completion import IterativeSVD
    from _movielens import ensure_installed, load_ratings
    from skdam import DAMAutoencoder, DAMEmbedding

    ensure_installed()
    users, items, ratings = load_ratings()
    shape = (items.max() + 1, users.max() + 1)
    random_state = np.random.RandomState(args.seed)
    order = random_state.permutation(ratings.size)
    n_test = int(round(TEST_FRACTION * ratings.size))
    test, train = order[:n_test], order[n_test:]
    n_validation = int(round(VALIDATION_FRACTION * train.size))
    validation, fitting = train[:n_validation], train[n_validation:]

    report = start_report(args.name, "MovieLens-100k: rating completion", args.threads)
    report(f"{ratings.size} ratings, {shape[1]} users, {shape[0]} movies; item-by-user matrix (rows are movies). "
           f"Seeded random split (seed {args.seed}): {train.size} training ratings ({fitting.size} fitted and {validation.size} "
           f"validation ratings to choose every setting), {test.size} test ratings. RMSE in stars; predictions clipped to 1-5.\n")

    R_fitting = rating_matrix(items[fitting], users[fitting], ratings[fitting], shape)
    R_train = rating_matrix(items[train], users[train], ratings[train], shape)

    def validation_rmse(completer):
        completer.fit(R_fitting)
        return rmse(completer.predict(items[validation], users[validation]), ratings[validation])

    def validation_rmse_by_weight(completer):
        """Validation RMSE at every residual weight, from one fit."""
        completer.fit(R_fitting)
        errors = {}
        for weight in RESIDUAL_WEIGHTS:
            completer.residual_weight = weight
            errors[weight] = rmse(completer.predict(items[validation], users[validation]), ratings[validation])
        return errors

    # Settings chosen on the validation ratings, in the order the wrappers need them.
    bias_errors = {reg: validation_rmse(RatingCompleter(None, reg)) for reg in BIAS_REGULARIZATIONS}
    regularization = min(bias_errors, key=bias_errors.get)
    report(f"Bias regularisation chosen on validation: {regularization:g} (validation RMSE "
           + ", ".join(f"{reg:g}: {error:.4f}" for reg, error in bias_errors.items()) + ")")

    candidates = {
        "iterative SVD": [(f"rank={rank}, shrinkage={shrinkage:g}", lambda rank=rank, shrinkage=shrinkage: IterativeSVD(rank, shrinkage))
                          for rank, shrinkage in SVD_GRID],
        "DAMEmbedding": [(f"alpha={factor:g}/{shape[1]}", lambda alpha=factor / shape[1]: DAMEmbedding(alpha=alpha, random_state=args.seed))
                         for factor in EMBEDDING_ALPHAS_PER_NOISE_SHARE],
        "DAMAutoencoder": [(f"alpha={alpha:g}", lambda alpha=alpha: DAMAutoencoder(alpha=alpha, random_state=args.seed)) for alpha in AUTOENCODER_ALPHAS],
    }
    chosen = {}
    for name, settings in candidates.items():
        errors = {}
        for label, build in settings:
            by_weight = validation_rmse_by_weight(RatingCompleter(build(), regularization))
            for weight, error in by_weight.items():
                errors[label, weight] = error
            print(f"  validation {name} {label}: " + ", ".join(f"weight {w:g}: {e:.4f}" for w, e in by_weight.items()), flush=True)
        best = min(errors, key=errors.get)
        chosen[name] = (f"{best[0]}, residual weight {best[1]:g}", dict(settings)[best[0]], best[1])
        report(f"{name} chosen on validation: {chosen[name][0]} (validation RMSE {errors[best]:.4f}; at weight 1: "
               + ", ".join(f"{label} {errors[label, 1.0]:.4f}" for label, _ in settings) + ")")
    report()

    # The test ratings, once, with every chosen setting refitted on all training ratings.
    rows = []
    global_mean = float(np.mean(ratings[train]))
    rows.append(dict(method="global mean", setting="-", rmse=rmse(np.full(test.size, global_mean), ratings[test]), seconds=float("nan"), dims="-"))
    biases, seconds = timed(lambda: RatingCompleter(None, regularization).fit(R_train))
    rows.append(dict(method="user + item biases", setting=f"regularisation={regularization:g}",
                     rmse=rmse(biases.predict(items[test], users[test]), ratings[test]), seconds=seconds, dims="-"))
    for name, (label, build, weight) in chosen.items():
        completer, seconds = timed(lambda: RatingCompleter(build(), regularization, residual_weight=weight).fit(R_train))
        rows.append(dict(method=f"biases + {name}", setting=label, rmse=rmse(completer.predict(items[test], users[test]), ratings[test]),
                         seconds=seconds, dims=str(completer.estimator.n_components_)))
    peer = next(row["seconds"] for row in rows if row["method"] == "biases + iterative SVD")
    report("## Test RMSE (20 % of the ratings, never seen by any choice)\n")
    report.table(["method", "setting (chosen on validation)", "test RMSE", "dimension", "fit s", "fit time / iterative SVD's"],
                 [(row["method"], row["setting"], row["rmse"], row["dims"], row["seconds"], row["seconds"] / peer) for row in rows],
                 ["", "", ".4f", "", ".2f", ".2f"])

    by_method = {row["method"]: row["rmse"] for row in rows}
    bias_rmse, svd_rmse = by_method["user + item biases"], by_method["biases + iterative SVD"]
    for name in ("DAMAutoencoder", "DAMEmbedding"):
        dam_rmse = by_method[f"biases + {name}"]
        verdict = "PASS" if dam_rmse < bias_rmse and dam_rmse < svd_rmse else "FAIL"
        report(f"Acceptance, {name}: test RMSE {dam_rmse:.4f} below the biases' {bias_rmse:.4f} and the iterative SVD's {svd_rmse:.4f}: {verdict}")
    report.save()


if __name__ == "__main__":
    main()
