"""The scikit-learn face shared by both estimators.

``fit`` and ``partial_fit`` share one path, :meth:`_BaseDAM._fit`: validate, resolve
the ``"auto"`` values, build the module (or take the one being trained), hand it to
:mod:`skdam._training`, then copy what training used and produced into attributes
ending in ``_``. ``transform``, ``inverse_transform`` and ``score`` live here once.
"""

import warnings
from collections import namedtuple
from numbers import Integral, Real

import numpy as np
import scipy.sparse as sparse
import torch
from sklearn.base import BaseEstimator, ClassNamePrefixFeaturesOutMixin, _fit_context
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import validate_data

from ._input import check_float32_range, check_observed, check_spread
from ._persistence import ArrayStateMixin
from ._progress import epoch_progress
from ._runtime import as_tensor, intra_op_threads, resolve_device, training_matmul_dtype, training_threads
from ._principal_subspace import PrincipalSubspace
from ._statistics import bottleneck_axes, linear_errors
from ._transform import ReconstructionMixin
from ._unit_search import LinearUnitCount
from ._training import (
    STOP_INTERRUPTED,
    STOP_MAX_ITER,
    GateTrainer,
    TrainingDivergedError,
    TrainingResult,
    TrainingSettings,
    train_until_settled,
    with_settings,
)
from .nn import GatedAutoencoder

#: Adam step of the gate's beta. One unit spacing is 5 / width, so this closes
#: about one gate per step at width 64 and lets the network keep pace.
GATE_LEARNING_RATE = 0.02
#: Steps per epoch with batch_size="auto", and the bounds of its batch size. With the
#: same number of steps per epoch whatever the number of rows, the gates see the same
#: number of steps before the stopping rule looks, so the dimension found does not
#: depend on N (docs/benchmarks.md, "Cost in the number of rows"). Past 50 batches of
#: the largest size (12800 rows), an epoch trains on that many rows of a fresh
#: shuffle, not on all of them: the unit search already steps with 256 rows, and on
#: Fashion-MNIST's 60000 the gates settle after as many epochs (9) as with full passes
#: of 1200-row batches, for 4.9 of the paper's epochs' worth of time instead of 10.8
#: (docs/benchmarks.md, "An epoch of 50 steps").
AUTO_STEPS_PER_EPOCH = 50
AUTO_BATCH_SIZE_BOUNDS = (32, 256)
#: ``early_stopping="auto"`` holds rows out where the held-out share is at least this
#: many rows: a choice, not a measurement. Fewer make the held-out error that the rule
#: compares with alpha noisy, and a small sample (iris's 150 rows) can spare none.
AUTO_MIN_VALIDATION_ROWS = 100
#: stop_reason_ after partial_fit: one epoch per call, no stopping rule.
STOP_PARTIAL_FIT = "partial_fit"

#: One epoch of the fitted curves, enough to extend them in partial_fit.
_CurvePoint = namedtuple("_CurvePoint", ["loss", "reconstruction_error", "n_open"])


class _BaseDAM(ArrayStateMixin, ClassNamePrefixFeaturesOutMixin, ReconstructionMixin, BaseEstimator):
    """Shared machinery of :class:`DAMEmbedding` and :class:`DAMAutoencoder`."""

    _parameter_constraints = {
        "n_components": [StrOptions({"auto"}), Interval(Integral, 1, None, closed="left")],
        "alpha": [Interval(Real, 0, None, closed="left")],
        "max_components": [None, Interval(Integral, 1, None, closed="left")],
        "min_components": [Interval(Integral, 1, None, closed="left")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "batch_size": [StrOptions({"auto"}), Interval(Integral, 1, None, closed="left")],
        "learning_rate_init": [Interval(Real, 0, None, closed="neither")],
        "tol": [Interval(Real, 0, None, closed="left")],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left")],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
        "device": [StrOptions({"auto", "cpu", "cuda"}), torch.device],
        "mixed_precision": [StrOptions({"auto"}), "boolean"],
    }

    # Hooks of the subclasses: the module's perceptron, what follows settling.
    def _hidden_layer_sizes(self):
        return ()

    def _activation(self):
        return "tanh"

    def _hidden_share(self):
        """Share of the entries hidden from the encoder per step when X has holes."""
        return 0.0

    def _unit_count(self, axes, search):
        """The step that checks the count against the rule once the gates settle."""
        return LinearUnitCount(linear_errors(axes), search=search)

    def _settle_module(self, module, axes):
        """Adjust the module once ``fit`` has settled (nothing by default)."""

    # ------------------------------------------------------------------ fit

    def fit(self, X, y=None):
        """Train the gated autoencoder and discover the number of dimensions.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data.
        y : None
            Ignored; present for API consistency.

        Returns
        -------
        self : object
            The fitted estimator.
        """
        return self._keep_state_on_failure(X, incremental=False)

    def partial_fit(self, X, y=None):
        """Train one epoch on ``X``, keeping the optimiser and gate state across calls.

        For data read in chunks. The first call (unless the estimator was fitted
        before, which it then continues) sets the normalisation and the warm start
        from its chunk and builds the network, as wide as ``fit`` would make it for
        the chunk's columns. Each call then runs one epoch over its chunk with the
        same optimiser, so the gates keep closing from where the previous call left
        them. What ``fit`` does and ``partial_fit`` does not: ``max_iter``, the
        stopping rule, ``early_stopping``, the search for one unit more or fewer
        after the gates settle, and, for :class:`DAMEmbedding`, turning the
        subspace into ordered principal axes. The caller decides how many chunks
        to feed; ``verbose`` prints one line per call.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            A chunk of training data; the first chunk needs at least 2 rows.
        y : None
            Ignored.

        Returns
        -------
        self : object
            The estimator, fitted on the chunks seen so far.
        """
        return self._keep_state_on_failure(X, incremental=True)

    def _keep_state_on_failure(self, X, incremental):
        # A fit that raises must leave the estimator as it was: validate_data alone
        # would already have overwritten n_features_in_.
        previous_state = dict(self.__dict__)
        try:
            return self._fit(X, incremental)
        except BaseException:
            self.__dict__.clear()
            self.__dict__.update(previous_state)
            raise

    @_fit_context(prefer_skip_nested_validation=True)
    def _fit(self, X, incremental):
        continuing = incremental and hasattr(self, "module_")
        X = self._validate_for_training(X, reset=not continuing, ensure_min_samples=1 if continuing else 2)
        missing_values = check_observed(X, type(self).__name__, every_feature=not continuing)
        device = resolve_device(self.device)
        trainer = getattr(self, "_trainer", None) if incremental else None  # partial_fit goes on
        axes, history, X_validation, unit_count, subspace = None, [], None, None, None
        if trainer is not None:
            history = self._history()
            with_settings(trainer, missing_values=missing_values, hidden_share=self._hidden_share() if missing_values else 0.0)
        else:
            random_state = check_random_state(self.random_state)
            generator = torch.Generator().manual_seed(int(random_state.randint(np.iinfo(np.int32).max)))
            if continuing:
                module, history = self.module_, self._history()
            else:
                held_out = self._holds_rows_out(X.shape[0], missing_values) and not incremental
                X, X_validation = self._split_validation(X, random_state) if held_out else (X, None)
                axes = self._principal_axes(X, random_state, incremental, missing_values)
                if axes.basis is not None:
                    subspace = PrincipalSubspace(axes, X, X_validation)
                    axes = subspace.axes_within(axes)
                module = self._build_module(axes, generator, missing_values)
            self._record_training_axes(subspace, continuing)
            if not incremental:
                unit_count = self._unit_count(axes, search=self.n_components == "auto")
            # An integer n_components: beta follows a schedule to exactly k gates,
            # unless the unit search after training closes units to k itself.
            scheduled_pruning = self.n_components != "auto" and not getattr(unit_count, "closes_to_fixed_count", False)
            settings = self._training_settings(module, X.shape[0], device, missing_values, scheduled_pruning, incremental)
            trainer = GateTrainer(module, settings, generator)
            trainer.epochs_run = len(history)
        trainer.to(device)
        if subspace is None:
            result = self._train(trainer, X, X_validation, unit_count, device)
        else:
            result = self._train(trainer, subspace.rows, subspace.validation_rows, unit_count, device, subspace.whole_record)
            trainer.module = subspace.fold(trainer.module)
            result = subspace.whole_result(result)
        module = trainer.module.eval()
        if not incremental:
            self._settle_module(module, axes)
        if not all(bool(torch.isfinite(tensor).all()) for tensor in module.state_dict().values()):
            # The trainer rolls back non-finite epochs; this is the last line of defence.
            raise TrainingDivergedError(
                f"{type(self).__name__} ended training with non-finite weights. Check X for "
                "extreme values, or lower learning_rate_init."
            )
        covariance = None if axes is None else axes.covariance
        self.early_stopping_ = X_validation is not None
        self._store_results(
            trainer, X, [*history, *result.history], result.stop_reason, device, result.unit_errors, covariance=covariance
        )
        if incremental:
            self._trainer = trainer
        else:
            self.__dict__.pop("_trainer", None)
            self._warn_about(result, trainer, axes, widest=min(X.shape))
        return self

    def _train(self, trainer, X, X_validation, unit_count, device, shown_record=None):
        """Run the epochs: one for ``partial_fit`` (no ``unit_count``), until settled for ``fit``.

        ``shown_record`` maps each record to what the progress shows of it.
        """
        incremental = unit_count is None
        threads = training_threads(trainer.module, trainer.settings.batch_size, device)
        name = type(self).__name__
        try:
            with epoch_progress(self.verbose, None if incremental else self.max_iter, name) as progress, intra_op_threads(threads):
                on_epoch_end = progress
                if progress is not None and shown_record is not None:

                    def on_epoch_end(record):
                        progress(shown_record(record))

                X_train = as_tensor(X, device)
                if incremental:
                    record = trainer.run_epoch(X_train)
                    if on_epoch_end is not None:
                        on_epoch_end(record)
                    return TrainingResult(trainer.last_good_state, [record], STOP_PARTIAL_FIT, unit_errors={0: 1.0})
                result = train_until_settled(
                    trainer,
                    X_train,
                    X_validation=None if X_validation is None else as_tensor(X_validation, device),
                    max_epochs=self.max_iter,
                    tol=self.tol,
                    n_iter_no_change=self.n_iter_no_change,
                    after_settling=unit_count,
                    on_epoch_end=on_epoch_end,
                )
                if result.stop_reason != STOP_INTERRUPTED:
                    result.unit_errors, result.count_unchecked = unit_count.errors, unit_count.count_unchecked
                else:
                    result.unit_errors = {0: 1.0}
                return result
        except TrainingDivergedError as error:
            raise TrainingDivergedError(f"{name}: {error} Check X for extreme values, or lower learning_rate_init.") from error
        except BaseException:
            # An interrupted epoch must not leave half-updated weights behind.
            trainer.module.load_state_dict(trainer.last_good_state)
            raise
        finally:
            trainer.to(torch.device("cpu"))

    def _validate_for_training(self, X, reset, ensure_min_samples=2):
        """Dense float X in float32's range, or a clear error."""
        if sparse.issparse(X):
            raise TypeError(
                f"{type(self).__name__} does not fit on sparse input: training holds X as a "
                "dense float32 array. Call X.toarray() if it fits in memory, or reduce it first "
                "with sklearn.decomposition.TruncatedSVD. (transform accepts sparse input and "
                "densifies it batch by batch.)"
            )
        X = validate_data(
            self, X, dtype=[np.float64, np.float32], reset=reset, ensure_min_samples=ensure_min_samples,
            ensure_all_finite="allow-nan",
        )  # fmt: skip
        check_float32_range(X, type(self).__name__)
        return X

    def _holds_rows_out(self, n_samples, missing_values):
        """Whether ``early_stopping`` holds a validation share out of ``n_samples`` rows.

        ``"auto"`` does not where entries are missing: training then hides entries
        from the encoder and scores their prediction, while a held-out row's error
        scores the reconstruction of what the encoder saw, which picks epochs and
        counts that complete holes worse (digits at 30 % missing: RMSE 2.83 held
        out, 2.36 not, ``benchmarks/missing.py``).
        """
        if self.early_stopping == "auto":
            return not missing_values and round(self.validation_fraction * n_samples) >= AUTO_MIN_VALIDATION_ROWS
        return bool(self.early_stopping)

    def _split_validation(self, X, random_state):
        """Training and held-out rows for ``early_stopping``, each in X's order."""
        permuted = random_state.permutation(X.shape[0])
        n_validation = max(1, int(round(self.validation_fraction * X.shape[0])))
        if n_validation >= X.shape[0]:
            raise ValueError(
                f"validation_fraction={self.validation_fraction} leaves no rows for training "
                f"out of {X.shape[0]}; lower it or pass more rows."
            )
        return X[np.sort(permuted[n_validation:])], X[np.sort(permuted[:n_validation])]

    def _history(self):
        """The fitted per-epoch curves, to extend them in partial_fit."""
        curves = zip(self.loss_curve_, self.reconstruction_error_curve_, self.n_components_curve_)
        return [_CurvePoint(*point) for point in curves]

    @property
    def _min_open(self):
        return self.min_components if self.n_components == "auto" else self.n_components

    def _principal_axes(self, X, random_state, incremental, missing_values=False):
        """The normalisation and the principal axes behind the warm start.

        With ``missing_values`` the statistics hold on the observed entries and the
        axes come from probabilistic PCA's EM on them (:func:`incomplete_principal_axes`).
        Where the network trains through the leading axes (:meth:`_training_axes`),
        ``basis`` holds them.
        """
        axes = bottleneck_axes(
            X, random_state, max_components=self.max_components, min_open=self._min_open, alpha=self.alpha,
            incremental=incremental, min_open_name="min_components" if self.n_components == "auto" else "n_components",
            missing_values=missing_values, basis_width=None if incremental else self._training_axes,
        )  # fmt: skip
        check_spread(axes.mean, axes.spread, type(self).__name__)
        return axes

    def _training_axes(self, n_features, bottleneck_width):
        """How many leading principal axes the network trains through, or None: it reads the features."""
        return None

    def _record_training_axes(self, subspace, continuing):
        """Keep what the fit says of the axes the network trained through (nothing by default)."""

    def _build_module(self, axes, generator, missing_values=False):
        """The network on ``axes``'s inputs, its normalisation and its SVD warm start, on the CPU.

        With ``missing_values`` the encoder's perceptron also reads which entries are missing.
        """
        # Construction draws from the global RNG; fork_rng puts it back, and
        # reset_parameters then draws from our own generator.
        with torch.random.fork_rng(devices=[]):
            module = GatedAutoencoder(
                len(axes.mean), axes.directions.shape[0], self._hidden_layer_sizes(), self._activation(),
                missing_indicator=missing_values,
            )  # fmt: skip
        module.reset_parameters(generator)
        # Constant data has no spread to divide by; any scale reconstructs it.
        module.set_normalization(axes.mean, axes.spread if axes.spread > 0 else 1.0)
        module.set_linear_path(axes.directions)
        return module

    def _training_settings(
        self, module, n_samples, device, missing_values=False, scheduled_pruning=False, incremental=False
    ):  # fmt: skip
        if self._min_open > module.bottleneck_width:
            raise ValueError(
                f"n_components={self._min_open} is larger than the fitted bottleneck's "
                f"{module.bottleneck_width} units; fit again instead of continuing with partial_fit."
            )
        if self.batch_size == "auto":
            low, high = AUTO_BATCH_SIZE_BOUNDS
            batch_size = int(min(n_samples, np.clip(-(-n_samples // AUTO_STEPS_PER_EPOCH), low, high)))
        else:
            batch_size = min(self.batch_size, n_samples)
        return TrainingSettings(
            alpha=self.alpha,
            batch_size=batch_size,
            learning_rate=self.learning_rate_init,
            gate_learning_rate=GATE_LEARNING_RATE,
            min_open=self._min_open,
            scheduled_pruning=scheduled_pruning,
            matmul_dtype=training_matmul_dtype(self.mixed_precision, module, batch_size, device),
            missing_values=missing_values,
            hidden_share=self._hidden_share() if missing_values else 0.0,
            # partial_fit's epoch is its whole chunk, as documented.
            epoch_steps=AUTO_STEPS_PER_EPOCH if self.batch_size == "auto" and not incremental else None,
        )

    def _store_results(self, trainer, X_fit, history, stop_reason, device, unit_errors, covariance=None):
        """Copy what training used and produced into fitted attributes.

        ``covariance`` is the covariance the warm start fitted to ``X_fit``'s
        observed entries, when it had missing ones and ``fit`` built the network.
        """
        module = trainer.module
        gate_values = module.gate.gate_values().detach().numpy().astype(np.float64)
        # Most preferred unit first: it holds the strongest direction.
        self.open_units_ = np.flatnonzero(gate_values > 0)[::-1].copy()
        self.module_ = module
        self.gate_values_ = gate_values
        self.n_components_ = int(self.open_units_.size)
        self.max_components_ = module.bottleneck_width
        self.batch_size_ = trainer.settings.batch_size
        self.device_ = device
        self.mixed_precision_ = trainer.settings.matmul_dtype == "bfloat16"
        self.loss_curve_ = [record.loss for record in history]
        self.reconstruction_error_curve_ = [record.reconstruction_error for record in history]
        self.n_components_curve_ = [record.n_open for record in history]
        if self.early_stopping_ and stop_reason != STOP_PARTIAL_FIT:
            self.validation_error_curve_ = [record.validation_error for record in history]
        else:
            self.__dict__.pop("validation_error_curve_", None)
        self.n_iter_ = len(history)
        self.stop_reason_ = stop_reason
        # Measured only by fit: partial_fit leaves every count but none unmeasured.
        self.unexplained_variance_ = np.full(module.bottleneck_width + 1, np.nan)
        for count, error in unit_errors.items():
            if np.isfinite(error):  # a diverged adaptation measured nothing
                self.unexplained_variance_[count] = error

    def _warn_about(self, result, trainer, axes, widest):
        name, width, min_open = type(self).__name__, self.max_components_, self._min_open
        stop_reason = result.stop_reason
        if stop_reason == STOP_MAX_ITER:
            warnings.warn(
                f"{name} reached max_iter={self.max_iter} before the open gates and the loss "
                "settled; raise max_iter or tol.",
                ConvergenceWarning,
            )
        elif stop_reason == STOP_INTERRUPTED:
            kept = "best validated" if self.early_stopping_ else "last completed"
            warnings.warn(
                f"Training of {name} was interrupted after {self.n_iter_} epochs; the "
                f"estimator keeps the {kept} epoch.",
                ConvergenceWarning,
            )
        if trainer.n_learning_rate_cuts:
            warnings.warn(
                f"The training loss of {name} became non-finite; training rolled back and "
                f"halved the learning rate {trainer.n_learning_rate_cuts} time(s), to "
                f"{trainer.learning_rates[0]:.3g}. Lower learning_rate_init, or rescale X.",
                ConvergenceWarning,
            )
        if self.n_components != "auto":
            if result.count_unchecked:
                warnings.warn(
                    f"{name} spent its max_iter={self.max_iter} epochs before its network adapted "
                    f"to n_components={self.n_components}: units closed, or the count stands, "
                    "without adapting. Raise max_iter.",
                    ConvergenceWarning,
                )
            return
        if result.count_unchecked:
            warnings.warn(
                f"{name} spent its max_iter={self.max_iter} epochs before its count was "
                f"checked against the rule: n_components_={self.n_components_} is where the "
                "check stopped, not necessarily where alpha puts it. Raise max_iter.",
                ConvergenceWarning,
            )
        # The floor held back a closure only if the last unit it kept is worth less
        # than alpha; when that unit explains more, the count is the rule's answer.
        if self.n_components_ == min_open < width and axes.variance_shares[min_open - 1] <= self.alpha:
            warnings.warn(
                f"alpha={self.alpha} closed every gate it could: only min_components="
                f"{min_open} remain open, and the last of them explains "
                f"{axes.variance_shares[min_open - 1]:.3g} of the variance, less than alpha; "
                "lower alpha to keep more dimensions.",
                UserWarning,
            )
        if self.n_components_ == width:
            if width < widest:
                advice = "the data may need more dimensions than the bottleneck has. Raise max_components or alpha."
            else:
                advice = f"every one of X's {width} directions explains more than alpha={self.alpha}. Raise alpha for fewer."
            warnings.warn(f"All {width} gates stayed open: {advice}", UserWarning)

    @property
    def _n_features_out(self):
        return self.n_components_

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        tags.input_tags.allow_nan = True
        return tags
