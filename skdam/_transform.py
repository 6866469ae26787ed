"""What a fitted gated autoencoder does with data: embed, reconstruct, complete, score.

A mixin of the estimators' base, as scikit-learn's ``_BasePCA`` owns ``transform``
and ``inverse_transform``. Every method works batch by batch, so memory stays
bounded by the output, and each row's result does not depend on the other rows.
Missing entries (NaN) are read as such: a batch that holds any goes through the
encoder's filling path, :meth:`~skdam.nn.GatedAutoencoder.encode_incomplete`.
"""

import numpy as np
import scipy.sparse as sparse
import torch
from sklearn.base import TransformerMixin
from sklearn.utils.validation import check_array, check_is_fitted, validate_data

from ._input import BATCH_CONVERTED_DTYPES, check_float32_range, dense_batches
from ._runtime import as_tensor, module_on


def has_missing(batch):
    """Whether a dense, validated batch holds NaN (integer and boolean ones cannot).

    The maximum is NaN exactly when an entry is: one pass in the batch's own dtype
    that allocates no mask (a float64 sum would convert every entry on the way).
    """
    return batch.dtype.kind == "f" and batch.size > 0 and bool(np.isnan(batch.max()))


class ReconstructionMixin(TransformerMixin):
    """``transform``, ``inverse_transform``, ``complete``, ``score`` and ``score_samples`` over ``module_``."""

    def _validate_for_batches(self, X, **check_params):
        """Check X for the batched methods without copying it whole.

        Float, integer and boolean arrays and sparse matrices pass as they are and are
        converted batch by batch, so memory stays bounded by the output.
        """
        X = validate_data(
            self, X, dtype=BATCH_CONVERTED_DTYPES, accept_sparse="csr", reset=False, ensure_all_finite="allow-nan",
            **check_params,
        )  # fmt: skip
        check_float32_range(X, type(self).__name__)
        return X

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
            Data in the units of the training data; NaN marks a missing entry.
            Sparse input is densified batch by batch.

        Returns
        -------
        X_new : ndarray of shape (n_samples, n_components)
            The gated code of the open units, most preferred unit first; same float
            dtype as ``X`` (float64 for any other dtype). A row with missing entries
            is encoded as :meth:`~skdam.nn.GatedAutoencoder.encode_incomplete` reads
            it: filled with the mean and scaled to a complete row's size; a row with
            nothing observed is read as the mean row and gets a finite code.
        """
        check_is_fitted(self)
        X = self._validate_for_batches(X)
        module = module_on(self.module_, self.device_)
        open_units = torch.as_tensor(self.open_units_, device=self.device_)
        embedding = np.empty((X.shape[0], self.n_components_), dtype=self._output_dtype(X))
        for rows, batch in dense_batches(X):
            tensor = as_tensor(batch, self.device_)
            code = module.encode_incomplete(tensor) if has_missing(batch) else module.encode(tensor)
            embedding[rows] = self._finite(code[:, open_units], "transform")
        return embedding

    @torch.no_grad()
    def inverse_transform(self, X):
        """Map an embedding back to the space of the data.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_components)
            An embedding, as returned by :meth:`transform`. A row of codes with a
            NaN has no reconstruction: it comes back as a row of NaN.

        Returns
        -------
        X_original : ndarray of shape (n_samples, n_features)
            The decoder's reconstruction; same float dtype as ``X`` (float64 for any
            other dtype). To fill the missing entries of data, see :meth:`complete`.
        """
        check_is_fitted(self)
        X = check_array(X, dtype=BATCH_CONVERTED_DTYPES, accept_sparse="csr", input_name="X", ensure_all_finite="allow-nan")
        if X.shape[1] != self.n_components_:
            raise ValueError(
                f"X has {X.shape[1]} features, but {type(self).__name__} is expecting "
                f"{self.n_components_} features (its n_components_) as input to inverse_transform."
            )
        # No magnitude limit here: DAMEmbedding's codes are projections in the units
        # of X and may exceed its largest value by up to sqrt(n_features). Codes
        # beyond float32 overflow, and _finite reports it.
        module = module_on(self.module_, self.device_)
        open_units = torch.as_tensor(self.open_units_, device=self.device_)
        reconstruction = np.empty((X.shape[0], self.n_features_in_), dtype=self._output_dtype(X))
        for rows, batch in dense_batches(X):
            unknown = np.isnan(batch).any(axis=1) if has_missing(batch) else None
            if unknown is not None:
                batch = np.where(unknown[:, None], 0, batch)
            code = torch.zeros(batch.shape[0], self.max_components_, device=self.device_)
            code[:, open_units] = as_tensor(batch, self.device_)
            reconstruction[rows] = self._finite(module.decode(code), "inverse_transform")
            if unknown is not None:
                reconstruction[rows][unknown] = np.nan
        return reconstruction

    @torch.no_grad()
    def _reconstruct_batch(self, batch, method="complete", dtype=np.float32):
        """The model's reconstruction of a dense batch that may hold NaN, in float64.

        ``dtype`` is the network's arithmetic: float64 for a metric.
        """
        module = module_on(self.module_, self.device_, dtype=None if dtype == np.float32 else torch.float64)
        tensor = as_tensor(batch, self.device_, dtype=dtype)
        code = module.encode_incomplete(tensor)
        return self._finite(module.decode(code), method).astype(np.float64, copy=False)

    def complete(self, X):
        """Fill the missing entries (NaN) of ``X`` with the model's reconstruction.

        Every observed entry comes back bit for bit; only the NaN change. A row
        with nothing observed is filled with what the model reconstructs from no
        information (for :class:`DAMEmbedding`, the training mean).

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Data in the units of the training data; NaN marks a missing entry.

        Returns
        -------
        X_completed : ndarray of shape (n_samples, n_features)
            ``X`` with each NaN replaced by the reconstruction of its row; same
            float dtype as ``X`` (float64 for any other dtype).

        Examples
        --------
        >>> import numpy as np
        >>> from skdam import DAMEmbedding
        >>> rng = np.random.RandomState(0)
        >>> X = rng.normal(size=(300, 2)) @ rng.normal(size=(2, 10))
        >>> X_missing = X.copy()
        >>> X_missing[rng.uniform(size=X.shape) < 0.2] = np.nan
        >>> embedding = DAMEmbedding(random_state=0).fit(X_missing)
        >>> X_completed = embedding.complete(X_missing)
        >>> bool(np.isnan(X_completed).any())
        False
        >>> observed = ~np.isnan(X_missing)
        >>> bool((X_completed[observed] == X_missing[observed]).all())
        True
        >>> holes = ~observed
        >>> model_error = np.abs(X_completed - X)[holes].mean()
        >>> mean_error = np.abs(np.nanmean(X_missing, axis=0) - X)[holes].mean()
        >>> bool(model_error < 0.1 * mean_error)
        True
        """
        check_is_fitted(self)
        X = self._validate_for_batches(X)
        completed = np.empty(X.shape, dtype=self._output_dtype(X))
        for rows, batch in dense_batches(X):
            completed[rows] = batch
            if has_missing(batch):
                holes = np.isnan(batch)
                completed[rows][holes] = self._reconstruct_batch(batch)[holes]
        return completed

    @torch.no_grad()
    def _squared_errors(self, X):
        """Squared reconstruction error of each row of validated ``X``, batch by batch.

        Closed gates pass exactly zero, so decoding the full code equals
        ``inverse_transform(transform(X))``. A score is a metric: it is computed in
        float64, so a row's score does not depend on the rows batched with it, as
        float32 matrix products of different shapes would make it (by ~1e-6).
        """
        module = module_on(self.module_, self.device_, dtype=torch.float64)
        errors = np.empty(X.shape[0], dtype=np.float64)
        for rows, batch in dense_batches(X):
            if has_missing(batch):  # observed entries only
                reconstruction = self._reconstruct_batch(batch, "score", dtype=np.float64)
                errors[rows] = np.nansum(np.square(batch - reconstruction, dtype=np.float64), axis=1)
                continue
            tensor = as_tensor(batch, self.device_, dtype=np.float64)
            reconstruction = self._finite(module.decode(module.encode(tensor)), "score")
            errors[rows] = np.square(batch - reconstruction, dtype=np.float64).sum(axis=1)
        return errors

    def score_samples(self, X):
        """Log-likelihood of each row under the fitted model (see Notes of ``score``).

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Data in the units of the training data. NaN marks a missing entry: such
            a row scores the log-likelihood of its observed entries (the model's
            marginal on them).

        Returns
        -------
        scores : ndarray of shape (n_samples,)
            Log-likelihood of each row; higher is better.
        """
        check_is_fitted(self)
        return self._log_likelihood(self._validate_for_batches(X))

    def score(self, X, y=None):
        """Average log-likelihood of the rows of ``X`` under the fitted model.

        Higher on held-out rows when the model's dimension matches the data's, so
        ``GridSearchCV`` over ``alpha`` without ``y`` picks a dimension, as it picks
        :class:`~sklearn.decomposition.PCA`'s ``n_components``. For the
        reconstruction R^2, see :meth:`r2_score`.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Data in the units of the training data.
        y : None
            Ignored.

        Returns
        -------
        score : float
            Mean of :meth:`score_samples`.
        """
        return float(np.mean(self.score_samples(X)))

    def r2_score(self, X):
        """Reconstruction R^2, ``1 - SSE / SST``, over all observed entries of ``X``.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            At least two rows: R^2 compares with the column means of ``X`` (over
            their observed entries, where NaN marks missing ones).

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
        if not sparse.issparse(X) and has_missing(X):
            mean = np.nanmean(X, axis=0, dtype=np.float64)
            total = sum(np.nansum(np.square(batch - mean)) for _, batch in dense_batches(X))
        else:
            mean = np.asarray(X.mean(axis=0, dtype=np.float64)).ravel()
            total = sum(np.square(batch - mean).sum() for _, batch in dense_batches(X))
        if total == 0:
            return 1.0 if residual == 0 else 0.0
        return float(1 - residual / total)
