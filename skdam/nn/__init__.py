"""DAM for PyTorch users: the gate as a module, the gated autoencoder, pruning."""

from ._autoencoder import GatedAutoencoder
from ._gate import DAMGate, DAMGate2d
from ._prune import PrunedGate, gate_penalty, prune

__all__ = ["DAMGate", "DAMGate2d", "GatedAutoencoder", "PrunedGate", "gate_penalty", "prune"]
