"""Read Fashion-MNIST from the Debian package ``dataset-fashion-mnist``.

Nothing here downloads or installs anything. The files come from
``apt-get install dataset-fashion-mnist``, which puts the four IDX files (gzipped)
under ``/usr/share/datasets/fashion-mnist/``; a benchmark that needs them calls
:func:`ensure_installed` first, which runs apt-get only when they are missing.

Images are scaled to ``[-1, 1]``, as the DAM paper did for MNIST (its decoder ends
in ``tanh``).
"""

import gzip
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np

DEFAULT_DIRECTORY = Path(os.environ.get("FASHION_MNIST_DIR", "/usr/share/datasets/fashion-mnist"))
DEBIAN_PACKAGE = "dataset-fashion-mnist"
_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


class FashionMNISTMissingError(FileNotFoundError):
    """The IDX files are not where the Debian package puts them."""


def _find(directory, name):
    for candidate in (directory / name, directory / f"{name}.gz"):
        if candidate.exists():
            return candidate
    raise FashionMNISTMissingError(
        f"Fashion-MNIST file {name}[.gz] not found in {directory}. Install it with "
        f"`apt-get update && apt-get install -y {DEBIAN_PACKAGE}` (Debian/Ubuntu), or point "
        "the FASHION_MNIST_DIR environment variable at a folder holding the four IDX files."
    )


def _read_idx(path):
    """Read one IDX file (big-endian header: magic, then one uint32 per dimension)."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as stream:
        data = stream.read()
    magic = int.from_bytes(data[:4], "big")
    if magic >> 8 != 0x08:  # 0x08: unsigned bytes, the only type Fashion-MNIST uses
        raise ValueError(f"{path} is not an IDX file of unsigned bytes (magic {magic:#x}).")
    n_dimensions = magic & 0xFF
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(n_dimensions))
    offset = 4 + 4 * n_dimensions
    return np.frombuffer(data, dtype=np.uint8, offset=offset).reshape(shape)


def ensure_installed(directory=DEFAULT_DIRECTORY):
    """Install the Debian package when the files are missing (needs root and apt)."""
    try:
        for names in _FILES.values():
            for name in names:
                _find(Path(directory), name)
        return
    except FashionMNISTMissingError:
        if shutil.which("apt-get") is None:
            raise
    print(f"Fashion-MNIST not found in {directory}; installing {DEBIAN_PACKAGE} with apt-get.")
    subprocess.run(["apt-get", "update"], check=True)
    subprocess.run(["apt-get", "install", "-y", DEBIAN_PACKAGE], check=True)


def load_fashion_mnist(split="train", directory=DEFAULT_DIRECTORY, dtype=np.float32):
    """Images as rows scaled to ``[-1, 1]`` and their labels.

    Parameters
    ----------
    split : {"train", "test"}
        60000 training or 10000 test images.
    directory : path-like
        Where the IDX files are (gzipped or not).
    dtype : numpy dtype, default=np.float32

    Returns
    -------
    X : ndarray of shape (n_images, 784)
        Pixel ``p`` in ``0..255`` becomes ``p / 127.5 - 1``.
    y : ndarray of shape (n_images,)
        Class labels 0..9.
    """
    if split not in _FILES:
        raise ValueError(f"split must be 'train' or 'test', got {split!r}.")
    directory = Path(directory)
    images_name, labels_name = _FILES[split]
    images = _read_idx(_find(directory, images_name))
    labels = _read_idx(_find(directory, labels_name))
    X = images.reshape(images.shape[0], -1).astype(dtype) / dtype(127.5) - dtype(1.0)
    return X, labels.astype(np.int64)
