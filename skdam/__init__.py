"""skdam: dimensionality reduction that discovers its own number of dimensions.

Scikit-learn estimators around a gated-bottleneck autoencoder trained with
DiscriminAtive Masking (DAM, Bu et al., NeurIPS 2021).
"""

import importlib
from typing import TYPE_CHECKING

__version__ = "0.1.0"

__all__ = [
    "DAMAutoencoder",
    "DAMEmbedding",
    "GateDisplay",
    "ReconstructionDisplay",
    "TrainingDivergedError",
    "reconstruction_curve",
    "__version__",
]

# The module of each public name. They are imported on first use (PEP 562), because
# they import torch, which takes seconds: `skdam --help` and `skdam --version` need
# only this file.
_MODULE_OF = {
    "DAMAutoencoder": "._autoencoder",
    "DAMEmbedding": "._embedding",
    "GateDisplay": "._plot",
    "ReconstructionDisplay": "._reconstruction_display",
    "TrainingDivergedError": "._training",
    "reconstruction_curve": "._reconstruction_curve",
}

if TYPE_CHECKING:  # for type checkers and IDEs, which do not run __getattr__
    from ._autoencoder import DAMAutoencoder
    from ._embedding import DAMEmbedding
    from ._plot import GateDisplay
    from ._reconstruction_display import ReconstructionDisplay
    from ._reconstruction_curve import reconstruction_curve
    from ._training import TrainingDivergedError


def __getattr__(name):
    if name not in _MODULE_OF:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(_MODULE_OF[name], __name__), name)
    globals()[name] = value  # later look-ups skip __getattr__
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))
