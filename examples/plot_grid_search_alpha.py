"""
=========================================
Tuning ``alpha`` with a grid search
=========================================

skdam's estimators are ordinary scikit-learn transformers, so the regularization
strength ``alpha`` can be tuned like any other hyper-parameter, with labels or
without. With labels: a :class:`~sklearn.model_selection.GridSearchCV` over a
pipeline that scales the digits, embeds them with :class:`~skdam.DAMEmbedding` and
classifies the embedding; a second scorer records the dimension found in every
fold, so the search also shows how ``alpha`` trades dimensions for accuracy.
Without labels: the same search over the embedding alone, scored by its
``score``, the log-likelihood of the held-out rows, as for PCA's
``n_components``.
"""

# %%
# The pipeline and the search
# ---------------------------
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, KFold, StratifiedKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skdam import DAMEmbedding

X, y = load_digits(return_X_y=True)


def embedding_dimension(pipeline, X, y):
    """A 'score' that reads the dimension the pipeline's reducer kept in this fold."""
    return pipeline[1].n_components_


pipeline = make_pipeline(StandardScaler(), DAMEmbedding(random_state=0), LogisticRegression(max_iter=500))
alphas = [0.003, 0.01, 0.03, 0.1]
cv = StratifiedKFold(n_splits=3, shuffle=True, random_state=0)
search = GridSearchCV(
    pipeline,
    {"damembedding__alpha": alphas},
    scoring={"accuracy": "accuracy", "dimension": embedding_dimension},
    refit="accuracy",
    cv=cv,
)
search.fit(X, y)

results = pd.DataFrame(search.cv_results_)
table = results[["param_damembedding__alpha", "mean_test_accuracy", "std_test_accuracy", "mean_test_dimension"]]
print(table.rename(columns=lambda name: name.replace("param_damembedding__", "")).to_string(index=False))
print(f"\nbest alpha: {search.best_params_['damembedding__alpha']}, "
      f"dimension of the refitted pipeline: {search.best_estimator_[1].n_components_}")

# %%
# Without labels
# --------------
# ``score`` is the mean log-likelihood of the rows under the probabilistic PCA model
# of the fit (``PCA(n_components_).score``): a model with too few components leaves
# structure in its noise, one with too many spends density where held-out rows do
# not vary. So the search needs no ``y`` and no ``scoring``; ``r2_score`` would
# always prefer the smallest ``alpha``, since the reconstruction only improves with
# more components.
unsupervised = GridSearchCV(
    make_pipeline(StandardScaler(), DAMEmbedding(random_state=0)),
    {"damembedding__alpha": alphas},
    cv=KFold(n_splits=3, shuffle=True, random_state=0),
)
unsupervised.fit(X)
print("held-out log-likelihood per alpha:", unsupervised.cv_results_["mean_test_score"].round(1))
print(f"best alpha without labels: {unsupervised.best_params_['damembedding__alpha']}, "
      f"n_components_ of the refitted embedding: {unsupervised.best_estimator_[1].n_components_}")

# %%
# PCA at every size, for reference
# --------------------------------
# The same pipeline with :class:`~sklearn.decomposition.PCA`, searched over the
# number of components, shows what each dimension is worth to the classifier.
pca_pipeline = make_pipeline(StandardScaler(), PCA(), LogisticRegression(max_iter=500))
pca_sizes = [2, 5, 10, 20, 30, 45]
pca_search = GridSearchCV(pca_pipeline, {"pca__n_components": pca_sizes}, scoring="accuracy", cv=cv).fit(X, y)

# %%
# Dimension and accuracy against ``alpha``
# ----------------------------------------
# A larger ``alpha`` asks more of every dimension, so fewer stay. The left panel
# shows the mean dimension found over the folds (bars) and the cross-validated
# accuracy (line). On the right, each DAM fit is placed at the dimension it found,
# beside PCA's curve: the linear embedding is PCA once its rank is chosen, and
# ``alpha`` chooses it.
fig, (ax_alpha, ax_size) = plt.subplots(1, 2, figsize=(11, 4.2))
positions = np.arange(len(alphas))
ax_alpha.bar(positions, results["mean_test_dimension"], color="tab:blue", alpha=0.35)
ax_alpha.set_xticks(positions, [str(alpha) for alpha in alphas])
ax_alpha.set(xlabel="alpha", title="DAMEmbedding in a grid search")
ax_alpha.set_ylabel("dimension found (mean over folds)", color="tab:blue")
ax_accuracy = ax_alpha.twinx()
ax_accuracy.errorbar(
    positions, results["mean_test_accuracy"], yerr=results["std_test_accuracy"], color="k", marker="o", capsize=3
)
ax_accuracy.set_ylabel("cross-validated accuracy")
best = results["rank_test_accuracy"].idxmin()
ax_accuracy.annotate("best", (positions[best], results["mean_test_accuracy"][best]), textcoords="offset points",
                     xytext=(0, -16), ha="center")

ax_size.plot(pca_sizes, pca_search.cv_results_["mean_test_score"], "o-", color="0.5", label="PCA")
ax_size.plot(results["mean_test_dimension"], results["mean_test_accuracy"], "s", color="tab:blue", markersize=9,
             label="DAMEmbedding")
for alpha, dimension, accuracy in zip(alphas, results["mean_test_dimension"], results["mean_test_accuracy"]):
    ax_size.annotate(f"alpha={alpha}", (dimension, accuracy), textcoords="offset points", xytext=(8, -2), va="center", fontsize=8)
ax_size.set(xlabel="dimensions", ylabel="cross-validated accuracy", title="Accuracy against dimension", xlim=(0, 60))
ax_size.legend(loc="lower right")
fig.tight_layout()
plt.show()
