"""Remove the units that DAM gates have closed from an ``nn.Sequential``.

Pure PyTorch; nothing here knows about scikit-learn.

A closed gate multiplies its unit by zero, so that unit's producing row, its batch
normalisation entries, its gate entry and its column in the next layer contribute
nothing to the output: :func:`prune` cuts them out and the smaller network computes
the same function.
"""

import copy

import torch
from torch import nn

from ._gate import DAMGate, DAMGate2d

#: Modules applied to each unit on its own. Before a gate any of them may sit between
#: the producer and the gate (whatever they do to a closed unit, the gate zeroes it).
_ELEMENTWISE = (
    nn.Identity,
    nn.ReLU,
    nn.ReLU6,
    nn.LeakyReLU,
    nn.ELU,
    nn.SELU,
    nn.CELU,
    nn.GELU,
    nn.SiLU,
    nn.Mish,
    nn.Tanh,
    nn.Hardtanh,
    nn.Hardswish,
    nn.Softsign,
    nn.Tanhshrink,
    nn.Softshrink,
    nn.Hardshrink,
    nn.Sigmoid,
    nn.Hardsigmoid,
    nn.Softplus,
    nn.LogSigmoid,
)
#: Dropout is the identity in eval mode, and in training mode it keeps zeros at zero
#: (AlphaDropout excepted, but prune promises equal outputs in eval mode only).
_DROPOUT = (nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.AlphaDropout, nn.FeatureAlphaDropout)
#: Channel-wise spatial pooling; each maps an all-zero channel to an all-zero channel.
_POOLING_2D = (nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d, nn.LPPool2d)


class PrunedGate(nn.Module):
    """The open gate values of a :class:`DAMGate`, frozen into a fixed scale.

    :func:`prune` puts one in place of each gate: it multiplies unit ``i`` (the last
    dimension, or the channel dimension of an ``(N, C, H, W)`` map when
    ``channel_dim=1``) by ``scale[i]``, the value the gate had, so the pruned network
    computes what the gated one did. It has no parameters: pruning ends the DAM
    training, as the paper's single training stage intends.

    Parameters
    ----------
    scale : torch.Tensor of shape (n_units,)
        Positive per-unit factors, the gate values of the units left.
    channel_dim : {-1, 1}, default=-1
        ``-1`` for a :class:`DAMGate` (last dimension), ``1`` for a
        :class:`DAMGate2d` (channels of a 4-D map).

    Examples
    --------
    >>> import torch
    >>> from skdam.nn import PrunedGate
    >>> PrunedGate(torch.tensor([0.5, 2.0]))(torch.ones(3, 2))[0]
    tensor([0.5000, 2.0000])
    """

    def __init__(self, scale, channel_dim=-1):
        super().__init__()
        if channel_dim not in (-1, 1):
            raise ValueError(f"channel_dim must be -1 or 1, got {channel_dim}.")
        self.channel_dim = channel_dim
        self.register_buffer("scale", torch.as_tensor(scale).detach().clone())

    def forward(self, hidden):
        if self.channel_dim == 1:
            return hidden * self.scale.view(1, -1, 1, 1)
        return hidden * self.scale

    def extra_repr(self):
        return f"{self.scale.numel()}, channel_dim={self.channel_dim}"


def gate_penalty(model):
    """Sum of ``soft_open_count()`` over every DAM gate in ``model``.

    Add ``alpha * gate_penalty(model)`` to a training loss to charge ``alpha`` per
    open unit: the DAM penalty of the paper, in units that do not depend on the
    widths of the gates.

    Parameters
    ----------
    model : torch.nn.Module
        A network holding one or more :class:`DAMGate` or :class:`DAMGate2d`,
        at any depth.

    Returns
    -------
    penalty : torch.Tensor
        A differentiable scalar, the soft number of open units.

    Examples
    --------
    >>> from torch import nn
    >>> from skdam.nn import DAMGate, gate_penalty
    >>> model = nn.Sequential(nn.Linear(3, 4), DAMGate(4), nn.Linear(4, 1))
    >>> gate_penalty(model)
    tensor(4.8000, grad_fn=<SumBackward0>)
    """
    counts = [module.soft_open_count() for module in model.modules() if isinstance(module, DAMGate)]
    if not counts:
        raise ValueError(f"{type(model).__name__} holds no DAMGate: there is nothing to penalise.")
    return torch.stack(counts).sum()


def prune(model):
    """A smaller copy of ``model`` without the units its DAM gates have closed.

    For each gate (a direct child of the ``nn.Sequential``), the units whose gate
    value is zero are removed from:

    - the producing layer, the nearest :class:`~torch.nn.Linear` (before a
      :class:`DAMGate`) or :class:`~torch.nn.Conv2d` (before a :class:`DAMGate2d`)
      before the gate: its output rows or channels and bias entries;
    - every :class:`~torch.nn.BatchNorm1d`/:class:`~torch.nn.BatchNorm2d` between
      producer and gate: weight, bias and running statistics;
    - the gate itself, replaced by a :class:`PrunedGate` holding the open units' gate
      values (a fixed per-unit scale, which keeps the outputs identical whatever the
      layers after the gate do with it);
    - the consuming layer, the nearest ``Linear`` or ``Conv2d`` after the gate: its
      input columns or input channels. Through an :class:`~torch.nn.Flatten`
      (``Conv2d`` -> ``DAMGate2d`` -> ... -> ``Flatten`` -> ``Linear``) each channel
      owns ``H * W`` consecutive inputs of the ``Linear``, all removed with it.

    Element-wise activations, dropout and 2-D pooling may sit between these layers.
    Between the gate and the consumer they must keep zero at zero (``ReLU``, ``ELU``,
    ``Tanh``, pooling... but not ``Sigmoid`` or ``BatchNorm``), because the consumer
    is pruned on the premise that a closed unit reaches it as zero: put batch
    normalisation before the gate. The original ``model`` is left untouched.

    Parameters
    ----------
    model : torch.nn.Sequential
        The gated network. Its outputs are preserved in eval mode, to float
        rounding.

    Returns
    -------
    pruned : torch.nn.Sequential
        A deep copy with the closed units removed and every gate replaced by a
        :class:`PrunedGate`; same device, dtype and training mode as ``model``.

    Raises
    ------
    TypeError
        If ``model`` is not an ``nn.Sequential``.
    ValueError
        If a gate is not a direct child, has no prunable producer or consumer, has
        an unsupported module around it, disagrees in width with its neighbours, or
        has every unit closed.

    References
    ----------
    J. Bu, A. Daw, M. Maruf, A. Karpatne, "Learning Compact Representations of
    Neural Networks using DiscriminAtive Masking (DAM)", NeurIPS 2021,
    arXiv:2110.00684.

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> from skdam.nn import DAMGate, prune
    >>> model = nn.Sequential(nn.Linear(3, 10), nn.ReLU(), DAMGate(10), nn.Linear(10, 2))
    >>> with torch.no_grad():
    ...     _ = model[2].beta.fill_(-1.8)  # closes the 4 units with mu_i = 0.5 i < 1.8
    >>> pruned = prune(model)
    >>> pruned
    Sequential(
      (0): Linear(in_features=3, out_features=6, bias=True)
      (1): ReLU()
      (2): PrunedGate(6, channel_dim=-1)
      (3): Linear(in_features=6, out_features=2, bias=True)
    )
    >>> x = torch.randn(5, 3)
    >>> torch.allclose(pruned(x), model(x))
    True
    """
    if not isinstance(model, nn.Sequential):
        raise TypeError(f"prune expects an nn.Sequential, got {type(model).__name__}.")
    children = list(model)
    gate_positions = [position for position, child in enumerate(children) if isinstance(child, DAMGate)]
    n_gates = sum(isinstance(module, DAMGate) for module in model.modules())
    if n_gates > len(gate_positions):
        raise ValueError(
            "prune handles DAM gates that are direct children of the nn.Sequential; "
            f"{n_gates - len(gate_positions)} gate(s) sit inside nested modules."
        )
    if not gate_positions:
        raise ValueError("The model holds no DAMGate: there is nothing to prune.")

    # Every check runs on the original first, so an unsupported structure fails
    # before anything is copied.
    plans = [_plan(children, position) for position in gate_positions]
    pruned = copy.deepcopy(model)
    pruned_children = list(pruned)
    for plan in plans:
        _apply(pruned, pruned_children, plan)
    return pruned


def _plan(children, gate_position):
    """Where the gate's units live: producer, normalisations, consumer, open mask."""
    gate = children[gate_position]
    is_2d = isinstance(gate, DAMGate2d)
    producer_type = nn.Conv2d if is_2d else nn.Linear
    where = f"the {type(gate).__name__} at position {gate_position}"

    # Backwards to the producer: any unit-wise module may sit between, the gate
    # zeroes closed units whatever they became.
    normalizations = []
    producer_position = None
    for position in range(gate_position - 1, -1, -1):
        module = children[position]
        if isinstance(module, producer_type):
            producer_position = position
            break
        if isinstance(module, (nn.Linear, nn.Conv2d)):
            raise ValueError(
                f"Cannot prune {where}: the layer before it is a {type(module).__name__}; gate the output "
                f"of a Linear with a DAMGate and the channels of a Conv2d with a DAMGate2d."
            )
        if isinstance(module, (nn.BatchNorm2d if is_2d else nn.BatchNorm1d)):
            normalizations.append(position)
        elif not _is_unitwise(module, is_2d):
            raise ValueError(
                f"Cannot prune {where}: {type(module).__name__} at position {position} sits between it "
                f"and its producer, and prune only knows how units pass through element-wise "
                f"activations, dropout, batch normalisation and pooling."
            )
    if producer_position is None:
        raise ValueError(
            f"Cannot prune {where}: no {producer_type.__name__} before it produces the units it gates."
        )
    producer = children[producer_position]
    if is_2d:
        _check_plain_conv(producer, producer_position, where)
    n_produced = producer.out_channels if is_2d else producer.out_features
    for position in [producer_position, *normalizations]:
        width = n_produced if position == producer_position else children[position].num_features
        if width != gate.width:
            raise ValueError(
                f"Cannot prune {where}: it gates {gate.width} units but {type(children[position]).__name__} "
                f"at position {position} has {width}."
            )

    # Forwards to the consumer: closed units must still be zero when they get there.
    consumer_position = None
    flatten_position = None
    for position in range(gate_position + 1, len(children)):
        module = children[position]
        if isinstance(module, (nn.Linear, nn.Conv2d)):
            consumer_position = position
            break
        if is_2d and flatten_position is None and isinstance(module, nn.Flatten):
            if (module.start_dim, module.end_dim) != (1, -1):
                raise ValueError(f"Cannot prune {where}: the Flatten at position {position} must flatten dims 1 to -1.")
            flatten_position = position
            continue
        if not _is_unitwise(module, is_2d and flatten_position is None) or not _keeps_zero(module):
            raise ValueError(
                f"Cannot prune {where}: {type(module).__name__} at position {position} sits between it and "
                f"the next layer, and prune needs closed units to reach that layer as zeros "
                f"(element-wise activations with f(0) = 0, dropout, pooling, Flatten). "
                f"Put batch normalisation before the gate."
            )
    if consumer_position is None:
        raise ValueError(
            f"Cannot prune {where}: no Linear or Conv2d after it consumes its units, so removing "
            f"them would change the shape of the output."
        )
    consumer = children[consumer_position]
    if flatten_position is not None:
        if not isinstance(consumer, nn.Linear):
            raise ValueError(f"Cannot prune {where}: after the Flatten, the next layer must be a Linear.")
        if consumer.in_features % gate.width:
            raise ValueError(
                f"Cannot prune {where}: the Linear at position {consumer_position} takes "
                f"{consumer.in_features} inputs, not a multiple of the {gate.width} gated channels."
            )
        inputs_per_unit = consumer.in_features // gate.width
    else:
        expected = nn.Conv2d if is_2d else nn.Linear
        if not isinstance(consumer, expected):
            raise ValueError(
                f"Cannot prune {where}: the next layer, {type(consumer).__name__} at position "
                f"{consumer_position}, should be a {expected.__name__}."
            )
        if is_2d:
            _check_plain_conv(consumer, consumer_position, where)
        n_consumed = consumer.in_channels if is_2d else consumer.in_features
        if n_consumed != gate.width:
            raise ValueError(
                f"Cannot prune {where}: it gates {gate.width} units but {type(consumer).__name__} at "
                f"position {consumer_position} takes {n_consumed}."
            )
        inputs_per_unit = 1

    open_mask = gate.open_mask()
    if not open_mask.any():
        raise ValueError(
            f"Cannot prune {where}: every unit is closed, so the network no longer depends on its "
            f"input there; retrain with a smaller penalty."
        )
    return {
        "gate": gate_position,
        "producer": producer_position,
        "normalizations": normalizations,
        "consumer": consumer_position,
        "open_mask": open_mask,
        "inputs_per_unit": inputs_per_unit,
    }


def _is_unitwise(module, is_2d):
    if isinstance(module, nn.PReLU):
        return module.num_parameters == 1
    return isinstance(module, _ELEMENTWISE + _DROPOUT) or (is_2d and isinstance(module, _POOLING_2D))


def _keeps_zero(module):
    if isinstance(module, _DROPOUT + _POOLING_2D):
        return True
    # Probe the activation itself: f(0) decides it (Sigmoid gives 0.5, ELU gives 0).
    parameter = next(module.parameters(), None)
    zero = torch.zeros(1) if parameter is None else torch.zeros(1, dtype=parameter.dtype, device=parameter.device)
    with torch.no_grad():
        return bool(module(zero) == 0)


def _check_plain_conv(conv, position, where):
    if conv.groups != 1:
        raise ValueError(
            f"Cannot prune {where}: the Conv2d at position {position} has groups={conv.groups}; "
            "prune handles groups=1 only."
        )


@torch.no_grad()
def _apply(pruned, children, plan):
    keep = plan["open_mask"].nonzero().flatten()
    gate = children[plan["gate"]]
    keep = keep.to(gate.beta.device)

    producer = children[plan["producer"]]
    _replace_parameter(producer, "weight", producer.weight[keep])
    if producer.bias is not None:
        _replace_parameter(producer, "bias", producer.bias[keep])
    if isinstance(producer, nn.Conv2d):
        producer.out_channels = len(keep)
    else:
        producer.out_features = len(keep)

    for position in plan["normalizations"]:
        normalization = children[position]
        normalization.num_features = len(keep)
        for name in ("weight", "bias"):
            if getattr(normalization, name) is not None:
                _replace_parameter(normalization, name, getattr(normalization, name)[keep])
        for name in ("running_mean", "running_var"):
            if getattr(normalization, name) is not None:
                setattr(normalization, name, getattr(normalization, name)[keep].clone())

    scale = gate.gate_values()[keep]
    pruned[plan["gate"]] = PrunedGate(scale, channel_dim=1 if isinstance(gate, DAMGate2d) else -1)

    consumer = children[plan["consumer"]]
    per_unit = plan["inputs_per_unit"]
    # With a Flatten between, channel c owns inputs c * per_unit ... (c + 1) * per_unit - 1.
    inputs = (keep[:, None] * per_unit + torch.arange(per_unit, device=keep.device)).flatten()
    _replace_parameter(consumer, "weight", consumer.weight[:, inputs])
    if isinstance(consumer, nn.Conv2d):
        consumer.in_channels = len(inputs)
    else:
        consumer.in_features = len(inputs)


def _replace_parameter(module, name, value):
    old = getattr(module, name)
    setattr(module, name, nn.Parameter(value.clone(), requires_grad=old.requires_grad))
