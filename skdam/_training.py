"""Training of a gated autoencoder: tensors and settings in, state and records out.

Pure PyTorch, no scikit-learn. The estimators resolve every setting and hand it over
as an explicit keyword. :class:`GateTrainer` owns one optimiser and runs one epoch at
a time (what ``partial_fit`` needs); :func:`train_gated_autoencoder` runs epochs until
the gates and the loss have settled (what ``fit`` needs).
"""

import copy
import math
from dataclasses import dataclass, field

import torch

STOP_CONVERGED = "converged"
STOP_MAX_ITER = "max_iter"
STOP_INTERRUPTED = "interrupted"
#: What partial_fit records: it runs one epoch per call, and no stopping rule.
STOP_PARTIAL_FIT = "partial_fit"

#: The gates count as settled once, over the last ``n_iter_no_change`` epochs, beta
#: has moved less than this share of what Adam would move it at full pace (about
#: its learning rate per step). It keeps training going while gates are still
#: drifting shut more slowly than one per ``n_iter_no_change`` epochs (few steps per
#: epoch, or a narrow bottleneck whose units are far apart), whatever ``tol`` is.
GATE_SETTLED_SHARE_OF_PACE = 0.25
#: A probe judges how fast its error falls over this many times ``n_iter_no_change``
#: epochs: a network learning a curve at 2e-3 to 3e-3 makes its epoch means bounce by half
#: of alpha, which over 3 epochs can read as no progress at all.
PROBE_PATIENCE_FACTOR = 2


class TrainingDivergedError(ValueError, FloatingPointError):
    """The loss stayed non-finite even after the learning rate was lowered.

    A ``ValueError``, as scikit-learn's ``MLPRegressor`` raises for non-finite
    weights, so that code catching bad-input errors catches this one too.
    """


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


@torch.no_grad()
def _parameters_are_finite(module):
    return all(bool(torch.isfinite(parameter).all()) for parameter in module.parameters())


@torch.no_grad()
def reconstruction_error(module, X, batch_size):
    """Mean squared error in normalised units over ``X``, computed in batches."""
    total = torch.zeros((), dtype=torch.float64, device=X.device)
    for start in range(0, X.shape[0], batch_size):
        batch = module.normalize(X[start : start + batch_size])
        residual = module.decode_normalized(module.encode_normalized(batch)) - batch
        total += residual.square().sum(dtype=torch.float64)
    return float(total) / max(X.numel(), 1)


class GateTrainer:
    """One Adam optimiser over a :class:`~skdam.nn.GatedAutoencoder`, epoch by epoch.

    The objective is ``mse(normalised reconstruction) + alpha * soft_open_count``.
    ``beta`` is frozen for the first ``warmup_epochs`` so the network learns before
    any gate closes, has its own step size ``gate_learning_rate``, no weight decay,
    and is never allowed below the floor that keeps ``min_open`` gates open.

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
    """

    def __init__(
        self,
        module,
        *,
        alpha,
        batch_size,
        learning_rate,
        gate_learning_rate,
        weight_decay,
        warmup_epochs,
        min_open,
        generator,
        scheduled_pruning=False,
        max_learning_rate_cuts=6,
        matmul_dtype="float32",
    ):
        if matmul_dtype not in ("float32", "bfloat16"):
            raise ValueError(f"matmul_dtype must be 'float32' or 'bfloat16', got {matmul_dtype!r}.")
        self.module = module
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.gate_learning_rate = gate_learning_rate
        self.weight_decay = weight_decay
        self.warmup_epochs = warmup_epochs
        self.min_open = min_open
        self.beta_floor = module.gate.beta_floor(min_open)
        self.scheduled_pruning = scheduled_pruning
        self.generator = generator
        self.max_learning_rate_cuts = max_learning_rate_cuts
        self.matmul_dtype = matmul_dtype
        self.epochs_run = 0
        self.n_learning_rate_cuts = 0
        self.optimizer = self._make_optimizer()
        self.last_good_state = _snapshot(module)

    def settings(self):
        """The keyword settings that rebuild this trainer (with a module and generator)."""
        return {
            "alpha": self.alpha,
            "batch_size": self.batch_size,
            "learning_rate": self.learning_rate,
            "gate_learning_rate": self.gate_learning_rate,
            "weight_decay": self.weight_decay,
            "warmup_epochs": self.warmup_epochs,
            "min_open": self.min_open,
            "scheduled_pruning": self.scheduled_pruning,
            "max_learning_rate_cuts": self.max_learning_rate_cuts,
            "matmul_dtype": self.matmul_dtype,
        }

    def _make_optimizer(self):
        gate = self.module.gate
        network_parameters = [p for p in self.module.parameters() if p is not gate.beta]
        return torch.optim.Adam(
            [
                {"params": network_parameters, "lr": self.learning_rate, "weight_decay": self.weight_decay},
                # beta's penalty is the point of the method: never decay it towards 0.
                {"params": [gate.beta], "lr": self.gate_learning_rate, "weight_decay": 0.0},
            ]
        )

    def _one_pass(self, X_train, pruning):
        """One shuffled pass; the summed per-row error, or None if the loss blew up."""
        module, gate = self.module, self.module.gate
        learned_beta = pruning and not self.scheduled_pruning
        gate.beta.requires_grad_(learned_beta)
        permutation = torch.randperm(X_train.shape[0], generator=self.generator).to(X_train.device)
        error_sum = torch.zeros((), dtype=torch.float64, device=X_train.device)
        mixed_precision = torch.autocast(
            X_train.device.type, dtype=torch.bfloat16, enabled=self.matmul_dtype == "bfloat16"
        )
        for start in range(0, X_train.shape[0], self.batch_size):
            batch = module.normalize(X_train[permutation[start : start + self.batch_size]])
            with mixed_precision:
                reconstruction = module.decode_normalized(module.encode_normalized(batch))
            error = torch.nn.functional.mse_loss(reconstruction.float(), batch)
            loss = error + self.alpha * gate.soft_open_count() if learned_beta else error
            if not torch.isfinite(loss):
                return None
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            with torch.no_grad():
                if pruning and self.scheduled_pruning:
                    gate.beta.sub_(self.gate_learning_rate)
                gate.beta.clamp_(min=self.beta_floor)
            error_sum += error.detach().double() * batch.shape[0]
        gate.beta.requires_grad_(True)
        # A finite loss can still take a step to non-finite weights; such an epoch
        # must never become the state that later rollbacks return to.
        return error_sum if _parameters_are_finite(module) else None

    def run_epoch(self, X_train, X_validation=None):
        """Train one epoch on ``X_train`` and return its :class:`EpochRecord`."""
        module, gate = self.module, self.module.gate
        pruning = self.epochs_run >= self.warmup_epochs
        module.train()
        while (error_sum := self._one_pass(X_train, pruning)) is None:
            module.load_state_dict(self.last_good_state)
            if self.n_learning_rate_cuts >= self.max_learning_rate_cuts:
                module.eval()
                raise TrainingDivergedError(
                    "The training loss became non-finite and stayed so after "
                    f"{self.max_learning_rate_cuts} halvings of the learning rate (down to "
                    f"{self.learning_rate:.3g}). Check the data for extreme values, or lower "
                    "learning_rate_init."
                )
            # Roll back to the last good epoch and try again, more gently.
            self.n_learning_rate_cuts += 1
            self.learning_rate /= 2
            self.gate_learning_rate /= 2
            self.optimizer = self._make_optimizer()
        module.eval()
        validation_error = None
        if X_validation is not None:
            validation_error = reconstruction_error(module, X_validation, self.batch_size * 8)
        train_error = float(error_sum) / X_train.shape[0]  # per-row-weighted batch means
        record = EpochRecord(
            epoch=self.epochs_run,
            loss=train_error + self.alpha * self.soft_open_count(),
            reconstruction_error=train_error,
            validation_error=validation_error,
            n_open=gate.n_open(),
            beta=float(gate.beta.detach()),
            learning_rate=self.learning_rate,
        )
        self.last_good_state = _snapshot(module)
        self.epochs_run += 1
        return record

    def soft_open_count(self, clamp=True):
        """The penalised count; unclamped it keeps falling while beta > 0."""
        gate = self.module.gate
        count = gate.soft_open_count().detach()
        return float(count.clamp(max=gate.width) if clamp else count)

    def state_dict(self):
        """Everything but the module needed to resume: optimiser, counters, RNG."""
        return {
            "optimizer": self.optimizer.state_dict(),
            "epochs_run": self.epochs_run,
            "n_learning_rate_cuts": self.n_learning_rate_cuts,
            "learning_rate": self.learning_rate,
            "gate_learning_rate": self.gate_learning_rate,
            "generator": self.generator.get_state(),
        }

    def load_state_dict(self, state):
        self.epochs_run = state["epochs_run"]
        self.n_learning_rate_cuts = state["n_learning_rate_cuts"]
        self.learning_rate = state["learning_rate"]
        self.gate_learning_rate = state["gate_learning_rate"]
        self.generator.set_state(state["generator"])
        self.optimizer = self._make_optimizer()
        self.optimizer.load_state_dict(state["optimizer"])
        self.last_good_state = _snapshot(self.module)


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
        follows every new low. (Holding the best until it was beaten by ``tol`` let
        a slow steady decline, ``tol / 3`` per epoch, run on for epochs after the
        gates had settled.)
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


def _validated_error(trainer, record, X_train, X_validation):
    """The error a probe is judged on: on the validation rows, else a full pass."""
    if X_validation is not None:
        return record.validation_error
    return reconstruction_error(trainer.module, X_train, trainer.batch_size)


def _stuck_at_linear_start(settled_error, n_open, linear_errors, alpha):
    """Whether the model is within ``alpha`` of the best linear one with as many units.

    Such a model may be holding units only because nothing asked its perceptron to
    do without them. One that beats the linear projection by more than ``alpha`` has
    traded curvature for units all along (Fashion-MNIST settles 0.06 of the variance
    below PCA with 21 units), and probes there would cost epochs, not free a model
    stuck where it started.
    """
    if linear_errors is None or not 1 <= n_open <= len(linear_errors):
        return False
    return settled_error >= float(linear_errors[n_open - 1]) - alpha


def _beaten_by_linear_start(settled_error, n_open, linear_errors, alpha):
    """Whether the best linear model with more units beats this one in the objective.

    ``error + alpha * units``: a learned gate that closed a unit worth more than
    ``alpha`` (it can, when the decoder makes up for a closing gate faster than the
    error pushes ``beta`` back) leaves a model that PCA with that unit beats.
    """
    if linear_errors is None or n_open >= len(linear_errors):
        return False
    objective = settled_error + alpha * n_open
    return any(float(linear_errors[k - 1]) + alpha * k < objective for k in range(n_open + 1, len(linear_errors) + 1))


def _probe(trainer, X_train, X_validation, *, n_target, target_error, max_epochs, probe_epochs, n_iter_no_change, history, on_epoch_end):
    """Train with ``n_target`` gates open; the error reached, or None and the start put back.

    ``beta`` goes to the value that keeps ``n_target`` gates open (down on the
    schedule, or up at once) and stays there. The probe succeeds as soon as the
    error is at most ``target_error``; it fails after ``probe_epochs`` epochs, or
    once the error does not fall fast enough to get there in the epochs left, judged
    over ``PROBE_PATIENCE_FACTOR * n_iter_no_change`` epochs at ``n_target``. On
    failure, and on ``KeyboardInterrupt``, the model and optimiser go back to where
    the probe began.
    """
    module, gate = trainer.module, trainer.module.gate
    start_state = _snapshot(module)
    start_optimizer = copy.deepcopy(trainer.optimizer.state_dict())
    trainer.min_open = n_target
    trainer.beta_floor = gate.beta_floor(n_target)
    with torch.no_grad():
        gate.beta.clamp_(min=trainer.beta_floor)  # opening a unit: up at once
    errors_at_target = []
    reached_target = False
    try:
        for probe_epoch in range(probe_epochs):
            if trainer.epochs_run >= max_epochs:
                break
            record = trainer.run_epoch(X_train, X_validation)
            history.append(record)
            if on_epoch_end is not None:
                on_epoch_end(record)
            if record.n_open != n_target:
                continue  # beta is still stepping down to the unit
            monitored = record.validation_error if X_validation is not None else record.reconstruction_error
            # The epoch's mean error lags the weights; confirm on a full pass.
            # run_epoch has already kept this state as the trainer's last good one.
            if monitored <= target_error and (error := _validated_error(trainer, record, X_train, X_validation)) <= target_error:
                return error
            if not reached_target:
                reached_target = True  # the count changed during this epoch: not a rate sample
                continue
            errors_at_target.append(monitored)
            window = PROBE_PATIENCE_FACTOR * n_iter_no_change
            if len(errors_at_target) > window:
                # Best errors, not last ones: epoch means are noisy.
                fall_per_epoch = (min(errors_at_target[:-window]) - min(errors_at_target)) / window
                epochs_left = probe_epochs - probe_epoch - 1
                if fall_per_epoch <= 0 or min(errors_at_target) - target_error > fall_per_epoch * epochs_left:
                    break
    except KeyboardInterrupt:
        module.load_state_dict(start_state)
        trainer.last_good_state = start_state
        raise
    module.load_state_dict(start_state)
    trainer.optimizer.load_state_dict(start_optimizer)
    trainer.last_good_state = start_state
    return None


def probe_unit_count(trainer, X_train, *, X_validation=None, max_epochs, probe_epochs, n_iter_no_change, linear_errors, history, on_epoch_end=None):
    """Test the settled count against the objective, one unit more or fewer at a time.

    The learned ``beta`` settles where closing the weakest open unit costs about
    ``alpha`` of the variance *for the network as it is*, and that can be wrong both
    ways, which the best linear model with each number of units (``linear_errors``)
    tells:

    - **beaten by its linear start** (see :func:`_beaten_by_linear_start`): the gate
      closed a unit worth more than ``alpha``. A probe reopens the last closed unit
      and keeps it once the error has fallen by more than ``alpha``, to within
      ``alpha`` of the linear error with as many units.
    - **stuck at its linear start** (see :func:`_stuck_at_linear_start`): on curved
      data the network is still the linear path it started from, since nothing
      asked it to do without a unit: a helix keeps its three linear coordinates,
      though the network can learn to rebuild them from fewer. A probe closes the
      weakest open unit (``beta`` steps down on the schedule) and keeps the closure
      once the error has risen by less than ``alpha``: the unit explains less than
      ``alpha`` once the network has learned to do without it.

    Probes go on in the same direction while the condition holds; a failed probe
    puts everything back and ends the search (see :func:`_probe`). Every probe epoch
    is appended to ``history``, so the curves show failed probes too; ``trainer``
    ends holding the accepted state in ``last_good_state``.
    """
    module, gate, alpha = trainer.module, trainer.module.gate, trainer.alpha
    settings = trainer.min_open, trainer.beta_floor, trainer.scheduled_pruning
    lowest_open = trainer.min_open
    trainer.scheduled_pruning = True
    trainer.last_good_state = _snapshot(module)
    try:
        module.eval()
        # Batches of training size: a full pass must not outgrow a training step's
        # memory (8 batches at once took 2.8 times the input at 1e5 rows).
        judged_rows = X_train if X_validation is None else X_validation
        settled_error = reconstruction_error(module, judged_rows, trainer.batch_size)
        step = +1 if _beaten_by_linear_start(settled_error, gate.n_open(), linear_errors, alpha) else -1
        condition = _beaten_by_linear_start if step > 0 else _stuck_at_linear_start
        while trainer.epochs_run < max_epochs and condition(settled_error, gate.n_open(), linear_errors, alpha):
            n_target = gate.n_open() + step
            if not lowest_open <= n_target <= gate.width:
                break
            target_error = settled_error - step * alpha
            if step > 0:
                # Opened, the unit must also bring the model within alpha of PCA on as
                # many units; else the next check would still find it beaten, mid-way.
                target_error = min(target_error, float(linear_errors[n_target - 1]) + alpha)
            error = _probe(
                trainer, X_train, X_validation, n_target=n_target, target_error=target_error,
                max_epochs=max_epochs, probe_epochs=probe_epochs, n_iter_no_change=n_iter_no_change,
                history=history, on_epoch_end=on_epoch_end,
            )  # fmt: skip
            if error is None:
                break
            settled_error = error
    finally:
        trainer.min_open, trainer.beta_floor, trainer.scheduled_pruning = settings
        module.eval()


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
    scheduled_pruning=False,
    max_learning_rate_cuts=6,
    matmul_dtype="float32",
    probe_epochs=0,
    linear_errors=None,
    on_epoch_end=None,
):
    """Train ``module`` in place until its gates and loss settle; return what to keep.

    See :class:`GateTrainer` for the objective and the recovery from a non-finite
    loss, and :class:`SettlingMonitor` for the stopping rule, which watches the
    validation objective when ``X_validation`` is given, else the training one.
    With ``probe_epochs`` and ``linear_errors`` (what the best linear projection on
    ``k`` units leaves unexplained, at index ``k - 1``), a settled model that its
    linear start beats, or that is stuck at it, is then offered one unit more or
    fewer at a time by :func:`probe_unit_count`; the probes share the
    ``max_epochs`` budget.
    ``KeyboardInterrupt`` ends training early with ``stop_reason == "interrupted"``
    and the state training would have returned at that point: the last completed
    epoch, or with ``X_validation`` the best validated one.

    Returns
    -------
    TrainingResult
        ``state`` is the final state, or with ``X_validation`` the state of the epoch
        with the best validation objective.
    """
    trainer = GateTrainer(
        module,
        alpha=alpha,
        batch_size=batch_size,
        learning_rate=learning_rate,
        gate_learning_rate=gate_learning_rate,
        weight_decay=weight_decay,
        warmup_epochs=warmup_epochs,
        min_open=min_open,
        generator=generator,
        scheduled_pruning=scheduled_pruning,
        max_learning_rate_cuts=max_learning_rate_cuts,
        matmul_dtype=matmul_dtype,
    )
    steps_per_epoch = math.ceil(X_train.shape[0] / batch_size)
    monitor = SettlingMonitor(tol, n_iter_no_change, beta_pace_per_epoch=gate_learning_rate * steps_per_epoch)
    result = TrainingResult(state=trainer.last_good_state)
    probing = False
    try:
        while trainer.epochs_run < max_epochs:
            record = trainer.run_epoch(X_train, X_validation)
            result.history.append(record)
            if on_epoch_end is not None:
                on_epoch_end(record)
            if record.epoch < warmup_epochs:
                continue
            monitored = record.validation_error if X_validation is not None else record.reconstruction_error
            # Unclamped, the count falls while beta approaches the first gate, so
            # training cannot look settled before any gate has had a chance to close.
            objective = monitored + alpha * trainer.soft_open_count(clamp=False)
            if monitor.update(objective, record.n_open, record.beta) and X_validation is not None:
                result.state = trainer.last_good_state
            if monitor.settled:
                result.stop_reason = STOP_CONVERGED
                break
        # On the last epoch's mean error first: a model neither stuck at nor beaten by
        # its linear start (Fashion-MNIST) then costs no full pass over X.
        n_open = module.gate.n_open()
        if (
            result.stop_reason == STOP_CONVERGED
            and probe_epochs > 0
            and (
                _beaten_by_linear_start(record.reconstruction_error, n_open, linear_errors, alpha)
                or (n_open > min_open and _stuck_at_linear_start(record.reconstruction_error, n_open, linear_errors, alpha))
            )
        ):
            if X_validation is not None:
                # The probes start from the kept state, not the last epoch's.
                module.load_state_dict(result.state)
            probing = True
            probe_unit_count(
                trainer,
                X_train,
                X_validation=X_validation,
                max_epochs=max_epochs,
                probe_epochs=probe_epochs,
                n_iter_no_change=n_iter_no_change,
                linear_errors=linear_errors,
                history=result.history,
                on_epoch_end=on_epoch_end,
            )
            result.state = trainer.last_good_state
    except KeyboardInterrupt:
        result.stop_reason = STOP_INTERRUPTED
    # With validation rows the best validated state is kept, interrupted or not, as
    # MLPRegressor does; before the first pruning epoch there is no best yet. An
    # interrupted probe has put back the last state it accepted.
    if X_validation is None or monitor.best_objective == math.inf or probing:
        result.state = trainer.last_good_state
    result.n_learning_rate_cuts = trainer.n_learning_rate_cuts
    module.load_state_dict(result.state)
    module.eval()
    return result
