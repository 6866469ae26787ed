"""``skdam demo``: both estimators beside PCA, on scikit-learn's digits and on a Swiss roll."""

import time
import warnings
from pathlib import Path

import numpy as np
from sklearn.datasets import load_digits, make_swiss_roll
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from ._autoencoder import DAMAutoencoder
from ._embedding import DAMEmbedding
from ._plot import GateDisplay
from ._reconstruction_display import ReconstructionDisplay

#: Points of the demo's Swiss roll: enough for the network to learn the sheet.
SWISS_ROLL_SAMPLES = 2000


def _test_mse(reducer, X_test):
    return float(np.mean((reducer.inverse_transform(reducer.transform(X_test)) - X_test) ** 2))


def _accuracy(reducer, X_train, y_train, X_test, y_test):
    classifier = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    classifier.fit(reducer.transform(X_train), y_train)
    return float(classifier.score(reducer.transform(X_test), y_test))


def run_demo(output_dir="skdam-demo", random_state=0, stream=print):
    """Fit both estimators on digits and on a Swiss roll, print tables beside PCA, save two PNGs.

    Returns
    -------
    rows : list of dict
        One row per estimator on digits: dimensions found, test MSE, PCA's test MSE
        at the same dimension, both accuracies, and the fit time.
    curved_rows : list of dict
        One row per estimator on the Swiss roll: dimensions found, the fit time, and
        the unexplained share of the variance at 1, 2 and 3 dimensions as the fit
        measured it (NaN where it did not).
    png_paths : list of pathlib.Path
        The figures: the gates on digits, and the Swiss roll's error curve and
        gains; empty when matplotlib is missing.
    """
    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, random_state=random_state, stratify=y)
    estimators = [DAMEmbedding(random_state=random_state), DAMAutoencoder(random_state=random_state)]
    stream(f"digits: {X_train.shape[0]} training and {X_test.shape[0]} test images of {X.shape[1]} pixels\n")
    header = f"{'estimator':<16}{'dims':>5}{'fit s':>8}{'test MSE':>10}{'PCA MSE':>10}{'accuracy':>10}{'PCA acc.':>10}"
    stream(header)
    stream("-" * len(header))
    rows = []
    for estimator in estimators:
        start = time.perf_counter()
        estimator.fit(X_train)
        seconds = time.perf_counter() - start
        pca = PCA(n_components=estimator.n_components_, random_state=random_state).fit(X_train)
        row = {
            "estimator": type(estimator).__name__,
            "n_components": estimator.n_components_,
            "fit_seconds": seconds,
            "test_mse": _test_mse(estimator, X_test),
            "pca_test_mse": _test_mse(pca, X_test),
            "accuracy": _accuracy(estimator, X_train, y_train, X_test, y_test),
            "pca_accuracy": _accuracy(pca, X_train, y_train, X_test, y_test),
        }
        rows.append(row)
        stream(
            f"{row['estimator']:<16}{row['n_components']:>5}{seconds:>8.2f}{row['test_mse']:>10.3f}"
            f"{row['pca_test_mse']:>10.3f}{row['accuracy']:>10.3f}{row['pca_accuracy']:>10.3f}"
        )
    stream("\nEach estimator chose its own number of dimensions; PCA was given the same number.")
    autoencoder, pca_errors, curved_rows = _swiss_roll(random_state, stream)
    png_paths = _plot(estimators, autoencoder, pca_errors, Path(output_dir))
    if png_paths:
        stream(f"\nGate values and open gates per epoch on digits: {png_paths[0]}")
        stream(f"The Swiss roll's error against the dimensions, and each unit's gain: {png_paths[1]}")
    return rows, curved_rows, png_paths


def _swiss_roll(random_state, stream):
    """Where the data are curved: the sheet's 2 dimensions, which a linear method sees as 3."""
    X = make_swiss_roll(SWISS_ROLL_SAMPLES, random_state=random_state)[0]
    stream(f"\nSwiss roll: {SWISS_ROLL_SAMPLES} points of a 2-dimensional sheet rolled up in 3 dimensions")
    header = f"{'estimator':<16}{'dims':>5}{'fit s':>8}{'1 - R^2 at 1, 2, 3 dims (as the fit measured it)':>52}"
    stream(header)
    stream("-" * len(header))
    estimators = [DAMEmbedding(random_state=random_state), DAMAutoencoder(random_state=random_state)]
    rows = []
    for estimator in estimators:
        start = time.perf_counter()
        with warnings.catch_warnings():  # "all 3 gates stayed open": the table shows why
            warnings.simplefilter("ignore", UserWarning)
            estimator.fit(X)
        seconds = time.perf_counter() - start
        errors = np.asarray(estimator.unexplained_variance_[1:4], dtype=np.float64)
        rows.append({
            "estimator": type(estimator).__name__, "n_components": estimator.n_components_, "fit_seconds": seconds,
            "unexplained_variance": errors,
        })  # fmt: skip
        measured = "  ".join("   -  " if np.isnan(error) else f"{error:6.4f}" for error in errors)
        stream(f"{rows[-1]['estimator']:<16}{estimator.n_components_:>5}{seconds:>8.2f}{measured:>52}")
    pca = PCA(random_state=random_state).fit(X)
    pca_errors = 1.0 - np.cumsum(pca.explained_variance_ratio_)
    stream(f"{'PCA':<16}{'':>5}{'':>8}{'  '.join(f'{error:6.4f}' for error in pca_errors):>52}")
    linear, autoencoder = estimators
    stream(
        f"\nA unit is kept when it lowers 1 - R^2 by more than alpha={autoencoder.alpha}: PCA's third axis still "
        f"carries {pca_errors[1]:.2f} of the variance, so the linear estimator keeps {linear.n_components_}; "
        f"the autoencoder, with {autoencoder.n_components_} units, leaves "
        f"{autoencoder.unexplained_variance_[autoencoder.n_components_]:.4f}."
    )
    return autoencoder, np.concatenate([[1.0], pca_errors]), rows


def _plot(estimators, autoencoder, pca_errors, output_dir):
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        warnings.warn("matplotlib is not installed; the demo's figures are skipped.")
        return []
    output_dir.mkdir(parents=True, exist_ok=True)
    figure, axes = plt.subplots(
        len(estimators), 2, figsize=(11, 3.6 * len(estimators)), squeeze=False, layout="constrained"
    )
    for row, estimator in zip(axes, estimators):
        GateDisplay.from_estimator(estimator, ax=row)
    gates_path = output_dir / "skdam-demo.png"
    figure.savefig(gates_path, dpi=110)
    plt.close(figure)

    figure, axes = plt.subplots(1, 2, figsize=(11, 4), layout="constrained")
    display = ReconstructionDisplay.from_estimator(autoencoder, ax=axes, name="DAMAutoencoder")
    counts = np.arange(len(pca_errors))
    display.error_ax_.plot(counts, pca_errors, marker="s", linewidth=4, color="silver", label="PCA", zorder=0)
    display.error_ax_.legend()
    display.error_ax_.set_title("Swiss roll: error against the dimensions")
    curve_path = output_dir / "skdam-demo-swiss-roll.png"
    figure.savefig(curve_path, dpi=110)
    plt.close(figure)
    return [gates_path, curve_path]
