"""Properties that hold for any input: random shapes, dtypes and scales.

Training is kept tiny (a few epochs, a hidden layer of 3) so that each example
costs milliseconds. The "ci" profile, the default, runs a bounded, derandomised
set of examples; set ``HYPOTHESIS_PROFILE=dev`` to search further.
"""

import os
import re
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from skdam import DAMAutoencoder, DAMEmbedding

settings.register_profile(
    "ci",
    max_examples=100,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("dev", max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

#: The errors fit may raise on data that is valid but outside float32's range.
OUT_OF_RANGE = re.compile(r"beyond the 1e\+36|X varies by only")


def _estimator(kind, early_stopping, random_state):
    common = {"max_iter": 3, "early_stopping": early_stopping, "random_state": random_state}
    if kind == "embedding":
        return DAMEmbedding(**common)
    return DAMAutoencoder(hidden_layer_sizes=(3,), **common)


@st.composite
def datasets(draw):
    """Low-rank data of any shape, dtype and scale, sometimes with constant columns."""
    n_samples = draw(st.integers(2, 40))
    n_features = draw(st.integers(1, 8))
    rank = draw(st.integers(1, n_features))
    dtype = draw(st.sampled_from(["float64", "float32", "float16", "int64", "uint8", "bool"]))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    X = rng.normal(size=(n_samples, rank)) @ rng.normal(size=(rank, n_features))
    X += draw(st.sampled_from([0.0, 1.0, 100.0])) * rng.normal(size=n_features)  # an offset
    if dtype in ("float64", "float32"):
        X *= 10.0 ** draw(st.integers(-30, 30))
    elif dtype == "float16":
        X *= 10.0 ** draw(st.integers(-2, 2))
    elif dtype in ("int64", "uint8"):
        X = np.clip(np.round(X * 10), 0 if dtype == "uint8" else -1000, 255 if dtype == "uint8" else 1000)
    else:
        X = X > 0
    if draw(st.booleans()):
        X[:, draw(st.integers(0, n_features - 1))] = X[0, 0]
    return X.astype(dtype)


def _check_fitted_properties(estimator, X):
    n_samples, n_features = X.shape
    embedding = estimator.transform(X)
    assert embedding.shape == (n_samples, estimator.n_components_)
    assert 1 <= estimator.n_components_ <= min(n_samples, n_features)
    assert np.isfinite(embedding).all()
    expected_dtype = X.dtype if X.dtype in (np.float32, np.float64) else np.float64
    assert embedding.dtype == expected_dtype
    reconstruction = estimator.inverse_transform(embedding)
    assert reconstruction.shape == X.shape
    assert np.isfinite(reconstruction).all()
    assert np.isfinite(estimator.score_samples(X)).all()
    assert np.isfinite(estimator.score(X))
    # Each row's embedding does not depend on the other rows.
    np.testing.assert_allclose(estimator.transform(X[-1:]), embedding[-1:], rtol=1e-4, atol=1e-6 * np.abs(embedding).max())
    for tensor in estimator.module_.state_dict().values():
        assert tensor.isfinite().all()


@given(
    X=datasets(),
    kind=st.sampled_from(["embedding", "autoencoder"]),
    early_stopping=st.booleans(),
    random_state=st.integers(0, 1000),
)
# Found by this test: one training row has no spread, and no principal axes to train through.
@example(X=np.array([[0.0805, 0.0132, -0.0673], [-0.0846, -0.0139, 0.0708]]), kind="autoencoder", early_stopping=True, random_state=0)
def test_any_valid_data_gives_consistent_finite_output(X, kind, early_stopping, random_state):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # short training and big offsets warn; beside the point
        estimator = _estimator(kind, early_stopping, random_state).fit(X)
    _check_fitted_properties(estimator, X)


@given(
    X=hnp.arrays(
        np.float64,
        st.tuples(st.integers(2, 12), st.integers(1, 5)),
        elements=st.floats(allow_nan=False, allow_infinity=False),
    ),
    kind=st.sampled_from(["embedding", "autoencoder"]),
)
# Found by this test: a spread that rounds to zero made the SVD fail.
@example(X=np.array([[5e-324, 0.0], [0.0, 0.0]]), kind="embedding")
# Found by this test: transform's codes exceeded inverse_transform's limit.
@example(X=np.array([[8.83883523e35, 8.83883286e35]] + [[0.0, 0.0]] * 4), kind="embedding")
def test_any_finite_float_array_fits_or_says_it_is_out_of_range(X, kind):
    """Whatever the values, fit gives a consistent finite model or a clear error."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            estimator = _estimator(kind, early_stopping=False, random_state=0).fit(X)
        except ValueError as error:
            assert OUT_OF_RANGE.search(str(error)), str(error)
            event(f"refused: {OUT_OF_RANGE.search(str(error)).group()}")
            return
    event("fitted")
    _check_fitted_properties(estimator, X)


@pytest.fixture(scope="module")
def fitted_pair():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(50, 3)) @ rng.normal(size=(3, 5))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return [_estimator(kind, False, 0).fit(X) for kind in ("embedding", "autoencoder")]


@given(
    X=hnp.arrays(
        st.sampled_from([np.float64, np.float32]),
        st.tuples(st.integers(1, 30), st.just(5)),
        elements=st.floats(-1e6, 1e6, width=32),
    )
)
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
def test_transform_of_new_data_is_finite_and_round_trips_in_shape(fitted_pair, X):
    for estimator in fitted_pair:
        embedding = estimator.transform(X)
        assert embedding.shape == (X.shape[0], estimator.n_components_)
        assert embedding.dtype == X.dtype
        assert np.isfinite(embedding).all()
        assert estimator.inverse_transform(embedding).shape == X.shape
