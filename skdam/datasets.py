"""Synthetic data of known dimension: the DAM paper's three representation experiments.

The generators draw from a local ``numpy`` random state and never touch global seeds.
"""

import numpy as np
from sklearn.utils import check_random_state

__all__ = ["make_linear_latent", "make_mlp_latent", "make_quadratic_latent"]


def make_linear_latent(n_samples=5000, n_components=10, n_features=100, *, noise=0.0, random_state=None):
    """Gaussian latents through a random linear map: data of exact rank.

    The DAM paper's linear experiment is ``make_linear_latent(5000, 10, 100)``.

    Parameters
    ----------
    n_samples : int, default=5000
        Number of rows.
    n_components : int, default=10
        The latent dimension, the rank of the noise-free data.
    n_features : int, default=100
        The ambient dimension.
    noise : float, default=0.0
        Standard deviation of Gaussian noise, relative to the data's root mean
        feature variance.
    random_state : int, RandomState instance or None, default=None
        Seeds the latents, the map and the noise; pass an int for reproducible data.

    Returns
    -------
    X : ndarray of shape (n_samples, n_features)
        The data.
    latent : ndarray of shape (n_samples, n_components)
        The Gaussian latent variables behind each row.

    Examples
    --------
    >>> from skdam.datasets import make_linear_latent
    >>> X, latent = make_linear_latent(100, 3, 8, random_state=0)
    >>> X.shape, int(np.linalg.matrix_rank(X))
    ((100, 8), 3)
    """
    rng = check_random_state(random_state)
    latent = rng.normal(size=(n_samples, n_components))
    X = latent @ rng.normal(size=(n_components, n_features))
    return _add_noise(X, noise, rng), latent


def make_mlp_latent(n_samples=5000, n_components=20, n_features=100, *, hidden_size=128, noise=0.0, random_state=None):
    """Gaussian latents through a random one-hidden-layer ELU network: a curved manifold.

    The DAM paper's MLP-kernel experiment is ``make_mlp_latent(5000, 20, 100)``:
    ``z -> Linear(20, 128) -> ELU -> Linear(128, 100)``, weights and biases drawn
    as PyTorch initialises them, ``U(-1/sqrt(fan_in), 1/sqrt(fan_in))``.

    Parameters
    ----------
    n_samples : int, default=5000
        Number of rows.
    n_components : int, default=20
        The latent dimension.
    n_features : int, default=100
        The ambient dimension.
    hidden_size : int, default=128
        Width of the random network's hidden layer.
    noise : float, default=0.0
        Relative standard deviation of Gaussian noise, as in :func:`make_linear_latent`.
    random_state : int, RandomState instance or None, default=None
        Seeds the latents, the network and the noise; pass an int for reproducible
        data.

    Returns
    -------
    X : ndarray of shape (n_samples, n_features)
        The data.
    latent : ndarray of shape (n_samples, n_components)
        The Gaussian latent variables behind each row.

    Examples
    --------
    >>> from skdam.datasets import make_mlp_latent
    >>> X, latent = make_mlp_latent(50, 2, 5, random_state=0)
    >>> X.shape
    (50, 5)
    """
    rng = check_random_state(random_state)

    def layer(n_in, n_out):
        bound = 1 / np.sqrt(n_in)
        return rng.uniform(-bound, bound, size=(n_in, n_out)), rng.uniform(-bound, bound, size=n_out)

    first_weight, first_bias = layer(n_components, hidden_size)
    second_weight, second_bias = layer(hidden_size, n_features)
    latent = rng.normal(size=(n_samples, n_components))
    hidden = latent @ first_weight + first_bias
    hidden = np.where(hidden > 0, hidden, np.expm1(np.minimum(hidden, 0)))  # ELU
    X = hidden @ second_weight + second_bias
    return _add_noise(X, noise, rng), latent


def make_quadratic_latent(n_samples=5000, n_components=20, n_features=100, *, noise=0.0, random_state=None):
    """Gaussian latents through a random quadratic residual (QRes) layer: a curved manifold.

    The DAM paper's quadratic-kernel experiment is ``make_quadratic_latent(5000, 20,
    100)``: ``X = (z W1) * (z W2) + z W1 + b``, with ``*`` the elementwise product,
    ``W1`` and ``W2`` of shape ``(n_components, n_features)`` and ``b`` drawn as
    PyTorch initialises a ``Linear`` layer, ``U(-1/sqrt(fan_in), 1/sqrt(fan_in))``
    with ``fan_in = n_components``. Every coordinate is a quadratic form of the
    latents plus a linear term, so the data span up to ``n_components * (n_components
    + 3) / 2`` directions while having ``n_components`` degrees of freedom.

    Parameters
    ----------
    n_samples : int, default=5000
        Number of rows.
    n_components : int, default=20
        The latent dimension.
    n_features : int, default=100
        The ambient dimension.
    noise : float, default=0.0
        Relative standard deviation of Gaussian noise, as in :func:`make_linear_latent`.
    random_state : int, RandomState instance or None, default=None
        Seeds the latents, the layer and the noise; pass an int for reproducible data.

    Returns
    -------
    X : ndarray of shape (n_samples, n_features)
        The data.
    latent : ndarray of shape (n_samples, n_components)
        The Gaussian latent variables behind each row.

    References
    ----------
    J. Bu, A. Daw, M. Maruf, A. Karpatne, "Learning Compact Representations of Neural
    Networks using DiscriminAtive Masking (DAM)", NeurIPS 2021, arXiv:2110.00684.

    J. Bu, A. Karpatne, "Quadratic Residual Networks: A New Class of Neural Networks
    for Solving Forward and Inverse Problems in Physics Involving PDEs", SDM 2021,
    arXiv:2101.08366.

    Examples
    --------
    >>> from skdam.datasets import make_quadratic_latent
    >>> X, latent = make_quadratic_latent(200, 3, 20, random_state=0)
    >>> X.shape, latent.shape
    ((200, 20), (200, 3))
    >>> # 3 linear and 6 quadratic monomials of the latents: rank 9, not 3.
    >>> int(np.linalg.matrix_rank(X - X.mean(axis=0)))
    9
    """
    rng = check_random_state(random_state)
    bound = 1 / np.sqrt(n_components)
    first_weight = rng.uniform(-bound, bound, size=(n_components, n_features))
    second_weight = rng.uniform(-bound, bound, size=(n_components, n_features))
    bias = rng.uniform(-bound, bound, size=n_features)
    latent = rng.normal(size=(n_samples, n_components))
    linear = latent @ first_weight
    X = linear * (latent @ second_weight) + linear + bias
    return _add_noise(X, noise, rng), latent


def _add_noise(X, noise, rng):
    if noise == 0:
        return X
    scale = np.sqrt(X.var(axis=0).mean())
    return X + noise * scale * rng.normal(size=X.shape)
