"""
=====================================
DAM against PCA on a curved manifold
=====================================

Data that lies on a curved, 5-dimensional manifold inside 50 dimensions is hard for
PCA twice over: at 5 components its reconstruction misses the curvature, and its own
guess of the dimension, ``PCA(n_components="mle")``, is far off.
:class:`~skdam.DAMAutoencoder` discovers the dimension and reconstructs better at it;
:class:`~skdam.DAMEmbedding`, the linear estimator, sits where PCA is.
"""

# %%
# Data of known dimension
# -----------------------
# :func:`skdam.datasets.make_mlp_latent` draws 5 Gaussian latent variables and maps
# them to 50 features through a random one-hidden-layer ELU network, as in the DAM
# paper's "MLP kernel" experiment (smaller here, to run in seconds).
import matplotlib.pyplot as plt
import numpy as np
from sklearn.decomposition import PCA
from sklearn.model_selection import train_test_split

from skdam import DAMAutoencoder, DAMEmbedding
from skdam.datasets import make_mlp_latent

TRUE_DIMENSION = 5
X, latent = make_mlp_latent(n_samples=2000, n_components=TRUE_DIMENSION, n_features=50, random_state=0)
X_train, X_test = train_test_split(X, test_size=0.25, random_state=0)

# %%
# Fit the estimators
# ------------------
# Both DAM estimators use the default ``alpha=0.01``: a unit stays when dropping it,
# once the network has adapted, would raise the unexplained share of the variance by
# more than 1 %. The autoencoder gets a small perceptron
# and a bounded number of epochs so that the example runs in seconds.
embedding = DAMEmbedding(random_state=0).fit(X_train)
autoencoder = DAMAutoencoder(hidden_layer_sizes=(128,), batch_size=128, max_iter=100, random_state=0)
autoencoder.fit(X_train)
pca_mle = PCA(n_components="mle").fit(X_train)


def pca_test_error(n_components):
    """Unexplained share of the test variance, 1 - R^2, of PCA at a given size."""
    pca = PCA(n_components=n_components).fit(X_train)
    reconstruction = pca.inverse_transform(pca.transform(X_test))
    return np.square(X_test - reconstruction).sum() / np.square(X_test - X_test.mean(axis=0)).sum()


print(f"true dimension:           {TRUE_DIMENSION}")
print(f'PCA(n_components="mle"):  {pca_mle.n_components_}')
print(f"DAMEmbedding:             {embedding.n_components_}")
print(f"DAMAutoencoder:           {autoencoder.n_components_}")
print()
for name, estimator in [("DAMEmbedding", embedding), ("DAMAutoencoder", autoencoder)]:
    k = estimator.n_components_
    print(
        f"{name:15s} test error 1 - R^2 = {1 - estimator.r2_score(X_test):.4f} "
        f"at {k} dimensions; PCA at {k}: {pca_test_error(k):.4f}"
    )

# %%
# ``PCA("mle")`` counts almost every direction of the curved data as signal.
# ``DAMEmbedding`` keeps exactly the principal components that explain more than
# ``alpha`` of the variance (the right panel below); its ``unexplained_variance_``
# holds the error at every count, so another ``alpha`` needs no refit.

# %%
# Reconstruction error at the same dimension
# ------------------------------------------
# The curve is PCA's test error at every size. Each marker is a DAM estimator, at
# the dimension it chose: the linear :class:`~skdam.DAMEmbedding` lands on PCA's
# curve (it *is* PCA once its rank is chosen), while the autoencoder, which learns
# the curvature, reconstructs better than PCA at the same size.
#
# The right panel is the rule behind ``alpha`` for a linear model: the adapted error
# of ``k`` components is PCA's, so a component is kept when it explains more than
# ``alpha`` of the variance, above the dashed line.
sizes = np.arange(1, 16)
fig, (ax_error, ax_ratio) = plt.subplots(1, 2, figsize=(11, 4.2))
ax_error.plot(sizes, [pca_test_error(k) for k in sizes], "o-", color="0.5", label="PCA")
for estimator, marker, color in [(embedding, "s", "tab:blue"), (autoencoder, "D", "tab:red")]:
    ax_error.plot(
        estimator.n_components_,
        1 - estimator.r2_score(X_test),
        marker,
        color=color,
        markersize=10,
        label=f"{type(estimator).__name__} ({estimator.n_components_} dims)",
    )
ax_error.axvline(TRUE_DIMENSION, color="k", linestyle=":", label="true dimension")
ax_error.set(xlabel="dimensions", ylabel="test error, 1 - R$^2$", yscale="log", title="Reconstruction error")
ax_error.legend()

ratios = PCA(n_components=15).fit(X_train).explained_variance_ratio_
ax_ratio.bar(sizes, ratios, color=np.where(ratios > embedding.alpha, "tab:blue", "0.75"))
ax_ratio.axhline(embedding.alpha, color="k", linestyle="--", label=f"alpha = {embedding.alpha}")
ax_ratio.set(
    xlabel="principal component",
    ylabel="explained variance ratio",
    yscale="log",
    title=f"PCA's spectrum: {int((ratios > embedding.alpha).sum())} components above alpha",
)
ax_ratio.legend()
fig.tight_layout()

# %%
# How the gates closed
# --------------------
# ``n_components_curve_`` records the open gates after each epoch. Both estimators
# start from the truncated SVD with every gate open and close the weakest units
# first; the autoencoder keeps its gates open for two warm-up epochs.
fig, ax = plt.subplots(figsize=(6, 4))
for estimator, color in [(embedding, "tab:blue"), (autoencoder, "tab:red")]:
    curve = estimator.n_components_curve_
    ax.plot(np.arange(1, len(curve) + 1), curve, color=color, label=type(estimator).__name__)
ax.axhline(TRUE_DIMENSION, color="k", linestyle=":", label="true dimension")
ax.set(xlabel="epoch", ylabel="open gates", yscale="log", title="Open gates during training")
ax.legend()
fig.tight_layout()
plt.show()
