"""Input checks and batching shared by the estimators' methods.

NumPy and SciPy only: what the float32 network can take, and X in bounded slices.
"""

import warnings

import numpy as np
import scipy.sparse as sparse

#: Rows per batch in transform and inverse_transform; bounds their memory.
TRANSFORM_BATCH_ROWS = 8192
#: The network computes in float32 (largest value 3.4e38). Inputs up to this
#: magnitude leave room for centring and reconstruction; larger ones are refused.
LARGEST_INPUT_MAGNITUDE = 1e36
#: Smallest spread (root mean feature variance) fit accepts. The decoder divides by
#: the spread, and embeddings, in the units of X, must stay well above float32's
#: smallest normal number (1.2e-38) to keep their precision.
SMALLEST_INPUT_SPREAD = 1e-33
#: float32 resolves about 6e-8 of a value: past this ratio of mean to spread, the
#: detail of the data around its mean is lost in the network's arithmetic.
LARGEST_MEAN_TO_SPREAD = 1e6
#: Dtypes transform reads as they are and converts batch by batch, so that an
#: integer or boolean X is never copied whole to float64.
BATCH_CONVERTED_DTYPES = [
    np.float64, np.float32, np.float16, np.bool_,
    np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32, np.uint64,
]  # fmt: skip


def check_float32_range(X, estimator_name):
    """Refuse values too large for the float32 network, which would overflow to inf."""
    if X.dtype.kind != "f" or X.size == 0:
        return  # integers and booleans are far inside float32's range
    # max and min make no temporary copy of X, as np.abs would.
    largest, smallest = float(X.max()), float(X.min())
    if np.isnan(largest):  # missing values: fmax and fmin skip NaN
        largest, smallest = float(np.fmax.reduce(X, axis=None)), float(np.fmin.reduce(X, axis=None))
        if np.isnan(largest):
            return  # nothing observed
    largest = max(abs(largest), abs(smallest))
    if largest > LARGEST_INPUT_MAGNITUDE:
        raise ValueError(
            f"X has values of magnitude up to {largest:.3g}, beyond the {LARGEST_INPUT_MAGNITUDE:.0e} "
            f"that the float32 network of {estimator_name} handles. Rescale X, for example with "
            "sklearn.preprocessing.StandardScaler."
        )


#: Rows named in the error about rows with nothing observed.
NAMED_EMPTY_ROWS = 10


def check_observed(X, estimator_name, every_feature=True):
    """Whether float ``X`` holds NaN; refuse rows (and features) with nothing observed.

    A row with no observed entry has nothing to learn from; a feature with none has
    no mean. ``every_feature=False`` (a chunk of ``partial_fit`` after the first)
    lets a feature be missing throughout.
    """
    # A float64 sum is NaN exactly when an entry is (inf is refused before): complete
    # data, the common case, costs one pass and no mask the size of X.
    if not np.isnan(X.sum(dtype=np.float64)):
        return False
    missing = np.isnan(X)
    empty_rows = np.flatnonzero(missing.all(axis=1))
    if empty_rows.size:
        named = ", ".join(str(row) for row in empty_rows[:NAMED_EMPTY_ROWS])
        more = f" and {empty_rows.size - NAMED_EMPTY_ROWS} more" if empty_rows.size > NAMED_EMPTY_ROWS else ""
        raise ValueError(
            f"{estimator_name} cannot fit rows with no observed value: row(s) {named}{more} of X "
            "are all NaN. Drop them first, for example X[~np.isnan(X).all(axis=1)]."
        )
    empty_features = np.flatnonzero(missing.all(axis=0)) if every_feature else np.array([], dtype=int)
    if empty_features.size:
        named = ", ".join(str(feature) for feature in empty_features[:NAMED_EMPTY_ROWS])
        raise ValueError(
            f"{estimator_name} cannot fit features with no observed value: column(s) {named} of X "
            "are all NaN. Drop them first."
        )
    return True


def dense_batches(X):
    """Slices of ``TRANSFORM_BATCH_ROWS`` rows of ``X``, sparse ones densified."""
    for start in range(0, X.shape[0], TRANSFORM_BATCH_ROWS):
        rows = slice(start, start + TRANSFORM_BATCH_ROWS)
        batch = X[rows]
        yield rows, batch.toarray() if sparse.issparse(batch) else batch


def check_spread(mean, spread, estimator_name):
    """Refuse data too narrow for float32; warn when its mean dwarfs its spread."""
    if 0 < spread < SMALLEST_INPUT_SPREAD:
        raise ValueError(
            f"X varies by only {spread:.3g} (root mean feature variance), below the "
            f"{SMALLEST_INPUT_SPREAD:.0e} that the float32 network of {estimator_name} "
            "resolves. Rescale X, for example with sklearn.preprocessing.StandardScaler."
        )
    largest_mean = float(np.max(np.abs(mean)))
    if spread > 0 and largest_mean > LARGEST_MEAN_TO_SPREAD * spread:
        warnings.warn(
            f"X's mean is up to {largest_mean / spread:.3g} times its spread: the float32 "
            f"network of {estimator_name} cannot resolve the data around its mean. "
            "Centre X first, for example with sklearn.preprocessing.StandardScaler.",
            UserWarning,
        )
