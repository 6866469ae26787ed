"""The PyTorch face: DAM gates as modules, their penalty, and pruning closed units."""

import math

import pytest
import torch
from torch import nn

from skdam.nn import DAMGate, DAMGate2d, PrunedGate, gate_penalty, prune


def _set_beta(gate, beta):
    with torch.no_grad():
        gate.beta.fill_(beta)
    return gate


# -- the gate -----------------------------------------------------------------------


@pytest.mark.parametrize("width, beta, steepness", [(10, 1.0, 1.0), (7, -2.3, 1.0), (50, -4.1, 0.5), (3, 0.2, 2.0)])
def test_gate_values_follow_the_formula_of_the_paper(width, beta, steepness):
    gate = _set_beta(DAMGate(width, steepness=steepness), beta)
    # METHOD.md: mu_i = 5 i / m, g_i = max(0, tanh(a^2 (mu_i + beta))), written out by hand.
    expected = [max(0.0, math.tanh(steepness**2 * (5 * i / width + beta))) for i in range(width)]
    torch.testing.assert_close(gate.gate_values(), torch.tensor(expected))
    hidden = torch.randn(4, width, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(gate(hidden), hidden * torch.tensor(expected))


def test_gates_close_lowest_offset_first_as_beta_falls():
    gate = DAMGate(20)
    previous_open = 20
    for beta in torch.linspace(1.0, -5.5, 131).tolist():
        mask = _set_beta(gate, beta).open_mask()
        n_open = int(mask.sum())
        # Always the n_open highest units: closing goes from unit 0 upwards.
        assert mask.tolist() == [False] * (20 - n_open) + [True] * n_open
        assert n_open <= previous_open
        previous_open = n_open
        if -5.0 <= beta <= 0.0:
            # The penalty's stand-in for the L0 norm: the count, plus the fraction of the
            # way the next unit is to opening (one whole unit exactly at a boundary).
            excess = gate.soft_open_count().item() - n_open
            assert -1e-5 <= excess <= 1 + 1e-5
    assert previous_open == 0


def test_a_closed_gate_passes_no_gradient():
    gate = _set_beta(DAMGate(10), -2.2)  # units with 0.5 i < 2.2 are closed: 0..4
    hidden = torch.randn(6, 10, generator=torch.Generator().manual_seed(1), requires_grad=True)
    (gate(hidden) ** 2).sum().backward()
    closed = ~gate.open_mask()
    assert closed.tolist() == [True] * 5 + [False] * 5
    assert torch.all(hidden.grad[:, closed] == 0)
    assert torch.all(hidden.grad[:, ~closed] != 0)
    # beta learns only from the open units: the same gradient with the closed ones zeroed.
    beta_gradient = gate.beta.grad.clone()
    gate.beta.grad = None
    masked = hidden.detach() * (~closed)
    (gate(masked) ** 2).sum().backward()
    torch.testing.assert_close(gate.beta.grad, beta_gradient)


def test_gate_2d_scales_each_channel_by_its_gate():
    gate = _set_beta(DAMGate2d(4), -1.6)  # mu = 0, 1.25, 2.5, 3.75: channels 0 and 1 closed
    feature_map = torch.randn(2, 4, 3, 5, generator=torch.Generator().manual_seed(2))
    output = gate(feature_map)
    values = gate.gate_values()
    assert output.shape == feature_map.shape
    assert gate.open_mask().tolist() == [False, False, True, True]
    for channel in range(4):
        torch.testing.assert_close(output[:, channel], feature_map[:, channel] * values[channel])


def test_gate_penalty_sums_soft_open_counts_at_any_depth():
    first, second = _set_beta(DAMGate(10), -1.0), _set_beta(DAMGate2d(5), 0.5)
    model = nn.Sequential(nn.Linear(3, 10), first, nn.Sequential(nn.Linear(10, 5), second))
    penalty = gate_penalty(model)
    torch.testing.assert_close(penalty, first.soft_open_count() + second.soft_open_count())
    penalty.backward()
    # Affine in beta with slope width / 5: one unit of penalty per open unit.
    torch.testing.assert_close(first.beta.grad, torch.tensor(2.0))
    torch.testing.assert_close(second.beta.grad, torch.tensor(1.0))
    with pytest.raises(ValueError, match="no DAMGate"):
        gate_penalty(nn.Linear(2, 2))


# -- pruning ------------------------------------------------------------------------


def _randomize(model, generator):
    """Weights from ``generator``; non-trivial batch-norm statistics, as after training."""
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, (nn.Linear, nn.Conv2d)):
                module.weight.copy_(torch.randn(module.weight.shape, generator=generator) * 0.5)
                module.bias.copy_(torch.randn(module.bias.shape, generator=generator) * 0.1)
            if isinstance(module, nn.modules.batchnorm._BatchNorm):
                n = module.num_features
                module.running_mean.copy_(torch.randn(n, generator=generator))
                module.running_var.copy_(torch.rand(n, generator=generator) + 0.5)
                module.weight.copy_(torch.randn(n, generator=generator))
                module.bias.copy_(torch.randn(n, generator=generator))
    return model


def _n_parameters(model):
    return sum(parameter.numel() for parameter in model.parameters())


def _make_mlp(generator):
    model = nn.Sequential(
        nn.Linear(8, 16),
        nn.BatchNorm1d(16),
        nn.ReLU(),
        _set_beta(DAMGate(16), -2.0),  # mu = 5 i / 16 < 2: units 0..6 closed
        nn.Dropout(0.3),
        nn.Linear(16, 12),
        nn.ELU(),
        _set_beta(DAMGate(12), -0.9),  # mu = 5 i / 12 < 0.9: units 0..2 closed
        nn.Linear(12, 3),
    )
    return _randomize(model, generator).eval()


def _make_cnn(generator):
    model = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        _set_beta(DAMGate2d(8), -1.4),  # mu = 5 i / 8 < 1.4: channels 0..2 closed
        nn.MaxPool2d(2),
        nn.Conv2d(8, 6, 3, padding=1),
        nn.BatchNorm2d(6),
        nn.ELU(),
        _set_beta(DAMGate2d(6), -3.0),  # mu = 5 i / 6 < 3: channels 0..3 closed
        nn.Dropout2d(0.2),
        nn.Flatten(),
        nn.Linear(6 * 4 * 4, 10),
        nn.ReLU(),
        _set_beta(DAMGate(10), -0.6),  # mu = i / 2 < 0.6: units 0..1 closed
        nn.Linear(10, 2),
    )
    return _randomize(model, generator).eval()


@pytest.mark.parametrize(
    "make_model, input_shape, open_counts",
    [(_make_mlp, (32, 8), [9, 9]), (_make_cnn, (16, 3, 8, 8), [5, 2, 8])],
    ids=["mlp", "cnn"],
)
def test_prune_removes_closed_units_and_keeps_the_outputs(make_model, input_shape, open_counts):
    generator = torch.Generator().manual_seed(3)
    model = make_model(generator)
    original_state = {name: value.clone() for name, value in model.state_dict().items()}
    inputs = torch.randn(*input_shape, generator=generator)
    assert [gate.n_open() for gate in model if isinstance(gate, DAMGate)] == open_counts

    pruned = prune(model)

    torch.testing.assert_close(pruned(inputs), model(inputs))
    assert _n_parameters(pruned) < _n_parameters(model)
    assert not any(isinstance(module, DAMGate) for module in pruned.modules())
    kept_gates = [module for module in pruned if isinstance(module, PrunedGate)]
    assert [gate.scale.numel() for gate in kept_gates] == open_counts
    assert all(torch.all(gate.scale > 0) for gate in kept_gates)
    assert not pruned.training
    # The original is untouched.
    for name, value in model.state_dict().items():
        torch.testing.assert_close(value, original_state[name])


def test_prune_counts_each_parameter_it_removes():
    model = _make_mlp(torch.Generator().manual_seed(4))
    pruned = prune(model)
    # Linear 8 -> 9 (+bias), BatchNorm 9, Linear 9 -> 9 (+bias), Linear 9 -> 3 (+bias);
    # the gates' beta parameters become buffers.
    expected = (8 * 9 + 9) + 2 * 9 + (9 * 9 + 9) + (9 * 3 + 3)
    assert _n_parameters(pruned) == expected
    assert pruned[1].running_mean.shape == (9,)
    widths = (pruned[0].out_features, pruned[5].in_features, pruned[5].out_features, pruned[8].in_features)
    assert widths == (9, 9, 9, 9)


def test_pruned_flatten_keeps_the_spatial_block_of_each_open_channel():
    model = _make_cnn(torch.Generator().manual_seed(5))
    pruned = prune(model)
    # Open channels 4 and 5 of the second gate own inputs 64..95 of the Linear.
    torch.testing.assert_close(pruned[11].weight, model[11].weight[2:, 64:96])
    assert pruned[5].weight.shape == (6 - 4, 5, 3, 3)


def test_prune_keeps_dtype_and_training_mode_and_stays_trainable():
    model = _make_mlp(torch.Generator().manual_seed(6)).double().train()
    pruned = prune(model)
    assert pruned.training
    assert all(parameter.dtype == torch.float64 for parameter in pruned.parameters())
    pruned(torch.randn(4, 8, dtype=torch.float64)).sum().backward()
    assert all(parameter.grad is not None for parameter in pruned.parameters())


def test_prune_with_every_gate_open_changes_nothing_but_the_gates():
    model = nn.Sequential(nn.Linear(4, 5), nn.Tanh(), DAMGate(5), nn.Linear(5, 2)).eval()
    pruned = prune(model)
    assert pruned[0].weight.shape == (5, 4)
    inputs = torch.randn(3, 4, generator=torch.Generator().manual_seed(7))
    torch.testing.assert_close(pruned(inputs), model(inputs))


def _linear_gate_linear(*between, before=()):
    return nn.Sequential(nn.Linear(4, 6), *before, _set_beta(DAMGate(6), -1.0), *between, nn.Linear(6, 2))


@pytest.mark.parametrize(
    "model, error, match",
    [
        (nn.Sequential(DAMGate(4), nn.Linear(4, 2)), ValueError, "no Linear before it"),
        (nn.Sequential(nn.Linear(3, 4), DAMGate(4)), ValueError, "no Linear or Conv2d after it"),
        (_linear_gate_linear(before=[nn.LayerNorm(6)]), ValueError, "LayerNorm at position 1"),
        (_linear_gate_linear(nn.BatchNorm1d(6)), ValueError, "Put batch normalisation before the gate"),
        (_linear_gate_linear(nn.Sigmoid()), ValueError, "Sigmoid at position 2"),
        (_linear_gate_linear(nn.Softmax(dim=-1)), ValueError, "Softmax"),
        (nn.Sequential(nn.Conv2d(1, 4, 3), DAMGate(4), nn.Conv2d(4, 2, 3)), ValueError, "DAMGate2d"),
        (nn.Sequential(nn.Linear(3, 4), DAMGate2d(4), nn.Linear(4, 2)), ValueError, "layer before it is a Linear"),
        (nn.Sequential(nn.Linear(3, 4), DAMGate(5), nn.Linear(5, 2)), ValueError, "gates 5 units but Linear"),
        (nn.Sequential(nn.Linear(3, 4), DAMGate(4), DAMGate(4), nn.Linear(4, 2)), ValueError, "DAMGate at position 2"),
        (
            nn.Sequential(nn.Conv2d(4, 4, 3, groups=2), DAMGate2d(4), nn.Conv2d(4, 2, 3)),
            ValueError,
            "groups=2",
        ),
        (
            nn.Sequential(nn.Conv2d(1, 4, 3), DAMGate2d(4), nn.Flatten(), nn.Linear(30, 2)),
            ValueError,
            "not a multiple of the 4",
        ),
        (
            nn.Sequential(nn.Linear(3, 4), nn.Sequential(DAMGate(4)), nn.Linear(4, 2)),
            ValueError,
            "nested",
        ),
        (nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 2)), ValueError, "no DAMGate"),
        (nn.Linear(3, 4), TypeError, "nn.Sequential"),
        (
            nn.Sequential(nn.Linear(3, 4), _set_beta(DAMGate(4), -6.0), nn.Linear(4, 2)),
            ValueError,
            "every unit is closed",
        ),
    ],
    ids=[
        "gate-first",
        "gate-last",
        "layer-norm-before-gate",
        "batch-norm-after-gate",
        "sigmoid-after-gate",
        "softmax-after-gate",
        "1d-gate-on-conv",
        "2d-gate-on-linear",
        "width-mismatch",
        "two-gates-in-a-row",
        "grouped-conv",
        "flatten-size-mismatch",
        "nested-gate",
        "no-gate",
        "not-sequential",
        "all-closed",
    ],
)
def test_prune_rejects_what_it_cannot_prune_exactly(model, error, match):
    with pytest.raises(error, match=match):
        prune(model)
