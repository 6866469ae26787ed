"""Every kind of bad or unusual input gets finite output or a clear error.

``CASES`` is the table of ``docs/input-validation.md``: each case names the entry
point, the input, and the outcome, either finite output or an error type with a
fragment of its message. Each case runs on both estimators.
"""

import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sparse
import torch
from sklearn.exceptions import NotFittedError
from sklearn.utils._param_validation import InvalidParameterError

from skdam import DAMAutoencoder, DAMEmbedding
from skdam.datasets import make_linear_latent

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

ESTIMATORS = {
    "DAMEmbedding": lambda **params: DAMEmbedding(**{"max_iter": 10, "random_state": 0, **params}),
    "DAMAutoencoder": lambda **params: DAMAutoencoder(**{"hidden_layer_sizes": (4,), "max_iter": 10, "random_state": 0, **params}),
}
N_SAMPLES, N_FEATURES = 60, 6
DOCUMENT = Path(__file__).resolve().parents[1] / "docs" / "input-validation.md"


@dataclass(frozen=True)
class Works:
    """Finite output of the right shape; ``dtype`` and a warning when given."""

    dtype: type = None
    warns: tuple = None


@dataclass(frozen=True)
class Raises:
    error: type
    match: str


@dataclass(frozen=True)
class Case:
    id: str
    method: str
    #: Which estimator it runs on: "unfitted", "fitted" (on X), "fitted on frame"
    #: (on X as a DataFrame), "fitted on tiny" (on X * 1e-30).
    on: str
    input: str
    make: object  # (X, fitted estimator) -> the argument
    outcome: object
    params: dict = field(default_factory=dict)
    #: The estimators the case applies to, when its outcome differs between them.
    estimators: tuple = ("DAMEmbedding", "DAMAutoencoder")


def _with_value(X, value):
    X = X.copy()
    X[3, 2] = value
    return X


def _frame(X):
    pd = pytest.importorskip("pandas")
    return pd.DataFrame(X, columns=[f"x{i}" for i in range(X.shape[1])])


LETTERS = np.array([["a", "b"], ["c", "d"], ["e", "f"]])
NOT_FITTED = Raises(NotFittedError, "is not fitted yet. Call 'fit'")
INFINITY = Raises(ValueError, "Input X contains infinity")
WRONG_WIDTH = Raises(ValueError, r"X has 4 features, but DAM\w+ is expecting 6 features as input")

CASES = [
    # ------------------------------------------------------------------ fit
    Case("fit-nan", "fit", "unfitted", "a NaN (a missing value)", lambda X, _: _with_value(X, np.nan), Works()),
    Case("fit-empty-row", "fit", "unfitted", "a row of NaN", lambda X, _: np.vstack([X, np.full((1, N_FEATURES), np.nan)]), Raises(ValueError, r"row\(s\) 60 of X are all NaN")),
    Case("fit-infinity", "fit", "unfitted", "an infinity", lambda X, _: _with_value(X, np.inf), Raises(ValueError, "Input X contains infinity")),
    Case("fit-empty", "fit", "unfitted", "shape (0, 6)", lambda X, _: X[:0], Raises(ValueError, r"Found array with 0 sample\(s\)")),
    Case("fit-no-features", "fit", "unfitted", "shape (60, 0)", lambda X, _: X[:, :0], Raises(ValueError, r"Found array with 0 feature\(s\)")),
    Case("fit-single-sample", "fit", "unfitted", "one row", lambda X, _: X[:1], Raises(ValueError, r"1 sample\(s\) \(shape=\(1, 6\)\) while a minimum of 2 is required")),
    Case("fit-two-samples", "fit", "unfitted", "two rows", lambda X, _: X[:2], Works()),
    Case("fit-single-feature", "fit", "unfitted", "one column", lambda X, _: X[:, :1], Works()),
    Case("fit-constant-column", "fit", "unfitted", "one column constant (zero variance)", lambda X, _: np.column_stack([X[:, :5], np.full(len(X), 7.0)]), Works()),
    Case("fit-all-constant", "fit", "unfitted", "every column constant", lambda X, _: np.full_like(X, 7.0), Works()),
    Case("fit-all-zero", "fit", "unfitted", "all zeros", lambda X, _: np.zeros_like(X), Works()),
    Case("fit-strings", "fit", "unfitted", "an array of non-numeric strings", lambda X, _: LETTERS, Raises(ValueError, "could not convert string to float")),
    Case("fit-numeric-strings", "fit", "unfitted", "strings of numbers (converted, as scikit-learn does)", lambda X, _: X.astype(str), Works()),
    Case("fit-object-numbers", "fit", "unfitted", "an object array of numbers", lambda X, _: X.astype(object), Works()),
    Case("fit-object-mixed", "fit", "unfitted", "an object array holding a string", lambda X, _: np.array([[1.0, "a"], [2.0, "b"], [3.0, "c"]], dtype=object), Raises(ValueError, "could not convert string to float")),
    Case("fit-complex", "fit", "unfitted", "complex numbers", lambda X, _: X + 1j, Raises(ValueError, "Complex data not supported")),
    Case("fit-1d", "fit", "unfitted", "a 1-D array", lambda X, _: X[:, 0], Raises(ValueError, "Expected 2D array, got 1D array instead")),
    Case("fit-3d", "fit", "unfitted", "a 3-D array", lambda X, _: X.reshape(N_SAMPLES, 2, 3), Raises(ValueError, "Found array with dim 3")),
    Case("fit-integers", "fit", "unfitted", "int64", lambda X, _: np.round(X * 10).astype(np.int64), Works(dtype=np.float64)),
    Case("fit-booleans", "fit", "unfitted", "bool", lambda X, _: X > 0, Works(dtype=np.float64)),
    Case("fit-float16", "fit", "unfitted", "float16 (computed as float64)", lambda X, _: X.astype(np.float16), Works(dtype=np.float64)),
    Case("fit-float32", "fit", "unfitted", "float32 (kept: transform returns float32)", lambda X, _: X.astype(np.float32), Works(dtype=np.float32)),
    Case("fit-magnitude-1e30", "fit", "unfitted", "X * 1e30", lambda X, _: X * 1e30, Works()),
    Case("fit-magnitude-1e-30", "fit", "unfitted", "X * 1e-30", lambda X, _: X * 1e-30, Works()),
    Case("fit-too-large", "fit", "unfitted", "values beyond 1e36 (X * 1e37)", lambda X, _: X * 1e37, Raises(ValueError, r"beyond the 1e\+36 that the float32 network.*Rescale X")),
    Case("fit-too-small-spread", "fit", "unfitted", "spread below 1e-33 (X * 1e-40)", lambda X, _: X * 1e-40, Raises(ValueError, r"X varies by only .* below the 1e-33.*Rescale X")),
    Case("fit-subnormal", "fit", "unfitted", "subnormal values (X * 1e-310)", lambda X, _: X * 1e-310, Raises(ValueError, r"X varies by only .* below the 1e-33")),
    Case("fit-large-offset", "fit", "unfitted", "mean over 1e6 times the spread (X + 1e9)", lambda X, _: X + 1e9, Works(warns=(UserWarning, "cannot resolve the data around its mean. Centre X"))),
    Case("fit-sparse", "fit", "unfitted", "a scipy.sparse matrix", lambda X, _: sparse.csr_matrix(X), Raises(TypeError, r"does not fit on sparse input.*X\.toarray\(\).*TruncatedSVD")),
    Case("fit-dataframe", "fit", "unfitted", "a pandas DataFrame (names kept in feature_names_in_)", lambda X, _: _frame(X), Works()),
    Case("fit-list", "fit", "unfitted", "a list of lists", lambda X, _: X.tolist(), Works()),
    Case("fit-too-many-components", "fit", "unfitted", "n_components=7 with 6 features", lambda X, _: X, Raises(ValueError, r"n_components=7 is larger than max_components=6"), params={"n_components": 7}),
    Case("fit-too-many-min-components", "fit", "unfitted", "min_components=7 with 6 features", lambda X, _: X, Raises(ValueError, r"min_components=7 is larger than max_components=6"), params={"min_components": 7}),
    Case("fit-early-stopping-few-rows", "fit", "unfitted", "early_stopping on 5 rows (4 train the bottleneck)", lambda X, _: X[:5], Works(), params={"early_stopping": True, "validation_fraction": 0.2}),
    Case("fit-no-training-rows", "fit", "unfitted", "early_stopping with validation_fraction=0.9 on 2 rows", lambda X, _: X[:2], Raises(ValueError, "validation_fraction=0.9 leaves no rows for training"), params={"early_stopping": True, "validation_fraction": 0.9}),
    # ------------------------------------------------------------ transform
    Case("transform-not-fitted", "transform", "unfitted", "before fit", lambda X, _: X, NOT_FITTED),
    Case("transform-wrong-width", "transform", "fitted", "4 columns, fitted on 6", lambda X, _: X[:, :4], WRONG_WIDTH),
    Case("transform-renamed-columns", "transform", "fitted on frame", "a DataFrame with a column renamed", lambda X, _: _frame(X).rename(columns={"x0": "renamed"}), Raises(ValueError, r"Feature names unseen at fit time:\n- renamed")),
    Case("transform-reordered-columns", "transform", "fitted on frame", "a DataFrame with its columns reordered", lambda X, _: _frame(X).iloc[:, ::-1], Raises(ValueError, "Feature names must be in the same order as they were in fit")),
    Case("transform-frame-on-array-fit", "transform", "fitted", "a DataFrame, fitted on an array", lambda X, _: _frame(X), Works(warns=(UserWarning, "X has feature names, but DAM\\w+ was fitted without feature names"))),
    Case("transform-nan", "transform", "fitted", "a NaN (a missing value)", lambda X, _: _with_value(X, np.nan), Works()),
    Case("transform-empty-row", "transform", "fitted", "a row of NaN (the mean row's code)", lambda X, _: np.full((2, N_FEATURES), np.nan), Works()),
    Case("transform-infinity", "transform", "fitted", "an infinity", lambda X, _: _with_value(X, -np.inf), Raises(ValueError, "Input X contains infinity")),
    Case("transform-empty", "transform", "fitted", "shape (0, 6)", lambda X, _: X[:0], Raises(ValueError, r"Found array with 0 sample\(s\)")),
    Case("transform-single-sample", "transform", "fitted", "one row", lambda X, _: X[:1], Works()),
    Case("transform-1d", "transform", "fitted", "a 1-D array", lambda X, _: X[0], Raises(ValueError, "Expected 2D array, got 1D array instead")),
    Case("transform-3d", "transform", "fitted", "a 3-D array", lambda X, _: X.reshape(N_SAMPLES, 2, 3), Raises(ValueError, "Found array with dim 3")),
    Case("transform-strings", "transform", "fitted", "non-numeric strings", lambda X, _: np.full(X.shape, "a"), Raises(ValueError, "could not convert string to float")),
    Case("transform-complex", "transform", "fitted", "complex numbers", lambda X, _: X + 1j, Raises(ValueError, "Complex data not supported")),
    Case("transform-integers", "transform", "fitted", "int64 (converted batch by batch)", lambda X, _: np.round(X * 10).astype(np.int64), Works(dtype=np.float64)),
    Case("transform-booleans", "transform", "fitted", "bool", lambda X, _: X > 0, Works(dtype=np.float64)),
    Case("transform-float16", "transform", "fitted", "float16", lambda X, _: X.astype(np.float16), Works(dtype=np.float64)),
    Case("transform-float32", "transform", "fitted", "float32 (kept)", lambda X, _: X.astype(np.float32), Works(dtype=np.float32)),
    Case("transform-sparse", "transform", "fitted", "a scipy.sparse matrix (densified batch by batch)", lambda X, _: sparse.csr_matrix(X), Works(dtype=np.float64)),
    Case("transform-too-large", "transform", "fitted", "values beyond 1e36", lambda X, _: X * 1e37, Raises(ValueError, r"beyond the 1e\+36")),
    Case("transform-float32-overflow", "transform", "fitted on tiny", "1e35 on a model fitted on X * 1e-30 (DAMAutoencoder: its float32 network overflows)", lambda X, _: X * 1e35, Raises(ValueError, "overflowed float32 and produced non-finite values"), estimators=("DAMAutoencoder",)),
    Case("transform-beyond-training-range-linear", "transform", "fitted on tiny", "1e35 on a model fitted on X * 1e-30 (DAMEmbedding: a projection in X's dtype)", lambda X, _: X * 1e35, Works(dtype=np.float64), estimators=("DAMEmbedding",)),
    # ---------------------------------------------------- inverse_transform
    Case("inverse_transform-not-fitted", "inverse_transform", "unfitted", "before fit", lambda X, _: X, NOT_FITTED),
    Case("inverse_transform-wrong-width", "inverse_transform", "fitted", "one column more than n_components_", lambda X, fitted: np.ones((5, fitted.n_components_ + 1)), Raises(ValueError, r"is expecting \d+ features \(its n_components_\) as input to inverse_transform")),
    Case("inverse_transform-1d", "inverse_transform", "fitted", "a 1-D array", lambda X, fitted: np.ones(fitted.n_components_), Raises(ValueError, "Expected 2D array, got 1D array instead")),
    Case("inverse_transform-inf", "inverse_transform", "fitted", "an inf", lambda X, fitted: np.full((3, fitted.n_components_), np.inf), INFINITY),
    Case("inverse_transform-integers", "inverse_transform", "fitted", "int64", lambda X, fitted: np.ones((3, fitted.n_components_), dtype=np.int64), Works(dtype=np.float64)),
    Case("inverse_transform-float32", "inverse_transform", "fitted", "float32 (kept)", lambda X, fitted: fitted.transform(X.astype(np.float32)), Works(dtype=np.float32)),
    Case("inverse_transform-sparse", "inverse_transform", "fitted", "a scipy.sparse matrix", lambda X, fitted: sparse.csr_matrix(fitted.transform(X)), Works(dtype=np.float64)),
    Case("inverse_transform-large", "inverse_transform", "fitted", "codes of 1e37 (transform's codes can exceed the largest input)", lambda X, fitted: np.full((3, fitted.n_components_), 1e37), Works()),
    Case("inverse_transform-float32-overflow", "inverse_transform", "fitted", "codes beyond float32 (1e39)", lambda X, fitted: np.full((3, fitted.n_components_), 1e39), Raises(ValueError, "overflowed float32 and produced non-finite values")),
    # ------------------------------------------------- score, score_samples
    Case("score-not-fitted", "score", "unfitted", "before fit", lambda X, _: X, NOT_FITTED),
    Case("score-wrong-width", "score", "fitted", "4 columns, fitted on 6", lambda X, _: X[:, :4], WRONG_WIDTH),
    Case("score-nan", "score", "fitted", "a NaN (the marginal of the observed entries)", lambda X, _: _with_value(X, np.nan), Works()),
    Case("score-inf", "score", "fitted", "an inf", lambda X, _: _with_value(X, np.inf), INFINITY),
    Case("score-single-sample", "score", "fitted", "one row (a log-likelihood, as PCA's)", lambda X, _: X[:1], Works()),
    Case("score-constant", "score", "fitted", "constant rows", lambda X, _: np.ones((4, N_FEATURES)), Works()),
    Case("r2_score-single-sample", "r2_score", "fitted", "one row (R^2 needs two)", lambda X, _: X[:1], Raises(ValueError, r"1 sample\(s\) \(shape=\(1, 6\)\) while a minimum of 2 is required")),
    Case("r2_score-constant", "r2_score", "fitted", "constant rows (0 or 1, as sklearn's r2_score)", lambda X, _: np.ones((4, N_FEATURES)), Works()),
    Case("score-sparse", "score", "fitted", "a scipy.sparse matrix", lambda X, _: sparse.csr_matrix(X), Works()),
    Case("score-integers", "score", "fitted", "int64", lambda X, _: np.round(X * 10).astype(np.int64), Works()),
    Case("score_samples-not-fitted", "score_samples", "unfitted", "before fit", lambda X, _: X, NOT_FITTED),
    Case("score_samples-wrong-width", "score_samples", "fitted", "4 columns, fitted on 6", lambda X, _: X[:, :4], WRONG_WIDTH),
    Case("score_samples-nan", "score_samples", "fitted", "a NaN (the marginal of the observed entries)", lambda X, _: _with_value(X, np.nan), Works()),
    Case("score_samples-inf", "score_samples", "fitted", "an inf", lambda X, _: _with_value(X, np.inf), INFINITY),
    Case("complete-nan", "complete", "fitted", "a NaN (filled by the model)", lambda X, _: _with_value(X, np.nan), Works(dtype=np.float64)),
    Case("complete-inf", "complete", "fitted", "an inf", lambda X, _: _with_value(X, np.inf), INFINITY),
    Case("score_samples-single-sample", "score_samples", "fitted", "one row", lambda X, _: X[:1], Works()),
    Case("score_samples-sparse", "score_samples", "fitted", "a scipy.sparse matrix", lambda X, _: sparse.csr_matrix(X), Works()),
]


@pytest.fixture(scope="module")
def X():
    """Rank 3 in 6 features, with a little noise."""
    return make_linear_latent(N_SAMPLES, 3, N_FEATURES, noise=0.01, random_state=0)[0]


@pytest.fixture(scope="module")
def fitted(X):
    """Both estimators fitted on X, on X as a DataFrame, and on X * 1e-30."""
    inputs = {"fitted": X, "fitted on frame": _frame(X), "fitted on tiny": X * 1e-30}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # short training: beside the point here
        return {(name, on): make().fit(data) for name, make in ESTIMATORS.items() for on, data in inputs.items()}


def _check_output(method, output, argument, estimator, outcome):
    if method == "fit":
        assert output is estimator
        output = estimator.transform(argument)
        method = "transform"
        reconstruction = estimator.inverse_transform(output)
        assert np.isfinite(reconstruction).all()
        assert reconstruction.shape == (output.shape[0], estimator.n_features_in_)
    n_rows = len(argument) if not sparse.issparse(argument) else argument.shape[0]
    if method == "transform":
        assert output.shape == (n_rows, estimator.n_components_)
    elif method == "inverse_transform":
        assert output.shape == (n_rows, estimator.n_features_in_)
    elif method == "score_samples":
        assert output.shape == (n_rows,)
    elif method in ("score", "r2_score"):
        assert isinstance(output, float)
    assert np.isfinite(output).all()
    if outcome.dtype is not None:
        assert output.dtype == outcome.dtype


@pytest.mark.parametrize("name", ESTIMATORS)
@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_input_case(case, name, X, fitted):
    if name not in case.estimators:
        pytest.skip(f"{case.id} is about {', '.join(case.estimators)}")
    estimator = ESTIMATORS[name](**case.params) if case.on == "unfitted" else fitted[name, case.on]
    argument = case.make(X, estimator)
    call = getattr(estimator, case.method)
    outcome = case.outcome
    if isinstance(outcome, Raises):
        with pytest.raises(outcome.error, match=outcome.match):
            call(argument)
    elif outcome.warns is not None:
        with pytest.warns(outcome.warns[0], match=outcome.warns[1]):
            output = call(argument)
        _check_output(case.method, output, argument, estimator, outcome)
    else:
        _check_output(case.method, call(argument), argument, estimator, outcome)


@pytest.mark.parametrize("name", ESTIMATORS)
@pytest.mark.parametrize("method", ["transform", "score_samples"])
def test_sparse_input_gives_the_dense_result(name, method, X, fitted):
    estimator = fitted[name, "fitted"]
    dense = getattr(estimator, method)(X)
    for matrix_format in ("csr", "csc", "coo"):
        np.testing.assert_allclose(getattr(estimator, method)(sparse.csr_matrix(X).asformat(matrix_format)), dense, rtol=1e-6)
    assert estimator.score(sparse.csr_matrix(X)) == pytest.approx(estimator.score(X), rel=1e-9)


@pytest.mark.parametrize("name", ESTIMATORS)
@pytest.mark.parametrize("factor", [1e30, 1e-30])
def test_extreme_magnitudes_give_the_same_model(name, factor, X, fitted):
    """The normalisation makes X * 1e30 and X * 1e-30 the same problem as X.

    DAMEmbedding's embedding is a projection in the units of X, so it scales with
    X; DAMAutoencoder's code is in normalised units, so it does not change.
    """
    scaled = ESTIMATORS[name]().fit(X * factor)
    reference = fitted[name, "fitted"]
    assert scaled.n_components_ == reference.n_components_
    unit = factor if name == "DAMEmbedding" else 1.0
    # The linear model's axes are exact; the perceptron's training starts from
    # float32 inputs that round differently at each scale, and ten Adam steps
    # carry that a little further.
    atol = 1e-3 if name == "DAMEmbedding" else 2e-2
    np.testing.assert_allclose(scaled.transform(X * factor) / unit, reference.transform(X), rtol=1e-3, atol=atol)
    assert scaled.r2_score(X * factor) == pytest.approx(reference.r2_score(X), abs=1e-4)


INVALID_PARAMETERS = [
    ("n_components", 0),
    ("n_components", "many"),
    ("alpha", -0.1),
    ("max_components", 0),
    ("min_components", 0),
    ("max_iter", 0),
    ("batch_size", 0),
    ("batch_size", "big"),
    ("learning_rate_init", 0.0),
    ("tol", -1.0),
    ("n_iter_no_change", 0),
    ("early_stopping", "yes"),
    ("validation_fraction", 1.0),
    ("random_state", "seed"),
    ("verbose", -1),
    ("device", "tpu"),
    ("mixed_precision", "bf16"),
]


@pytest.mark.parametrize("name", ESTIMATORS)
@pytest.mark.parametrize("parameter, value", INVALID_PARAMETERS)
def test_invalid_parameter_is_refused(name, parameter, value, X):
    estimator = ESTIMATORS[name](**{parameter: value})
    with pytest.raises(InvalidParameterError, match=f"The '{parameter}' parameter of {name} must be"):
        estimator.fit(X)
    assert not hasattr(estimator, "n_features_in_")


@pytest.mark.parametrize(
    "parameter, value, error, match",
    [
        ("hidden_layer_sizes", 0, InvalidParameterError, "The 'hidden_layer_sizes' parameter of DAMAutoencoder must be"),
        ("hidden_layer_sizes", (8, -1), ValueError, r"hidden_layer_sizes must hold positive integers, got \(8, -1\)"),
        ("activation", "gelu", InvalidParameterError, "The 'activation' parameter of DAMAutoencoder must be"),
    ],
)
def test_invalid_autoencoder_parameter_is_refused(parameter, value, error, match, X):
    with pytest.raises(error, match=match):
        DAMAutoencoder(**{parameter: value}).fit(X)


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
@pytest.mark.parametrize("device", ["cuda", torch.device("cuda")])
def test_cuda_without_cuda_is_a_clear_error(device, X):
    with pytest.raises(ValueError, match="CUDA is not available; use device='cpu' or 'auto'"):
        DAMEmbedding(device=device).fit(X)


def test_every_case_is_in_the_document():
    text = DOCUMENT.read_text()
    documented = set(re.findall(r"^\| `([\w-]+)` \|", text, flags=re.MULTILINE))
    assert documented == {case.id for case in CASES}
