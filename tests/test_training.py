"""The training layer on its own: the stopping rule and the module's forward pass."""

import pytest
import torch

from _trainers import train, trainer_for, training_settings, warm_started_module
from skdam._training import STOP_INTERRUPTED, SettlingMonitor
from skdam._unit_search import beaten_by_linear_start, probe_unit_count, stuck_at_linear_start, unit_search
from skdam.nn import GatedAutoencoder

TOL = 1e-2


def _epochs_until_settled(monitor, objectives):
    for epoch, objective in enumerate(objectives, start=1):
        monitor.update(objective, n_open=5, beta=-1.0)  # count and beta stand still
        if monitor.settled:
            return epoch
    return None


def test_a_decline_slower_than_tol_per_epoch_settles_as_mlp_regressor_would():
    # Each epoch beats the best by tol / 2.5: no improvement by MLPRegressor's rule, so
    # the first epoch sets the count and three more settle it. (Holding the best until
    # beaten by tol, the old rule saw an improvement every third epoch: never settled.)
    monitor = SettlingMonitor(TOL, n_iter_no_change=3, beta_pace_per_epoch=1.0)
    assert _epochs_until_settled(monitor, [1.0 - k * TOL / 2.5 for k in range(20)]) == 4


def test_a_decline_faster_than_tol_per_epoch_never_settles():
    monitor = SettlingMonitor(TOL, n_iter_no_change=3, beta_pace_per_epoch=1.0)
    assert _epochs_until_settled(monitor, [1.0 - k * 2 * TOL for k in range(20)]) is None


def test_every_new_low_counts_as_the_best_for_the_state_to_keep():
    monitor = SettlingMonitor(TOL, n_iter_no_change=3, beta_pace_per_epoch=1.0)
    assert monitor.update(1.0, 5, -1.0)
    assert monitor.update(1.0 - TOL / 10, 5, -1.0)  # a new low, if less than tol
    assert not monitor.update(1.0, 5, -1.0)
    assert monitor.best_objective == pytest.approx(1.0 - TOL / 10)


@pytest.mark.parametrize("hidden_layer_sizes, activation", [((16,), "elu"), ((16, 8), "elu"), ((16, 8), "silu")])
def test_fused_forward_equals_linear_path_plus_residual(hidden_layer_sizes, activation):
    module = GatedAutoencoder(12, 5, hidden_layer_sizes, activation).reset_parameters(torch.Generator().manual_seed(0))
    assert sum(isinstance(layer, torch.nn.SiLU) for layer in module.modules()) == (2 * len(hidden_layer_sizes) if activation == "silu" else 0)
    with torch.no_grad():  # the residuals' last layers start at zero: give them weight
        for residual in (module.encoder_residual, module.decoder_residual):
            residual[-1].weight.normal_(generator=torch.Generator().manual_seed(1))
            residual[-1].bias.normal_(generator=torch.Generator().manual_seed(2))
        module.gate.beta.fill_(-1.5)  # some gates closed
    x = torch.randn(7, 12, generator=torch.Generator().manual_seed(3))
    code = module.gate(module.encoder_linear(x) + module.encoder_residual(x))
    expected = module.decoder_linear(code) + module.decoder_residual(code)
    torch.testing.assert_close(module.encode_normalized(x), code)
    torch.testing.assert_close(module.decode_normalized(code), expected)


def test_settings_refuse_an_unknown_matmul_dtype():
    with pytest.raises(ValueError, match="matmul_dtype must be 'float32' or 'bfloat16', got 'float16'"):
        training_settings(matmul_dtype="float16")


# ---------------------------------------------------------------- probes


@pytest.mark.parametrize(
    "settled_error, n_open, expected",
    [
        (0.10, 2, True),  # at the linear error with 2 units: stuck where it started
        (0.095, 2, True),  # better by less than alpha
        (0.085, 2, False),  # better by more than alpha: the perceptron is working
        (0.10, 4, False),  # 4 units, more than the linear errors cover
    ],
)
def test_only_a_model_stuck_at_its_linear_start_is_probed(settled_error, n_open, expected):
    linear_errors = [0.30, 0.10, 0.02]  # the best linear projection on 1, 2, 3 units
    assert stuck_at_linear_start(settled_error, n_open, linear_errors, alpha=0.01) is expected
    assert stuck_at_linear_start(settled_error, n_open, None, alpha=0.01) is False


@pytest.mark.parametrize(
    "settled_error, n_open, expected",
    [
        (0.10, 1, True),  # 0.10 + 0.01 > PCA on 2 units, 0.02 + 0.02: a unit too few
        (0.03, 2, True),  # 0.03 + 0.02 > PCA on 3 units, 0.00 + 0.03
        (0.005, 2, False),  # 0.005 + 0.02 < 0.00 + 0.03: the third unit is worth less than alpha
        (0.0, 3, False),  # no more units to open
    ],
)
def test_a_model_its_linear_start_beats_is_offered_a_unit_more(settled_error, n_open, expected):
    linear_errors = [0.30, 0.02, 0.0]
    assert beaten_by_linear_start(settled_error, n_open, linear_errors, alpha=0.01) is expected
    assert beaten_by_linear_start(settled_error, n_open, None, alpha=0.01) is False


def _linear_data(n_samples=400, rank=3, n_features=8):
    generator = torch.Generator().manual_seed(0)
    return torch.randn(n_samples, rank, generator=generator) @ torch.randn(rank, n_features, generator=generator)


def _warm_started(X):
    """A module warm-started from X's principal axes, and PCA's error per number of units."""
    return warm_started_module(X.numpy(), hidden_layer_sizes=(16,))


def _train_with_probes(X, make_on_epoch_end, probe_epochs=10, max_epochs=100):
    """Train with probes; ``make_on_epoch_end(module)`` gives the per-epoch callback."""
    module, linear_errors = _warm_started(X)
    search = unit_search(linear_errors=linear_errors, max_epochs=max_epochs, probe_epochs=probe_epochs, n_iter_no_change=3)
    _, result = train(
        module, X, max_epochs=max_epochs, tol=1e-2, n_iter_no_change=3, after_settling=search,
        on_epoch_end=make_on_epoch_end(module), batch_size=40, learning_rate=3e-3,
    )  # fmt: skip
    return module, result


def test_a_rejected_probe_puts_the_settled_model_back():
    # Exactly 3 linear dimensions: no network rebuilds a third from two, so the probe
    # for 2 units is rejected and the model goes back to the state it started from.
    states = []
    module, result = _train_with_probes(_linear_data(), lambda module: lambda record: states.append(_state(module)))
    n_open = [record.n_open for record in result.history]
    assert module.gate.n_open() == 3
    assert n_open[-1] == 2  # the curves keep the rejected probe's epochs
    settled_epoch = max(epoch for epoch, count in enumerate(n_open) if count == 3)
    for name, tensor in module.state_dict().items():
        torch.testing.assert_close(tensor, states[settled_epoch][name], rtol=0, atol=0)


def test_an_interrupted_probe_puts_the_settled_model_back():
    states, seen = [], []

    def interrupt_on_the_second_probe_epoch(module):
        def on_epoch_end(record):
            states.append(_state(module))
            seen.append(record.n_open)
            if seen.count(2) == 2:
                raise KeyboardInterrupt

        return on_epoch_end

    module, result = _train_with_probes(_linear_data(), interrupt_on_the_second_probe_epoch)
    assert result.stop_reason == STOP_INTERRUPTED
    assert module.gate.n_open() == 3
    settled_epoch = seen.index(2) - 1
    for name, tensor in module.state_dict().items():
        torch.testing.assert_close(tensor, states[settled_epoch][name], rtol=0, atol=0)


def _state(module):
    return {name: tensor.detach().clone() for name, tensor in module.state_dict().items()}


def test_a_gate_closed_on_a_unit_worth_more_than_alpha_is_reopened():
    # Rank-3 data with one gate too few open (as an overshooting beta leaves it):
    # PCA on 3 units beats the model by a third of the variance, so a probe reopens it.
    X = _linear_data()
    module, linear_errors = _warm_started(X)
    with torch.no_grad():
        module.gate.beta.fill_(module.gate.beta_floor(2))
    assert module.gate.n_open() == 2
    trainer = trainer_for(module, batch_size=40, learning_rate=3e-3)
    history = []
    probe_unit_count(
        trainer, X, None, max_epochs=50, probe_epochs=10, n_iter_no_change=3, linear_errors=linear_errors, history=history,
    )
    assert module.gate.n_open() == 3
    assert history and history[-1].reconstruction_error < 0.01
    assert trainer.settings == training_settings(batch_size=40, learning_rate=3e-3)  # put back
