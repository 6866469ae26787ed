"""Training faults are survived, and the guarantees that hold whatever happens.

Faults are provoked for real: a learning rate too large for float32, a NaN injected
into the loss or the weights from inside the loop, a ``KeyboardInterrupt`` raised
from an optimiser step or from the per-epoch callback.
"""

import contextlib
import itertools

import numpy as np
import pytest
import scipy.sparse as sparse
import torch
from sklearn.exceptions import ConvergenceWarning, NotFittedError

import skdam._base
from skdam import DAMAutoencoder, DAMEmbedding, TrainingDivergedError
from _trainers import train, warm_started_module
from skdam._training import STOP_INTERRUPTED
from skdam.datasets import make_linear_latent

# Short trainings reach max_iter; the tests that expect a warning catch it anyway.
pytestmark = pytest.mark.filterwarnings("ignore:.*reached max_iter:sklearn.exceptions.ConvergenceWarning")
N_SAMPLES, BATCH_SIZE = 80, 16  # five batches per epoch in the trainer tests
ESTIMATORS = {
    "embedding": lambda **params: DAMEmbedding(**{"max_iter": 15, "random_state": 0, **params}),
    "autoencoder": lambda **params: DAMAutoencoder(**{"hidden_layer_sizes": (8,), "max_iter": 15, "random_state": 0, **params}),
}


@pytest.fixture(scope="module")
def X():
    """Rank 3 in 6 features."""
    return make_linear_latent(N_SAMPLES, 3, 6, noise=0.01, random_state=0)[0]


def _all_finite(module):
    return all(bool(torch.isfinite(tensor).all()) for tensor in module.state_dict().values())


def _warm_started_module(X, hidden_layer_sizes=(8,)):
    return warm_started_module(X, hidden_layer_sizes)[0]


def _fitted_attributes(estimator):
    return {name: value for name, value in vars(estimator).items() if name.endswith("_") and not name.startswith("__")}


# ------------------------------------------------------------ non-finite loss


@pytest.fixture
def nan_loss_on_calls(monkeypatch):
    """Make the trainer's loss NaN on the given calls of ``mse_loss`` (0-based)."""

    def install(poisoned_calls):
        calls = itertools.count()
        real_mse_loss = torch.nn.functional.mse_loss

        def mse_loss(reconstruction, target):
            loss = real_mse_loss(reconstruction, target)
            return loss * float("nan") if poisoned_calls(next(calls)) else loss

        monkeypatch.setattr(torch.nn.functional, "mse_loss", mse_loss)

    return install


def test_one_non_finite_loss_rolls_back_and_halves_the_learning_rate(X, nan_loss_on_calls):
    nan_loss_on_calls(lambda call: call == 7)  # the third batch of the second epoch
    module = _warm_started_module(X)
    trainer, result = train(module, X)
    assert trainer.n_learning_rate_cuts == 1
    assert [record.learning_rate for record in result.history] == [1e-2] + [5e-3] * 5
    assert len(result.history) == 6  # the failed epoch was run again
    assert _all_finite(module)


@pytest.mark.parametrize("name", ESTIMATORS)
def test_estimator_survives_a_non_finite_loss_and_says_so(name, X, nan_loss_on_calls):
    nan_loss_on_calls(lambda call: call == 7)
    with pytest.warns(ConvergenceWarning, match="became non-finite.*halved the learning rate 1 time"):
        estimator = ESTIMATORS[name]().fit(X)
    assert _all_finite(estimator.module_)
    assert np.isfinite(estimator.transform(X)).all()
    assert estimator.r2_score(X) > 0.9


@pytest.mark.parametrize("name", ESTIMATORS)
def test_loss_that_stays_non_finite_raises_and_leaves_no_fit(name, X, nan_loss_on_calls):
    nan_loss_on_calls(lambda call: True)
    estimator = ESTIMATORS[name]()
    with pytest.raises(TrainingDivergedError, match="non-finite and stayed so after 6 halvings") as raised:
        estimator.fit(X)
    assert isinstance(raised.value, ValueError)  # scikit-learn's error type for it
    assert not hasattr(estimator, "n_features_in_")
    with pytest.raises(NotFittedError):
        estimator.transform(X)


@pytest.mark.parametrize("poisoned_step", [4, 29], ids=["end-of-first-epoch", "last-step-of-training"])
def test_finite_loss_with_non_finite_weights_is_rolled_back(X, monkeypatch, poisoned_step):
    """A step can turn the weights non-finite while the loss it came from was finite.

    Such an epoch must not become the last good state: from the end of the first
    epoch every later rollback would return to it, and at the last step it would be
    the result.
    """
    calls = itertools.count()
    real_step = torch.optim.Adam.step

    def poisoning_step(self, *args, **kwargs):
        loss = real_step(self, *args, **kwargs)
        if next(calls) == poisoned_step:
            with torch.no_grad():
                self.param_groups[0]["params"][0].fill_(float("nan"))
        return loss

    monkeypatch.setattr(torch.optim.Adam, "step", poisoning_step)
    module = _warm_started_module(X)
    trainer, result = train(module, X)
    assert trainer.n_learning_rate_cuts == 1
    assert len(result.history) == 6
    assert _all_finite(module)


def test_huge_learning_rate_recovers_by_halving(X):
    # Adam moves each weight by about the learning rate: 1e10 overflows float32 at
    # once, and a few halvings bring it back within range.
    with pytest.warns(ConvergenceWarning, match="halved the learning rate"):
        estimator = DAMEmbedding(learning_rate_init=1e10, max_iter=15, random_state=0).fit(X)
    assert _all_finite(estimator.module_)
    assert estimator.r2_score(X) > 0.99


@pytest.mark.parametrize("name", ESTIMATORS)
def test_hopeless_learning_rate_raises_a_clear_error(name, X):
    with pytest.raises(ValueError, match="lower learning_rate_init"):
        ESTIMATORS[name](learning_rate_init=1e13).fit(X)


def test_non_finite_weights_never_leave_fit(X, monkeypatch):
    """fit's last line of defence, should a trainer ever return non-finite weights."""

    def broken_trainer(trainer, *args, **kwargs):
        result = skdam._training.train_until_settled(trainer, *args, **kwargs)
        with torch.no_grad():
            trainer.module.decoder_linear.weight.fill_(float("inf"))
        return result

    monkeypatch.setattr(skdam._base, "train_until_settled", broken_trainer)
    estimator = DAMAutoencoder(hidden_layer_sizes=(4,), max_iter=3, random_state=0)
    with pytest.raises(TrainingDivergedError, match="non-finite weights"):
        estimator.fit(X)
    assert not hasattr(estimator, "module_")


# ------------------------------------------------------------ min_components


@pytest.mark.parametrize("min_components", [1, 3])
def test_min_components_stay_open_when_every_gate_would_close(X, min_components):
    with pytest.warns(UserWarning, match=f"only min_components={min_components} remain open.*lower alpha"):
        estimator = DAMAutoencoder(
            alpha=100.0, min_components=min_components, hidden_layer_sizes=(4,), batch_size=BATCH_SIZE, max_iter=200, random_state=0
        ).fit(X)
    assert estimator.stop_reason_ == "converged"
    assert estimator.n_components_ == min_components
    assert min(estimator.n_components_curve_) == min_components
    # The most preferred units are the ones kept.
    assert set(estimator.open_units_) == set(range(estimator.max_components_ - min_components, estimator.max_components_))


def test_trainer_never_lets_beta_below_the_floor(X):
    module = _warm_started_module(X, hidden_layer_sizes=())
    floor = module.gate.beta_floor(2)
    _, result = train(module, X, alpha=100.0, min_open=2, max_epochs=40)
    assert min(record.beta for record in result.history) >= floor
    assert [record.n_open for record in result.history][-1] == 2


@pytest.mark.parametrize("name", ESTIMATORS)
def test_small_data_trains_until_the_gates_settle(name):
    """With few steps an epoch, beta slides slowly and the open count stays the same
    for many epochs before the first gate closes: that is no convergence.

    60 rows make two batches an epoch; training used to stop after the first few
    epochs with every gate open, claiming convergence.
    """
    X = make_linear_latent(60, 3, 10, noise=0.01, random_state=0)[0]
    estimator = ESTIMATORS[name](max_iter=200).fit(X)
    assert estimator.stop_reason_ == "converged"
    # The gates settle on the rank; a perceptron may then thread 60 rows with fewer
    # units (the count after settling is judged on the rows it trains on).
    assert 3 in estimator.n_components_curve_ and estimator.n_components_ <= 3
    if name == "embedding":
        assert estimator.n_components_ == 3


# ------------------------------------------------------------ KeyboardInterrupt


@pytest.fixture
def interrupt_on_step(monkeypatch):
    def install(step):
        calls = itertools.count()
        real_step = torch.optim.Adam.step

        def interrupting_step(self, *args, **kwargs):
            if next(calls) == step:
                raise KeyboardInterrupt
            return real_step(self, *args, **kwargs)

        monkeypatch.setattr(torch.optim.Adam, "step", interrupting_step)

    return install


@pytest.mark.parametrize("name", ESTIMATORS)
def test_keyboard_interrupt_mid_batch_keeps_last_epoch_and_warns(name, X, interrupt_on_step):
    estimator = ESTIMATORS[name](max_iter=50, batch_size=BATCH_SIZE)
    interrupt_on_step(2 * 5 + 2)  # a step in the middle of the third epoch
    with pytest.warns(ConvergenceWarning, match="interrupted after 2 epochs; the estimator keeps the last completed"):
        estimator.fit(X)
    assert estimator.stop_reason_ == "interrupted"
    assert estimator.n_iter_ == len(estimator.loss_curve_) == 2
    assert _all_finite(estimator.module_)
    assert estimator.transform(X).shape == (N_SAMPLES, estimator.n_components_)
    assert np.isfinite(estimator.score(X))


def test_keyboard_interrupt_from_the_epoch_callback(X, monkeypatch, capsys):
    estimator = DAMEmbedding(max_iter=50, verbose=1, random_state=0)
    printed = []

    def print_then_interrupt(record):
        printed.append(record.epoch)
        if record.epoch == 2:
            raise KeyboardInterrupt

    @contextlib.contextmanager
    def progress_that_interrupts(verbose, max_epochs, description):
        yield print_then_interrupt

    monkeypatch.setattr(skdam._base, "epoch_progress", progress_that_interrupts)
    with pytest.warns(ConvergenceWarning, match="interrupted after 3 epochs"):
        estimator.fit(X)
    assert printed == [0, 1, 2]
    assert estimator.n_iter_ == 3
    assert estimator.stop_reason_ == "interrupted"
    assert estimator.r2_score(X) > 0.99


def test_keyboard_interrupt_with_validation_keeps_the_best_state(X):
    """As MLPRegressor with early_stopping: the best validated epoch, not the last."""
    module = _warm_started_module(X)
    states = []
    alpha = 0.05

    def snapshot_then_interrupt(record):
        states.append({name: tensor.clone() for name, tensor in module.state_dict().items()})
        if record.epoch == LAST_EPOCH:
            raise KeyboardInterrupt

    LAST_EPOCH = 70  # the gates settle near epoch 47; after that validation only wobbles
    X_validation = torch.as_tensor(X[:20], dtype=torch.float32)
    _, result = train(module, X[20:], X_validation=X_validation, alpha=alpha, max_epochs=100, on_epoch_end=snapshot_then_interrupt)
    assert result.stop_reason == STOP_INTERRUPTED
    assert len(result.history) == LAST_EPOCH + 1
    # The library's objective: validation error plus alpha times the soft count.
    width = module.gate.width
    objectives = [record.validation_error + alpha * width * (1 + record.beta / 5) for record in result.history]
    best_epoch = int(np.argmin(objectives))
    assert best_epoch != LAST_EPOCH, "the test needs a best epoch other than the last"
    for name, tensor in module.state_dict().items():
        torch.testing.assert_close(tensor, states[best_epoch][name], rtol=0, atol=0)


def test_keyboard_interrupt_before_training_propagates_and_keeps_the_old_fit(X, monkeypatch):
    estimator = DAMEmbedding(max_iter=5, random_state=0).fit(X)
    before, embedding = _fitted_attributes(estimator), estimator.transform(X)

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(skdam._base, "bottleneck_axes", interrupted)
    with pytest.raises(KeyboardInterrupt):
        estimator.fit(X[:40])
    assert _fitted_attributes(estimator).keys() == before.keys()
    assert all(_fitted_attributes(estimator)[name] is value for name, value in before.items())
    np.testing.assert_array_equal(estimator.transform(X), embedding)


# ------------------------------------------------------------ guarantees


@pytest.mark.parametrize("name", ESTIMATORS)
@pytest.mark.parametrize("early_stopping", [False, True])
def test_same_random_state_is_bit_identical_on_cpu(name, early_stopping, X):
    first = ESTIMATORS[name](early_stopping=early_stopping, random_state=7, device="cpu").fit(X)
    second = ESTIMATORS[name](early_stopping=early_stopping, random_state=7, device="cpu").fit(X)
    for (key, tensor), (_, other) in zip(first.module_.state_dict().items(), second.module_.state_dict().items()):
        assert torch.equal(tensor, other), key
    assert first.loss_curve_ == second.loss_curve_
    np.testing.assert_array_equal(first.transform(X), second.transform(X))
    different = ESTIMATORS[name](early_stopping=early_stopping, random_state=8, device="cpu").fit(X)
    assert different.loss_curve_ != first.loss_curve_


def test_fit_leaves_the_global_random_state_alone(X):
    torch_state, numpy_state = torch.get_rng_state(), np.random.get_state()
    DAMAutoencoder(hidden_layer_sizes=(4,), max_iter=3, random_state=0).fit(X)
    assert torch.equal(torch.get_rng_state(), torch_state)
    assert all(np.array_equal(a, b) for a, b in zip(np.random.get_state(), numpy_state))


def _nan_rows(X):
    """A row with nothing observed, which fit refuses."""
    X = X.copy()
    X[0] = np.nan
    return X


@pytest.mark.parametrize("name", ESTIMATORS)
@pytest.mark.parametrize(
    "failing_fit",
    [
        pytest.param(lambda estimator, X: estimator.fit(_nan_rows(X)), id="nan"),
        pytest.param(lambda estimator, X: estimator.fit(sparse.csr_matrix(X)), id="sparse"),
        pytest.param(lambda estimator, X: estimator.fit(X[:, :4] * 1e40), id="too-large"),
        pytest.param(lambda estimator, X: estimator.set_params(learning_rate_init=1e13).fit(X), id="diverged"),
        pytest.param(lambda estimator, X: estimator.set_params(min_components=50).fit(X), id="min-components"),
    ],
)
def test_failed_fit_keeps_the_previous_fit(name, failing_fit, X):
    estimator = ESTIMATORS[name]().fit(X)
    before, embedding = _fitted_attributes(estimator), estimator.transform(X)
    with pytest.raises((ValueError, TypeError)):
        failing_fit(estimator, X)
    after = _fitted_attributes(estimator)
    assert after.keys() == before.keys()
    assert all(after[name] is value for name, value in before.items())
    np.testing.assert_array_equal(estimator.transform(X), embedding)


def test_failed_first_fit_leaves_the_estimator_unfitted(X):
    estimator = DAMAutoencoder(hidden_layer_sizes=(4,), max_iter=3)
    with pytest.raises(ValueError):
        estimator.fit(_nan_rows(X))
    assert _fitted_attributes(estimator) == {}
    with pytest.raises(NotFittedError):
        estimator.transform(X)
