"""DAMAutoencoder: the nonlinear gated autoencoder, for curved data."""

from numbers import Integral

import torch
from sklearn.utils._param_validation import Interval, StrOptions

from ._base import AUTO_STEPS_PER_EPOCH, _BaseDAM
from ._graph_embedding import isomap_coordinates
from ._likelihood import code_statistics, laplace_log_likelihood
from ._principal_subspace import training_axes
from ._statistics import linear_errors
from ._unit_search import AdaptedUnitCount

#: Adapting the network to one count more or fewer (see AdaptedUnitCount), as
#: benchmarks/adaptation.py measured: Adam steps of 256 rows on a one-cycle schedule
#: peaking at 1e-2 bring a Swiss roll on 2 units to 0.004 of the variance in 2000
#: steps, where 1000 leave 0.02 and a constant 3e-3 on small batches 0.06. A
#: closure that these steps leave short of a curved code (the S-curve's 2 units on
#: some draws) gets its retry from a graph start. docs/benchmarks.md has the
#: manifold suite at 2000 and at 3000 steps.
ADAPTATION_STEPS = 2000
#: Where the settled network is already ahead of PCA, closures are judged after
#: adaptations this short, each going on from the last: benchmarks/closing_chain.py
#: compares 100, 250 and 500 steps (counts, errors and fit time).
CLOSING_ADAPTATION_STEPS = 250
#: Where those closures start below the settled count, at PCA's count by the rule,
#: the first adaptation is this long: on Fashion-MNIST, from 17 units to 10, 250
#: steps left 0.200 of the training variance, 500 left 0.188 (the chain from 17
#: had 0.185 at 10), and after 250 the next closures passed on what the network
#: still gained: the chain closed to 7 and its confirmation put back 8 (hand runs,
#: seed 0; docs/benchmarks.md).
JUMP_ADAPTATION_STEPS = 500
#: Those adaptations go on from a network that already has its code, at the step
#: size it trained with: on Fashion-MNIST at alpha 0.002, the first one at the peak
#: of 1e-2 threw 57 units from 0.105 of the variance to 0.141, so that the chain's
#: errors moved by more than alpha from one unit to the next and it stopped at 56;
#: at 3e-3 they fell steadily, 0.1025 at 57 units to 0.1245 at 28, where it stopped
#: (by hand; docs/benchmarks.md has the reruns).
CLOSING_PEAK_LEARNING_RATE = 3e-3
#: The count that chain keeps then trains for this many steps more: its
#: adaptations decide, but leave the network short of finished (the sweep of
#: benchmarks/fashion_mnist.py; docs/benchmarks.md has the figures).
FINISHING_STEPS = 500
ADAPTATION_BATCH_SIZE = 256
#: An adaptation that this peak throws out of its minimum (the paper's MLP kernel)
#: goes on with a third of it (AdaptedUnitCount._adapt).
ADAPTATION_PEAK_LEARNING_RATE = 1e-2
#: An opened unit's adaptation stops after 1000 steps when its error, projected
#: 2.4 times its fall since step 500 further down (the rest of a power-law fall of
#: exponent 0.5), cannot gain alpha. Closing moves always run in full: on 2 units
#: the S-curve's error can sit at 0.12 for 1000 steps before it falls to 0.002.
ADAPTATION_CHECK_STEP = 1000
ADAPTATION_PROJECTION_FACTOR = 2.4
#: A retried closure's code learns Isomap's coordinates for this many of its
#: ADAPTATION_STEPS, then adapts for the rest: benchmarks/tear_free_start.py unrolled
#: the Swiss roll's 2-unit code so (by hand, 1500 steps leave it at 0.001).
GRAPH_STEPS = 1500
#: With missing values, the mean share of the entries hidden from the encoder at
#: each training step (kept in the loss): the network must predict entries it does
#: not see, which is what completing a hole asks. Each row draws its share between
#: 0 and twice this (see TrainingSettings.hidden_share). Half on average was chosen
#: by hand runs on digits; docs/benchmarks.md has the completion errors before and
#: after the per-row draw and the scaled reading of rows came in.
MISSING_HIDDEN_SHARE = 0.5


class DAMAutoencoder(_BaseDAM):
    """Nonlinear dimensionality reduction whose number of components is learned.

    An autoencoder whose bottleneck passes through a DiscriminAtive Masking gate.
    Each side is a linear path, warm-started from a truncated SVD, plus a
    multilayer perceptron added to it as a residual that starts at zero: training
    begins at PCA, learns the curvature PCA misses, and closes the gates of the
    units worth less than ``alpha`` of the variance; the count is then checked
    one unit at a time against errors measured after the network adapted (see
    Notes).

    Missing values (NaN) are taken as they are, in every method: the loss counts
    the observed entries, the encoder reads each row filled with the mean (scaled
    to a complete row's size) and, when fitted on data with holes, which entries
    were missing; in training it also hides a random share of each row's observed
    entries, so that it learns to predict what it does not see. :meth:`complete`
    fills the holes with the reconstruction.

    Parameters
    ----------
    n_components : "auto" or int, default="auto"
        ``"auto"`` discovers the dimension; an int ``k`` keeps exactly ``k``
        units, reached along the search's path: training and the unit search
        never go below ``k``, then units close one at a time down to it, each after
        the network adapts (see Notes).
    hidden_layer_sizes : tuple of int, default=(128, 128)
        Hidden widths of the encoder's perceptron; the decoder mirrors them.
    activation : {"relu", "elu", "tanh", "logistic"}, default="tanh"
        Activation of the hidden layers.
    alpha : float, default=0.01
        Regularization strength, in shares of the variance: a unit is kept when
        dropping it, once the network has adapted, would raise the unexplained
        share of the variance, ``1 - R^2``, by more than ``alpha`` (see Notes and
        ``unexplained_variance_``). Independent of the units of ``X`` and of
        ``max_components``.
    max_components : int, default=None
        Width of the gated bottleneck, the most components that can be kept.
        ``None`` does not cap the answer: at least 64 and twice the number of
        principal components that explain more than ``alpha``, within
        ``min(n_samples, n_features)``.
    min_components : int, default=1
        Gates that stay open however large ``alpha`` is.
    max_iter : int, default=400
        Most epochs, counting the unit search's adaptations at 50 steps an epoch
        (one adaptation is 40): a count that the budget leaves unchecked stands,
        with a ``ConvergenceWarning``. The default leaves room for the settling
        epochs and eight adaptations.
    batch_size : int or "auto", default="auto"
        Rows per mini-batch. ``"auto"``: 50 steps per epoch, of ``[32, 256]``
        rows; past 12800 rows an epoch trains on 12800 of them, freshly shuffled
        (``partial_fit`` on its whole chunk). An int: an epoch is a full pass.
    learning_rate_init : float, default=3e-3
        Adam step size of the weights.
    tol : float, default=1e-2
        Improvement of the objective below which an epoch counts as no improvement.
    n_iter_no_change : int, default=3
        Training stops once the open gates, the gate's ``beta`` and the objective
        have settled for this many epochs in a row.
    early_stopping : "auto" or bool, default="auto"
        Monitor a held-out ``validation_fraction`` of the rows and keep the best
        state; the rule behind ``n_components_`` is then judged on those rows, which
        the network never trained on. A network can thread its code through the
        training rows: memorise a thin sample (digits' 1347 rows of 64 pixels), or
        tear a sheet along bands few rows fall in (the Swiss roll). Judged there,
        the error reads below what new rows see, and units that carry variance
        close (``benchmarks/thin_samples.py``, ``benchmarks/manifolds.py``).
        ``"auto"`` holds rows out where the share is at least 100 rows (about 1000
        rows at the default fraction) and no entry is missing; else the rule is
        judged on the training rows, as PCA's ``explained_variance_ratio_`` is. With
        missing entries, training scores the prediction of entries it hides from the
        encoder, which a held-out row's reconstruction does not.
        ``early_stopping_`` says which.
    validation_fraction : float, default=0.1
        Share of the rows held out when ``early_stopping`` holds rows out.
    random_state : int, RandomState instance or None, default=None
        Seeds the initialisation and the batches through a local ``torch.Generator``.
    verbose : int, default=0
        Positive shows the progress of training, with the loss and the open gates:
        a bar on a terminal when tqdm is installed, one line per epoch otherwise.
    device : {"auto", "cpu", "cuda"} or torch.device, default="auto"
        Where to train and transform; ``"auto"`` picks CUDA when available.
    mixed_precision : "auto" or bool, default="auto"
        Whether training computes its matrix products in bfloat16, keeping the
        weights, the gate and the loss in float32. ``"auto"`` turns it on where it
        pays: on a device with bfloat16 matrix units (a CPU with AMX, a CUDA GPU of
        compute capability 8.0 or more) and a training step of at least ``2**26``
        multiply-adds (batch rows times parameters). ``transform``,
        ``inverse_transform`` and ``score`` always compute in float32. Set False for
        results that do not depend on the machine's instruction set.
    input_axes : "auto", int or None, default="auto"
        How many leading principal axes of ``X`` the network trains through, on
        wide data: it trains on the rows' coordinates on them, then reads and
        writes every feature, the axes folded into its first and last layers. It
        cannot reconstruct what lies outside their span, which the errors count.
        ``"auto"``: two per bottleneck unit (128 of Fashion-MNIST's 784 pixels,
        which leave 7.2 % of the variance out, at the same test error in less
        time; ``benchmarks/speed.py``). An int: that many, at least
        the bottleneck's width. None, or a number not below the features: the
        network trains on the features themselves. Only ``fit`` on complete data
        of at most 4096 features, whose covariance gives every axis, trains so
        (``input_axes_``).

    Attributes
    ----------
    n_components_ : int
        The number of open gates: the discovered dimension.
    early_stopping_ : bool
        Whether the fit held rows out (see ``early_stopping``).
    unexplained_variance_ : ndarray of shape (max_components + 1,)
        Entry ``k``: the share of the variance (of the held-out rows where
        ``early_stopping_``) left unexplained with ``k`` open units after the
        network adapted to them, as the fit measured it; NaN where it did not
        measure. Where the adaptation to one unit more stopped early (it could not
        gain ``alpha``), its entry is the projected error. No entry exceeds one with
        fewer units: a unit more can be left unused, so where a measurement ended
        higher (a closure without training, a short adaptation), the lower entry
        stands. The nonlinear counterpart of PCA's cumulated
        ``explained_variance_ratio_``: ``n_components_`` is where the measured
        gains, ``unexplained_variance_[k - 1] - unexplained_variance_[k]``, fall to
        ``alpha`` or below. Another ``alpha`` can be read off it where it was
        measured, but the network is adapted to ``n_components_`` units only:
        another count needs a refit, for example with ``n_components=k`` (where
        units closed along the short chain, see Notes, a count above
        ``n_components_`` is then also finished, and may end below its entry
        here). No entry exceeds what PCA's projection on as many units leaves
        either: the network can be that projection, and one that ended the fit
        behind it became it.
    noise_variance_ : float
        Squared reconstruction error per direction left out, on the training rows:
        the isotropic noise of the likelihood behind ``score``.
    gate_values_ : ndarray of shape (max_components,)
        Value of every gate after training, zero for closed units.
    open_units_ : ndarray of shape (n_components,)
        Bottleneck units behind the columns of ``transform``'s output, most
        preferred first.
    max_components_ : int
        Width of the gated bottleneck actually used.
    batch_size_ : int
        Rows per mini-batch actually used.
    input_axes_ : int or None
        Principal axes the network trained through (see ``input_axes``); None
        where it trained on the features themselves.
    device_ : torch.device
        Device resolved from ``device``.
    mixed_precision_ : bool
        Whether training computed its matrix products in bfloat16.
    loss_curve_ : list of float
        Training objective after each epoch.
    reconstruction_error_curve_ : list of float
        Unexplained share of the training variance after each epoch.
    n_components_curve_ : list of int
        Open gates after each epoch, the adaptations' included (see Notes): a
        rejected move shows one gate fewer, or one more, than the model kept.
    validation_error_curve_ : list of float
        Validation reconstruction error per epoch; only where ``early_stopping_``.
    n_iter_ : int
        Epochs run.
    stop_reason_ : str
        ``"converged"``, ``"max_iter"``, ``"interrupted"``, or ``"partial_fit"``
        after :meth:`partial_fit`.
    module_ : skdam.nn.GatedAutoencoder
        The trained network, on the CPU and in eval mode.
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (n_features,)
        Names of the features seen during fit, when they are all strings.

    See Also
    --------
    DAMEmbedding : The linear counterpart, PCA whose rank is learned.

    Notes
    -----
    The learned gate closes a unit once the network, as it is, can do without it, and
    that can miss both ways: while a gate is partly open the decoder makes up for it, so
    closing costs little until the gate is shut; and on curved data whose linear span is
    small (a helix in R^3, a Swiss roll) nothing asks the network to learn a curved code
    while every linear unit is open, so the gates settle on the linear span. So once the
    gates settle, the units whose closing costs at most ``alpha`` with the network as it
    is close without training, and the count is checked against the rule above where the
    network is within ``alpha`` of the best linear projection (PCA) with as many units,
    or beaten by PCA with more. There the last of those closures is undone, as the
    settled network's error bounds nothing, and the search starts from the count it
    closed from. The gate moves one unit, the network adapts to the new count (2000 Adam
    steps of 256 rows on a one-cycle schedule peaking at 1e-2, from a fresh optimiser),
    and the move is kept when the error changed by at most ``alpha`` (closing) or by
    more (opening); else the network is put back. A move that passes only against the
    settled network's error (a closure to more than ``alpha``, an opening) is judged
    again once the count before it has adapted as long. An adaptation ends with its best
    iterate on the training rows (checked every 50 steps); one whose error jumps tenfold
    goes on from its best with a third of the peak for the steps it has left. A
    closing move that would be rejected runs once more from a fresh perceptron whose
    code first learns Isomap's coordinates of up to 2000 training rows (1500 steps),
    since a network that settled without a curved code can miss one that exists: it
    can sit at PCA's error, a saddle, or tear a sheet. It learns them only where the
    rows, read back from their nearest neighbours in those coordinates, come back
    better than from the first try's code read back alike; it then adapts for the
    other 500 steps of an adaptation, and it stands where it passes the rule on rows
    it never trained on. No error measured is taken above PCA's with as many units,
    which the network can always reach (its perceptron at zero, the principal axes on
    its linear path); once the count is decided, a network behind it becomes that
    projection. A fixed ``n_components=k`` takes the search's path: the gates settle
    no lower than ``k``, the search moves by the rule no lower, and units close one at
    a time down to ``k``, each adapted as the search's moves are (a closure the search
    already tried from that network is taken as it ended). Where the gates settle on
    ``k`` itself, the network adapts for a full adaptation's 2000 steps whatever its
    network, with the retry where it is within ``alpha`` of PCA's or beaten by it,
    kept where it does better. Errors
    are judged on the held-out rows where ``early_stopping_`` (from about 1000 rows by
    default), else on the training rows, as PCA's ``explained_variance_ratio_`` is. An
    opening move that, after 1000 steps, cannot gain ``alpha`` at the rate its error
    falls stops there. Every step counts against ``max_iter``, 50 steps an epoch, and
    shows in the per-epoch curves. Where the perceptron beats PCA by more than ``alpha``
    with as many units (Fashion-MNIST), the gates have settled on too many units rather
    than too few: units close one at a time, each judged after a short adaptation (250
    steps, peaking at the main training's step size, 3e-3) that goes on from the last,
    starting from PCA's count by the rule where that is lower (the first adaptation
    then 500 steps long; where the unit above that start gains more than ``alpha``,
    the chain goes back to where the gates settled), until the next closure costs
    more than ``alpha`` (where the first one does, units
    open the same way while each gains more); the last kept move is then judged again,
    the count it left adapting as long from the same network. The count kept then
    trains 500 steps more at that step size: the chain's adaptations decide, but
    leave the network short of finished. An adaptation that
    ``max_iter`` would cut short is not run: the count stands, and the fit warns.

    ``score`` reads the fit as a generative model, a Gaussian code decoded and
    blurred by isotropic noise (``noise_variance_``), and approximates each row's
    log-likelihood by Laplace's method with the decoder's Jacobian; it is what
    ``GridSearchCV`` over ``alpha`` without ``y`` maximises. ``r2_score`` is the
    reconstruction R^2.

    References
    ----------
    J. Bu, A. Daw, M. Maruf, A. Karpatne, "Learning Compact Representations of
    Neural Networks using DiscriminAtive Masking (DAM)", NeurIPS 2021,
    arXiv:2110.00684.

    Examples
    --------
    >>> import numpy as np
    >>> from skdam import DAMAutoencoder
    >>> rng = np.random.RandomState(0)
    >>> t = rng.uniform(0, 3, size=(400, 1))
    >>> X = np.hstack([t, np.sin(t), np.cos(t), t ** 2 / 3])
    >>> autoencoder = DAMAutoencoder(random_state=0).fit(X)
    >>> autoencoder.transform(X).shape[1] == autoencoder.n_components_
    True
    """

    _parameter_constraints = {
        **_BaseDAM._parameter_constraints,
        "hidden_layer_sizes": ["array-like", Interval(Integral, 1, None, closed="left")],
        "activation": [StrOptions({"relu", "elu", "tanh", "logistic"})],
        "early_stopping": [StrOptions({"auto"}), "boolean"],
        "input_axes": [StrOptions({"auto"}), Interval(Integral, 1, None, closed="left"), None],
    }

    def __init__(
        self,
        n_components="auto",
        *,
        hidden_layer_sizes=(128, 128),
        activation="tanh",
        alpha=0.01,
        max_components=None,
        min_components=1,
        max_iter=400,
        batch_size="auto",
        learning_rate_init=3e-3,
        tol=1e-2,
        n_iter_no_change=3,
        early_stopping="auto",
        validation_fraction=0.1,
        random_state=None,
        verbose=0,
        device="auto",
        mixed_precision="auto",
        input_axes="auto",
    ):
        self.n_components = n_components
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.alpha = alpha
        self.max_components = max_components
        self.min_components = min_components
        self.max_iter = max_iter
        self.batch_size = batch_size
        self.learning_rate_init = learning_rate_init
        self.tol = tol
        self.n_iter_no_change = n_iter_no_change
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.random_state = random_state
        self.verbose = verbose
        self.device = device
        self.mixed_precision = mixed_precision
        self.input_axes = input_axes

    def _hidden_layer_sizes(self):
        sizes = self.hidden_layer_sizes
        sizes = (sizes,) if isinstance(sizes, Integral) else tuple(sizes)
        if any(not isinstance(size, Integral) or size < 1 for size in sizes):
            raise ValueError(f"hidden_layer_sizes must hold positive integers, got {self.hidden_layer_sizes!r}.")
        return sizes

    def _activation(self):
        return self.activation

    def _hidden_share(self):
        # A linear model gets its axes from the warm start's EM; hiding serves the perceptron.
        return MISSING_HIDDEN_SHARE if self._hidden_layer_sizes() else 0.0

    def _training_axes(self, n_features, bottleneck_width):
        if not self._hidden_layer_sizes():
            return None  # a linear network's steps are cheap, and its axes must be PCA's exactly
        return training_axes(self.input_axes, n_features, bottleneck_width)

    def _record_training_axes(self, subspace, continuing):
        if not continuing:
            self.input_axes_ = None if subspace is None else subspace.width

    def _unit_count(self, axes, search):
        if not self._hidden_layer_sizes():
            return super()._unit_count(axes, search)  # linear: PCA's errors are exact
        return AdaptedUnitCount(
            linear_errors(axes),
            search=search,
            max_epochs=self.max_iter,
            steps=ADAPTATION_STEPS,
            closing_steps=CLOSING_ADAPTATION_STEPS,
            closing_peak_learning_rate=CLOSING_PEAK_LEARNING_RATE,
            batch_size=ADAPTATION_BATCH_SIZE,
            peak_learning_rate=ADAPTATION_PEAK_LEARNING_RATE,
            check_step=ADAPTATION_CHECK_STEP,
            projection_factor=ADAPTATION_PROJECTION_FACTOR,
            steps_per_record=AUTO_STEPS_PER_EPOCH,
            graph_coordinates=isomap_coordinates,
            graph_steps=GRAPH_STEPS,
            linear_directions=axes.directions,
            finishing_steps=FINISHING_STEPS,
            jump_steps=JUMP_ADAPTATION_STEPS,
        )

    def _store_results(self, trainer, X_fit, history, stop_reason, device, unit_errors, covariance=None):
        super()._store_results(trainer, X_fit, history, stop_reason, device, unit_errors)
        self._code_mean, self._code_variance, self.noise_variance_ = code_statistics(
            self.module_, self.open_units_, X_fit, torch.device("cpu")
        )

    def _log_likelihood(self, X):
        return laplace_log_likelihood(
            self.module_, self.open_units_, X, code_mean=self._code_mean, code_variance=self._code_variance,
            noise_variance=self.noise_variance_, device=self.device_,
        )  # fmt: skip
