"""One factory for the training layer's tests: settings, warm-started modules, runs."""

import numpy as np
import torch

from skdam._statistics import principal_axes
from skdam._training import GateTrainer, TrainingSettings, train_until_settled
from skdam.nn import GatedAutoencoder


def training_settings(**overrides):
    """Small-data settings; ``overrides`` replaces any of them."""
    settings = dict(alpha=0.01, batch_size=16, learning_rate=1e-2, gate_learning_rate=0.02, min_open=1)
    return TrainingSettings(**{**settings, **overrides})


def warm_started_module(X, hidden_layer_sizes=(8,)):
    """A module on ``X``'s principal axes, and the best linear error with k units."""
    X = np.asarray(X, dtype=np.float64)
    module = GatedAutoencoder(X.shape[1], X.shape[1], hidden_layer_sizes).reset_parameters(torch.Generator().manual_seed(0))
    axes = principal_axes(X, X.shape[1], np.random.RandomState(0))
    module.set_normalization(axes.mean, axes.spread)
    module.set_linear_path(axes.directions)
    return module, (1.0 - np.cumsum(axes.variance_shares)).tolist()


def trainer_for(module, seed=0, **settings):
    return GateTrainer(module, training_settings(**settings), torch.Generator().manual_seed(seed))


def train(module, X, *, max_epochs=6, tol=0.0, n_iter_no_change=1000, X_validation=None, after_settling=None, on_epoch_end=None, **settings):
    """Train ``module`` on ``X`` until settled; the trainer and the result."""
    trainer = trainer_for(module, **settings)
    as_tensor = lambda array: None if array is None else torch.as_tensor(array, dtype=torch.float32)  # noqa: E731
    result = train_until_settled(
        trainer, as_tensor(X), X_validation=as_tensor(X_validation), max_epochs=max_epochs, tol=tol,
        n_iter_no_change=n_iter_no_change, after_settling=after_settling, on_epoch_end=on_epoch_end,
    )  # fmt: skip
    return trainer, result
