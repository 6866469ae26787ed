"""Sphinx configuration of the skdam documentation.

Built with ``make docs``: ``sphinx-build -W --keep-going -b html docs docs/_build/html``.
Every warning fails the build, so the gallery, the API pages and the numpydoc
validation below must all stay clean. No extension here may reach the network
(no intersphinx): the build runs where only package registries are reachable.
"""

import os
import re
import sys

import torch
from threadpoolctl import threadpool_limits

# Import the package from this checkout, whatever is installed, and the helpers
# of this build from sphinxext/.
sys.path.insert(0, os.path.abspath(".."))
sys.path.insert(0, os.path.abspath("sphinxext"))

import skdam  # noqa: E402

project = "skdam"
author = "the skdam developers"
copyright = "2025, the skdam developers"
release = skdam.__version__
version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
    "myst_parser",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
templates_path = ["_templates"]
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store", "auto_examples/*.ipynb", "auto_examples/*.py"]

# -- autodoc / autosummary -------------------------------------------------------

autosummary_generate = True
autodoc_default_options = {"members": True}
# The signature already shows the defaults; numpydoc's Parameters section says the rest.
autodoc_typehints = "none"

# -- numpydoc --------------------------------------------------------------------

# The class template lists the methods itself; numpydoc's own member tables would
# repeat them (and pull in every torch.nn.Module method).
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
# Validate every public docstring that the API pages render. Checks left out:
# ES01 (extended summary), SA01 (See Also) and EX01 (Examples), which the classes
# and functions users start from have, but which would be noise on every method;
# RT02 because, as in scikit-learn, return values are named (``self : object``).
numpydoc_validation_checks = {"all", "ES01", "SA01", "EX01", "RT02"}
numpydoc_validation_exclude = {
    # Inherited from scikit-learn: their docstrings follow scikit-learn's own rules.
    r"\.fit_transform$",
    r"\.get_feature_names_out$",
    r"\.get_metadata_routing$",
    r"\.get_params$",
    r"\.set_output$",
    r"\.set_params$",
    r"\.set_[a-z_]+_request$",
}



def _unlink_scikit_learn_references(app, what, name, obj, options, lines):
    """Turn the ``:ref:`` roles of inherited scikit-learn docstrings into text.

    ``set_output`` and ``get_metadata_routing`` come from scikit-learn, and their
    docstrings point at labels of scikit-learn's own site, which this build cannot
    resolve (it has no network, so no intersphinx).
    """
    if not (getattr(obj, "__module__", None) or "").startswith("sklearn."):
        return
    for index, line in enumerate(lines):
        line = re.sub(r":ref:`([^`<]+?)\s*<[^`>]+>`", r"\1 of scikit-learn", line)
        lines[index] = re.sub(r":ref:`sphx_glr_[^`]+`", "scikit-learn's example gallery", line)


def setup(app):
    # Before numpydoc (priority 500) parses the docstring.
    app.connect("autodoc-process-docstring", _unlink_scikit_learn_references, priority=100)


# -- sphinx-gallery --------------------------------------------------------------

# The examples fit small networks on small data; with more than one thread,
# PyTorch's and the BLAS's worker threads spin against each other on a busy 2-core
# machine and a fit takes up to ten times longer (measured). One thread is as fast
# as two on problems this small, and keeps the build's time predictable.
torch.set_num_threads(1)
threadpool_limits(limits=1)
# A figure per example, drawn off-screen.
os.environ.setdefault("MPLBACKEND", "agg")

sphinx_gallery_conf = {
    "examples_dirs": "../examples",
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",
    "doc_module": ("skdam",),
    "backreferences_dir": "gen_modules/backreferences",
    "reference_url": {"skdam": None},
    "download_all_examples": False,
    "remove_config_comments": True,
    "within_subsection_order": "gallery_order.ExampleOrder",
    # A failing example fails the build.
    "abort_on_example_error": True,
    "only_warn_on_example_error": False,
}

# -- HTML ------------------------------------------------------------------------

html_theme = "pydata_sphinx_theme"
html_title = f"skdam {release}"
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "secondary_sidebar_items": ["page-toc"],
}
html_static_path = []
