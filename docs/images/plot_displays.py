"""Regenerate gate_display.png and reconstruction_display.png for the docs.

Run from the repository root: ``python docs/images/plot_displays.py`` (a few minutes
on a laptop CPU).
"""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402

from skdam import DAMAutoencoder, DAMEmbedding, GateDisplay, ReconstructionDisplay  # noqa: E402
from skdam.datasets import make_mlp_latent  # noqa: E402

HERE = Path(__file__).parent

# The gates of the linear estimator on scikit-learn's digits (8x8 images, 64 pixels).
X_digits, _ = load_digits(return_X_y=True)
display = GateDisplay.from_estimator(DAMEmbedding(random_state=0).fit(X_digits), name="DAMEmbedding on digits")
display.figure_.savefig(HERE / "gate_display.png", dpi=100)
plt.close("all")

# A 4-dimensional curved manifold in 20 dimensions: the autoencoder beside PCA.
X_curved, _ = make_mlp_latent(2000, 4, 20, hidden_size=64, random_state=0)
display = ReconstructionDisplay.from_estimator(
    DAMAutoencoder(hidden_layer_sizes=(64,), random_state=0), X_curved, name="DAMAutoencoder"
)
display.ax_.set_title("4-dimensional curved manifold in 20 dimensions")
display.figure_.savefig(HERE / "reconstruction_display.png", dpi=100)
plt.close("all")
print(display.n_components, display.reconstruction_error.round(4), display.pca_reconstruction_error.round(4))
print("found", display.found_n_components, round(display.found_reconstruction_error, 4))
