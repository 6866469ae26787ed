"""``skdam demo``: both estimators on scikit-learn's bundled digits, beside PCA."""

import time
import warnings
from pathlib import Path

import numpy as np
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from ._autoencoder import DAMAutoencoder
from ._embedding import DAMEmbedding
from ._plot import GateDisplay


def _test_mse(reducer, X_test):
    return float(np.mean((reducer.inverse_transform(reducer.transform(X_test)) - X_test) ** 2))


def _accuracy(reducer, X_train, y_train, X_test, y_test):
    classifier = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    classifier.fit(reducer.transform(X_train), y_train)
    return float(classifier.score(reducer.transform(X_test), y_test))


def run_demo(output_dir="skdam-demo", random_state=0, stream=print):
    """Fit both estimators on digits, print a table beside PCA and save a PNG.

    Returns
    -------
    rows : list of dict
        One row per estimator: dimensions found, test MSE, PCA's test MSE at the same
        dimension, both accuracies, and the fit time.
    png_path : pathlib.Path or None
        The figure, or None when matplotlib is missing.
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
    png_path = _plot(estimators, Path(output_dir))
    if png_path is not None:
        stream(f"Gate values and open gates per epoch: {png_path}")
    return rows, png_path


def _plot(estimators, output_dir):
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        warnings.warn("matplotlib is not installed; the demo's figure is skipped.")
        return None
    output_dir.mkdir(parents=True, exist_ok=True)
    figure, axes = plt.subplots(
        len(estimators), 2, figsize=(11, 3.6 * len(estimators)), squeeze=False, layout="constrained"
    )
    for row, estimator in zip(axes, estimators):
        GateDisplay.from_estimator(estimator, ax=row)
    path = output_dir / "skdam-demo.png"
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path
