"""Training of a gated autoencoder: tensors and settings in, state and records out.

Pure PyTorch, no scikit-learn. The estimators resolve every setting and hand it over
as an explicit keyword; this module owns the loop: epochs, mini-batches, the gate's
warm-up, the stopping rule and recovery from a non-finite loss.
"""

import copy
import math
from dataclasses import dataclass, field

import torch

STOP_CONVERGED = "converged"
STOP_MAX_ITER = "max_iter"
STOP_INTERRUPTED = "interrupted"

#: The gates count as settled once, over the last ``n_iter_no_change`` epochs, beta
#: has moved less than this share of what Adam would move it at full pace (about
#: its learning rate per step). It keeps training going while gates are still
#: drifting shut more slowly than one per ``n_iter_no_change`` epochs (few steps per
#: epoch, or a narrow bottleneck whose units are far apart), whatever ``tol`` is.
GATE_SETTLED_SHARE_OF_PACE = 0.25


class TrainingDivergedError(FloatingPointError):
    """The loss stayed non-finite even after the learning rate was lowered."""


@dataclass(frozen=True)
class EpochRecord:
    """What one epoch left behind."""

    epoch: int
    #: Mean training objective: reconstruction error + alpha * soft open count.
    loss: float
    #: Mean training reconstruction error in normalised units (``1 - R^2``).
    reconstruction_error: float
    #: Reconstruction error on the validation rows, when there are any.
    validation_error: float | None
    n_open: int
    beta: float
    learning_rate: float


@dataclass
class TrainingResult:
    """The state to keep, the per-epoch records and why training stopped."""

    state: dict
    history: list = field(default_factory=list)
    stop_reason: str = STOP_MAX_ITER
    n_learning_rate_cuts: int = 0


def _snapshot(module):
    return {name: tensor.detach().clone() for name, tensor in module.state_dict().items()}


def _make_optimizer(module, learning_rate, gate_learning_rate, weight_decay):
    gate_parameters = [module.gate.beta]
    network_parameters = [p for p in module.parameters() if p is not module.gate.beta]
    return torch.optim.Adam(
        [
            {"params": network_parameters, "lr": learning_rate, "weight_decay": weight_decay},
            # beta's penalty is the point of the method: never decay it towards 0.
            {"params": gate_parameters, "lr": gate_learning_rate, "weight_decay": 0.0},
        ]
    )


@torch.no_grad()
def reconstruction_error(module, X, batch_size):
    """Mean squared error in normalised units over ``X``, computed in batches."""
    total = torch.zeros((), dtype=torch.float64, device=X.device)
    for start in range(0, X.shape[0], batch_size):
        batch = module.normalize(X[start : start + batch_size])
        residual = module.decode_normalized(module.encode_normalized(batch)) - batch
        total += residual.square().sum(dtype=torch.float64)
    return float(total) / max(X.numel(), 1)


def train_gated_autoencoder(
    module,
    X_train,
    *,
    X_validation=None,
    alpha,
    max_epochs,
    batch_size,
    learning_rate,
    gate_learning_rate,
    weight_decay,
    warmup_epochs,
    tol,
    n_iter_no_change,
    min_open,
    generator,
    max_learning_rate_cuts=6,
    on_epoch_end=None,
):
    """Train ``module`` in place and return what to keep.

    The objective is ``mse(normalised reconstruction) + alpha * soft_open_count``;
    ``beta`` is frozen for ``warmup_epochs`` so the network learns before any gate
    closes, then it is never allowed below the floor that keeps ``min_open`` gates
    open. Training stops once, for ``n_iter_no_change`` epochs in a row, the open
    count has not changed and the monitored objective (validation when
    ``X_validation`` is given, else training) has not improved by ``tol``, and
    over those epochs ``beta`` has moved less than a quarter of its full pace
    (``GATE_SETTLED_SHARE_OF_PACE``).

    A non-finite loss rolls back to the last good epoch and halves the learning
    rates, up to ``max_learning_rate_cuts`` times, then raises
    :class:`TrainingDivergedError`. ``KeyboardInterrupt`` ends training early with
    the last good state and ``stop_reason == "interrupted"``.

    Returns
    -------
    TrainingResult
        ``state`` is the final state, or with ``X_validation`` the state of the epoch
        with the best validation objective.
    """
    n_samples = X_train.shape[0]
    gate = module.gate
    beta_floor = gate.beta_floor(min_open)
    optimizer = _make_optimizer(module, learning_rate, gate_learning_rate, weight_decay)
    result = TrainingResult(state=_snapshot(module))
    last_good_state = result.state
    best_objective = math.inf
    epochs_without_improvement = 0
    epochs_with_same_count = 0
    previous_open = gate.n_open()
    steps_per_epoch = math.ceil(n_samples / batch_size)
    pruning_betas = []
    epoch = 0
    module.train()
    try:
        while epoch < max_epochs:
            pruning = epoch >= warmup_epochs
            gate.beta.requires_grad_(pruning)
            permutation = torch.randperm(n_samples, generator=generator).to(X_train.device)
            error_sum = torch.zeros((), dtype=torch.float64, device=X_train.device)
            diverged = False
            for start in range(0, n_samples, batch_size):
                batch = module.normalize(X_train[permutation[start : start + batch_size]])
                reconstruction = module.decode_normalized(module.encode_normalized(batch))
                error = torch.nn.functional.mse_loss(reconstruction, batch)
                loss = error + alpha * gate.soft_open_count() if pruning else error
                if not torch.isfinite(loss):
                    diverged = True
                    break
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                with torch.no_grad():
                    gate.beta.clamp_(min=beta_floor)
                error_sum += error.detach().double() * batch.shape[0]
            if diverged:
                # Roll back to the last good epoch and try again, more gently.
                if result.n_learning_rate_cuts >= max_learning_rate_cuts:
                    module.load_state_dict(last_good_state)
                    raise TrainingDivergedError(
                        "The training loss became non-finite and stayed so after "
                        f"{max_learning_rate_cuts} halvings of the learning rate. Check the "
                        "data for extreme values, or lower learning_rate_init."
                    )
                result.n_learning_rate_cuts += 1
                learning_rate, gate_learning_rate = learning_rate / 2, gate_learning_rate / 2
                module.load_state_dict(last_good_state)
                optimizer = _make_optimizer(module, learning_rate, gate_learning_rate, weight_decay)
                continue

            n_open = gate.n_open()
            train_error = float(error_sum) / n_samples  # error_sum holds per-row-weighted batch means
            validation_error = None
            if X_validation is not None:
                module.eval()
                validation_error = reconstruction_error(module, X_validation, batch_size * 8)
                module.train()
            monitored = validation_error if validation_error is not None else train_error
            # The soft count moves with beta, so a gate still drifting shut counts as
            # progress and training does not stop one closure early.
            soft_count = float(gate.soft_open_count().detach().clamp(max=gate.width))
            objective = monitored + alpha * soft_count
            record = EpochRecord(
                epoch=epoch,
                loss=train_error + alpha * soft_count,
                reconstruction_error=train_error,
                validation_error=validation_error,
                n_open=n_open,
                beta=float(gate.beta.detach()),
                learning_rate=learning_rate,
            )
            result.history.append(record)
            last_good_state = _snapshot(module)
            epoch += 1
            if on_epoch_end is not None:
                on_epoch_end(record)
            if not pruning:
                continue

            if objective < best_objective - tol:
                best_objective = objective
                epochs_without_improvement = 0
                if X_validation is not None:
                    result.state = last_good_state
            else:
                epochs_without_improvement += 1
            epochs_with_same_count = epochs_with_same_count + 1 if n_open == previous_open else 0
            previous_open = n_open
            pruning_betas.append(record.beta)
            gates_settled = (
                len(pruning_betas) > n_iter_no_change
                and abs(pruning_betas[-1] - pruning_betas[-1 - n_iter_no_change])
                < GATE_SETTLED_SHARE_OF_PACE * n_iter_no_change * steps_per_epoch * gate_learning_rate
            )
            if min(epochs_without_improvement, epochs_with_same_count) >= n_iter_no_change and gates_settled:
                result.stop_reason = STOP_CONVERGED
                break
    except KeyboardInterrupt:
        result.stop_reason = STOP_INTERRUPTED
        module.load_state_dict(last_good_state)

    if X_validation is None or result.stop_reason == STOP_INTERRUPTED:
        result.state = last_good_state
    module.load_state_dict(result.state)
    module.eval()
    gate.beta.requires_grad_(True)
    return result
