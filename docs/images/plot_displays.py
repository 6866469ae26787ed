"""Regenerate gate_display.png, measured_curve_display.png and reconstruction_display.png for the docs.

Run from the repository root: ``PYTHONPATH=. python docs/images/plot_displays.py``
(under a minute on a laptop CPU); ``PYTHONPATH=.`` draws with this checkout's skdam
rather than an installed one.
"""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402

from skdam import DAMAutoencoder, DAMEmbedding, GateDisplay, ReconstructionDisplay  # noqa: E402
from skdam.datasets import make_mlp_latent  # noqa: E402

HERE = Path(__file__).parent

# The gates of the linear estimator on scikit-learn's digits (8x8 images, 64 pixels),
# on the training split of docs/getting_started.rst.
X_digits, _ = load_digits(return_X_y=True)
X_train, _ = train_test_split(X_digits, random_state=0)
display = GateDisplay.from_estimator(DAMEmbedding(random_state=0).fit(X_train), name="DAMEmbedding on digits")
display.figure_.savefig(HERE / "gate_display.png", dpi=100)
plt.close("all")

# The curve the linear fit measured on the same split, every count PCA's closed form,
# and the gains against alpha that decide its count: no refit.
display = ReconstructionDisplay.from_estimator(DAMEmbedding(random_state=0).fit(X_train), name="DAMEmbedding on digits")
display.figure_.savefig(HERE / "measured_curve_display.png", dpi=100)
plt.close("all")

# A 4-dimensional curved manifold in 20 dimensions: the fitted autoencoder, starred on
# the errors of its refits at other dimensions, beside PCA and the points its fit measured.
X_curved, _ = make_mlp_latent(2000, 4, 20, hidden_size=64, random_state=0)
autoencoder = DAMAutoencoder(hidden_layer_sizes=(64,), random_state=0).fit(X_curved)
display = ReconstructionDisplay.from_estimator(autoencoder, X_curved)
display.error_ax_.set_title("4-dimensional curved manifold in 20 dimensions")
display.figure_.savefig(HERE / "reconstruction_display.png", dpi=100)
plt.close("all")
print(display.n_components, display.reconstruction_error.round(4), display.pca_reconstruction_error.round(4))
print("measured", display.measured_n_components, display.measured_reconstruction_error.round(4))
print("fitted", display.found_n_components, round(display.found_reconstruction_error, 4))
