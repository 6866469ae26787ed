"""GateDisplay and ReconstructionDisplay draw real PNGs with the values of the fit."""

import subprocess
import sys

import numpy as np
import pytest
from sklearn.decomposition import PCA
from sklearn.exceptions import NotFittedError

from skdam import DAMAutoencoder, DAMEmbedding, GateDisplay, ReconstructionDisplay, reconstruction_curve
from skdam._reconstruction_curve import _default_dimensions
from skdam.datasets import make_linear_latent

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")
import matplotlib.image  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def rank_three_data():
    """Exactly 3 dimensions in 12."""
    return make_linear_latent(300, 3, 12, random_state=0)[0]


@pytest.fixture(scope="module")
def fitted_embedding(rank_three_data):
    return DAMEmbedding(random_state=0).fit(rank_three_data)


@pytest.fixture(scope="module")
def fitted_autoencoder(rank_three_data):
    return DAMAutoencoder(hidden_layer_sizes=(16,), max_iter=40, random_state=0).fit(rank_three_data)


def _save_and_read(figure, path):
    figure.savefig(path, dpi=80)
    image = matplotlib.image.imread(path)
    assert image.ndim == 3 and image.shape[0] > 100 and image.shape[1] > 100
    # Not a blank canvas: several distinct colours were drawn.
    assert np.unique(image.reshape(-1, image.shape[2]), axis=0).shape[0] > 10
    return image


def test_gate_display_draws_gate_values_and_curves(fitted_embedding, tmp_path):
    display = GateDisplay.from_estimator(fitted_embedding)
    estimator = fitted_embedding
    assert estimator.n_components_ == 3

    is_open = estimator.gate_values_ > 0
    heights = [patch.get_height() for patch in display.open_bars_.patches]
    np.testing.assert_allclose(heights, estimator.gate_values_[is_open])
    assert [patch.get_x() + patch.get_width() / 2 for patch in display.open_bars_.patches] == pytest.approx(
        np.flatnonzero(is_open)
    )
    np.testing.assert_array_equal(display.closed_markers_.get_xdata(), np.flatnonzero(~is_open))

    np.testing.assert_array_equal(display.n_components_line_.get_ydata(), estimator.n_components_curve_)
    np.testing.assert_array_equal(display.n_components_line_.get_xdata(), np.arange(1, estimator.n_iter_ + 1))
    np.testing.assert_allclose(display.reconstruction_error_line_.get_ydata(), estimator.reconstruction_error_curve_)
    assert display.error_ax_.get_shared_x_axes().joined(display.error_ax_, display.epochs_ax_)

    assert display.ax_.shape == (2,)
    assert display.ax_[0] is display.gates_ax_ and display.ax_[1] is display.epochs_ax_
    assert display.gates_ax_.get_title() == "DAMEmbedding: 3 of 12 gates open"
    assert display.figure_ is display.gates_ax_.figure
    _save_and_read(display.figure_, tmp_path / "gate_display.png")


def test_gate_display_draws_closed_gates_unlike_the_weakest_open_one():
    # 0.022 is the weakest open gate of a digits fit: as tall as a stub would be.
    display = GateDisplay(
        gate_values=np.array([0.0, 0.0, 0.022, 0.5, 1.0]),
        n_components_curve=[5, 3],
        reconstruction_error_curve=[0.2, 0.1],
    ).plot(kind="gates")
    legend_labels = [text.get_text() for text in display.gates_ax_.get_legend().get_texts()]
    assert legend_labels == ["open", "closed"]
    handles, labels = display.gates_ax_.get_legend_handles_labels()
    open_bars, closed_markers = (handles[labels.index(label)] for label in legend_labels)
    assert [patch.get_height() for patch in open_bars.patches] == pytest.approx([0.022, 0.5, 1.0])
    # Closed gates are markers at exactly 0, not bars, in another colour, and the
    # y-axis starts below 0 so that the markers are drawn whole.
    assert isinstance(closed_markers, matplotlib.lines.Line2D)
    assert closed_markers.get_marker() not in (None, "None", "", " ")
    np.testing.assert_array_equal(closed_markers.get_xdata(), [0, 1])
    np.testing.assert_array_equal(closed_markers.get_ydata(), [0, 0])
    assert matplotlib.colors.to_rgba(closed_markers.get_color()) != open_bars.patches[0].get_facecolor()
    assert display.gates_ax_.get_ylim()[0] < 0


@pytest.mark.parametrize("kind", ["gates", "epochs"])
def test_gate_display_draws_one_panel_on_a_given_axes(fitted_embedding, kind):
    figure, ax = plt.subplots()
    display = GateDisplay.from_estimator(fitted_embedding, kind=kind, ax=ax, name="mine")
    assert display.ax_ is ax and display.figure_ is figure
    if kind == "gates":
        assert display.epochs_ax_ is None and display.n_components_line_ is None
        assert display.gates_ax_.get_title().startswith("mine: ")
    else:
        assert display.gates_ax_ is None and display.open_bars_ is None
        assert display.epochs_ax_ is ax


def test_gate_display_draws_an_autoencoder_on_a_row_of_a_grid(fitted_autoencoder, tmp_path):
    autoencoder = fitted_autoencoder
    figure, axes = plt.subplots(2, 2, figsize=(10, 7))
    display = GateDisplay.from_estimator(autoencoder, ax=axes[1])
    assert display.gates_ax_ is axes[1, 0] and display.epochs_ax_ is axes[1, 1]
    assert len(display.open_bars_.patches) == autoencoder.n_components_
    _save_and_read(figure, tmp_path / "gate_grid.png")


def test_gate_display_checks_its_arguments(fitted_embedding):
    with pytest.raises(NotFittedError):
        GateDisplay.from_estimator(DAMEmbedding())
    with pytest.raises(ValueError, match="kind must be one of"):
        GateDisplay.from_estimator(fitted_embedding, kind="bars")
    _, ax = plt.subplots()
    with pytest.raises(ValueError, match='kind="both" draws on 2 Axes, got 1'):
        GateDisplay.from_estimator(fitted_embedding, ax=ax)


def test_reconstruction_curve_matches_pca_for_the_linear_estimator(rank_three_data, monkeypatch):
    # The numbers need no matplotlib.
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    X = rank_three_data
    estimator = DAMEmbedding(random_state=0)
    n_components, errors, pca_errors = reconstruction_curve(estimator, X, n_components=[5, 2, 3])
    assert not hasattr(estimator, "n_components_")  # refits clones, never the estimator
    np.testing.assert_array_equal(n_components, [2, 3, 5])

    for k, pca_error in zip(n_components, pca_errors):
        pca = PCA(n_components=int(k)).fit(X)
        residual = X - pca.inverse_transform(pca.transform(X))
        expected = np.square(residual).sum() / np.square(X - X.mean(axis=0)).sum()
        assert pca_error == pytest.approx(expected, abs=1e-9)
    # The linear estimator at a given rank is PCA's least-squares optimum.
    np.testing.assert_allclose(errors, pca_errors, atol=1e-4)
    assert errors[0] > 0.1  # two of three dimensions lose a lot
    assert errors[1] < 1e-4


def test_reconstruction_display_stars_the_fitted_estimators_dimension(fitted_embedding, tmp_path):
    # Five dimensions in the data shown, three in the data fitted: the star stays at
    # the fitted estimator's 3, with its error on the data shown; only the curve refits.
    X_other = make_linear_latent(300, 5, 12, random_state=1)[0]
    gate_values = fitted_embedding.gate_values_.copy()
    display = ReconstructionDisplay.from_estimator(fitted_embedding, X_other, n_components=[2, 5])
    assert fitted_embedding.n_components_ == 3
    np.testing.assert_array_equal(fitted_embedding.gate_values_, gate_values)

    assert display.found_n_components == 3
    assert display.found_reconstruction_error == pytest.approx(1 - fitted_embedding.r2_score(X_other))
    assert display.found_reconstruction_error > 0.1  # three of five dimensions lose a lot
    assert display.found_marker_.get_xdata().tolist() == [3]
    assert display.found_marker_.get_ydata().tolist() == [display.found_reconstruction_error]
    np.testing.assert_array_equal(display.n_components, [2, 5])
    assert display.reconstruction_error[1] < 1e-4  # the refit at 5 dimensions is exact

    np.testing.assert_array_equal(display.line_.get_xdata(), [2, 5])
    np.testing.assert_allclose(display.line_.get_ydata(), display.reconstruction_error)
    np.testing.assert_allclose(display.pca_line_.get_ydata(), display.pca_reconstruction_error)
    # The fit's own curve is drawn beside the refits, as measured on its training data.
    np.testing.assert_array_equal(display.measured_line_.get_ydata(), fitted_embedding.unexplained_variance_)
    # The legend says which points are refits, which the fit measured, and which is
    # the estimator as given.
    labels = [text.get_text() for text in display.error_ax_.get_legend().get_texts()]
    assert labels == [
        "PCA",
        "DAMEmbedding as measured by the fit",
        "DAMEmbedding refitted at each dimension",
        "DAMEmbedding as fitted: 3 dimensions",
    ]
    _save_and_read(display.figure_, tmp_path / "reconstruction_display.png")


def test_reconstruction_display_with_an_autoencoder(fitted_autoencoder, rank_three_data, tmp_path):
    estimator = fitted_autoencoder
    display = ReconstructionDisplay.from_estimator(estimator, rank_three_data, n_components=[2, 4], name="AE")
    assert display.line_.get_label() == "AE refitted at each dimension"
    assert display.found_n_components == estimator.n_components_
    assert np.all(display.reconstruction_error >= 0)
    _save_and_read(display.figure_, tmp_path / "reconstruction_autoencoder.png")


@pytest.fixture
def refits_forbidden(monkeypatch):
    """Any fit, clone or refit curve raises: what is drawn comes from the fitted attributes."""

    def refuse(*args, **kwargs):
        raise AssertionError("refitted")

    monkeypatch.setattr("skdam._reconstruction_curve.clone", refuse)
    monkeypatch.setattr("skdam._reconstruction_display.reconstruction_curve", refuse)
    monkeypatch.setattr(DAMEmbedding, "fit", refuse)
    monkeypatch.setattr(DAMAutoencoder, "fit", refuse)


def test_reconstruction_display_without_x_draws_the_measured_curve_and_the_rule(
    fitted_embedding, refits_forbidden, tmp_path
):
    estimator = fitted_embedding
    display = ReconstructionDisplay.from_estimator(estimator)
    errors = estimator.unexplained_variance_
    # The linear fit knows every count: PCA's closed form, 0 to max_components_.
    np.testing.assert_array_equal(display.measured_line_.get_xdata(), np.arange(estimator.max_components_ + 1))
    np.testing.assert_array_equal(display.measured_line_.get_ydata(), errors)
    assert display.line_ is None and display.pca_line_ is None and display.n_components is None
    assert display.found_marker_.get_xdata().tolist() == [3]
    assert display.found_marker_.get_ydata().tolist() == [errors[3]]

    # Gains: e(k-1) - e(k), kept in blue above alpha, dropped in grey below it.
    gains = errors[:-1] - errors[1:]
    bars = display.gain_bars_.patches
    drawn_units = [round(bar.get_x() + bar.get_width() / 2) for bar in bars]
    np.testing.assert_array_equal(drawn_units, np.flatnonzero(gains > 0) + 1)
    np.testing.assert_allclose([bar.get_height() for bar in bars], gains[gains > 0])
    no_gain = np.flatnonzero(gains <= 0) + 1
    if no_gain.size:
        np.testing.assert_array_equal(display.no_gain_markers_.get_xdata(), no_gain)
    else:
        assert display.no_gain_markers_ is None
    assert display.alpha_line_.get_ydata()[0] == estimator.alpha
    kept = [matplotlib.colors.same_color(bar.get_facecolor(), "tab:blue") for bar in bars]
    assert kept == [unit <= 3 for unit in drawn_units]
    # The rule read off the panel gives the count, here and for another alpha.
    assert int((gains > estimator.alpha).sum()) == estimator.n_components_ == 3
    assert display.gains_ax_.get_yscale() == "log"
    _save_and_read(display.figure_, tmp_path / "measured_curve.png")


def test_reconstruction_display_draws_what_the_autoencoder_measured(fitted_autoencoder, refits_forbidden):
    estimator = fitted_autoencoder
    errors = estimator.unexplained_variance_
    display = ReconstructionDisplay.from_estimator(estimator, kind="error", name="AE")
    # Only the counts it measured: NaN (not measured) and inf (no budget left to
    # adapt) have no point.
    measured = np.flatnonzero(np.isfinite(errors))
    assert 0 in measured and estimator.n_components_ in measured
    assert measured.size < errors.size  # an autoencoder measures around its answer
    # The line breaks (a NaN) between counts that are not consecutive.
    x, y = display.measured_line_.get_xdata(), display.measured_line_.get_ydata()
    np.testing.assert_array_equal(x[np.isfinite(x)], measured)
    np.testing.assert_array_equal(y[np.isfinite(y)], errors[measured])
    assert np.isnan(x).sum() == np.sum(np.diff(measured) > 1)
    assert display.found_reconstruction_error == errors[estimator.n_components_]
    assert display.ax_ is display.error_ax_ and display.gains_ax_ is None
    assert display.measured_line_.get_label() == "AE as measured by the fit"


def test_reconstruction_display_draws_gains_only_between_measured_neighbours():
    # Measured at 0, 3, 4 and 5: unit 3's gain needs e(2), unknown; unit 5 lost.
    display = ReconstructionDisplay(
        measured_n_components=np.array([0, 3, 4, 5]),
        measured_reconstruction_error=np.array([1.0, 0.2, 0.05, 0.06]),
        alpha=0.01,
        found_n_components=4,
        found_reconstruction_error=0.05,
    ).plot()
    x, y = display.measured_line_.get_xdata(), display.measured_line_.get_ydata()
    np.testing.assert_array_equal(x, [0, np.nan, 3, 4, 5])  # no line across 1 and 2
    np.testing.assert_array_equal(y, [1.0, np.nan, 0.2, 0.05, 0.06])
    assert [round(bar.get_x() + bar.get_width() / 2) for bar in display.gain_bars_.patches] == [4]
    assert display.gain_bars_.patches[0].get_height() == pytest.approx(0.15)
    np.testing.assert_array_equal(display.no_gain_markers_.get_xdata(), [5])
    labels = [text.get_text() for text in display.gains_ax_.get_legend().get_texts()]
    assert labels == ["alpha = 0.01", "kept", "dropped", "no gain"]


def test_reconstruction_display_keeps_its_panels_wide_in_a_constrained_layout(tmp_path):
    # Every measured unit gained: no "no gain" crosses, and nothing that would
    # collapse the panels when the layout is computed.
    figure, axes = plt.subplots(1, 2, figsize=(11, 4), layout="constrained")
    display = ReconstructionDisplay(
        measured_n_components=np.array([0, 1, 2, 3]),
        measured_reconstruction_error=np.array([1.0, 0.08, 0.002, 0.0003]),
        alpha=0.01,
        found_n_components=2,
        found_reconstruction_error=0.002,
    ).plot(ax=axes)
    _save_and_read(figure, tmp_path / "constrained.png")
    assert all(ax.get_position().width > 0.3 for ax in axes)
    assert display.no_gain_markers_ is None


def test_reconstruction_display_refuses_a_curve_it_cannot_draw(fitted_embedding, rank_three_data):
    with pytest.raises(ValueError, match="pass X too"):
        ReconstructionDisplay.from_estimator(fitted_embedding, n_components=[2])
    streamed = DAMEmbedding(max_components=4, random_state=0).partial_fit(rank_three_data)
    with pytest.raises(ValueError, match="no unit count but 0.*pass X"):
        ReconstructionDisplay.from_estimator(streamed)
    with pytest.raises(ValueError, match="kind must be one of"):
        ReconstructionDisplay.from_estimator(fitted_embedding, kind="gates")
    _, ax = plt.subplots()
    with pytest.raises(ValueError, match='kind="both" draws on 2 Axes, got 1'):
        ReconstructionDisplay.from_estimator(fitted_embedding, ax=ax)


def test_reconstruction_display_checks_its_arguments_before_fitting(fitted_embedding, rank_three_data):
    with pytest.raises(NotFittedError):
        ReconstructionDisplay.from_estimator(DAMEmbedding(), rank_three_data, n_components=[2])
    for bad in ([0, 2], [2.5], [13], []):
        with pytest.raises(ValueError, match="n_components must"):
            ReconstructionDisplay.from_estimator(fitted_embedding, rank_three_data, n_components=bad)
        with pytest.raises(ValueError, match="n_components must"):
            reconstruction_curve(DAMEmbedding(max_iter=1), rank_three_data, n_components=bad)
    with pytest.raises(ValueError, match=r"\[1, 4\]"):
        reconstruction_curve(DAMEmbedding(max_components=4), rank_three_data, n_components=[5])


def test_default_dimensions_surround_the_found_one():
    dimensions = _default_dimensions(4, largest=30)
    assert {3, 4, 5} <= set(dimensions)
    assert min(dimensions) == 1 and max(dimensions) == 8
    assert len(dimensions) <= 8
    assert _default_dimensions(1, largest=2) == [1, 2]


def test_plot_without_matplotlib_says_what_to_install(fitted_embedding, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    with pytest.raises(ImportError, match=r"GateDisplay.from_estimator requires matplotlib.*pip install"):
        GateDisplay.from_estimator(fitted_embedding)


def test_importing_skdam_does_not_import_matplotlib():
    code = "import sys, skdam; print('matplotlib' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"
