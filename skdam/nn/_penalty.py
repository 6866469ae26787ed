"""The DAM penalties and the cold start: what a training loop adds to use DAM gates.

Pure PyTorch; nothing here knows about scikit-learn.
"""

import torch

from ._gate import OFFSET_RANGE, DAMGate


def _gates(model):
    gates = [module for module in model.modules() if isinstance(module, DAMGate)]
    if not gates:
        raise ValueError(f"{type(model).__name__} holds no DAMGate: there is nothing to penalise.")
    return gates


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

    See Also
    --------
    beta_penalty : The bounded penalty of the authors' pruning code.

    References
    ----------
    J. Bu, A. Daw, M. Maruf, A. Karpatne, "Learning Compact Representations of
    Neural Networks using DiscriminAtive Masking (DAM)", NeurIPS 2021,
    arXiv:2110.00684.

    Examples
    --------
    >>> from torch import nn
    >>> from skdam.nn import DAMGate, gate_penalty
    >>> model = nn.Sequential(nn.Linear(3, 4), DAMGate(4), nn.Linear(4, 1))
    >>> gate_penalty(model)
    tensor(4.8000, grad_fn=<SumBackward0>)
    """
    return torch.stack([gate.soft_open_count() for gate in _gates(model)]).sum()


def beta_penalty(model):
    """Mean of ``clamp(beta, min=-5)`` over the DAM gates: the authors' pruning penalty.

    The structured-pruning code of the paper adds ``alpha * mean(clamp(beta, -5))``
    to the loss. Each gate is pushed down at the same rate whatever its width, and
    the push stops at ``beta = -5``, where every unit of that gate is closed
    (:data:`OFFSET_RANGE`): a gate cannot be driven further past its last closure,
    which is the collapse the unbounded ``alpha * beta`` allows.

    Parameters
    ----------
    model : torch.nn.Module
        A network holding one or more DAM gates.

    Returns
    -------
    penalty : torch.Tensor
        A differentiable scalar.

    References
    ----------
    J. Bu, A. Daw, M. Maruf, A. Karpatne, "Learning Compact Representations of
    Neural Networks using DiscriminAtive Masking (DAM)", NeurIPS 2021,
    arXiv:2110.00684.

    Examples
    --------
    >>> from torch import nn
    >>> from skdam.nn import DAMGate, beta_penalty
    >>> model = nn.Sequential(nn.Linear(3, 4), DAMGate(4), nn.Linear(4, 1))
    >>> beta_penalty(model)
    tensor(1., grad_fn=<MeanBackward0>)
    """
    return torch.stack([gate.beta.clamp(min=-OFFSET_RANGE) for gate in _gates(model)]).mean()


def freeze_gates(model, frozen=True):
    """Stop (or restart) the training of every gate's ``beta``: the cold start.

    The authors keep ``beta`` fixed for the first epochs of pruning (20 of 200), so
    that the network learns which channels matter before any gate closes. Call
    ``freeze_gates(model)`` before training and ``freeze_gates(model, False)`` when
    the cold start ends; an optimiser skips parameters that get no gradient.

    Parameters
    ----------
    model : torch.nn.Module
        A network holding one or more DAM gates.
    frozen : bool, default=True
        True stops the gradient to ``beta``, False lets it flow again.

    Returns
    -------
    model : torch.nn.Module
        The same model.

    Examples
    --------
    >>> from torch import nn
    >>> from skdam.nn import DAMGate, freeze_gates
    >>> model = freeze_gates(nn.Sequential(nn.Linear(3, 4), DAMGate(4)))
    >>> model[1].beta.requires_grad
    False
    """
    for gate in _gates(model):
        gate.beta.requires_grad_(not frozen)
    return model
