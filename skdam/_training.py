"""Training of a gated autoencoder: a module, tensors and settings in; state and records out.

Pure PyTorch, no scikit-learn. The estimators resolve every setting into one frozen
:class:`TrainingSettings`. :class:`GateTrainer` owns the optimiser and runs one epoch
at a time (what ``partial_fit`` needs); :func:`train_until_settled` runs epochs until
the gates and the loss have settled (what ``fit`` needs).
"""

import contextlib
import math
from dataclasses import dataclass, field, replace

import torch

from ._runtime import adam

STOP_CONVERGED = "converged"
STOP_MAX_ITER = "max_iter"
STOP_INTERRUPTED = "interrupted"

MATMUL_DTYPES = ("float32", "bfloat16")

#: The gates count as settled once, over the last ``n_iter_no_change`` epochs, beta
#: has moved less than this share of what Adam would move it at full pace (about
#: its learning rate per step). It keeps training going while gates are still
#: drifting shut more slowly than one per ``n_iter_no_change`` epochs (few steps per
#: epoch, or a narrow bottleneck whose units are far apart), whatever ``tol`` is.
GATE_SETTLED_SHARE_OF_PACE = 0.25


class TrainingDivergedError(ValueError, FloatingPointError):
    """The loss stayed non-finite even after the learning rate was lowered.

    A ``ValueError``, as scikit-learn's ``MLPRegressor`` raises for non-finite
    weights, so that code catching bad-input errors catches this one too.
    """


@dataclass(frozen=True)
class TrainingSettings:
    """Everything :class:`GateTrainer` needs besides the module and the generator.

    Parameters
    ----------
    alpha : float
        Penalty per open unit, in shares of the variance.
    batch_size : int
        Rows per step.
    learning_rate : float
        Adam step of the network's weights.
    gate_learning_rate : float
        Adam step of the gate's ``beta``.
    min_open : int
        Gates that stay open: ``beta`` never goes below the floor that keeps them.
    scheduled_pruning : bool, default=False
        Step ``beta`` down by ``gate_learning_rate`` per batch to the floor instead
        of learning it: exactly ``min_open`` gates remain.
    matmul_dtype : {"float32", "bfloat16"}, default="float32"
        Dtype of the forward pass's matrix products.
    max_learning_rate_cuts : int, default=6
        Halvings of the learning rates allowed after a non-finite loss.
    missing_values : bool, default=False
        Whether the training data hold NaN: the loss then counts observed entries
        only, and the encoder reads each row filled (see :func:`batch_error`).
    epoch_steps : int or None, default=None
        Steps an epoch takes at most, each on fresh rows of a new shuffle; None: an
        epoch is a full pass over the rows.
    hidden_share : float, default=0.0
        With ``missing_values``, the mean share of the entries hidden from the
        encoder at each training step (as if missing) while the loss still counts
        them, so that the network learns to predict entries it does not see. Each
        row draws its own share, uniformly between 0 and twice this (at most 1), so
        that the network meets rows of every completeness: at completion the rows
        are more complete than the ones it trained on.
    """

    alpha: float
    batch_size: int
    learning_rate: float
    gate_learning_rate: float
    min_open: int
    scheduled_pruning: bool = False
    matmul_dtype: str = "float32"
    max_learning_rate_cuts: int = 6
    missing_values: bool = False
    hidden_share: float = 0.0
    epoch_steps: int | None = None

    def __post_init__(self):
        if self.matmul_dtype not in MATMUL_DTYPES:
            raise ValueError(f"matmul_dtype must be 'float32' or 'bfloat16', got {self.matmul_dtype!r}.")


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

    @property
    def monitored_error(self):
        """The error the stopping rule watches: validation when there is one."""
        return self.reconstruction_error if self.validation_error is None else self.validation_error


@dataclass
class TrainingResult:
    """The state to keep, the per-epoch records and why training stopped."""

    state: dict
    history: list = field(default_factory=list)
    stop_reason: str = STOP_MAX_ITER
    #: Adapted error by number of open units, as the after-settling step measured it.
    unit_errors: dict = field(default_factory=dict)
    #: Whether ``max_epochs`` ran out before the after-settling step finished checking
    #: the count.
    count_unchecked: bool = False


def epoch_rows(n_rows, settings):
    """Rows one epoch trains on: all of them, or ``epoch_steps`` batches' worth."""
    if settings.epoch_steps is None:
        return n_rows
    return min(n_rows, settings.epoch_steps * settings.batch_size)


def snapshot(module):
    """A detached copy of ``module``'s state."""
    return {name: tensor.detach().clone() for name, tensor in module.state_dict().items()}


@torch.no_grad()
def _parameters_are_finite(module):
    return all(bool(torch.isfinite(parameter).all()) for parameter in module.parameters())


def hidden_entries(batch, settings, generator):
    """The entries of ``batch`` to hide from the encoder at a training step, or None.

    With ``settings.missing_values`` and a ``hidden_share``, each row hides a share
    of its entries drawn uniformly in ``[0, 2 hidden_share]`` (at most 1).
    """
    if not (settings.missing_values and settings.hidden_share > 0):
        return None
    shares = torch.rand((batch.shape[0], 1), generator=generator) * min(2 * settings.hidden_share, 1.0)
    return (torch.rand(batch.shape, generator=generator) < shares).to(batch.device)


def batch_error(module, batch, missing_values, autocast=None, hide=None):
    """Mean squared error in normalised units of a batch of raw rows, and its entry count.

    With ``missing_values`` the batch may hold NaN: the encoder reads each row with
    its holes filled (:meth:`~skdam.nn.GatedAutoencoder.encode_incomplete_normalized`)
    and the mean runs over the observed entries only, so in normalised units it is
    the unexplained share of the observed entries' variance. ``hide``, a boolean
    mask, hides more entries from the encoder without taking them out of the mean.
    Without ``missing_values``, this is the plain mean squared error over every entry.
    """
    x = module.normalize(batch)
    autocast = contextlib.nullcontext() if autocast is None else autocast
    if not missing_values:
        with autocast:
            reconstruction = module.reconstruct_normalized(x)
        return torch.nn.functional.mse_loss(reconstruction.float(), x), x.numel()
    observed = ~torch.isnan(x)
    shown = x if hide is None else torch.where(hide, torch.nan, x)
    with autocast:
        reconstruction = module.reconstruct_normalized(shown, missing_values=True)
    residual = torch.where(observed, reconstruction.float() - torch.where(observed, x, 0.0), 0.0)
    n_observed = int(observed.sum())
    return residual.square().sum() / max(n_observed, 1), n_observed


@torch.no_grad()
def reconstruction_error(module, X, batch_size, missing_values=False):
    """Mean squared error in normalised units over ``X`` (its observed entries), in batches."""
    total = torch.zeros((), dtype=torch.float64, device=X.device)
    entries = 0
    for start in range(0, X.shape[0], batch_size):
        if missing_values:
            error, n_entries = batch_error(module, X[start : start + batch_size], missing_values=True)
            total += error.double() * n_entries
            entries += n_entries
            continue
        batch = module.normalize(X[start : start + batch_size])
        residual = module.reconstruct_normalized(batch) - batch
        total += residual.square().sum(dtype=torch.float64)
        entries += batch.numel()
    return float(total) / max(entries, 1)


class GateTrainer:
    """One Adam optimiser over a :class:`~skdam.nn.GatedAutoencoder`, epoch by epoch.

    The objective is ``mse(normalised reconstruction) + alpha * soft_open_count``.
    ``beta`` has its own step size, no weight decay, and is never allowed below the
    floor that keeps ``min_open`` gates open.

    With ``scheduled_pruning`` ``beta`` is not learned: it steps down by
    ``gate_learning_rate`` per batch until the floor, so exactly ``min_open`` gates
    remain. A learned ``beta`` can stall one gate short, where the decoder's growing
    weights make up for a nearly closed gate; a schedule cannot.

    A non-finite loss, or an epoch that ends with non-finite weights, rolls back to
    the last good epoch and halves the learning rates, up to
    ``max_learning_rate_cuts`` times; then :meth:`run_epoch` raises
    :class:`TrainingDivergedError` with the module at its last good state.

    ``matmul_dtype="bfloat16"`` runs the forward pass under ``torch.autocast``: the
    matrix products compute in bfloat16 while the weights, the optimiser state, the
    gate and the loss stay float32 (mixed precision, with no loss scaling, which
    bfloat16's float32-wide exponent does not need).

    Parameters
    ----------
    module : skdam.nn.GatedAutoencoder
        Trained in place.
    settings : TrainingSettings
        The trainer's settings; :attr:`settings` may be replaced between epochs.
    generator : torch.Generator
        Source of the batches' shuffling.
    """

    def __init__(self, module, settings, generator):
        self.module = module
        self.generator = generator
        self.settings = settings
        self.epochs_run = 0
        self.n_learning_rate_cuts = 0
        self.optimizer = self._make_optimizer()
        self.last_good_state = snapshot(module)

    @property
    def settings(self):
        return self._settings

    @settings.setter
    def settings(self, settings):
        self._settings = settings
        self.beta_floor = self.module.gate.beta_floor(settings.min_open)

    @property
    def learning_rates(self):
        """The network's and the gate's step after the cuts so far."""
        scale = 0.5**self.n_learning_rate_cuts
        return self.settings.learning_rate * scale, self.settings.gate_learning_rate * scale

    def _make_optimizer(self):
        gate = self.module.gate
        network_parameters = [p for p in self.module.parameters() if p is not gate.beta]
        network_rate, gate_rate = self.learning_rates
        return adam([{"params": network_parameters, "lr": network_rate}, {"params": [gate.beta], "lr": gate_rate}])

    def _one_pass(self, X_train, pruning):
        """One epoch's shuffled rows; their summed per-row error, or None if the loss blew up."""
        module, gate, settings = self.module, self.module.gate, self.settings
        learned_beta = pruning and not settings.scheduled_pruning
        gate_step = self.learning_rates[1]
        gate.beta.requires_grad_(learned_beta)
        permutation = torch.randperm(X_train.shape[0], generator=self.generator).to(X_train.device)
        permutation = permutation[: epoch_rows(X_train.shape[0], settings)]
        error_sum = torch.zeros((), dtype=torch.float64, device=X_train.device)
        mixed_precision = torch.autocast(
            X_train.device.type, dtype=torch.bfloat16, enabled=settings.matmul_dtype == "bfloat16"
        )
        for start in range(0, permutation.shape[0], settings.batch_size):
            batch = X_train[permutation[start : start + settings.batch_size]]
            hide = hidden_entries(batch, settings, self.generator)
            error = batch_error(module, batch, settings.missing_values, mixed_precision, hide)[0]
            loss = error + settings.alpha * gate.soft_open_count() if learned_beta else error
            if not torch.isfinite(loss):
                return None
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            with torch.no_grad():
                if pruning and settings.scheduled_pruning:
                    gate.beta.sub_(gate_step)
                gate.beta.clamp_(min=self.beta_floor)
            error_sum += error.detach().double() * batch.shape[0]
        gate.beta.requires_grad_(True)
        # A finite loss can still take a step to non-finite weights; such an epoch
        # must never become the state that later rollbacks return to.
        return error_sum if _parameters_are_finite(module) else None

    def run_epoch(self, X_train, X_validation=None, *, pruning=True):
        """Train one epoch on ``X_train`` and return its :class:`EpochRecord`.

        ``pruning=False`` freezes ``beta`` for the epoch.
        """
        module, gate = self.module, self.module.gate
        module.train()
        while (error_sum := self._one_pass(X_train, pruning)) is None:
            module.load_state_dict(self.last_good_state)
            if self.n_learning_rate_cuts >= self.settings.max_learning_rate_cuts:
                module.eval()
                raise TrainingDivergedError(
                    "The training loss became non-finite and stayed so after "
                    f"{self.settings.max_learning_rate_cuts} halvings of the learning rate "
                    f"(down to {self.learning_rates[0]:.3g})."
                )
            # Roll back to the last good epoch and try again, more gently.
            self.n_learning_rate_cuts += 1
            self.optimizer = self._make_optimizer()
        module.eval()
        validation_error = None
        if X_validation is not None:
            validation_error = reconstruction_error(
                module, X_validation, self.settings.batch_size * 8, self.settings.missing_values
            )
        train_error = float(error_sum) / epoch_rows(X_train.shape[0], self.settings)  # per-row-weighted batch means
        record = EpochRecord(
            epoch=self.epochs_run,
            loss=train_error + self.settings.alpha * self.soft_open_count(),
            reconstruction_error=train_error,
            validation_error=validation_error,
            n_open=gate.n_open(),
            beta=float(gate.beta.detach()),
            learning_rate=self.learning_rates[0],
        )
        self.last_good_state = snapshot(module)
        self.epochs_run += 1
        return record

    def soft_open_count(self, clamp=True):
        """The penalised count; unclamped it keeps falling while beta > 0."""
        gate = self.module.gate
        count = gate.soft_open_count().detach()
        return float(count.clamp(max=gate.width) if clamp else count)

    def state_dict(self):
        """Everything but the module and the settings needed to resume."""
        return {
            "optimizer": self.optimizer.state_dict(),
            "epochs_run": self.epochs_run,
            "n_learning_rate_cuts": self.n_learning_rate_cuts,
            "generator": self.generator.get_state(),
        }

    def load_state_dict(self, state):
        self.epochs_run = state["epochs_run"]
        self.n_learning_rate_cuts = state["n_learning_rate_cuts"]
        self.generator.set_state(state["generator"])
        self.optimizer = self._make_optimizer()
        self.optimizer.load_state_dict(state["optimizer"])
        self.last_good_state = snapshot(self.module)

    def to(self, device):
        """Move the module and the optimiser's moments together; returns the trainer."""
        self.module.to(device)
        for state in self.optimizer.state.values():
            for key, value in state.items():
                if torch.is_tensor(value) and key != "step":
                    state[key] = value.to(device)
        return self


class SettlingMonitor:
    """Tells when the gates and the objective have settled.

    Settled means: for ``n_iter_no_change`` epochs in a row, the open count has not
    changed and the objective has not improved by ``tol``, and over those epochs
    ``beta`` has moved less than ``GATE_SETTLED_SHARE_OF_PACE`` of its full pace
    (``beta_pace_per_epoch``: unopposed, Adam moves it by about its step size per
    batch). The objective uses the soft open count, which moves with ``beta``, so a
    gate drifting shut counts as progress; the pace is checked on its own too, since
    with few batches an epoch or a tiny ``alpha`` the count can stay put for several
    epochs before the next gate closes.
    """

    def __init__(self, tol, n_iter_no_change, beta_pace_per_epoch):
        self.tol = tol
        self.n_iter_no_change = n_iter_no_change
        self.beta_pace_per_epoch = beta_pace_per_epoch
        self.best_objective = math.inf
        self.epochs_without_improvement = 0
        self.epochs_with_same_count = 0
        self.previous_open = None
        self.betas = []

    def update(self, objective, n_open, beta):
        """Record one epoch; return True when it improved on the best objective.

        As in scikit-learn's ``MLPRegressor``: an epoch that beats the best
        objective so far by less than ``tol`` counts as no improvement, and the best
        follows every new low, so a slow steady decline settles.
        """
        if objective > self.best_objective - self.tol:
            self.epochs_without_improvement += 1
        else:
            self.epochs_without_improvement = 0
        improved = objective < self.best_objective
        if improved:
            self.best_objective = objective
        same = n_open == self.previous_open
        self.epochs_with_same_count = self.epochs_with_same_count + 1 if same else 0
        self.previous_open = n_open
        self.betas.append(beta)
        return improved

    @property
    def beta_settled(self):
        """Beta moved less than a share of its full pace over the window."""
        window = self.n_iter_no_change
        if len(self.betas) <= window:
            return False
        moved = abs(self.betas[-1] - self.betas[-1 - window])
        return moved < GATE_SETTLED_SHARE_OF_PACE * window * self.beta_pace_per_epoch

    @property
    def settled(self):
        quiet = min(self.epochs_without_improvement, self.epochs_with_same_count) >= self.n_iter_no_change
        return quiet and self.beta_settled


def train_until_settled(
    trainer, X_train, *, X_validation=None, max_epochs, tol, n_iter_no_change, after_settling=None, on_epoch_end=None
):
    """Train ``trainer``'s module in place until its gates and loss settle.

    See :class:`GateTrainer` for the objective and the recovery from a non-finite
    loss, and :class:`SettlingMonitor` for the stopping rule, which watches the
    validation objective when ``X_validation`` is given, else the training one.

    ``after_settling(trainer, X_train, X_validation, last_record, history,
    on_epoch_end)``, when given, runs once the gates have settled (or ``max_epochs``
    has run out), from the state
    that would be kept, and may train on (within ``max_epochs``, appending its epochs
    to ``history``); it returns True when it did, and the trainer's last good state
    is then what is kept. ``KeyboardInterrupt`` ends training early with
    ``stop_reason == "interrupted"`` and the state training would have returned at
    that point: the last completed epoch, or with ``X_validation`` the best
    validated one.

    Returns
    -------
    TrainingResult
        ``state`` is the final state, or with ``X_validation`` the state of the epoch
        with the best validation objective (with ``scheduled_pruning``, among the
        epochs that closed the gates down to ``min_open``); the module is left
        holding it.
    """
    settings, module = trainer.settings, trainer.module
    steps_per_epoch = math.ceil(epoch_rows(X_train.shape[0], settings) / settings.batch_size)
    monitor = SettlingMonitor(tol, n_iter_no_change, beta_pace_per_epoch=settings.gate_learning_rate * steps_per_epoch)
    result = TrainingResult(state=trainer.last_good_state)
    keep_last = X_validation is None
    best_validated, kept_record = math.inf, None
    try:
        while trainer.epochs_run < max_epochs:
            record = trainer.run_epoch(X_train, X_validation)
            result.history.append(record)
            if on_epoch_end is not None:
                on_epoch_end(record)
            # Unclamped, the count falls while beta approaches the first gate, so
            # training cannot look settled before any gate has had a chance to close.
            objective = record.monitored_error + settings.alpha * trainer.soft_open_count(clamp=False)
            monitor.update(objective, record.n_open, record.beta)
            # A fixed count is what the fit promises: no state with more gates open may be kept.
            reached = not settings.scheduled_pruning or record.n_open <= settings.min_open
            if X_validation is not None and reached and objective < best_validated:
                best_validated, result.state, kept_record = objective, trainer.last_good_state, record
            if monitor.settled:
                result.stop_reason = STOP_CONVERGED
                break
        if after_settling is not None:
            if X_validation is not None and kept_record is not None:  # search from the best validated state
                module.load_state_dict(result.state)
                trainer.last_good_state, record = result.state, kept_record
            keep_last = after_settling(trainer, X_train, X_validation, record, result.history, on_epoch_end) or keep_last
    except KeyboardInterrupt:
        result.stop_reason = STOP_INTERRUPTED
    # With validation rows the best validated state is kept, interrupted or not, as
    # MLPRegressor does, unless a search after settling has chosen its own.
    if keep_last:
        result.state = trainer.last_good_state
    module.load_state_dict(result.state)
    module.eval()
    return result


def with_settings(trainer, **changes):
    """Replace some of ``trainer``'s settings; returns the previous settings."""
    previous = trainer.settings
    trainer.settings = replace(previous, **changes)
    return previous
