"""The PyTorch face: DAM gates as modules, their penalty, and pruning closed units."""

import math
import sys

import pytest
import torch
from torch import nn

from skdam.nn import DAMGate, DAMGate2d, beta_penalty, freeze_gates, gate_penalty, place_gates, prune


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


def test_default_offsets_and_beta_floor_are_those_of_the_paper():
    gate = DAMGate(8)
    torch.testing.assert_close(gate.offsets, 5 * torch.arange(8) / 8)
    assert gate.full_width == 8 and gate.offset_spacing == 5 / 8
    # Half a spacing above where unit 8 - 3 = 5 closes.
    assert gate.beta_floor(3) == pytest.approx(-5 * 5 / 8 + 0.5 * 5 / 8)
    torch.testing.assert_close(DAMGate2d(8).offsets, gate.offsets)


def test_grouped_gate_closes_channels_evenly_across_groups():
    gate = DAMGate2d(12, groups=3)  # groups of 4 channels: 0-3, 4-7, 8-11
    assert sorted(gate.offsets.tolist()) == pytest.approx((5 * torch.arange(12) / 12).tolist())
    for n_closed_per_group in range(1, 4):
        _set_beta(gate, -float(torch.sort(gate.offsets).values[3 * n_closed_per_group - 1]))
        closed = (~gate.open_mask()).reshape(3, 4)
        # The same positions closed in every group: the first n of each.
        assert closed.tolist() == [[True] * n_closed_per_group + [False] * (4 - n_closed_per_group)] * 3
    assert gate.beta_floor(12) == pytest.approx(0.5 * 5 / 12)
    with pytest.raises(ValueError, match="divisor"):
        DAMGate2d(10, groups=3)


def test_beta_penalty_is_the_mean_clamped_beta_and_freeze_gates_stops_it():
    first, second = _set_beta(DAMGate(4), -7.0), _set_beta(DAMGate2d(6), 0.5)
    model = nn.Sequential(nn.Linear(2, 4), first, nn.Linear(4, 6), second)
    penalty = beta_penalty(model)
    torch.testing.assert_close(penalty, torch.tensor((-5.0 + 0.5) / 2))
    penalty.backward()
    # Below -5 the push stops: no gradient to a gate whose units are all closed.
    assert first.beta.grad.item() == 0.0 and second.beta.grad.item() == pytest.approx(0.5)
    assert freeze_gates(model) is model
    assert not first.beta.requires_grad and not second.beta.requires_grad
    freeze_gates(model, frozen=False)
    assert first.beta.requires_grad and second.beta.requires_grad


# -- placing gates ------------------------------------------------------------------


def test_place_gates_after_every_batchnorm_by_default():
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.Flatten(), nn.Linear(4, 3), nn.BatchNorm1d(3))
    gates = place_gates(model, initial_beta=0.3)
    assert list(gates) == ["1", "4"]
    assert isinstance(gates["1"], DAMGate2d) and gates["1"].width == 4
    assert type(gates["4"]) is DAMGate and gates["4"].width == 3
    assert model[1][1] is gates["1"] and model[4][1] is gates["4"]
    assert gates["4"].beta.item() == pytest.approx(0.3)


def test_place_gates_by_name_or_rule_with_groups():
    model = nn.Sequential(nn.Conv2d(1, 6, 3), nn.Sequential(nn.Conv2d(6, 6, 3, groups=3)), nn.Linear(6, 2))
    gates = place_gates(model, ["0", "2"], groups={"0": 3})
    assert gates["0"].groups == 3 and type(gates["2"]) is DAMGate
    gates = place_gates(model, lambda name, module: name == "1.0")
    assert list(gates) == ["1.0"] and isinstance(model[1][0][1], DAMGate2d)
    with pytest.raises(ValueError, match="No module named"):
        place_gates(model, ["7"])
    with pytest.raises(ValueError, match="ReLU"):
        place_gates(nn.Sequential(nn.ReLU()), ["0"])
    with pytest.raises(ValueError, match="No layer"):
        place_gates(nn.Sequential(nn.ReLU()))


# -- pruning ------------------------------------------------------------------------

try:
    import torch_pruning as tp
except ImportError:  # the prune extra is not installed: only the error is tested
    tp = None
needs_torch_pruning = pytest.mark.skipif(tp is None, reason="needs torch-pruning (pip install skdam[prune])")


def _randomize(model, generator):
    """Weights from ``generator``; non-trivial batch-norm statistics, as after training."""
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, (nn.Linear, nn.Conv2d)):
                module.weight.copy_(torch.randn(module.weight.shape, generator=generator) * 0.5)
                if module.bias is not None:
                    module.bias.copy_(torch.randn(module.bias.shape, generator=generator) * 0.1)
            if isinstance(module, nn.modules.batchnorm._BatchNorm):
                n = module.num_features
                module.running_mean.copy_(torch.randn(n, generator=generator))
                module.running_var.copy_(torch.rand(n, generator=generator) + 0.5)
                module.weight.copy_(torch.randn(n, generator=generator))
                module.bias.copy_(torch.randn(n, generator=generator))
    return model


class Block(nn.Module):
    """A post-activation residual block: relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x))."""

    def __init__(self, in_channels, channels, stride=1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, channels, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)
        self.shortcut = nn.Identity()
        if stride != 1 or in_channels != channels:
            self.shortcut = nn.Sequential(nn.Conv2d(in_channels, channels, 1, stride, bias=False), nn.BatchNorm2d(channels))

    def forward(self, x):
        out = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(self.bn2(self.conv2(out)) + self.shortcut(x))


def _resnet(generator):
    """Stem (8 channels), two blocks on the 8-channel stream, a widening block, head."""
    model = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1, bias=False),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        Block(8, 8),
        Block(8, 8),
        Block(8, 12, stride=2),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(12, 5),
    )
    return _randomize(model, generator)


def _counts(model, inputs):
    macs, n_parameters = tp.utils.count_ops_and_params(model, inputs[:1])
    return macs, n_parameters


def _assert_prunes_exactly(model, inputs):
    """Prune; outputs agree to float32 rounding in eval mode; return the pruned copy."""
    training = model.training
    pruned = prune(model, inputs[:1])
    assert pruned.training == training
    model.eval(), pruned.eval()
    # Sums over fewer channels round differently: relative to outputs of up to a few
    # hundred, not absolute (an AMD EPYC's kernels differed by 1.5e-5 on 197).
    torch.testing.assert_close(pruned(inputs), model(inputs), rtol=1e-6, atol=1e-5)
    model.train(training)
    return pruned.train(training)


def _widths(model):
    return {name: module.width for name, module in model.named_modules() if isinstance(module, DAMGate)}


@needs_torch_pruning
def test_prune_a_residual_block_s_internal_channels():
    generator = torch.Generator().manual_seed(0)
    model = _resnet(generator)
    gates = place_gates(model, lambda name, module: name.endswith("bn1"))
    for gate, beta in zip(gates.values(), (-1.0, -2.6, -3.4)):  # closes 2, 5 and 9 channels
        _set_beta(gate, beta)
    inputs = torch.randn(6, 3, 8, 8, generator=generator)
    original_state = {name: value.clone() for name, value in model.state_dict().items()}

    pruned = _assert_prunes_exactly(model, inputs)

    assert _widths(pruned) == {"3.bn1.1": 6, "4.bn1.1": 3, "5.bn1.1": 3}
    assert pruned[3].conv1.out_channels == 6 and pruned[3].conv2.in_channels == 6
    assert pruned[3].bn1[0].running_mean.shape == (6,)
    (macs, n_parameters), (pruned_macs, pruned_parameters) = _counts(model, inputs), _counts(pruned, inputs)
    assert pruned_macs < macs and pruned_parameters < n_parameters
    # The kept gates keep their offsets and values; the original is untouched.
    torch.testing.assert_close(pruned[3].bn1[1].offsets, gates["3.bn1"].offsets[2:])
    for name, value in model.state_dict().items():
        torch.testing.assert_close(value, original_state[name])


@needs_torch_pruning
@pytest.mark.filterwarnings("ignore:Unwrapped parameters")
def test_prune_needs_the_gate_pruner_registered():
    # Without a pruner for the gate class, Torch-Pruning slices the convolution and the
    # batch normalisation but not the gate's offsets: the next forward pass fails.
    model = _resnet(torch.Generator().manual_seed(1))
    gate = place_gates(model, ["3.bn1"])["3.bn1"]
    _set_beta(gate, -2.0).beta.requires_grad_(False)
    inputs = torch.randn(2, 3, 8, 8)
    graph = tp.DependencyGraph().build_dependency(model.eval(), example_inputs=inputs[:1])
    graph.get_pruning_group(model[3].conv1, tp.prune_conv_out_channels, idxs=[0, 1, 2, 3]).prune()
    with pytest.raises(RuntimeError, match="size"):
        model(inputs)


def _stream_gated_resnet(generator, stream_betas):
    """Gates after every batch normalisation; ``stream_betas`` for the writers of the 8-channel stream."""
    model = _resnet(generator)
    gates = place_gates(model)
    for gate in gates.values():
        _set_beta(gate, 0.0)  # closes channel 0 of every gate (offset 0)
    for name, beta in stream_betas.items():
        _set_beta(gates[name], beta)
    return model, gates


@needs_torch_pruning
def test_prune_a_residual_stream_closed_by_every_writer():
    generator = torch.Generator().manual_seed(2)
    # The stream of 8 channels is written by the stem and by both blocks' second
    # convolutions; all three close channels 0..3 (offsets 5 i / 8 < 2.4).
    writers = {"1": -2.4, "3.bn2": -2.4, "4.bn2": -2.4}
    model, _ = _stream_gated_resnet(generator, writers)
    inputs = torch.randn(5, 3, 8, 8, generator=generator)
    pruned = _assert_prunes_exactly(model, inputs)
    widths = _widths(pruned)
    assert [widths[f"{name}.1"] for name in writers] == [4, 4, 4]
    assert pruned[0].out_channels == 4 and pruned[5].conv1.in_channels == 4
    assert pruned[5].shortcut[0].in_channels == 4
    assert _counts(pruned, inputs)[0] < _counts(model, inputs)[0]


@needs_torch_pruning
@pytest.mark.parametrize("open_writer", ["1", "3.bn2", "4.bn2"])
def test_prune_keeps_a_stream_channel_that_one_writer_still_writes(open_writer):
    generator = torch.Generator().manual_seed(3)
    writers = {"1": -2.4, "3.bn2": -2.4, "4.bn2": -2.4}
    writers[open_writer] = -1.3  # this writer closes only channels 0..2
    model, _ = _stream_gated_resnet(generator, writers)
    inputs = torch.randn(5, 3, 8, 8, generator=generator)
    pruned = _assert_prunes_exactly(model, inputs)
    # Channel 3 is still written by one layer: it stays everywhere on the stream.
    assert [_widths(pruned)[f"{name}.1"] for name in writers] == [5, 5, 5]


@needs_torch_pruning
def test_prune_keeps_a_stream_channel_with_an_ungated_writer():
    generator = torch.Generator().manual_seed(4)
    model = _resnet(generator)
    gates = place_gates(model, ["3.bn2", "4.bn2"])  # the stem is not gated
    for gate in gates.values():
        _set_beta(gate, -2.4)
    inputs = torch.randn(5, 3, 8, 8, generator=generator)
    pruned = _assert_prunes_exactly(model, inputs)
    assert set(_widths(pruned).values()) == {8}


@needs_torch_pruning
def test_prune_keeps_channels_that_a_batchnorm_after_the_gate_reads():
    # Pre-activation order: the gated channels reach a BatchNorm, which maps 0 to a
    # constant; they must stay.
    generator = torch.Generator().manual_seed(5)
    model = nn.Sequential(
        nn.Conv2d(3, 6, 3, padding=1), _set_beta(DAMGate2d(6), -2.0), nn.BatchNorm2d(6), nn.ReLU(),
        nn.Conv2d(6, 4, 3), nn.Flatten(), nn.Linear(4 * 6 * 6, 2),
    )
    inputs = torch.randn(3, 3, 8, 8, generator=generator)
    pruned = _assert_prunes_exactly(_randomize(model, generator), inputs)
    assert pruned[1].width == 6


@needs_torch_pruning
@pytest.mark.parametrize("groups, expected_width", [(2, 4), (1, 8)], ids=["interleaved", "plain-offsets"])
def test_prune_before_a_grouped_convolution(groups, expected_width):
    generator = torch.Generator().manual_seed(6)
    model = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8), nn.ReLU(),
        nn.Conv2d(8, 8, 3, padding=1, groups=2, bias=False), nn.BatchNorm2d(8), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 3),
    )
    gate = place_gates(_randomize(model, generator), ["1"], groups=groups)["1"]
    # Four channels closed. With groups=2, positions 0 and 1 of both groups (channels
    # 0, 1, 4, 5): they go. With plain offsets, channels 0..3, all in the first group:
    # the grouped convolution can only lose a position from both groups, so none go.
    _set_beta(gate, -float(torch.sort(gate.offsets).values[3]))
    assert gate.n_open() == 4
    inputs = torch.randn(4, 3, 6, 6, generator=generator)
    pruned = _assert_prunes_exactly(model, inputs)
    assert pruned[1][1].width == expected_width
    assert pruned[3].in_channels == expected_width and pruned[3].groups == 2


@needs_torch_pruning
def test_prune_a_gated_linear_before_the_head():
    generator = torch.Generator().manual_seed(7)
    model = nn.Sequential(
        nn.Conv2d(1, 4, 3, bias=False), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
        nn.Linear(4 * 3 * 3, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Dropout(0.2), nn.Linear(16, 3),
    )
    gates = place_gates(_randomize(model, generator), ["1", "6"])
    _set_beta(gates["1"], -1.5)  # channels 0 and 1 of 4 (offsets 0, 1.25)
    _set_beta(gates["6"], -2.2)  # units 0..7 of 16
    inputs = torch.randn(8, 1, 8, 8, generator=generator)
    pruned = _assert_prunes_exactly(model, inputs)
    assert _widths(pruned) == {"1.1": 2, "6.1": 8}
    # Through the Flatten each channel owns 9 inputs of the Linear.
    assert pruned[5].in_features == 2 * 9 and pruned[5].out_features == 8 and pruned[9].in_features == 8
    assert _counts(pruned, inputs)[1] < _counts(model, inputs)[1]


@needs_torch_pruning
def test_prune_keeps_the_output_size_and_one_channel_of_an_all_closed_gate():
    model = nn.Sequential(nn.Linear(3, 6), _set_beta(DAMGate(6), -6.0), nn.ReLU(), nn.Linear(6, 4), DAMGate(4))
    _set_beta(model[4], -2.0)  # closes outputs of the network: they must stay
    inputs = torch.randn(5, 3, generator=torch.Generator().manual_seed(8))
    pruned = _assert_prunes_exactly(model, inputs)
    assert pruned[1].width == 1 and pruned[3].in_features == 1
    assert pruned(inputs).shape == (5, 4)


@needs_torch_pruning
def test_training_continues_after_pruning():
    generator = torch.Generator().manual_seed(9)
    model = _resnet(generator)
    gates = place_gates(model, lambda name, module: name.endswith("bn1"))
    for gate in gates.values():
        _set_beta(gate, -2.1)  # 4 of 8 (and 6 of 12... 5 of 12) channels closed
    inputs = torch.randn(6, 3, 8, 8, generator=generator)
    pruned = _assert_prunes_exactly(model.train(), inputs)
    for name, gate in gates.items():
        kept = dict(pruned.named_modules())[f"{name}.1"]
        assert kept.width == gate.n_open() and kept.n_open() == gate.n_open()
        torch.testing.assert_close(kept.soft_open_count(), gate.soft_open_count())
        torch.testing.assert_close(kept.gate_values(), gate.gate_values()[gate.open_mask()])
    torch.testing.assert_close(gate_penalty(pruned), gate_penalty(model))
    torch.testing.assert_close(beta_penalty(pruned), beta_penalty(model))
    # One more closure: the pruned gates still count it as the unpruned ones do.
    for gate in list(gates.values()) + [m for m in pruned.modules() if isinstance(m, DAMGate)]:
        _set_beta(gate, -2.9)
    for name, gate in gates.items():
        kept = dict(pruned.named_modules())[f"{name}.1"]
        assert kept.n_open() == gate.n_open()
        torch.testing.assert_close(kept.soft_open_count(), gate.soft_open_count())
        assert kept.beta_floor(kept.n_open()) == pytest.approx(gate.beta_floor(gate.n_open()))
    # And an optimiser step on the pruned network moves beta.
    optimizer = torch.optim.SGD(pruned.parameters(), lr=0.1)
    loss = pruned(inputs).square().mean() + 0.1 * gate_penalty(pruned)
    loss.backward()
    before = [gate.beta.item() for gate in pruned.modules() if isinstance(gate, DAMGate)]
    optimizer.step()
    assert all(gate.beta.item() != value for gate, value in zip([g for g in pruned.modules() if isinstance(g, DAMGate)], before))


@needs_torch_pruning
def test_a_pruned_model_saves_and_loads(tmp_path):
    generator = torch.Generator().manual_seed(10)
    model = _resnet(generator)
    for gate in place_gates(model, lambda name, module: name.endswith("bn1")).values():
        _set_beta(gate, -2.6)
    inputs = torch.randn(4, 3, 8, 8, generator=generator)
    pruned = _assert_prunes_exactly(model, inputs)
    # Whole model: architecture and state.
    torch.save(pruned, tmp_path / "pruned.pt")
    loaded = torch.load(tmp_path / "pruned.pt", weights_only=False)
    torch.testing.assert_close(loaded(inputs), pruned(inputs))
    assert _widths(loaded) == _widths(pruned)
    # State only: load it into the same model pruned again.
    torch.save(pruned.state_dict(), tmp_path / "state.pt")
    rebuilt = prune(model, inputs[:1])
    rebuilt.load_state_dict(torch.load(tmp_path / "state.pt"))
    torch.testing.assert_close(rebuilt(inputs), pruned(inputs))


@needs_torch_pruning
def test_prune_keeps_dtype_and_training_mode():
    model = nn.Sequential(nn.Linear(4, 6), nn.BatchNorm1d(6), nn.ReLU(), nn.Linear(6, 2))
    place_gates(model)
    _set_beta(model[1][1], -1.0)
    model = _randomize(model, torch.Generator().manual_seed(11)).double().train()
    pruned = prune(model, torch.randn(2, 4, dtype=torch.float64))
    assert pruned.training and model.training
    assert all(parameter.dtype == torch.float64 for parameter in pruned.parameters())
    assert pruned[0].out_features == 4


def test_prune_without_gates_or_torch_pruning(monkeypatch):
    with pytest.raises(ValueError, match="no DAMGate"):
        prune(nn.Sequential(nn.Linear(3, 4)), torch.randn(1, 3))
    monkeypatch.setitem(sys.modules, "torch_pruning", None)  # import torch_pruning now fails
    with pytest.raises(ImportError, match=r"skdam\[prune\]"):
        prune(nn.Sequential(nn.Linear(3, 4), DAMGate(4)), torch.randn(1, 3))
