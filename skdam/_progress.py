"""Progress of a fit with ``verbose > 0``: a bar on a terminal, plain lines elsewhere.

The estimators hand :func:`epoch_progress`'s callback to the training loop as its
``on_epoch_end``. tqdm is optional: without it, or when standard error is not a
terminal (a log file, a notebook's captured output, a test), every epoch prints one
plain line on standard output, as scikit-learn's ``verbose`` does.
"""

import sys
from contextlib import contextmanager


def _tqdm_or_none():
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    return tqdm


def _is_terminal(stream):
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


class EpochProgress:
    """Report each epoch's loss and open gates; call :meth:`close` when training ends.

    Parameters
    ----------
    max_epochs : int
        Length of the bar; training may stop before.
    description : str
        Label in front of the bar or of each line, the estimator's name.
    use_bar : bool or None, default=None
        ``None`` draws a tqdm bar when tqdm is installed and standard error is a
        terminal, and prints plain lines otherwise.
    file : file-like, default=None
        Where the bar (default ``sys.stderr``) or the lines (default ``sys.stdout``)
        go.
    """

    def __init__(self, max_epochs, description, *, use_bar=None, file=None):
        tqdm = _tqdm_or_none()
        if use_bar is None:
            use_bar = tqdm is not None and _is_terminal(file if file is not None else sys.stderr)
        if use_bar and tqdm is None:
            raise ImportError("A progress bar needs tqdm: pip install tqdm.")
        self.description = description
        self.file = file
        self.bar = None
        if use_bar:
            self.bar = tqdm(
                total=max_epochs, desc=description, unit="epoch", file=file if file is not None else sys.stderr
            )

    def __call__(self, record):
        if self.bar is not None:
            self.bar.set_postfix_str(f"loss {record.loss:.4f}, open gates {record.n_open}", refresh=False)
            self.bar.update(1)
            return
        # Looked up at every call so that a redirected sys.stdout (capsys, a
        # notebook) receives the lines.
        print(
            f"{self.description} epoch {record.epoch + 1}: loss {record.loss:.5f}, "
            f"reconstruction {record.reconstruction_error:.5f}, open gates {record.n_open}",
            file=self.file if self.file is not None else sys.stdout,
            flush=True,
        )

    def close(self):
        if self.bar is not None:
            self.bar.close()


@contextmanager
def epoch_progress(verbose, max_epochs, description):
    """Yield an ``on_epoch_end`` callback for ``verbose > 0``, else None.

    The bar is closed however training ends, so an exception does not leave a
    half-drawn bar on the terminal.
    """
    if not verbose:
        yield None
        return
    progress = EpochProgress(max_epochs, description)
    try:
        yield progress
    finally:
        progress.close()
