"""What a fitted gated autoencoder does with data: embed, reconstruct, score.

A mixin of the estimators' base, as scikit-learn's ``_BasePCA`` owns ``transform``
and ``inverse_transform``. Every method works batch by batch, so memory stays
bounded by the output, and each row's result does not depend on the other rows.
"""

import numpy as np
import torch
from sklearn.base import TransformerMixin
from sklearn.utils.validation import check_array, check_is_fitted, validate_data

from ._input import BATCH_CONVERTED_DTYPES, check_float32_range, dense_batches
from ._runtime import as_tensor, module_on


class ReconstructionMixin(TransformerMixin):
    """``transform``, ``inverse_transform``, ``score`` and ``score_samples`` over ``module_``."""

    def _validate_for_batches(self, X, **check_params):
        """Check X for the batched methods without copying it whole.

        Float, integer and boolean arrays and sparse matrices pass as they are and are
        converted batch by batch, so memory stays bounded by the output.
        """
        X = validate_data(self, X, dtype=BATCH_CONVERTED_DTYPES, accept_sparse="csr", reset=False, **check_params)
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
        module = module_on(self.module_, self.device_)
        open_units = torch.as_tensor(self.open_units_, device=self.device_)
        embedding = np.empty((X.shape[0], self.n_components_), dtype=self._output_dtype(X))
        for rows, batch in dense_batches(X):
            embedding[rows] = self._finite(module.encode(as_tensor(batch, self.device_))[:, open_units], "transform")
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
        module = module_on(self.module_, self.device_)
        open_units = torch.as_tensor(self.open_units_, device=self.device_)
        reconstruction = np.empty((X.shape[0], self.n_features_in_), dtype=self._output_dtype(X))
        for rows, batch in dense_batches(X):
            code = torch.zeros(batch.shape[0], self.max_components_, device=self.device_)
            code[:, open_units] = as_tensor(batch, self.device_)
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
        module = module_on(self.module_, self.device_, dtype=torch.float64)
        errors = np.empty(X.shape[0], dtype=np.float64)
        for rows, batch in dense_batches(X):
            tensor = as_tensor(batch, self.device_, dtype=np.float64)
            reconstruction = self._finite(module.decode(module.encode(tensor)), "score")
            errors[rows] = np.square(batch - reconstruction, dtype=np.float64).sum(axis=1)
        return errors

    def score_samples(self, X):
        """Log-likelihood of each row under the fitted model (see Notes of ``score``).

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Data in the units of the training data.

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
        """Reconstruction R^2, ``1 - SSE / SST``, over all entries of ``X``.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            At least two rows: R^2 compares with the column means of ``X``.

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
        total = sum(np.square(batch - mean).sum() for _, batch in dense_batches(X))
        if total == 0:
            return 1.0 if residual == 0 else 0.0
        return float(1 - residual / total)
