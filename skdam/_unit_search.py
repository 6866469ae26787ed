"""After the gates settle: measure what each unit is worth, and keep those worth alpha.

Pure PyTorch, no scikit-learn: the decision of how many units to keep, apart from
the epoch loop that trains them (:mod:`skdam._training`).

The rule: with ``e(k)`` the unexplained share of the variance with ``k`` open units,
*once the network has adapted to them*, unit ``k`` is kept when
``e(k - 1) - e(k) > alpha``. The learned gate settles near that count, but by the
race of pitfall 6 (a closing gate costs little while the decoder makes up for it),
not at it; so the count is then checked against measured errors and moved one unit
at a time until the rule holds on both sides. For a linear model the adapted error
is known in closed form: the best linear projection on ``k`` units, PCA's.
"""

import math
from typing import NamedTuple

import torch

from ._runtime import adam
from ._training import EpochRecord, batch_error, reconstruction_error, snapshot

#: Rows an adaptation's early check measures its error on.
CHECK_ROWS = 4096
#: Share of the training rows a retried closure leaves out, to judge it on rows it
#: never saw.
RETRY_CHECK_SHARE = 0.1
#: Rows whose graph embedding a retried closure's code starts from: Isomap on 2000
#: rows takes about a second.
GRAPH_ROWS = 2000
#: Adam's step size while a code learns the graph's coordinates.
GRAPH_LEARNING_RATE = 1e-3
#: Nearest rows, in the graph's coordinates, whose mean reads a row back.
READBACK_NEIGHBORS = 10
#: A record of an adaptation this many times the best before it, and above it by more
#: than alpha: the peak step size threw the network out of its minimum. Elsewhere
#: records rose at most 4-fold; there 22- to 177-fold (hand runs, docs/benchmarks.md).
SPIKE_RISE = 10
#: The peak step size falls this many times after a spike, for the rest of the adaptation.
PEAK_CUT = 3



class Moves(NamedTuple):
    """How a search's moves adapt, for the closures after it to adapt alike."""

    #: The rows each move is judged on.
    rows: torch.Tensor
    #: Adam steps and peak step size of one adaptation; None for the long defaults.
    steps: int | None
    peak: float | None
    #: Whether a rejected closure is tried again from a graph start.
    retry_closures: bool

    @property
    def chained(self):
        """Whether the moves were the closing chain's short adaptations."""
        return self.steps is not None


def count_by_rule(errors, alpha, count, lowest, highest):
    """Move ``count`` one unit at a time until the rule holds on both sides.

    ``errors`` maps a number of units to its adapted error. Returns the count and
    the neighbour whose error is still needed to decide, or None when decided.
    """
    while True:
        if count > lowest:
            if count - 1 not in errors:
                return count, count - 1
            if errors[count - 1] - errors[count] <= alpha:
                count -= 1
                continue
        if count < highest:
            if count + 1 not in errors:
                return count, count + 1
            if errors[count] - errors[count + 1] > alpha:
                count += 1
                continue
        return count, None


def _by_count(linear_errors):
    """``linear_errors``, at index ``k - 1`` for ``k`` units, as a map from counts; no unit leaves all."""
    return {0: 1.0, **{k: float(error) for k, error in enumerate(linear_errors, start=1)}}


def capped_by_fewer_units(errors):
    """``errors`` with each entry at most those of fewer units.

    A unit more can be left unused, so the error adapted to ``k + 1`` units is at
    most the one adapted to ``k``: an entry above one with fewer units was measured
    short of adapting (a closure without training, or a short adaptation), and the
    lower entry bounds it better.
    """
    capped, lowest = {}, math.inf
    for count in sorted(errors):
        lowest = min(lowest, errors[count])
        capped[count] = lowest
    return capped


class LinearUnitCount:
    """The rule in closed form for a linear model: PCA's errors are the adapted ones.

    Parameters
    ----------
    linear_errors : sequence of float
        What the best linear projection on ``k`` units leaves unexplained, at index
        ``k - 1``.
    search : bool
        Move the count by the rule (``n_components="auto"``), or keep it.
    """

    #: A closed form needs no budget: the count is always checked.
    count_unchecked = False
    #: A fixed count is kept as training pruned to it: the closed form needs no path.
    closes_to_fixed_count = False

    def __init__(self, linear_errors, *, search):
        self.errors = _by_count(linear_errors)
        self.search = search

    def __call__(self, trainer, X_train, X_validation, last_record, history, on_epoch_end):
        gate, settings = trainer.module.gate, trainer.settings
        settled = gate.n_open()
        count = count_by_rule(self.errors, settings.alpha, settled, settings.min_open, gate.width)[0] if self.search else settled
        trainer.module.set_open_count(count)
        trainer.last_good_state = snapshot(trainer.module)
        if count != settled:  # the curves end at the count kept
            _record(trainer, self.errors[count], count, history, on_epoch_end)
        return True


def readback_error(rows, coordinates, n_neighbors=READBACK_NEIGHBORS):
    """Mean squared error of each row read back as the mean of its nearest rows in ``coordinates``.

    Roughly what a smooth decoder from the coordinates can reach, from above (the
    mean blurs what curvature and spacing put between neighbours): a graph that
    unrolls a sheet reads it back to little, one that folds away a direction the data
    needs cannot do better than leave that direction out.
    """
    distances = torch.cdist(coordinates, coordinates)
    distances.fill_diagonal_(math.inf)
    nearest = distances.topk(min(n_neighbors, rows.shape[0] - 1), largest=False).indices
    return float((rows - rows[nearest].mean(dim=1)).square().mean())


def stuck_at_linear_start(settled_error, n_open, linear_errors, alpha):
    """Whether the model is within ``alpha`` of the best linear one with as many units.

    Such a network may hold units only because nothing asked its perceptron to do
    without them (a helix keeps its three linear coordinates). One that beats the
    linear projection by more than ``alpha`` has traded curvature for units all
    along (Fashion-MNIST settles 0.06 of the variance below PCA).
    """
    return 1 <= n_open <= len(linear_errors) and settled_error >= float(linear_errors[n_open - 1]) - alpha


def beaten_by_linear_start(settled_error, n_open, linear_errors, alpha):
    """Whether the best linear model with more units beats this one in ``error + alpha * units``."""
    objective = settled_error + alpha * n_open
    return any(float(linear_errors[k - 1]) + alpha * k < objective for k in range(n_open + 1, len(linear_errors) + 1))


class AdaptedUnitCount:
    """The rule for a network with a perceptron: errors measured after adapting.

    Where the settled network is stuck at, or beaten by, the best linear model with as
    many units, the count is checked one unit at a time: the gate moves to the
    neighbouring count, the network adapts to it with a fresh Adam on a one-cycle
    schedule, and :func:`count_by_rule` decides with the error reached. The first moves
    are judged against the settled network's error, which no adaptation lowered: one
    that passes only for that is judged again once the count before it has adapted as
    long. A move that the rule rejects puts the network back; a closing move it would
    reject is first tried once more from a fresh perceptron whose code starts at a graph
    embedding's coordinates, since a network that settled without a curved code can miss
    one that exists (:meth:`_retry_from_graph_start`). An opening move stops early once
    its error, projected along its own fall, cannot gain ``alpha``; the curve then
    records the projection, or the error before the move where that is lower (a unit
    more can be left unused). Elsewhere the perceptron already trades curvature for
    units, and the gates settled on too many rather than too few: units close one at a
    time, each after a short adaptation that goes on from the last
    (:meth:`_close_adapting`), and the count kept trains on once decided
    (:meth:`_finish`). The errors measured, on the training rows (or the
    validation rows), are kept in ``errors``.

    Parameters
    ----------
    linear_errors : sequence of float
        What the best linear projection on ``k`` units leaves unexplained, at index
        ``k - 1``.
    search : bool
        Move the count by the rule (``n_components="auto"``), or end at the count
        fixed, the trainer's ``min_open`` (:meth:`_check_count`).
    max_epochs : int
        The fit's budget, which the adaptations share with the epochs before.
    steps : int
        Adam steps of one adaptation, at most.
    closing_steps : int
        Adam steps of one adaptation where the network is already ahead of PCA.
    batch_size : int
        Rows per step.
    peak_learning_rate : float
        Peak of the one-cycle schedule; a spike cuts it for the rest of that
        adaptation (:meth:`_adapt`).
    check_step : int
        Step at which an adaptation projects its error (also compared with the error
        at half of it).
    projection_factor : float
        How much further the error falls after ``check_step`` than it fell from
        ``check_step / 2`` to ``check_step``.
    steps_per_record : int
        Steps per record appended to the fit's history.
    graph_coordinates : callable, default=None
        ``graph_coordinates(rows, n_components)``: coordinates of the rows (a NumPy
        array, normalised) that unroll them, or None where it has none; a retried
        closure's code starts from them. None: closures are not retried.
    graph_steps : int, default=0
        Adam steps in which a retried closure's code learns those coordinates.
    closing_peak_learning_rate : float, default=None
        Peak of the schedule of the adaptations where the network is already ahead
        of PCA (``closing_steps`` long); None: ``peak_learning_rate``.
    linear_directions : array-like of shape (n_directions, n_features), default=None
        The principal axes behind ``linear_errors``, strongest first: no error
        measured exceeds their projection's on as many units, and a network that
        ends the check behind it becomes it (:meth:`_bounded_by_linear`,
        :meth:`_no_worse_than_linear`). None: errors and network stand as trained.
    finishing_steps : int, default=0
        Adam steps the count that the chain of ``closing_steps`` adaptations kept
        trains for once decided, at their peak (:meth:`_finish`).
    jump_steps : int, default=None
        Adam steps of the chain's first adaptation where it starts below the
        count the gates settled on (:meth:`_close_adapting`); None:
        ``closing_steps``.
    """

    #: A fixed count is reached as a search's count is: the gates settle no lower,
    #: and units close one at a time after (:meth:`_close_to_fixed_count`).
    closes_to_fixed_count = True

    def __init__(
        self, linear_errors, *, search, max_epochs, steps, closing_steps, batch_size, peak_learning_rate, check_step,
        projection_factor, steps_per_record, graph_coordinates=None, graph_steps=0, closing_peak_learning_rate=None,
        linear_directions=None, finishing_steps=0, jump_steps=None,
    ):  # fmt: skip
        self.linear_errors = [float(error) for error in linear_errors]
        self.max_epochs = max_epochs
        self.search = search
        self.steps = steps
        self.closing_steps = closing_steps
        self.batch_size = batch_size
        self.peak_learning_rate = peak_learning_rate
        self.check_step = check_step
        self.projection_factor = projection_factor
        self.steps_per_record = steps_per_record
        self.graph_coordinates = graph_coordinates
        self.graph_steps = graph_steps
        self.closing_peak_learning_rate = closing_peak_learning_rate or peak_learning_rate
        self.linear_directions = None if linear_directions is None else torch.as_tensor(linear_directions)
        self.finishing_steps = finishing_steps
        self.jump_steps = jump_steps or closing_steps
        self.errors = {0: 1.0}
        #: The last closure the search rejected from the network it stands at:
        #: ``(count, network, error)``, kept for a fixed count below it.
        self._rejected_closure = None
        #: Whether the budget ran out before a move or check the rule asked for.
        self.count_unchecked = False

    def __call__(self, trainer, X_train, X_validation, last_record, history, on_epoch_end):
        moves = self._check_count(trainer, X_train, X_validation, last_record, history, on_epoch_end)
        if moves is not None and moves.chained:
            self._finish(trainer, X_train, moves.rows, history, on_epoch_end)
        self._no_worse_than_linear(trainer, X_train if X_validation is None else X_validation)
        self.errors = capped_by_fewer_units(self.errors)
        trainer.last_good_state = snapshot(trainer.module)
        return True

    def _check_count(self, trainer, X_train, X_validation, last_record, history, on_epoch_end):
        """Leave the network at the count the rule keeps, or the count fixed; the errors measured go into ``errors``.

        A fixed count that training settled on adapts to it (:meth:`_adapt_fixed_count`);
        one below where the gates settled is reached by the search, which never goes
        below it, and closures after (:meth:`_close_to_fixed_count`). Returns the
        search's :class:`Moves` where the network ends at the count it stopped at,
        else None: a count reached by closures past it is a point of the curve of
        a search that kept more, and stays as that search measured it.
        """
        module = trainer.module
        # The training rows, as PCA's explained_variance_ratio_ is of the training
        # data; the validation rows with early_stopping.
        judged = X_train if X_validation is None else X_validation
        count, lowest = module.gate.n_open(), trainer.settings.min_open
        if not self.search and count == lowest:
            self._adapt_fixed_count(trainer, X_train, judged, count, history, on_epoch_end)
            return None
        moves = self._search(trainer, X_train, judged, last_record, history, on_epoch_end)
        if not self.search and module.gate.n_open() > lowest:
            self._close_to_fixed_count(trainer, X_train, lowest, moves, history, on_epoch_end)
            return None  # counts past where the search stopped stand as its curve measured them
        return moves

    def _search(self, trainer, X_train, judged, last_record, history, on_epoch_end):
        """Move the network to the count the rule keeps, never below ``min_open``.

        Returns how its moves adapted (:class:`Moves`).
        """
        module, alpha = trainer.module, trainer.settings.alpha
        count, lowest, highest = module.gate.n_open(), trainer.settings.min_open, module.gate.width
        settled, error = count, last_record.monitored_error
        count, closed_error, last_free_closure = self._close_units_worth_nothing(
            trainer, judged[:CHECK_ROWS], count, lowest, history, on_epoch_end
        )
        if count != settled:
            error = closed_error
        # The last epoch's error first: a full pass only where the count may be wrong.
        if count == settled and self._may_be_wrong(error, count, alpha):
            error = self._error(trainer, judged)
        if not self._may_be_wrong(error, count, alpha):
            self._close_adapting(trainer, X_train, judged[:CHECK_ROWS], count, lowest, highest, history, on_epoch_end)
            return Moves(judged[:CHECK_ROWS], *self._closing, retry_closures=False)
        if last_free_closure is not None:
            # The free closures' bound holds where the network had adapted to the
            # count it closed from, as a settled network has not: the last, the
            # closest call, is made again by the search (the MLP kernel's 20th unit
            # closed for 0.0100 of the variance at a settled 0.0176, where 19 units,
            # adapted, leave 0.035).
            count, state = last_free_closure
            module.load_state_dict(state)
            error = self._error(trainer, judged)
        self.errors[count] = self._bounded_by_linear(trainer, judged, count, error)  # on every judged row, as adapted errors are
        self._walk(trainer, X_train, judged, count, lowest, highest, history, on_epoch_end, baseline_adapted=False)
        return Moves(judged, None, None, retry_closures=True)

    def _close_to_fixed_count(self, trainer, X_train, fixed, moves, history, on_epoch_end):
        """Close units one at a time, from where the search stopped, down to the count fixed.

        Each closure adapts as the search's moves did (``moves``, from
        :meth:`_search`), a rejected one retried from a graph start where the search
        retries them (the retry standing where it does better): the count's network
        and its entry in ``errors`` are then what a search that closed to it reaches.
        A closure the search tried from this network and rejected is taken as it
        ended, so that the curve of a search that kept one unit more reports exactly
        what this fit reaches (it is not finished, :meth:`_finish`). With the budget
        spent, the rest close without adapting.
        """
        module, alpha = trainer.module, trainer.settings.alpha
        rows, steps, peak, retry_closures = moves
        count = module.gate.n_open()
        while count > fixed:
            if self._rejected_closure is not None and self._rejected_closure[0] == count - 1:
                _, state, error = self._rejected_closure
                module.load_state_dict(state)
            else:
                start = snapshot(module)
                error = self._adapt(trainer, X_train, rows, count - 1, None, history, on_epoch_end, steps, peak)
                if error is None:
                    self.count_unchecked = True
                    module.set_open_count(fixed)
                    self.errors[fixed] = self._error(trainer, rows)
                    return
                if not math.isfinite(error):  # diverged: the closure without training
                    module.load_state_dict(start)
                    module.set_open_count(count - 1)
                    error = self._error(trainer, rows)
                elif retry_closures and error - self.errors.get(count, math.inf) > alpha:
                    error = self._retry_from_graph_start(
                        trainer, X_train, rows, count - 1, start, error, error, history, on_epoch_end, steps
                    )
            self._rejected_closure = None
            count -= 1
            self.errors[count] = error

    def _adapt_fixed_count(self, trainer, X_train, judged, count, history, on_epoch_end):
        """Adapt the network to the count the user fixed, for as long as a search's move.

        Its curve's entry is then what a search that kept the count reaches: a
        search's counts adapt for ``steps`` each, or, ahead of PCA, along a chain of
        short adaptations that go on from one another (the MLP latent of 8 reached
        0.0024 of the variance at 8 units in a search, where a fixed count's one short
        adaptation left 0.0055, ``benchmarks/curve_check.py``). Where the network
        is stuck at, or beaten by, PCA, the count also gets the retry a search's
        closure would get (:meth:`_retry_from_graph_start`). With the budget spent,
        the network stands as trained.
        """
        module = trainer.module
        error = self._error(trainer, judged)
        may_be_wrong = self._may_be_wrong(error, count, trainer.settings.alpha)
        start = snapshot(module)
        adapted = self._adapt(trainer, X_train, judged, count, None, history, on_epoch_end)
        self.count_unchecked = adapted is None
        if adapted is not None and adapted < error:
            error = adapted
        else:  # adapting did not help, diverged or had no budget left
            module.load_state_dict(start)
        if may_be_wrong:
            error = self._retry_from_graph_start(
                trainer, X_train, judged, count, start, error, error, history, on_epoch_end, None
            )
        self.errors[count] = error

    def _walk(
        self, trainer, X_train, judged, count, lowest, highest, history, on_epoch_end, steps=None, peak=None,
        retry_closures=True, baseline_adapted=True,
    ):  # fmt: skip
        """Move the count one unit at a time, adapting to each move, until the rule holds.

        Each move adapts for ``steps`` (``self.steps`` by default) at a peak step
        size of ``peak`` (``self.peak_learning_rate``) from the network as the last
        kept move left it; :func:`count_by_rule` decides with the errors
        reached, and a move it rejects puts the network back. With
        ``retry_closures``, a closing move the rule rejects is first tried once more
        from a code that unrolls the data (:meth:`_retry_from_graph_start`). Without
        ``baseline_adapted``, the error at ``count`` is a settled network's, which no
        adaptation lowered: a move that passes against it, where a lower error
        there could fail it, is judged again once ``count`` has adapted as long
        from the same network (:meth:`_adapt_baseline`). Returns the count and the
        last kept move, ``(count before it, network before it)``, or None.
        """
        module, alpha = trainer.module, trainer.settings.alpha
        last_move = None
        while True:
            count, neighbour = count_by_rule(self.errors, alpha, count, lowest, highest)
            if neighbour is None:
                return count, last_move
            # An opened unit shows its gain from the start; a closed one may be made up
            # for only late, once the network finds a curved code (the S-curve's error
            # on 2 units sat at 0.12 for 1000 steps, then fell to 0.002): only opening
            # moves may stop early, when they cannot gain alpha.
            target = self.errors[count] - alpha if neighbour > count else None
            start = snapshot(module)
            error = self._adapt(trainer, X_train, judged, neighbour, target, history, on_epoch_end, steps, peak)
            if error is not None and not baseline_adapted and self._passes_only_as_favoured(count, neighbour, error, alpha):
                start = self._adapt_baseline(trainer, X_train, judged, count, start, history, on_epoch_end, steps, peak)
                baseline_adapted = True
            rejected = error is not None and error - self.errors[count] > alpha
            if retry_closures and neighbour < count and rejected:
                limit = self.errors[count] + alpha
                error = self._retry_from_graph_start(trainer, X_train, judged, neighbour, start, error, limit, history, on_epoch_end, steps)
            if error is None:  # no budget left: the count stands
                self.count_unchecked = True
                module.load_state_dict(start)
                return count, last_move
            if neighbour > count:
                # A unit more can be left unused, so adapted it leaves at most the error
                # before it: a bound on an early stop's projection (which reads the error
                # near the schedule's peak) and on a run the peak step threw off.
                error = min(error, self.errors[count])
            self.errors[neighbour] = error
            if count_by_rule(self.errors, alpha, count, lowest, highest)[0] != neighbour:
                if not self.search and neighbour < count and math.isfinite(error):
                    self._rejected_closure = (neighbour, snapshot(module), error)  # where a fixed count goes on
                module.load_state_dict(start)
            else:
                count, last_move, baseline_adapted = neighbour, (count, start), True
                self._rejected_closure = None

    def _passes_only_as_favoured(self, count, neighbour, error, alpha):
        """Whether the move to ``neighbour`` passes the rule, and a lower error at ``count`` could fail it.

        A closure to an error of at most ``alpha`` passes whatever ``count`` would reach.
        """
        if neighbour < count:
            return error - self.errors[count] <= alpha < error
        return self.errors[count] - error > alpha

    def _adapt_baseline(self, trainer, X_train, judged, count, start, history, on_epoch_end, steps, peak):
        """Adapt ``count`` from ``start`` as long as a move, keeping its error where lower.

        Returns the network at ``count`` to go back to (the adapted one where it did
        better), and leaves the module as the move left it.
        """
        module = trainer.module
        moved = snapshot(module)
        module.load_state_dict(start)
        error = self._adapt(trainer, X_train, judged, count, None, history, on_epoch_end, steps, peak)
        if error is None:
            self.count_unchecked = True
        elif error < self.errors[count]:
            self.errors[count] = error
            start = snapshot(module)
        module.load_state_dict(moved)
        return start

    def _retry_from_graph_start(self, trainer, X_train, judged, count, start, error, limit, history, on_epoch_end, steps):
        """Adapt to ``count`` once more, from ``start`` with a code that unrolls the data.

        A network that reached its count without a curved code can fail a closure
        for want of one, not because the data needs the unit: it may hold the
        adaptation at PCA's error, a saddle (the S-curve's draw 1 sat at PCA's 0.118
        through 3000 steps, every time), or tear the sheet along narrow bands that
        cost the rows it did not train on (the Swiss roll's 2-unit code,
        ``benchmarks/tear_free_start.py``). So the perceptron is drawn afresh and first
        learns the coordinates of ``graph_coordinates`` (Isomap's, of at most
        ``GRAPH_ROWS`` training rows): the open units regress onto them, and the
        decoder maps them back to the rows (:meth:`_learn_graph_code`), unless the
        rows read back from their neighbours (:func:`readback_error`) come back no
        better from those coordinates than from the first adaptation's code. Both
        are read back alike, so that what reading back blurs at the data's dimension
        weighs on both (a closure that loses a direction the data needs reads back
        badly from either: nothing to gain). The network then adapts for the rest
        of an adaptation's steps (a retry costs what one adaptation does), without
        stopping early: the one-cycle schedule's rising steps first undo some of
        the start, so a projection halfway misjudges it, and a code that starts
        behind the first adaptation's error can end ahead of it.

        The retry replaces the first adaptation only where its error on rows it never
        trained on is at most ``limit``: the judged rows where they are held out,
        else a random ``RETRY_CHECK_SHARE`` of the training rows that it leaves out
        (a fresh perceptron memorises a thin sample faster, and that must not pass
        for a code the first one missed). Returns the error on ``judged`` of the
        network kept: ``error`` where the first adaptation stays, or the rows are
        too few to leave any out.
        """
        module = trainer.module
        if judged is X_train:
            n_unseen = max(1, round(RETRY_CHECK_SHARE * X_train.shape[0]))
            if n_unseen >= X_train.shape[0]:
                return error
            order = torch.randperm(X_train.shape[0], generator=trainer.generator).to(X_train.device)
            unseen, trained = X_train[order[:n_unseen]], order[n_unseen:]  # indices: no copy of X
        else:
            unseen, trained = judged, None
        adapted = snapshot(module)
        rows = self._graph_rows(trainer, X_train, trained)
        # The first adaptation's code, read back as the graph's will be: the same
        # measure, so that what it blurs at the data's dimension weighs on both.
        rival = math.inf if rows is None else readback_error(rows, self._open_code(module, rows))
        module.load_state_dict(start)
        module.reset_perceptron(trainer.generator)
        retried = None
        if self._learn_graph_code(trainer, rows, count, steps, history, on_epoch_end, beat=rival):
            # The retry costs what one adaptation does: its steps less the graph's.
            retried = self._adapt(
                trainer, X_train, unseen, count, None, history, on_epoch_end, self._retry_steps(steps), training_rows=trained
            )
        if retried is not None and retried <= limit:
            return retried if unseen is judged else self._error(trainer, judged)
        module.load_state_dict(adapted)
        return error

    def _retry_steps(self, steps):
        """Steps a retry adapts for after learning the graph's coordinates."""
        return max((self.steps if steps is None else steps) - self.graph_steps, 1)

    def _graph_rows(self, trainer, X_train, training_rows=None):
        """At most ``GRAPH_ROWS`` complete rows, normalised, whose graph a code may start from, or None.

        Drawn from ``training_rows`` (indices into ``X_train``) where given. None
        where there is no ``graph_coordinates``, or too few complete rows to read
        any back from their neighbours.
        """
        if self.graph_coordinates is None:
            return None
        candidates = torch.arange(X_train.shape[0], device=X_train.device) if training_rows is None else training_rows
        if trainer.settings.missing_values:
            candidates = candidates[~torch.isnan(X_train).any(dim=1)[candidates]]
        if candidates.shape[0] <= READBACK_NEIGHBORS + 1:
            return None
        order = torch.randperm(candidates.shape[0], generator=trainer.generator)[:GRAPH_ROWS].to(X_train.device)
        return trainer.module.normalize(X_train[candidates[order]])

    @staticmethod
    @torch.no_grad()
    def _open_code(module, rows):
        """The open units' code of ``rows`` (normalised)."""
        return module.encode_normalized(rows)[:, module.gate.open_mask()]

    def _learn_graph_code(self, trainer, rows, count, steps, history, on_epoch_end, beat=math.inf):
        """Train the network on ``count`` units towards the graph's coordinates of ``rows``.

        ``rows`` (from :meth:`_graph_rows`, None for none) get their coordinates,
        scaled to the spread of the units' present code, most spread first as the
        units are preferred. For ``graph_steps`` Adam steps the open units regress
        onto them and the decoder reconstructs the rows from them; the decoder's
        error is what the history records. Returns False, the network untouched
        but for its count, where no coordinates could be had, where the rows read
        back from them (:func:`readback_error`) leave at least ``beat``, or where
        the budget cannot pay for the steps and an adaptation after them.
        """
        module = trainer.module
        module.set_open_count(count)
        budget = (self.max_epochs - trainer.epochs_run) * self.steps_per_record
        if rows is None or budget < self.graph_steps + self._retry_steps(steps):
            return False
        coordinates = self.graph_coordinates(rows.detach().cpu().double().numpy(), count)
        if coordinates is None:
            return False
        coordinates = torch.as_tensor(coordinates, dtype=rows.dtype, device=rows.device)
        if readback_error(rows, coordinates) >= beat:
            return False
        open_units = module.gate.open_mask().nonzero().flatten()
        code = self._open_code(module, rows)
        coordinates = (coordinates - coordinates.mean(0)) / coordinates.std(0).clamp(min=1e-12)
        target = torch.zeros(rows.shape[0], module.gate.width, dtype=rows.dtype, device=rows.device)
        by_spread = code.std(0).argsort(descending=True)  # Isomap's coordinates come most spread first
        target[:, open_units[by_spread]] = coordinates * code.std(0)[by_spread] + code.mean(0)[by_spread]
        network = [parameter for parameter in module.parameters() if parameter is not module.gate.beta]
        optimizer = adam(network, lr=GRAPH_LEARNING_RATE)
        batch_size = min(self.batch_size, rows.shape[0])
        module.gate.beta.requires_grad_(False)
        module.train()
        try:
            for step in range(self.graph_steps):
                batch = torch.randint(0, rows.shape[0], (batch_size,), generator=trainer.generator).to(rows.device)
                code_error = torch.nn.functional.mse_loss(module.encode_normalized(rows[batch])[:, open_units], target[batch][:, open_units])
                decoder_error = torch.nn.functional.mse_loss(module.decode_normalized(target[batch]), rows[batch])
                optimizer.zero_grad(set_to_none=True)
                (code_error + decoder_error).backward()
                optimizer.step()
                if (step + 1) % self.steps_per_record == 0:
                    _record(trainer, float(decoder_error.detach()), count, history, on_epoch_end)
        finally:
            module.gate.beta.requires_grad_(True)
            module.eval()
        return True

    def _close_units_worth_nothing(self, trainer, rows, count, lowest, history, on_epoch_end):
        """Close the weakest units while each costs at most ``alpha`` without adapting.

        Returns the count, its error on ``rows``, and the last closure's
        ``(count before it, network before it)`` or None.

        The error with a unit closed and the network as it is bounds the adapted
        one from above, so where the network has adapted to the count it closes
        from, such a closure stands by the rule at the price of two passes over a
        few thousand rows; training is spent on the closer calls.
        """
        module, alpha = trainer.module, trainer.settings.alpha
        error = self._error(trainer, rows)
        last_closure = None
        while count > lowest:
            start = snapshot(module)
            module.set_open_count(count - 1)
            closed_error = self._error(trainer, rows)
            if closed_error - error > alpha:
                module.load_state_dict(start)
                break
            last_closure = (count, start)
            count, error = count - 1, closed_error
            _record(trainer, error, count, history, on_epoch_end)
        return count, error, last_closure

    def _close_adapting(self, trainer, X_train, rows, count, lowest, highest, history, on_epoch_end):
        """Adapt to ``count``, then close one unit at a time while each costs at most ``alpha``.

        For a network already ahead of PCA: each move is judged after a short
        adaptation (``closing_steps``) that goes on from the last one, so the network
        keeps improving along the way and the count ends where the next closure,
        adapted, costs more than ``alpha`` (a network settled at 24 to 30 units on the
        paper's quadratic kernel of 20 closes to 20): the search's :meth:`_walk` with
        short steps. Where the first closure is rejected, the gates may have settled
        short instead, and units open the same way while each gains more than
        ``alpha``. A move that the rule rejects puts the network back, and the last
        kept move is judged again with both counts trained alike
        (:meth:`_confirm_move`), and the count kept trains on once decided
        (:meth:`_finish`, from ``__call__``). Errors are measured on ``rows``; with the budget
        spent, the count stands (with its unadapted error if it had none to adapt).
        Where PCA's count is lower, the chain first starts there (:meth:`_walk_from_linear_start`).
        """
        walked = self._walk_from_linear_start(trainer, X_train, rows, count, lowest, highest, history, on_epoch_end)
        if walked is None:
            walked = self._adapt_and_walk(trainer, X_train, rows, count, lowest, highest, self.closing_steps, history, on_epoch_end)
        if walked is None:
            self.errors[count] = self._error(trainer, rows)
            return count
        count, last_move = walked
        if last_move is None:
            return count
        return self._confirm_move(trainer, X_train, rows, count, *last_move, history, on_epoch_end)

    def _walk_from_linear_start(self, trainer, X_train, rows, count, lowest, highest, history, on_epoch_end):
        """The chain from PCA's count by the rule, where that is below ``count``: its count and last kept move.

        The gates settle well above the count (Fashion-MNIST on 17 units where the
        rule keeps 8, the quadratic kernel on 28 where it keeps 20), and the walk
        down costs one adaptation a unit. So where PCA's errors, walked by the rule
        from ``count``, keep fewer units, the chain first starts there, its first
        adaptation ``jump_steps`` long, as the units closed at once leave the network
        further from adapted than one closure does. That start stands only where the
        count lies at or below it: where the unit above it gains more than ``alpha``,
        judged again with both counts trained alike (:meth:`_confirm_move`), the
        chain must run from where the gates settled, since every opening from a
        network that the start left short of adapted passes on what it still gains
        (on MovieLens-100k PCA's ratios keep none at alpha 0.03, and from one unit
        the chain opened to 8, where the walk down from the 4 settled keeps 4;
        docs/benchmarks.md). Returns None there, or where there is no such start or
        no budget for it, with the network, ``errors`` and ``count_unchecked`` as
        they were.
        """
        module = trainer.module
        start = count_by_rule(_by_count(self.linear_errors), trainer.settings.alpha, count, lowest, highest)[0]
        if start >= count:
            return None
        settled, errors, unchecked = snapshot(module), dict(self.errors), self.count_unchecked
        walked = self._adapt_and_walk(trainer, X_train, rows, start, lowest, start + 1, self.jump_steps, history, on_epoch_end)
        if walked is not None and walked[0] > start:
            # The opening from the start, judged again with both counts trained alike.
            kept = self._confirm_move(trainer, X_train, rows, walked[0], *walked[1], history, on_epoch_end)
            walked = (start, None) if kept == start else None
        if walked is None:
            module.load_state_dict(settled)
            self.errors, self.count_unchecked, self._rejected_closure = errors, unchecked, None
        return walked

    def _adapt_and_walk(self, trainer, X_train, rows, count, lowest, highest, first_steps, history, on_epoch_end):
        """Adapt to ``count`` for ``first_steps``, then walk the chain from it, within ``[lowest, highest]``.

        Returns the walk's count and last kept move (:meth:`_walk`), or None, the
        network put back, where the first adaptation had no budget or diverged.
        """
        start = snapshot(trainer.module)
        error = self._adapt(trainer, X_train, rows, count, None, history, on_epoch_end, first_steps, self.closing_peak_learning_rate)
        if error is None or not math.isfinite(error):
            self.count_unchecked = self.count_unchecked or error is None
            trainer.module.load_state_dict(start)
            return None
        self.errors[count] = error
        return self._walk(trainer, X_train, rows, count, lowest, highest, history, on_epoch_end, *self._closing, retry_closures=False)

    @property
    def _closing(self):
        """Steps and peak step size of an adaptation where the network is ahead of PCA."""
        return self.closing_steps, self.closing_peak_learning_rate

    def _confirm_move(self, trainer, X_train, rows, count, previous, before, history, on_epoch_end):
        """Judge the chain's last kept move again, with both counts trained alike.

        The move to ``count`` was judged against the error at ``previous``, measured
        one adaptation earlier: as the network still improves along the chain, that
        favours the move by what one adaptation gains (``benchmarks/closing_chain.py``
        measured up to 0.43 alpha). ``previous`` now adapts as long from the same
        network, ``before``; where the rule then prefers it, its network is kept.
        A rejected move needs no such check, being rejected despite the favour; and
        the earlier moves were further from alpha (closing gains grow as units
        close, opening gains shrink as they open). Returns the count kept.
        """
        module, alpha = trainer.module, trainer.settings.alpha
        moved = snapshot(module)
        module.load_state_dict(before)
        error = self._adapt(trainer, X_train, rows, previous, None, history, on_epoch_end, *self._closing)
        if error is None:
            self.count_unchecked = True
        if error is not None and math.isfinite(error):
            self.errors[previous] = error  # trained as long as the count's: the curve's point
            pair = {count: self.errors[count], previous: error}
            if count_by_rule(pair, alpha, count, min(count, previous), max(count, previous))[0] == previous:
                self._rejected_closure = None  # tried from the network now left behind
                return previous
        module.load_state_dict(moved)
        return count

    def _finish(self, trainer, X_train, rows, history, on_epoch_end):
        """Train the count the closing chain kept for ``finishing_steps`` more.

        The chain judges each closure after a short adaptation, enough to decide
        but not to finish the network it keeps: on Fashion-MNIST at alpha 0.1 the
        2 units kept had adapted for 250 steps and left a test MSE of 0.1278,
        behind the L1 baseline's 0.1203; 500 steps more reach 0.1177
        (``benchmarks/fashion_mnist.py``).
        The count stands; its entry in ``errors`` becomes the error reached where
        that is lower, else the network goes back. With the budget spent, nothing
        is trained.
        """
        if self.finishing_steps <= 0:
            return
        module, count = trainer.module, trainer.module.gate.n_open()
        start = snapshot(module)
        error = self._adapt(
            trainer, X_train, rows, count, None, history, on_epoch_end, self.finishing_steps, self.closing_peak_learning_rate
        )
        if error is not None and error < self.errors.get(count, math.inf):
            self.errors[count] = error
        else:  # no budget, diverged, or no better
            module.load_state_dict(start)

    @staticmethod
    def _error(trainer, rows):
        return reconstruction_error(trainer.module, rows, trainer.settings.batch_size, trainer.settings.missing_values)

    def _may_be_wrong(self, error, count, alpha):
        """Whether the settled network is stuck at, or beaten by, PCA."""
        return stuck_at_linear_start(error, count, self.linear_errors, alpha) or beaten_by_linear_start(
            error, count, self.linear_errors, alpha
        )

    def _adapt(self, trainer, X_train, judged, count, target, history, on_epoch_end, steps=None, peak=None, training_rows=None):
        """Adapt the network to ``count`` open units; the error it reaches on ``judged``.

        It trains on ``X_train``, or on its rows ``training_rows`` (indices) where given.

        ``steps`` Adam steps at most, ``self.steps`` by default, on a one-cycle
        schedule peaking at ``peak``, ``self.peak_learning_rate`` by default. With a
        ``target``, the adaptation stops at ``check_step`` when its projected error
        stays above it, and returns the projection. Its steps come out of the fit's epoch
        budget, ``steps_per_record`` steps an epoch; None when the budget is spent.

        The network kept is the one at the end of the record (``steps_per_record``
        steps) with the lowest training error, the objective's best iterate: the
        peak step size can throw the network out of a minimum that the rest of the
        schedule does not find again. The rows judged play no part in the choice.
        A record ``SPIKE_RISE`` times the best before it, and above it by more than
        alpha, says the peak is too high for this network (on a tanh latent of 4, 7
        units left 0.0048 after 300 steps and 0.059 just after the peak; on the
        paper's MLP kernel, 20 units went from 0.012 to 0.67 and ended at 0.016, where
        a third of the peak reaches 0.005): the adaptation goes on from its best
        record, for the steps it has left, with a fresh optimiser and its peak cut
        ``PEAK_CUT``-fold. The next adaptation starts at the full peak again: with
        the cut kept for the rest of the fit, 4 units of the sin-cos arcs of 3 (draw
        0) reached 0.016 of the held-out variance and failed the rule, where the full
        peak reaches 0.006 and passes.
        """
        module, settings = trainer.module, trainer.settings
        steps = self.steps if steps is None else steps
        if (self.max_epochs - trainer.epochs_run) * self.steps_per_record < steps:
            return None
        module.set_open_count(count)
        network = [parameter for parameter in module.parameters() if parameter is not module.gate.beta]
        peak = self.peak_learning_rate if peak is None else peak
        optimizer, schedule = _one_cycle(network, peak, steps)
        autocast = torch.autocast(X_train.device.type, dtype=torch.bfloat16, enabled=settings.matmul_dtype == "bfloat16")
        n_rows = X_train.shape[0] if training_rows is None else training_rows.shape[0]
        batch_size = min(self.batch_size, n_rows)
        steps_per_pass = math.ceil(n_rows / batch_size)
        checked = judged[:CHECK_ROWS]  # the projection needs a trend, not every row
        checkpoints = {}
        module.gate.beta.requires_grad_(False)
        error_sum, rows_seen = 0.0, 0
        best_record, best_state, last_record = math.inf, None, math.inf
        module.train()  # once, not per step: it walks every submodule
        try:
            for step in range(steps):
                if step % steps_per_pass == 0:
                    permutation = torch.randperm(n_rows, generator=trainer.generator).to(X_train.device)
                    if training_rows is not None:
                        permutation = training_rows[permutation]
                offset = (step % steps_per_pass) * batch_size
                batch = X_train[permutation[offset : offset + batch_size]]
                loss = batch_error(module, batch, settings.missing_values, autocast)[0]
                if not torch.isfinite(loss):
                    return math.inf  # worse than any count: the caller puts the network back
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                schedule.step()
                error_sum, rows_seen = error_sum + float(loss.detach()) * batch.shape[0], rows_seen + batch.shape[0]
                if (step + 1) % self.steps_per_record == 0:
                    last_record = error_sum / rows_seen
                    _record(trainer, last_record, count, history, on_epoch_end)
                    if last_record > SPIKE_RISE * best_record and last_record - best_record > settings.alpha:
                        module.load_state_dict(best_state)
                        peak /= PEAK_CUT
                        if step + 1 < steps:
                            optimizer, schedule = _one_cycle(network, peak, steps - step - 1)
                        last_record = best_record
                    if last_record < best_record:
                        best_record, best_state = last_record, snapshot(module)
                    error_sum, rows_seen = 0.0, 0
                if target is not None and step + 1 in (self.check_step // 2, self.check_step):
                    module.eval()
                    checkpoints[step + 1] = self._error(trainer, checked)
                    module.train()
                    if step + 1 == self.check_step:
                        halfway, now = checkpoints[self.check_step // 2], checkpoints[self.check_step]
                        projected = max(now - self.projection_factor * max(halfway - now, 0.0), 0.0)
                        if projected > target:
                            return projected
        finally:
            module.gate.beta.requires_grad_(True)
            module.eval()
        if best_record < last_record:
            module.load_state_dict(best_state)
        return self._bounded_by_linear(trainer, judged, count, self._error(trainer, judged))

    def _linear_error(self, trainer, rows, count):
        """What PCA's projection on ``count`` units leaves of ``rows``; None where it is not known.

        With its perceptron's last layers at zero and the principal axes on its
        linear path, the network is that projection, so its error adapted to
        ``count`` units is at most this. Rows with missing entries have none: their
        projection needs the EM's fill.
        """
        if self.linear_directions is None or trainer.settings.missing_values or count > self.linear_directions.shape[0]:
            return None
        directions = self.linear_directions[:count].to(device=rows.device, dtype=rows.dtype)
        return _projection_error(trainer.module, rows, directions, trainer.settings.batch_size)

    def _bounded_by_linear(self, trainer, rows, count, error):
        """``error``, measured on ``rows`` with ``count`` units, or PCA's there where that is lower.

        An error behind the projection (an adaptation from a network whose
        perceptron pulls the code off a flat manifold, a settled count that never
        adapted) was measured short of adapting. The network stays as it is, the
        next move's start: a fresh perceptron, which the projection needs, memorises
        a thin sample faster (the 4 linear dimensions of 600 rows in R^30 closed to
        3 for 0.0098 of the variance, where PCA's 3 leave 0.164), so it becomes the
        projection only once the count is decided (:meth:`_no_worse_than_linear`).
        """
        linear = self._linear_error(trainer, rows, count)
        return error if linear is None else min(error, linear)

    def _no_worse_than_linear(self, trainer, rows):
        """Make the network PCA's projection on its count where that does better on ``rows``.

        The count's entry in ``errors`` then becomes the projection's error.
        """
        module = trainer.module
        count = module.gate.n_open()
        linear = self._linear_error(trainer, rows, count)
        if linear is None or linear >= self._error(trainer, rows):
            return
        module.set_linear_path(self.linear_directions[:count].to(device=rows.device, dtype=rows.dtype))
        module.reset_perceptron(trainer.generator)
        self.errors[count] = self._error(trainer, rows)


@torch.no_grad()
def _projection_error(module, X, directions, batch_size):
    """Mean squared error of ``X``'s rows, normalised by ``module``, projected on the orthonormal ``directions``."""
    total = torch.zeros((), dtype=torch.float64, device=X.device)
    for start in range(0, X.shape[0], batch_size):
        rows = module.normalize(X[start : start + batch_size])
        residual = rows - (rows @ directions.T) @ directions
        total += residual.square().sum(dtype=torch.float64)
    return float(total / max(X.numel(), 1))


def _one_cycle(network, peak, steps):
    """A fresh Adam on ``network`` and its one-cycle schedule over ``steps``, peaking at ``peak``."""
    optimizer = adam(network)
    return optimizer, torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=peak, total_steps=steps)


def _record(trainer, error, n_open, history, on_epoch_end):
    """Append an epoch's record for steps taken outside the epoch loop."""
    record = EpochRecord(
        epoch=trainer.epochs_run, loss=error + trainer.settings.alpha * n_open, reconstruction_error=error,
        validation_error=None, n_open=n_open, beta=float(trainer.module.gate.beta.detach()), learning_rate=0.0,
    )  # fmt: skip
    trainer.epochs_run += 1
    history.append(record)
    if on_epoch_end is not None:
        on_epoch_end(record)
