"""Log-likelihoods that rank fits of different dimensions without labels.

A fitted model is read as a generative one, as probabilistic PCA reads PCA: a code
``z ~ N(code_mean, diag(code_variance))`` in the open units, decoded and blurred by
isotropic noise, ``x = decode(z) + N(0, noise_variance * I)``. A model with too
few units leaves structure in the noise, which a held-out row pays for in the
noise term; one with too many spends density on directions where held-out rows do
not vary. ``GridSearchCV`` over ``alpha`` without ``y`` then prefers the count where
the data's dimension ends, as it does over PCA's ``n_components``.

For a linear decoder the marginal density is Gaussian (:mod:`skdam._pca_model`).
For a nonlinear one it is approximated by Laplace's method around the encoder's
code ``z``, with the decoder's Jacobian ``J`` at ``z``::

    log p(x) ~ log N(z; m, S) + log N(x - decode(z); 0, s I)
               + k/2 log(2 pi) - 1/2 log det(S^-1 + J^T J / s)
"""

import math

import numpy as np
import torch

from ._input import dense_batches
from ._runtime import as_tensor, module_on

#: Noise variance is kept above this share of the data's mean feature variance, so
#: that a model reconstructing its training rows exactly still has a finite density.
SMALLEST_NOISE_SHARE = 1e-10
#: Rows the code's moments and the noise variance are estimated on, at most.
STATISTICS_ROWS = 8192


@torch.no_grad()
def code_statistics(module, open_units, X, device):
    """Mean and variance (ddof=1) of the open units' code over ``X``, and the noise
    variance: the squared reconstruction error per direction left out, as PCA's
    ``noise_variance_``, kept above ``SMALLEST_NOISE_SHARE`` of the data's.

    At most ``STATISTICS_ROWS`` evenly spaced rows are read: a few moments need no
    more, and a pass over all of a large X costs a share of the fit.
    """
    X = X[:: max(1, X.shape[0] // STATISTICS_ROWS)]
    open_units = torch.as_tensor(open_units, device=device)
    code_sum = torch.zeros(len(open_units), dtype=torch.float64, device=device)
    code_square, error_sum = torch.zeros_like(code_sum), torch.zeros((), dtype=torch.float64, device=device)
    observed_share = 1.0
    for _, batch in dense_batches(X):
        x = as_tensor(batch, device)
        missing = bool(torch.isnan(x).any())
        code = module.encode_incomplete(x) if missing else module.encode(x)
        z = code[:, open_units].double()
        code_sum += z.sum(0)
        code_square += z.square().sum(0)
        error_sum += (module.decode(code) - x).double().square().nansum()
    n_samples, n_features = X.shape
    if np.isnan(X).any():  # the error over observed entries stands for all of them
        observed_share = max(float(np.mean(~np.isnan(X))), np.finfo(np.float64).tiny)
    error_sum = error_sum / observed_share
    code_mean = code_sum / n_samples
    code_variance = (code_square - n_samples * code_mean.square()) / max(n_samples - 1, 1)
    left_out = max(n_features - len(open_units), 1)
    floor = SMALLEST_NOISE_SHARE * float(module.input_scale) ** 2
    noise = max(float(error_sum) / (max(n_samples - 1, 1) * left_out), floor)
    return code_mean.cpu().numpy(), np.maximum(code_variance.cpu().numpy(), floor), noise


@torch.no_grad()
def laplace_log_likelihood(module, open_units, X, *, code_mean, code_variance, noise_variance, device):
    """Per-row log-likelihood of validated ``X`` under the decoded-Gaussian model.

    A row with missing entries (NaN) scores the marginal of its observed ones:
    the code is that of the filled row, and the noise term and the Jacobian run
    over the observed coordinates only.
    """
    module = module_on(module, device, dtype=torch.float64)
    width, k = module.bottleneck_width, len(open_units)
    open_units = torch.as_tensor(open_units, device=device)
    mean = torch.as_tensor(code_mean, dtype=torch.float64, device=device)
    variance = torch.as_tensor(code_variance, dtype=torch.float64, device=device)

    def decode_open(z):
        code = torch.zeros(z.shape[0], width, dtype=z.dtype, device=z.device)
        return module.decode(code.index_copy(1, open_units, z))

    scores = np.empty(X.shape[0])
    for rows, batch in dense_batches(X):
        x = as_tensor(batch, device, dtype=np.float64)
        observed = ~torch.isnan(x)
        if bool(observed.all()):
            observed = None
            z = module.encode(x)[:, open_units]
            residual = x - decode_open(z)
            n_observed = x.shape[1]
        else:
            # The marginal of the observed entries: the missing ones drop out of the
            # noise term and out of the Jacobian's rows.
            z = module.encode_incomplete(x)[:, open_units]
            residual = torch.where(observed, x - decode_open(z), 0.0)
            n_observed = observed.sum(1).double()
        log_likelihood = -0.5 * (residual.square().sum(1) / noise_variance + n_observed * math.log(2 * math.pi * noise_variance))
        if k:
            log_likelihood += -0.5 * (((z - mean).square() / variance).sum(1) + torch.log(2 * math.pi * variance).sum())
            J = _decoder_jacobian(decode_open, z)  # (rows, n_features, k)
            if observed is not None:
                J = J * observed[:, :, None]
            curvature = torch.diag_embed(1.0 / variance).expand(x.shape[0], k, k) + J.transpose(1, 2) @ J / noise_variance
            log_likelihood += 0.5 * k * math.log(2 * math.pi) - 0.5 * torch.linalg.slogdet(curvature)[1]
        scores[rows] = log_likelihood.cpu().numpy()
    return scores


def _decoder_jacobian(decode, z):
    """``d decode / d z`` at each row of ``z`` by central differences in float64.

    ``k`` pairs of decodes, exact to about 1e-10 of the decoder's scale: plain
    forward passes, which any module supports.
    """
    step = 1e-5 * (1.0 + z.abs().max())
    columns = []
    for unit in range(z.shape[1]):
        shift = torch.zeros_like(z)
        shift[:, unit] = step
        columns.append((decode(z + shift) - decode(z - shift)) / (2 * step))
    return torch.stack(columns, dim=2)
