"""Thin samples: the error the autoencoder reports against the error on rows it never saw.

Judged on the training rows (``early_stopping=False``), as PCA's
``explained_variance_ratio_`` is of the training data, ``DAMAutoencoder``'s rule can be
fooled: a network can memorise a small sample, and then the error it reports at ``k``
units, its ``unexplained_variance_[k]``, reads far below what new rows see, and units
that carry variance close. This script measures how far, per data set:

- ``n_components_`` with ``early_stopping=False`` and ``True`` (the rule judged on the
  held-out ``validation_fraction`` of the rows; ``"auto"``, the default, holds rows out
  from 1000 rows, so on every set here), against the truth;
- the error each reports at its count, beside ``1 - R^2`` on fresh test rows of the
  same distribution (a second draw from the same map, or digits' test split) and
  PCA's on them at the same count (``1 - R^2`` as the estimators define it:
  squared error over squared deviation from the training mean).

Data: scikit-learn's digits (the demo's split), and from ``manifolds.py`` the rank-10
affine set, the MLP latents of 12 and 16, the Swiss roll and the S-curve (2000
training rows each, as in the suite, and 2000 test rows).

Usage: ``python benchmarks/thin_samples.py [--threads 1] [--seeds 1]``
"""

import argparse

import numpy as np

from _common import add_common_arguments, limit_threads, start_report, timed_fit
from manifolds import data_sets, select

SETS = ["affine 10 in R^50", "MLP latent 12 in R^50", "MLP latent 16 in R^80", "Swiss roll", "S-curve"]
TEST_ROWS = 2000


def unexplained(X, reconstruction, training_mean):
    return float(np.sum((X - reconstruction) ** 2) / np.sum((X - training_mean) ** 2))


def digits_split(seed):
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    X, y = load_digits(return_X_y=True)
    X_train, X_test = train_test_split(X, test_size=0.25, random_state=seed, stratify=y)[:2]
    return X_train, X_test


def manifold_split(data_set, seed):
    X = data_set.draw(data_set.n_samples + TEST_ROWS, seed)  # one map, two samples of it
    return X[: data_set.n_samples], X[data_set.n_samples :]


def main():
    parser = add_common_arguments(argparse.ArgumentParser(description=__doc__.splitlines()[0]))
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument("--name", default="thin_samples", help="stem of the files written under benchmarks/results/")
    args = parser.parse_args()
    limit_threads(args.threads)

    from sklearn.decomposition import PCA

    from skdam import DAMAutoencoder

    cases = [("digits (1347 training rows)", "-", digits_split)]  # no true dimension
    cases += [(d.label, d.dimension, lambda seed, d=d: manifold_split(d, seed)) for d in select(data_sets(), SETS) if not d.noise]
    report = start_report(args.name, "Thin samples: the reported error against fresh rows", args.threads)
    report(
        "Errors are 1 - R^2: 'reported' is unexplained_variance_[n_components_] (training rows, or the held-out "
        "rows with early_stopping); 'train' and 'test' are measured after the fit on the training rows and on "
        f"{TEST_ROWS} fresh rows (digits: its test split); 'PCA test' is PCA with as many components on the test rows.\n"
    )
    rows = []
    for label, truth, split in cases:
        for seed in range(args.seeds):
            X_train, X_test = split(seed)
            mean = X_train.mean(axis=0)
            for early_stopping in (False, True):
                fitted = timed_fit(DAMAutoencoder(early_stopping=early_stopping, random_state=seed), X_train)
                estimator, k = fitted.estimator, int(fitted.estimator.n_components_)
                pca = PCA(n_components=k).fit(X_train)
                pca_test = unexplained(X_test, pca.inverse_transform(pca.transform(X_test)), mean)
                rows.append([
                    label, str(truth), seed, str(early_stopping), k, float(estimator.unexplained_variance_[k]),
                    unexplained(X_train, estimator.inverse_transform(estimator.transform(X_train)), mean),
                    unexplained(X_test, estimator.inverse_transform(estimator.transform(X_test)), mean), pca_test,
                    fitted.seconds,
                ])  # fmt: skip
                print(*rows[-1], flush=True)
    report.table(
        ["data", "true dim", "seed", "early_stopping", "n_components_", "reported", "train", "test", "PCA test", "fit s"],
        rows, ["", "", "", "", "", ".4f", ".4f", ".4f", ".4f", ".1f"],
    )  # fmt: skip
    report.save()


if __name__ == "__main__":
    main()
