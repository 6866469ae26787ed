"""DAMEmbedding's rule on real data: n_components_ against PCA's variance ratios above alpha.

Issue 12 states the rule ``DAMEmbedding(alpha=a)`` answers to: its ``n_components_``
is the number of principal components whose ``explained_variance_ratio_`` exceeds
``a``. This script checks it on scikit-learn's bundled data sets (iris, wine,
breast_cancer, digits, diabetes), each raw and after ``StandardScaler``, and on
Fashion-MNIST's training images (pixels scaled to [-1, 1]; the first ``--fashion-rows``
rows, all 60000 by default), at alpha 0.003, 0.01 and 0.03, five seeds each.

Where a ratio lies within 10 % of alpha either count passes: the rule's count lies
between ``#(ratio > 1.1 alpha)`` and ``#(ratio >= 0.9 alpha)``.

Prints a table and one PASS / FAIL line, and writes the table as Markdown to
``benchmarks/results/<name>.md`` for the docs (and the printed text to ``<name>.txt``).

Usage: ``python benchmarks/rule_check.py [--seeds 5] [--alphas 0.003 0.01 0.03]
[--fashion-rows 60000] [--threads 1] [--name rule_check]``; ``--fashion-rows 0`` leaves
Fashion-MNIST out.
"""

import argparse
import statistics

import numpy as np

from _common import RESULTS, Report, add_common_arguments, command_line, limit_threads, machine_description, timed_fit

#: Ratios within this fraction of alpha make the rule ambiguous: either count passes.
AMBIGUITY = 0.1


def bundled_data_sets():
    from sklearn import datasets
    from sklearn.preprocessing import StandardScaler

    for name in ("iris", "wine", "breast_cancer", "digits", "diabetes"):
        X = getattr(datasets, f"load_{name}")().data.astype(np.float64)
        yield name, X
        yield f"{name} (scaled)", StandardScaler().fit_transform(X)


def rule_counts(ratios, alpha):
    """The fewest and most components the rule allows: ratios near alpha count either way."""
    return int(np.sum(ratios > (1 + AMBIGUITY) * alpha)), int(np.sum(ratios >= (1 - AMBIGUITY) * alpha))


def main():
    parser = add_common_arguments(argparse.ArgumentParser(description=__doc__.splitlines()[0]))
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--alphas", type=float, nargs="+", default=[0.003, 0.01, 0.03])
    parser.add_argument("--fashion-rows", type=int, default=60000, help="Fashion-MNIST training rows used (the first ones); 0 leaves it out")
    parser.add_argument("--name", default="rule_check", help="stem of the files written under benchmarks/results/")
    args = parser.parse_args()
    limit_threads(args.threads)

    from sklearn.decomposition import PCA

    from skdam import DAMEmbedding

    report = Report(args.name)
    report(f"# DAMEmbedding's rule on real data\n\n`{command_line()}`\n")
    machine = machine_description(args.threads)
    report(f"Machine: {machine}\n")

    data_sets = list(bundled_data_sets())
    if args.fashion_rows:
        from _fashion_mnist import ensure_installed, load_fashion_mnist

        ensure_installed()
        X = load_fashion_mnist("train")[0][: args.fashion_rows]
        data_sets.append((f"Fashion-MNIST train ({X.shape[0]} rows)", X))

    rows, markdown_rows, failures = [], [], []
    fit_seconds = []
    for name, X in data_sets:
        ratios = PCA().fit(X).explained_variance_ratio_
        for alpha in args.alphas:
            low, high = rule_counts(ratios, alpha)
            found, widths = [], set()
            for seed in range(args.seeds):
                estimator, seconds, _ = timed_fit(DAMEmbedding(alpha=alpha, random_state=seed), X)
                fit_seconds.append(seconds)
                found.append(int(estimator.n_components_))
                widths.add(int(estimator.max_components_))
            passes = sum(low <= k <= high for k in found)
            if passes < len(found):
                failures.append(f"{name} at alpha {alpha}")
            rule = f"{low}" if low == high else f"{low}-{high}"
            near = ratios[(ratios >= (1 - AMBIGUITY) * alpha) & (ratios <= (1 + AMBIGUITY) * alpha)]
            row = [name, f"{X.shape[0]} x {X.shape[1]}", f"{alpha:g}", rule, " ".join(map(str, found)), f"{passes}/{len(found)}", "/".join(map(str, sorted(widths)))]
            rows.append(row)
            markdown_rows.append(row[:6])
            print(*row, f"ratios near alpha: {np.round(near, 5).tolist()}", flush=True)

    header = ["data", "rows x features", "alpha", "rule: #(ratio > alpha)", "n_components_ per seed", "seeds passing", "max_components_"]
    report()
    report(f"Rule: the number of PCA explained_variance_ratio_ above alpha; a range where a ratio lies within {AMBIGUITY:.0%} of alpha (either count passes). Seeds 0-{args.seeds - 1}.\n")
    report.table(header, rows)
    report(f"DAMEmbedding fit seconds: median {statistics.median(fit_seconds):.2f}, max {max(fit_seconds):.2f} over {len(fit_seconds)} fits.\n")
    cases = len(rows)
    line = f"{'FAIL' if failures else 'PASS'}: DAMEmbedding's n_components_ follows the rule on {cases - len(failures)}/{cases} (data, alpha) cases, every seed" + (f"; failing: {', '.join(failures)}" if failures else "") + "."
    report(line)
    report.save()

    # The table for docs/: the same rows, the command and the machine above it.
    lines = [f"`{command_line()}`", "", f"Machine: {machine}", ""]
    widths = [max(len(h), *(len(r[i]) for r in markdown_rows)) for i, h in enumerate(header[:6])]
    lines.append("| " + " | ".join(h.ljust(w) for h, w in zip(header[:6], widths)) + " |")
    lines.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    lines.extend("| " + " | ".join(c.ljust(w) for c, w in zip(r, widths)) + " |" for r in markdown_rows)
    lines += ["", line]
    path = RESULTS / f"{args.name}.md"
    path.write_text("\n".join(lines) + "\n")
    print(f"saved {path}")


if __name__ == "__main__":
    main()
