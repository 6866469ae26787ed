"""Closing units on a network already ahead of PCA: how long each adaptation should be.

Where ``DAMAutoencoder``'s settled network beats PCA by more than ``alpha`` with as
many units, its units close one at a time, each judged after a short adaptation
that goes on from the last (``AdaptedUnitCount._close_adapting``). This script fits
the default estimator (a subclass that only sets that length and watches the unit
search) with that adaptation ``--steps`` long (the default, 250, and
its neighbours) and reports, per data set:

- the count found on every seed, against the true dimension;
- what training left: the settled count and its error (``1 - R^2`` on the judged
  rows), before any closure, against the error at the count found, after the chain;
- the bias of the chain: each closure is judged against a count that trained one
  adaptation less, so it favours closing by what one more adaptation at the found
  count gains (measured after the fit, and not counted in its time);
- the fit's median seconds, and their ratio to the default's in the same run.

Data: the sets of ``manifolds.py`` where the network is ahead of PCA (the paper's
quadratic kernel, tanh latents), and with ``--fashion`` the Fashion-MNIST training
images (installs Debian's ``dataset-fashion-mnist`` when missing).

Usage: ``python benchmarks/closing_chain.py [--threads 1] [--seeds 3] [--steps 100 250 500] [--fashion]``
"""

import argparse
import statistics
import time

import numpy as np

from _common import add_common_arguments, limit_threads, start_report, timed_fit
from manifolds import PAPER_QUADRATIC_KERNEL, data_sets, select

SETS = [PAPER_QUADRATIC_KERNEL, "tanh MLP latent 4 in R^20", "tanh MLP latent 5 in R^30", "tanh MLP latent 6 in R^40"]


class WatchedUnitCount:
    """Runs the estimator's unit search and reads what training left and the chain's bias."""

    def __init__(self, unit_count, closing_steps, seen):
        self.unit_count = unit_count
        unit_count.closing_steps = closing_steps
        self.seen = seen

    @property
    def errors(self):
        return self.unit_count.errors

    def __call__(self, trainer, X_train, X_validation, last_record, history, on_epoch_end):
        from skdam._training import snapshot
        from skdam._unit_search import CHECK_ROWS

        unit_count, module = self.unit_count, trainer.module
        self.seen.update(settled=module.gate.n_open(), settled_error=last_record.monitored_error)
        changed = unit_count(trainer, X_train, X_validation, last_record, history, on_epoch_end)
        rows = (X_train if X_validation is None else X_validation)[:CHECK_ROWS]
        kept, max_epochs = snapshot(module), unit_count.max_epochs
        unit_count.max_epochs = trainer.epochs_run + unit_count.closing_steps  # room for one more adaptation
        started = time.perf_counter()
        before = unit_count._error(trainer, rows)
        after = unit_count._adapt(trainer, X_train, rows, module.gate.n_open(), None, [], None, unit_count.closing_steps)
        unit_count.max_epochs = max_epochs
        module.load_state_dict(kept)  # the fit keeps what the search left
        self.seen.update(error=before, one_more=after, extra_seconds=time.perf_counter() - started)
        return changed


def watched_autoencoder(closing_steps, seen, **params):
    """``DAMAutoencoder(**params)`` whose closing adaptations run ``closing_steps`` steps."""
    from skdam import DAMAutoencoder

    class WatchedAutoencoder(DAMAutoencoder):
        def _unit_count(self, linear_errors, search):
            return WatchedUnitCount(super()._unit_count(linear_errors, search), closing_steps, seen)

    return WatchedAutoencoder(**params)


def fashion_mnist_rows():
    from _fashion_mnist import ensure_installed, load_fashion_mnist

    ensure_installed()
    return load_fashion_mnist("train")[0]


def main():
    parser = add_common_arguments(argparse.ArgumentParser(description=__doc__.splitlines()[0]))
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--steps", type=int, nargs="+", default=[100, 250, 500], help="Adam steps of one closing adaptation")
    parser.add_argument("--fashion", action="store_true", help="also Fashion-MNIST, seed 0 only")
    parser.add_argument("--name", default="closing_chain", help="stem of the files written under benchmarks/results/")
    args = parser.parse_args()
    limit_threads(args.threads)

    from skdam._autoencoder import CLOSING_ADAPTATION_STEPS as default_steps
    from skdam._unit_search import CHECK_ROWS
    cases = [(d.label, d.dimension, lambda seed, d=d: d.draw(None, seed), args.seeds) for d in select(data_sets(), SETS) if not d.noise]
    if args.fashion:
        cases.append(("Fashion-MNIST (train)", None, lambda seed: fashion_mnist_rows(), 1))
    report = start_report(args.name, "Closing units on a network ahead of PCA", args.threads)
    report(
        f"DAMAutoencoder(random_state=seed) at the default alpha, with each closing adaptation --steps long "
        f"(default {default_steps}). Errors are 1 - R^2 on the judged rows (at most {CHECK_ROWS}). "
        "'settled' is the count and error training left, before any closure; 'bias' is what one more adaptation "
        "at the found count lowers its error by (what a closure's judgement may favour closing by). Medians over seeds.\n"
    )
    rows = []
    for label, true_dimension, draw, n_seeds in cases:
        seconds_by_steps = {}
        for steps in args.steps:
            counts, settled, settled_errors, errors, biases, seconds = [], [], [], [], [], []
            for seed in range(n_seeds):
                X = draw(seed)
                seen = {}
                fitted = timed_fit(watched_autoencoder(steps, seen, random_state=seed), X)
                counts.append(int(fitted.estimator.n_components_))
                settled.append(seen["settled"])
                settled_errors.append(seen["settled_error"])
                errors.append(seen["error"])
                biases.append(seen["error"] - seen["one_more"])
                seconds.append(fitted.seconds - seen["extra_seconds"])
                print(label, steps, seed, counts[-1], seen, f"{seconds[-1]:.1f}s", flush=True)
            seconds_by_steps[steps] = statistics.median(seconds)
            rows.append([
                label, "?" if true_dimension is None else str(true_dimension), steps, " ".join(map(str, counts)),
                " ".join(map(str, settled)), statistics.median(settled_errors), statistics.median(errors),
                statistics.median(biases), seconds_by_steps[steps],
            ])  # fmt: skip
        for row in rows[-len(args.steps):]:
            row.append(row[-1] / seconds_by_steps[default_steps] if default_steps in seconds_by_steps else np.nan)
    report.table(
        ["data", "true dim", "steps", "n_components_ per seed", "settled count per seed", "settled error",
         "error at the count found", "bias", "fit s", "x default's fit s"],
        rows, ["", "", "", "", "", ".4f", ".4f", ".4f", ".1f", ".2f"],
    )  # fmt: skip
    report.save()


if __name__ == "__main__":
    main()
