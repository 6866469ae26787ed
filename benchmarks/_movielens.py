"""Read MovieLens-100k's ratings from the PyPI package ``recbole``, in memory only.

recbole ships the 100,000 ratings as an example data set
(``recbole/dataset_example/ml-100k/ml-100k.inter``). GroupLens's licence does not
allow redistributing them, so nothing here writes them anywhere: they are read
through :mod:`importlib.resources` straight into arrays. :func:`ensure_installed`
runs ``pip install --no-deps recbole`` when the package is missing (its own
dependencies are not needed to read one file).

F. M. Harper and J. A. Konstan, "The MovieLens Datasets: History and Context",
ACM TiiS 5(4), 2015.
"""

import importlib.resources
import importlib.util
import subprocess
import sys

import numpy as np

PACKAGE = "recbole"
RATINGS = ("dataset_example", "ml-100k", "ml-100k.inter")


def ensure_installed():
    """``pip install --no-deps recbole`` into this interpreter when it is missing."""
    if importlib.util.find_spec(PACKAGE) is None:
        print(f"{PACKAGE} not found; installing it with pip (--no-deps) for MovieLens-100k's ratings.")
        subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", PACKAGE], check=True)
        importlib.invalidate_caches()


def load_ratings():
    """MovieLens-100k as arrays of (user, item, rating), users and items numbered from 0.

    Returns
    -------
    users, items : ndarray of int, shape (100000,)
        Indices ``0..942`` and ``0..1681``, in the order of the original ids.
    ratings : ndarray of float, shape (100000,)
        Ratings on the 1-5 scale.
    """
    resource = importlib.resources.files(PACKAGE).joinpath(*RATINGS)
    with resource.open("r") as stream:
        header = stream.readline().rstrip("\n").split("\t")
        table = np.loadtxt(stream, delimiter="\t", dtype=np.int64)
    columns = {name.split(":")[0]: i for i, name in enumerate(header)}
    _, users = np.unique(table[:, columns["user_id"]], return_inverse=True)
    _, items = np.unique(table[:, columns["item_id"]], return_inverse=True)
    return users, items, table[:, columns["rating"]].astype(float)
