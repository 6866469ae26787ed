"""The probabilistic PCA model (Tipping & Bishop, 1999) of a linear subspace.

NumPy only. A subspace spanned by the rows of ``components``, with variance
``explained_variance`` along them and isotropic ``noise_variance`` everywhere else,
is a Gaussian whose covariance is ``W.T @ diag(explained - noise) @ W + noise * I``.
"""

import numpy as np
from scipy import linalg

from ._input import dense_batches


def ppca_covariance(components, explained_variance, noise_variance):
    """Covariance of the model, shape ``(n_features, n_features)``."""
    signal = np.maximum(explained_variance - noise_variance, 0.0)
    covariance = (components.T * signal) @ components
    covariance.flat[:: covariance.shape[0] + 1] += noise_variance
    return covariance


def ppca_precision(components, explained_variance, noise_variance):
    """Inverse of :func:`ppca_covariance`, without inverting a ``d x d`` matrix.

    By the matrix inversion lemma, ``(s I + W.T D W)^-1 = I / s - W.T (D^-1 + W W.T
    / s)^-1 W / s**2``, which inverts a ``k x k`` matrix only.
    """
    n_components, n_features = components.shape
    if n_components == 0:
        return np.eye(n_features) / noise_variance
    if noise_variance <= 0:
        # Every direction is a component (or the data are constant): the pseudo-
        # inverse keeps the density finite where the covariance is singular.
        return linalg.pinvh(ppca_covariance(components, explained_variance, noise_variance))
    signal = np.maximum(explained_variance - noise_variance, 0.0)
    inner = components @ components.T / noise_variance
    inner.flat[:: n_components + 1] += 1.0 / signal
    precision = -(components.T @ linalg.inv(inner) @ components) / noise_variance**2
    precision.flat[:: n_features + 1] += 1.0 / noise_variance
    return precision


def ppca_log_likelihood(X, mean, precision):
    """Log-likelihood of each row of ``X`` (batch by batch) under ``N(mean, precision^-1)``."""
    # The pseudo-determinant: over the directions the precision does not ignore.
    eigenvalues = np.linalg.eigvalsh(precision)
    log_det = float(np.sum(np.log(eigenvalues[eigenvalues > eigenvalues.max() * 1e-12]))) if eigenvalues.max() > 0 else 0.0
    constant = -0.5 * (precision.shape[0] * np.log(2 * np.pi) - log_det)
    scores = np.empty(X.shape[0])
    for rows, batch in dense_batches(X):
        centred = np.asarray(batch, dtype=np.float64) - mean
        scores[rows] = constant - 0.5 * np.einsum("ij,ij->i", centred, centred @ precision)
    return scores
