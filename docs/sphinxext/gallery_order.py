"""The order of the examples in the gallery: from the first fit to the PyTorch layer.

sphinx-gallery needs the sort key as an importable name (a callable in conf.py
could not be cached with the environment).
"""

from pathlib import Path

#: Examples in reading order; any other example follows, by file name.
EXAMPLE_ORDER = [
    "plot_pca_comparison.py",
    "plot_grid_search_alpha.py",
    "plot_fashion_mnist.py",
    "plot_missing_values.py",
    "plot_recommendation.py",
    "plot_graph_embedding.py",
    "plot_prune_networks.py",
]


class ExampleOrder:
    """Sort key for ``within_subsection_order``: the position in ``EXAMPLE_ORDER``.

    Parameters
    ----------
    src_dir : str or pathlib.Path
        The gallery's source folder (sphinx-gallery passes it; unused).
    """

    def __init__(self, src_dir):
        self.src_dir = src_dir

    def __repr__(self):
        # sphinx-gallery compares configurations by repr to decide on a rebuild.
        return f"<{type(self).__name__}>"

    def __call__(self, filename):
        name = Path(filename).name
        if name in EXAMPLE_ORDER:
            return (EXAMPLE_ORDER.index(name), name)
        return (len(EXAMPLE_ORDER), name)
