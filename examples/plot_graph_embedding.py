"""
=====================================================
Embedding a graph's nodes, with the dimension found
=====================================================

A node is a row of the graph's adjacency matrix: :class:`~skdam.DAMEmbedding`
embeds the rows and finds how many dimensions the communities need. Here, a
stochastic block model with six planted blocks of nodes, and Zachary's karate club.

Two choices make it work. The rows are those of the normalised adjacency
``D^-1/2 A D^-1/2``, each scaled to unit length, so that a node's degree does not
decide where it lands. And ``alpha``, the share of the variance a kept direction must
explain, is set to ``4 / n_nodes``: in a random graph of ``n`` nodes the strongest
noise direction explains about ``4 / n`` of the variance, so a direction above it
stands out of the noise. The default ``alpha=0.01`` is too high for graphs of many
small communities and too low for graphs under 400 nodes.
"""

# %%
# A stochastic block model
# ------------------------
# 600 nodes in 6 blocks of 100; an edge within a block with probability 0.25, between
# blocks 0.05.
import matplotlib.pyplot as plt
import networkx as nx
import numpy as np
from sklearn.cluster import KMeans
from sklearn.metrics import normalized_mutual_info_score

from skdam import DAMEmbedding


def normalised_rows(adjacency):
    """``D^-1/2 A D^-1/2`` with every row scaled to unit length."""
    inverse_root = 1.0 / np.sqrt(np.maximum(adjacency.sum(axis=1), 1.0))
    normalised = adjacency * inverse_root[:, None] * inverse_root[None, :]
    return normalised / np.maximum(np.linalg.norm(normalised, axis=1, keepdims=True), 1e-12)


n_blocks, block_size = 6, 100
probabilities = np.full((n_blocks, n_blocks), 0.05)
np.fill_diagonal(probabilities, 0.25)
graph = nx.stochastic_block_model([block_size] * n_blocks, probabilities.tolist(), seed=0)
blocks = np.repeat(np.arange(n_blocks), block_size)
X = normalised_rows(nx.to_numpy_array(graph, weight=None))

embedding = DAMEmbedding(alpha=4 / len(X), random_state=0).fit(X)
print(f"dimension found: {embedding.n_components_} for {n_blocks} blocks")

# %%
# Centring the rows removes the direction every node shares, so ``k`` blocks leave
# ``k - 1`` directions: the five that stand above ``4 / n``.
shares = -np.diff(embedding.unexplained_variance_)[:15]
fig, ax = plt.subplots(figsize=(6, 3))
ax.bar(np.arange(1, len(shares) + 1), 100 * shares, color=["tab:blue"] * embedding.n_components_
       + ["tab:gray"] * (len(shares) - embedding.n_components_))
ax.axhline(100 * 4 / len(X), color="tab:red", linestyle="--", label="alpha = 4 / n")
ax.set(xlabel="principal direction", ylabel="% of the variance", title="Kept (blue) and dropped directions")
ax.legend()
fig.tight_layout()

# %%
# The embedding separates the blocks; KMeans on it recovers them as spectral
# clustering would.
Z = embedding.transform(X)
predicted = KMeans(n_blocks, n_init=10, random_state=0).fit_predict(Z)
print(f"NMI of KMeans({n_blocks}) on the embedding: {normalized_mutual_info_score(blocks, predicted):.3f}")

fig, ax = plt.subplots(figsize=(5, 4.5))
ax.scatter(Z[:, 0], Z[:, 1], c=blocks, cmap="tab10", s=8)
ax.set(xlabel="component 1", ylabel="component 2", title="Block model, first two components")

# %%
# Zachary's karate club
# ---------------------
# 34 members of a club that split in two. The club's two leaders are hubs; in the
# raw adjacency they dominate the variance, which is why the rows are normalised.
club = nx.karate_club_graph()
factions = np.array([club.nodes[node]["club"] == "Officer" for node in club], dtype=int)
X_club = normalised_rows(nx.to_numpy_array(club, weight=None))
club_embedding = DAMEmbedding(alpha=4 / len(X_club), random_state=0).fit(X_club)
Z_club = club_embedding.transform(X_club)
predicted = KMeans(2, n_init=10, random_state=0).fit_predict(Z_club)
print(f"karate club: dimension found {club_embedding.n_components_}, "
      f"NMI of KMeans(2) against the two clubs {normalized_mutual_info_score(factions, predicted):.3f}")

fig, ax = plt.subplots(figsize=(5, 4.5))
second = Z_club[:, 1] if club_embedding.n_components_ > 1 else np.zeros(len(Z_club))
ax.scatter(Z_club[:, 0], second, c=factions, cmap="coolwarm", s=40)
for node in (0, 33):
    ax.annotate("leader", (Z_club[node, 0], second[node]))
ax.set(xlabel="component 1", ylabel="component 2", title="Karate club, coloured by the club members joined")
plt.show()
