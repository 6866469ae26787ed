"""
=====================================
Completing digits with missing pixels
=====================================

:class:`~skdam.DAMEmbedding` fits data with missing values (NaN) as they are: its
loss counts the observed entries only, and it discovers the dimension from them.
:meth:`~skdam.DAMEmbedding.complete` then fills each hole with the model's
expectation of it given the row's observed entries, and leaves every observed entry
as it was. Here 30 % of the pixels of the digits are removed completely at random,
and the holes are filled by the model, by the column means and by the nearest
neighbours.
"""

# %%
# Remove 30 % of the pixels
# -------------------------
import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.impute import KNNImputer, SimpleImputer

from skdam import DAMEmbedding

X = load_digits().data
rng = np.random.RandomState(0)
holes = rng.uniform(size=X.shape) < 0.3
X_missing = np.where(holes, np.nan, X)
print(f"{holes.mean():.1%} of {X.size} pixels missing")

# %%
# Fit on the incomplete data and complete it
# ------------------------------------------
# No imputation first: the model's mean and scale come from the observed pixels, its
# principal axes from probabilistic PCA's EM on them, and the rule of ``alpha``
# (a dimension is kept when it explains more than ``alpha`` of the variance) holds on
# that fitted covariance.
embedding = DAMEmbedding(random_state=0).fit(X_missing)
completions = {
    "DAMEmbedding.complete": embedding.complete(X_missing),
    "SimpleImputer (mean)": SimpleImputer().fit_transform(X_missing),
    "KNNImputer (5 neighbours)": KNNImputer().fit_transform(X_missing),
}
assert np.array_equal(completions["DAMEmbedding.complete"][~holes], X[~holes])  # observed pixels kept
print(f"dimension found: {embedding.n_components_}")
for name, completed in completions.items():
    error = np.sqrt(np.mean(np.square(completed[holes] - X[holes])))
    print(f"{name:26s} error on the missing pixels (RMSE, of 0-16): {error:.2f}")

# %%
# The linear model fills the holes far better than the mean. The nearest neighbours
# do better still on digits, whose classes are clusters rather than one linear
# subspace. :class:`~skdam.DAMAutoencoder` takes NaN in the same way and, with its
# alpha chosen on held-out entries, fills digits' holes better than the nearest
# neighbours, at a far higher cost (see :doc:`/missing-values`).
#
# A few completed digits
# ----------------------
# Missing pixels are shown in red in the middle row; the bottom row is the model's
# completion, whose observed pixels are the original ones.
shown = [0, 1, 2, 3, 4, 5]
fig, axes = plt.subplots(3, len(shown), figsize=(1.6 * len(shown), 5.2))
for column, row in enumerate(shown):
    masked = np.ma.masked_array(X_missing[row].reshape(8, 8), holes[row].reshape(8, 8))
    axes[0, column].imshow(X[row].reshape(8, 8), cmap="gray_r", vmin=0, vmax=16)
    axes[1, column].imshow(np.where(holes[row], 1, 0).reshape(8, 8), cmap="Reds", vmin=0, vmax=1.5)
    axes[1, column].imshow(masked, cmap="gray_r", vmin=0, vmax=16)
    axes[2, column].imshow(completions["DAMEmbedding.complete"][row].reshape(8, 8), cmap="gray_r", vmin=0, vmax=16)
for axis in axes.ravel():
    axis.set_xticks([])
    axis.set_yticks([])
for axis, label in zip(axes[:, 0], ["original", "30 % missing", "completed"]):
    axis.set_ylabel(label)
fig.tight_layout()
plt.show()
