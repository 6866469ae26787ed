"""The DAM paper's L1-gated baseline (network slimming) on skdam's own network.

METHOD.md: the DAM gate is replaced by a learnable per-unit scale ``s_i`` (start 1),
gate ``max(0, s_i)``, and the penalty ``lambda * mean(|gate|)``. Everything else is
what ``DAMAutoencoder`` uses, so the comparison isolates the gate: the same
:class:`~skdam.nn.GatedAutoencoder` (linear path plus MLP residual), the same
normalisation and warm start from the principal axes, Adam with the weights'
learning rate and the DAM gate's learning rate for the scales. There is no stopping
rule to borrow (nothing settles the way DAM's one beta does), so it trains for a
fixed number of full passes over the rows, each of 50 batches (N / 50 rows, at least
32): ``batch_size="auto"``'s rule before it capped batches at 256 rows and epochs at
50 of them, kept so that the baseline trains as long as in every earlier run (on
Fashion-MNIST, 15 passes of 60000 rows: more than ``DAMAutoencoder`` now trains).
"""

import numpy as np
import torch
from sklearn.utils import check_random_state
from torch import nn

# Read, never changed: the baseline borrows the package's settings so that only the gate differs.
from skdam._base import AUTO_STEPS_PER_EPOCH, GATE_LEARNING_RATE
from skdam._statistics import DEFAULT_MAX_COMPONENTS, principal_axes
from skdam.nn import GatedAutoencoder


class L1Gate(nn.Module):
    """Per-unit learnable scales ``s_i`` (start 1); the gate is ``max(0, s_i)``."""

    def __init__(self, width):
        super().__init__()
        self.width = width
        self.scales = nn.Parameter(torch.ones(width))

    def gate_values(self):
        return torch.relu(self.scales)

    def forward(self, hidden):
        return hidden * self.gate_values()

    def n_open(self):
        return int((self.gate_values() > 0).sum())


class L1GatedAutoencoder:
    """Fit/transform/inverse_transform around a GatedAutoencoder with an L1 gate.

    Parameters
    ----------
    penalty : float
        ``lambda`` of ``lambda * mean(|gate|)``, against the MSE in normalised units
        (the unexplained share of the variance), as DAM's ``alpha`` is.
    epochs : int
        Fixed number of epochs.
    """

    def __init__(self, penalty, *, epochs=30, hidden_layer_sizes=(128, 128), activation="tanh", learning_rate=3e-3, random_state=0):
        self.penalty = penalty
        self.epochs = epochs
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.learning_rate = learning_rate
        self.random_state = random_state

    def fit(self, X):
        X = np.asarray(X, dtype=np.float32)
        n_samples, n_features = X.shape
        random_state = check_random_state(self.random_state)
        generator = torch.Generator().manual_seed(int(random_state.randint(2**31 - 1)))
        width = min(DEFAULT_MAX_COMPONENTS, n_samples, n_features)
        batch_size = int(min(n_samples, max(-(-n_samples // AUTO_STEPS_PER_EPOCH), 32)))
        axes = principal_axes(X, width, random_state)
        module = GatedAutoencoder(n_features, width, self.hidden_layer_sizes, self.activation).reset_parameters(generator)
        module.gate = L1Gate(width)
        module.set_normalization(axes.mean, axes.spread)
        module.set_linear_path(axes.directions)
        optimizer = torch.optim.Adam(
            [
                {"params": [p for n, p in module.named_parameters() if not n.startswith("gate.")], "lr": self.learning_rate},
                {"params": [module.gate.scales], "lr": GATE_LEARNING_RATE},
            ]
        )
        data = torch.from_numpy(X)
        module.train()
        self.n_components_curve_ = []
        for _ in range(self.epochs):
            order = torch.randperm(n_samples, generator=generator)
            for first in range(0, n_samples, batch_size):
                batch = module.normalize(data[order[first : first + batch_size]])
                reconstruction = module.decode_normalized(module.encode_normalized(batch))
                loss = torch.nn.functional.mse_loss(reconstruction, batch) + self.penalty * module.gate.gate_values().abs().mean()
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
            self.n_components_curve_.append(module.gate.n_open())
        module.eval()
        self.module_ = module
        gate_values = module.gate.gate_values().detach()
        self.open_units_ = torch.nonzero(gate_values > 0).flatten()
        self.n_components_ = int(self.open_units_.numel())
        return self

    @torch.no_grad()
    def transform(self, X):
        code = self.module_.encode(torch.from_numpy(np.asarray(X, dtype=np.float32)))
        return code[:, self.open_units_].numpy()

    @torch.no_grad()
    def inverse_transform(self, Z):
        code = torch.zeros(Z.shape[0], self.module_.bottleneck_width)
        code[:, self.open_units_] = torch.from_numpy(np.asarray(Z, dtype=np.float32))
        return self.module_.decode(code).numpy()
