"""The ``skdam`` command line: fit and apply an estimator to CSV, NPY or Parquet files.

Every problem with the user's files (missing, unreadable, wrong format, not numbers,
wrong width for a model) ends in one line on standard error and exit status 2, the
status argparse uses for a bad command line; a traceback means a bug in skdam.
"""

import argparse
import csv
import math
import sys
import warnings
from pathlib import Path

import numpy as np

#: Exit status for a bad command line or bad files, as argparse uses.
EXIT_BAD_INPUT = 2
TABLE_SUFFIXES = {".csv": "CSV", ".npy": "NPY", ".parquet": "Parquet", ".pq": "Parquet"}
ESTIMATOR_CHOICES = ("embedding", "autoencoder")

COMMANDS = """\
fit-transform  learn the number of dimensions of a table and write its embedding
transform      embed a table with a model saved by 'fit-transform --save-model'
demo           fit both estimators on scikit-learn's digits beside PCA, save a PNG
"""

FILES_HELP = """\
files:
  The format follows the file name: .csv, .npy or .parquet. Rows are samples,
  columns are features, every value a number.
  .csv      comma-separated numbers. A first row that is not all numbers is read as
            a header and skipped. The output gets a header row (damembedding0, ...)
            when the input had one.
  .npy      a 2-D numeric NumPy array (numpy.save); no pickled objects.
  .parquet  numeric columns; needs pandas and pyarrow: pip install 'skdam[io]'.
"""

EXAMPLES = """\
examples:
  skdam demo
      Fit both estimators on scikit-learn's digits beside PCA and save a PNG.
  skdam fit-transform data.csv -o embedding.csv
      Learn how many dimensions data.csv needs and write its embedding.
  skdam fit-transform data.parquet -o embedding.parquet --estimator autoencoder \\
        --alpha 0.02 --random-state 0 --save-model model.joblib
      A nonlinear embedding, reproducible, with the fitted model kept.
  skdam transform --model model.joblib new.csv -o new_embedding.csv
      Embed new rows with the saved model.
  skdam fit-transform data.npy -o embedding.npy --n-components 10
      Exactly 10 dimensions, to compare with PCA(10).
"""


class InputError(Exception):
    """A problem with the user's files or values: one line on stderr, exit status 2."""


# ---------------------------------------------------------------- model files
# One place to change the format of model files.


def save_model(estimator, path):
    """Write a fitted estimator to ``path`` (joblib pickle)."""
    import joblib

    try:
        joblib.dump(estimator, path)
    except OSError as error:
        raise InputError(f"cannot write the model to {path}: {error.strerror or error}") from error


def load_model(path):
    """Read an estimator written by :func:`save_model`.

    Loading a pickle runs code from the file: load only models you trust.
    """
    import joblib

    from ._base import _BaseDAM

    path = Path(path)
    _check_readable(path)
    try:
        model = joblib.load(path)
    except OSError as error:
        raise InputError(f"{path}: cannot read: {error.strerror or error}") from error
    except Exception as error:  # a pickle can fail in any way; name the file, not the internals
        raise InputError(f"{path}: not a model file written by skdam --save-model ({type(error).__name__}).") from error
    if not isinstance(model, _BaseDAM) or not hasattr(model, "n_components_"):
        raise InputError(f"{path}: holds a {type(model).__name__}, not a fitted skdam estimator.")
    return model


# -------------------------------------------------------------- data tables


def _table_format(path):
    file_format = TABLE_SUFFIXES.get(Path(path).suffix.lower())
    if file_format is None:
        raise InputError(f"{path}: unsupported file type {Path(path).suffix!r}; use .csv, .npy or .parquet.")
    return file_format


def _check_readable(path):
    if not path.exists():
        raise InputError(f"{path}: no such file.")
    if path.is_dir():
        raise InputError(f"{path}: is a directory, not a file.")


def _check_writable(path):
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
    has_column_names : bool
        Whether the file named its columns (a CSV header, Parquet).
    """
    path = Path(path)
    file_format = _table_format(path)
    _check_readable(path)
    try:
        if file_format == "CSV":
            X, has_column_names = _read_csv(path)
        elif file_format == "NPY":
            X, has_column_names = _read_npy(path), False
        else:
            X, has_column_names = _read_parquet(path), True
    except InputError:
        raise
    except OSError as error:
        raise InputError(f"{path}: cannot read: {error.strerror or error}") from error
    except Exception as error:  # corrupt files fail inside numpy or pyarrow in many ways
        raise InputError(f"{path}: cannot read as {file_format}: {_first_line(error)}") from error
    if X.shape[0] == 0 or X.shape[1] == 0:
        raise InputError(f"{path}: no data (shape {X.shape[0]} x {X.shape[1]}).")
    return X, has_column_names


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
        raise InputError(f"{path}: {_first_bad_csv_cell(path, has_header) or _first_line(error)}") from error
    return X, has_header


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
        shown = ", ".join(repr(name) for name in not_numeric[:5]) + (", ..." if len(not_numeric) > 5 else "")
        raise InputError(f"{path}: {len(not_numeric)} column(s) are not numeric: {shown}.")
    return frame.to_numpy(dtype=np.float64, na_value=np.nan)


def write_table(path, X, column_names):
    """Write ``X`` in the format that ``path``'s suffix names.

    ``column_names`` go into a Parquet file always and into a CSV file when given.
    """
    path = Path(path)
    file_format = _table_format(path)
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


def _first_line(error):
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


# ----------------------------------------------------------------- commands


def _n_components(text):
    if text == "auto":
        return text
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected 'auto' or a positive integer, got {text!r}")
    return value


def _non_negative_float(text):
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not (value >= 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"expected a non-negative number, got {text!r}")
    return value


def _positive_int(text):
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _layer_sizes(text):
    try:
        sizes = tuple(int(size) for size in text.split(","))
    except ValueError:
        sizes = ()
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError(
            f"expected positive integers separated by commas, like 128 or 64,32; got {text!r}"
        )
    return sizes


def _make_estimator(args):
    from ._autoencoder import DAMAutoencoder
    from ._embedding import DAMEmbedding

    settings = {
        "n_components": args.n_components,
        "alpha": args.alpha,
        "max_iter": args.max_iter,
        "random_state": args.random_state,
        "verbose": args.verbose,
    }
    if args.estimator == "autoencoder":
        if args.hidden_layer_sizes is not None:
            settings["hidden_layer_sizes"] = args.hidden_layer_sizes
        return DAMAutoencoder(**settings)
    if args.hidden_layer_sizes is not None:
        raise InputError("--hidden-layer-sizes only applies to --estimator autoencoder.")
    return DAMEmbedding(**settings)


def _run_estimator(method, X):
    try:
        return method(X)
    except (ValueError, FloatingPointError) as error:
        # scikit-learn's checks of the data (NaN, too few rows) raise ValueError.
        raise InputError(_first_line(error)) from error


def _write_embedding(path, embedding, estimator, has_column_names):
    # Columns are named like get_feature_names_out (damembedding0, ...) where the
    # input named its columns, and always in Parquet, which needs names.
    named = has_column_names or _table_format(path) == "Parquet"
    write_table(path, embedding, estimator.get_feature_names_out() if named else None)


def _fit_transform(args):
    # Everything that can be checked before a long fit is checked first.
    _table_format(args.output)
    _check_writable(args.output)
    if args.save_model is not None:
        _check_writable(args.save_model)
    estimator = _make_estimator(args)
    X, has_column_names = read_table(args.input)
    embedding = _run_estimator(estimator.fit_transform, X)
    _write_embedding(args.output, embedding, estimator, has_column_names)
    print(
        f"{type(estimator).__name__} kept {estimator.n_components_} of {X.shape[1]} dimensions "
        f"({estimator.n_iter_} epochs, R^2 {estimator.score(X):.4f}); wrote {embedding.shape[0]} rows x "
        f"{embedding.shape[1]} columns to {args.output}"
    )
    if args.save_model is not None:
        save_model(estimator, args.save_model)
        print(f"saved the model to {args.save_model}")


def _transform(args):
    _table_format(args.output)
    _check_writable(args.output)
    model = load_model(args.model)
    X, has_column_names = read_table(args.input)
    if X.shape[1] != model.n_features_in_:
        raise InputError(
            f"{args.input}: has {X.shape[1]} columns, but the model {args.model} was fitted on "
            f"{model.n_features_in_} columns."
        )
    embedding = _run_estimator(model.transform, X)
    _write_embedding(args.output, embedding, model, has_column_names)
    print(f"wrote {embedding.shape[0]} rows x {embedding.shape[1]} columns to {args.output}")


def _demo(args):
    from ._demo import run_demo

    run_demo(output_dir=args.output_dir, random_state=args.random_state)


def _build_parser():
    def formatter(prog):
        # Keep the examples' layout, and room for "fit-transform" beside its help.
        return argparse.RawDescriptionHelpFormatter(prog, max_help_position=32)

    parser = argparse.ArgumentParser(
        prog="skdam",
        usage="%(prog)s [-h] COMMAND ...",
        description=(
            "Dimensionality reduction that discovers its own number of dimensions\n"
            "with DiscriminAtive Masking (DAM). Run 'skdam COMMAND --help' for the\n"
            "options of a command."
        ),
        epilog=EXAMPLES + "\n" + FILES_HELP,
        formatter_class=formatter,
    )
    # The list of commands is written out: argparse wraps "fit-transform" badly.
    commands = parser.add_subparsers(
        dest="command", title="commands", metavar="COMMAND", description=COMMANDS, help=argparse.SUPPRESS, prog="skdam"
    )

    fit = commands.add_parser(
        "fit-transform",
        description="Fit an estimator on INPUT and write the embedding of INPUT's rows to OUTPUT.",
        epilog=FILES_HELP,
        formatter_class=formatter,
    )
    fit.add_argument("input", metavar="INPUT", help="the data: .csv, .npy or .parquet")
    fit.add_argument(
        "-o", "--output", metavar="OUTPUT", required=True, help="where the embedding goes: .csv, .npy or .parquet"
    )
    fit.add_argument(
        "--estimator",
        choices=ESTIMATOR_CHOICES,
        default="embedding",
        help="embedding: linear, like PCA (DAMEmbedding); autoencoder: nonlinear, for curved data "
        "(DAMAutoencoder). Default: %(default)s",
    )
    fit.add_argument(
        "--alpha",
        type=_non_negative_float,
        default=0.01,
        help="a dimension is kept while it explains more than this share of the variance (default: %(default)s)",
    )
    fit.add_argument(
        "--n-components",
        type=_n_components,
        default="auto",
        metavar="{auto,K}",
        help="'auto' discovers the number of dimensions; an integer K keeps exactly K (default: %(default)s)",
    )
    fit.add_argument(
        "--random-state", type=int, default=None, metavar="SEED", help="seed, for results that repeat (default: none)"
    )
    fit.add_argument(
        "--max-iter", type=_positive_int, default=200, metavar="N", help="most epochs (default: %(default)s)"
    )
    fit.add_argument(
        "--hidden-layer-sizes",
        type=_layer_sizes,
        default=None,
        metavar="SIZES",
        help="the autoencoder's hidden widths, like 128 or 64,32 (default: 128,128)",
    )
    fit.add_argument(
        "--save-model", metavar="PATH", default=None, help="also save the fitted model, for 'skdam transform'"
    )
    fit.add_argument("-v", "--verbose", action="count", default=0, help="show the progress of training")
    fit.set_defaults(run=_fit_transform)

    transform = commands.add_parser(
        "transform",
        description=(
            "Embed INPUT's rows with a saved model and write them to OUTPUT.\n"
            "A model file is a pickle, which runs code when loaded: load only models you trust."
        ),
        epilog=FILES_HELP,
        formatter_class=formatter,
    )
    transform.add_argument("--model", metavar="MODEL", required=True, help="a file written by --save-model")
    transform.add_argument("input", metavar="INPUT", help="the data, with the columns the model was fitted on")
    transform.add_argument("-o", "--output", metavar="OUTPUT", required=True, help="where the embedding goes")
    transform.set_defaults(run=_transform)

    demo = commands.add_parser(
        "demo",
        description="Fit both estimators on scikit-learn's digits, compare them with PCA and save a PNG.",
        formatter_class=formatter,
    )
    demo.add_argument("--output-dir", default="skdam-demo", help="where the PNG goes (default: %(default)s)")
    demo.add_argument("--random-state", type=int, default=0, help="seed (default: %(default)s)")
    demo.set_defaults(run=_demo)
    return parser


def _show_warning(message, category, filename, lineno, file=None, line=None):
    # One line per warning, without the source line Python would print.
    print(f"skdam: warning: {message}", file=sys.stderr)


def main(argv=None):
    """Run the ``skdam`` command line; returns the exit status."""
    parser = _build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    with warnings.catch_warnings():
        warnings.showwarning = _show_warning
        try:
            args.run(args)
        except InputError as error:
            print(f"skdam: error: {error}", file=sys.stderr)
            return EXIT_BAD_INPUT
    return 0


if __name__ == "__main__":
    sys.exit(main())
