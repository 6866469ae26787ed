"""The scikit-learn face shared by both estimators.

``fit`` is thin: validate, resolve the ``"auto"`` values, build the module, hand it to
:func:`skdam._training.train_gated_autoencoder`, then copy the results into
attributes ending in ``_``. ``transform``, ``inverse_transform``, ``score`` and the
feature names live here once.
"""

import warnings
from contextlib import contextmanager
from numbers import Integral, Real

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassNamePrefixFeaturesOutMixin, TransformerMixin, _fit_context
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.extmath import randomized_svd
from sklearn.utils.validation import check_array, check_is_fitted, validate_data

from ._training import STOP_INTERRUPTED, STOP_MAX_ITER, train_gated_autoencoder
from .nn import GatedAutoencoder

#: Widest default bottleneck; a user who expects more dimensions sets max_components.
DEFAULT_MAX_COMPONENTS = 64
#: Adam step of the gate's beta. One unit spacing is 5 / width, so this closes
#: about one gate per step at width 64 and lets the network keep pace.
GATE_LEARNING_RATE = 0.02
#: With an integer n_components the penalty must always win: at 1 a unit would
#: have to explain all of the variance to stay open.
PRUNING_SCHEDULE_ALPHA = 1.0
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
#: Entries per block (1 MiB in float64) when statistics of X are accumulated in float64.
STATISTICS_CHUNK_ENTRIES = 2**17
#: Widest input whose principal axes come from its covariance matrix (as PCA's
#: "covariance_eigh" solver) when there are at least 10 rows per feature.
COVARIANCE_MAX_FEATURES = 1000
#: Multiply-adds per training step (batch rows x parameters) below which training on
#: the CPU runs on one intra-op thread. A small step is a few dozen tiny kernels:
#: splitting each across threads costs more than it saves, and on a busy machine every
#: kernel waits for a descheduled thread (measured 20 to 100 times slower with 2
#: threads than with 1 on a loaded 2-core machine; see docs/benchmarks.md).
SINGLE_THREAD_MAX_WORK = 2**26


def _resolve_device(device):
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def _training_threads(module, batch_size, device):
    """Intra-op threads for training: 1 for small steps on the CPU, else torch's own."""
    if device.type != "cpu":
        return None
    work = batch_size * sum(parameter.numel() for parameter in module.parameters())
    return 1 if work < SINGLE_THREAD_MAX_WORK else None


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
    # np.array copies, so read-only (memory-mapped) input never reaches torch as such.
    return torch.from_numpy(np.array(array, dtype=np.float32, order="C", copy=True)).to(device)


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
    }

    #: Hidden widths of the module; overridden by DAMAutoencoder.
    def _hidden_layer_sizes(self):
        return ()

    def _activation(self):
        return "elu"

    def _warmup_epochs(self):
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
        X = validate_data(self, X, dtype=[np.float64, np.float32], ensure_min_samples=2)
        n_samples, n_features = X.shape
        max_components = self._resolve_max_components(n_samples, n_features)
        min_components = self.min_components
        if self.n_components != "auto":
            min_components = self.n_components
        if min_components > max_components:
            raise ValueError(
                f"{'n_components' if self.n_components != 'auto' else 'min_components'}="
                f"{min_components} is larger than max_components={max_components} "
                f"(at most min(n_samples, n_features) = {min(n_samples, n_features)})."
            )
        alpha = self.alpha if self.n_components == "auto" else max(self.alpha, PRUNING_SCHEDULE_ALPHA)
        random_state = check_random_state(self.random_state)
        generator = torch.Generator().manual_seed(int(random_state.randint(np.iinfo(np.int32).max)))
        device = _resolve_device(self.device)

        train_rows, validation_rows = np.arange(n_samples), None
        if self.early_stopping:
            permuted = random_state.permutation(n_samples)
            n_validation = max(1, int(round(self.validation_fraction * n_samples)))
            if n_validation >= n_samples:
                raise ValueError("validation_fraction leaves no rows for training.")
            train_rows, validation_rows = np.sort(permuted[n_validation:]), np.sort(permuted[:n_validation])
        # Without a validation split, X itself: a copy would double the memory of fit.
        X_fit = X if validation_rows is None else X[train_rows]
        batch_size = self._resolve_batch_size(X_fit.shape[0])

        mean, scale, directions = _principal_directions(X_fit, max_components, random_state)
        # Build on the meta device so construction draws nothing from the global RNG.
        with torch.device("meta"):
            module = GatedAutoencoder(n_features, max_components, self._hidden_layer_sizes(), self._activation())
        module = module.to_empty(device="cpu").reset_parameters(generator)
        module.set_normalization(mean, scale)
        module.set_linear_path(directions)
        module.to(device)

        with _intra_op_threads(_training_threads(module, batch_size, device)):
            result = train_gated_autoencoder(
                module,
                _float32_tensor(X_fit, device),
                X_validation=None if validation_rows is None else _float32_tensor(X[validation_rows], device),
                alpha=alpha,
                max_epochs=self.max_iter,
                batch_size=batch_size,
                learning_rate=self.learning_rate_init,
                gate_learning_rate=GATE_LEARNING_RATE,
                weight_decay=0.0,
                warmup_epochs=self._warmup_epochs(),
                tol=self.tol,
                n_iter_no_change=self.n_iter_no_change,
                min_open=min_components,
                generator=generator,
                on_epoch_end=self._print_epoch if self.verbose else None,
            )
        module.cpu().eval()
        self._finish_fit(module, X_fit, result, directions)
        self._warn_about(result, min_components, max_components, widest=min(X_fit.shape))
        return self

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

    def _finish_fit(self, module, X_fit, result, principal_directions):
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
        self.loss_curve_ = [record.loss for record in result.history]
        self.reconstruction_error_curve_ = [record.reconstruction_error for record in result.history]
        self.n_components_curve_ = [record.n_open for record in result.history]
        if self.early_stopping:
            self.validation_error_curve_ = [record.validation_error for record in result.history]
        self.n_iter_ = len(result.history)
        self.stop_reason_ = result.stop_reason

    def _warn_about(self, result, min_components, max_components, widest):
        if result.stop_reason == STOP_MAX_ITER:
            warnings.warn(
                f"{type(self).__name__} reached max_iter={self.max_iter} before the open "
                "gates and the loss settled; raise max_iter or tol.",
                ConvergenceWarning,
            )
        elif result.stop_reason == STOP_INTERRUPTED:
            warnings.warn(
                f"Training of {type(self).__name__} was interrupted after {self.n_iter_} "
                "epochs; the estimator keeps the last completed epoch.",
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

    def _print_epoch(self, record):
        print(
            f"epoch {record.epoch + 1}: loss {record.loss:.5f}, "
            f"reconstruction {record.reconstruction_error:.5f}, open gates {record.n_open}"
        )

    # ------------------------------------------------------------ transform

    def _batches(self, X):
        for start in range(0, X.shape[0], TRANSFORM_BATCH_ROWS):
            yield slice(start, start + TRANSFORM_BATCH_ROWS), _float32_tensor(X[start : start + TRANSFORM_BATCH_ROWS], self.device_)

    def _module_on_device(self):
        # module_ stays on the CPU (pickle, clone); a copy is moved for the work.
        return self.module_ if self.device_.type == "cpu" else self.module_.to(self.device_)

    @torch.no_grad()
    def transform(self, X):
        """Embed ``X`` with the open units of the bottleneck.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Data in the units of the training data.

        Returns
        -------
        X_new : ndarray of shape (n_samples, n_components_)
            The gated code of the open units, most preferred unit first; same float
            dtype as ``X``.
        """
        check_is_fitted(self)
        X = validate_data(self, X, dtype=[np.float64, np.float32], reset=False)
        module = self._module_on_device()
        open_units = torch.as_tensor(self.open_units_, device=self.device_)
        embedding = np.empty((X.shape[0], self.n_components_), dtype=X.dtype)
        for rows, batch in self._batches(X):
            embedding[rows] = module.encode(batch)[:, open_units].cpu().numpy()
        return embedding

    @torch.no_grad()
    def inverse_transform(self, X):
        """Map an embedding back to the space of the data.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_components_)
            An embedding, as returned by :meth:`transform`.

        Returns
        -------
        X_original : ndarray of shape (n_samples, n_features_in_)
            The decoder's reconstruction; same float dtype as ``X``.
        """
        check_is_fitted(self)
        X = check_array(X, dtype=[np.float64, np.float32], input_name="X")
        if X.shape[1] != self.n_components_:
            raise ValueError(
                f"X has {X.shape[1]} features, but {type(self).__name__} is expecting "
                f"{self.n_components_} features (its n_components_) as input to inverse_transform."
            )
        module = self._module_on_device()
        open_units = torch.as_tensor(self.open_units_, device=self.device_)
        reconstruction = np.empty((X.shape[0], self.n_features_in_), dtype=X.dtype)
        for rows, batch in self._batches(X):
            code = torch.zeros(batch.shape[0], self.max_components_, device=self.device_)
            code[:, open_units] = batch
            reconstruction[rows] = module.decode(code).cpu().numpy()
        return reconstruction

    def _reconstruct(self, X):
        check_is_fitted(self)
        X = validate_data(self, X, dtype=[np.float64, np.float32], reset=False)
        return X, self.inverse_transform(self.transform(X))

    def score_samples(self, X):
        """Minus the squared reconstruction error of each row (higher is better).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        scores : ndarray of shape (n_samples,)
        """
        X, reconstruction = self._reconstruct(X)
        return -np.square(X - reconstruction, dtype=np.float64).sum(axis=1)

    def score(self, X, y=None):
        """Reconstruction R^2, ``1 - SSE / SST``, over all entries of ``X``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : None
            Ignored.

        Returns
        -------
        score : float
            1 is a perfect reconstruction, 0 is no better than ``X``'s column means.
        """
        X, reconstruction = self._reconstruct(X)
        residual = np.square(X - reconstruction, dtype=np.float64).sum()
        total = np.square(X - X.mean(axis=0), dtype=np.float64).sum()
        if total == 0:
            return 1.0 if residual == 0 else -np.inf
        return float(1 - residual / total)

    @property
    def _n_features_out(self):
        return self.n_components_

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags


def _centred_chunks(X, mean):
    """``X - mean`` in float64, a block of rows at a time: bounded extra memory."""
    chunk_rows = max(1, STATISTICS_CHUNK_ENTRIES // max(X.shape[1], 1))
    for start in range(0, X.shape[0], chunk_rows):
        yield X[start : start + chunk_rows].astype(np.float64) - mean


def _principal_directions(X, n_directions, random_state):
    """Mean, global scale and top ``n_directions`` principal axes of ``X``.

    The scale is the root mean feature variance, so that in normalised units the
    mean squared error is the unexplained share of the variance.

    With many more rows than features, the axes are the eigenvectors of the
    covariance matrix accumulated in float64 over blocks of rows (what PCA's
    ``svd_solver="covariance_eigh"`` does in that regime): memory ``O(d^2)`` instead
    of a float64 copy of ``X``, and time linear in the rows.
    """
    n_samples, n_features = X.shape
    mean = X.mean(axis=0, dtype=np.float64)
    if n_features <= COVARIANCE_MAX_FEATURES and n_samples >= 10 * n_features:
        covariance = np.zeros((n_features, n_features))
        for chunk in _centred_chunks(X, mean):
            covariance += chunk.T @ chunk
        covariance /= n_samples
        mean_variance = float(np.trace(covariance)) / n_features
        _, eigenvectors = np.linalg.eigh(covariance)
        # eigh sorts the eigenvalues in ascending order: the strongest axes come last.
        directions = eigenvectors[:, ::-1][:, :n_directions].T
        scale = np.sqrt(mean_variance) if mean_variance > 0 and np.isfinite(mean_variance) else 1.0
        return mean, scale, directions.copy()
    centred = (X - mean).astype(np.float64, copy=False)
    mean_variance = float(np.mean(np.square(centred).mean(axis=0)))
    scale = np.sqrt(mean_variance) if mean_variance > 0 and np.isfinite(mean_variance) else 1.0
    centred = centred / scale
    if n_directions < 0.5 * min(centred.shape):
        _, _, directions = randomized_svd(centred, n_directions, random_state=random_state)
    else:
        _, _, directions = np.linalg.svd(centred, full_matrices=False)
        directions = directions[:n_directions]
    return mean, scale, directions
