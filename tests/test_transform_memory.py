"""transform, inverse_transform and the scores work batch by batch, in bounded memory."""

import tracemalloc
import warnings

import numpy as np
import pytest
import scipy.sparse as sparse

from skdam import DAMEmbedding
from skdam._input import TRANSFORM_BATCH_ROWS
from skdam.datasets import make_linear_latent


@pytest.fixture(scope="module")
def wide_embedding():
    X = make_linear_latent(400, 4, 50, random_state=0)[0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # max_iter and all-gates-open: beside the point here
        return DAMEmbedding(max_components=4, max_iter=3, random_state=0).fit(X)


def _traced_peak(function, *args):
    tracemalloc.start()
    try:
        result = function(*args)
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("dtype", [np.float64, np.int64])
def test_transform_runs_in_batches_within_bounded_memory(wide_embedding, dtype):
    """The peak of NumPy's allocations stays near the output, far below the input.

    tracemalloc sees NumPy's buffers (the float32 copy of each batch and the output)
    but not torch's; the next test checks that torch only ever sees one batch. An
    integer X is converted batch by batch, never copied whole to float64.
    """
    n_rows = 12 * TRANSFORM_BATCH_ROWS
    X = np.random.RandomState(0).normal(scale=3, size=(n_rows, 50)).astype(dtype)
    embedding, peak = _traced_peak(wide_embedding.transform, X)
    assert embedding.shape == (n_rows, 4)
    float32_batch_bytes = TRANSFORM_BATCH_ROWS * 50 * 4
    # The output, plus the current and the previous batch (the generator holds one).
    assert peak < embedding.nbytes + 3 * float32_batch_bytes
    assert peak < X.nbytes / 4


def test_transform_and_score_give_torch_one_batch_at_a_time(wide_embedding, monkeypatch):
    seen_rows = []
    module_class = type(wide_embedding.module_)
    real_encode = module_class.encode

    def spying_encode(self, x):
        seen_rows.append(x.shape[0])
        return real_encode(self, x)

    monkeypatch.setattr(module_class, "encode", spying_encode)
    X = sparse.random(3 * TRANSFORM_BATCH_ROWS + 5, 50, density=0.1, format="csr", random_state=0)
    wide_embedding.transform(X)  # DAMEmbedding projects in NumPy, batch by batch for sparse X
    wide_embedding.score(X)  # and scores in NumPy too (probabilistic PCA)
    wide_embedding.r2_score(X)
    assert max(seen_rows) == TRANSFORM_BATCH_ROWS
    assert sum(seen_rows) == X.shape[0]


@pytest.mark.parametrize("method", ["score", "score_samples", "r2_score"])
def test_scoring_a_large_array_is_bounded_too(wide_embedding, method):
    n_rows = 12 * TRANSFORM_BATCH_ROWS
    X = np.random.RandomState(1).normal(size=(n_rows, 50))
    result, peak = _traced_peak(getattr(wide_embedding, method), X)
    assert np.isfinite(result).all()
    # score_samples returns one float64 a row; the rest is a few batches.
    assert peak < n_rows * 8 + 4 * TRANSFORM_BATCH_ROWS * 50 * 8
    assert peak < X.nbytes / 4
