"""Missing values (NaN) through both estimators: fit, embed, complete, score."""

import pickle
import warnings

import numpy as np
import pytest
from scipy.stats import multivariate_normal

from skdam import DAMAutoencoder, DAMEmbedding
from skdam.datasets import make_linear_latent

MISSING_SHARE = 0.3


def _with_holes(X, share=MISSING_SHARE, seed=0):
    """``X`` with ``share`` of its entries missing completely at random, and the mask."""
    holes = np.random.RandomState(seed).uniform(size=X.shape) < share
    return np.where(holes, np.nan, X), holes


@pytest.fixture(scope="module")
def rank_five():
    """Exactly 5 dimensions in 30, 30 % of the entries missing."""
    X = make_linear_latent(600, 5, 30, random_state=0)[0]
    X_missing, holes = _with_holes(X)
    return X, X_missing, holes


@pytest.fixture(scope="module")
def embedding(rank_five):
    return DAMEmbedding(random_state=0).fit(rank_five[1])


@pytest.fixture(scope="module")
def autoencoder(rank_five):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # max_iter is kept small on purpose
        return DAMAutoencoder(hidden_layer_sizes=(16,), max_iter=30, random_state=0).fit(rank_five[1][:300])


@pytest.fixture(params=["embedding", "autoencoder"])
def fitted(request):
    return request.getfixturevalue(request.param)


def test_the_rank_is_found_and_holes_are_filled_far_better_than_by_the_mean(embedding, rank_five):
    X, X_missing, holes = rank_five
    assert embedding.n_components_ == 5
    completed = embedding.complete(X_missing)
    model_error = np.sqrt(np.mean(np.square(completed[holes] - X[holes])))
    mean_error = np.sqrt(np.mean(np.square(np.nanmean(X_missing, axis=0)[np.nonzero(holes)[1]] - X[holes])))
    assert model_error < 0.1 * mean_error


def test_the_noise_is_the_complete_data_estimate_however_many_entries_are_missing():
    # Rows with 60 % of 30 entries missing keep 12 to fit 5 codes: their residuals
    # understate the noise unless the degrees of freedom the codes take are counted.
    rng = np.random.RandomState(0)
    X = rng.normal(size=(2000, 5)) @ rng.normal(size=(5, 30)) + 0.3 * rng.normal(size=(2000, 30))
    complete = DAMEmbedding(n_components=5, random_state=0).fit(X)
    with_holes = DAMEmbedding(n_components=5, random_state=0).fit(_with_holes(X, share=0.6)[0])
    assert with_holes.noise_variance_ == pytest.approx(complete.noise_variance_, rel=0.05)


def test_the_autoencoder_fills_holes_better_than_the_mean(autoencoder, rank_five):
    X, X_missing, holes = (array[:300] for array in rank_five)
    completed = autoencoder.complete(X_missing)
    model_error = np.sqrt(np.mean(np.square(completed[holes] - X[holes])))
    mean_error = np.sqrt(np.mean(np.square(np.nanmean(X_missing, axis=0)[np.nonzero(holes)[1]] - X[holes])))
    assert model_error < 0.5 * mean_error


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_complete_keeps_every_observed_entry_bit_for_bit(fitted, rank_five, dtype):
    X_missing = rank_five[1][:100].astype(dtype)
    completed = fitted.complete(X_missing)
    observed = ~np.isnan(X_missing)
    assert completed.dtype == dtype and np.isfinite(completed).all()
    assert np.array_equal(completed[observed], X_missing[observed])
    assert np.array_equal(fitted.complete(rank_five[0][:5]), rank_five[0][:5])  # nothing to fill


def test_every_method_takes_nan(fitted, rank_five):
    X_missing = rank_five[1][:50]
    embedding = fitted.transform(X_missing)
    assert embedding.shape == (50, fitted.n_components_) and np.isfinite(embedding).all()
    assert np.isfinite(fitted.inverse_transform(embedding)).all()
    assert np.isfinite(fitted.score_samples(X_missing)).all() and np.isfinite(fitted.score(X_missing))
    assert 0 < fitted.r2_score(X_missing) <= 1
    codes = embedding.copy()
    codes[0, 0] = np.nan  # an unknown code has no reconstruction
    reconstruction = fitted.inverse_transform(codes)
    assert np.isnan(reconstruction[0]).all() and np.isfinite(reconstruction[1:]).all()


@pytest.mark.parametrize("Estimator", [DAMEmbedding, DAMAutoencoder])
def test_partial_fit_takes_chunks_with_holes(Estimator, rank_five):
    X_missing = rank_five[1]
    settings = {"hidden_layer_sizes": (8,)} if Estimator is DAMAutoencoder else {}
    model = Estimator(random_state=0, **settings).partial_fit(X_missing[:200]).partial_fit(X_missing[200:400])
    assert np.isfinite(model.transform(X_missing[400:])).all()
    assert np.isfinite(model.loss_curve_).all()


def test_complete_rows_get_the_projection_whatever_rows_share_their_batch(embedding, rank_five):
    X, X_missing, _ = rank_five
    mixed = np.vstack([X[:5], X_missing[:5]])
    np.testing.assert_array_equal(embedding.transform(mixed)[:5], embedding.transform(X[:5]))
    np.testing.assert_allclose(embedding.transform(X[:5]), (X[:5] - embedding.mean_) @ embedding.components_.T, atol=1e-6)
    np.testing.assert_array_equal(embedding.score_samples(mixed)[:5], embedding.score_samples(X[:5]))


def test_a_row_with_one_hole_gets_nearly_the_projection(embedding, rank_five):
    # The ridge is the noise-to-signal ratio of each component: tiny on this data.
    X = rank_five[0][:20].copy()
    projection = embedding.transform(X)
    X[:, 3] = np.nan
    np.testing.assert_allclose(embedding.transform(X), projection, rtol=0.02, atol=0.02 * np.abs(projection).max())


def test_a_row_with_nothing_observed_is_refused_at_fit_and_named():
    X = make_linear_latent(100, 2, 6, random_state=0)[0]
    X[[7, 42]] = np.nan
    for Estimator in (DAMEmbedding, DAMAutoencoder):
        with pytest.raises(ValueError, match=r"row\(s\) 7, 42 of X are all NaN"):
            Estimator(max_iter=2).fit(X)
        with pytest.raises(ValueError, match=r"row\(s\) 7, 42 of X are all NaN"):
            Estimator(max_iter=2).partial_fit(X)
    X = make_linear_latent(100, 2, 6, random_state=0)[0]
    X[:, 2] = np.nan
    with pytest.raises(ValueError, match=r"column\(s\) 2 of X are all NaN"):
        DAMEmbedding(max_iter=2).fit(X)


def test_a_row_with_nothing_observed_gets_the_code_of_the_mean_row(fitted):
    empty = np.full((2, fitted.n_features_in_), np.nan)
    embedding = fitted.transform(empty)
    assert np.isfinite(embedding).all() and np.isfinite(fitted.complete(empty)).all()
    assert np.isfinite(fitted.score_samples(empty)).all()


def test_the_linear_model_maps_an_empty_row_to_the_mean(embedding):
    empty = np.full((1, embedding.n_features_in_), np.nan)
    np.testing.assert_array_equal(embedding.transform(empty), np.zeros((1, embedding.n_components_)))
    np.testing.assert_allclose(embedding.complete(empty)[0], embedding.mean_)
    assert embedding.score_samples(empty)[0] == pytest.approx(0.0, abs=1e-9)  # the density of nothing observed


@pytest.mark.parametrize("method", ["fit", "transform", "complete", "score"])
def test_infinity_is_still_refused(embedding, rank_five, method):
    X = rank_five[1][:50].copy()
    X[3, 4] = np.inf
    target = DAMEmbedding(max_iter=2) if method == "fit" else embedding
    with pytest.raises(ValueError, match="infinity"):
        getattr(target, method)(X)


def test_score_is_the_gaussian_marginal_of_the_observed_entries(embedding, rank_five):
    X_missing = rank_five[1][:6]
    covariance = embedding.get_covariance()
    expected = []
    for row in X_missing:
        observed = ~np.isnan(row)
        expected.append(
            multivariate_normal(embedding.mean_[observed], covariance[np.ix_(observed, observed)]).logpdf(row[observed])
        )
    np.testing.assert_allclose(embedding.score_samples(X_missing), expected, rtol=1e-8)


def test_the_marginal_on_complete_rows_is_the_full_likelihood(embedding, rank_five):
    from skdam._pca_model import ppca_incomplete_log_likelihood

    X = rank_five[0][:6]
    marginal = ppca_incomplete_log_likelihood(
        X, embedding.mean_, embedding.components_, embedding.explained_variance_, embedding.noise_variance_
    )
    np.testing.assert_allclose(marginal, embedding.score_samples(X), rtol=1e-8)


def test_the_autoencoder_gives_complete_rows_the_same_results_beside_rows_with_holes(autoencoder, rank_five):
    X, X_missing, _ = rank_five
    mixed = np.vstack([X[:5], X_missing[:5]])
    # Equal up to float32 rounding: a batch of another shape may take other matrix
    # kernels (on an AMD EPYC they differ in the last bit, on a Xeon they do not).
    np.testing.assert_allclose(autoencoder.transform(mixed)[:5], autoencoder.transform(X[:5]), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(autoencoder.score_samples(mixed)[:5], autoencoder.score_samples(X[:5]), rtol=1e-5)


def test_a_model_fitted_on_complete_data_embeds_rows_with_holes(rank_five):
    X, X_missing, _ = rank_five
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = DAMAutoencoder(hidden_layer_sizes=(8,), max_iter=10, random_state=0).fit(X[:200])
    assert not model.module_.missing_indicator
    assert np.isfinite(model.transform(X_missing[:20])).all()
    assert np.isfinite(model.complete(X_missing[:20])).all()


def test_a_model_fitted_with_holes_pickles(fitted, rank_five):
    X_missing = rank_five[1][:40]
    restored = pickle.loads(pickle.dumps(fitted))
    np.testing.assert_array_equal(restored.complete(X_missing), fitted.complete(X_missing))
    np.testing.assert_array_equal(restored.score_samples(X_missing), fitted.score_samples(X_missing))


def test_the_autoencoder_fitted_with_holes_reads_the_missing_mask(autoencoder):
    assert autoencoder.module_.missing_indicator
    first_layer = autoencoder.module_.encoder_residual[0]
    assert first_layer.in_features == 2 * autoencoder.n_features_in_


def test_only_the_autoencoder_with_holes_hides_entries_while_training(rank_five):
    X, X_missing, _ = rank_five
    autoencoder = DAMAutoencoder(hidden_layer_sizes=(8,), random_state=0)
    assert autoencoder.partial_fit(X_missing[:100])._trainer.settings.hidden_share == 0.5
    assert autoencoder.partial_fit(X[100:200])._trainer.settings.hidden_share == 0.0
    assert DAMEmbedding(random_state=0).partial_fit(X_missing[:100])._trainer.settings.hidden_share == 0.0


def test_the_linear_code_of_a_row_with_holes_is_on_average_the_complete_rows():
    torch = pytest.importorskip("torch")
    from skdam.nn import GatedAutoencoder

    torch.manual_seed(0)
    module = GatedAutoencoder(n_features=40, bottleneck_width=3)
    row = torch.randn(1, 40)
    with torch.no_grad():
        complete = module.encode_incomplete_normalized(row)[0]
        rows = row.repeat(20000, 1)
        holed = torch.where(torch.rand(rows.shape, generator=torch.Generator().manual_seed(1)) < 0.3, torch.nan, rows)
        codes = module.encode_incomplete_normalized(holed)
    standard_error = codes.std(dim=0) / codes.shape[0] ** 0.5
    assert ((codes.mean(dim=0) - complete).abs() < 5 * standard_error).all()
    # Zero-filled rows would average 0.7 times the complete row's code: far outside.
    assert float((0.3 * complete).norm()) > 5 * float(standard_error.norm())


def test_each_training_row_hides_its_own_share_of_entries():
    torch = pytest.importorskip("torch")
    from skdam._training import TrainingSettings, hidden_entries

    base = dict(alpha=0.01, learning_rate=1e-3, gate_learning_rate=1e-2, min_open=1)
    settings = TrainingSettings(**base, batch_size=2000, missing_values=True, hidden_share=0.5)
    shares = hidden_entries(torch.zeros(2000, 400), settings, torch.Generator().manual_seed(0)).float().mean(dim=1)
    assert abs(float(shares.mean()) - 0.5) < 0.02  # the mean share asked for
    assert float(shares.min()) < 0.05 and float(shares.max()) > 0.95  # rows of every completeness
    without_holes = TrainingSettings(**base, batch_size=10, missing_values=False, hidden_share=0.5)
    assert hidden_entries(torch.zeros(10, 4), without_holes, torch.Generator()) is None
