"""Closing units on a network already ahead of PCA: how long each adaptation should be.

Where ``DAMAutoencoder``'s settled network beats PCA by more than ``alpha`` with as
many units, its units close one at a time, each judged after a short adaptation
that goes on from the last (``AdaptedUnitCount._close_adapting``). This script fits
the default estimator with that adaptation ``--steps`` long (the default, 250, and
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

import numpy as np

from _common import add_common_arguments, limit_threads, start_report, timed_fit
from manifolds import PAPER_QUADRATIC_KERNEL, data_sets, select

SETS = [PAPER_QUADRATIC_KERNEL, "tanh MLP latent 4 in R^20", "tanh MLP latent 5 in R^30", "tanh MLP latent 6 in R^40"]


class ChainWatch:
    """Wraps ``AdaptedUnitCount.__call__`` to read what training left and the chain's bias."""

    def __init__(self, unit_search):
        self.unit_search = unit_search
        self.original = unit_search.AdaptedUnitCount.__call__
        self.seen = {}

    def __enter__(self):
        watch, original, unit_search = self, self.original, self.unit_search

        def watched(self, trainer, X_train, X_validation, last_record, history, on_epoch_end):
            module = trainer.module
            watch.seen = {"settled": module.gate.n_open(), "settled_error": last_record.monitored_error}
            changed = original(self, trainer, X_train, X_validation, last_record, history, on_epoch_end)
            count = module.gate.n_open()
            rows = (X_train if X_validation is None else X_validation)[: unit_search.CHECK_ROWS]
            kept, max_epochs = unit_search.snapshot(module), self.max_epochs
            self.max_epochs = trainer.epochs_run + self.closing_steps  # room for one more adaptation
            before = self._error(trainer, rows)
            after = self._adapt(trainer, X_train, rows, count, None, [], None, self.closing_steps)
            self.max_epochs = max_epochs
            module.load_state_dict(kept)
            watch.seen.update(chained=bool(changed), error=before, one_more=after)
            return changed

        unit_search.AdaptedUnitCount.__call__ = watched
        return self

    def __exit__(self, *exc):
        self.unit_search.AdaptedUnitCount.__call__ = self.original


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

    import skdam._autoencoder as autoencoder
    import skdam._unit_search as unit_search
    from skdam import DAMAutoencoder

    default_steps = autoencoder.CLOSING_ADAPTATION_STEPS
    cases = [(d.label, d.dimension, lambda seed, d=d: d.draw(None, seed), args.seeds) for d in select(data_sets(), SETS) if not d.noise]
    if args.fashion:
        cases.append(("Fashion-MNIST (train)", None, lambda seed: fashion_mnist_rows(), 1))
    report = start_report(args.name, "Closing units on a network ahead of PCA", args.threads)
    report(
        f"DAMAutoencoder(random_state=seed) at the default alpha, with each closing adaptation --steps long "
        f"(default {default_steps}). Errors are 1 - R^2 on the judged rows (at most {unit_search.CHECK_ROWS}). "
        "'settled' is the count and error training left, before any closure; 'bias' is what one more adaptation "
        "at the found count lowers its error by (what a closure's judgement may favour closing by). Medians over seeds.\n"
    )
    rows = []
    for label, true_dimension, draw, n_seeds in cases:
        seconds_by_steps = {}
        for steps in args.steps:
            autoencoder.CLOSING_ADAPTATION_STEPS = steps
            counts, settled, settled_errors, errors, biases, seconds, chained = [], [], [], [], [], [], []
            for seed in range(n_seeds):
                X = draw(seed)
                with ChainWatch(unit_search) as watch:
                    fitted = timed_fit(DAMAutoencoder(random_state=seed), X)
                seen = watch.seen
                counts.append(int(fitted.estimator.n_components_))
                settled.append(seen["settled"])
                settled_errors.append(seen["settled_error"])
                errors.append(seen["error"])
                biases.append(seen["error"] - seen["one_more"])
                seconds.append(fitted.seconds)
                chained.append(seen["chained"])
                print(label, steps, seed, counts[-1], seen, f"{fitted.seconds:.1f}s", flush=True)
            seconds_by_steps[steps] = statistics.median(seconds)
            rows.append([
                label, "?" if true_dimension is None else str(true_dimension), steps, " ".join(map(str, counts)),
                " ".join(map(str, settled)), statistics.median(settled_errors), statistics.median(errors),
                statistics.median(biases), seconds_by_steps[steps],
            ])  # fmt: skip
        autoencoder.CLOSING_ADAPTATION_STEPS = default_steps
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
