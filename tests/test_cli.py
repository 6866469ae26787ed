"""The skdam command line on real CSV, NPY and Parquet files."""

import fractions
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import joblib
import numpy as np
import pytest

import skdam
from skdam import DAMAutoencoder, DAMEmbedding
from skdam._cli import EXIT_BAD_INPUT, main
from skdam.datasets import make_linear_latent

pd = pytest.importorskip("pandas")
pytest.importorskip("pyarrow")

FAST = ["--max-iter", "60", "--random-state", "0"]


@pytest.fixture(scope="module")
def data():
    """Exactly 2 dimensions in 6; 300 rows, as fewer end training before a gate closes."""
    return make_linear_latent(300, 2, 6, random_state=0)[0]


def _named(X):
    return pd.DataFrame(X, columns=[f"feature_{i}" for i in range(X.shape[1])])


def _write(path, X, header=False):
    path = Path(path)
    if path.suffix == ".csv":
        names = ",".join(f"feature_{i}" for i in range(X.shape[1]))
        np.savetxt(path, X, delimiter=",", header=names if header else "", comments="")
    elif path.suffix == ".npy":
        np.save(path, X)
    else:
        _named(X).to_parquet(path)
    return str(path)


def _read(path):
    path = Path(path)
    if path.suffix == ".csv":
        lines = path.read_text().splitlines()
        has_header = not lines[0][0].isdigit() and lines[0][0] != "-"
        return np.loadtxt(path, delimiter=",", skiprows=int(has_header), ndmin=2), (lines[0] if has_header else None)
    if path.suffix == ".npy":
        return np.load(path), None
    frame = pd.read_parquet(path)
    return frame.to_numpy(), ",".join(frame.columns)


@pytest.fixture(scope="module")
def fitted_by_cli(data, tmp_path_factory):
    """One fit through the CLI: a CSV with a header in, CSV and a model out."""
    folder = tmp_path_factory.mktemp("cli")
    source = _write(folder / "data.csv", data, header=True)
    output, model = folder / "embedding.csv", folder / "model.joblib"
    status = main(["fit-transform", source, "-o", str(output), "--save-model", str(model), *FAST])
    assert status == 0
    return folder, output, model


def test_fit_transform_csv_with_header(fitted_by_cli, data, capsys):
    folder, output, model_path = fitted_by_cli
    embedding, header = _read(output)
    model = joblib.load(model_path)
    assert isinstance(model, DAMEmbedding) and model.n_components_ == 2
    # As the Python API fitted on a DataFrame: transform can check the columns.
    assert list(model.feature_names_in_) == [f"feature_{i}" for i in range(6)]
    assert header == "damembedding0,damembedding1"
    np.testing.assert_allclose(embedding, model.transform(_named(data)), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("suffix", [".csv", ".npy", ".parquet"])
def test_transform_with_a_saved_model_reads_every_format(suffix, fitted_by_cli, data, tmp_path, capsys):
    _, reference_output, model_path = fitted_by_cli
    source = _write(tmp_path / f"new{suffix}", data[:50])  # CSV without a header
    output = tmp_path / f"out{suffix}"
    assert main(["transform", "--model", str(model_path), source, "-o", str(output)]) == 0
    embedding, header = _read(output)
    reference, _ = _read(reference_output)
    np.testing.assert_allclose(embedding, reference[:50], rtol=1e-6, atol=1e-6)
    # A header only where the input named its columns; Parquet always names them.
    assert header == ("damembedding0,damembedding1" if suffix == ".parquet" else None)
    assert capsys.readouterr().out.strip() == f"wrote 50 rows x 2 columns to {output}"


def test_fit_transform_parquet_to_npy_with_an_autoencoder(data, tmp_path, capsys):
    source = _write(tmp_path / "data.parquet", data)
    output, model_path = tmp_path / "embedding.npy", tmp_path / "autoencoder.joblib"
    arguments = ["fit-transform", source, "-o", str(output), "--estimator", "autoencoder", "--hidden-layer-sizes", "16"]
    assert main([*arguments, "--alpha", "0.02", "--save-model", str(model_path), *FAST]) == 0
    model = joblib.load(model_path)
    assert isinstance(model, DAMAutoencoder)
    assert model.hidden_layer_sizes == (16,) and model.alpha == 0.02 and model.max_iter == 60
    embedding = np.load(output)
    assert embedding.shape == (300, model.n_components_)
    np.testing.assert_allclose(embedding, model.transform(_named(data)), rtol=1e-5, atol=1e-6)
    assert "DAMAutoencoder kept" in capsys.readouterr().out


def test_fit_transform_npy_with_a_given_number_of_components(data, tmp_path, capsys):
    source = _write(tmp_path / "data.npy", data.astype(np.float32))
    output = tmp_path / "embedding.csv"
    assert main(["fit-transform", source, "-o", str(output), "--n-components", "3", *FAST]) == 0
    embedding, header = _read(output)
    assert embedding.shape == (300, 3) and header is None
    assert capsys.readouterr().out.startswith("DAMEmbedding kept 3 of 6 dimensions")


def test_missing_values_pass_through_to_the_estimator(data, tmp_path, capsys):
    with_holes = data.copy()
    with_holes[np.random.RandomState(0).uniform(size=data.shape) < 0.2] = np.nan
    source = _write(tmp_path / "holes.npy", with_holes)
    output = tmp_path / "embedding.npy"
    assert main(["fit-transform", source, "-o", str(output), *FAST]) == 0
    embedding, _ = _read(output)
    assert embedding.shape[0] == 300 and np.isfinite(embedding).all()
    assert capsys.readouterr().out.startswith("DAMEmbedding kept 2 of 6 dimensions")


def test_verbose_shows_the_open_gates(data, tmp_path, capsys):
    source = _write(tmp_path / "data.npy", data)
    assert main(["fit-transform", source, "-o", str(tmp_path / "out.npy"), "-v", *FAST]) == 0
    assert "open gates" in capsys.readouterr().out


def _bad_files(folder, data):
    """(name, arguments after the command, text the error must contain) for bad input."""
    model = folder / "model.joblib"
    csv_texts = {
        "ragged": "1,2,3\n4,5,6\n7,8\n",
        "words": "a,b\n1,2\n3,oops\n",
        "empty_cell": "a,b\n1,2\n3,\n",
        "semicolons": "1;2;3\n4;5;6\n",
        "empty": "",
        "header_only": "a,b,c\n",
        "wide_header": "a,b,c\n1,2\n",
    }
    csv_file = {name: folder / f"{name}.csv" for name in csv_texts}
    for name, text in csv_texts.items():
        csv_file[name].write_text(text)
    corrupt_npy = folder / "corrupt.npy"
    corrupt_npy.write_bytes(b"\x93NUMPY garbage" * 10)
    flat_npy = folder / "flat.npy"
    np.save(flat_npy, np.arange(5.0))
    objects_npy = folder / "objects.npy"
    np.save(objects_npy, np.array([[1, "a"]], dtype=object), allow_pickle=True)
    text_npy = folder / "text.npy"
    np.save(text_npy, np.array([["1", "2"]]))
    strings_parquet = folder / "strings.parquet"
    pd.DataFrame({"x": [1.0, 2.0], "name": ["a", "b"]}).to_parquet(strings_parquet)
    corrupt_parquet = folder / "corrupt.parquet"
    corrupt_parquet.write_bytes(b"not parquet at all")
    with_nan = _write(folder / "nan.npy", np.where(np.eye(6, dtype=bool)[[0] * 300], np.nan, data))
    narrow = _write(folder / "narrow.csv", data[:, :4])
    not_a_model = folder / "not_a_model.joblib"
    joblib.dump({"weights": 1}, not_a_model)
    text_model = folder / "text_model.joblib"
    text_model.write_text("hello")
    good = _write(folder / "good.npy", data)
    names = [f"feature_{i}" for i in range(6)]
    reordered_csv = folder / "reordered.csv"
    order = [1, 0, 2, 3, 4, 5]
    np.savetxt(reordered_csv, data[:, order], delimiter=",", header=",".join(names[i] for i in order), comments="")
    renamed_parquet = folder / "renamed.parquet"
    pd.DataFrame(data, columns=["x", *names[1:]]).to_parquet(renamed_parquet)
    cases = [
        ("missing", ["fit-transform", str(folder / "absent.csv"), "-o", "x.csv"], "no such file"),
        ("suffix", ["fit-transform", str(folder / "data.txt"), "-o", "x.csv"], "unsupported file type '.txt'"),
        ("output suffix", ["fit-transform", good, "-o", str(folder / "x.json")], "unsupported file type '.json'"),
        ("output folder", ["fit-transform", good, "-o", str(folder / "nowhere" / "x.csv")], "does not exist"),
        ("directory", ["fit-transform", str(folder), "-o", "x.csv"], "unsupported file type"),
        ("ragged", ["fit-transform", str(csv_file["ragged"]), "-o", "x.csv"],
         "line 3 has 2 values where the lines above have 3"),
        ("words", ["fit-transform", str(csv_file["words"]), "-o", "x.csv"], "line 3, column 2: 'oops' is not a number"),
        ("semicolons", ["fit-transform", str(csv_file["semicolons"]), "-o", "x.csv"],
         "skdam reads comma-separated values"),
        ("empty", ["fit-transform", str(csv_file["empty"]), "-o", "x.csv"], "the file is empty"),
        ("header only", ["fit-transform", str(csv_file["header_only"]), "-o", "x.csv"], "no data"),
        ("wide header", ["fit-transform", str(csv_file["wide_header"]), "-o", "x.csv"],
         "the header names 3 columns, but the rows have 2"),
        ("corrupt npy", ["fit-transform", str(corrupt_npy), "-o", "x.csv"], "cannot read as NPY"),
        ("flat npy", ["fit-transform", str(flat_npy), "-o", "x.csv"], "expected a 2-D array"),
        ("object npy", ["fit-transform", str(objects_npy), "-o", "x.csv"], "holds Python objects"),
        ("text npy", ["fit-transform", str(text_npy), "-o", "x.csv"], "expected numbers"),
        ("strings parquet", ["fit-transform", str(strings_parquet), "-o", "x.csv"],
         "1 column(s) are not numeric: 'name'"),
        ("corrupt parquet", ["fit-transform", str(corrupt_parquet), "-o", "x.csv"], "cannot read as Parquet"),
        ("empty column", ["fit-transform", with_nan, "-o", str(folder / "x.csv")],
         "cannot fit features with no observed value: column(s) 0 of X are all NaN"),
        ("empty cell", ["fit-transform", str(csv_file["empty_cell"]), "-o", "x.csv"],
         "line 3, column 2 is empty (a missing value); write NaN for a missing value"),
        ("too many components", ["fit-transform", good, "-o", str(folder / "x.npy"), "--n-components", "7"],
         "larger than max_components"),
        ("width", ["transform", "--model", str(model), narrow, "-o", str(folder / "x.csv")],
         "has 4 columns, but the model"),
        ("reordered columns", ["transform", "--model", str(model), str(reordered_csv), "-o", str(folder / "x.csv")],
         "model.joblib in another order: column 1 is 'feature_1' where the model has 'feature_0'"),
        ("renamed columns", ["transform", "--model", str(model), str(renamed_parquet), "-o", str(folder / "x.csv")],
         "model.joblib was fitted on: not in the model: 'x'; missing: 'feature_0'."),
        ("missing model", ["transform", "--model", str(folder / "absent.joblib"), good, "-o", str(folder / "x.csv")],
         "no such file"),
        ("not a model", ["transform", "--model", str(not_a_model), good, "-o", str(folder / "x.csv")],
         "holds a dict, not a fitted skdam estimator"),
        ("text model", ["transform", "--model", str(text_model), good, "-o", str(folder / "x.csv")],
         "not a model file written by skdam"),
    ]
    if importlib.util.find_spec("skops") is not None:
        import skops.io

        foreign_skops = folder / "foreign.skops"
        skops.io.dump({"weights": fractions.Fraction(1, 3)}, foreign_skops)
        cases.append(
            ("foreign skops", ["transform", "--model", str(foreign_skops), good, "-o", str(folder / "x.csv")],
             "holds types that are not skdam estimators: 'fractions.Fraction'")
        )
    return cases


def test_bad_files_get_one_line_and_status_2(fitted_by_cli, data, capsys):
    folder, _, _ = fitted_by_cli
    for name, arguments, expected in _bad_files(folder, data):
        status = main([*arguments, *(FAST if arguments[0] == "fit-transform" else [])])
        captured = capsys.readouterr()
        lines = captured.err.strip().splitlines()
        assert status == EXIT_BAD_INPUT, name
        assert len(lines) == 1 and lines[0].startswith("skdam: error: "), (name, captured.err)
        assert expected in lines[0], (name, lines[0])
        assert "Traceback" not in captured.err + captured.out


@pytest.mark.parametrize(
    "arguments",
    [["--n-components", "0"], ["--n-components", "many"], ["--alpha", "-1"], ["--estimator", "tsne"]],
)
def test_bad_options_are_usage_errors(arguments, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["fit-transform", "in.csv", "-o", "out.csv", *arguments])
    assert exit_info.value.code == 2
    assert "usage: skdam fit-transform" in capsys.readouterr().err


def test_hidden_layer_sizes_needs_the_autoencoder(data, tmp_path, capsys):
    source = _write(tmp_path / "data.npy", data)
    assert main(["fit-transform", source, "-o", str(tmp_path / "x.npy"), "--hidden-layer-sizes", "16"]) == 2
    assert "only applies to --estimator autoencoder" in capsys.readouterr().err


def _env_for(package):
    """The environment in which a child Python imports ``package`` from where this test did.

    An editable install may point at another checkout; PYTHONPATH comes before it.
    """
    return {**os.environ, "PYTHONPATH": str(Path(package.__file__).parent.parent)}


def test_installed_console_script_prints_help():
    script = Path(sys.executable).with_name("skdam")
    if not script.exists():
        pytest.skip("the skdam console script is not installed next to this Python")
    result = subprocess.run([str(script), "--help"], capture_output=True, text=True, timeout=120, env=_env_for(skdam))
    assert result.returncode == 0, result.stderr
    for text in ("fit-transform", "transform", "demo", "examples:", "skdam transform --model model.joblib", ".parquet"):
        assert text in result.stdout


def test_transform_takes_unnamed_columns_in_the_model_order(fitted_by_cli, data, tmp_path, capsys):
    _, reference_output, model_path = fitted_by_cli
    source = _write(tmp_path / "new.npy", data[:10])
    assert main(["transform", "--model", str(model_path), source, "-o", str(tmp_path / "out.npy")]) == 0
    np.testing.assert_allclose(np.load(tmp_path / "out.npy"), _read(reference_output)[0][:10], rtol=1e-6, atol=1e-6)
    warning = capsys.readouterr().err.strip()
    assert warning.startswith(f"skdam: warning: {source} does not name its columns; they are taken as the model's:")
    assert len(warning.splitlines()) == 1


def test_a_model_fitted_without_names_takes_any_names(data, tmp_path, capsys):
    model_path = tmp_path / "model.joblib"
    arguments = ["fit-transform", _write(tmp_path / "data.npy", data), "-o", str(tmp_path / "embedding.npy")]
    assert main([*arguments, "--save-model", str(model_path), *FAST]) == 0
    assert not hasattr(joblib.load(model_path), "feature_names_in_")
    source = _write(tmp_path / "named.parquet", data[:10])
    assert main(["transform", "--model", str(model_path), source, "-o", str(tmp_path / "out.npy")]) == 0
    np.testing.assert_allclose(np.load(tmp_path / "out.npy"), np.load(tmp_path / "embedding.npy")[:10], atol=1e-6)
    assert capsys.readouterr().err == ""


def test_without_pandas_a_csv_header_is_not_recorded_and_says_so(data, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "pandas", None)  # import pandas raises ImportError
    source, model_path = _write(tmp_path / "data.csv", data, header=True), tmp_path / "model.joblib"
    arguments = ["fit-transform", source, "-o", str(tmp_path / "out.csv"), "--save-model", str(model_path)]
    assert main([*arguments, *FAST]) == 0
    assert "the model can record them only with pandas installed" in capsys.readouterr().err
    assert not hasattr(joblib.load(model_path), "feature_names_in_")


def test_save_model_picks_the_format_from_the_suffix(data, tmp_path, capsys):
    skops_io = pytest.importorskip("skops.io")
    source, output = _write(tmp_path / "data.npy", data), tmp_path / "embedding.npy"
    model_path = tmp_path / "model.skops"
    assert main(["fit-transform", source, "-o", str(output), "--save-model", str(model_path), *FAST]) == 0
    # A real skops file, which loads without trusting more than the estimator's class.
    model = skops_io.load(model_path, trusted=[f"{DAMEmbedding.__module__}.DAMEmbedding"])
    assert isinstance(model, DAMEmbedding)
    assert main(["transform", "--model", str(model_path), source, "-o", str(tmp_path / "again.npy")]) == 0
    np.testing.assert_allclose(np.load(tmp_path / "again.npy"), np.load(output), rtol=1e-6, atol=1e-6)


def test_a_pickle_named_skops_is_refused(fitted_by_cli, data, tmp_path, capsys):
    _, _, joblib_model = fitted_by_cli
    disguised = tmp_path / "model.skops"
    disguised.write_bytes(joblib_model.read_bytes())
    source = _write(tmp_path / "new.npy", data[:5])
    assert main(["transform", "--model", str(disguised), source, "-o", str(tmp_path / "out.npy")]) == EXIT_BAD_INPUT
    assert f"skdam: error: {disguised}: not a skops file" in capsys.readouterr().err


def _refuse_to_train(monkeypatch):
    def train(*args, **kwargs):
        raise AssertionError("trained before checking the files")

    for estimator in (DAMEmbedding, DAMAutoencoder):
        monkeypatch.setattr(estimator, "fit_transform", train)


@pytest.mark.parametrize(
    ("model_name", "missing_module", "expected"),
    [
        ("model.bin", None, "model.bin: unsupported model file type '.bin'; use .skops, .joblib or .pkl"),
        ("model.skops", "skops", "needs skops: pip install 'skdam[persistence]'"),
    ],
)
def test_save_model_is_checked_before_training(
    model_name, missing_module, expected, data, tmp_path, monkeypatch, capsys
):
    if missing_module is not None:
        for name in [module for module in sys.modules if module.split(".")[0] == missing_module] or [missing_module]:
            monkeypatch.setitem(sys.modules, name, None)
    _refuse_to_train(monkeypatch)
    source = _write(tmp_path / "data.npy", data)
    arguments = ["fit-transform", source, "-o", str(tmp_path / "out.npy"), "--save-model", str(tmp_path / model_name)]
    assert main(arguments) == EXIT_BAD_INPUT
    assert expected in capsys.readouterr().err


@pytest.mark.parametrize("command", ["fit-transform", "transform"])
def test_a_parquet_output_without_pyarrow_is_refused_before_any_work(
    command, fitted_by_cli, data, tmp_path, monkeypatch, capsys
):
    _, _, model_path = fitted_by_cli
    monkeypatch.setitem(sys.modules, "pyarrow", None)  # import pyarrow raises ImportError
    _refuse_to_train(monkeypatch)
    monkeypatch.setattr(DAMEmbedding, "transform", lambda *args: pytest.fail("embedded before checking the files"))
    source, output = _write(tmp_path / "data.npy", data), str(tmp_path / "out.parquet")
    model = ["--model", str(model_path)] if command == "transform" else []
    assert main([command, *model, source, "-o", output]) == EXIT_BAD_INPUT
    assert "Parquet files need pandas and pyarrow (pyarrow is missing)" in capsys.readouterr().err


def test_version(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out == f"skdam {skdam.__version__}\n"


HEAVY_MODULES_AFTER = """\
import sys
from skdam._cli import main
try:
    main(sys.argv[1:])
except SystemExit:
    pass
print(*sorted(name for name in ("torch", "sklearn") if name in sys.modules), file=sys.stderr)
"""


@pytest.mark.parametrize("arguments", [["--help"], ["--version"], ["transform", "--help"]])
def test_help_and_version_import_neither_torch_nor_sklearn(arguments):
    # torch alone takes seconds to import; a user asking for help should not wait.
    result = subprocess.run(
        [sys.executable, "-c", HEAVY_MODULES_AFTER, *arguments], capture_output=True, text=True, timeout=120,
        env=_env_for(skdam),
    )
    assert result.returncode == 0, result.stderr
    assert "skdam" in result.stdout
    assert result.stderr.splitlines()[-1:] == [""], result.stderr


def test_demo_prints_both_tables_and_saves_its_figure(tmp_path, monkeypatch):
    # The demo's own estimators, made small: this checks what it prints and draws.
    pytest.importorskip("matplotlib")
    from functools import partial

    import skdam._demo as demo

    monkeypatch.setattr(demo, "DAMAutoencoder", partial(DAMAutoencoder, hidden_layer_sizes=(8,), max_iter=4))
    monkeypatch.setattr(demo, "DAMEmbedding", partial(DAMEmbedding, max_iter=4))
    monkeypatch.setattr(demo, "SWISS_ROLL_SAMPLES", 200)
    lines = []
    rows, curved_rows, png_paths = demo.run_demo(output_dir=tmp_path, stream=lines.append)
    text = "\n".join(lines)
    assert [row["estimator"] for row in rows] == [row["estimator"] for row in curved_rows] == ["DAMEmbedding", "DAMAutoencoder"]
    assert "digits:" in text and "Swiss roll: 200 points" in text and text.count("\nPCA ") == 1
    for row in curved_rows:
        assert 1 <= row["n_components"] <= 3 and row["unexplained_variance"].shape == (3,)
    assert curved_rows[0]["unexplained_variance"][-1] == pytest.approx(0.0, abs=1e-5)  # the linear fit measures every count
    assert png_paths == [tmp_path / "skdam-demo.png", tmp_path / "skdam-demo-swiss-roll.png"]
    assert all(path.stat().st_size > 0 for path in png_paths)
