"""Files for the ``skdam`` command line: CSV, NPY and Parquet tables, and model files.

Every problem with the user's files raises :class:`InputError`, whose message the
command line prints as one line.
"""

import csv
import warnings
from pathlib import Path

import numpy as np

TABLE_SUFFIXES = {".csv": "CSV", ".npy": "NPY", ".parquet": "Parquet", ".pq": "Parquet"}
#: How to write a missing value, which the estimators take as NaN.
FILL_MISSING_VALUES = "write NaN for a missing value, which skdam reads as one (docs: missing values)."


class InputError(Exception):
    """A problem with the user's files or values: one line on stderr, exit status 2."""


# ---------------------------------------------------------------- model files
# The suffix names the format, on save and on load alike, so that a file cannot hold
# another format than its name says.

MODEL_SUFFIXES = {".skops": "skops", ".joblib": "joblib", ".pkl": "joblib", ".pickle": "joblib"}


def model_format(path):
    """``"skops"`` or ``"joblib"``: the model file format that ``path``'s suffix names.

    Checked before training, so that a model that cannot be saved costs no fit.
    """
    file_format = MODEL_SUFFIXES.get(Path(path).suffix.lower())
    if file_format is None:
        raise InputError(
            f"{path}: unsupported model file type {Path(path).suffix!r}; use .skops, .joblib or .pkl "
            "(.skops for skops.io, the others for joblib)."
        )
    if file_format == "skops":
        _import_skops()
    return file_format


def _import_skops():
    try:
        import skops.io
    except ImportError as error:
        raise InputError("a .skops model file needs skops: pip install 'skdam[persistence]'.") from error
    return skops.io


def save_model(estimator, path):
    """Write a fitted estimator to ``path`` with skops.io or joblib, as its suffix says."""
    try:
        if model_format(path) == "skops":
            _import_skops().dump(estimator, path)
        else:
            import joblib

            joblib.dump(estimator, path)
    except OSError as error:
        raise InputError(f"cannot write the model to {path}: {error.strerror or error}") from error


def load_model(path):
    """Read an estimator written by :func:`save_model`.

    A .skops file loads only if it holds nothing but skdam's estimators. A joblib
    file is a pickle, which runs code from the file: load only models you trust.
    """
    from . import DAMAutoencoder, DAMEmbedding

    estimator_classes = (DAMAutoencoder, DAMEmbedding)
    path = Path(path)
    file_format = model_format(path)
    _check_readable(path)
    try:
        if file_format == "skops":
            model = _load_skops(path, estimator_classes)
        else:
            import joblib

            model = joblib.load(path)
    except InputError:
        raise
    except OSError as error:
        raise InputError(f"{path}: cannot read: {error.strerror or error}") from error
    except Exception as error:  # a pickle can fail in any way; name the file, not the internals
        raise InputError(f"{path}: not a model file written by skdam --save-model ({type(error).__name__}).") from error
    if not isinstance(model, estimator_classes) or not hasattr(model, "n_components_"):
        raise InputError(f"{path}: holds a {type(model).__name__}, not a fitted skdam estimator.")
    return model


def _load_skops(path, estimator_classes):
    import zipfile

    if not zipfile.is_zipfile(path):
        # joblib's pickles are not zip files; say so rather than guess the format.
        raise InputError(f"{path}: not a skops file (a .skops model is written by skops.io, e.g. skdam --save-model).")
    skops_io = _import_skops()
    trusted = [f"{cls.__module__}.{cls.__qualname__}" for cls in estimator_classes]
    untrusted = [name for name in skops_io.get_untrusted_types(file=path) if name not in trusted]
    if untrusted:
        raise InputError(f"{path}: holds types that are not skdam estimators: {shown_names(untrusted)}.")
    return skops_io.load(path, trusted=trusted)


# -------------------------------------------------------------- data tables


def table_format(path):
    """The format that ``path``'s suffix names: ``"CSV"``, ``"NPY"`` or ``"Parquet"``.

    Refuses an unknown suffix, and a Parquet file without pandas and pyarrow, so
    that the commands can check their files before any training.
    """
    file_format = TABLE_SUFFIXES.get(Path(path).suffix.lower())
    if file_format is None:
        raise InputError(f"{path}: unsupported file type {Path(path).suffix!r}; use .csv, .npy or .parquet.")
    if file_format == "Parquet":
        _import_pandas_for_parquet()
    return file_format


def _check_readable(path):
    if not path.exists():
        raise InputError(f"{path}: no such file.")
    if path.is_dir():
        raise InputError(f"{path}: is a directory, not a file.")


def check_writable(path):
    """Refuse an output path whose directory does not exist, before any work is done."""
    directory = Path(path).resolve().parent
    if not directory.is_dir():
        raise InputError(f"{path}: the directory {directory} does not exist.")


def _is_number(text):
    try:
        float(text)
    except ValueError:
        return False
    return True


def read_table(path):
    """Read a 2-D numeric table.

    Returns
    -------
    X : ndarray of shape (n_samples, n_features)
    column_names : list of str or None
        The names the file gives its columns (a CSV header, Parquet); None for an
        NPY file or a CSV file without a header.
    """
    path = Path(path)
    file_format = table_format(path)
    _check_readable(path)
    try:
        if file_format == "CSV":
            X, column_names = _read_csv(path)
        elif file_format == "NPY":
            X, column_names = _read_npy(path), None
        else:
            X, column_names = _read_parquet(path)
    except InputError:
        raise
    except OSError as error:
        raise InputError(f"{path}: cannot read: {error.strerror or error}") from error
    except Exception as error:  # corrupt files fail inside numpy or pyarrow in many ways
        raise InputError(f"{path}: cannot read as {file_format}: {first_line(error)}") from error
    if X.shape[0] == 0 or X.shape[1] == 0:
        raise InputError(f"{path}: no data (shape {X.shape[0]} x {X.shape[1]}).")
    if column_names is not None and len(column_names) != X.shape[1]:
        raise InputError(f"{path}: the header names {len(column_names)} columns, but the rows have {X.shape[1]}.")
    # NaN passes: the estimators take it as a missing value (docs/missing-values.md).
    return X, column_names


def _read_csv(path):
    with open(path, newline="", encoding="utf-8-sig") as file:
        first_row = next(csv.reader(file), None)
    if first_row is None:
        raise InputError(f"{path}: the file is empty.")
    has_header = not all(_is_number(cell) for cell in first_row)
    try:
        # loadtxt parses in C; the slow scan below only runs to explain a failure.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "input contained no data"
            X = np.loadtxt(
                path, delimiter=",", skiprows=int(has_header), ndmin=2, dtype=np.float64, quotechar='"',
                encoding="utf-8-sig",
            )
    except ValueError as error:
        raise InputError(f"{path}: {_first_bad_csv_cell(path, has_header) or first_line(error)}") from error
    return X, [cell.strip() for cell in first_row] if has_header else None


def _first_bad_csv_cell(path, has_header):
    """Describe the first line of a CSV file that is not a row of numbers."""
    width = None
    with open(path, newline="", encoding="utf-8-sig") as file:
        for line_number, row in enumerate(csv.reader(file), start=1):
            if line_number == 1 and has_header:
                continue
            if width is None:
                width = len(row)
            elif len(row) != width:
                return f"line {line_number} has {len(row)} values where the lines above have {width}."
            for column, cell in enumerate(row, start=1):
                if not cell.strip():
                    empty = f"line {line_number}, column {column} is empty (a missing value)"
                    return f"{empty}; {FILL_MISSING_VALUES}"
                if not _is_number(cell):
                    hint = " (skdam reads comma-separated values)" if ";" in cell or "\t" in cell else ""
                    return f"line {line_number}, column {column}: {cell!r} is not a number{hint}."
    return None


def _read_npy(path):
    try:
        X = np.load(path, allow_pickle=False)
    except ValueError as error:
        if "allow_pickle" in str(error):
            raise InputError(f"{path}: holds Python objects, not numbers; save a numeric array.") from error
        raise
    if not isinstance(X, np.ndarray):
        raise InputError(f"{path}: not a single NumPy array.")
    if X.ndim != 2:
        raise InputError(f"{path}: expected a 2-D array (rows x columns), got shape {X.shape}.")
    if X.dtype.kind not in "iuf":
        raise InputError(f"{path}: expected numbers, got an array of dtype {X.dtype}.")
    return X


def _import_pandas_for_parquet():
    try:
        import pandas as pd
        import pyarrow  # noqa: F401
    except ImportError as error:
        raise InputError(
            f"Parquet files need pandas and pyarrow ({error.name} is missing): pip install 'skdam[io]'."
        ) from error
    return pd


def _read_parquet(path):
    pd = _import_pandas_for_parquet()
    frame = pd.read_parquet(path)
    not_numeric = [
        str(name)
        for name, column in frame.items()
        if not pd.api.types.is_numeric_dtype(column) or pd.api.types.is_bool_dtype(column)
    ]
    if not_numeric:
        raise InputError(f"{path}: {len(not_numeric)} column(s) are not numeric: {shown_names(not_numeric)}.")
    return frame.to_numpy(dtype=np.float64, na_value=np.nan), [str(name) for name in frame.columns]


def with_column_names(X, column_names, path):
    """``X`` as a pandas DataFrame with its file's column names, when it has some.

    An estimator fitted on it records the names in ``feature_names_in_``, as the
    Python API does, so that ``skdam transform`` can refuse columns renamed or
    reordered since. Without pandas the names are lost, with a warning.
    """
    if column_names is None:
        return X
    try:
        import pandas as pd
    except ImportError:
        warnings.warn(
            f"{path} names its columns, but the model can record them only with pandas installed; "
            "'skdam transform' will not check them."
        )
        return X
    return pd.DataFrame(X, columns=column_names, copy=False)


def shown_names(names, most=5):
    """Quote the first ``most`` names for a one-line message."""
    return ", ".join(repr(name) for name in names[:most]) + (", ..." if len(names) > most else "")


def write_table(path, X, column_names):
    """Write ``X`` in the format that ``path``'s suffix names.

    ``column_names`` go into a Parquet file always and into a CSV file when given.
    """
    path = Path(path)
    file_format = table_format(path)
    try:
        if file_format == "CSV":
            header = ",".join(column_names) if column_names is not None else ""
            np.savetxt(path, X, delimiter=",", header=header, comments="", fmt="%.9g")
        elif file_format == "NPY":
            np.save(path, X)
        else:
            pd = _import_pandas_for_parquet()
            pd.DataFrame(X, columns=list(column_names)).to_parquet(path, index=False)
    except OSError as error:
        raise InputError(f"{path}: cannot write: {error.strerror or error}") from error


def first_line(error):
    """The first line of an exception's message, for a one-line error."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
