"""skdam: dimensionality reduction that discovers its own number of dimensions.

Scikit-learn estimators around a gated-bottleneck autoencoder trained with
DiscriminAtive Masking (DAM, Bu et al., NeurIPS 2021).
"""

from ._autoencoder import DAMAutoencoder
from ._embedding import DAMEmbedding
from ._plot import GateDisplay, ReconstructionDisplay
from ._reconstruction_curve import reconstruction_curve
from ._training import TrainingDivergedError

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
