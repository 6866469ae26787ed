"""Where and how training runs: device, threads, the matmul dtype, tensors.

Pure PyTorch and NumPy; the estimators call these with their resolved parameters.
"""

import copy
import threading
from contextlib import contextmanager

import numpy as np
import torch

#: Multiply-adds per training step (batch rows x parameters) below which training on
#: the CPU runs on one intra-op thread. A small step is a few dozen tiny kernels:
#: splitting each across threads costs more than it saves, and on a busy machine every
#: kernel waits for a descheduled thread (see docs/benchmarks.md).
SINGLE_THREAD_MAX_WORK = 2**26
#: Multiply-adds per training step from which mixed_precision="auto" computes the
#: matrix products in bfloat16. Below it the casts cost more than the faster
#: products save (speed.py's precision section: 1.25x to 1.67x faster from 2**26 up,
#: 1.1x to 1.6x slower from 2**16 to 2**22.5).
MIXED_PRECISION_MIN_WORK = 2**26


def adam(parameters, **options):
    """``torch.optim.Adam`` with its fused kernel where this torch has one for the device.

    The fused kernel updates every tensor in one pass: on the CPU a training step of
    the default perceptron runs 1.2x as fast as with the loop over the tensors on
    3 to 100 features, 1.1x on Fashion-MNIST's 784 (``benchmarks/speed.py
    --sections internals``). torch before 2.4 fuses on CUDA only.
    """
    parameters = list(parameters)  # a failed first try must not use up a generator
    try:
        return torch.optim.Adam(parameters, fused=True, **options)
    except (RuntimeError, ValueError):
        return torch.optim.Adam(parameters, **options)


def resolve_device(device):
    """``torch.device`` from ``"auto"``, a name or a device; refuses missing CUDA."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(device)
    if device.type == "cuda" and not torch.cuda.is_available():
        # torch itself would fail later with an AssertionError.
        raise ValueError(f"device={str(device)!r} was requested but CUDA is not available; use device='cpu' or 'auto'.")
    return device


def step_work(module, batch_size):
    """Multiply-adds of one training step, up to a constant: batch rows x parameters."""
    return batch_size * sum(parameter.numel() for parameter in module.parameters())


def training_threads(module, batch_size, device):
    """Intra-op threads for training: 1 for small steps on the CPU, else torch's own."""
    if device.type != "cpu":
        return None
    return 1 if step_work(module, batch_size) < SINGLE_THREAD_MAX_WORK else None


def multiplies_bfloat16_natively(device):
    """Whether ``device`` has bfloat16 matrix units: AMX on a CPU, Ampere+ on CUDA."""
    if device.type == "cuda":
        return torch.cuda.get_device_capability(device)[0] >= 8
    # Older torch has no capability query; float32 is then the safe answer.
    capabilities = getattr(torch.cpu, "get_capabilities", None)
    return device.type == "cpu" and capabilities is not None and bool(capabilities().get("amx_bf16", False))


def training_matmul_dtype(mixed_precision, module, batch_size, device):
    """``"bfloat16"`` or ``"float32"``: the dtype of training's matrix products."""
    if mixed_precision == "auto":
        large = step_work(module, batch_size) >= MIXED_PRECISION_MIN_WORK
        return "bfloat16" if large and multiplies_bfloat16_natively(device) else "float32"
    return "bfloat16" if mixed_precision else "float32"


class _ThreadLimit:
    """Limit torch's intra-op threads for a block, safely for fits running at once.

    With an OpenMP build (the official wheels) ``torch.set_num_threads`` acts on
    the calling thread only, so each block saves and restores its own thread's
    count. Other builds share one pool across the process: there the first block
    to enter saves the count and the last to leave restores it, so that fits running
    in threads (joblib's threading backend, dask's threaded scheduler) never restore
    a count that another fit still relies on, nor save one that another fit set.
    """

    def __init__(self, per_thread):
        self.per_thread = per_thread
        self._lock = threading.Lock()
        self._active = 0
        self._original = None

    @contextmanager
    def __call__(self, n_threads):
        if n_threads is None:
            yield
            return
        if self.per_thread:
            previous = torch.get_num_threads()
            torch.set_num_threads(min(n_threads, previous))
            try:
                yield
            finally:
                torch.set_num_threads(previous)
            return
        with self._lock:
            if self._active == 0:
                self._original = torch.get_num_threads()
                torch.set_num_threads(min(n_threads, self._original))
            self._active += 1
        try:
            yield
        finally:
            with self._lock:
                self._active -= 1
                if self._active == 0:
                    torch.set_num_threads(self._original)


#: Run a block with at most ``n_threads`` torch threads (None: unchanged).
intra_op_threads = _ThreadLimit(per_thread=torch.backends.openmp.is_available())


def as_tensor(array, device, dtype=np.float32):
    """``array`` as a tensor of ``dtype`` on ``device``, sharing memory when it can.

    Read-only memory (a memory-mapped file, ``setflags(write=False)``) is copied:
    ``torch.from_numpy`` would warn that it cannot protect it.
    """
    if not (array.dtype == dtype and array.flags.c_contiguous and array.flags.writeable):
        # Values beyond float32 become inf; the callers refuse them or the non-finite
        # output they give, with a clearer message than NumPy's overflow warning.
        with np.errstate(over="ignore"):
            array = np.array(array, dtype=dtype, order="C", copy=True)
    return torch.from_numpy(array).to(device)


def module_on(module, device, dtype=None):
    """``module`` on ``device`` (and in ``dtype``): the module itself on the CPU in
    float32, else a copy, since ``nn.Module.to`` works in place."""
    if device.type == "cpu" and dtype is None:
        return module
    moved = copy.deepcopy(module)
    return moved.to(device=device, dtype=dtype)
