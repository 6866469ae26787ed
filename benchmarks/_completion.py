"""Matrix completion helpers shared by missing.py and recommendation.py.

Hiding entries at random, the held-out error, and the iterative low-rank SVD
baseline (soft-impute, Mazumder, Hastie and Tibshirani, JMLR 2010, with a rank cap)
whose rank and shrinkage are chosen on a validation part of the observed entries.

Not part of the package and not run by CI.
"""

import numpy as np


def hide_entries(mask, fraction, random_state):
    """Split the entries where ``mask`` is True in two, at random.

    Parameters
    ----------
    mask : ndarray of bool
        The entries to split (the observed ones).
    fraction : float
        Share of them that goes to the second part.
    random_state : numpy.random.RandomState

    Returns
    -------
    kept, hidden : ndarray of bool, shaped like ``mask``
        Disjoint; their union is ``mask``.
    """
    rows, columns = np.nonzero(mask)
    chosen = random_state.permutation(rows.size)[: int(round(fraction * rows.size))]
    hidden = np.zeros_like(mask)
    hidden[rows[chosen], columns[chosen]] = True
    return mask & ~hidden, hidden


def with_holes(X, observed):
    """``X`` as float with NaN wherever ``observed`` is False."""
    holed = np.array(X, dtype=float)
    holed[~observed] = np.nan
    return holed


def rmse(completed, truth, entries):
    """Root mean squared error of ``completed`` against ``truth`` on ``entries``."""
    return float(np.sqrt(np.mean((completed[entries] - truth[entries]) ** 2)))


def _column_means(X):
    observed = ~np.isnan(X)
    counts = observed.sum(axis=0)
    sums = np.where(observed, X, 0.0).sum(axis=0)
    return np.divide(sums, counts, out=np.zeros(X.shape[1]), where=counts > 0)


def _shrunk_low_rank(Z, basis, shrinkage):
    """One block power step on ``Z`` from ``basis``: the shrunk low-rank matrix and the next basis.

    ``basis`` (columns of ``Z``'s row space) is refined by one step of subspace
    iteration per call; soft-impute changes ``Z`` little between calls, so the
    basis tracks the top singular vectors at the cost of two thin products, far
    less than an SVD of ``Z`` each time.
    """
    left, _ = np.linalg.qr(Z @ basis)
    small_left, singular, right = np.linalg.svd(left.T @ Z, full_matrices=False)
    shrunk = np.clip(singular - shrinkage, 0.0, None)
    return (left @ small_left) * shrunk @ right, right.T


def iterative_svd(X, rank, shrinkage=0.0, max_iter=100, tol=1e-3, random_state=0):
    """Fill the NaN of ``X`` with an iterative rank-capped soft-thresholded SVD.

    Columns are centred on their observed means and the holes start at zero (the
    means); then, until the filled values move by less than ``tol`` (relative), the
    holes take the values of the rank-``rank`` SVD of the filled matrix whose
    singular values are lowered by ``shrinkage`` times the largest singular value
    of the mean-filled matrix (soft-impute, Mazumder et al., 2010, with a rank cap;
    with ``shrinkage=0`` the hard-impute of Troyanskaya et al., 2001).

    Returns
    -------
    completed : ndarray
        ``X`` with its holes filled; observed entries unchanged.
    n_iter : int
    """
    from sklearn.utils.extmath import randomized_svd

    observed = ~np.isnan(X)
    means = _column_means(X)
    filled = np.where(observed, X - means, 0.0)
    _, singular, right = randomized_svd(filled, rank, random_state=random_state)
    # In units of the largest singular value, so one grid serves data of any scale.
    shrinkage = shrinkage * singular[0]
    basis = right.T
    n_iter = 0
    for n_iter in range(1, max_iter + 1):
        low_rank, basis = _shrunk_low_rank(filled, basis, shrinkage)
        change = np.sum((low_rank[~observed] - filled[~observed]) ** 2) / max(np.sum(filled[~observed] ** 2), 1e-12)
        filled[~observed] = low_rank[~observed]
        if change < tol**2:
            break
    return filled + means, n_iter


def select_on_validation(X, grid, fit_complete, validation_fraction, random_state):
    """The setting of ``grid`` with the least error on a validation part of X's observed entries.

    Nothing outside X's observed entries is looked at: a ``validation_fraction``
    of them is hidden, each setting is fitted on the rest, and the one with the
    smallest validation RMSE is refitted on all observed entries. The same
    ``random_state`` hides the same entries for every method, so their choices are
    made on equal terms.

    Parameters
    ----------
    X : ndarray
        Data with NaN where an entry is missing.
    grid : list
        Settings, each passed to ``fit_complete``.
    fit_complete : callable
        ``fit_complete(X_holes, setting)`` fits on ``X_holes`` and returns
        ``(completed, fitted)``: the completed matrix and whatever the caller wants
        back about the fit (the estimator, a rank).
    validation_fraction : float
    random_state : numpy.random.RandomState

    Returns
    -------
    completed : ndarray
        ``X`` completed with the chosen setting.
    chosen : object
        The chosen setting.
    validation : dict
        Setting -> ``(validation RMSE, fitted)`` of its fit on the kept entries.
    refitted : object
        ``fitted`` of the refit on all observed entries.
    """
    observed = ~np.isnan(X)
    kept, validation_entries = hide_entries(observed, validation_fraction, random_state)
    X_kept = with_holes(X, kept)
    validation = {}
    for setting in grid:
        completed, fitted = fit_complete(X_kept, setting)
        validation[setting] = (rmse(completed, X, validation_entries), fitted)
    chosen = min(validation, key=lambda setting: validation[setting][0])
    completed, refitted = fit_complete(X, chosen)
    return completed, chosen, validation, refitted


def select_iterative_svd(X, grid, validation_fraction, random_state, max_iter=100):
    """The (rank, shrinkage) of ``grid`` with the least validation error (:func:`select_on_validation`).

    Returns
    -------
    completed : ndarray
        ``X`` completed with the chosen setting.
    chosen : tuple
        ``(rank, shrinkage)``.
    validation : dict
        Validation RMSE of every setting.
    """
    completed, chosen, validation, _ = select_on_validation(
        X, grid, lambda X_holes, setting: (iterative_svd(X_holes, *setting, max_iter=max_iter)[0], None),
        validation_fraction, random_state)
    return completed, chosen, {setting: error for setting, (error, _) in validation.items()}


class IterativeSVD:
    """:func:`iterative_svd` behind the ``fit(X)`` / ``complete(X)`` face of the DAM estimators.

    So a wrapper written for an estimator that completes (the rating wrapper of
    recommendation.py) takes the baseline as it takes ``DAMAutoencoder``.
    Transductive: ``complete`` must be given the ``X`` that ``fit`` saw.
    """

    def __init__(self, rank, shrinkage=0.0, max_iter=100):
        self.rank = rank
        self.shrinkage = shrinkage
        self.max_iter = max_iter

    def fit(self, X):
        self.completed_, self.n_iter_ = iterative_svd(X, self.rank, self.shrinkage, max_iter=self.max_iter)
        self.n_components_ = self.rank
        return self

    def complete(self, X):
        observed = ~np.isnan(X)
        return np.where(observed, X, self.completed_)
