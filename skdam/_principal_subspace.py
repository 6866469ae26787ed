"""Training on wide data through its leading principal axes.

On wide data the products with the features dominate a training step: on
Fashion-MNIST's 784 pixels, the perceptron's first and last layers. The network
trains instead on each row's coordinates on the leading principal axes, a network
of the same kind on fewer inputs; once trained, the axes are folded into its first
and last layers, so that the fitted network reads and writes every feature. Errors
stay shares of the whole variance: the axes are orthonormal, so a row's squared
error is its error within their span plus what lies outside it, which no network
trained there reconstructs.

NumPy and PyTorch; the estimators decide where it applies.
"""

import dataclasses

import numpy as np
import torch

from ._statistics import row_chunks
from .nn import GatedAutoencoder

#: Leading principal axes read per bottleneck unit. At the default width of 64,
#: Fashion-MNIST trains on 128 of its 784 axes, which leave 7.2 % of the variance
#: out, little of which its 8 units reconstruct: by hand on seed 0, test MSE 0.0666
#: in 12.0 s (0.0660 in 13.6 s on 192 axes, 0.0663 in 16.1 s on 256, 0.0668 on every
#: pixel). ``benchmarks/speed.py`` and ``benchmarks/fashion_mnist.py`` measure it
#: (docs/benchmarks.md).
AXES_PER_UNIT = 2


def training_axes(requested, n_features, bottleneck_width):
    """How many principal axes training reads, or None where it reads the features.

    ``requested``: ``"auto"`` (``AXES_PER_UNIT`` per bottleneck unit), an int (at
    least the bottleneck's width), or None. Where that is not fewer than the
    features, training reads the features themselves.
    """
    if requested is None:
        return None
    width = AXES_PER_UNIT * bottleneck_width if requested == "auto" else max(int(requested), bottleneck_width)
    return width if width < n_features else None


class PrincipalSubspace:
    """The span of the leading principal axes that a network trains in, and the rows there.

    Parameters
    ----------
    axes : PrincipalAxes
        The data's principal axes, ``basis`` holding the leading ones that span the
        subspace.
    X : ndarray of shape (n_samples, n_features)
        The training rows.
    X_validation : ndarray of shape (n_validation, n_features) or None
        The held-out rows, if any.

    Attributes
    ----------
    rows, validation_rows : ndarray of float32
        The rows' coordinates on the axes, centred: what the network trains and is
        judged on.
    share_outside, validation_share_outside : float
        The share of the variance of the training (held-out) rows outside the span.
    """

    def __init__(self, axes, X, X_validation=None):
        self.mean = np.asarray(axes.mean, dtype=np.float64)
        self.spread = float(axes.spread)
        self.basis = np.asarray(axes.basis, dtype=np.float64)
        self.width, self.n_features = self.basis.shape
        # The scale that makes a network's mean squared error over the coordinates
        # its error within the span as a share of the whole variance.
        self.scale = self.spread * float(np.sqrt(self.n_features / self.width))
        self.rows = self._coordinates(X)
        self.share_outside = self._share_outside(X, self.rows)
        self.validation_rows, self.validation_share_outside = None, None
        if X_validation is not None:
            self.validation_rows = self._coordinates(X_validation)
            self.validation_share_outside = self._share_outside(X_validation, self.validation_rows)

    def axes_within(self, axes):
        """``axes`` as the network in the span sees them: unit vectors, PCA's errors within the span."""
        directions = np.eye(self.width)[: axes.directions.shape[0]]
        return axes._replace(
            mean=np.zeros(self.width), spread=self.scale, directions=directions, basis=None, share_outside=self.share_outside
        )  # fmt: skip

    def whole_record(self, record):
        """An epoch's record with its errors as shares of the whole variance."""
        validation_error = record.validation_error
        if validation_error is not None:
            validation_error += self.validation_share_outside
        return dataclasses.replace(
            record, loss=record.loss + self.share_outside,
            reconstruction_error=record.reconstruction_error + self.share_outside, validation_error=validation_error,
        )  # fmt: skip

    def whole_result(self, result):
        """A training result with every error as a share of the whole variance.

        The unit search's errors are those of the rows it judged: the held-out rows
        where there are any. Its entry for no unit is no measurement but the whole
        variance, in any span, and stays so.
        """
        judged = self.share_outside if self.validation_share_outside is None else self.validation_share_outside
        unit_errors = {count: error + judged if count else error for count, error in result.unit_errors.items()}
        return dataclasses.replace(result, history=[self.whole_record(record) for record in result.history], unit_errors=unit_errors)

    def _coordinates(self, X):
        basis = self.basis.T.astype(np.float32)
        mean = self.mean.astype(np.float32)
        return np.concatenate([(np.asarray(X[rows], dtype=np.float32) - mean) @ basis for rows in row_chunks(X)])

    def _share_outside(self, X, coordinates):
        outside = 0.0
        for rows in row_chunks(X):
            total = np.square(np.asarray(X[rows], dtype=np.float64) - self.mean).sum()
            outside += total - np.square(coordinates[rows].astype(np.float64)).sum()
        return max(outside, 0.0) / (X.shape[0] * self.n_features * self.spread**2)

    @torch.no_grad()
    def fold(self, network):
        """A network on every feature that computes what ``network``, trained on the coordinates, does.

        The encoder's first layers read ``basis @ (x - mean)`` and the decoder's last
        layers write along the basis: folded into their weights, the result is a
        plain :class:`~skdam.nn.GatedAutoencoder` on the features.
        """
        with torch.random.fork_rng(devices=[]):  # construction draws from the global RNG; load_state_dict replaces it all
            folded = GatedAutoencoder(
                self.n_features, network.bottleneck_width, network.hidden_layer_sizes, network.activation
            ).to(network.encoder_linear.weight.dtype)
        state = {name: tensor.clone() for name, tensor in network.state_dict().items()}
        basis = torch.as_tensor(self.basis, dtype=torch.float64)
        # Coordinates in the network's units are sqrt(width / n_features) times the
        # features' in theirs (both divided by their own scale).
        reading = basis * float(np.sqrt(self.width / self.n_features))
        writing = basis.T / float(np.sqrt(self.width / self.n_features))

        def read(name):
            state[name] = (state[name].double() @ reading).to(state[name].dtype)

        def write(name):
            state[name] = (writing @ state[name].double()).to(state[name].dtype)

        read("encoder_linear.weight")
        write("decoder_linear.weight")
        if network.encoder_residual is not None:
            last = len(network.decoder_residual) - 1
            read("encoder_residual.0.weight")
            write(f"decoder_residual.{last}.weight")
            write(f"decoder_residual.{last}.bias")
        state["input_mean"] = torch.as_tensor(self.mean, dtype=state["input_mean"].dtype)
        state["input_scale"] = torch.tensor(self.spread, dtype=state["input_scale"].dtype)
        folded.load_state_dict(state)
        return folded.train(network.training)
