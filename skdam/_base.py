"""The scikit-learn face shared by both estimators.

``fit`` is thin: validate, resolve the ``"auto"`` values, build the module, hand it to
:func:`skdam._training.train_gated_autoencoder`, then copy the results into
attributes ending in ``_``. ``transform``, ``inverse_transform``, ``score`` and the
feature names live here once.
"""

import copy
import warnings
from collections import namedtuple
from contextlib import contextmanager
from numbers import Integral, Real

import numpy as np
import scipy.sparse as sparse
import torch
from sklearn.base import BaseEstimator, ClassNamePrefixFeaturesOutMixin, TransformerMixin, _fit_context
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.extmath import randomized_svd
from sklearn.utils.validation import check_array, check_is_fitted, validate_data

from ._progress import epoch_progress
from ._training import STOP_INTERRUPTED, STOP_MAX_ITER, STOP_PARTIAL_FIT, GateTrainer, TrainingDivergedError, train_gated_autoencoder
from .nn import GatedAutoencoder

#: Widest default bottleneck; a user who expects more dimensions sets max_components.
DEFAULT_MAX_COMPONENTS = 64
#: Adam step of the gate's beta. One unit spacing is 5 / width, so this closes
#: about one gate per step at width 64 and lets the network keep pace.
GATE_LEARNING_RATE = 0.02
#: Rows per batch in transform and inverse_transform; bounds their memory.
TRANSFORM_BATCH_ROWS = 8192
#: Steps per epoch that batch_size="auto" aims at, and its bounds. The upper bound
#: is high on purpose: with 50 steps per epoch whatever the number of rows, the gates
#: see the same number of steps before the stopping rule looks, so the dimension
#: found does not depend on N. With batches capped at 1024, a million rows gave
#: ~1000 steps per epoch, and the slow creep of beta over thousands of steps closed
#: a unit explaining 5 % of the variance (9 dimensions found instead of 10).
AUTO_STEPS_PER_EPOCH = 50
AUTO_BATCH_SIZE_BOUNDS = (32, 65536)
#: Multiply-adds per training step (batch rows x parameters) below which training on
#: the CPU runs on one intra-op thread. A small step is a few dozen tiny kernels:
#: splitting each across threads costs more than it saves, and on a busy machine every
#: kernel waits for a descheduled thread (measured 20 to 100 times slower with 2
#: threads than with 1 on a loaded 2-core machine; see docs/benchmarks.md).
SINGLE_THREAD_MAX_WORK = 2**26
#: Multiply-adds per training step from which mixed_precision="auto" computes the
#: matrix products in bfloat16. Below it the casts cost more than the faster
#: products save: with AMX (speed.py's precision section, 1 thread) a step was 1.25x
#: to 1.67x faster from 2**26 up, and 1.1x to 1.6x slower from 2**16 to 2**22.5.
MIXED_PRECISION_MIN_WORK = 2**26
#: The network computes in float32 (largest value 3.4e38). Inputs up to this
#: magnitude leave room for centring and reconstruction; larger ones are refused.
LARGEST_INPUT_MAGNITUDE = 1e36
#: Smallest spread (root mean feature variance) fit accepts. The decoder divides by
#: the spread, and embeddings, in the units of X, must stay well above float32's
#: smallest normal number (1.2e-38) to keep their precision.
SMALLEST_INPUT_SPREAD = 1e-33
#: float32 resolves about 6e-8 of a value: past this ratio of mean to spread, the
#: detail of the data around its mean is lost in the network's arithmetic.
LARGEST_MEAN_TO_SPREAD = 1e6
#: Dtypes transform reads as they are and converts batch by batch, so that an
#: integer or boolean X is never copied whole to float64.
BATCH_CONVERTED_DTYPES = [
    np.float64, np.float32, np.float16, np.bool_,
    np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32, np.uint64,
]  # fmt: skip



#: What the estimator resolved about pruning before training.
_PruningPlan = namedtuple("_PruningPlan", ["max_components", "min_components", "alpha"])
#: The statistics behind the warm start: normalisation and principal axes.
_PrincipalAxes = namedtuple("_PrincipalAxes", ["mean", "spread", "directions", "variance_shares"])
#: One epoch of the fitted curves, enough to extend them in partial_fit.
_CurvePoint = namedtuple("_CurvePoint", ["loss", "reconstruction_error", "n_open"])


def _move_trainer(trainer, device):
    """Move the module and the optimiser's moments together (partial_fit on a GPU)."""
    trainer.module.to(device)
    for state in trainer.optimizer.state.values():
        for key, value in state.items():
            if torch.is_tensor(value) and key != "step":
                state[key] = value.to(device)


def _resolve_device(device):
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(device)
    if device.type == "cuda" and not torch.cuda.is_available():
        # torch itself would fail later with an AssertionError.
        raise ValueError(f"device={str(device)!r} was requested but CUDA is not available; use device='cpu' or 'auto'.")
    return device


def _step_work(module, batch_size):
    """Multiply-adds of one training step, up to a constant: batch rows x parameters."""
    return batch_size * sum(parameter.numel() for parameter in module.parameters())


def _training_threads(module, batch_size, device):
    """Intra-op threads for training: 1 for small steps on the CPU, else torch's own."""
    if device.type != "cpu":
        return None
    return 1 if _step_work(module, batch_size) < SINGLE_THREAD_MAX_WORK else None


def _multiplies_bfloat16_natively(device):
    """Whether ``device`` has bfloat16 matrix units: AMX on a CPU, Ampere+ on CUDA."""
    if device.type == "cuda":
        return torch.cuda.get_device_capability(device)[0] >= 8
    # Older torch has no capability query; float32 is then the safe answer.
    capabilities = getattr(torch.cpu, "get_capabilities", None)
    return device.type == "cpu" and capabilities is not None and bool(capabilities().get("amx_bf16", False))


def _training_matmul_dtype(mixed_precision, module, batch_size, device):
    """``"bfloat16"`` or ``"float32"``: the dtype of training's matrix products."""
    if mixed_precision == "auto":
        large = _step_work(module, batch_size) >= MIXED_PRECISION_MIN_WORK
        return "bfloat16" if large and _multiplies_bfloat16_natively(device) else "float32"
    return "bfloat16" if mixed_precision else "float32"


@contextmanager
def _intra_op_threads(n_threads):
    """Run the block with ``n_threads`` torch threads (None: unchanged), then restore."""
    previous = torch.get_num_threads()
    if n_threads is None or n_threads >= previous:
        yield
        return
    torch.set_num_threads(n_threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def _float32_tensor(array, device):
    """``array`` as a float32 tensor on ``device``, sharing memory when it can."""
    if not (array.dtype == np.float32 and array.flags.c_contiguous and array.flags.writeable):
        # A copy: float32 for speed, and read-only (memory-mapped) input must not
        # reach torch.from_numpy, which needs writeable memory.
        # Values beyond float32 become inf; the callers refuse them or the non-finite
        # output they give, with a clearer message than NumPy's overflow warning.
        with np.errstate(over="ignore"):
            array = np.array(array, dtype=np.float32, order="C", copy=True)
    return torch.from_numpy(array).to(device)


def _check_float32_range(X, estimator_name):
    """Refuse values too large for the float32 network, which would overflow to inf."""
    if X.dtype.kind != "f" or X.size == 0:
        return  # integers and booleans are far inside float32's range
    # max and min make no temporary copy of X, as np.abs would.
    largest = max(abs(float(X.max())), abs(float(X.min())))
    if largest > LARGEST_INPUT_MAGNITUDE:
        raise ValueError(
            f"X has values of magnitude up to {largest:.3g}, beyond the {LARGEST_INPUT_MAGNITUDE:.0e} "
            f"that the float32 network of {estimator_name} handles. Rescale X, for example with "
            "sklearn.preprocessing.StandardScaler."
        )


def _dense_batches(X):
    """Slices of ``TRANSFORM_BATCH_ROWS`` rows of ``X``, sparse ones densified."""
    for start in range(0, X.shape[0], TRANSFORM_BATCH_ROWS):
        rows = slice(start, start + TRANSFORM_BATCH_ROWS)
        batch = X[rows]
        yield rows, batch.toarray() if sparse.issparse(batch) else batch


class _BaseDAM(ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator):
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

    #: Hidden widths of the module; overridden by DAMAutoencoder.
    def _hidden_layer_sizes(self):
        return ()

    def _activation(self):
        return "elu"

    def _warmup_epochs(self):
        return 0

    def _probe_epochs(self):
        """Epochs a probe for one unit more or fewer may take (see probe_unit_count); 0: none."""
        return 0

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
        # A fit that raises must leave the estimator as it was: validate_data alone
        # would already have overwritten n_features_in_.
        previous_state = dict(self.__dict__)
        try:
            return self._fit(X)
        except BaseException:
            self.__dict__.clear()
            self.__dict__.update(previous_state)
            raise

    @_fit_context(prefer_skip_nested_validation=True)
    def _fit(self, X):
        X = self._validate_for_training(X, reset=True)
        self.__dict__.pop("_trainer", None)  # a new fit forgets any partial_fit state
        random_state = check_random_state(self.random_state)
        generator = torch.Generator().manual_seed(int(random_state.randint(np.iinfo(np.int32).max)))
        X_fit, validation_rows = X, None  # no copy unless rows are held out
        if self.early_stopping:
            permuted = random_state.permutation(X.shape[0])
            n_validation = max(1, int(round(self.validation_fraction * X.shape[0])))
            if n_validation >= X.shape[0]:
                raise ValueError(
                    f"validation_fraction={self.validation_fraction} leaves no rows for training "
                    f"out of {X.shape[0]}; lower it or pass more rows."
                )
            X_fit, validation_rows = X[np.sort(permuted[n_validation:])], np.sort(permuted[:n_validation])
        module, pruning, axes = self._build_module(X_fit, random_state, generator)
        device = _resolve_device(self.device)
        settings = self._trainer_settings(module, X_fit.shape[0], pruning, generator, device)
        threads = _training_threads(module, settings["batch_size"], device)
        with epoch_progress(self.verbose, self.max_iter, type(self).__name__) as on_epoch_end, _intra_op_threads(threads):
            result = train_gated_autoencoder(
                module.to(device),
                _float32_tensor(X_fit, device),
                X_validation=None if validation_rows is None else _float32_tensor(X[validation_rows], device),
                max_epochs=self.max_iter,
                tol=self.tol,
                n_iter_no_change=self.n_iter_no_change,
                probe_epochs=self._probe_epochs() if self.n_components == "auto" else 0,
                # What the best linear projection leaves unexplained with k units, k >= 1.
                linear_errors=1.0 - np.cumsum(axes.variance_shares),
                on_epoch_end=on_epoch_end,
                **settings,
            )
        module.cpu().eval()
        self._pruning = pruning
        self.mixed_precision_ = settings["matmul_dtype"] == "bfloat16"
        self._finish_fit(module, X_fit, result.history, result.stop_reason, axes.directions)
        if not all(bool(torch.isfinite(tensor).all()) for tensor in module.state_dict().values()):
            # The trainer rolls back non-finite epochs; this is the last line of defence,
            # and fit's restore undoes the attributes just set.
            raise TrainingDivergedError(
                f"{type(self).__name__} ended training with non-finite weights. Check X for "
                "extreme values, or lower learning_rate_init."
            )
        self._warn_about(result.stop_reason, result.n_learning_rate_cuts, pruning, widest=min(X_fit.shape))
        return self

    def _check_spread(self, mean, spread):
        """Refuse data too narrow for float32; warn when its mean dwarfs its spread."""
        if 0 < spread < SMALLEST_INPUT_SPREAD:
            raise ValueError(
                f"X varies by only {spread:.3g} (root mean feature variance), below the "
                f"{SMALLEST_INPUT_SPREAD:.0e} that the float32 network of {type(self).__name__} "
                "resolves. Rescale X, for example with sklearn.preprocessing.StandardScaler."
            )
        largest_mean = float(np.max(np.abs(mean)))
        if spread > 0 and largest_mean > LARGEST_MEAN_TO_SPREAD * spread:
            warnings.warn(
                f"X's mean is up to {largest_mean / spread:.3g} times its spread: the float32 "
                f"network of {type(self).__name__} cannot resolve the data around its mean. "
                "Centre X first, for example with sklearn.preprocessing.StandardScaler.",
                UserWarning,
            )

    def _validate_for_training(self, X, reset, ensure_min_samples=2):
        """Dense float X in float32's range, or a clear error."""
        if sparse.issparse(X):
            raise TypeError(
                f"{type(self).__name__} does not fit on sparse input: training holds X as a "
                "dense float32 array. Call X.toarray() if it fits in memory, or reduce it first "
                "with sklearn.decomposition.TruncatedSVD. (transform accepts sparse input and "
                "densifies it batch by batch.)"
            )
        X = validate_data(self, X, dtype=[np.float64, np.float32], reset=reset, ensure_min_samples=ensure_min_samples)
        _check_float32_range(X, type(self).__name__)
        return X

    def partial_fit(self, X, y=None):
        """Train one epoch on ``X``, keeping the optimiser and gate state across calls.

        For data read in chunks. The first call sets the normalisation and the
        warm start from its chunk and builds the network; each call then runs one
        epoch over its chunk with the same optimiser, so the gates keep closing from
        where the previous call left them. ``max_iter`` and the stopping rule do not
        apply: the caller decides how many chunks to feed.

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
        previous_state = dict(self.__dict__)
        try:
            return self._partial_fit(X)
        except BaseException:
            self.__dict__.clear()
            self.__dict__.update(previous_state)
            raise

    def _partial_fit(self, X):
        device = _resolve_device(self.device)
        first_call = not hasattr(self, "_trainer")
        if first_call:
            self._validate_params()
            # Continue from a previous fit, or start afresh.
            fitted = hasattr(self, "module_")
            X = self._validate_for_training(X, reset=not fitted, ensure_min_samples=1 if fitted else 2)
            random_state = check_random_state(self.random_state)
            generator = torch.Generator().manual_seed(int(random_state.randint(np.iinfo(np.int32).max)))
            if fitted:
                module, history, pruning = self.module_, self._history(), self._pruning
            else:
                module, pruning, _ = self._build_module(X, random_state, generator)
                history = []
            settings = self._trainer_settings(module, X.shape[0], pruning, generator, device)
            if fitted:
                settings["warmup_epochs"] = 0
            trainer = GateTrainer(module, **settings)
            trainer.epochs_run = len(history)
        else:
            X = self._validate_for_training(X, reset=False, ensure_min_samples=1)
            trainer, history, pruning = self._trainer, self._history(), self._pruning
        _move_trainer(trainer, device)
        try:
            with _intra_op_threads(_training_threads(trainer.module, trainer.batch_size, device)):
                record = trainer.run_epoch(_float32_tensor(X, device))
        except BaseException:
            # An interrupted epoch must not leave half-updated weights behind.
            trainer.module.load_state_dict(trainer.last_good_state)
            raise
        finally:
            _move_trainer(trainer, torch.device("cpu"))
        self._trainer, self._pruning = trainer, pruning
        self.mixed_precision_ = trainer.matmul_dtype == "bfloat16"
        self._finish_fit(trainer.module, X, [*history, record], STOP_PARTIAL_FIT, None)
        return self

    def _history(self):
        """The per-epoch curves as records, to extend them in partial_fit."""
        return [
            _CurvePoint(loss, error, n_open)
            for loss, error, n_open in zip(self.loss_curve_, self.reconstruction_error_curve_, self.n_components_curve_)
        ]

    def _pruning_plan(self, n_samples, n_features):
        """Resolve the bottleneck width, the gates to keep open and the penalty."""
        max_components = self._resolve_max_components(n_samples, n_features)
        min_components = self.min_components if self.n_components == "auto" else self.n_components
        if min_components > max_components:
            name = "min_components" if self.n_components == "auto" else "n_components"
            raise ValueError(
                f"{name}={min_components} is larger than max_components={max_components} "
                f"(at most min(n_samples, n_features) = {min(n_samples, n_features)})."
            )
        return _PruningPlan(max_components, min_components, self.alpha)

    def _build_module(self, X_fit, random_state, generator):
        """The network, its normalisation and its SVD warm start, on the CPU."""
        # The bottleneck is bounded by the rows that train it, not by all of X.
        pruning = self._pruning_plan(*X_fit.shape)
        axes = _principal_directions(X_fit, pruning.max_components, random_state)
        mean, spread, directions = axes.mean, axes.spread, axes.directions
        self._check_spread(mean, spread)
        # Construction draws from the global RNG; fork_rng puts it back, and
        # reset_parameters then draws from our own generator. (Building on the meta
        # device would avoid the draws but costs ~1.2 s on a process's first fit,
        # while PyTorch imports its meta kernels.)
        with torch.random.fork_rng(devices=[]):
            module = GatedAutoencoder(
                X_fit.shape[1], pruning.max_components, self._hidden_layer_sizes(), self._activation()
            )
        module.reset_parameters(generator)
        # Constant data has no spread to divide by; any scale reconstructs it.
        module.set_normalization(mean, spread if spread > 0 else 1.0)
        module.set_linear_path(directions)
        return module, pruning, axes

    def _trainer_settings(self, module, n_samples, pruning, generator, device):
        batch_size = self._resolve_batch_size(n_samples)
        return dict(
            alpha=pruning.alpha,
            batch_size=batch_size,
            learning_rate=self.learning_rate_init,
            gate_learning_rate=GATE_LEARNING_RATE,
            weight_decay=0.0,
            warmup_epochs=self._warmup_epochs(),
            min_open=pruning.min_components,
            generator=generator,
            # An integer n_components: beta follows a schedule to exactly k gates.
            scheduled_pruning=self.n_components != "auto",
            matmul_dtype=_training_matmul_dtype(self.mixed_precision, module, batch_size, device),
        )

    def _resolve_max_components(self, n_samples, n_features):
        limit = min(n_samples, n_features)
        if self.max_components is not None:
            return min(self.max_components, limit)
        requested = self.n_components if self.n_components != "auto" else 1
        return min(max(DEFAULT_MAX_COMPONENTS, requested, self.min_components), limit)

    def _resolve_batch_size(self, n_samples):
        if self.batch_size != "auto":
            return min(self.batch_size, n_samples)
        low, high = AUTO_BATCH_SIZE_BOUNDS
        return int(min(n_samples, np.clip(-(-n_samples // AUTO_STEPS_PER_EPOCH), low, high)))

    def _finish_fit(self, module, X_fit, history, stop_reason, principal_directions):
        """Copy the training results into fitted attributes."""
        gate_values = module.gate.gate_values().detach().numpy().astype(np.float64)
        # Most preferred unit first: it holds the strongest direction.
        self.open_units_ = np.flatnonzero(gate_values > 0)[::-1].copy()
        self.module_ = module
        self.gate_values_ = gate_values
        self.n_components_ = int(self.open_units_.size)
        self.max_components_ = module.bottleneck_width
        self.batch_size_ = self._resolve_batch_size(X_fit.shape[0])
        self.device_ = _resolve_device(self.device)
        self.loss_curve_ = [record.loss for record in history]
        self.reconstruction_error_curve_ = [record.reconstruction_error for record in history]
        self.n_components_curve_ = [record.n_open for record in history]
        if self.early_stopping and stop_reason != STOP_PARTIAL_FIT:
            self.validation_error_curve_ = [record.validation_error for record in history]
        self.n_iter_ = len(history)
        self.stop_reason_ = stop_reason

    def _warn_about(self, stop_reason, n_learning_rate_cuts, pruning, widest):
        min_components, max_components = pruning.min_components, pruning.max_components
        if stop_reason == STOP_MAX_ITER:
            warnings.warn(
                f"{type(self).__name__} reached max_iter={self.max_iter} before the open "
                "gates and the loss settled; raise max_iter or tol.",
                ConvergenceWarning,
            )
        elif stop_reason == STOP_INTERRUPTED:
            kept = "best validated" if self.early_stopping else "last completed"
            warnings.warn(
                f"Training of {type(self).__name__} was interrupted after {self.n_iter_} "
                f"epochs; the estimator keeps the {kept} epoch.",
                ConvergenceWarning,
            )
        if n_learning_rate_cuts:
            warnings.warn(
                f"The training loss of {type(self).__name__} became non-finite; training "
                f"rolled back and halved the learning rate {n_learning_rate_cuts} "
                f"time(s), to {self.learning_rate_init / 2**n_learning_rate_cuts:.3g}. "
                "Lower learning_rate_init, or rescale X.",
                ConvergenceWarning,
            )
        if self.n_components == "auto" and self.n_components_ == min_components and max_components > min_components:
            warnings.warn(
                f"alpha={self.alpha} closed every gate it could: only min_components="
                f"{min_components} remain open. A unit stays open while it explains more "
                "than alpha of the variance; lower alpha to keep more dimensions.",
                UserWarning,
            )
        # Only worth saying when a wider bottleneck was possible.
        if self.n_components == "auto" and self.n_components_ == max_components < widest:
            warnings.warn(
                f"All {max_components} gates stayed open: the data may need more "
                "dimensions than the bottleneck has. Raise max_components or alpha.",
                UserWarning,
            )

    # ------------------------------------------------------------ transform

    def _validate_for_batches(self, X, **check_params):
        """Check X for the batched methods without copying it whole.

        Float, integer and boolean arrays and sparse matrices pass as they are and are
        converted to float32 batch by batch, so memory stays bounded by the output.
        """
        X = validate_data(self, X, dtype=BATCH_CONVERTED_DTYPES, accept_sparse="csr", reset=False, **check_params)
        _check_float32_range(X, type(self).__name__)
        return X

    def _batches(self, X):
        """Slices of ``TRANSFORM_BATCH_ROWS`` rows, as dense arrays and float32 tensors."""
        for rows, batch in _dense_batches(X):
            yield rows, batch, _float32_tensor(batch, self.device_)

    def _module_on_device(self):
        # module_ stays on the CPU (pickle, clone); a copy is moved for the work.
        return self.module_ if self.device_.type == "cpu" else self.module_.to(self.device_)

    def _finite(self, tensor, method):
        """``tensor`` as a NumPy array, refused if float32 overflowed on the way."""
        array = tensor.cpu().numpy()
        if not np.isfinite(array).all():
            raise ValueError(
                f"{type(self).__name__}.{method} overflowed float32 and produced non-finite "
                "values: X lies too far outside the range of the training data."
            )
        return array

    @staticmethod
    def _output_dtype(X):
        # preserves_dtype: float64 and float32 stay; anything else comes out as float64.
        return X.dtype if X.dtype in (np.float64, np.float32) else np.float64

    @torch.no_grad()
    def transform(self, X):
        """Embed ``X`` with the open units of the bottleneck.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Data in the units of the training data. Sparse input is densified batch
            by batch.

        Returns
        -------
        X_new : ndarray of shape (n_samples, n_components)
            The gated code of the open units, most preferred unit first; same float
            dtype as ``X`` (float64 for any other dtype).
        """
        check_is_fitted(self)
        X = self._validate_for_batches(X)
        module = self._module_on_device()
        open_units = torch.as_tensor(self.open_units_, device=self.device_)
        embedding = np.empty((X.shape[0], self.n_components_), dtype=self._output_dtype(X))
        for rows, _, batch in self._batches(X):
            embedding[rows] = self._finite(module.encode(batch)[:, open_units], "transform")
        return embedding

    @torch.no_grad()
    def inverse_transform(self, X):
        """Map an embedding back to the space of the data.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_components)
            An embedding, as returned by :meth:`transform`.

        Returns
        -------
        X_original : ndarray of shape (n_samples, n_features)
            The decoder's reconstruction; same float dtype as ``X`` (float64 for any
            other dtype).
        """
        check_is_fitted(self)
        X = check_array(X, dtype=BATCH_CONVERTED_DTYPES, accept_sparse="csr", input_name="X")
        if X.shape[1] != self.n_components_:
            raise ValueError(
                f"X has {X.shape[1]} features, but {type(self).__name__} is expecting "
                f"{self.n_components_} features (its n_components_) as input to inverse_transform."
            )
        # No magnitude limit here: DAMEmbedding's codes are projections in the units
        # of X and may exceed its largest value by up to sqrt(n_features). Codes
        # beyond float32 overflow, and _finite reports it.
        module = self._module_on_device()
        open_units = torch.as_tensor(self.open_units_, device=self.device_)
        reconstruction = np.empty((X.shape[0], self.n_features_in_), dtype=self._output_dtype(X))
        for rows, _, batch in self._batches(X):
            code = torch.zeros(batch.shape[0], self.max_components_, device=self.device_)
            code[:, open_units] = batch
            reconstruction[rows] = self._finite(module.decode(code), "inverse_transform")
        return reconstruction

    @torch.no_grad()
    def _squared_errors(self, X):
        """Squared reconstruction error of each row of validated ``X``, batch by batch.

        Closed gates pass exactly zero, so decoding the full code equals
        ``inverse_transform(transform(X))``. A score is a metric: it is computed in
        float64, so a row's score does not depend on the rows batched with it, as
        float32 matrix products of different shapes would make it (by ~1e-6).
        """
        module = copy.deepcopy(self.module_).double().to(self.device_)
        errors = np.empty(X.shape[0], dtype=np.float64)
        for rows, batch in _dense_batches(X):
            tensor = torch.from_numpy(np.asarray(batch, dtype=np.float64)).to(self.device_)
            reconstruction = self._finite(module.decode(module.encode(tensor)), "score")
            errors[rows] = np.square(batch - reconstruction, dtype=np.float64).sum(axis=1)
        return errors

    def score_samples(self, X):
        """Compute the negative squared reconstruction error of each row.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Data in the units of the training data.

        Returns
        -------
        scores : ndarray of shape (n_samples,)
            Minus the sum of squared differences between each row and its
            reconstruction; higher is better, 0 is perfect.
        """
        check_is_fitted(self)
        return -self._squared_errors(self._validate_for_batches(X))

    def score(self, X, y=None):
        """Reconstruction R^2, ``1 - SSE / SST``, over all entries of ``X``.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            At least two rows: R^2 compares with the column means of ``X``.
        y : None
            Ignored.

        Returns
        -------
        score : float
            1 is a perfect reconstruction, 0 is no better than ``X``'s column means.
            For constant ``X`` it is 1 when the reconstruction is exact and 0
            otherwise, as ``sklearn.metrics.r2_score`` does.
        """
        check_is_fitted(self)
        X = self._validate_for_batches(X, ensure_min_samples=2)
        residual = self._squared_errors(X).sum()
        mean = np.asarray(X.mean(axis=0, dtype=np.float64)).ravel()
        total = sum(np.square(batch - mean).sum() for _, batch in _dense_batches(X))
        if total == 0:
            return 1.0 if residual == 0 else 0.0
        return float(1 - residual / total)

    # ---------------------------------------------------------- persistence

    def __getstate__(self):
        # Only arrays and plain values: skops can load it without trusting torch,
        # and a model trained on a GPU loads on a machine without one.
        state = dict(super().__getstate__())
        if "module_" in state:
            state["module_"] = _module_to_arrays(state["module_"])
        if "_trainer" in state:
            state["_trainer"] = _trainer_to_arrays(state["_trainer"])
        if "_pruning" in state:
            state["_pruning"] = dict(state["_pruning"]._asdict())
        if "device_" in state:
            state["device_"] = str(state["device_"])
        return state

    def __setstate__(self, state):
        state = dict(state)
        if isinstance(state.get("module_"), dict):
            state["module_"] = _module_from_arrays(state["module_"])
        if isinstance(state.get("_trainer"), dict):
            state["_trainer"] = _trainer_from_arrays(state["_trainer"], state["module_"])
        if isinstance(state.get("_pruning"), dict):
            state["_pruning"] = _PruningPlan(**state["_pruning"])
        if isinstance(state.get("device_"), str):
            device = torch.device(state["device_"])
            state["device_"] = device if device.type != "cuda" or torch.cuda.is_available() else torch.device("cpu")
        super().__setstate__(state)

    @property
    def _n_features_out(self):
        return self.n_components_

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags


#: Entries per block when statistics of X are accumulated in float64: a sixteenth
#: of X, between 1 MiB and 8 MiB of float64, so their extra memory stays a small
#: share of the input whatever its shape. The upper bound pays on wide data: with
#: blocks of 1 MiB (167 rows, too thin for a fast matrix product) the statistics of
#: Fashion-MNIST took 1.08 s instead of 0.77 s (speed.py --sections internals).
STATISTICS_CHUNK_ENTRIES = (2**17, 2**20)
STATISTICS_CHUNK_SHARE_OF_X = 1 / 16
#: Above this many features the d x d covariance is too big: sample rows instead.
COVARIANCE_MAX_FEATURES = 4096
#: Rows sampled for a randomized SVD when there are too many features.
SVD_SAMPLE_ROWS = 20000


def _row_chunks(X):
    """Slices of rows holding about ``STATISTICS_CHUNK_ENTRIES`` entries each."""
    smallest, largest = STATISTICS_CHUNK_ENTRIES
    entries = min(largest, max(smallest, int(X.shape[0] * X.shape[1] * STATISTICS_CHUNK_SHARE_OF_X)))
    rows = max(1, entries // max(X.shape[1], 1))
    return [slice(start, start + rows) for start in range(0, X.shape[0], rows)]


def _principal_directions(X, n_directions, random_state):
    """Mean, spread and top ``n_directions`` principal axes of ``X``.

    The spread, the root mean feature variance, is the global scale of the
    normalisation: in normalised units the mean squared error is the unexplained
    share of the variance. It is 0 for constant ``X``, including deviations within
    float64's rounding of the mean.

    Moments are summed chunk by chunk in float64, so the extra memory is
    ``O(n_features**2)``, not a copy of ``X``, and the axes are the exact top
    eigenvectors of the covariance. With more than ``COVARIANCE_MAX_FEATURES``
    features, a randomized SVD of at most ``SVD_SAMPLE_ROWS`` sampled rows gives
    them instead. ``variance_shares`` is each axis's share of the total variance.
    """
    n_samples, n_features = X.shape
    chunks = _row_chunks(X)
    mean = sum(X[rows].sum(axis=0, dtype=np.float64) for rows in chunks) / n_samples
    largest_deviation = max(float(np.max(np.abs(X[rows] - mean))) for rows in chunks)
    if largest_deviation <= 4 * np.finfo(np.float64).eps * float(np.max(np.abs(mean))):
        return _PrincipalAxes(mean, 0.0, np.eye(n_features)[:n_directions], np.zeros(n_directions))
    if n_features <= COVARIANCE_MAX_FEATURES:
        # Divided by the largest deviation before squaring, so that subnormal data
        # does not underflow to a spread of zero (and is refused as too narrow).
        scatter = np.zeros((n_features, n_features))
        for rows in chunks:
            centred = (X[rows] - mean) / largest_deviation  # float64
            scatter += centred.T @ centred
        spread = largest_deviation * float(np.sqrt(np.trace(scatter) / (n_samples * n_features)))
        eigenvalues, eigenvectors = np.linalg.eigh(scatter)
        directions = eigenvectors[:, ::-1][:, :n_directions].T
        variance_shares = eigenvalues[::-1][:n_directions] / max(np.trace(scatter), np.finfo(np.float64).tiny)
    else:
        sample = np.sort(random_state.choice(n_samples, min(n_samples, SVD_SAMPLE_ROWS), replace=False))
        centred = (X[sample] - mean) / largest_deviation
        spread = largest_deviation * float(np.sqrt(np.mean(np.square(centred))))
        _, singular_values, directions = randomized_svd(centred, n_directions, random_state=random_state)
        variance_shares = singular_values**2 / max(float(np.sum(np.square(centred))), np.finfo(np.float64).tiny)
    # Fresh arrays: eigh's reversed views have negative strides.
    return _PrincipalAxes(mean, spread, directions.copy(), np.clip(variance_shares, 0.0, 1.0).copy())


def _tensors_to_arrays(value):
    """Nested dicts and lists with every tensor replaced by a numpy array."""
    if torch.is_tensor(value):
        return value.detach().cpu().numpy()
    if isinstance(value, dict):
        return {key: _tensors_to_arrays(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_tensors_to_arrays(item) for item in value)
    return value


def _arrays_to_tensors(value):
    if isinstance(value, np.ndarray):
        return torch.from_numpy(value.copy())
    if isinstance(value, dict):
        return {key: _arrays_to_tensors(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_arrays_to_tensors(item) for item in value)
    return value


def _module_to_arrays(module):
    return {
        "n_features": module.n_features,
        "bottleneck_width": module.bottleneck_width,
        "hidden_layer_sizes": list(module.hidden_layer_sizes),
        "activation": module.activation,
        "state": _tensors_to_arrays(dict(module.state_dict())),
    }


def _module_from_arrays(saved):
    with torch.device("meta"):
        module = GatedAutoencoder(
            saved["n_features"], saved["bottleneck_width"], tuple(saved["hidden_layer_sizes"]), saved["activation"]
        )
    module = module.to_empty(device="cpu")
    module.load_state_dict(_arrays_to_tensors(saved["state"]))
    return module.eval()


def _trainer_to_arrays(trainer):
    return {"settings": trainer.settings(), "state": _tensors_to_arrays(trainer.state_dict())}


def _trainer_from_arrays(saved, module):
    trainer = GateTrainer(module, generator=torch.Generator(), **saved["settings"])
    trainer.load_state_dict(_arrays_to_tensors(saved["state"]))
    return trainer
