"""After the gates settle: test the count one unit more or fewer at a time.

Pure PyTorch, no scikit-learn: the decision of how many units to keep, apart from
the epoch loop that trains them (:mod:`skdam._training`).
"""

import copy
from functools import partial

import torch

from ._training import reconstruction_error, snapshot, with_settings

#: A probe judges how fast its error falls over this many times ``n_iter_no_change``
#: epochs: a network learning a curve at 2e-3 to 3e-3 makes its epoch means bounce by
#: half of alpha, which over 3 epochs can read as no progress at all.
PROBE_PATIENCE_FACTOR = 2


def stuck_at_linear_start(settled_error, n_open, linear_errors, alpha):
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


def beaten_by_linear_start(settled_error, n_open, linear_errors, alpha):
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
    start_state = snapshot(module)
    start_optimizer = copy.deepcopy(trainer.optimizer.state_dict())
    with_settings(trainer, min_open=n_target)
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
            monitored = record.monitored_error
            # The epoch's mean error lags the weights; confirm on a full pass.
            # run_epoch has already kept this state as the trainer's last good one.
            if monitored <= target_error:
                error = monitored if X_validation is not None else reconstruction_error(module, X_train, trainer.settings.batch_size)
                if error <= target_error:
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


def probe_unit_count(trainer, X_train, X_validation, *, max_epochs, probe_epochs, n_iter_no_change, linear_errors, history, on_epoch_end=None):
    """Test the settled count against the objective, one unit more or fewer at a time.

    The learned ``beta`` settles where closing the weakest open unit costs about
    ``alpha`` of the variance *for the network as it is*, and that can be wrong both
    ways, which the best linear model with each number of units (``linear_errors``,
    what it leaves unexplained with ``k`` units at index ``k - 1``) tells:

    - **beaten by its linear start** (see :func:`beaten_by_linear_start`): the gate
      closed a unit worth more than ``alpha``. A probe reopens the last closed unit
      and keeps it once the error has fallen by more than ``alpha``, to within
      ``alpha`` of the linear error with as many units.
    - **stuck at its linear start** (see :func:`stuck_at_linear_start`): on curved
      data the network is still the linear path it started from, since nothing
      asked it to do without a unit. A probe closes the weakest open unit (``beta``
      steps down on the schedule) and keeps the closure once the error has risen by
      less than ``alpha``: the unit explains less than ``alpha`` once the network has
      learned to do without it.

    Probes go on in the same direction while the condition holds; a failed probe
    puts everything back and ends the search (see :func:`_probe`). Every probe epoch
    is appended to ``history``, so the curves show failed probes too; ``trainer``
    ends holding the accepted state in ``last_good_state``.
    """
    module, gate, alpha = trainer.module, trainer.module.gate, trainer.settings.alpha
    lowest_open = trainer.settings.min_open
    settings = with_settings(trainer, scheduled_pruning=True)
    try:
        module.eval()
        # Batches of training size: a full pass must not outgrow a training step's memory.
        judged_rows = X_train if X_validation is None else X_validation
        settled_error = reconstruction_error(module, judged_rows, trainer.settings.batch_size)
        step = +1 if beaten_by_linear_start(settled_error, gate.n_open(), linear_errors, alpha) else -1
        condition = beaten_by_linear_start if step > 0 else stuck_at_linear_start
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
        trainer.settings = settings
        module.eval()


def _search_if_needed(trainer, X_train, X_validation, last_record, history, on_epoch_end, *, linear_errors, **probe_settings):
    # On the last epoch's mean error first: a model neither stuck at nor beaten by
    # its linear start (Fashion-MNIST) then costs no full pass over X.
    alpha, n_open = trainer.settings.alpha, trainer.module.gate.n_open()
    error = last_record.reconstruction_error
    if not (
        beaten_by_linear_start(error, n_open, linear_errors, alpha)
        or (n_open > trainer.settings.min_open and stuck_at_linear_start(error, n_open, linear_errors, alpha))
    ):
        return False
    probe_unit_count(
        trainer, X_train, X_validation, linear_errors=linear_errors, history=history, on_epoch_end=on_epoch_end, **probe_settings
    )
    return True


def unit_search(*, linear_errors, max_epochs, probe_epochs, n_iter_no_change):
    """The ``after_settling`` step of :func:`~skdam._training.train_until_settled`.

    It probes (see :func:`probe_unit_count`) when the settled model is beaten by,
    or stuck at, the best linear model with as many units.
    """
    return partial(
        _search_if_needed,
        linear_errors=linear_errors,
        max_epochs=max_epochs,
        probe_epochs=probe_epochs,
        n_iter_no_change=n_iter_no_change,
    )
