"""DAM for PyTorch users: the gate as a module, and the gated autoencoder."""

from ._autoencoder import GatedAutoencoder
from ._gate import DAMGate, DAMGate2d

__all__ = ["DAMGate", "DAMGate2d", "GatedAutoencoder"]
