"""The DAM gate: one learnable scalar that closes units one at a time.

Pure PyTorch; nothing here knows about scikit-learn.
"""

import torch
from torch import nn

#: The fixed offsets ``mu_i = OFFSET_RANGE * i / width`` span ``[0, OFFSET_RANGE)``.
OFFSET_RANGE = 5.0


class DAMGate(nn.Module):
    """DiscriminAtive Masking gate over the last dimension of its input.

    Unit ``i`` of ``width`` has a fixed offset ``mu_i = 5 * i / width`` and all units
    share one learnable scalar ``beta``; the gate is
    ``g_i = max(0, tanh(steepness**2 * (mu_i + beta)))``. Penalising ``beta`` closes
    the gates one at a time, lowest ``mu_i`` first; a closed gate passes neither
    signal nor gradient.

    Parameters
    ----------
    width : int
        Number of gated units.
    steepness : float, default=1.0
        The paper's ``a``; it shapes the gate values but not which gates are open.
    initial_beta : float, default=1.0
        Starting value of ``beta``; 1 opens every gate.

    Attributes
    ----------
    offsets : torch.Tensor of shape (width,)
        The fixed offsets ``mu_i`` (a buffer).
    beta : torch.nn.Parameter
        The shared learnable scalar.
    full_width : int
        The width the offsets were spaced for. :func:`skdam.nn.prune` removes closed
        units and keeps the offsets of the others, so after pruning ``width`` is
        smaller than ``full_width`` and the gate is still the same DAM gate: the
        values of the kept units, the open count and the penalty do not change.
    offset_spacing : float
        ``5 / full_width``, the distance between neighbouring offsets.

    References
    ----------
    J. Bu, A. Daw, M. Maruf, A. Karpatne, "Learning Compact Representations of
    Neural Networks using DiscriminAtive Masking (DAM)", NeurIPS 2021,
    arXiv:2110.00684.

    Examples
    --------
    >>> import torch
    >>> from skdam.nn import DAMGate
    >>> gate = DAMGate(4)
    >>> gate(torch.ones(2, 4)).shape
    torch.Size([2, 4])
    >>> gate.n_open()
    4
    """

    def __init__(self, width, *, steepness=1.0, initial_beta=1.0):
        super().__init__()
        if width < 1:
            raise ValueError(f"width must be at least 1, got {width}.")
        self.width = int(width)
        self.full_width = self.width
        self.offset_spacing = OFFSET_RANGE / self.width
        self.steepness = float(steepness)
        self.initial_beta = float(initial_beta)
        self.register_buffer("offsets", torch.empty(self.width))
        self.beta = nn.Parameter(torch.empty(()))
        self.reset_parameters()

    def _offset_ranks(self):
        """Closing order of the units: unit ``i`` closes ``rank[i]``-th."""
        return torch.arange(self.width, device=self.offsets.device)

    @torch.no_grad()
    def reset_parameters(self):
        """Fixed offsets ``5 * rank_i / width`` and ``beta`` back at its start.

        A pruned gate (``width < full_width``) keeps the offsets of the units it
        kept; only ``beta`` is reset.
        """
        if self.width == self.full_width:
            self.offsets.copy_(OFFSET_RANGE * self._offset_ranks() / self.width)
        self.beta.fill_(self.initial_beta)

    def gate_values(self):
        """Value of every gate, differentiable in ``beta``.

        Returns
        -------
        torch.Tensor of shape (width,)
            ``max(0, tanh(steepness**2 * (offsets + beta)))``; zero for closed units.
        """
        return torch.relu(torch.tanh(self.steepness**2 * (self.offsets + self.beta)))

    def _broadcast(self, values):
        return values

    def forward(self, hidden):
        """Multiply each unit of ``hidden`` by its gate.

        Parameters
        ----------
        hidden : torch.Tensor
            Activations whose gated dimension has size ``width``.

        Returns
        -------
        torch.Tensor
            ``hidden`` with closed units zeroed; same shape.
        """
        return hidden * self._broadcast(self.gate_values())

    @torch.no_grad()
    def open_mask(self):
        """Which units are open.

        Returns
        -------
        torch.Tensor of shape (width,)
            Boolean; True where the gate value is positive.
        """
        return self.gate_values() > 0

    def n_open(self):
        """Count the open units.

        Returns
        -------
        int
            The number of open gates: the discovered dimension.
        """
        return int(self.open_mask().sum())

    def extra_repr(self):
        """The width, and ``full_width`` and ``groups`` where they are not the default.

        Returns
        -------
        str
            What ``repr`` shows between the parentheses, e.g. ``6, full_width=10``.
        """
        pruned = f", full_width={self.full_width}" if self.width != self.full_width else ""
        groups = f", groups={self.groups}" if getattr(self, "groups", 1) != 1 else ""
        return f"{self.width}{pruned}{groups}"

    def soft_open_count(self):
        """Differentiable count of the open units: ``full_width * (1 + beta / 5)``.

        It equals the number of open gates for ``beta`` in [-5, 0] and is affine in
        ``beta`` with slope ``full_width / 5``, so ``alpha * soft_open_count()``
        charges ``alpha`` per open unit whatever the width: the smooth stand-in for
        the L0 norm of the mask. Pruning removes closed units only, which count
        zero, so a pruned gate (``width < full_width``) keeps the same formula; it
        is exact while the units pruning removed would still be closed, which is
        so as long as fewer than ``width`` units are open.

        Returns
        -------
        torch.Tensor
            A scalar that carries the gradient to ``beta``.
        """
        return self.full_width * (1.0 + self.beta / OFFSET_RANGE)

    def beta_floor(self, n_open):
        """Lowest ``beta`` that keeps the ``n_open`` most preferred units open.

        It sits half a unit spacing above the point where unit ``width - n_open``
        closes, so that unit stays measurably open and the next one stays closed.

        Parameters
        ----------
        n_open : int
            Number of units to keep open, in ``[1, width]``.

        Returns
        -------
        float
            The lowest value ``beta`` may take.
        """
        if not 1 <= n_open <= self.width:
            raise ValueError(f"n_open must be in [1, {self.width}], got {n_open}.")
        # Sorted: the offsets of a grouped DAMGate2d are interleaved across groups.
        offsets = torch.sort(self.offsets).values
        return -float(offsets[self.width - n_open]) + 0.5 * self.offset_spacing


class DAMGate2d(DAMGate):
    """DAM gate over the channels of an ``(N, C, H, W)`` feature map.

    The gate of :class:`DAMGate` with its values shaped ``(1, C, 1, 1)``, for the
    structured pruning of convolutional channels.

    With ``groups > 1`` the channels are split into ``groups`` consecutive blocks, as
    a grouped convolution splits them, and the offsets interleave across the blocks:
    position ``j`` of block ``b`` gets rank ``j * groups + b``, offset
    ``5 * rank / channels``. The gates then close position 0 of every block, then
    position 1, and so on, so the closed channels fall evenly across the groups and
    a grouped convolution can lose them without changing its output (pruning a
    grouped convolution's input removes the same positions from every group).

    Parameters
    ----------
    channels : int
        Number of gated channels.
    groups : int, default=1
        Number of channel groups to spread the closures over; it must divide
        ``channels``. 1 gives the offsets ``5 * i / channels`` of the paper.
    steepness : float, default=1.0
        The paper's ``a``.
    initial_beta : float, default=1.0
        Starting value of ``beta``.

    Examples
    --------
    >>> import torch
    >>> from skdam.nn import DAMGate2d
    >>> DAMGate2d(3)(torch.ones(2, 3, 5, 5)).shape
    torch.Size([2, 3, 5, 5])
    >>> DAMGate2d(4, groups=2).offsets  # closing order: channels 0, 2, 1, 3
    tensor([0.0000, 2.5000, 1.2500, 3.7500])
    """

    def __init__(self, channels, *, groups=1, steepness=1.0, initial_beta=1.0):
        if groups < 1 or channels % groups:
            raise ValueError(f"groups must be a positive divisor of channels={channels}, got {groups}.")
        self.groups = int(groups)
        super().__init__(channels, steepness=steepness, initial_beta=initial_beta)

    def _offset_ranks(self):
        channel = torch.arange(self.width, device=self.offsets.device)
        per_group = self.width // self.groups
        return (channel % per_group) * self.groups + channel // per_group

    def _broadcast(self, values):
        return values.view(1, -1, 1, 1)
