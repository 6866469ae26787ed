"""Behaviour of DAMEmbedding and DAMAutoencoder on data whose answer is known."""

import pickle
import warnings

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.decomposition import PCA
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils._param_validation import InvalidParameterError
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skdam import DAMAutoencoder, DAMEmbedding
from skdam._runtime import training_matmul_dtype
from skdam.datasets import make_linear_latent


@pytest.fixture(scope="module")
def fitted_embedding(low_rank_data):
    return DAMEmbedding(random_state=0).fit(low_rank_data)


@pytest.fixture(scope="module")
def fitted_autoencoder(curved_data):
    return DAMAutoencoder(hidden_layer_sizes=(32,), random_state=0).fit(curved_data)


def test_embedding_finds_exact_rank(fitted_embedding, low_rank_data):
    assert fitted_embedding.n_components_ == 4
    assert fitted_embedding.transform(low_rank_data).shape == (600, 4)
    assert fitted_embedding.r2_score(low_rank_data) > 0.9999


def test_embedding_matches_pca_at_its_rank(fitted_embedding, low_rank_data):
    pca = PCA(n_components=4).fit(low_rank_data)
    # Same subspace: the projectors agree.
    np.testing.assert_allclose(
        fitted_embedding.components_.T @ fitted_embedding.components_, pca.components_.T @ pca.components_, atol=1e-4
    )
    np.testing.assert_allclose(fitted_embedding.explained_variance_ratio_, pca.explained_variance_ratio_, rtol=1e-3)
    np.testing.assert_allclose(fitted_embedding.mean_, pca.mean_)


def test_embedding_inverse_transform_is_affine_in_components(fitted_embedding, low_rank_data):
    embedding = fitted_embedding.transform(low_rank_data[:50])
    expected = embedding @ fitted_embedding.components_ + fitted_embedding.mean_
    np.testing.assert_allclose(fitted_embedding.inverse_transform(embedding), expected, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("Estimator", [DAMEmbedding, DAMAutoencoder])
@pytest.mark.parametrize("factor", [1e-3, 1e3])
def test_scaling_the_data_keeps_the_dimension(Estimator, factor, low_rank_data):
    # 600 rows: the autoencoder's count is judged on held-out rows (early_stopping),
    # as a network can thread 600 rows of 4 dimensions with 3 units.
    reference = Estimator(early_stopping=True, random_state=0).fit(low_rank_data)
    scaled = Estimator(early_stopping=True, random_state=0).fit(low_rank_data * factor)
    assert scaled.n_components_ == reference.n_components_ == 4
    if Estimator is DAMEmbedding:
        # The linear model is exactly equivariant: the embedding scales with X.
        np.testing.assert_allclose(
            scaled.transform(low_rank_data * factor) / factor, reference.transform(low_rank_data), rtol=1e-3, atol=1e-3
        )


def test_autoencoder_beats_pca_on_curved_data(fitted_autoencoder, curved_data):
    k = fitted_autoencoder.n_components_
    assert 2 <= k <= 4
    pca = PCA(n_components=k).fit(curved_data)
    pca_error = np.mean((pca.inverse_transform(pca.transform(curved_data)) - curved_data) ** 2)
    reconstruction = fitted_autoencoder.inverse_transform(fitted_autoencoder.transform(curved_data))
    assert np.mean((reconstruction - curved_data) ** 2) < pca_error


def test_a_fixed_count_below_the_found_one_reaches_what_the_curve_reports(fitted_autoencoder, curved_data):
    # Fixed below the count found, the fit takes the search's path and then its rejected
    # closure: it reaches exactly the curve's entry.
    k = fitted_autoencoder.n_components_ - 1
    fixed = DAMAutoencoder(n_components=k, hidden_layer_sizes=(32,), random_state=0).fit(curved_data)
    assert fixed.n_components_ == k >= 1
    assert fixed.unexplained_variance_[k] == pytest.approx(fitted_autoencoder.unexplained_variance_[k], rel=1e-6)
    assert 1 - fixed.r2_score(curved_data) == pytest.approx(fixed.unexplained_variance_[k], rel=1e-3, abs=1e-6)


@pytest.mark.parametrize("Estimator", [DAMEmbedding, DAMAutoencoder])
def test_integer_n_components_prunes_to_exactly_k(Estimator, low_rank_data):
    estimator = Estimator(n_components=2, random_state=0).fit(low_rank_data)
    assert estimator.n_components_ == 2
    assert estimator.transform(low_rank_data).shape == (600, 2)


@pytest.mark.parametrize("Estimator", [DAMEmbedding, DAMAutoencoder])
def test_huge_alpha_keeps_min_components_and_warns(Estimator, low_rank_data):
    with pytest.warns(UserWarning, match="lower alpha"):
        estimator = Estimator(alpha=50.0, min_components=2, random_state=0).fit(low_rank_data)
    assert estimator.n_components_ == 2


def test_max_iter_reached_warns(low_rank_data):
    with pytest.warns(ConvergenceWarning, match="max_iter=1"):
        DAMEmbedding(max_iter=1, random_state=0).fit(low_rank_data)


def test_a_count_the_budget_left_unchecked_warns():
    # A Swiss roll settles on its 3 linear coordinates; checking them takes adaptations of
    # 40 epochs' steps, which 30 epochs cannot pay for: the count stands, and says so.
    from sklearn.datasets import make_swiss_roll

    X = make_swiss_roll(500, random_state=0)[0]
    with pytest.warns(ConvergenceWarning, match="before its count was checked against the rule"):
        estimator = DAMAutoencoder(max_iter=30, random_state=0).fit(X)
    assert estimator.n_components_ == estimator.n_components_curve_[-1]


def test_a_fixed_count_the_budget_cannot_adapt_to_is_kept_and_warns():
    # Fixed at 1, the Swiss roll's 3 settled units must close to it; 30 epochs pay for
    # no adaptation, so they close without one, and the fit says so.
    from sklearn.datasets import make_swiss_roll

    X = make_swiss_roll(500, random_state=0)[0]
    with pytest.warns(ConvergenceWarning, match="before its network adapted to n_components=1"):
        estimator = DAMAutoencoder(n_components=1, max_iter=30, random_state=0).fit(X)
    assert estimator.n_components_ == 1 and estimator.transform(X).shape == (500, 1)


@pytest.mark.parametrize("Estimator", [DAMEmbedding, DAMAutoencoder])
def test_fit_transform_equals_fit_then_transform(Estimator, low_rank_data):
    first = Estimator(random_state=1).fit_transform(low_rank_data)
    second = Estimator(random_state=1).fit(low_rank_data).transform(low_rank_data)
    np.testing.assert_array_equal(first, second)


@pytest.mark.parametrize("name", ["fitted_embedding", "fitted_autoencoder"])
def test_rows_are_transformed_independently(name, request, low_rank_data, curved_data):
    estimator = request.getfixturevalue(name)
    X = low_rank_data if name == "fitted_embedding" else curved_data
    whole = estimator.transform(X)
    one_by_one = np.vstack([estimator.transform(X[i : i + 1]) for i in range(0, 40)])
    np.testing.assert_allclose(whole[:40], one_by_one, rtol=1e-5, atol=1e-6)


def test_clone_is_unfitted_with_same_params(fitted_autoencoder):
    cloned = clone(fitted_autoencoder)
    assert cloned.get_params() == fitted_autoencoder.get_params()
    assert not hasattr(cloned, "n_components_")


def test_fitted_attributes_are_consistent(fitted_autoencoder, curved_data):
    estimator = fitted_autoencoder
    assert estimator.n_iter_ == len(estimator.loss_curve_) == len(estimator.n_components_curve_)
    # The curves end on the model kept, or on a failed probe for one unit fewer or more.
    assert abs(estimator.n_components_curve_[-1] - estimator.n_components_) <= 1
    assert estimator.gate_values_.shape == (estimator.max_components_,)
    assert (estimator.gate_values_ > 0).sum() == estimator.n_components_
    assert estimator.stop_reason_ == "converged"
    assert next(estimator.module_.parameters()).device.type == "cpu"
    assert not estimator.module_.training
    names = estimator.get_feature_names_out()
    assert list(names) == [f"damautoencoder{i}" for i in range(estimator.n_components_)]


def test_r2_score_is_the_reconstruction_r2(fitted_autoencoder, curved_data):
    reconstruction = fitted_autoencoder.inverse_transform(fitted_autoencoder.transform(curved_data))
    sse = np.sum((curved_data - reconstruction) ** 2)
    sst = np.sum((curved_data - curved_data.mean(axis=0)) ** 2)
    # r2_score computes in float64; inverse_transform(transform(X)) in float32.
    assert fitted_autoencoder.r2_score(curved_data) == pytest.approx(1 - sse / sst, rel=1e-4)


@pytest.fixture(scope="module")
def noisy_low_rank():
    """Rank 5 in 40 dimensions, with isotropic noise a tenth of the signal's scale."""
    X = make_linear_latent(800, 5, 40, random_state=1)[0]
    return X + 0.1 * X.std() * np.random.RandomState(1).normal(size=X.shape)


def test_embedding_is_probabilistic_pca_at_its_dimension(noisy_low_rank):
    estimator = DAMEmbedding(random_state=0).fit(noisy_low_rank)
    pca = PCA(estimator.n_components_).fit(noisy_low_rank)
    assert estimator.n_components_ == 5
    assert estimator.n_samples_ == pca.n_samples_
    for name in ("explained_variance_", "singular_values_", "explained_variance_ratio_", "noise_variance_"):
        np.testing.assert_allclose(getattr(estimator, name), getattr(pca, name), rtol=1e-5, err_msg=name)
    np.testing.assert_allclose(estimator.get_covariance(), pca.get_covariance(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(estimator.get_precision(), pca.get_precision(), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(estimator.score_samples(noisy_low_rank), pca.score_samples(noisy_low_rank), rtol=1e-5)
    assert estimator.score(noisy_low_rank) == pytest.approx(pca.score(noisy_low_rank), rel=1e-6)


def test_grid_search_over_alpha_without_labels_finds_the_rank(noisy_low_rank):
    # 1e-4 keeps noise directions (each explains 3e-4 to 4e-4), 0.2 drops signal.
    search = GridSearchCV(DAMEmbedding(random_state=0), {"alpha": [1e-4, 0.01, 0.2]}, cv=3).fit(noisy_low_rank)
    assert search.best_params_ == {"alpha": 0.01}
    assert search.best_estimator_.n_components_ == 5


def test_a_linear_autoencoder_scores_as_probabilistic_pca(noisy_low_rank):
    # The Laplace approximation is exact for a linear decoder at the posterior mode;
    # the trained (not snapped) subspace and the encoder's code cost a few percent.
    estimator = DAMAutoencoder(hidden_layer_sizes=(), random_state=0).fit(noisy_low_rank)
    pca = PCA(estimator.n_components_).fit(noisy_low_rank)
    assert estimator.score(noisy_low_rank) == pytest.approx(pca.score(noisy_low_rank), rel=0.05)


def test_early_stopping_records_validation(low_rank_data):
    estimator = DAMEmbedding(early_stopping=True, random_state=0).fit(low_rank_data)
    assert len(estimator.validation_error_curve_) == estimator.n_iter_
    assert estimator.n_components_ == 4


@pytest.mark.parametrize(
    ("n_samples", "validation_fraction", "held_out"), [(990, 0.1, False), (1000, 0.1, True), (500, 0.2, True)]
)
def test_early_stopping_auto_holds_rows_out_where_they_number_a_hundred(n_samples, validation_fraction, held_out):
    X = np.random.RandomState(0).normal(size=(n_samples, 4))
    estimator = DAMAutoencoder(hidden_layer_sizes=(8,), max_iter=2, validation_fraction=validation_fraction, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        estimator.fit(X)
    assert estimator.early_stopping_ is held_out
    assert hasattr(estimator, "validation_error_curve_") is held_out


def test_early_stopping_auto_judges_data_with_holes_on_its_training_rows():
    # Training scores the prediction of hidden entries; a held-out row's error would not.
    X = np.random.RandomState(0).normal(size=(1000, 4))
    X[::7, 1] = np.nan
    estimator = DAMAutoencoder(hidden_layer_sizes=(8,), max_iter=2, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        assert estimator.fit(X).early_stopping_ is False
        assert estimator.set_params(early_stopping=True).fit(X).early_stopping_ is True


def test_early_stopping_auto_is_the_autoencoder_s_alone(low_rank_data):
    # DAMEmbedding's count is PCA's on the training rows, in closed form: nothing to hold out for.
    with pytest.raises(InvalidParameterError, match="early_stopping"):
        DAMEmbedding(early_stopping="auto").fit(low_rank_data)
    assert DAMEmbedding(max_iter=2, random_state=0).fit(low_rank_data).early_stopping_ is False


def test_pipeline_grid_search_and_cross_validation():
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    X, y = X[:600], y[:600]
    pipeline = make_pipeline(
        StandardScaler(), DAMAutoencoder(hidden_layer_sizes=(32,), max_iter=30, random_state=0), LogisticRegression(max_iter=300)
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        search = GridSearchCV(pipeline, {"damautoencoder__alpha": [0.005, 0.05]}, cv=2).fit(X, y)
        scores = cross_val_score(search.best_estimator_, X, y, cv=2)
    assert search.best_params_["damautoencoder__alpha"] in (0.005, 0.05)
    assert scores.mean() > 0.7
    dimensions = [
        clone(pipeline).set_params(damautoencoder__alpha=alpha).fit(X, y).named_steps["damautoencoder"].n_components_
        for alpha in (0.005, 0.05)
    ]
    # Stronger regularization keeps fewer dimensions.
    assert dimensions[0] > dimensions[1]


def test_float32_is_preserved(low_rank_data):
    X = low_rank_data.astype(np.float32)
    estimator = DAMEmbedding(random_state=0).fit(X)
    assert estimator.transform(X).dtype == np.float32
    assert estimator.inverse_transform(estimator.transform(X)).dtype == np.float32


def test_linear_experiment_smaller_copy_finds_rank():
    X, _ = make_linear_latent(2000, 10, 100, random_state=4)
    assert DAMEmbedding(random_state=4).fit(X).n_components_ == 10


@pytest.mark.parametrize("Estimator", [DAMEmbedding, DAMAutoencoder])
def test_mixed_precision_training_finds_the_rank(Estimator, low_rank_data):
    # bfloat16 autocast runs on any CPU (slowly without AMX), so this is tested here.
    estimator = Estimator(mixed_precision=True, early_stopping=True, random_state=0).fit(low_rank_data)
    in_float32 = Estimator(mixed_precision=False, early_stopping=True, random_state=0).fit(low_rank_data)
    assert estimator.mixed_precision_ is True
    assert estimator.n_components_ == in_float32.n_components_ == 4
    assert all(parameter.dtype == torch.float32 for parameter in estimator.module_.parameters())
    # bfloat16 keeps 8 bits of mantissa in the products: a little of R^2, no more.
    # Where the CPU emulates bfloat16 (no AMX) the products round differently, and
    # the network's training path with them: 0.992 against 0.998 on an AMD EPYC.
    assert estimator.r2_score(low_rank_data) > in_float32.r2_score(low_rank_data) - 0.02
    assert estimator.r2_score(low_rank_data) > 0.97


def test_mixed_precision_auto_stays_float32_for_small_steps(fitted_embedding):
    # 600 x 30 gives a few thousand multiply-adds per step: casts would cost more.
    assert fitted_embedding.mixed_precision_ is False


@pytest.mark.parametrize("has_amx, expected", [(True, "bfloat16"), (False, "float32")])
def test_mixed_precision_auto_follows_the_cpu(monkeypatch, has_amx, expected):
    monkeypatch.setattr(torch.cpu, "get_capabilities", lambda: {"amx_bf16": has_amx})
    module = torch.nn.Linear(1000, 1000)  # a million parameters
    cpu = torch.device("cpu")
    assert training_matmul_dtype("auto", module, 256, cpu) == expected
    assert training_matmul_dtype("auto", module, 1, cpu) == "float32"  # too small to pay
    assert training_matmul_dtype(True, module, 1, cpu) == "bfloat16"
    assert training_matmul_dtype(False, module, 256, cpu) == "float32"


def test_mixed_precision_survives_pickle_in_partial_fit(low_rank_data):
    estimator = DAMAutoencoder(hidden_layer_sizes=(16,), mixed_precision=True, random_state=0)
    estimator.partial_fit(low_rank_data)
    restored = pickle.loads(pickle.dumps(estimator))
    restored.partial_fit(low_rank_data)
    assert restored._trainer.settings.matmul_dtype == "bfloat16"
    assert restored.mixed_precision_ is True


def test_autoencoder_unrolls_a_helix_that_pca_needs_three_dimensions_for():
    # The gates settle on the helix's 3-dimensional linear span; the probes then find
    # that the network can rebuild it from 2 units (1 would need a longer budget).
    rng = np.random.RandomState(0)
    t = rng.uniform(0, 6 * np.pi, 1000)
    X = np.column_stack([np.cos(t), np.sin(t), t / (2 * np.pi)])
    estimator = DAMAutoencoder(random_state=0).fit(X)
    assert estimator.n_components_ <= 2
    pca = PCA(estimator.n_components_).fit(X)
    pca_score = 1 - np.sum((pca.inverse_transform(pca.transform(X)) - X) ** 2) / np.sum((X - X.mean(0)) ** 2)
    assert estimator.r2_score(X) > 0.98 > pca_score + 0.2  # PCA at 2 dimensions: 0.77


@pytest.mark.parametrize("estimator", [DAMEmbedding(random_state=0), DAMAutoencoder(hidden_layer_sizes=(), random_state=0)], ids=["DAMEmbedding", "linear DAMAutoencoder"])
def test_linear_models_are_not_probed(estimator, low_rank_data):
    # A probe would show in the curve as an epoch with 3 open gates.
    estimator.fit(low_rank_data)
    assert min(estimator.n_components_curve_) == estimator.n_components_ == 4


def test_probes_run_on_a_linear_span_with_a_perceptron(low_rank_data):
    estimator = DAMAutoencoder(random_state=0).fit(low_rank_data)
    assert estimator.n_components_ == 4
    assert min(estimator.n_components_curve_) == 3  # a probe for 3, rejected
