"""The training layer on its own: the stopping rule and the module's forward pass."""

import math

import numpy as np
import pytest
import torch

from _trainers import train, trainer_for, training_settings, warm_started_module
from skdam import _training, _unit_search
from skdam._statistics import principal_axes
from skdam._training import STOP_INTERRUPTED, EpochRecord, SettlingMonitor, reconstruction_error
from skdam._unit_search import AdaptedUnitCount, LinearUnitCount, capped_by_fewer_units, count_by_rule, readback_error
from skdam.nn import GatedAutoencoder
from skdam.nn._autoencoder import FUSED_PRODUCTS_MIN_FEATURES

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


@pytest.mark.parametrize("n_features", [12, FUSED_PRODUCTS_MIN_FEATURES])  # two products each side, then one
@pytest.mark.parametrize("hidden_layer_sizes, activation", [((16,), "elu"), ((16, 8), "elu"), ((16, 8), "silu")])
def test_forward_equals_linear_path_plus_residual(hidden_layer_sizes, activation, n_features):
    module = GatedAutoencoder(n_features, 5, hidden_layer_sizes, activation).reset_parameters(torch.Generator().manual_seed(0))
    assert module._fuses_products() == (n_features >= FUSED_PRODUCTS_MIN_FEATURES)
    assert sum(isinstance(layer, torch.nn.SiLU) for layer in module.modules()) == (2 * len(hidden_layer_sizes) if activation == "silu" else 0)
    with torch.no_grad():  # the residuals' last layers start at zero: give them weight
        for residual in (module.encoder_residual, module.decoder_residual):
            residual[-1].weight.normal_(generator=torch.Generator().manual_seed(1))
            residual[-1].bias.normal_(generator=torch.Generator().manual_seed(2))
        module.gate.beta.fill_(-1.5)  # some gates closed
    x = torch.randn(7, n_features, generator=torch.Generator().manual_seed(3))
    code = module.gate(module.encoder_linear(x) + module.encoder_residual(x))
    expected = module.decoder_linear(code) + module.decoder_residual(code)
    torch.testing.assert_close(module.encode_normalized(x), code)
    torch.testing.assert_close(module.decode_normalized(code), expected)


@pytest.mark.parametrize("n_features", [12, FUSED_PRODUCTS_MIN_FEATURES])
@pytest.mark.parametrize("hidden_layer_sizes, missing", [((), False), ((16, 8), False), ((16, 8), True), ((16,), "indicator")])
@pytest.mark.parametrize("n_open", [1, 7, 20])
def test_the_open_units_alone_reconstruct_as_the_full_width_does(n_features, hidden_layer_sizes, missing, n_open):
    generator = torch.Generator().manual_seed(0)
    module = GatedAutoencoder(n_features, 20, hidden_layer_sizes, missing_indicator=missing == "indicator")
    module.reset_parameters(generator).set_open_count(n_open)
    if hidden_layer_sizes:
        with torch.no_grad():  # the residuals' last layers start at zero: give them weight
            for residual in (module.encoder_residual, module.decoder_residual):
                residual[-1].weight.normal_(generator=generator)
    module.double()  # the same sums in another order: equal to float64 rounding
    x = torch.randn(9, n_features, generator=generator, dtype=torch.float64)
    if missing:
        x[torch.rand(x.shape, generator=generator) < 0.3] = torch.nan
    encode = module.encode_incomplete_normalized if missing else module.encode_normalized
    gradients = []
    for reconstruct in (lambda x: module.decode_normalized(encode(x)), lambda x: module.reconstruct_normalized(x, missing_values=bool(missing))):
        module.zero_grad(set_to_none=False)
        reconstruction = reconstruct(x)
        reconstruction.square().sum().backward()
        gradients.append([parameter.grad.clone() for parameter in module.parameters()])
    full, sliced = gradients
    torch.testing.assert_close(module.reconstruct_normalized(x, missing_values=bool(missing)), module.decode_normalized(encode(x)))
    for full_gradient, sliced_gradient in zip(full, sliced):
        torch.testing.assert_close(sliced_gradient, full_gradient)
    # On wide data the products take in the closed units up to a multiple of 8, no further.
    span = module._open_span()
    if module._fuses_products():
        assert span.stop == 20 and 20 - span.start == min(-(-n_open // 8) * 8, 20)
    else:
        assert span == slice(None)


@pytest.mark.parametrize("epoch_steps, expected_steps", [(None, 10), (3, 3), (20, 10)])
def test_an_epoch_takes_at_most_its_steps_on_fresh_rows_of_each_shuffle(epoch_steps, expected_steps):
    X = torch.as_tensor(_linear_data(n_samples=160), dtype=torch.float32)
    module, _ = warm_started_module(X)
    trainer = trainer_for(module, batch_size=16, epoch_steps=epoch_steps)
    batches, errors = [], []
    original_error = _training.batch_error

    def recording_error(*args, **kwargs):
        result = original_error(*args, **kwargs)
        batches.append(args[1].clone())
        errors.append(float(result[0]))
        return result

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(_training, "batch_error", recording_error)
        record = trainer.run_epoch(X)
        trainer.run_epoch(X)
    assert len(batches) == 2 * expected_steps
    epochs = [torch.cat(batches[:expected_steps]), torch.cat(batches[expected_steps:])]
    assert all(len(torch.unique(rows, dim=0)) == len(rows) == 16 * expected_steps for rows in epochs)  # no row twice
    assert not torch.equal(epochs[0], epochs[1])  # each epoch shuffles afresh
    # The record is the mean over the rows the epoch trained on, not over all of X.
    assert record.reconstruction_error == pytest.approx(np.mean(errors[:expected_steps]), rel=1e-5)


def test_settings_refuse_an_unknown_matmul_dtype():
    with pytest.raises(ValueError, match="matmul_dtype must be 'float32' or 'bfloat16', got 'float16'"):
        training_settings(matmul_dtype="float16")


# ------------------------------------------------------- the count by the rule


@pytest.mark.parametrize(
    "errors, start, expected",
    [
        # e(k-1) - e(k) > alpha keeps unit k: gains 0.5, 0.3, 0.05, 0.005 -> 3 units.
        ({0: 1.0, 1: 0.5, 2: 0.2, 3: 0.15, 4: 0.145, 5: 0.144}, 5, (3, None)),
        ({0: 1.0, 1: 0.5, 2: 0.2, 3: 0.15, 4: 0.145, 5: 0.144}, 1, (3, None)),
        ({0: 1.0, 1: 0.5, 2: 0.2, 3: 0.15}, 3, (3, 4)),  # e(4) is needed to decide
        ({0: 1.0, 3: 0.15, 4: 0.145}, 3, (3, 2)),  # so is e(2)
        ({0: 1.0, 1: 0.995, 2: 0.99}, 2, (1, None)),  # min_open=1 stands
    ],
)
def test_the_count_moves_until_the_rule_holds_on_both_sides(errors, start, expected):
    assert count_by_rule(errors, alpha=0.01, count=start, lowest=1, highest=5) == expected


def test_no_entry_of_the_curve_exceeds_one_with_fewer_units():
    # The MLP latent of 8: 9 units measured without adapting, above 8 units adapted.
    errors = {0: 1.0, 9: 0.0111, 8: 0.0063, 7: 0.054}
    assert capped_by_fewer_units(errors) == {0: 1.0, 7: 0.054, 8: 0.0063, 9: 0.0063}


def _linear_data(n_samples=400, rank=3, n_features=8):
    generator = torch.Generator().manual_seed(0)
    return torch.randn(n_samples, rank, generator=generator) @ torch.randn(rank, n_features, generator=generator)


@pytest.mark.parametrize("settled_count", [1, 5])
def test_a_linear_model_lands_on_the_count_pca_gives(settled_count):
    X = _linear_data(rank=3)
    module, linear_errors = warm_started_module(X.numpy(), hidden_layer_sizes=())
    module.set_open_count(settled_count)
    trainer = trainer_for(module)
    LinearUnitCount(linear_errors, search=True)(trainer, X, None, None, [], None)
    assert module.gate.n_open() == 3


def test_a_fresh_perceptron_leaves_the_linear_path_and_the_gate_as_they_were():
    module = GatedAutoencoder(6, 5, (8,)).reset_parameters(torch.Generator().manual_seed(0))
    with torch.no_grad():  # a trained model: every weight moved
        for parameter in module.parameters():
            parameter.add_(torch.randn(parameter.shape, generator=torch.Generator().manual_seed(1)))
    before = _state(module)
    x = torch.randn(10, 6, generator=torch.Generator().manual_seed(2))
    module.reset_perceptron(torch.Generator().manual_seed(3))
    for name in ("encoder_linear.weight", "decoder_linear.weight", "gate.beta"):
        torch.testing.assert_close(module.state_dict()[name], before[name], rtol=0, atol=0)
    code = module.gate(module.encoder_linear(x))
    torch.testing.assert_close(module.encode_normalized(x), code)  # the model is its linear path
    torch.testing.assert_close(module.decode_normalized(code), module.decoder_linear(code))
    assert not torch.equal(module.encoder_residual[0].weight, before["encoder_residual.0.weight"])
    again = GatedAutoencoder(6, 5, (8,)).reset_perceptron(torch.Generator().manual_seed(3))
    torch.testing.assert_close(again.encoder_residual[0].weight, module.encoder_residual[0].weight)  # drawn from the generator


def test_moving_the_gate_keeps_the_code_of_the_units_that_stay_open():
    module = GatedAutoencoder(6, 5, (8,)).reset_parameters(torch.Generator().manual_seed(0))
    with torch.no_grad():
        module.encoder_residual[-1].weight.normal_(generator=torch.Generator().manual_seed(1))
    x = torch.randn(10, 6, generator=torch.Generator().manual_seed(2))
    before = module.encode_normalized(x)
    module.set_open_count(3)
    after = module.encode_normalized(x)
    assert module.gate.n_open() == 3
    torch.testing.assert_close(after[:, 2:], before[:, 2:])
    assert (after[:, :2] == 0).all()


def _adapted_unit_count(
    linear_errors, search=True, max_epochs=100, steps=200, linear_directions=None, finishing_steps=0, graph_coordinates=None
):
    """The search with short adaptations, as the tests below drive it."""
    return AdaptedUnitCount(
        linear_errors, search=search, max_epochs=max_epochs, steps=steps, closing_steps=50, batch_size=64,
        peak_learning_rate=1e-2, check_step=100, projection_factor=2.4, steps_per_record=20, closing_peak_learning_rate=3e-3,
        linear_directions=linear_directions, finishing_steps=finishing_steps, graph_coordinates=graph_coordinates,
        jump_steps=80,
    )  # fmt: skip


def _adapted(X, on_epoch_end=None, search=True, max_epochs=100):
    module, linear_errors = warm_started_module(X.numpy(), hidden_layer_sizes=(16,))
    unit_count = _adapted_unit_count(linear_errors, search, max_epochs)
    _, result = train(
        module, X, max_epochs=max_epochs, tol=1e-2, n_iter_no_change=3, after_settling=unit_count,
        on_epoch_end=None if on_epoch_end is None else on_epoch_end(module), batch_size=40, learning_rate=3e-3,
    )  # fmt: skip
    return module, result, unit_count


def test_a_network_keeps_the_units_whose_measured_worth_exceeds_alpha():
    # Exactly 3 linear dimensions: no network rebuilds a third from two.
    module, result, unit_count = _adapted(_linear_data())
    assert module.gate.n_open() == 3
    errors = unit_count.errors
    assert errors[2] - errors[3] > 0.01 >= errors[3] - errors.get(4, errors[3])
    assert result.history[-1].n_open >= 3  # the adaptation's records are in the history


def test_an_interrupted_adaptation_keeps_the_settled_model():
    states, seen = [], []

    def interrupt_in_the_adaptation(module):
        def on_epoch_end(record):
            states.append(_state(module))
            seen.append(record.learning_rate)
            if record.learning_rate == 0.0:  # the adaptation's records
                raise KeyboardInterrupt

        return on_epoch_end

    module, result, _ = _adapted(_linear_data(), interrupt_in_the_adaptation)
    assert result.stop_reason == STOP_INTERRUPTED
    settled_epoch = seen.index(0.0) - 1
    for name, tensor in module.state_dict().items():
        torch.testing.assert_close(tensor, states[settled_epoch][name], rtol=0, atol=0)


def _state(module):
    return {name: tensor.detach().clone() for name, tensor in module.state_dict().items()}


def _trusted_unit_count(
    monkeypatch, unadapted_errors, adapted_errors, retried_errors=None, fixed=None, finishing_steps=0,
    linear_errors=(0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1),
):  # fmt: skip
    """A network at 6 units far ahead of PCA: without training it sees ``unadapted_errors``,
    adapted to a count ``adapted_errors`` (a list: the errors of successive adaptations;
    None: no budget). ``retried_errors`` maps a count to the error a retry from a graph
    start returns. With ``fixed``, the count is fixed there (below the 6 the gates
    settled on). PCA's ``linear_errors`` keep 8 units by default, above the 6."""
    X = _linear_data(n_samples=64, rank=6)
    module, _ = warm_started_module(X.numpy(), hidden_layer_sizes=(16,))
    module.set_open_count(6)
    if retried_errors is not None:
        def retry(self, trainer, X_train, judged, count, start, error, limit, history, on_epoch_end, steps):
            adaptations.append((count, "retry"))
            return retried_errors[count]

        monkeypatch.setattr(AdaptedUnitCount, "_retry_from_graph_start", retry)
    trainer = trainer_for(module, min_open=fixed or 1)
    monkeypatch.setattr("skdam._unit_search.reconstruction_error", lambda module, *args: unadapted_errors[module.gate.n_open()])
    adaptations = []

    def adapt(self, trainer, X_train, judged, count, target, history, on_epoch_end, steps=None, peak=None):
        adaptations.append((count, steps) if peak is None else (count, steps, peak))
        trainer.module.set_open_count(count)
        error = adapted_errors[count]
        return error.pop(0) if isinstance(error, list) else error

    monkeypatch.setattr(AdaptedUnitCount, "_adapt", adapt)
    unit_count = _adapted_unit_count(linear_errors, search=fixed is None, finishing_steps=finishing_steps)
    settled = EpochRecord(epoch=0, loss=0.07, reconstruction_error=0.010, validation_error=None, n_open=6, beta=0.0, learning_rate=1e-3)
    history = []
    unit_count(trainer, X, None, settled, history, None)
    return module, unit_count, history, adaptations


def test_a_network_ahead_of_pca_closes_the_units_that_adapting_makes_up_for(monkeypatch):
    # Each closure costs more than alpha as the network is, but not once it adapted.
    module, unit_count, _, adaptations = _trusted_unit_count(
        monkeypatch, {6: 0.010, 5: 0.5, 4: 0.5, 3: 0.5}, {6: 0.008, 5: 0.010, 4: 0.015, 3: 0.040}
    )
    assert module.gate.n_open() == 4
    # Short ones at the lower peak, each from the last, and 5 again to confirm the last closure.
    assert adaptations == [(6, 50, 3e-3), (5, 50, 3e-3), (4, 50, 3e-3), (3, 50, 3e-3), (5, 50, 3e-3)]
    assert unit_count.errors == {0: 1.0, 6: 0.008, 5: 0.010, 4: 0.015, 3: 0.040}  # adapted errors only


#: PCA's errors whose rule keeps 4 units: its gains are 0.5, 0.2, 0.1, 0.05, then 0.002.
PCA_KEEPS_4 = (0.5, 0.3, 0.2, 0.15, 0.148, 0.146, 0.144, 0.142)


def test_a_chain_starts_at_pca_s_count_where_the_gates_settled_above_it(monkeypatch):
    # 6 settled, PCA keeps 4: the chain adapts to 4 first, for the longer jump_steps.
    # The closure to 3 costs more than alpha, the opening of 5 gains less: 4 stands
    # by the rule on both sides, no move kept to confirm.
    module, unit_count, _, adaptations = _trusted_unit_count(
        monkeypatch, {6: 0.010, 5: 0.5, 4: 0.5, 3: 0.5}, {4: 0.015, 3: 0.040, 5: 0.012}, linear_errors=PCA_KEEPS_4
    )
    assert module.gate.n_open() == 4
    assert adaptations == [(4, 80, 3e-3), (3, 50, 3e-3), (5, 50, 3e-3)]
    assert unit_count.errors == {0: 1.0, 5: 0.012, 4: 0.015, 3: 0.040}


def test_a_chain_start_below_the_count_goes_back_to_where_the_gates_settled(monkeypatch):
    # PCA's 4 are too few: from 4 the unit above gains more than alpha, also once 4
    # adapted as long. Openings from there are not trusted: the network goes back to
    # the 6 settled, and the chain runs from there as without the start, closing to
    # 5 (confirmed against 6).
    module, unit_count, _, adaptations = _trusted_unit_count(
        monkeypatch, {6: 0.010, 5: 0.5, 4: 0.5, 3: 0.5},
        {4: [0.040, 0.040, 0.040], 3: 0.2, 5: [0.015, 0.011], 6: [0.010, 0.010]}, linear_errors=PCA_KEEPS_4,
    )  # fmt: skip
    assert module.gate.n_open() == 5
    assert adaptations == [
        (4, 80, 3e-3), (3, 50, 3e-3), (5, 50, 3e-3), (4, 50, 3e-3),
        (6, 50, 3e-3), (5, 50, 3e-3), (4, 50, 3e-3), (6, 50, 3e-3),
    ]  # fmt: skip
    assert unit_count.errors == {0: 1.0, 6: 0.010, 5: 0.011, 4: 0.040}  # the start's errors are dropped
    assert not unit_count.count_unchecked


def test_an_opening_from_the_chain_start_that_only_training_passed_is_undone(monkeypatch):
    # From 4 the opening gains 0.025, but 4 adapted as long from the same network
    # reaches 0.020: the unit above gains 0.005, and the start's 4 stands.
    module, unit_count, _, adaptations = _trusted_unit_count(
        monkeypatch, {6: 0.010, 5: 0.5, 4: 0.5, 3: 0.5}, {4: [0.040, 0.020], 3: 0.2, 5: 0.015}, linear_errors=PCA_KEEPS_4
    )
    assert module.gate.n_open() == 4
    assert adaptations == [(4, 80, 3e-3), (3, 50, 3e-3), (5, 50, 3e-3), (4, 50, 3e-3)]
    assert unit_count.errors == {0: 1.0, 3: 0.2, 4: 0.020, 5: 0.015}


def test_a_chain_start_the_budget_cannot_pay_for_leaves_the_settled_network(monkeypatch):
    # Neither the start's adaptation nor the settled count's can be paid for.
    module, unit_count, _, adaptations = _trusted_unit_count(
        monkeypatch, {6: 0.010, 5: 0.5, 4: 0.5, 3: 0.5}, {4: None, 6: None}, linear_errors=PCA_KEEPS_4
    )
    assert module.gate.n_open() == 6
    assert adaptations == [(4, 80, 3e-3), (6, 50, 3e-3)]
    assert unit_count.errors == {0: 1.0, 6: 0.010}
    assert unit_count.count_unchecked


def test_a_chain_start_without_budget_leaves_the_settled_count_checked_as_before(monkeypatch):
    # The start's 80 steps cannot be paid for, the settled count's 50 can: the chain
    # runs from 6 as without the start, and the count counts as checked.
    module, unit_count, _, adaptations = _trusted_unit_count(
        monkeypatch, {6: 0.010, 5: 0.5, 4: 0.5, 3: 0.5}, {4: None, 6: 0.010, 5: 0.030, 7: 0.009}, linear_errors=PCA_KEEPS_4
    )
    assert module.gate.n_open() == 6
    assert adaptations == [(4, 80, 3e-3), (6, 50, 3e-3), (5, 50, 3e-3), (7, 50, 3e-3)]
    assert unit_count.errors == {0: 1.0, 5: 0.030, 6: 0.010, 7: 0.009}
    assert not unit_count.count_unchecked


@pytest.mark.parametrize(("finished", "kept"), [(0.011, 0.011), (0.020, 0.015)])
def test_the_count_the_chain_keeps_trains_on_once_decided(monkeypatch, finished, kept):
    # As above, 4 is kept; then it trains 30 steps more, at the chain's peak. Its
    # entry is the error reached where lower; the count stands either way.
    module, unit_count, _, adaptations = _trusted_unit_count(
        monkeypatch, {6: 0.010, 5: 0.5, 4: 0.5, 3: 0.5}, {6: 0.008, 5: 0.010, 4: [0.015, finished], 3: 0.040},
        finishing_steps=30,
    )  # fmt: skip
    assert module.gate.n_open() == 4
    assert adaptations == [(6, 50, 3e-3), (5, 50, 3e-3), (4, 50, 3e-3), (3, 50, 3e-3), (5, 50, 3e-3), (4, 30, 3e-3)]
    assert unit_count.errors == {0: 1.0, 6: 0.008, 5: 0.010, 4: kept, 3: 0.040}


def test_a_count_the_full_search_decided_is_not_trained_on(monkeypatch):
    # Its adaptations are long already: the fixed count of 3 below ends as before.
    module, unit_count, _, adaptations = _trusted_unit_count(
        monkeypatch, {6: 0.390, 5: 0.395, 4: 0.9}, {6: 0.390, 5: 0.395, 4: 0.9, 3: 0.95}, retried_errors={4: 0.9, 3: 0.92},
        fixed=3, finishing_steps=30,
    )  # fmt: skip
    assert module.gate.n_open() == 3
    assert adaptations == [(5, None), (6, None), (4, None), (4, "retry"), (3, None), (3, "retry")]


def test_a_fixed_count_below_the_search_s_goes_on_from_the_closure_it_rejected(monkeypatch):
    # The search keeps 4, as above, rejecting the closure to 3; fixed at 2, the count
    # takes that closure as it ended, then closes once more with a chain adaptation.
    # Neither 3 nor 2 is finished: they stay the points a search that kept 4 measured.
    module, unit_count, _, adaptations = _trusted_unit_count(
        monkeypatch, {6: 0.010, 5: 0.5, 4: 0.5, 3: 0.5}, {6: 0.008, 5: 0.010, 4: 0.015, 3: 0.040, 2: 0.2}, fixed=2,
        finishing_steps=30,
    )  # fmt: skip
    assert module.gate.n_open() == 2
    assert adaptations == [(6, 50, 3e-3), (5, 50, 3e-3), (4, 50, 3e-3), (3, 50, 3e-3), (5, 50, 3e-3), (2, 50, 3e-3)]
    assert unit_count.errors == {0: 1.0, 6: 0.008, 5: 0.010, 4: 0.015, 3: 0.040, 2: 0.2}


def test_a_fixed_count_below_a_full_search_s_closes_as_its_moves_do(monkeypatch):
    # The search keeps 5 after full adaptations, rejecting the closure to 4 even
    # retried; fixed at 3, the count goes on from that closure and closes to 3 with a
    # full adaptation, retried as the search's closures are, the retry standing.
    module, unit_count, _, adaptations = _trusted_unit_count(
        monkeypatch, {6: 0.390, 5: 0.395, 4: 0.9}, {6: 0.390, 5: 0.395, 4: 0.9, 3: 0.95}, retried_errors={4: 0.9, 3: 0.92},
        fixed=3,
    )  # fmt: skip
    assert module.gate.n_open() == 3
    assert adaptations == [(5, None), (6, None), (4, None), (4, "retry"), (3, None), (3, "retry")]
    assert unit_count.errors == {0: 1.0, 6: 0.390, 5: 0.395, 4: 0.9, 3: 0.92}


def test_the_last_closure_is_judged_again_with_both_counts_trained_alike(monkeypatch):
    # 5 -> 4 costs 0.008 against 5's error one adaptation earlier; trained as long, 5
    # reaches 0.003 and the closure costs 0.012: 5 is kept, at its newer error.
    module, unit_count, _, adaptations = _trusted_unit_count(
        monkeypatch, {6: 0.010, 5: 0.5}, {6: 0.005, 5: [0.007, 0.003], 4: 0.015, 3: 0.040}
    )
    assert module.gate.n_open() == 5
    assert adaptations == [(6, 50, 3e-3), (5, 50, 3e-3), (4, 50, 3e-3), (3, 50, 3e-3), (5, 50, 3e-3)]  # 3 rejected
    # 6 units, adapted one adaptation earlier, are capped at 5's newer error.
    assert unit_count.errors == {0: 1.0, 6: 0.003, 5: 0.003, 4: 0.015, 3: 0.040}


def test_the_last_opening_is_judged_again_with_both_counts_trained_alike(monkeypatch):
    # 6 -> 7 gains 0.011 against 6's error one adaptation earlier; trained as long, 6
    # reaches 0.095 and the unit gains 0.005: 6 is kept.
    module, unit_count, _, adaptations = _trusted_unit_count(
        monkeypatch, {6: 0.100, 5: 0.5}, {5: 0.200, 6: [0.100, 0.095], 7: 0.089, 8: 0.085}
    )
    assert module.gate.n_open() == 6
    assert adaptations == [(6, 50, 3e-3), (5, 50, 3e-3), (7, 50, 3e-3), (8, 50, 3e-3), (6, 50, 3e-3)]
    assert unit_count.errors == {0: 1.0, 5: 0.200, 6: 0.095, 7: 0.089, 8: 0.085}


def test_units_closed_without_training_are_not_points_of_the_curve(monkeypatch):
    module, unit_count, history, adaptations = _trusted_unit_count(
        monkeypatch, {6: 0.010, 5: 0.015, 4: 0.5}, {5: 0.012, 4: 0.030, 6: 0.011}
    )
    assert module.gate.n_open() == 5
    assert adaptations == [(5, 50, 3e-3), (4, 50, 3e-3), (6, 50, 3e-3)]  # the closure to 5 needed no training
    assert (history[0].learning_rate, history[0].n_open) == (0.0, 5)  # the closure's record
    assert unit_count.errors == {0: 1.0, 5: 0.012, 4: 0.030, 6: 0.011}


def test_closures_that_leave_a_network_no_better_than_pca_send_it_to_the_full_search(monkeypatch):
    # At 5 units the closed network is within alpha of PCA's 0.4: it may be stuck at
    # the linear start, which short adaptations cannot leave. The search starts from
    # 6, where the last free closure closed from; the closure to 5 passes against 6's
    # settled error, and still does once 6 has adapted as long.
    module, unit_count, _, adaptations = _trusted_unit_count(
        monkeypatch, {6: 0.390, 5: 0.395, 4: 0.9}, {6: 0.390, 5: 0.395, 4: 0.9}, retried_errors={4: 0.9}
    )
    assert module.gate.n_open() == 5
    # Full adaptations; the rejected closure tried again.
    assert adaptations == [(5, None), (6, None), (4, None), (4, "retry")]


def test_the_last_free_closure_is_made_again_with_both_counts_adapted(monkeypatch):
    # Closing the sixth unit costs 0.009 against the settled network, and adapted, 5
    # units pass against it too (0.385), but once 6 units have adapted as long they
    # leave 0.36: the unit stays. From 5, unadapted, the closure to 4 would have
    # looked free (0.39 against 0.399).
    module, unit_count, _, adaptations = _trusted_unit_count(
        monkeypatch, {6: 0.390, 5: 0.399, 4: 0.9}, {7: 0.355, 6: 0.36, 5: 0.385, 4: 0.39}, retried_errors={5: 0.385}
    )
    assert module.gate.n_open() == 6
    assert adaptations == [(5, None), (6, None), (5, "retry"), (7, None)]
    assert unit_count.errors == {0: 1.0, 7: 0.355, 6: 0.36, 5: 0.385}


@pytest.mark.parametrize(
    ("neighbour", "error", "judged_again"),
    [(5, 0.395, True), (5, 0.009, False), (5, 0.41, False), (7, 0.37, True), (7, 0.385, False)],
    ids=["closure within alpha", "closure to at most alpha", "closure rejected", "opening gains alpha", "opening rejected"],
)
def test_a_move_is_judged_again_only_where_a_lower_error_before_it_could_fail_it(neighbour, error, judged_again):
    # Against a settled 0.39 at 6 units: a closure to 0.009 passes whatever 6 units
    # would reach once adapted, and a move the rule rejects needs no second look.
    unit_count = _adapted_unit_count([0.8, 0.7, 0.6, 0.5, 0.4, 0.3])
    unit_count.errors[6] = 0.39
    assert unit_count._passes_only_as_favoured(6, neighbour, error, 0.01) is judged_again


def test_an_opening_move_records_at_most_the_error_before_it(monkeypatch):
    # The opening move to 7 stops early on a projection of 0.5 (the error near the
    # schedule's peak); a 7th unit can be left unused, so 7 units leave at most 0.36.
    module, unit_count, _, adaptations = _trusted_unit_count(
        monkeypatch, {6: 0.390, 5: 0.399, 4: 0.9}, {7: 0.5, 6: 0.36, 5: 0.385}, retried_errors={5: 0.385}
    )
    assert module.gate.n_open() == 6
    assert unit_count.errors[7] == 0.36


@pytest.mark.parametrize("first_try", [0.55, 0.42], ids=["at PCA's error", "ahead of PCA"])
def test_a_closure_the_rule_rejects_is_tried_again_from_a_graph_start(monkeypatch, first_try):
    # From 5 units at PCA's error, the adaptation to 4 fails, whether it stays at PCA's
    # 0.5 or tears a code a little ahead of it, and a retry reaches 0.40: the closure
    # stands. The one to 3 fails both times; opening moves are not retried.
    module, unit_count, _, adaptations = _trusted_unit_count(
        monkeypatch, {6: 0.390, 5: 0.395, 4: 0.9}, {6: 0.390, 5: 0.395, 4: first_try, 3: 0.9}, retried_errors={4: 0.40, 3: 0.9}
    )
    assert module.gate.n_open() == 4
    assert adaptations == [(5, None), (6, None), (4, None), (4, "retry"), (3, None), (3, "retry")]
    assert unit_count.errors == {0: 1.0, 6: 0.390, 5: 0.395, 4: 0.40, 3: 0.9}


def test_a_closure_the_rule_accepts_is_not_retried(monkeypatch):
    module, _, _, adaptations = _trusted_unit_count(
        monkeypatch, {6: 0.390, 5: 0.395, 4: 0.9}, {6: 0.390, 5: 0.395, 4: 0.40, 3: 0.9}, retried_errors={3: 0.9}
    )
    assert module.gate.n_open() == 4
    assert adaptations == [(5, None), (6, None), (4, None), (3, None), (3, "retry")]


def test_a_network_ahead_of_pca_keeps_its_perceptron_while_units_close(monkeypatch):
    _, _, _, adaptations = _trusted_unit_count(
        monkeypatch, {6: 0.010, 5: 0.5}, {6: 0.008, 5: 0.010, 4: 0.015, 3: 0.040}, retried_errors={}
    )
    assert all("retry" not in adaptation for adaptation in adaptations)


def _retry_harness(monkeypatch, n_samples=60, graph_learned=True, measured_error=0.01):
    """A search with its graph start and adaptation mocked; what each saw is in ``seen``."""
    X = _linear_data(n_samples=n_samples, rank=3)
    module, linear_errors = warm_started_module(X.numpy(), hidden_layer_sizes=(16,))
    trainer = trainer_for(module)
    unit_count = _adapted_unit_count(linear_errors, graph_coordinates=lambda rows, n_components: rows[:, :n_components])
    start = _state(module)
    with torch.no_grad():  # the first adaptation's network: another code, another decoder
        module.encoder_linear.weight.add_(torch.randn(module.encoder_linear.weight.shape, generator=torch.Generator().manual_seed(2)))
        module.decoder_linear.weight.mul_(2.0)
    seen = {"first": _state(module), "start": start, "first code": lambda rows: module.encode_normalized(rows)[:, module.gate.open_mask()]}

    def learn_graph_code(self, trainer, rows, count, steps, history, on_epoch_end, beat=math.inf):
        seen.update({"graph rows": rows, "beat": beat, "network at graph start": _state(trainer.module)})
        return graph_learned

    def adapt(self, trainer, X_train, judged, count, target, history, on_epoch_end, steps=None, peak=None, training_rows=None):
        seen.update(trained=X_train if training_rows is None else X_train[training_rows], unseen=judged)
        with torch.no_grad():
            trainer.module.decoder_linear.weight.mul_(3.0)  # the retry's network
        return seen["retry error"]

    monkeypatch.setattr(AdaptedUnitCount, "_learn_graph_code", learn_graph_code)
    monkeypatch.setattr(AdaptedUnitCount, "_adapt", adapt)
    # Any error measured outside an adaptation (the kept network's on the judged rows).
    monkeypatch.setattr(AdaptedUnitCount, "_error", staticmethod(lambda trainer, rows: measured_error))
    return X, module, trainer, unit_count, seen


def _sorted_rows(rows):
    return rows[torch.argsort(rows[:, 0])]


@pytest.mark.parametrize(("retry_on_unseen", "kept"), [(0.02, "retry"), (0.04, "first")])
def test_a_retry_replaces_the_first_adaptation_only_where_rows_it_never_saw_pass_the_rule(monkeypatch, retry_on_unseen, kept):
    # A fresh perceptron that memorises a thin sample does well on the rows it trained
    # on, not on the tenth it left out: there it must reach the limit the rule accepts.
    X, module, trainer, unit_count, seen = _retry_harness(monkeypatch)
    seen["retry error"] = retry_on_unseen
    first_code = seen["first code"]
    error = unit_count._retry_from_graph_start(trainer, X, X, 2, seen["start"], 0.7, 0.03, [], None, None)
    assert (len(seen["trained"]), len(seen["unseen"])) == (54, 6)
    together = torch.cat([seen["trained"], seen["unseen"]])
    assert torch.equal(_sorted_rows(together), _sorted_rows(X))  # a split of X
    # The graph is of the training rows, and must read them back better than the
    # first adaptation's code does, by the same measure.
    graph_rows = seen["graph rows"]
    torch.testing.assert_close(_sorted_rows(graph_rows), _sorted_rows(module.normalize(seen["trained"])))
    after = _state(module)
    module.load_state_dict(seen["first"])
    assert seen["beat"] == pytest.approx(readback_error(graph_rows, first_code(graph_rows)))
    module.load_state_dict(seen["start"])
    assert seen["beat"] != pytest.approx(readback_error(graph_rows, first_code(graph_rows)))  # not the start's code
    # The graph start is the network before the first adaptation, with a fresh perceptron.
    torch.testing.assert_close(seen["network at graph start"]["encoder_linear.weight"], seen["start"]["encoder_linear.weight"])
    assert not torch.equal(seen["network at graph start"]["encoder_residual.0.weight"], seen["start"]["encoder_residual.0.weight"])
    if kept == "retry":
        assert error == 0.01  # the retry's error on the judged rows
        torch.testing.assert_close(after["decoder_linear.weight"], seen["start"]["decoder_linear.weight"] * 3.0)
    else:
        assert error == 0.7
        for name, tensor in after.items():
            torch.testing.assert_close(tensor, seen["first"][name], rtol=0, atol=0)


def test_a_retry_judged_on_held_out_rows_trains_on_every_training_row(monkeypatch):
    # Its code adapts wherever it starts, here behind the first try (0.8 against 0.7).
    X, module, trainer, unit_count, seen = _retry_harness(monkeypatch, measured_error=0.8)
    seen["retry error"] = 0.02
    held_out = X[:10].clone()
    assert unit_count._retry_from_graph_start(trainer, X, held_out, 2, seen["start"], 0.7, 0.03, [], None, None) == 0.02
    assert seen["trained"] is X and seen["unseen"] is held_out
    torch.testing.assert_close(_sorted_rows(seen["graph rows"]), _sorted_rows(module.normalize(X)))


def test_a_graph_start_without_coordinates_is_not_adapted(monkeypatch):
    X, module, trainer, unit_count, seen = _retry_harness(monkeypatch, graph_learned=False)
    assert unit_count._retry_from_graph_start(trainer, X, X, 2, seen["start"], 0.7, 0.03, [], None, None) == 0.7
    assert "trained" not in seen
    for name, tensor in module.state_dict().items():
        torch.testing.assert_close(tensor, seen["first"][name], rtol=0, atol=0)


def test_no_retry_where_no_row_can_be_left_out(monkeypatch):
    X = _linear_data(n_samples=64, rank=3)
    module, linear_errors = warm_started_module(X.numpy(), hidden_layer_sizes=(16,))
    unit_count = _adapted_unit_count(linear_errors)
    monkeypatch.setattr(AdaptedUnitCount, "_adapt", lambda *args, **kwargs: pytest.fail("no rows to train a retry on"))
    assert unit_count._retry_from_graph_start(trainer_for(module), X[:1], X[:1], 2, _state(module), 0.7, 0.03, [], None, None) == 0.7


def _circle_arc(n_samples=400):
    """Points on a circle in R^3 with a gap, and the angle that unrolls them."""
    generator = torch.Generator().manual_seed(0)
    angle = torch.rand(n_samples, generator=generator) * 1.8 * math.pi
    X = torch.stack([torch.cos(angle), torch.sin(angle), 0.3 * torch.cos(angle)], dim=1)
    return X, angle


def test_a_graph_code_is_learned_by_the_open_units_and_the_decoder():
    # The coordinates handed over are the arc's angle: after the steps the one open
    # unit carries it (up to the scale of its code), and the decoder draws the arc from it.
    X, angle = _circle_arc()
    module, linear_errors = warm_started_module(X.numpy(), hidden_layer_sizes=(32,))
    trainer, history, asked = trainer_for(module), [], []

    def angle_of(rows, n_components):
        asked.append((rows.shape, n_components))
        return angle.double().numpy()[:, None]

    unit_count = AdaptedUnitCount(
        linear_errors, search=True, max_epochs=100, steps=200, closing_steps=50, batch_size=64, peak_learning_rate=1e-2,
        check_step=100, projection_factor=2.4, steps_per_record=20, graph_coordinates=angle_of, graph_steps=1500,
    )  # fmt: skip
    def correlation_with_angle():
        with torch.no_grad():
            code = module.encode(X)[:, module.gate.open_mask()].flatten()
        return float(torch.corrcoef(torch.stack([code, angle]))[0, 1])

    module.set_open_count(1)
    assert abs(correlation_with_angle()) < 0.9  # no linear code unrolls the arc
    assert unit_count._learn_graph_code(trainer, module.normalize(X), 1, None, history, None)
    assert asked == [((X.shape[0], 3), 1)] and module.gate.n_open() == 1
    assert correlation_with_angle() > 0.9
    # Through that one unit the network draws the arc better than PCA does (before it adapts).
    error = reconstruction_error(module, X, 64)
    assert error < 0.5 * linear_errors[0]
    assert len(history) == 1500 // 20 and history[-1].reconstruction_error < 0.5 * history[0].reconstruction_error


def test_rows_read_back_from_coordinates_that_unroll_them_and_not_from_others():
    X, angle = _circle_arc()
    unrolled = readback_error(X, angle[:, None])
    shuffled = readback_error(X, torch.rand(X.shape[0], 1, generator=torch.Generator().manual_seed(1)))
    assert unrolled < 0.01 * X.var(0).sum() < shuffled


def test_no_graph_code_from_coordinates_that_read_back_worse_than_the_first_try():
    X, _ = _circle_arc(200)
    module, linear_errors = warm_started_module(X.numpy(), hidden_layer_sizes=(8,))
    before = _state(module.set_open_count(1))
    noise = lambda rows, n: np.random.RandomState(0).normal(size=(rows.shape[0], n))  # noqa: E731
    unit_count = AdaptedUnitCount(
        linear_errors, search=True, max_epochs=100, steps=200, closing_steps=50, batch_size=64, peak_learning_rate=1e-2,
        check_step=100, projection_factor=2.4, steps_per_record=20, graph_coordinates=noise, graph_steps=100,
    )  # fmt: skip
    history = []
    assert not unit_count._learn_graph_code(trainer_for(module), module.normalize(X), 1, None, history, None, beat=0.05)
    assert history == []
    for name, tensor in module.state_dict().items():
        torch.testing.assert_close(tensor, before[name], rtol=0, atol=0)


def test_a_graph_is_drawn_from_complete_training_rows_only(monkeypatch):
    X = _linear_data(n_samples=60, rank=3)
    module, linear_errors = warm_started_module(X.numpy(), hidden_layer_sizes=(8,))
    unit_count = _adapted_unit_count(linear_errors, graph_coordinates=lambda rows, n_components: rows[:, :n_components])
    trainer = trainer_for(module, missing_values=True)
    holed = X.clone()
    holed[::3, 1] = torch.nan  # 20 rows with a hole
    training_rows = torch.arange(10, 60)
    rows = unit_count._graph_rows(trainer, holed, training_rows)
    complete_training_rows = [i for i in range(10, 60) if i % 3]
    torch.testing.assert_close(_sorted_rows(rows), _sorted_rows(module.normalize(X[complete_training_rows])))
    monkeypatch.setattr("skdam._unit_search.GRAPH_ROWS", 7)
    assert unit_count._graph_rows(trainer, holed, training_rows).shape == (7, X.shape[1])
    # Too few complete rows to read any back from its ten nearest.
    holed[: 60 - 11, 0] = torch.nan
    assert unit_count._graph_rows(trainer, holed) is None


def test_no_graph_code_without_coordinates_or_budget():
    X, _ = _circle_arc(60)
    module, linear_errors = warm_started_module(X.numpy(), hidden_layer_sizes=(8,))
    before = _state(module.set_open_count(1))
    no_coordinates = _adapted_unit_count(linear_errors)  # graph_coordinates=None
    assert no_coordinates._graph_rows(trainer_for(module), X) is None
    assert not no_coordinates._learn_graph_code(trainer_for(module), None, 1, None, [], None)
    over_budget = AdaptedUnitCount(  # 180 steps left; a retry costs an adaptation's 200
        linear_errors, search=True, max_epochs=9, steps=200, closing_steps=50, batch_size=64, peak_learning_rate=1e-2,
        check_step=100, projection_factor=2.4, steps_per_record=20, graph_coordinates=lambda rows, n: pytest.fail("no budget"),
        graph_steps=100,
    )  # fmt: skip
    assert not over_budget._learn_graph_code(trainer_for(module), module.normalize(X), 1, None, [], None)
    for name, tensor in module.state_dict().items():
        torch.testing.assert_close(tensor, before[name], rtol=0, atol=0)


def test_a_network_ahead_of_pca_opens_the_units_its_gates_closed_too_soon(monkeypatch):
    module, unit_count, _, adaptations = _trusted_unit_count(
        monkeypatch, {6: 0.100, 5: 0.5}, {5: 0.200, 6: 0.100, 7: 0.050, 8: 0.045}
    )
    assert module.gate.n_open() == 7
    # 5 rejected: open; 8 rejected; 6 again to confirm the opening of 7.
    assert adaptations == [(6, 50, 3e-3), (5, 50, 3e-3), (7, 50, 3e-3), (8, 50, 3e-3), (6, 50, 3e-3)]
    assert unit_count.errors == {0: 1.0, 5: 0.200, 6: 0.100, 7: 0.050, 8: 0.045}


def test_an_adaptation_that_the_budget_would_cut_short_is_not_run():
    # 10 epochs of budget hold 200 steps, not the 300 asked: no error is recorded.
    X = _linear_data(n_samples=64, rank=3)
    module, linear_errors = warm_started_module(X.numpy(), hidden_layer_sizes=(16,))
    trainer = trainer_for(module)
    unit_count = _adapted_unit_count(linear_errors, max_epochs=10, steps=300)
    before = _state(module)
    assert unit_count._adapt(trainer, X, X, 2, None, [], None) is None
    for name, tensor in module.state_dict().items():
        torch.testing.assert_close(tensor, before[name], rtol=0, atol=0)
    assert unit_count._adapt(trainer, X, X, 2, None, [], None, steps=200) is not None


def test_a_fixed_count_keeps_no_validated_state_with_more_gates_open():
    # Three strong directions: the validation objective is lowest while the schedule
    # still has more than the one gate asked for open; that state must not be kept.
    X = _linear_data(n_samples=200, rank=3)
    module, _ = warm_started_module(X.numpy())
    _, result = train(module, X[:160], X_validation=X[160:], max_epochs=30, scheduled_pruning=True, min_open=1)
    assert [record.n_open for record in result.history][-1] == 1  # the schedule got there
    assert module.gate.n_open() == 1


@pytest.mark.parametrize(("retried", "kept"), [(0.30, 0.30), (0.45, 0.40)])
def test_a_fixed_count_at_pca_s_error_is_tried_from_a_graph_start_too(monkeypatch, retried, kept):
    # n_components=k: no rule to pass, but the curve entry must be what such a fit reaches,
    # so the fixed count gets the retry a search's closure gets, kept where it does better.
    X = _linear_data(n_samples=64, rank=6)
    module, _ = warm_started_module(X.numpy(), hidden_layer_sizes=(16,))
    module.set_open_count(4)
    calls = []
    monkeypatch.setattr("skdam._unit_search.reconstruction_error", lambda module, *args: 0.5)  # PCA's at 4
    monkeypatch.setattr(AdaptedUnitCount, "_adapt", lambda self, trainer, X_train, judged, count, *args, **kwargs: 0.40)

    def retry(self, trainer, X_train, judged, count, start, error, limit, history, on_epoch_end, steps):
        calls.append((count, error, limit))
        return min(retried, error)

    monkeypatch.setattr(AdaptedUnitCount, "_retry_from_graph_start", retry)
    unit_count = _adapted_unit_count([0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1], search=False)
    settled = EpochRecord(epoch=0, loss=0.54, reconstruction_error=0.5, validation_error=None, n_open=4, beta=0.0, learning_rate=1e-3)
    unit_count(trainer_for(module, min_open=4), X, None, settled, [], None)  # settled at the count fixed
    assert calls == [(4, 0.40, 0.40)]  # after the first adaptation, judged against it
    assert unit_count.errors == {0: 1.0, 4: kept} and module.gate.n_open() == 4


def test_a_fixed_count_ahead_of_pca_adapts_as_long_as_a_search_s_move(monkeypatch):
    # Ahead of PCA, a search reaches a count along a chain of short adaptations; a
    # fixed count gets one full adaptation instead, so that its curve entry is what
    # the search's would be, and no retry (it is not stuck at PCA's error).
    X = _linear_data(n_samples=64, rank=6)
    module, _ = warm_started_module(X.numpy(), hidden_layer_sizes=(16,))
    module.set_open_count(4)
    adaptations = []
    monkeypatch.setattr("skdam._unit_search.reconstruction_error", lambda module, *args: 0.1)  # PCA's at 4: 0.5

    def adapt(self, trainer, X_train, judged, count, target, history, on_epoch_end, steps=None, peak=None):
        adaptations.append((count, target, steps))
        return 0.05

    monkeypatch.setattr(AdaptedUnitCount, "_adapt", adapt)
    monkeypatch.setattr(AdaptedUnitCount, "_retry_from_graph_start", lambda *args: pytest.fail("no retry ahead of PCA"))
    unit_count = _adapted_unit_count([0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1], search=False)
    settled = EpochRecord(epoch=0, loss=0.14, reconstruction_error=0.1, validation_error=None, n_open=4, beta=0.0, learning_rate=1e-3)
    unit_count(trainer_for(module, min_open=4), X, None, settled, [], None)  # settled at the count fixed
    assert adaptations == [(4, None, None)]  # the full steps, no early stop
    assert unit_count.errors == {0: 1.0, 4: 0.05} and module.gate.n_open() == 4


def test_no_error_and_no_network_left_behind_pca_on_as_many_units(monkeypatch):
    # Rank-3 data, which PCA's 3 axes reconstruct exactly, and a perceptron whose
    # residual pulls the code off it: at 3 units the error is bounded by the
    # projection's while the network stands, and once decided the network becomes the
    # projection; at 2, where it does better than PCA, it stands.
    X = _linear_data(n_samples=200, rank=3)
    module, linear_errors = warm_started_module(X.numpy(), hidden_layer_sizes=(16,))
    with torch.no_grad():
        for residual in (module.encoder_residual, module.decoder_residual):
            residual[-1].weight.normal_(0.0, 0.5, generator=torch.Generator().manual_seed(0))
    directions = principal_axes(X.numpy().astype(np.float64), 3, np.random.RandomState(0)).directions
    unit_count, trainer = _adapted_unit_count(linear_errors, linear_directions=directions), trainer_for(module)
    module.set_open_count(3)
    behind, before = unit_count._error(trainer, X), _state(module)
    assert behind > 0.01
    assert unit_count._bounded_by_linear(trainer, X, 3, behind) < 1e-6
    assert all(torch.equal(before[name], tensor) for name, tensor in module.state_dict().items())
    unit_count.errors[3] = behind
    unit_count._no_worse_than_linear(trainer, X)
    assert module.gate.n_open() == 3 and unit_count._error(trainer, X) < 1e-6 and unit_count.errors[3] < 1e-6
    assert unit_count._bounded_by_linear(trainer, X, 2, 0.0) == 0.0
    module.set_open_count(2)
    ahead = _state(module)
    monkeypatch.setattr(unit_count, "_linear_error", lambda *args: 1.0)  # PCA far behind the network
    unit_count._no_worse_than_linear(trainer, X)
    assert all(torch.equal(ahead[name], tensor) for name, tensor in module.state_dict().items())


def _adaptation_with_offsets(monkeypatch, step_offsets):
    """Rank-3 data, a network at 3 units and a search adapting 100 steps in records of
    20, whose training error at each step is raised by the next of ``step_offsets``
    (the gradients stay the same)."""
    X = _linear_data(n_samples=200, rank=3)
    module, linear_errors = warm_started_module(X.numpy(), hidden_layer_sizes=(16,))
    step_offsets, batch_error = iter(step_offsets), _unit_search.batch_error

    def offset_error(*args, **kwargs):
        loss, *rest = batch_error(*args, **kwargs)
        return (loss + next(step_offsets), *rest)

    monkeypatch.setattr(_unit_search, "batch_error", offset_error)
    return X, module, trainer_for(module), _adapted_unit_count(linear_errors, steps=100)


@pytest.mark.parametrize(("offsets", "kept"), [((0.5, 0.1, 0.3, 0.3, 0.3), 1), ((0.5, 0.4, 0.3, 0.2, 0.1), 4)], ids=["thrown off", "falling"])
def test_an_adaptation_ends_with_its_best_training_record(monkeypatch, offsets, kept):
    # Five records of 20 steps; each record's training error is raised by its offset.
    # A network that the peak step throws off (3-fold, no spike) after its second
    # record goes back to it; one whose error keeps falling ends as it is.
    X, module, trainer, unit_count = _adaptation_with_offsets(monkeypatch, [offset for offset in offsets for _ in range(20)])
    states = []
    unit_count._adapt(trainer, X, X, 3, None, [], lambda record: states.append(_state(trainer.module)))
    assert len(states) == 5 and not torch.equal(states[1]["encoder_linear.weight"], states[4]["encoder_linear.weight"])
    for name, tensor in module.state_dict().items():
        torch.testing.assert_close(tensor, states[kept][name], rtol=0, atol=0)


def test_a_spike_goes_on_from_the_best_record_at_a_lower_peak(monkeypatch):
    # Records of 20 steps at 0.1, 0.1, then 5.0: the peak threw the network off, so
    # the adaptation goes on from its best record, with a third of the peak, for the
    # steps it has left, and ends there. The next adaptation starts at the full peak.
    peaks, one_cycle = [], _unit_search._one_cycle

    def noted_one_cycle(network, peak, steps):
        peaks.append((peak, steps))
        return one_cycle(network, peak, steps)

    monkeypatch.setattr(_unit_search, "_one_cycle", noted_one_cycle)
    X, _, trainer, unit_count = _adaptation_with_offsets(monkeypatch, [0.1] * 40 + [5.0] * 20 + [0.0] * 190)
    records = []
    error = unit_count._adapt(trainer, X, X, 3, None, [], records.append)
    assert [round(record.reconstruction_error, 1) for record in records] == [0.1, 0.1, 5.0, 0.0, 0.0]
    assert peaks == [(1e-2, 100), (pytest.approx(1e-2 / _unit_search.PEAK_CUT), 40)]
    assert trainer.epochs_run == 5  # as many steps as without the spike
    assert error < 0.01
    unit_count._adapt(trainer, X, X, 3, None, [], None)
    assert peaks[2] == (1e-2, 100)
    unit_count._adapt(trainer, X, X, 3, None, [], None, 50, 3e-3)  # a closing adaptation's steps and peak
    assert peaks[3] == (3e-3, 50)
