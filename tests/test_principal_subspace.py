"""Training on wide data through its leading principal axes (skdam._principal_subspace)."""

import numpy as np
import pytest
import torch

from skdam import DAMAutoencoder
from skdam._principal_subspace import PrincipalSubspace, training_axes
from skdam._statistics import bottleneck_axes, linear_errors
from skdam._training import EpochRecord, reconstruction_error
from skdam.datasets import make_mlp_latent
from skdam.nn import GatedAutoencoder


def _axes(X, width, n_basis):
    return bottleneck_axes(
        X, np.random.RandomState(0), max_components=width, min_open=1, alpha=0.01, incremental=False,
        min_open_name="min_components", basis_width=lambda n_features, bottleneck_width: n_basis,
    )  # fmt: skip


@pytest.fixture(scope="module")
def wide_rows():
    rng = np.random.RandomState(0)
    X = rng.standard_normal((300, 6)) @ rng.standard_normal((6, 60)) + 0.3 * rng.standard_normal((300, 60))
    return (X * 5.0 + 2.0).astype(np.float32)


def test_training_axes_are_two_per_unit_where_fewer_than_the_features():
    assert training_axes("auto", 784, 64) == 128
    assert training_axes("auto", 128, 64) is None  # not fewer than the features
    assert training_axes(10, 784, 64) == 64  # at least the bottleneck's width
    assert training_axes(300, 784, 64) == 300
    assert training_axes(None, 784, 64) is None


def test_the_basis_is_the_leading_axes_of_complete_data_only(wide_rows):
    axes = _axes(wide_rows, 8, 20)
    assert axes.basis.shape == (20, 60)
    np.testing.assert_allclose(axes.basis @ axes.basis.T, np.eye(20), atol=1e-10)
    np.testing.assert_allclose(axes.basis[:8], axes.directions)
    holed = wide_rows.copy()
    holed[0, 0] = np.nan
    assert bottleneck_axes(
        holed, np.random.RandomState(0), max_components=8, min_open=1, alpha=0.01, incremental=False,
        min_open_name="min_components", missing_values=True, basis_width=lambda n_features, width: 20,
    ).basis is None  # fmt: skip


def test_errors_within_the_span_plus_the_share_outside_are_the_whole_errors(wide_rows):
    axes = _axes(wide_rows, 8, 20)
    subspace = PrincipalSubspace(axes, wide_rows)
    within = subspace.axes_within(axes)
    # PCA's errors within the span are the whole ones less what lies outside it.
    np.testing.assert_allclose(linear_errors(within), linear_errors(axes) - subspace.share_outside, atol=1e-12)
    centred = wide_rows.astype(np.float64) - wide_rows.mean(axis=0, dtype=np.float64)
    eigenvalues = np.linalg.eigvalsh(centred.T @ centred)[::-1]
    assert subspace.share_outside == pytest.approx(eigenvalues[20:].sum() / eigenvalues.sum(), rel=1e-4)
    network = GatedAutoencoder(20, 8, (16,), "tanh").reset_parameters(torch.Generator().manual_seed(0))
    network.set_normalization(within.mean, within.spread)
    network.set_linear_path(within.directions)
    rows = torch.as_tensor(subspace.rows)
    # The network is PCA's projection on its 8 units: the projection's whole error.
    error = reconstruction_error(network, rows, 64) + subspace.share_outside
    assert error == pytest.approx(linear_errors(axes)[7], rel=1e-4)


def test_a_folded_network_reads_and_writes_every_feature_as_it_trained(wide_rows):
    axes = _axes(wide_rows, 8, 20)
    subspace = PrincipalSubspace(axes, wide_rows[:250], wide_rows[250:])
    within = subspace.axes_within(axes)
    generator = torch.Generator().manual_seed(1)
    network = GatedAutoencoder(20, 8, (16, 12), "tanh").reset_parameters(generator)
    with torch.no_grad():  # every layer drawn, the last ones included, and a gate partly closed
        for parameter in network.parameters():
            if parameter is not network.gate.beta:
                parameter.copy_(0.3 * torch.randn(parameter.shape, generator=generator))
    network.set_normalization(within.mean, within.spread)
    network.set_open_count(5)
    folded = subspace.fold(network)
    assert folded.n_features == 60 and folded.gate.n_open() == 5
    X = torch.as_tensor(wide_rows)
    rows = torch.as_tensor(np.concatenate([subspace.rows, subspace.validation_rows]))
    with torch.no_grad():
        torch.testing.assert_close(folded.encode(X), network.encode(rows), rtol=1e-4, atol=1e-4)
        expected = network(rows).double() @ torch.as_tensor(subspace.basis) + torch.as_tensor(subspace.mean)
        torch.testing.assert_close(folded(X).double(), expected, rtol=1e-4, atol=1e-3)
    for part, outside in ((slice(0, 250), subspace.share_outside), (slice(250, 300), subspace.validation_share_outside)):
        whole = reconstruction_error(folded, X[part], 64)
        assert whole == pytest.approx(reconstruction_error(network, rows[part], 64) + outside, rel=1e-4)


@pytest.fixture(scope="module")
def wide_curve():
    """A 2-dimensional curved manifold in 150 dimensions, wider than two axes per unit of a bottleneck of
    64, with noise: the 22 axes left out hold 0.1 % of the variance."""
    X = make_mlp_latent(600, 2, 150, hidden_size=32, random_state=0)[0]
    return X + 0.1 * X.std() * np.random.RandomState(1).standard_normal(X.shape)


def test_the_autoencoder_trains_wide_data_through_its_leading_axes(wide_curve):
    through_axes = DAMAutoencoder(hidden_layer_sizes=(32,), early_stopping=False, random_state=0).fit(wide_curve)
    assert through_axes.input_axes_ == 2 * through_axes.max_components_ == 128
    assert through_axes.module_.n_features == 150
    assert through_axes.transform(wide_curve).shape == (600, through_axes.n_components_)
    # Every error is a share of the whole variance: judged on the training rows, the
    # count's entry is what the fitted network leaves of them.
    count = through_axes.n_components_
    assert through_axes.unexplained_variance_[count] == pytest.approx(1.0 - through_axes.r2_score(wide_curve), rel=1e-5)
    assert through_axes.unexplained_variance_[0] == 1.0
    on_features = DAMAutoencoder(hidden_layer_sizes=(32,), early_stopping=False, input_axes=None, random_state=0)
    on_features.fit(wide_curve)
    assert on_features.input_axes_ is None
    assert through_axes.n_components_ == on_features.n_components_ == 2


def test_narrow_data_and_data_with_holes_train_on_their_features(curved_data):
    narrow = DAMAutoencoder(hidden_layer_sizes=(16,), max_iter=5, random_state=0)
    with pytest.warns(Warning):
        narrow.fit(curved_data)  # 12 features: fewer than two axes per unit
    assert narrow.input_axes_ is None
    rng = np.random.RandomState(0)
    holed = rng.standard_normal((200, 150))
    holed[rng.rand(*holed.shape) < 0.1] = np.nan
    with pytest.warns(Warning):
        with_holes = DAMAutoencoder(hidden_layer_sizes=(16,), max_components=8, max_iter=5, random_state=0).fit(holed)
    assert with_holes.input_axes_ is None


def test_records_become_shares_of_the_whole_variance(wide_rows):
    subspace = PrincipalSubspace(_axes(wide_rows, 8, 20), wide_rows[:250], wide_rows[250:])
    record = EpochRecord(epoch=3, loss=0.5, reconstruction_error=0.25, validation_error=0.3, n_open=4, beta=0.1, learning_rate=1e-3)
    whole = subspace.whole_record(record)
    assert whole.reconstruction_error == pytest.approx(0.25 + subspace.share_outside)
    assert whole.loss == pytest.approx(0.5 + subspace.share_outside)
    assert whole.validation_error == pytest.approx(0.3 + subspace.validation_share_outside)
    assert subspace.share_outside > 0.005 and subspace.validation_share_outside > 0.005
    assert (whole.epoch, whole.n_open, whole.beta) == (3, 4, 0.1)


def test_the_progress_shows_shares_of_the_whole_variance(wide_rows, capsys):
    with pytest.warns(Warning):
        fitted = DAMAutoencoder(hidden_layer_sizes=(16,), max_components=8, max_iter=4, verbose=1, random_state=0).fit(wide_rows)
    assert fitted.input_axes_ == 16
    shown = [float(line.split("reconstruction ")[1].split(",")[0]) for line in capsys.readouterr().out.splitlines() if "reconstruction " in line]
    np.testing.assert_allclose(shown, fitted.reconstruction_error_curve_, atol=1e-5)


def test_a_fit_through_the_axes_leaves_the_global_random_state_alone(wide_rows):
    torch_state, numpy_state = torch.get_rng_state(), np.random.get_state()
    with pytest.warns(Warning):
        fitted = DAMAutoencoder(hidden_layer_sizes=(4,), max_components=8, max_iter=3, random_state=0).fit(wide_rows)
    assert fitted.input_axes_ == 16
    assert torch.equal(torch.get_rng_state(), torch_state)
    assert all(np.array_equal(a, b) for a, b in zip(np.random.get_state(), numpy_state))
