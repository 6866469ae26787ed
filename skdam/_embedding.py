"""DAMEmbedding: the linear gated autoencoder, PCA whose rank is learned."""

import numpy as np
import scipy.sparse as sparse
import torch
from sklearn.utils.validation import check_is_fitted

from ._base import _BaseDAM
from ._input import dense_batches
from ._pca_model import (
    ppca_covariance,
    ppca_incomplete_codes,
    ppca_incomplete_em_step,
    ppca_incomplete_log_likelihood,
    ppca_log_likelihood,
    ppca_precision,
)
from ._statistics import row_chunks
from ._transform import has_missing

#: Re-estimates of the noise at the final components, from the warm start's: the
#: degrees-of-freedom update settles in two or three.
NOISE_REESTIMATES = 3


class DAMEmbedding(_BaseDAM):
    """Linear dimensionality reduction whose number of components is learned.

    A bias-free linear encoder and decoder around a DiscriminAtive Masking gate,
    trained on centred data and warm-started from a truncated SVD. The penalty
    ``alpha`` closes gates while each closed unit explains less than ``alpha`` of the
    total variance, so the rank is found without being given. Once the gates have
    settled at ``k`` open units, those units get the top ``k`` principal axes, the
    least-squares optimum that a linear autoencoder of rank ``k`` converges to, so
    ``components_`` and ``explained_variance_`` read as PCA's do.

    Missing values (NaN) are taken as they are, in every method: the loss counts
    the observed entries, the axes come from probabilistic PCA fitted to them, and
    :meth:`complete` fills the holes with the model's conditional expectation (see
    the user guide's page on missing values).

    Parameters
    ----------
    n_components : "auto" or int, default="auto"
        ``"auto"`` discovers the dimension. An int ``k`` keeps pruning until exactly
        ``k`` gates remain, DAM as a pruning schedule to compare with ``PCA(k)``.
    alpha : float, default=0.01
        Regularization strength, in shares of the variance: a component is kept
        when dropping it would raise the unexplained share of the variance,
        ``1 - R^2``, by more than ``alpha``. For this linear model that is exactly
        the number of PCA's ``explained_variance_ratio_`` above ``alpha``: the gates
        settle near it under the penalty ``alpha`` per open unit, and the count is
        then checked against PCA's errors, which are what a linear autoencoder
        reaches once adapted (see ``unexplained_variance_``). It does not depend on
        the units of ``X`` nor on ``max_components``.
    max_components : int, default=None
        Width of the gated bottleneck, the most components that can be kept.
        ``None`` uses ``min(64, n_samples, n_features)``, or more when
        ``n_components`` or ``min_components`` asks for more.
    min_components : int, default=1
        Gates that stay open however large ``alpha`` is: the guard against collapse.
    max_iter : int, default=200
        Most epochs.
    batch_size : int or "auto", default="auto"
        Rows per mini-batch. ``"auto"``: 50 steps per epoch, of ``[32, 256]``
        rows; past 12800 rows an epoch trains on 12800 of them, freshly shuffled
        (``partial_fit`` on its whole chunk). An int: an epoch is a full pass.
    learning_rate_init : float, default=1e-2
        Adam step size of the weights (the paper's for its linear experiment); the
        gate has its own fixed pace.
    tol : float, default=1e-2
        Improvement of the objective (in shares of the variance) below which an
        epoch counts as no improvement.
    n_iter_no_change : int, default=3
        Training stops once, for this many epochs in a row, the number of open
        gates has not changed, the objective has not improved by ``tol`` and the
        gate's ``beta`` has stopped drifting.
    early_stopping : bool, default=False
        Monitor the objective on a held-out ``validation_fraction`` of the rows,
        and keep the state with the best one.
    validation_fraction : float, default=0.1
        Share of the rows held out when ``early_stopping`` is True.
    random_state : int, RandomState instance or None, default=None
        Seeds the initialisation and the batches, through a local
        ``torch.Generator``; global seeds are never touched.
    verbose : int, default=0
        Positive shows the progress of training, with the loss and the open gates:
        a bar on a terminal when tqdm is installed, one line per epoch otherwise.
    device : {"auto", "cpu", "cuda"} or torch.device, default="auto"
        Where to train and transform; ``"auto"`` picks CUDA when it is available.
        The fitted network always lives on the CPU.
    mixed_precision : "auto" or bool, default="auto"
        Whether training computes its matrix products in bfloat16, keeping the
        weights, the gate and the loss in float32. ``"auto"`` turns it on where it
        pays: on a device with bfloat16 matrix units (a CPU with AMX, a CUDA GPU of
        compute capability 8.0 or more) and a training step of at least ``2**26``
        multiply-adds (batch rows times parameters). ``transform``,
        ``inverse_transform`` and ``score`` always compute in float32. Set False for
        results that do not depend on the machine's instruction set.

    Attributes
    ----------
    n_components_ : int
        The number of open gates: the discovered dimension, the number of principal
        components that explain more than ``alpha`` of the variance.
    early_stopping_ : bool
        Whether the fit held rows out (``early_stopping``).
    unexplained_variance_ : ndarray of shape (max_components + 1,)
        Entry ``k``: the share of the training variance left unexplained with the
        ``k`` strongest components, ``1 - sum(explained_variance_ratio)`` of PCA
        with ``k``; entry 0 is 1. ``n_components_`` is the number of ``k`` with
        ``unexplained_variance_[k - 1] - unexplained_variance_[k] > alpha``, so the
        count for another ``alpha`` needs no refit, and ``transform(X)[:, :k]``
        is the embedding with ``k < n_components_`` components. After
        ``partial_fit`` only entry 0 is known; the others are NaN.
    noise_variance_ : float
        Mean variance of the directions left out, as PCA's: the isotropic noise of
        the probabilistic PCA model behind ``score``. Fitted with missing values:
        the squared residuals of the observed entries per degree of freedom left
        (docs/missing-values.md).
    singular_values_ : ndarray of shape (n_components,)
        ``sqrt(explained_variance_ * (n_samples_ - 1))``, as PCA's.
    n_samples_ : int
        Rows the explained variances were computed on.
    components_ : ndarray of shape (n_components, n_features)
        Axes of the learned subspace, ``inverse_transform(Z) == Z @ components_ +
        mean_``. After ``fit`` they are orthonormal and ordered by decreasing
        explained variance, as PCA's; after ``partial_fit`` they are the decoder's
        directions as trained, neither orthonormal nor ordered.
    explained_variance_ : ndarray of shape (n_components,)
        Variance along each of ``components_`` of the training data (of the last
        chunk, after ``partial_fit``).
    explained_variance_ratio_ : ndarray of shape (n_components,)
        ``explained_variance_`` as a share of the total variance.
    mean_ : ndarray of shape (n_features,)
        Per-feature mean of the training data.
    gate_values_ : ndarray of shape (max_components,)
        Value of every gate after training, zero for closed units.
    open_units_ : ndarray of shape (n_components,)
        Bottleneck units behind the columns of ``transform``'s output.
    max_components_ : int
        Width of the gated bottleneck actually used.
    batch_size_ : int
        Rows per mini-batch actually used.
    device_ : torch.device
        Device resolved from ``device``.
    mixed_precision_ : bool
        Whether training computed its matrix products in bfloat16.
    loss_curve_ : list of float
        Training objective after each epoch.
    reconstruction_error_curve_ : list of float
        Unexplained share of the training variance after each epoch.
    n_components_curve_ : list of int
        Open gates after each epoch.
    validation_error_curve_ : list of float
        Validation reconstruction error per epoch; only with ``early_stopping``.
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
    DAMAutoencoder : The nonlinear counterpart, for curved data.
    sklearn.decomposition.PCA : Linear reduction with a given number of components.

    References
    ----------
    J. Bu, A. Daw, M. Maruf, A. Karpatne, "Learning Compact Representations of
    Neural Networks using DiscriminAtive Masking (DAM)", NeurIPS 2021,
    arXiv:2110.00684.

    Examples
    --------
    >>> import numpy as np
    >>> from skdam import DAMEmbedding
    >>> rng = np.random.RandomState(0)
    >>> X = rng.normal(size=(500, 3)) @ rng.normal(size=(3, 20))
    >>> embedding = DAMEmbedding(random_state=0).fit(X)
    >>> embedding.n_components_
    3
    >>> embedding.transform(X).shape
    (500, 3)
    """

    def __init__(
        self,
        n_components="auto",
        *,
        alpha=0.01,
        max_components=None,
        min_components=1,
        max_iter=200,
        batch_size="auto",
        learning_rate_init=1e-2,
        tol=1e-2,
        n_iter_no_change=3,
        early_stopping=False,
        validation_fraction=0.1,
        random_state=None,
        verbose=0,
        device="auto",
        mixed_precision="auto",
    ):
        self.n_components = n_components
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

    def transform(self, X):
        """Project ``X`` on the discovered components, as PCA does.

        The gated linear encoder is a matrix: computing it in NumPy skips the
        full-width encoder and the closed units, and runs at PCA's speed. After
        ``fit`` it is ``x -> components_ @ (x - mean_)``.

        A row with missing entries (NaN) gets the least-squares fit of its observed
        entries, ``argmin_z ||x_o - mean_o - z @ components_[:, o]||^2``, ridged by
        each component's ``noise_variance_ / (explained_variance_ -
        noise_variance_)``: the probabilistic PCA model's posterior mean given the
        observed entries. On a complete row the least squares would be the
        projection above; the ridge, which keeps a row with few observed entries
        finite, shrinks it by that ratio, which is small for components that stand
        above the noise. A row with nothing observed gets 0, the mean row's code.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Data in the units of the training data; NaN marks a missing entry.
            Sparse input is densified batch by batch.

        Returns
        -------
        X_new : ndarray of shape (n_samples, n_components)
            Coordinates along the open units, strongest first; same float dtype as
            ``X`` (float64 for any other dtype).
        """
        check_is_fitted(self)
        X = self._validate_for_batches(X)
        dtype = self._output_dtype(X)
        projection = self._projection.T.astype(dtype, copy=False)
        offset = self.mean_.astype(dtype, copy=False) @ projection
        if not sparse.issparse(X) and has_missing(X):
            embedding = np.empty((X.shape[0], self.n_components_), dtype=dtype)
            for rows, batch in dense_batches(X):
                embedding[rows] = self._codes(batch)
            return embedding
        if X.dtype == dtype and not sparse.issparse(X):
            # As PCA.transform: project, then subtract the projected mean (no centred copy).
            embedding = X @ projection
            embedding -= offset
            return embedding
        embedding = np.empty((X.shape[0], self.n_components_), dtype=dtype)
        for rows, batch in dense_batches(X):
            embedding[rows] = self._codes(batch) if has_missing(batch) else batch.astype(dtype, copy=False) @ projection - offset
        return embedding

    def _codes(self, batch):
        """Codes of a dense batch, in float64: the projection where a row is
        complete, the ridged least squares of its observed entries where it is not."""
        holes = np.isnan(batch).any(axis=1)
        codes = np.empty((batch.shape[0], self.n_components_))
        complete = ~holes
        # As transform's path for complete X: project, then subtract the projected mean.
        codes[complete] = batch[complete] @ self._projection.T - self.mean_ @ self._projection.T
        codes[holes] = ppca_incomplete_codes(
            batch[holes], self.mean_, self.components_, self.explained_variance_, self.noise_variance_
        )
        return codes

    def _reconstruct_batch(self, batch, method="complete", dtype=np.float32):
        # The linear model in float64 NumPy: the probabilistic PCA model's
        # conditional expectation of the missing entries.
        return self._codes(batch) @ self.components_ + self.mean_

    def get_covariance(self):
        """Data covariance of the probabilistic PCA model with the discovered components.

        ``components_.T @ diag(explained_variance_ - noise_variance_) @ components_
        + noise_variance_ * I``, as :meth:`sklearn.decomposition.PCA.get_covariance`.

        Returns
        -------
        cov : ndarray of shape (n_features, n_features)
            Estimated covariance of the data.
        """
        check_is_fitted(self)
        return ppca_covariance(self.components_, self.explained_variance_, self.noise_variance_)

    def get_precision(self):
        """Inverse of :meth:`get_covariance`, by the matrix inversion lemma.

        Returns
        -------
        precision : ndarray of shape (n_features, n_features)
            Estimated precision of the data.
        """
        check_is_fitted(self)
        return ppca_precision(self.components_, self.explained_variance_, self.noise_variance_)

    def _log_likelihood(self, X):
        # The probabilistic PCA model of the subspace: PCA(n_components_).score_samples,
        # and its marginal on the observed entries for rows with missing ones.
        scores = ppca_log_likelihood(X, self.mean_, self.get_precision())
        for rows, batch in dense_batches(X):
            holes = np.isnan(batch).any(axis=1) if has_missing(batch) else None
            if holes is not None:
                scores[rows][holes] = ppca_incomplete_log_likelihood(
                    batch[holes], self.mean_, self.components_, self.explained_variance_, self.noise_variance_
                )
        return scores

    def _settle_module(self, module, axes):
        _put_principal_axes_on_open_units(module, axes.directions)

    def _store_results(self, trainer, X_fit, history, stop_reason, device, unit_errors, covariance=None):
        super()._store_results(trainer, X_fit, history, stop_reason, device, unit_errors)
        module, open_units = trainer.module, self.open_units_
        scale = float(module.input_scale)
        gate_values = module.gate.gate_values().detach().double()[open_units]
        self.mean_ = module.input_mean.double().numpy()
        # code = gate * encoder_row . (x - mean) / scale; reconstruction = decoder @ code * scale + mean.
        self._projection = (module.encoder_linear.weight.detach().double()[open_units] * gate_values[:, None] / scale).numpy()
        self.components_ = (module.decoder_linear.weight.detach().double()[:, open_units].T * scale).numpy()
        if covariance is not None:
            # Missing values: the variances of the covariance fitted to the observed entries.
            unbiased = X_fit.shape[0] / max(X_fit.shape[0] - 1, 1)
            variances = (np.einsum("kd,de,ke->k", self.components_, covariance, self.components_) * unbiased,
                         float(np.trace(covariance)) * unbiased)  # fmt: skip
        else:
            # partial_fit's chunks with missing values count them at the mean.
            X_statistics = np.where(np.isnan(X_fit), self.mean_, X_fit) if has_missing(X_fit) else X_fit
            variances = _explained_variances(X_statistics, self.mean_, self.components_)
        self.n_samples_ = X_fit.shape[0]
        self.explained_variance_, total_variance = variances
        self.explained_variance_ratio_ = self.explained_variance_ / total_variance if total_variance > 0 else np.zeros(self.n_components_)
        self.singular_values_ = np.sqrt(self.explained_variance_ * max(self.n_samples_ - 1, 1))
        # As PCA: the mean variance of the min(n_samples, n_features) - k directions left out.
        n_left_out = min(X_fit.shape) - self.n_components_
        self.noise_variance_ = max(total_variance - self.explained_variance_.sum(), 0.0) / n_left_out if n_left_out > 0 else 0.0
        if covariance is not None and n_left_out > 0:
            # Missing values: the variance the observed entries leave per degree of
            # freedom (the left-out variance of the filled rows understates it).
            for _ in range(NOISE_REESTIMATES):
                _, self.noise_variance_ = ppca_incomplete_em_step(
                    X_fit, self.mean_, self.components_, self.explained_variance_, self.noise_variance_
                )


def _explained_variances(X, mean, components):
    """Variance (ddof=1) of ``X`` along each of ``components``, and its total variance.

    Summed over blocks of rows: no centred copy of X. The deviations' sums are kept
    too, so they stay exact though ``mean`` went through float32.
    """
    n_samples = X.shape[0]
    feature_sum, feature_square = np.zeros(X.shape[1]), np.zeros(X.shape[1])
    projection_sum, projection_square = np.zeros(components.shape[0]), np.zeros(components.shape[0])
    for rows in row_chunks(X):
        centred = X[rows] - mean
        projection = centred @ components.T
        feature_sum += centred.sum(axis=0)
        feature_square += np.square(centred).sum(axis=0)
        projection_sum += projection.sum(axis=0)
        projection_square += np.square(projection).sum(axis=0)
    denominator = max(n_samples - 1, 1)
    total_variance = float((feature_square - feature_sum**2 / n_samples).sum()) / denominator
    return (projection_square - projection_sum**2 / n_samples) / denominator, total_variance


@torch.no_grad()
def _put_principal_axes_on_open_units(module, principal_directions):
    """Give the open units the top principal axes, strongest on the most preferred.

    The gate has chosen the rank k; for a linear autoencoder of rank k the
    least-squares optimum, the point its training converges to, is the span of the
    top k principal axes. Setting it exactly removes the optimiser's noise and
    makes the axes orthonormal and ordered, as PCA's are.
    """
    gate_values = module.gate.gate_values()
    open_units = torch.nonzero(gate_values > 0).flatten().flip(0)
    directions = torch.as_tensor(principal_directions[: open_units.numel()], dtype=torch.float32)
    # The code of a unit is gate * (encoder_row . normalised x) and decoding
    # multiplies by the decoder column, in normalised units: choose both so that the
    # code is the projection in data units and decoding inverts it.
    scale = module.input_scale
    module.encoder_linear.weight.zero_()
    module.decoder_linear.weight.zero_()
    module.encoder_linear.weight[open_units] = directions * scale / gate_values[open_units, None]
    module.decoder_linear.weight[:, open_units] = directions.T / scale
