"""The ``skdam`` command line: fit and apply an estimator to CSV, NPY or Parquet files.

Every problem with the user's files (missing, unreadable, wrong format, not numbers,
wrong width for a model) ends in one line on standard error and exit status 2, the
status argparse uses for a bad command line; a traceback means a bug in skdam.
"""

import argparse
import math
import sys
import warnings

from . import __version__
from ._cli_io import (
    InputError,
    check_writable,
    first_line,
    load_model,
    model_format,
    read_table,
    save_model,
    shown_names,
    table_format,
    with_column_names,
    write_table,
)

#: Exit status for a bad command line or bad files, as argparse uses.
EXIT_BAD_INPUT = 2
ESTIMATOR_CHOICES = ("embedding", "autoencoder")

COMMANDS = """\
fit-transform  learn the number of dimensions of a table and write its embedding
transform      embed a table with a model saved by 'fit-transform --save-model'
demo           fit both estimators on digits and a Swiss roll beside PCA, save a PNG
"""

FILES_HELP = """\
files:
  The format follows the file name: .csv, .npy or .parquet. Rows are samples,
  columns are features, every value a number.
  .csv      comma-separated numbers. A first row that is not all numbers is read as
            a header: the column names. The output gets a header row
            (damembedding0, ...) when the input had one.
  .npy      a 2-D numeric NumPy array (numpy.save); no pickled objects.
  .parquet  numeric columns; needs pandas and pyarrow: pip install 'skdam[io]'.
  A model fitted on named columns (a CSV header, Parquet) records the names, and
  'skdam transform' refuses a file that renames or reorders them. Missing values
  (NaN, empty cells) are refused: fill them first, for example with
  sklearn.impute.SimpleImputer in a Pipeline.
  Model files: .skops (skops.io: pip install 'skdam[persistence]'), .joblib or .pkl
  (joblib, a pickle: load only files you trust).
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


# ----------------------------------------------------------------- commands




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


def _n_components(text):
    if text == "auto":
        return text
    try:
        return _positive_int(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(f"expected 'auto' or a positive integer, got {text!r}") from None


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
        "random_state": args.random_state,
        "verbose": args.verbose,
    }
    if args.max_iter is not None:
        settings["max_iter"] = args.max_iter
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
        raise InputError(first_line(error)) from error


def _write_embedding(path, embedding, estimator, column_names):
    # Columns are named like get_feature_names_out (damembedding0, ...) where the
    # input named its columns, and always in Parquet, which needs names.
    named = column_names is not None or table_format(path) == "Parquet"
    write_table(path, embedding, estimator.get_feature_names_out() if named else None)


def _fit_transform(args):
    # Everything that can be checked before a long fit is checked first.
    table_format(args.output)
    check_writable(args.output)
    table_format(args.input)
    if args.save_model is not None:
        model_format(args.save_model)
        check_writable(args.save_model)
    estimator = _make_estimator(args)
    X, column_names = read_table(args.input)
    data = with_column_names(X, column_names, args.input)
    embedding = _run_estimator(estimator.fit_transform, data)
    _write_embedding(args.output, embedding, estimator, column_names)
    print(
        f"{type(estimator).__name__} kept {estimator.n_components_} of {X.shape[1]} dimensions "
        f"({estimator.n_iter_} epochs, R^2 {estimator.r2_score(data):.4f}); wrote {embedding.shape[0]} rows x "
        f"{embedding.shape[1]} columns to {args.output}"
    )
    if args.save_model is not None:
        save_model(estimator, args.save_model)
        print(f"saved the model to {args.save_model}")


def _check_column_names(path, column_names, model, model_path):
    """Refuse columns renamed or reordered since fit, as ``transform`` does for a DataFrame."""
    if not hasattr(model, "feature_names_in_"):
        return  # fitted without names: columns go by position, whatever their names
    expected = [str(name) for name in model.feature_names_in_]
    if column_names is None:
        warnings.warn(f"{path} does not name its columns; they are taken as the model's: {shown_names(expected)}.")
        return
    if column_names == expected:
        return
    if sorted(column_names) == sorted(expected):
        column = next(i for i, (name, fitted) in enumerate(zip(column_names, expected)) if name != fitted)
        raise InputError(
            f"{path}: has the columns of the model {model_path} in another order: column {column + 1} is "
            f"{column_names[column]!r} where the model has {expected[column]!r}; order them as "
            f"{shown_names(expected)}."
        )
    unknown = [name for name in column_names if name not in expected]
    missing = [name for name in expected if name not in column_names]
    differences = []
    if unknown:
        differences.append(f"not in the model: {shown_names(unknown)}")
    if missing:
        differences.append(f"missing: {shown_names(missing)}")
    if not differences:  # the same names, repeated other numbers of times
        differences.append(f"the model has {shown_names(expected)}")
    raise InputError(f"{path}: column names differ from those {model_path} was fitted on: {'; '.join(differences)}.")


def _transform(args):
    table_format(args.output)
    check_writable(args.output)
    table_format(args.input)
    model = load_model(args.model)
    X, column_names = read_table(args.input)
    if X.shape[1] != model.n_features_in_:
        raise InputError(
            f"{args.input}: has {X.shape[1]} columns, but the model {args.model} was fitted on "
            f"{model.n_features_in_} columns."
        )
    _check_column_names(args.input, column_names, model, args.model)
    with warnings.catch_warnings():
        # The names were checked above; the array goes in without them.
        warnings.filterwarnings("ignore", "X does not have valid feature names", UserWarning)
        embedding = _run_estimator(model.transform, X)
    _write_embedding(args.output, embedding, model, column_names)
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
        usage="%(prog)s [-h] [--version] COMMAND ...",
        description=(
            "Dimensionality reduction that discovers its own number of dimensions\n"
            "with DiscriminAtive Masking (DAM). Run 'skdam COMMAND --help' for the\n"
            "options of a command."
        ),
        epilog=EXAMPLES + "\n" + FILES_HELP,
        formatter_class=formatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
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
        "--max-iter", type=_positive_int, default=None, metavar="N",
        help="most epochs (default: the estimator's, 200 for embedding and 400 for autoencoder)",
    )
    fit.add_argument(
        "--hidden-layer-sizes",
        type=_layer_sizes,
        default=None,
        metavar="SIZES",
        help="the autoencoder's hidden widths, like 128 or 64,32 (default: 128,128)",
    )
    fit.add_argument(
        "--save-model",
        metavar="PATH",
        default=None,
        help="also save the fitted model, for 'skdam transform': PATH.skops is written with skops.io "
        "(pip install 'skdam[persistence]'), PATH.joblib or PATH.pkl with joblib",
    )
    fit.add_argument("-v", "--verbose", action="count", default=0, help="show the progress of training")
    fit.set_defaults(run=_fit_transform)

    transform = commands.add_parser(
        "transform",
        description=(
            "Embed INPUT's rows with a saved model and write them to OUTPUT.\n"
            "A .skops model loads only skdam's estimators; a .joblib or .pkl model is a pickle,\n"
            "which runs code when loaded: load only pickles you trust."
        ),
        epilog=FILES_HELP,
        formatter_class=formatter,
    )
    transform.add_argument(
        "--model", metavar="MODEL", required=True, help="a file written by --save-model: .skops, .joblib or .pkl"
    )
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
