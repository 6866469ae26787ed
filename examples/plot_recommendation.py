"""
==============================================
Completing a matrix of ratings
==============================================

A rating matrix is data with holes: each user rates a few items, and a recommender
predicts the rest. skdam's estimators accept NaN, so the matrix goes in as it is,
and ``complete`` fills the holes while keeping every observed rating. Here the
ratings are synthetic (300 users, 200 items, 1 to 5 stars, a quarter of them
observed): a global mean, a taste of each user and an appeal of each item, plus 4
latent factors and noise. The recipe is the one ``benchmarks/recommendation.py``
runs on MovieLens-100k: remove the user and item biases, let
:class:`~skdam.DAMEmbedding` complete what they leave (and find how many factors
it needs), add the biases back and clip to the scale.
"""

# %%
# Synthetic ratings with 4 latent factors
# ---------------------------------------
import matplotlib.pyplot as plt
import numpy as np

from skdam import DAMEmbedding

rng = np.random.RandomState(0)
n_users, n_items, n_factors = 300, 200, 4
user_bias = rng.normal(scale=0.4, size=(n_users, 1))
item_bias = rng.normal(scale=0.4, size=(1, n_items))
factors = rng.normal(scale=0.45, size=(n_users, n_factors)) @ rng.normal(size=(n_factors, n_items))
true = 3.5 + user_bias + item_bias + factors
ratings = np.clip(np.round(true + rng.normal(scale=0.5, size=true.shape)), 1, 5)

observed = rng.uniform(size=ratings.shape) < 0.25
test = ~observed
R = np.where(observed, ratings, np.nan)  # rows are users, NaN where unrated
print(f"{observed.sum()} observed ratings of {R.size}; {test.sum()} to predict")

# %%
# Biases, then the estimator on what they leave
# ---------------------------------------------
# The biases are regularised means, fitted by a few alternating sweeps; what they
# leave is a matrix with holes whose structure is the latent factors.


def fit_biases(R, regularization=3.0, n_sweeps=10):
    seen = ~np.isnan(R)
    mean = np.nanmean(R)
    residual = np.where(seen, R - mean, 0.0)
    rows, columns = np.zeros(R.shape[0]), np.zeros(R.shape[1])
    for _ in range(n_sweeps):
        rows = (residual - seen * columns).sum(axis=1) / (seen.sum(axis=1) + regularization)
        columns = (residual - seen * rows[:, None]).sum(axis=0) / (seen.sum(axis=0) + regularization)
    return mean + rows[:, None] + columns[None, :]


biases = fit_biases(R)
embedding = DAMEmbedding(random_state=0).fit(R - biases)
predicted = np.clip(biases + embedding.complete(R - biases), 1, 5)
print(f"factors found: {embedding.n_components_} (planted: {n_factors})")
assert np.array_equal(predicted[observed], ratings[observed])  # observed ratings kept


def rmse(estimate):
    return np.sqrt(np.mean((estimate[test] - ratings[test]) ** 2))


errors = {
    "global mean": rmse(np.full(R.shape, np.nanmean(R))),
    "user + item biases": rmse(np.clip(biases, 1, 5)),
    "biases + DAMEmbedding": rmse(predicted),
    "noise floor (true ratings)": rmse(np.clip(true, 1, 5)),
}
for name, error in errors.items():
    print(f"{name:>28}: test RMSE {error:.3f}")

# %%
# The held-out error
# ------------------
# The noise floor is what the noise-free ratings themselves would score: no method
# can go below it.
fig, ax = plt.subplots(figsize=(6, 2.8))
ax.barh(list(errors), list(errors.values()), color=["0.6", "0.6", "tab:blue", "0.85"])
ax.invert_yaxis()
ax.set_xlabel("RMSE on the unobserved ratings (stars)")
ax.set_title(f"DAMEmbedding found {embedding.n_components_} factors")
fig.tight_layout()
plt.show()
