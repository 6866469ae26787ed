"""Helpers shared by the benchmark scripts: threads, timing, tables, the machine.

Not part of the package and not run by CI.
"""

import os
import platform
import statistics
import sys
import time
import warnings
from collections import namedtuple
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"


def limit_threads(n_threads):
    """Give every thread pool in this process ``n_threads`` threads.

    torch's intra-op pool and OpenBLAS's (numpy, scipy, scikit-learn) alike, so the
    peers in a run get the same resources. On a shared machine whose cores are busy,
    a second thread mostly waits for a descheduled partner: one thread per process
    gives timings that are far less noisy, and ratios that mean something.
    """
    for variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
        os.environ[variable] = str(n_threads)  # for libraries loaded later
    # threadpoolctl limits the libraries loaded so far: load them all first. SciPy
    # ships its own OpenBLAS, apart from NumPy's, and scikit-learn's PCA uses it.
    import scipy.linalg  # noqa: F401
    import sklearn.decomposition  # noqa: F401
    import torch
    from threadpoolctl import threadpool_info, threadpool_limits

    torch.set_num_threads(n_threads)
    # Kept alive for the life of the process on purpose.
    limit_threads.limiter = threadpool_limits(n_threads)
    unlimited = [info["filepath"] for info in threadpool_info() if info["num_threads"] != n_threads]
    if unlimited:
        raise RuntimeError(f"thread pools not limited to {n_threads}: {unlimited}")


def machine_description(n_threads):
    import sklearn
    import torch

    model = platform.processor() or "unknown CPU"
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return (
        f"{os.cpu_count()} CPU cores ({model}), {gpu}; {n_threads} thread(s) per pool in this run; "
        f"load average at start {load:.1f}; Python {platform.python_version()}, torch {torch.__version__}, "
        f"scikit-learn {sklearn.__version__}, numpy {np.__version__}"
    )


def timed(function):
    """``function()``'s result and the wall-clock seconds it took.

    The one stopwatch of the benchmarks: every timing goes through it, so every
    figure measures the same thing (``time.perf_counter`` around the call alone).
    """
    start = time.perf_counter()
    result = function()
    return result, time.perf_counter() - start


def median_seconds(function, repeats):
    """Median and all wall-clock times of ``repeats`` calls of ``function()``, and the last result."""
    times = []
    result = None
    for _ in range(repeats):
        result, seconds = timed(function)
        times.append(seconds)
    return statistics.median(times), times, result


#: What :func:`timed_fit` returns; ``warnings`` holds the class names of the
#: warnings the fit raised, sorted.
TimedFit = namedtuple("TimedFit", ["estimator", "seconds", "warnings"])


def timed_fit(estimator, X):
    """Fit ``estimator`` on ``X``: the fitted estimator, the seconds ``fit`` took, its warnings.

    The warnings are caught, not printed: a benchmark reports them in its tables
    (a ``ConvergenceWarning`` is a result), and they would bury its progress lines.
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fitted, seconds = timed(lambda: estimator.fit(X))
    return TimedFit(fitted, seconds, sorted({type(warning.message).__name__ for warning in caught}))


class Report:
    """Print lines as they come and keep them, to save a text copy of the output."""

    def __init__(self, name):
        self.name = name
        self.lines = []

    def __call__(self, line=""):
        print(line, flush=True)
        self.lines.append(str(line))

    def table(self, header, rows, formats=None):
        """Print a Markdown table; ``rows`` are sequences matching ``header``."""
        formats = formats or [""] * len(header)
        cells = [[format(value, fmt) if not isinstance(value, str) else value for value, fmt in zip(row, formats)] for row in rows]
        widths = [max(len(str(h)), *(len(row[i]) for row in cells)) if cells else len(str(h)) for i, h in enumerate(header)]
        self("| " + " | ".join(str(h).ljust(w) for h, w in zip(header, widths)) + " |")
        self("|" + "|".join("-" * (w + 2) for w in widths) + "|")
        for row in cells:
            self("| " + " | ".join(c.rjust(w) for c, w in zip(row, widths)) + " |")
        self()

    def save(self):
        RESULTS.mkdir(parents=True, exist_ok=True)
        path = RESULTS / f"{self.name}.txt"
        path.write_text("\n".join(self.lines) + "\n")
        print(f"saved {path}")
        return path


def start_report(name, title, n_threads):
    """A :class:`Report` saved as ``results/<name>.txt``, opened with the title, the
    command line and the machine (CPU model, load, versions): what every run must say
    for its figures to be read."""
    report = Report(name)
    report(f"# {title}\n\n`{command_line()}`\n")
    report(f"Machine: {machine_description(n_threads)}\n")
    return report


def save_figure(figure, name):
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.png"
    figure.savefig(path, dpi=90, bbox_inches="tight")
    print(f"saved {path}")
    return path


def add_common_arguments(parser):
    parser.add_argument("--threads", type=int, default=1, help="threads per pool (torch and BLAS); default 1")
    return parser


def command_line():
    return " ".join([Path(sys.executable).name, *sys.argv])
