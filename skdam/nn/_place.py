"""Put DAM gates into an existing network, after the layers one chooses.

Pure PyTorch; nothing here knows about scikit-learn.
"""

from torch import nn

from ._gate import DAMGate, DAMGate2d

#: Layers whose output a DAMGate2d gates (channel dimension 1 of a 4-D map).
_CHANNEL_LAYERS = (nn.BatchNorm2d, nn.Conv2d, nn.GroupNorm, nn.InstanceNorm2d)
#: Layers whose output a DAMGate gates (the last dimension).
_FEATURE_LAYERS = (nn.BatchNorm1d, nn.Linear, nn.LayerNorm)


def _width(layer):
    for name in ("num_features", "out_channels", "out_features", "num_channels"):
        if hasattr(layer, name):
            return getattr(layer, name)
    return layer.normalized_shape[-1]  # LayerNorm


def place_gates(model, layers="batchnorm", *, groups=1, steepness=1.0, initial_beta=1.0):
    """Put a DAM gate after each chosen layer of ``model``, in place.

    Each chosen layer ``name`` is replaced by ``nn.Sequential(layer, gate)``, with a
    :class:`DAMGate2d` after a ``BatchNorm2d``, ``Conv2d``, ``GroupNorm`` or
    ``InstanceNorm2d`` and a :class:`DAMGate` after a ``BatchNorm1d``, ``Linear`` or
    ``LayerNorm``. The paper gates the channels after the batch normalisation of
    each convolution; a gate after the normalisation is what lets
    :func:`skdam.nn.prune` remove its closed channels (a batch normalisation after
    a closed gate would turn its zeros into constants).

    The layer's parameters move to ``name.0`` in the state dict and the gate's to
    ``name.1``: load pretrained weights before placing the gates.

    Parameters
    ----------
    model : torch.nn.Module
        The network; modified in place.
    layers : "batchnorm", list of str or callable, default="batchnorm"
        Which layers get a gate: ``"batchnorm"`` for every ``BatchNorm1d`` and
        ``BatchNorm2d``; a list of qualified module names (as in
        ``model.named_modules()``); or a function ``(name, module) -> bool``.
    groups : int or dict, default=1
        Channel groups of each :class:`DAMGate2d` (see there): one int for all,
        or a dict from layer name to int (missing names get 1). Use the ``groups``
        of the grouped convolution that consumes or produces the gated channels.
    steepness : float, default=1.0
        The paper's ``a`` for every gate.
    initial_beta : float, default=1.0
        Starting ``beta`` of every gate.

    Returns
    -------
    gates : dict of str to DAMGate
        The new gates, by the name of the layer they follow, in the order of
        ``model.named_modules()``.

    Raises
    ------
    ValueError
        If no layer is chosen, a name is not in the model, or a chosen layer is of
        a type the gates do not know.

    References
    ----------
    J. Bu, A. Daw, M. Maruf, A. Karpatne, "Learning Compact Representations of
    Neural Networks using DiscriminAtive Masking (DAM)", NeurIPS 2021,
    arXiv:2110.00684.

    Examples
    --------
    >>> from torch import nn
    >>> from skdam.nn import place_gates
    >>> model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU())
    >>> list(place_gates(model))
    ['1']
    >>> model[1][1]
    DAMGate2d(4)
    """
    named = dict(model.named_modules())
    if layers == "batchnorm":
        chosen = [name for name, module in named.items() if isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d))]
    elif callable(layers):
        chosen = [name for name, module in named.items() if name and layers(name, module)]
    else:
        chosen = list(layers)
        missing = [name for name in chosen if name not in named or not name]
        if missing:
            raise ValueError(f"No module named {missing} in {type(model).__name__}.")
    if not chosen:
        raise ValueError(f"No layer of {type(model).__name__} was chosen for a gate.")

    gates = {}
    for name in chosen:
        layer = named[name]
        if isinstance(layer, _CHANNEL_LAYERS):
            layer_groups = groups.get(name, 1) if isinstance(groups, dict) else groups
            gate = DAMGate2d(_width(layer), groups=layer_groups, steepness=steepness, initial_beta=initial_beta)
        elif isinstance(layer, _FEATURE_LAYERS):
            gate = DAMGate(_width(layer), steepness=steepness, initial_beta=initial_beta)
        else:
            raise ValueError(
                f"Cannot place a gate after {name!r}, a {type(layer).__name__}: gates go after "
                "BatchNorm, Conv2d, Linear, GroupNorm, InstanceNorm2d or LayerNorm layers."
            )
        # Same device and dtype as the layer it follows.
        reference = next(layer.parameters(), None)
        if reference is not None:
            gate = gate.to(device=reference.device, dtype=reference.dtype)
        parent_name, _, child_name = name.rpartition(".")
        parent = named[parent_name] if parent_name else model
        setattr(parent, child_name, nn.Sequential(layer, gate))
        gates[name] = gate
    return gates
