"""The coordinates a retried closure's code starts from: Isomap's, behind a plain function."""

import warnings

import numpy as np
from scipy.stats import spearmanr
from sklearn.datasets import make_swiss_roll

from skdam._graph_embedding import GRAPH_NEIGHBORS, isomap_coordinates


def test_isomap_coordinates_unroll_a_swiss_roll():
    X, angle = make_swiss_roll(800, random_state=0)
    coordinates = isomap_coordinates(X, 2)
    assert coordinates.shape == (800, 2)
    # Along the roll, where the best linear coordinate folds the sheet over itself.
    assert abs(spearmanr(coordinates[:, 0], angle)[0]) > 0.95
    first_axis = (X - X.mean(0)) @ np.linalg.svd(X - X.mean(0), full_matrices=False)[2][0]
    assert abs(spearmanr(first_axis, angle)[0]) < 0.8
    np.testing.assert_array_equal(coordinates, isomap_coordinates(X, 2))  # no hidden randomness


def test_isomap_coordinates_need_more_rows_than_neighbours_and_coordinates():
    X = np.random.RandomState(0).normal(size=(GRAPH_NEIGHBORS + 1, 3))
    assert isomap_coordinates(X, 1) is None
    assert isomap_coordinates(np.vstack([X, X + 0.1]), 1).shape == (2 * X.shape[0], 1)


def test_isomap_coordinates_join_a_graph_in_pieces_without_a_word():
    rng = np.random.RandomState(0)
    X = np.vstack([rng.normal(size=(100, 3)), rng.normal(size=(100, 3)) + 100.0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert np.isfinite(isomap_coordinates(X, 1)).all()
