"""The estimators' saved state holds arrays and plain values only.

Then skops loads it without trusting torch, and a model trained on a GPU loads on a
machine without one.
"""

import dataclasses

import numpy as np
import torch

from ._training import GateTrainer, TrainingSettings
from .nn import GatedAutoencoder


def tensors_to_arrays(value):
    """Nested dicts and lists with every tensor replaced by a numpy array."""
    if torch.is_tensor(value):
        return value.detach().cpu().numpy()
    if isinstance(value, dict):
        return {key: tensors_to_arrays(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(tensors_to_arrays(item) for item in value)
    return value


def arrays_to_tensors(value):
    if isinstance(value, np.ndarray):
        return torch.from_numpy(value.copy())
    if isinstance(value, dict):
        return {key: arrays_to_tensors(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(arrays_to_tensors(item) for item in value)
    return value


def module_to_arrays(module):
    return {
        "n_features": module.n_features,
        "bottleneck_width": module.bottleneck_width,
        "hidden_layer_sizes": list(module.hidden_layer_sizes),
        "activation": module.activation,
        "missing_indicator": module.missing_indicator,
        "state": tensors_to_arrays(dict(module.state_dict())),
    }


def module_from_arrays(saved):
    with torch.device("meta"):
        module = GatedAutoencoder(
            saved["n_features"], saved["bottleneck_width"], tuple(saved["hidden_layer_sizes"]), saved["activation"],
            missing_indicator=saved.get("missing_indicator", False),
        )
    module = module.to_empty(device="cpu")
    module.load_state_dict(arrays_to_tensors(saved["state"]))
    return module.eval()


def trainer_to_arrays(trainer):
    return {"settings": dataclasses.asdict(trainer.settings), "state": tensors_to_arrays(trainer.state_dict())}


def trainer_from_arrays(saved, module):
    trainer = GateTrainer(module, TrainingSettings(**saved["settings"]), torch.Generator())
    trainer.load_state_dict(arrays_to_tensors(saved["state"]))
    return trainer


class ArrayStateMixin:
    """Pickle the fitted network and trainer as arrays and plain values.

    skops can then load an estimator without trusting torch, and a model trained
    on a GPU loads on a machine without one.
    """

    def __getstate__(self):
        state = dict(super().__getstate__())
        if "module_" in state:
            state["module_"] = module_to_arrays(state["module_"])
        if "_trainer" in state:
            state["_trainer"] = trainer_to_arrays(state["_trainer"])
        if "device_" in state:
            state["device_"] = str(state["device_"])
        return state

    def __setstate__(self, state):
        state = dict(state)
        if isinstance(state.get("module_"), dict):
            state["module_"] = module_from_arrays(state["module_"])
        if isinstance(state.get("_trainer"), dict):
            state["_trainer"] = trainer_from_arrays(state["_trainer"], state["module_"])
        if isinstance(state.get("device_"), str):
            device = torch.device(state["device_"])
            state["device_"] = device if device.type != "cuda" or torch.cuda.is_available() else torch.device("cpu")
        super().__setstate__(state)
