"""The reconstruction error of DAM and of PCA against the number of dimensions.

The numbers that :class:`~skdam.ReconstructionDisplay` draws, as scikit-learn's
``learning_curve`` computes what ``LearningCurveDisplay`` draws; no matplotlib here.
"""

from numbers import Integral

import numpy as np
from sklearn.base import clone
from sklearn.decomposition import PCA
from sklearn.utils.validation import check_array

#: Evenly spaced dimensions that reconstruction_curve tries by default, besides the
#: estimator's dimension and its two neighbours.
DEFAULT_N_SPREAD_DIMENSIONS = 5


def reconstruction_curve(estimator, X, *, n_components=None):
    """Reconstruction error against the number of dimensions, for DAM and for PCA.

    For each ``k``, a clone of ``estimator`` is refitted on ``X`` with
    ``n_components=k`` (DAM as a pruning schedule to exactly ``k`` dimensions) and
    scored on ``X``; PCA is fitted on ``X`` once and evaluated on its first ``k``
    axes. The error is the unexplained share of the variance, ``1 - R^2``. This is
    what :class:`ReconstructionDisplay` draws; it needs no matplotlib.

    Parameters
    ----------
    estimator : DAMEmbedding or DAMAutoencoder
        The estimator to refit, fitted or not; it is not modified. Its clones keep
        its other parameters (``alpha``, ``max_iter``, ``random_state``...).
    X : array-like of shape (n_samples, n_features)
        Data to fit and to reconstruct.
    n_components : array-like of int, default=None
        Dimensions to refit at, each in ``[1, min(n_samples, n_features)]`` and at
        most the estimator's ``max_components``. None tries about eight around the
        estimator's ``n_components_``: five spread evenly from 1 to twice it, and it
        with its two neighbours; an unfitted estimator is then first fitted, as a
        clone on ``X``, to find it.

    Returns
    -------
    n_components : ndarray of shape (n_points,)
        The dimensions the refits reached, increasing. A refit that ends with
        another number of open gates than asked (the pruning schedule can stall, or
        run out of ``max_iter``) counts at the dimension it reached.
    reconstruction_error : ndarray of shape (n_points,)
        Each refit's unexplained variance on ``X``.
    pca_reconstruction_error : ndarray of shape (n_points,)
        PCA's unexplained variance on ``X`` at the same dimensions.

    See Also
    --------
    ReconstructionDisplay : Draws these curves, and the fitted estimator on them.

    Examples
    --------
    >>> from skdam import DAMEmbedding, reconstruction_curve
    >>> from skdam.datasets import make_linear_latent
    >>> X, _ = make_linear_latent(300, 3, 12, random_state=0)
    >>> n_components, errors, pca_errors = reconstruction_curve(
    ...     DAMEmbedding(random_state=0), X, n_components=[2, 3])
    >>> n_components.tolist()
    [2, 3]
    >>> bool(errors[0] > 0.1 and errors[1] < 1e-4)
    True
    """
    X = check_array(X, dtype=[np.float64, np.float32])
    largest = min(X.shape)
    if getattr(estimator, "max_components", None) is not None:
        largest = min(largest, estimator.max_components)

    # Check a given list before the first, possibly long, fit.
    if n_components is not None:
        n_components = _check_dimensions(n_components, largest)
    else:
        fitted = estimator if hasattr(estimator, "n_components_") else clone(estimator).fit(X)
        n_components = _default_dimensions(fitted.n_components_, largest)

    reached, errors = [], []
    for k in n_components:
        refitted = clone(estimator).set_params(n_components=k).fit(X)
        reached.append(refitted.n_components_)
        errors.append(1 - refitted.r2_score(X))
    order = np.argsort(reached, kind="stable")
    reached = np.asarray(reached)[order]
    pca = PCA(n_components=int(reached.max()), svd_solver="full").fit(X)
    pca_errors = np.array([_pca_unexplained_variance(pca, X, k) for k in reached])
    return reached, np.asarray(errors, dtype=np.float64)[order], pca_errors


def _default_dimensions(found, largest):
    spread = np.linspace(1, max(2 * found, found + 2), DEFAULT_N_SPREAD_DIMENSIONS).round()
    dimensions = np.concatenate([spread, [found - 1, found, found + 1]])
    return np.unique(np.clip(dimensions, 1, largest)).astype(int).tolist()


def _check_dimensions(n_components, largest):
    dimensions = np.unique(np.asarray(n_components, dtype=object).ravel())
    if dimensions.size == 0:
        raise ValueError("n_components must list at least one dimension.")
    for k in dimensions:
        if not isinstance(k, Integral) or isinstance(k, bool) or not 1 <= k <= largest:
            raise ValueError(
                f"n_components must hold integers in [1, {largest}] (at most min(n_samples, "
                f"n_features) and the estimator's max_components), got {k!r}."
            )
    return [int(k) for k in dimensions]


def _pca_unexplained_variance(pca, X, n_components):
    """``1 - R^2`` of PCA restricted to its first ``n_components`` axes.

    PCA's axes are nested, so the first ``k`` axes of one fit are ``PCA(k)``'s.
    """
    components = pca.components_[:n_components]
    centred = X - pca.mean_
    residual = centred - (centred @ components.T) @ components
    total = np.square(centred, dtype=np.float64).sum()
    return float(np.square(residual, dtype=np.float64).sum() / total) if total > 0 else 0.0
