"""verbose: silent at 0; a progress bar or plain lines with the loss and the open gates."""

import io
import sys

import pytest

from skdam import DAMAutoencoder, DAMEmbedding
from skdam._progress import EpochProgress
from skdam._training import EpochRecord
from skdam.datasets import make_linear_latent


@pytest.fixture(scope="module")
def small_data():
    return make_linear_latent(200, 2, 8, random_state=0)[0]


def _record(epoch, n_open):
    return EpochRecord(
        epoch=epoch,
        loss=0.5,
        reconstruction_error=0.25,
        validation_error=None,
        n_open=n_open,
        beta=0.0,
        learning_rate=0.01,
    )


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("estimator", [DAMEmbedding(max_iter=5), DAMAutoencoder(hidden_layer_sizes=(16,), max_iter=5)])
def test_verbose_0_prints_nothing(estimator, small_data, capsys):
    estimator.set_params(random_state=0).fit(small_data)
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""


def test_verbose_1_prints_each_epoch_with_its_open_gates(small_data, capsys):
    estimator = DAMEmbedding(max_iter=30, verbose=1, random_state=0).fit(small_data)
    lines = capsys.readouterr().out.splitlines()
    # Not a terminal: one plain line per epoch.
    assert len(lines) == estimator.n_iter_
    assert lines[0].startswith("DAMEmbedding epoch 1: loss ")
    for line, n_open in zip(lines, estimator.n_components_curve_):
        assert line.endswith(f"open gates {n_open}")


def test_bar_shows_loss_and_open_gates():
    stream = io.StringIO()
    progress = EpochProgress(10, "DAMEmbedding", use_bar=True, file=stream)
    for epoch, n_open in enumerate([8, 6, 4]):
        progress(_record(epoch, n_open))
    progress.close()
    text = stream.getvalue()
    assert "DAMEmbedding" in text and "3/10" in text
    assert "open gates 4" in text and "loss 0.5000" in text


class _FakeTerminal(io.StringIO):
    def isatty(self):
        return True


def test_bar_on_a_terminal_and_lines_without_tqdm(monkeypatch):
    terminal = _FakeTerminal()
    assert EpochProgress(5, "x", file=terminal).bar is not None
    assert EpochProgress(5, "x", file=io.StringIO()).bar is None

    monkeypatch.setitem(sys.modules, "tqdm", None)
    progress = EpochProgress(5, "DAMEmbedding", file=terminal)
    assert progress.bar is None
    progress(_record(0, 3))
    assert terminal.getvalue().endswith("open gates 3\n")
    with pytest.raises(ImportError, match="tqdm"):
        EpochProgress(5, "x", use_bar=True)
