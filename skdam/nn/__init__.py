"""DAM for PyTorch users: the gate as a module, its penalties, placing gates, pruning."""

from ._autoencoder import GatedAutoencoder
from ._gate import DAMGate, DAMGate2d
from ._penalty import beta_penalty, freeze_gates, gate_penalty
from ._place import place_gates
from ._prune import prune

__all__ = [
    "DAMGate",
    "DAMGate2d",
    "GatedAutoencoder",
    "beta_penalty",
    "freeze_gates",
    "gate_penalty",
    "place_gates",
    "prune",
]
