"""Coordinates that unroll curved data, for the unit search to start a code from.

The estimators' layer: the unit search (:mod:`skdam._unit_search`, no scikit-learn)
receives :func:`isomap_coordinates` as a plain function.
"""

import warnings

import numpy as np
from scipy.sparse import SparseEfficiencyWarning
from sklearn.manifold import Isomap

#: Neighbours of each row in the graph whose shortest paths Isomap unrolls.
GRAPH_NEIGHBORS = 10


def isomap_coordinates(rows, n_components):
    """Isomap's embedding of ``rows`` on ``n_components`` coordinates, or None.

    A neighbourhood graph's shortest paths approximate distances along the data, and
    their best linear embedding unrolls a sheet that a network's code may tear (the
    Swiss roll's, ``benchmarks/tear_free_start.py``).

    Parameters
    ----------
    rows : ndarray of shape (n_samples, n_features)
        Complete rows, no NaN.
    n_components : int
        Coordinates wanted.

    Returns
    -------
    ndarray of shape (n_samples, n_components) or None
        None where the rows are too few for the graph or the coordinates.
    """
    rows = np.asarray(rows, dtype=np.float64)
    if rows.shape[0] <= max(GRAPH_NEIGHBORS, n_components) + 1:
        return None
    with warnings.catch_warnings():
        # A graph in pieces is joined by Isomap itself; its warnings say nothing to the user.
        warnings.simplefilter("ignore", UserWarning)
        warnings.simplefilter("ignore", SparseEfficiencyWarning)
        embedding = Isomap(n_neighbors=GRAPH_NEIGHBORS, n_components=n_components, eigen_solver="dense")
        return embedding.fit_transform(rows)
