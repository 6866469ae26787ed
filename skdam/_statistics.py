"""Statistics of X behind the warm start: mean, global scale and principal axes.

NumPy only. Moments are summed block by block in float64, so the extra memory stays
a small share of X.
"""

from collections import namedtuple

import numpy as np
from sklearn.utils.extmath import randomized_svd

#: The normalisation and the principal axes; ``variance_shares`` is each axis's
#: share of the total variance.
#: ``covariance`` is the covariance fitted to data with missing values, else None.
#: ``basis``: the leading axes a network trains through on wide data, else None
#: (:mod:`skdam._principal_subspace`). ``share_outside``: the share of the variance
#: outside the span the network's errors are measured in, 0 where it reads the
#: features themselves.
PrincipalAxes = namedtuple(
    "PrincipalAxes",
    ["mean", "spread", "directions", "variance_shares", "covariance", "basis", "share_outside"],
    defaults=(None, None, 0.0),
)

#: Entries per block when statistics of X are accumulated in float64: a sixteenth
#: of X, between 1 MiB and 8 MiB of float64, so their extra memory stays a small
#: share of the input whatever its shape. The upper bound pays on wide data: with
#: blocks of 1 MiB (167 rows, too thin for a fast matrix product) the statistics of
#: Fashion-MNIST took 1.08 s instead of 0.77 s (speed.py --sections internals).
STATISTICS_CHUNK_ENTRIES = (2**17, 2**20)
STATISTICS_CHUNK_SHARE_OF_X = 1 / 16
#: Above this many features the d x d covariance is too big: sample rows instead.
COVARIANCE_MAX_FEATURES = 4096
#: Rows sampled for a randomized SVD when there are too many features.
SVD_SAMPLE_ROWS = 20000


def row_chunks(X):
    """Slices of rows holding about ``STATISTICS_CHUNK_ENTRIES`` entries each."""
    smallest, largest = STATISTICS_CHUNK_ENTRIES
    entries = min(largest, max(smallest, int(X.shape[0] * X.shape[1] * STATISTICS_CHUNK_SHARE_OF_X)))
    rows = max(1, entries // max(X.shape[1], 1))
    return [slice(start, start + rows) for start in range(0, X.shape[0], rows)]


def principal_axes(X, n_directions, random_state):
    """Mean, spread and top ``n_directions`` principal axes of ``X``.

    The spread, the root mean feature variance, is the global scale of the
    normalisation: in normalised units the mean squared error is the unexplained
    share of the variance. It is 0 for constant ``X``, including deviations within
    float64's rounding of the mean.

    Moments are summed chunk by chunk in float64, so the extra memory is
    ``O(n_features**2)``, not a copy of ``X``, and the axes are the exact top
    eigenvectors of the covariance. With more than ``COVARIANCE_MAX_FEATURES``
    features, a randomized SVD of at most ``SVD_SAMPLE_ROWS`` sampled rows gives
    them instead. ``variance_shares`` is each axis's share of the total variance.
    """
    n_samples, n_features = X.shape
    chunks = row_chunks(X)
    mean = sum(X[rows].sum(axis=0, dtype=np.float64) for rows in chunks) / n_samples
    # Each feature's largest deviation is at its largest or smallest entry.
    largest_deviation = max(
        float(max(np.max(X[rows].max(axis=0) - mean), np.max(mean - X[rows].min(axis=0)))) for rows in chunks
    )
    if largest_deviation <= 4 * np.finfo(np.float64).eps * float(np.max(np.abs(mean))):
        return PrincipalAxes(mean, 0.0, np.eye(n_features)[:n_directions], np.zeros(n_directions))
    if n_features <= COVARIANCE_MAX_FEATURES:
        # Divided by the largest deviation before squaring, so that subnormal data
        # does not underflow to a spread of zero (and is refused as too narrow).
        scatter = np.zeros((n_features, n_features))
        for rows in chunks:
            centred = (X[rows] - mean) / largest_deviation  # float64
            scatter += centred.T @ centred
        spread = largest_deviation * float(np.sqrt(np.trace(scatter) / (n_samples * n_features)))
        eigenvalues, eigenvectors = np.linalg.eigh(scatter)
        directions = eigenvectors[:, ::-1][:, :n_directions].T
        variance_shares = eigenvalues[::-1][:n_directions] / max(np.trace(scatter), np.finfo(np.float64).tiny)
    else:
        sample = np.sort(random_state.choice(n_samples, min(n_samples, SVD_SAMPLE_ROWS), replace=False))
        centred = (X[sample] - mean) / largest_deviation
        spread = largest_deviation * float(np.sqrt(np.mean(np.square(centred))))
        _, singular_values, directions = randomized_svd(centred, n_directions, random_state=random_state)
        variance_shares = singular_values**2 / max(float(np.sum(np.square(centred))), np.finfo(np.float64).tiny)
    # Fresh arrays: eigh's reversed views have negative strides.
    return PrincipalAxes(mean, spread, directions.copy(), np.clip(variance_shares, 0.0, 1.0).copy())


#: Narrowest default bottleneck. The default is also at least twice the number of
#: principal components that explain more than alpha, so it never caps the answer.
DEFAULT_MAX_COMPONENTS = 64


#: Iterations of the probabilistic PCA fit behind the axes of data with missing
#: values, at most, and the relative change of the filled entries at which it stops.
MISSING_FIT_ITERATIONS = 30
MISSING_FIT_TOL = 1e-3


def incomplete_principal_axes(X, n_directions, random_state, alpha):
    """:func:`principal_axes` of ``X`` with missing entries (NaN), by probabilistic PCA's EM.

    The mean is each feature's mean over its observed entries; the spread, the root
    mean squared deviation of the observed entries from it, so that in normalised
    units the mean squared error over the observed entries is the unexplained share
    of their variance.

    The covariance is fitted by expectation-maximisation of the probabilistic PCA
    model (Tipping & Bishop, 1999) on the observed entries, starting from the mean
    fill. Each iteration keeps the axes that explain more than ``alpha`` of the
    current covariance (at least one); fills each row's missing entries with their
    expectation given its observed ones and re-estimates the noise variance from
    the observed entries' residuals, degrees of freedom counted
    (:func:`~skdam._pca_model.ppca_incomplete_em_step`; the first noise is the mean
    variance of the other axes of the mean fill); and takes the covariance of the
    filled rows plus the noise variance on each filled entry, so that filled
    entries do not look less noisy than observed ones. A hard low-rank
    fill without that noise term overfits the holes (on digits with 30 % missing,
    rank 27 filled them worse than the mean). With more than
    ``COVARIANCE_MAX_FEATURES`` features the axes are those of the mean-filled data.

    ``covariance`` is the fitted covariance; ``variance_shares`` are its principal
    variances as shares of its trace.
    """
    from ._pca_model import ppca_incomplete_em_step  # NumPy only, like this module

    n_samples, n_features = X.shape
    observed = ~np.isnan(X)
    mean = np.where(observed, X, 0.0).sum(axis=0, dtype=np.float64) / np.maximum(observed.sum(axis=0), 1)
    completed = np.where(observed, X, mean)  # float64 whatever X's dtype
    spread = float(np.sqrt(np.square(np.where(observed, completed - mean, 0.0)).sum() / observed.sum()))
    if spread == 0.0:
        return PrincipalAxes(mean, 0.0, np.eye(n_features)[:n_directions], np.zeros(n_directions))
    if n_features > COVARIANCE_MAX_FEATURES:
        directions, shares = _top_axes(completed - mean, n_directions, random_state)
        return PrincipalAxes(mean, spread, directions, shares)
    missing = ~observed
    missing_per_feature = missing.sum(axis=0)
    holed_rows = np.flatnonzero(missing.any(axis=1))
    noise = None
    for _ in range(MISSING_FIT_ITERATIONS):
        centred = completed - mean
        covariance = (centred.T @ centred + np.diag((noise or 0.0) * missing_per_feature)) / n_samples
        eigenvalues, eigenvectors = np.linalg.eigh(covariance)
        eigenvalues, eigenvectors = np.clip(eigenvalues[::-1], 0.0, None), eigenvectors[:, ::-1]
        shares = eigenvalues / max(float(eigenvalues.sum()), np.finfo(np.float64).tiny)
        rank = min(max(1, int(np.sum(shares > alpha))), n_features - 1)
        if noise is None:  # the mean fill's: PCA's estimate, the mean left-out variance
            noise = float(eigenvalues[rank:].mean())
        codes, updated_noise = ppca_incomplete_em_step(X, mean, eigenvectors[:, :rank].T, eigenvalues[:rank], noise)
        fill = mean + codes[holed_rows] @ eigenvectors[:, :rank].T
        holes = missing[holed_rows]
        before = completed[holed_rows][holes]
        change = np.linalg.norm(fill[holes] - before)
        size = np.linalg.norm(before - mean[np.nonzero(holes)[1]])
        completed[holed_rows[np.nonzero(holes)[0]], np.nonzero(holes)[1]] = fill[holes]
        noise_change = abs(updated_noise - noise) / max(noise, np.finfo(np.float64).tiny)
        noise = updated_noise
        if change <= MISSING_FIT_TOL * max(size, np.finfo(np.float64).tiny) and noise_change <= MISSING_FIT_TOL:
            break
    centred = completed - mean
    covariance = (centred.T @ centred + np.diag(noise * missing_per_feature)) / n_samples
    eigenvalues, eigenvectors = np.linalg.eigh(covariance)
    shares = np.clip(eigenvalues[::-1], 0.0, None) / max(float(np.trace(covariance)), np.finfo(np.float64).tiny)
    directions = eigenvectors[:, ::-1][:, :n_directions].T.copy()
    return PrincipalAxes(mean, spread, directions, np.clip(shares[:n_directions], 0.0, 1.0), covariance)


def linear_errors(axes):
    """Share of the variance the top ``k`` of ``axes`` leave unexplained, at index ``k - 1``: PCA's errors.

    Within the span errors are measured in: the share outside it, ``share_outside``,
    is left out.
    """
    return 1.0 - axes.share_outside - np.cumsum(axes.variance_shares)


def _top_axes(centred, n_directions, random_state):
    """Top principal axes of complete, centred data (sampled rows) and their variance shares."""
    n_samples = centred.shape[0]
    sample = np.sort(random_state.choice(n_samples, min(n_samples, SVD_SAMPLE_ROWS), replace=False))
    _, singular_values, directions = randomized_svd(centred[sample], n_directions, random_state=random_state)
    total = max(float(np.sum(np.square(centred[sample]))), np.finfo(np.float64).tiny)
    return directions, np.clip(singular_values**2 / total, 0, 1)


def bottleneck_axes(
    X, random_state, *, max_components, min_open, alpha, incremental, min_open_name, missing_values=False, basis_width=None
):  # fmt: skip
    """Principal axes for the bottleneck's units, as many as its width.

    A ``max_components`` the user set bounds the width. The default is at least
    ``DEFAULT_MAX_COMPONENTS`` and twice the number of principal components that
    explain more than ``alpha``, so it does not cap the answer. ``fit`` is bounded by
    ``min(n_samples, n_features)``; ``partial_fit`` by ``n_features`` only where the
    covariance gives every axis, whatever the rows of its first chunk. With
    ``missing_values`` (``X`` holds NaN) the axes are :func:`incomplete_principal_axes`.

    ``basis_width``, a function of the number of features and the width, gives how
    many leading axes go to ``basis`` (None for none); only complete, non-constant
    data whose covariance gives every axis has one.
    """
    n_samples, n_features = X.shape
    exact = n_features <= COVARIANCE_MAX_FEATURES
    limit = n_features if incremental and exact else min(n_samples, n_features)
    floor = max(DEFAULT_MAX_COMPONENTS, min_open)
    if max_components is not None:
        width = min(max_components, limit)
        n_directions = limit if exact and basis_width is not None else width
    else:
        n_directions = limit if exact else min(limit, 2 * floor)
    while True:
        if missing_values:
            axes = incomplete_principal_axes(X, n_directions, random_state, alpha)
        else:
            axes = principal_axes(X, n_directions, random_state)
        if max_components is None:
            width = min(limit, max(floor, 2 * int(np.sum(axes.variance_shares > alpha))))
        if width <= n_directions or n_directions == limit:
            break
        n_directions = min(limit, 2 * n_directions)  # randomized SVD: look further
    if min_open > width:
        raise ValueError(
            f"{min_open_name}={min_open} is larger than max_components={width} (at most "
            f"{limit} for X of shape {X.shape})."
        )
    spanned = basis_width is not None and exact and not missing_values and axes.spread > 0  # constant data span nothing
    n_basis = basis_width(n_features, width) if spanned else None
    if n_basis is not None:
        axes = axes._replace(basis=axes.directions[:n_basis].copy())
    return axes._replace(directions=axes.directions[:width], variance_shares=axes.variance_shares[:width])
