"""
=====================================
Compressing Fashion-MNIST images
=====================================

Images of clothing, 28 x 28 pixels, compressed by
:class:`~skdam.DAMAutoencoder` to the number of dimensions it finds, and by PCA at
the same number. The autoencoder keeps more of each garment's shape at equal size.

The images come from the Debian package ``dataset-fashion-mnist``
(``apt-get install dataset-fashion-mnist``), which installs them under
``/usr/share/datasets/fashion-mnist/``; nothing is downloaded. Where the package
is missing, the example falls back to scikit-learn's bundled 8 x 8 digits and says
so. A subset of 2000 training and 500 test images keeps it to seconds.
"""

# %%
# Reading the IDX files
# ---------------------
# Fashion-MNIST ships in the IDX format of MNIST, gzipped: a 4-byte magic number
# (two zero bytes, a type code, 0x08 for unsigned bytes, and the number of
# dimensions), one big-endian 32-bit size per dimension, then the raw values.
import gzip
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from sklearn.decomposition import PCA
from sklearn.model_selection import train_test_split

from skdam import DAMAutoencoder, DAMEmbedding

FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
CLASS_NAMES = ["T-shirt", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Boot"]


def read_idx(path):
    """Read an IDX file of unsigned bytes, gzipped or not, into an array."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as file:
        data = file.read()
    zeros, type_code, n_dimensions = data[:2], data[2], data[3]
    if zeros != b"\x00\x00" or type_code != 0x08:
        raise ValueError(f"{path} is not an IDX file of unsigned bytes.")
    shape = np.frombuffer(data, dtype=">u4", count=n_dimensions, offset=4)
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * n_dimensions).reshape(shape)


def find_idx(directory, stem):
    """The IDX file ``stem``, gzipped or not, in ``directory``, or None."""
    for name in (f"{stem}.gz", stem):
        if (directory / name).is_file():
            return directory / name
    return None


def load_fashion_mnist(n_train, n_test, random_state):
    """A random subset of Fashion-MNIST, pixels scaled to [0, 1], or None if absent."""
    stems = ["train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"]
    paths = [find_idx(FASHION_MNIST_DIR, stem) for stem in stems]
    if any(path is None for path in paths):
        return None
    train_images, train_labels, test_images, test_labels = (read_idx(path) for path in paths)
    rng = np.random.RandomState(random_state)
    train_rows = rng.choice(len(train_images), n_train, replace=False)
    test_rows = rng.choice(len(test_images), n_test, replace=False)
    return (
        train_images[train_rows].reshape(n_train, -1) / 255.0,
        test_images[test_rows].reshape(n_test, -1) / 255.0,
        test_labels[test_rows],
        train_images.shape[1:],
    )


data = load_fashion_mnist(n_train=2000, n_test=500, random_state=0)
if data is not None:
    X_train, X_test, test_labels, image_shape = data
    label_names = CLASS_NAMES
    print(f"Fashion-MNIST from {FASHION_MNIST_DIR}: {X_train.shape[0]} training and {X_test.shape[0]} test images")
else:
    from sklearn.datasets import load_digits

    print(
        f"Note: Fashion-MNIST is not installed ({FASHION_MNIST_DIR} is missing; "
        "apt-get install dataset-fashion-mnist provides it). Using scikit-learn's 8 x 8 digits instead."
    )
    digits = load_digits()
    X_train, X_test, _, test_labels = train_test_split(
        digits.data / 16.0, digits.target, test_size=500, random_state=0
    )
    image_shape = digits.images.shape[1:]
    label_names = [str(digit) for digit in range(10)]

# %%
# Fit and compare at the same dimension
# -------------------------------------
# ``DAMAutoencoder`` chooses its dimension; PCA gets the same number of components.
# :class:`~skdam.DAMEmbedding` shows where the linear model stops with the same
# ``alpha``.
autoencoder = DAMAutoencoder(hidden_layer_sizes=(128,), batch_size=128, max_iter=150, random_state=0)
autoencoder.fit(X_train)
embedding = DAMEmbedding(random_state=0).fit(X_train)
n_components = autoencoder.n_components_
pca = PCA(n_components=n_components).fit(X_train)


def test_error(reconstruction):
    """Unexplained share of the test variance, 1 - R^2."""
    return np.square(X_test - reconstruction).sum() / np.square(X_test - X_test.mean(axis=0)).sum()


autoencoder_reconstruction = autoencoder.inverse_transform(autoencoder.transform(X_test))
pca_reconstruction = pca.inverse_transform(pca.transform(X_test))
print(f"DAMAutoencoder: {n_components} dimensions, test error {test_error(autoencoder_reconstruction):.4f}")
print(f"PCA({n_components}):        test error {test_error(pca_reconstruction):.4f}")
print(f"DAMEmbedding:   {embedding.n_components_} dimensions, test error {1 - embedding.r2_score(X_test):.4f}")
print(f"epochs: {autoencoder.n_iter_} ({autoencoder.stop_reason_})")

# %%
# Reconstructions
# ---------------
# One test image of each class: the original, then its reconstruction from
# ``n_components`` numbers by PCA and by the autoencoder.
columns = [np.flatnonzero(test_labels == label)[0] for label in np.unique(test_labels)]
rows = [("original", X_test), (f"PCA ({n_components})", pca_reconstruction),
        (f"DAMAutoencoder ({n_components})", autoencoder_reconstruction)]
fig, axes = plt.subplots(len(rows), len(columns), figsize=(1.3 * len(columns), 1.5 * len(rows)))
for row, (title, images) in enumerate(rows):
    for column, index in enumerate(columns):
        ax = axes[row, column]
        ax.imshow(images[index].reshape(image_shape), cmap="gray_r", vmin=0, vmax=1)
        ax.set_xticks([])
        ax.set_yticks([])
        if row == 0:
            ax.set_title(label_names[test_labels[index]], fontsize=9)
        if column == 0:
            ax.set_ylabel(title, fontsize=8)
fig.suptitle(f"Test images compressed to {n_components} dimensions")
fig.tight_layout()

# %%
# Error against dimension
# -----------------------
# PCA's test error at every size, and each DAM estimator at the size it chose.
sizes = np.unique(np.linspace(1, max(embedding.n_components_, n_components) + 10, 15).astype(int))
pca_errors = []
for k in sizes:
    pca_k = PCA(n_components=k).fit(X_train)
    pca_errors.append(test_error(pca_k.inverse_transform(pca_k.transform(X_test))))
fig, ax = plt.subplots(figsize=(6, 4))
ax.plot(sizes, pca_errors, "o-", color="0.5", label="PCA")
ax.plot(embedding.n_components_, 1 - embedding.r2_score(X_test), "s", color="tab:blue", markersize=10,
        label=f"DAMEmbedding ({embedding.n_components_} dims)")
ax.plot(n_components, test_error(autoencoder_reconstruction), "D", color="tab:red", markersize=10,
        label=f"DAMAutoencoder ({n_components} dims)")
ax.set(xlabel="dimensions", ylabel="test error, 1 - R$^2$", title="Reconstruction error")
ax.legend()
fig.tight_layout()
plt.show()
