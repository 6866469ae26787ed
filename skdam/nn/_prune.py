"""Remove the channels that DAM gates have closed, through Torch-Pruning's dependency graph.

Pure PyTorch; nothing here knows about scikit-learn. Torch-Pruning (``pip install
skdam[prune]``) finds which layers share a channel (a residual add couples every
block of a stage, a ``Flatten`` maps one channel to many features, a grouped
convolution ties its groups) and slices them all. What it does not know, and what
this module adds:

- how to slice a DAM gate (a customized pruner: the ``offsets`` of the kept units,
  ``beta`` unchanged), and
- which closed channels may go without changing the outputs. Torch-Pruning's own
  check only asks whether channels are left. A closed gate makes its channel zero,
  but the channel is shared by every layer in the group: it may go only when each
  layer that writes it reaches the rest of the network through a gate that closes
  it, and every operation after the gates keeps zero at zero.
"""

import copy
import re

import torch
from torch import nn

from ._gate import DAMGate, DAMGate2d

#: Element-wise operations (by autograd name) that map zero to zero: a closed channel
#: stays zero through them. Batch normalisation, sigmoid or an added constant do not.
_KEEPS_ZERO = re.compile(
    r"relu|elu|tanh|gelu|silu|mish|hardswish|shrink|pool|mul|neg|mean|sum|clone|upsample|constantpad|dropout",
    re.IGNORECASE,
)
#: Sums keep zero at zero only when every input is a (pruned, zero) channel.
_SUMS = re.compile(r"^(add|sub)", re.IGNORECASE)


def _torch_pruning():
    try:
        import torch_pruning
    except ImportError as error:
        raise ImportError(
            "skdam.nn.prune removes channels with Torch-Pruning, which is not installed: "
            "pip install 'skdam[prune]' (or pip install torch-pruning)."
        ) from error
    return torch_pruning


def _gate_pruner(tp):
    """A Torch-Pruning pruner for DAM gates: slice the offsets, keep ``beta``."""

    class DAMGatePruner(tp.pruner.function.BasePruningFunc):
        TARGET_MODULES = (DAMGate,)

        def prune_out_channels(self, layer, idxs):
            removed = set(int(index) for index in idxs)
            keep = [index for index in range(layer.width) if index not in removed]
            # The kept units keep their offsets, so the gate values, the open count and
            # the penalty are unchanged (see DAMGate.full_width).
            layer.offsets = layer.offsets[keep].clone()
            layer.width = len(keep)
            return layer

        # A gate maps unit i to unit i: pruning its input prunes its output.
        prune_in_channels = prune_out_channels

        def get_out_channels(self, layer):
            return layer.width

        get_in_channels = get_out_channels

    return DAMGatePruner()


def prune(model, example_inputs):
    """A smaller copy of ``model`` without the channels its DAM gates have closed.

    Builds Torch-Pruning's dependency graph of the model (by tracing one forward
    pass on ``example_inputs``) and, for each gate, removes its closed channels from
    every layer coupled to them: the convolution or ``Linear`` that writes them, the
    normalisations in between, the gate itself and the layers that read them, across
    residual additions, concatenations, ``Flatten`` and grouped convolutions. A
    closed channel is removed only where that keeps the function:

    - every layer writing the channel must reach the rest of the network through a
      gate that closes it. Inside a residual block this holds for a gate after the
      block's first batch normalisation. On the residual stream it holds only when
      every branch that adds into the stream is gated and closes the channel,
      shortcut or stem included: a stream channel written by one ungated layer is
      kept, whatever the other gates say;
    - between the gates and the layers that read the channel, every operation must
      keep zero at zero (ReLU, pooling, addition of pruned channels, ``Flatten``;
      not a batch normalisation, which turns zero into a constant, so gate after the
      normalisation, as :func:`place_gates` does);
    - a grouped convolution loses a channel position only when it is closed in every
      group (use ``DAMGate2d(..., groups=g)`` so closures fall evenly);
    - one channel of each gate is kept even when all are closed, and the model's
      output keeps its size.

    The pruned gates stay DAM gates, each holding the offsets of the channels it
    kept: the values of those gates, :meth:`DAMGate.n_open`,
    :meth:`DAMGate.soft_open_count` and so :func:`gate_penalty` and
    :func:`beta_penalty` are unchanged, and training can go on (build a new optimiser:
    pruned layers have new parameter tensors). As the paper intends, there is no
    fine-tuning stage: in eval mode the pruned network computes what the gated one
    did, which ``prune`` checks on ``example_inputs`` before returning.

    The result is a plain torch model: save it whole with ``torch.save(pruned, path)``
    and load it with ``torch.load(path, weights_only=False)`` (the classes must be
    importable, and only load files you trust), or save ``pruned.state_dict()`` and
    load it into a model pruned the same way.

    Parameters
    ----------
    model : torch.nn.Module
        The network with :class:`DAMGate` or :class:`DAMGate2d` modules (for
        instance placed by :func:`place_gates`). It is left untouched.
    example_inputs : torch.Tensor or tuple of torch.Tensor
        Inputs for one forward pass, to trace the graph and check the result; one
        sample is enough.

    Returns
    -------
    pruned : torch.nn.Module
        A deep copy of ``model`` with the closed channels removed; same device,
        dtype and training mode (module by module).

    Raises
    ------
    ImportError
        If Torch-Pruning is not installed.
    ValueError
        If ``model`` holds no DAM gate.
    RuntimeError
        If the pruned network's outputs differ from the model's (a structure this
        function misjudged; please report it).

    References
    ----------
    J. Bu, A. Daw, M. Maruf, A. Karpatne, "Learning Compact Representations of
    Neural Networks using DiscriminAtive Masking (DAM)", NeurIPS 2021,
    arXiv:2110.00684.

    G. Fang, X. Ma, M. Song, M. B. Mi, X. Wang, "DepGraph: Towards Any Structural
    Pruning", CVPR 2023 (Torch-Pruning).

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> from skdam.nn import DAMGate, prune
    >>> model = nn.Sequential(nn.Linear(3, 10), nn.ReLU(), DAMGate(10), nn.Linear(10, 2))
    >>> with torch.no_grad():
    ...     _ = model[2].beta.fill_(-1.8)  # closes the 4 units with mu_i = 0.5 i < 1.8
    >>> pruned = prune(model, torch.randn(1, 3))
    >>> pruned
    Sequential(
      (0): Linear(in_features=3, out_features=6, bias=True)
      (1): ReLU()
      (2): DAMGate(6, full_width=10)
      (3): Linear(in_features=6, out_features=2, bias=True)
    )
    >>> pruned[2].n_open(), pruned[2].soft_open_count().item() == model[2].soft_open_count().item()
    (6, True)
    """
    if not any(isinstance(module, DAMGate) for module in model.modules()):
        raise ValueError(f"{type(model).__name__} holds no DAMGate: there is nothing to prune.")
    tp = _torch_pruning()
    modes = [module.training for module in model.modules()]
    pruned = copy.deepcopy(model).eval()
    pruner = _gate_pruner(tp)
    gates = [module for module in pruned.modules() if isinstance(module, DAMGate)]
    trainable = [gate.beta.requires_grad for gate in gates]
    # Traced without a gradient to beta, a gate is one node: its values do not grow
    # a branch of their own in the graph.
    for gate in gates:
        gate.beta.requires_grad_(False)
    # Torch-Pruning looks pruners up by exact class: register each gate class.
    graph = tp.DependencyGraph().build_dependency(
        pruned, example_inputs=example_inputs, customized_pruners={DAMGate: pruner, DAMGate2d: pruner}
    )
    for gate, requires_grad in zip(gates, trainable):
        gate.beta.requires_grad_(requires_grad)
    for gate in gates:
        closed = (~gate.open_mask()).nonzero().flatten()
        if len(closed) == gate.width:  # keep the channel that would reopen first
            closed = closed[closed != int(torch.argmax(gate.offsets))]
        if len(closed) == 0:
            continue
        closed = closed.tolist()
        group = graph.get_pruning_group(gate, pruner.prune_out_channels, idxs=closed)
        unsafe = _unsafe_channels(graph, group, tp)
        removable = [index for index in closed if index not in unsafe]
        if removable:
            graph.get_pruning_group(gate, pruner.prune_out_channels, idxs=removable).prune()
    _check_same_outputs(model, pruned, example_inputs, modes)
    _restore_modes(pruned, modes)
    return pruned


def _unsafe_channels(graph, group, tp):
    """Root indices of ``group`` whose removal could change the outputs."""
    types = tp.ops.OPTYPE
    bookkeeping = (types.CONCAT, types.SPLIT, types.RESHAPE, types.SLICE, types.UNBIND, types.EXPAND)
    unsafe = set()
    for item in group:
        node, handler = item.dep.target, item.dep.handler
        module = node.module
        pairs = list(zip(item.idxs, item.root_idxs))
        reader = graph.is_in_channel_pruning_fn(handler) and node.type in (types.CONV, types.LINEAR)
        if node.type == types.OUTPUT or (not node.outputs and not reader):
            unsafe.update(root for _, root in pairs)  # the output would lose a column
            continue
        if isinstance(module, DAMGate) or node.type in bookkeeping:
            continue
        grouped = isinstance(module, nn.modules.conv._ConvNd) and 1 < module.groups < module.out_channels
        if reader:
            # A reader: a zero input contributes nothing, but a grouped convolution
            # must lose the same positions in every group.
            if grouped:
                unsafe.update(_uneven_across_groups(pairs, module.in_channels, module.groups))
            continue
        if node.type == types.ELEMENTWISE and not node.inputs:
            # Computed from parameters alone: the transposed weight of a Linear is
            # part of that layer; anything else (a bias added to the channel) is not zero.
            if not all(_is_weight_use(output, types) for output in node.outputs):
                unsafe.update(root for _, root in pairs)
            continue
        for index, root in pairs:
            if _closed_downstream(node, index, types):
                continue
            if node.type == types.ELEMENTWISE and _keeps_zero(node):
                continue
            if node.type == types.DEPTHWISE_CONV and module.bias is None:
                continue  # a depthwise convolution of a zero channel is zero
            unsafe.add(root)
        if grouped:
            unsafe.update(_uneven_across_groups(pairs, module.out_channels, module.groups))
    return unsafe


def _closed_downstream(node, index, types):
    """Whether every path out of ``node`` meets a gate that closes channel ``index``.

    Only channel-wise steps are followed (batch normalisation, single-input
    element-wise operations): anything else, an addition included, ends the search
    without a gate.
    """
    frontier, seen = list(node.outputs), set()
    if not frontier:
        return False
    while frontier:
        current = frontier.pop()
        if current in seen:
            continue
        seen.add(current)
        module = current.module
        if isinstance(module, DAMGate) and not module.open_mask()[index]:
            continue
        channelwise = isinstance(module, DAMGate) or current.type == types.BN
        channelwise = channelwise or (current.type == types.ELEMENTWISE and len(current.inputs) == 1)
        if not channelwise or not current.outputs:
            return False
        frontier.extend(current.outputs)
    return True


def _is_weight_use(node, types):
    """A layer, or the matrix product by which a Linear was traced."""
    name = node.grad_fn.name() if hasattr(node.grad_fn, "name") else ""
    return node.type in (types.CONV, types.LINEAR) or "mm" in name.lower()


def _keeps_zero(node):
    name = node.grad_fn.name() if hasattr(node.grad_fn, "name") else ""
    if _SUMS.match(name):
        # Zero plus zero: the other inputs are in the same group and checked there;
        # a constant added to a single input is not.
        return len(node.inputs) >= 2
    return bool(_KEEPS_ZERO.search(name))


def _uneven_across_groups(pairs, n_channels, groups):
    """Roots of positions that are not removed in every group of a grouped layer."""
    per_group = n_channels // groups
    removed = {}
    for index, root in pairs:
        removed.setdefault(index % per_group, []).append((index, root))
    return {root for members in removed.values() if len(members) < groups for _, root in members}


@torch.no_grad()
def _check_same_outputs(model, pruned, example_inputs, modes):
    inputs = example_inputs if isinstance(example_inputs, (tuple, list)) else (example_inputs,)
    try:
        expected = model.eval()(*inputs)
    finally:
        _restore_modes(model, modes)
    actual = pruned(*inputs)
    for want, got in zip(_flatten(expected), _flatten(actual)):
        if want.shape != got.shape or not torch.allclose(want, got, rtol=1e-4, atol=1e-5):
            raise RuntimeError(
                "prune changed the outputs of the network: a structure around a DAM gate was misjudged. "
                "Please report it with the model's code."
            )


def _restore_modes(model, modes):
    """Each module back in its own training mode (a model may mix them)."""
    for module, training in zip(model.modules(), modes):
        module.training = training


def _flatten(outputs):
    if isinstance(outputs, torch.Tensor):
        return [outputs]
    if isinstance(outputs, dict):
        outputs = list(outputs.values())
    return [tensor for output in outputs for tensor in _flatten(output)]
