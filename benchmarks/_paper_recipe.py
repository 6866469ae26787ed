"""The DAM paper's published training recipes, written from METHOD.md.

These are the baselines the speed benchmark times against: plain PyTorch, the data
moved to the device once as a float32 tensor, the loss ``mse + lambda * beta`` of the
paper, Adam, and the paper's epochs and batch sizes. They reuse skdam's
:class:`~skdam.nn.DAMGate`, which implements the paper's gate formula.
"""

import torch
from torch import nn

from skdam.nn import DAMGate


class RecipeAutoencoder(nn.Module):
    """encoder -> DAM gate -> decoder, as in the paper's experiments."""

    def __init__(self, encoder, decoder, width):
        super().__init__()
        self.encoder = encoder
        self.gate = DAMGate(width)
        self.decoder = decoder

    def forward(self, x):
        return self.decoder(self.gate(self.encoder(x)))


def _perceptron(sizes, activation, last_activation=None, bias=True):
    layers = []
    for index, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(n_in, n_out, bias=bias))
        if index < len(sizes) - 2:
            layers.append(activation())
    if last_activation is not None:
        layers.append(last_activation())
    return nn.Sequential(*layers)


# name: (module factory, Adam settings, lambda, epochs, batch size or None = full batch)
RECIPES = {
    "linear": dict(
        build=lambda: RecipeAutoencoder(
            _perceptron((100, 50), nn.Identity, bias=False), _perceptron((50, 100), nn.Identity, bias=False), 50
        ),
        learning_rate=0.01,
        weight_decay=1e-6,
        penalty=0.01,
        epochs=2000,
        batch_size=None,
    ),
    "mlp_kernel": dict(
        build=lambda: RecipeAutoencoder(_perceptron((100, 256, 256, 50), nn.ELU), _perceptron((50, 128, 100), nn.ELU), 50),
        learning_rate=1e-3,
        weight_decay=0.0,
        penalty=0.1,
        epochs=10000,
        batch_size=None,
    ),
    "fashion_mnist": dict(
        build=lambda: RecipeAutoencoder(
            _perceptron((784, 128, 64, 32, 50), nn.ReLU), _perceptron((50, 32, 64, 128, 784), nn.ReLU, nn.Tanh), 50
        ),
        learning_rate=1e-3,
        weight_decay=0.0,
        penalty=0.01,
        epochs=100,
        batch_size=512,
    ),
}


class RecipeTraining:
    """The recipe ``name`` set up to train on the float32 tensor ``X`` (already centred if needed).

    One :meth:`run_epoch` per call, so that a benchmark can time epochs one by one.

    Parameters
    ----------
    name : str
        A key of :data:`RECIPES`.
    X : torch.Tensor
        The training rows, float32.
    seed : int, default=0
        Seeds the weights and the batches.
    device : str or torch.device, default="cpu"
        Where the model and ``X`` live; on a GPU each epoch waits for its kernels,
        so that timing an epoch times its work.
    penalty : float, default=None
        The recipe's lambda when None.

    Attributes
    ----------
    model : RecipeAutoencoder
        Trained in place; ``model.gate.n_open()`` is the dimension it found.
    epochs : int
        The recipe's own number of epochs.
    """

    def __init__(self, name, X, *, seed=0, penalty=None, device="cpu"):
        recipe = RECIPES[name]
        torch.manual_seed(seed)  # a benchmark process of its own: the global seed is fine here
        self.device = torch.device(device)
        self.model = recipe["build"]().to(self.device)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=recipe["learning_rate"], weight_decay=recipe["weight_decay"])
        self.penalty = recipe["penalty"] if penalty is None else penalty
        self.epochs = recipe["epochs"]
        self.batch_size = recipe["batch_size"] or X.shape[0]
        self.generator = torch.Generator().manual_seed(seed)
        self.X = X.to(self.device)

    def run_epoch(self):
        """One pass over ``X``: shuffled mini-batches, or the full batch as published."""
        X, batch_size = self.X, self.batch_size
        self.model.train()
        order = torch.randperm(X.shape[0], generator=self.generator) if batch_size < X.shape[0] else None
        for first in range(0, X.shape[0], batch_size):
            batch = X if order is None else X[order[first : first + batch_size]]
            loss = torch.nn.functional.mse_loss(self.model(batch), batch) + self.penalty * self.model.gate.beta
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)


def train_recipe(name, X, *, epochs=None, seed=0, penalty=None):
    """Train the recipe ``name`` on ``X`` for its own number of epochs, or ``epochs``.

    Returns
    -------
    model : RecipeAutoencoder
        In eval mode; ``model.gate.n_open()`` is the dimension it found.
    """
    training = RecipeTraining(name, X, seed=seed, penalty=penalty)
    for _ in range(training.epochs if epochs is None else epochs):
        training.run_epoch()
    return training.model.eval()
