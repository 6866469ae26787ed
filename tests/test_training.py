"""The training layer on its own: the stopping rule and the module's forward pass."""

import pytest
import torch

from skdam._training import GateTrainer, SettlingMonitor
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


@pytest.mark.parametrize("hidden_layer_sizes", [(16,), (16, 8)])
def test_fused_forward_equals_linear_path_plus_residual(hidden_layer_sizes):
    module = GatedAutoencoder(12, 5, hidden_layer_sizes).reset_parameters(torch.Generator().manual_seed(0))
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


def test_trainer_refuses_an_unknown_matmul_dtype():
    module = GatedAutoencoder(4, 2).reset_parameters()
    with pytest.raises(ValueError, match="matmul_dtype must be 'float32' or 'bfloat16', got 'float16'"):
        GateTrainer(
            module, alpha=0.01, batch_size=8, learning_rate=1e-3, gate_learning_rate=0.02, weight_decay=0.0,
            warmup_epochs=0, min_open=1, generator=torch.Generator(), matmul_dtype="float16",
        )  # fmt: skip
