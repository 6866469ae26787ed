"""The gated-bottleneck autoencoder behind both estimators. Pure PyTorch."""

import math

import torch
import torch.nn.functional as F
from torch import nn

from ._gate import DAMGate

ACTIVATIONS = {
    "relu": nn.ReLU,
    "elu": nn.ELU,
    "tanh": nn.Tanh,
    "logistic": nn.Sigmoid,
    "silu": nn.SiLU,
}


def _multilayer_perceptron(sizes, activation):
    """Linear layers with ``activation`` between them (none after the last)."""
    layers = []
    for index, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(n_in, n_out))
        if index < len(sizes) - 2:
            layers.append(ACTIVATIONS[activation]())
    return nn.Sequential(*layers)


#: Features from which the linear path and the perceptron share one matrix product
#: at the input and one at the output (see GatedAutoencoder._fuses_products).
FUSED_PRODUCTS_MIN_FEATURES = 256
#: The open units' products take in closed units up to a multiple of this many
#: (:meth:`GatedAutoencoder._open_span`).
SPAN_MULTIPLE = 8


class GatedAutoencoder(nn.Module):
    """Autoencoder whose bottleneck passes through a :class:`DAMGate`.

    Each side is a bias-free linear path plus, when ``hidden_layer_sizes`` is not
    empty, a multilayer perceptron added to it as a residual. The residual's last
    layer starts at zero, so a freshly initialised model is exactly its linear path:
    warm-started from a truncated SVD, training begins at PCA and the nonlinear part
    can only learn what PCA misses.

    Inputs are normalised inside the module, ``(x - input_mean) / input_scale``, with
    one scale for all features. With ``input_scale`` the root mean feature variance,
    the mean squared error in normalised units is the unexplained share of the
    variance, ``1 - R^2``, whatever the units of the data.

    Parameters
    ----------
    n_features : int
        Width of the input and of the reconstruction.
    bottleneck_width : int
        Number of gated units, the most dimensions the model can keep.
    hidden_layer_sizes : tuple of int, default=()
        Hidden widths of the encoder's perceptron; the decoder mirrors them.
    activation : {"relu", "elu", "tanh", "logistic", "silu"}, default="elu"
        Activation of the hidden layers.
    missing_indicator : bool, default=False
        Whether the encoder's perceptron also reads which entries of a row are
        missing (its first layer then takes ``2 * n_features`` inputs). The linear
        path reads the filled row only. See :meth:`encode_incomplete_normalized`.
    """

    def __init__(self, n_features, bottleneck_width, hidden_layer_sizes=(), activation="elu", missing_indicator=False):
        super().__init__()
        self.n_features = int(n_features)
        self.bottleneck_width = int(bottleneck_width)
        self.hidden_layer_sizes = tuple(int(size) for size in hidden_layer_sizes)
        self.activation = activation
        self.missing_indicator = bool(missing_indicator) and bool(self.hidden_layer_sizes)
        self.register_buffer("input_mean", torch.zeros(self.n_features))
        self.register_buffer("input_scale", torch.ones(()))
        self.encoder_linear = nn.Linear(self.n_features, self.bottleneck_width, bias=False)
        self.decoder_linear = nn.Linear(self.bottleneck_width, self.n_features, bias=False)
        if self.hidden_layer_sizes:
            encoder_sizes = (self.n_features, *self.hidden_layer_sizes, self.bottleneck_width)
            encoder_inputs = self.n_features * (2 if self.missing_indicator else 1)
            self.encoder_residual = _multilayer_perceptron((encoder_inputs, *encoder_sizes[1:]), activation)
            self.decoder_residual = _multilayer_perceptron(encoder_sizes[::-1], activation)
        else:
            self.encoder_residual = None
            self.decoder_residual = None
        self.gate = DAMGate(self.bottleneck_width)

    @torch.no_grad()
    def reset_parameters(self, generator=None):
        """Initialise every weight from ``generator``, leaving global RNG untouched.

        Parameters
        ----------
        generator : torch.Generator, default=None
            Source of the random draws; ``None`` uses PyTorch's global generator.

        Returns
        -------
        GatedAutoencoder
            The module itself, reset in place.
        """
        self.input_mean.zero_()
        self.input_scale.fill_(1.0)
        self.gate.reset_parameters()
        for linear in (self.encoder_linear, self.decoder_linear):
            _default_initialisation(linear, generator)
        return self.reset_perceptron(generator)

    @torch.no_grad()
    def reset_perceptron(self, generator=None):
        """Draw the perceptrons afresh, their last layers at zero: the model is its linear path again.

        The linear path and the gate are left as they are.

        Parameters
        ----------
        generator : torch.Generator, default=None
            Source of the random draws; ``None`` uses PyTorch's global generator.

        Returns
        -------
        GatedAutoencoder
            The module itself, reset in place.
        """
        for residual in (self.encoder_residual, self.decoder_residual):
            if residual is None:
                continue
            for linear in residual:
                if isinstance(linear, nn.Linear):
                    _default_initialisation(linear, generator)
            residual[-1].weight.zero_()
            residual[-1].bias.zero_()
        return self

    @torch.no_grad()
    def set_normalization(self, mean, scale):
        """Set the input normalisation, ``(x - mean) / scale``.

        Parameters
        ----------
        mean : array-like of shape (n_features,)
            Per-feature mean of the training data.
        scale : float
            One scale for all features; the root mean feature variance makes the
            normalised mean squared error equal ``1 - R^2``.
        """
        self.input_mean.copy_(torch.as_tensor(mean, dtype=self.input_mean.dtype))
        self.input_scale.fill_(float(scale))

    @torch.no_grad()
    def set_linear_path(self, directions):
        """Put orthonormal ``directions`` (rows, best first) on the linear path.

        The first direction goes to the most preferred unit (the highest offset), so
        gates close on the weakest directions first. The decoder divides by the gate
        values so that the model reconstructs exactly the projection at once.

        Parameters
        ----------
        directions : array-like of shape (n_directions, n_features)
            Orthonormal rows in normalised units, strongest first; ``n_directions``
            is at most ``bottleneck_width``.
        """
        directions = torch.as_tensor(directions, dtype=self.encoder_linear.weight.dtype, device=self.encoder_linear.weight.device)
        n_directions = directions.shape[0]
        units = torch.arange(self.bottleneck_width - 1, self.bottleneck_width - 1 - n_directions, -1)
        gate_values = self.gate.gate_values()[units]
        self.encoder_linear.weight.zero_()
        self.decoder_linear.weight.zero_()
        self.encoder_linear.weight[units] = directions
        self.decoder_linear.weight[:, units] = (directions / gate_values[:, None]).T

    @torch.no_grad()
    def set_open_count(self, n_open):
        """Open exactly the ``n_open`` most preferred units, passing what they passed.

        ``beta`` moves to the lowest value that keeps ``n_open`` units open, which
        changes the values of every open gate; the rows of the encoder's last layers
        are rescaled by the inverse, so a unit that stays open passes the same code.

        Parameters
        ----------
        n_open : int
            Number of units to keep open, in ``[1, bottleneck_width]``.

        Returns
        -------
        GatedAutoencoder
            The module itself.
        """
        before = self.gate.gate_values()
        self.gate.beta.fill_(self.gate.beta_floor(n_open))
        after = self.gate.gate_values()
        kept = (before > 0) & (after > 0)
        ratio = torch.ones_like(before)
        ratio[kept] = before[kept] / after[kept]
        self.encoder_linear.weight.mul_(ratio[:, None])
        if self.encoder_residual is not None:
            self.encoder_residual[-1].weight.mul_(ratio[:, None])
            self.encoder_residual[-1].bias.mul_(ratio)
        return self

    def _fuses_products(self):
        """Whether the two paths share one matrix product at the input and the output.

        It pays on wide data, where the products dominate (a Fashion-MNIST step,
        784 features, runs 1.13x as fast in bfloat16, 1.04x in float32); on narrow
        data the concatenations cost more than the product they save (a step on 3 to
        100 features runs 0.90x to 0.94x as fast); ``benchmarks/speed.py --sections
        internals``.
        """
        return self.n_features >= FUSED_PRODUCTS_MIN_FEATURES

    def _skips_closed_units(self):
        """Whether training steps multiply through the open units only (:meth:`reconstruct_normalized`).

        Where the products are shared (wide data), which dominate a step there: a
        Fashion-MNIST step runs 1.1 to 1.2 times as fast. On 20 to 100 features
        the gain is 0.95 to 1.1 times, not worth moving the code path that the
        manifold benchmarks measured (``benchmarks/speed.py --sections internals``).
        """
        return self._fuses_products()

    def normalize(self, x):
        """Centre and scale raw input.

        Parameters
        ----------
        x : torch.Tensor of shape (n_samples, n_features)
            Input in the units of the data.

        Returns
        -------
        torch.Tensor of shape (n_samples, n_features)
            ``(x - input_mean) / input_scale``.
        """
        return (x - self.input_mean) / self.input_scale

    def encode_normalized(self, x_normalized):
        """Gated code, all ``bottleneck_width`` units, from normalised input.

        Parameters
        ----------
        x_normalized : torch.Tensor of shape (n_samples, n_features)
            Input already passed through :meth:`normalize`.

        Returns
        -------
        torch.Tensor of shape (n_samples, bottleneck_width)
            The code; columns of closed units are zero.
        """
        return self._encode_units(x_normalized, slice(None))

    def _encode_units(self, x_normalized, units):
        """Gated code of the ``units`` (a slice) only, from complete normalised input."""
        if self.encoder_residual is None:
            return self._gated(F.linear(x_normalized, self.encoder_linear.weight[units]), units)
        if self.missing_indicator:
            # A complete row: no entry missing.
            return self._encode_with_indicator(x_normalized, torch.zeros_like(x_normalized), units)
        first, last = self.encoder_residual[0], self.encoder_residual[-1]
        linear_weight = self.encoder_linear.weight[units]
        if self._fuses_products():
            # The linear path and the residual's first layer both read the input: one
            # matrix product serves them.
            weight = torch.cat([linear_weight, first.weight])
            bias = torch.cat([first.bias.new_zeros(linear_weight.shape[0]), first.bias])
            linear_part, hidden = F.linear(x_normalized, weight, bias).split([linear_weight.shape[0], first.out_features], dim=-1)
        else:
            linear_part, hidden = F.linear(x_normalized, linear_weight), first(x_normalized)
        for layer in self.encoder_residual[1:-1]:
            hidden = layer(hidden)
        return self._gated(linear_part + F.linear(hidden, last.weight[units], last.bias[units]), units)

    def _encode_with_indicator(self, filled, missing, units):
        """Gated code of the ``units`` of a filled row whose perceptron also reads the missing-mask."""
        hidden = torch.cat([filled, missing.to(filled.dtype)], dim=-1)
        for layer in self.encoder_residual[:-1]:
            hidden = layer(hidden)
        last = self.encoder_residual[-1]
        code = F.linear(filled, self.encoder_linear.weight[units]) + F.linear(hidden, last.weight[units], last.bias[units])
        return self._gated(code, units)

    def _gated(self, code, units):
        """``code``, of the ``units`` (a slice), through their gates: what the gate's forward does to all of them."""
        return code * self.gate.gate_values()[units]

    def encode_incomplete_normalized(self, x_normalized):
        """Gated code of normalised input whose missing entries are NaN.

        A missing entry is filled with the mean (zero in normalised units) and the
        row is scaled by ``n_features`` over its number of observed entries, as
        dropout scales what it keeps: the linear path's code is then an unbiased
        estimate of the complete row's, whatever share of it is missing. With
        ``missing_indicator`` the perceptron also reads which entries were missing,
        so it can tell a filled mean from an observed one. (Refilling the holes with
        the network's own reconstruction and encoding again measured no better on
        the held-out entries of digits, at 1.7 times the training time.) Rows with
        no NaN get the code of :meth:`encode_normalized`; a row with nothing
        observed is read as the mean row.

        Parameters
        ----------
        x_normalized : torch.Tensor of shape (n_samples, n_features)
            Input already passed through :meth:`normalize`; NaN marks a missing entry.

        Returns
        -------
        torch.Tensor of shape (n_samples, bottleneck_width)
            The code; columns of closed units are zero.
        """
        return self._encode_incomplete_units(x_normalized, slice(None))

    def _encode_incomplete_units(self, x_normalized, units):
        """Gated code of the ``units`` (a slice) only, from normalised input with NaN holes."""
        missing = torch.isnan(x_normalized)
        n_observed = (~missing).sum(dim=-1, keepdim=True).clamp(min=1).to(x_normalized.dtype)
        filled = torch.where(missing, torch.zeros_like(x_normalized), x_normalized) * (self.n_features / n_observed)
        if self.missing_indicator:
            return self._encode_with_indicator(filled, missing, units)
        return self._encode_units(filled, units)

    def decode_normalized(self, code):
        """Reconstruction in normalised units from a full-width code.

        Parameters
        ----------
        code : torch.Tensor of shape (n_samples, bottleneck_width)
            A code as returned by :meth:`encode_normalized`.

        Returns
        -------
        torch.Tensor of shape (n_samples, n_features)
            The reconstruction, in normalised units.
        """
        return self._decode_units(code, slice(None))

    def _decode_units(self, code, units):
        """Reconstruction in normalised units from the code of the ``units`` (a slice) alone."""
        linear_weight = self.decoder_linear.weight[:, units]
        if self.decoder_residual is None:
            return F.linear(code, linear_weight)
        first, last = self.decoder_residual[0], self.decoder_residual[-1]
        hidden = F.linear(code, first.weight[:, units], first.bias)
        for layer in self.decoder_residual[1:-1]:
            hidden = layer(hidden)
        if not self._fuses_products():
            return F.linear(code, linear_weight) + last(hidden)
        # Likewise one product writes the output for the linear path and the
        # residual's last layer, from the code and the last hidden layer side by side.
        weight = torch.cat([linear_weight, last.weight], dim=1)
        return F.linear(torch.cat([code, hidden], dim=-1), weight, last.bias)

    def reconstruct_normalized(self, x_normalized, *, missing_values=False):
        """``decode_normalized(encode_normalized(x_normalized))``, through the open units only.

        A closed unit passes exactly zero, so its rows and columns of the matrix
        products add nothing: on wide data training steps skip them
        (:meth:`_skips_closed_units`; ``benchmarks/speed.py --sections internals``
        times it).

        Parameters
        ----------
        x_normalized : torch.Tensor of shape (n_samples, n_features)
            Input already passed through :meth:`normalize`.
        missing_values : bool, default=False
            Whether NaN marks missing entries, encoded as
            :meth:`encode_incomplete_normalized` does.

        Returns
        -------
        torch.Tensor of shape (n_samples, n_features)
            The reconstruction, in normalised units.
        """
        units = self._open_span()
        encode = self._encode_incomplete_units if missing_values else self._encode_units
        return self._decode_units(encode(x_normalized, units), units)

    @torch.no_grad()
    def _open_span(self):
        """A slice of the units that holds every open one; all of them where closed ones are not skipped, or none is open.

        It reaches down to a multiple of ``SPAN_MULTIPLE`` units where the width
        allows: the closed units it takes in add exactly zero, and CPU kernels
        multiply an odd number of rows up to 1.3 times as slowly as the next
        multiple of 8.
        """
        if not self._skips_closed_units():
            return slice(None)
        open_units = self.gate.open_mask().nonzero().flatten().tolist()
        if not open_units:
            return slice(None)
        end = open_units[-1] + 1
        span = -(-(end - open_units[0]) // SPAN_MULTIPLE) * SPAN_MULTIPLE
        return slice(max(end - span, 0), end)

    def encode(self, x):
        """Gated code of raw input.

        Parameters
        ----------
        x : torch.Tensor of shape (n_samples, n_features)
            Input in the units of the data.

        Returns
        -------
        torch.Tensor of shape (n_samples, bottleneck_width)
            The code; columns of closed units are zero.
        """
        return self.encode_normalized(self.normalize(x))

    def encode_incomplete(self, x):
        """Gated code of raw input whose missing entries are NaN.

        Parameters
        ----------
        x : torch.Tensor of shape (n_samples, n_features)
            Input in the units of the data; NaN marks a missing entry.

        Returns
        -------
        torch.Tensor of shape (n_samples, bottleneck_width)
            The code (see :meth:`encode_incomplete_normalized`).
        """
        return self.encode_incomplete_normalized(self.normalize(x))

    def decode(self, code):
        """Reconstruction in the units of the data.

        Parameters
        ----------
        code : torch.Tensor of shape (n_samples, bottleneck_width)
            A code as returned by :meth:`encode`.

        Returns
        -------
        torch.Tensor of shape (n_samples, n_features)
            The reconstruction.
        """
        return self.decode_normalized(code) * self.input_scale + self.input_mean

    def forward(self, x):
        """Encode and decode: the reconstruction of ``x``.

        Parameters
        ----------
        x : torch.Tensor of shape (n_samples, n_features)
            Input in the units of the data.

        Returns
        -------
        torch.Tensor of shape (n_samples, n_features)
            The reconstruction, in the units of the data.
        """
        return self.decode(self.encode(x))


def _default_initialisation(linear, generator):
    """PyTorch's default ``nn.Linear`` initialisation, drawn from ``generator``."""
    nn.init.kaiming_uniform_(linear.weight, a=math.sqrt(5), generator=generator)
    if linear.bias is not None:
        bound = 1 / math.sqrt(linear.in_features)
        nn.init.uniform_(linear.bias, -bound, bound, generator=generator)
