"""How DAMAutoencoder should train at a fixed number of open units to learn curved codes.

The count is to be decided on the error curve ``e(k)``, the unexplained share of the
variance with ``k`` open units *after the network has adapted to k*, keeping unit
``k`` iff ``e(k-1) - e(k) > alpha`` (0.01). This script measures how fast candidate
recipes (network, optimiser schedule, batch) reach the best error at ``k``.

Every run starts as the estimator does: a ``GatedAutoencoder`` normalised by
``set_normalization`` and warm-started at PCA by ``set_linear_path`` with every unit
open, its residual perceptrons at zero. Then the gate jumps to ``k`` open units
(``beta = gate.beta_floor(k)``, frozen), the decoder's weights on the code rescaled
so the open units reconstruct exactly as before the jump: the start is the PCA
projection on ``k`` units, ``e = 1 - sum of the first k variance shares``. Only the
network's weights train (Adam, batches reshuffled every epoch); the error is the
mean squared error on all rows in normalised units.

1. Screen: every recipe on the curved cases that decide (the Swiss roll at k = 2,
   the 4-d MLP latent at k = 4), the error after each budget. Constant
   schedules are read at checkpoints of one run; a one-cycle or cosine schedule
   depends on its length, so each budget is its own run.
2. The winner of the screen (the cheapest recipe and budget reaching
   ``e < alpha`` on every screened case; else the one with the lowest worst error)
   and today's recipe on every data set at k = true - 1, true, true + 1.
3. After a short settling phase with every unit open: fresh Adam state per k
   against the one carried over.
4. An early exit: after M steps at k - 1, does the extrapolated floor of the error
   already stay above ``e(k) + alpha``? Read off the curves of part 2.

Seconds are the training steps' wall time at 1 thread; ``x cheapest`` divides by
the cheapest recipe's time for as many steps in the same run.

Usage: ``python benchmarks/adaptation.py [--threads 1] [--quick]``
"""

import argparse
import math
import time
import warnings
from dataclasses import dataclass

import numpy as np

from _common import Report, add_common_arguments, command_line, limit_threads, machine_description

import manifolds

ALPHA = 0.01
N_SAMPLES = 2000
#: Steps between two evaluations of the error on all rows.
EVAL_EVERY = 125
#: Budgets of the screen, in steps.
SCREEN_BUDGETS = (500, 1000, 2000)
#: Steps of the settling phase of part 3.
SETTLE_STEPS = 250


@dataclass(frozen=True)
class Recipe:
    name: str
    hidden: tuple
    activation: str
    schedule: str  # "constant", "onecycle" or "cosine"
    peak: float
    batch: int  # 0: the estimator's auto batch, 50 steps per epoch

    def batch_size(self, n_samples):
        return self.batch or int(min(n_samples, max(32, -(-n_samples // 50))))


TODAY = Recipe("today: 128x2 tanh, const 3e-3, auto batch", (128, 128), "tanh", "constant", 3e-3, 0)
RECIPES = [
    TODAY,
    Recipe("256x2 silu, const 3e-3, b256", (256, 256), "silu", "constant", 3e-3, 256),
    Recipe("256x2 elu, const 3e-3, b256", (256, 256), "elu", "constant", 3e-3, 256),
    Recipe("256x2 tanh, const 3e-3, b256", (256, 256), "tanh", "constant", 3e-3, 256),
    Recipe("256x2 silu, 1cycle 3e-3, b256", (256, 256), "silu", "onecycle", 3e-3, 256),
    Recipe("256x2 silu, 1cycle 1e-2, b256", (256, 256), "silu", "onecycle", 1e-2, 256),
    Recipe("256x2 silu, cosine 1e-2, b256", (256, 256), "silu", "cosine", 1e-2, 256),
    Recipe("256x2 silu, 1cycle 1e-2, auto batch", (256, 256), "silu", "onecycle", 1e-2, 0),
    Recipe("128x2 tanh, 1cycle 1e-2, b256", (128, 128), "tanh", "onecycle", 1e-2, 256),
]

#: Data set of manifolds.py (or a local one), its target count, and its ambient width.
CASES = {
    "S-curve": 2,
    "Swiss roll": 2,
    "helix (open, 3 turns)": 1,
    "flat torus T^3 in R^12": 4,  # embedding dimension; the linear span is 6
    "MLP latent 4 in R^16": 4,
    "affine 5 in R^20": 5,
}
SCREEN = [("Swiss roll", 2), ("MLP latent 4 in R^16", 4)]


def draw(name, seed=0):
    if name == "MLP latent 4 in R^16":
        from skdam.datasets import make_mlp_latent

        return make_mlp_latent(N_SAMPLES, 4, 16, random_state=seed)[0]
    data_set = next(d for d in manifolds.data_sets() if d.label == name)
    return data_set.draw(N_SAMPLES, seed)


class Start:
    """The estimator's warm start for one data set, built once, copied per run."""

    def __init__(self, X, seed):
        from skdam._statistics import principal_axes

        self.X = X
        axes = principal_axes(X, min(X.shape), np.random.RandomState(seed))
        self.axes = axes
        self.linear_errors = 1.0 - np.cumsum(axes.variance_shares)
        self.seed = seed

    def module(self, recipe):
        import torch

        from skdam.nn import GatedAutoencoder

        axes = self.axes
        with torch.random.fork_rng(devices=[]):
            module = GatedAutoencoder(self.X.shape[1], axes.directions.shape[0], recipe.hidden, recipe.activation)
        module.reset_parameters(torch.Generator().manual_seed(self.seed))
        module.set_normalization(axes.mean, axes.spread)
        module.set_linear_path(axes.directions)
        return module


def jump_to(module, n_open):
    """Freeze ``beta`` at the floor for ``n_open`` units; the open units decode as before.

    The decoder reads the gated code: dividing its columns by the change of their
    gate makes the jump exact for the units that stay open.
    """
    import torch

    gate = module.gate
    with torch.no_grad():
        before = gate.gate_values().clone()
        gate.beta.fill_(gate.beta_floor(n_open))
        after = gate.gate_values()
        ratio = torch.where(after > 0, before / after.clamp(min=1e-12), torch.zeros_like(after))
        module.decoder_linear.weight.mul_(ratio)
        if module.decoder_residual is not None:
            module.decoder_residual[0].weight.mul_(ratio)
    gate.beta.requires_grad_(False)


def full_error(module, X_t):
    import torch

    with torch.no_grad():
        x = module.normalize(X_t)
        return float((module.decode_normalized(module.encode_normalized(x)) - x).square().mean())


def make_optimizer(module, recipe, n_steps):
    import torch

    parameters = [p for p in module.parameters() if p is not module.gate.beta]
    optimizer = torch.optim.Adam(parameters, lr=recipe.peak)
    if recipe.schedule == "onecycle":
        scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=recipe.peak, total_steps=n_steps)
    elif recipe.schedule == "cosine":
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=n_steps)
    else:
        scheduler = None
    return optimizer, scheduler


def train(module, X_t, recipe, n_steps, seed, optimizer=None, scheduler=None):
    """Train ``n_steps``; the errors at every ``eval_every`` steps and the steps' seconds."""
    import torch

    eval_every = EVAL_EVERY
    if optimizer is None:
        optimizer, scheduler = make_optimizer(module, recipe, n_steps)
    generator = torch.Generator().manual_seed(seed)
    batch = recipe.batch_size(X_t.shape[0])
    curve = {0: full_error(module, X_t)}
    seconds = {0: 0.0}
    elapsed, step = 0.0, 0
    module.train()
    while step < n_steps:
        permutation = torch.randperm(X_t.shape[0], generator=generator)
        for start in range(0, X_t.shape[0], batch):
            tic = time.perf_counter()
            x = module.normalize(X_t[permutation[start : start + batch]])
            loss = torch.nn.functional.mse_loss(module.decode_normalized(module.encode_normalized(x)), x)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if scheduler is not None:
                scheduler.step()
            elapsed += time.perf_counter() - tic
            step += 1
            if step % eval_every == 0 or step == n_steps:
                curve[step] = full_error(module, X_t)
                seconds[step] = elapsed
            if step == n_steps:
                break
    module.eval()
    return curve, seconds


def adapt(start, recipe, n_open, n_steps, seed=0):
    import torch

    module = start.module(recipe)
    jump_to(module, n_open)
    X_t = torch.as_tensor(start.X, dtype=torch.float32)
    return train(module, X_t, recipe, n_steps, seed)


def run_recipe(start, recipe, n_open, budgets):
    """``{budget: (error, seconds)}`` and the curve of the longest run."""
    if recipe.schedule == "constant":
        curve, seconds = adapt(start, recipe, n_open, max(budgets))
        return {b: (curve[b], seconds[b]) for b in budgets}, curve
    results, curve = {}, None
    for budget in budgets:
        curve, seconds = adapt(start, recipe, n_open, budget)
        results[budget] = (curve[budget], seconds[budget])
    return results, curve


def projected_floor(curve, m, factor):
    """``e(M) - factor * (e(M/2) - e(M))``: the error if the fall went on as a power law.

    For ``e = e_inf + c t**-p`` the fall still to come after M is
    ``(e(M/2) - e(M)) / (2**p - 1)``; ``factor`` 2.4 assumes ``p = 0.5``.
    """
    half = min(curve, key=lambda step: abs(step - m / 2))
    return curve[m] - factor * max(curve[half] - curve[m], 0.0)


def main():
    parser = add_common_arguments(argparse.ArgumentParser(description=__doc__.splitlines()[0]))
    parser.add_argument("--quick", action="store_true", help="tiny budgets: check that the script runs")
    args = parser.parse_args()
    limit_threads(args.threads)
    global SCREEN_BUDGETS, EVAL_EVERY, SETTLE_STEPS
    if args.quick:
        SCREEN_BUDGETS, EVAL_EVERY, SETTLE_STEPS = (20, 40), 10, 20
    warnings.simplefilter("ignore")
    total_start = time.perf_counter()
    report = Report("adaptation" + ("_quick" if args.quick else ""))
    report(f"# Adapting the network to k open units\n\n`{command_line()}`\n")
    report(f"Machine: {machine_description(args.threads)}\n")
    report(f"N = {N_SAMPLES} rows, seed 0; alpha = {ALPHA}; errors are 1 - R^2 on all rows; PCA = the start.\n")

    starts = {name: Start(draw(name), 0) for name in CASES}

    # ---------------------------------------------------------------- 1. screen
    report("## 1. Screen: error after each budget (steps), every recipe\n")
    screen = {}  # (recipe, case) -> {budget: (error, seconds)}
    for name, k in SCREEN:
        for recipe in RECIPES:
            screen[recipe, (name, k)] = run_recipe(starts[name], recipe, k, SCREEN_BUDGETS)[0]
    cheapest = {b: min(screen[r, c][b][1] for r in RECIPES for c in SCREEN) for b in SCREEN_BUDGETS}
    rows = []
    for name, k in SCREEN:
        for recipe in RECIPES:
            result = screen[recipe, (name, k)]
            rows.append(
                (name, k, f"{starts[name].linear_errors[k - 1]:.3f}", recipe.name, *(result[b][0] for b in SCREEN_BUDGETS),
                 result[SCREEN_BUDGETS[-1]][1], result[SCREEN_BUDGETS[-1]][1] / cheapest[SCREEN_BUDGETS[-1]])
            )  # fmt: skip
    budget_columns = [f"e@{b}" for b in SCREEN_BUDGETS]
    report.table(
        ["data", "k", "PCA", "recipe", *budget_columns, f"s@{SCREEN_BUDGETS[-1]}", "x cheapest"],
        rows,
        ["", "d", "", "", *([".4f"] * len(SCREEN_BUDGETS)), ".1f", ".1f"],
    )

    def worst(recipe, budget):
        return max(screen[recipe, case][budget][0] for case in SCREEN)

    def cost(recipe, budget):
        return sum(screen[recipe, case][budget][1] for case in SCREEN)

    passing = [(cost(r, b), r, b) for r in RECIPES for b in SCREEN_BUDGETS if worst(r, b) < ALPHA]
    if passing:
        _, winner, winner_budget = min(passing, key=lambda item: item[0])
        why = f"the cheapest to reach e < {ALPHA} on every screened case"
    else:
        winner, winner_budget = min(((r, SCREEN_BUDGETS[-1]) for r in RECIPES), key=lambda rb: worst(*rb))
        why = f"none reached e < {ALPHA} on every case: the lowest worst error at {winner_budget} steps"
    report("Worst screened error per recipe and budget (seconds summed over the screened cases):\n")
    report.table(
        ["recipe", *budget_columns, "s, all budgets' runs"],
        [(r.name, *(worst(r, b) for b in SCREEN_BUDGETS), sum(cost(r, b) for b in SCREEN_BUDGETS) if r.schedule != "constant" else cost(r, SCREEN_BUDGETS[-1])) for r in RECIPES],
        ["", *([".4f"] * len(SCREEN_BUDGETS)), ".1f"],
    )
    report(f"Winner: {winner.name} with {winner_budget} steps ({why}).\n")

    # ---------------------------------------------------------------- 2. every case
    report(f"## 2. e(k) after adapting, k = target - 1, target, target + 1: winner ({winner_budget} steps) and today's\n")
    rows, curves = [], {}
    errors = {}
    for name, target in CASES.items():
        start = starts[name]
        for k in (target - 1, target, target + 1):
            if not 1 <= k <= start.axes.directions.shape[0]:
                continue
            for recipe in (winner, TODAY):
                budget = winner_budget if recipe is winner else max(SCREEN_BUDGETS)
                curve, seconds = adapt(start, recipe, k, budget)
                curves[recipe, name, k] = curve
                errors[recipe, name, k] = curve[budget]
                rows.append((name, target, k, f"{start.linear_errors[k - 1]:.3f}", recipe.name, budget, curve[budget], seconds[budget]))
    report.table(["data", "target", "k", "PCA", "recipe", "steps", "e(k)", "s"], rows, ["", "d", "d", "", "", "d", ".4f", ".1f"])
    rows = []
    for name, target in CASES.items():
        for recipe in (winner, TODAY):
            e = {k: errors.get((recipe, name, k)) for k in (target - 1, target, target + 1)}
            below = e[target] is not None and e[target] < ALPHA
            gap = None if e[target - 1] is None else e[target - 1] - e[target]
            gap_next = None if e[target + 1] is None else e[target] - e[target + 1]
            fmt = lambda v: "-" if v is None else f"{v:.4f}"  # noqa: E731
            decided = (gap is None or gap > ALPHA) and (gap_next is None or gap_next <= ALPHA)
            rows.append((name, recipe.name, fmt(e[target]), "yes" if below else "no", fmt(gap), fmt(gap_next), "yes" if decided else "no"))
    report("Decision per data set: keep unit k iff e(k-1) - e(k) > alpha; right when the target keeps its last unit and the next is dropped.\n")
    report.table(["data", "recipe", "e(target)", "< alpha", "e(t-1)-e(t)", "e(t)-e(t+1)", "count right"], rows)

    # ---------------------------------------------------------------- 3. settle, then fresh or carried Adam
    report(f"## 3. After {SETTLE_STEPS} settling steps with every unit open: fresh Adam per k, or carried over\n")
    import torch

    rows = []
    for name, k in SCREEN:
        start = starts[name]
        X_t = torch.as_tensor(start.X, dtype=torch.float32)
        for carried in (False, True):
            module = start.module(winner)
            settle_recipe = Recipe("settle", winner.hidden, winner.activation, "constant", 3e-3, winner.batch)
            optimizer, _ = make_optimizer(module, settle_recipe, SETTLE_STEPS)
            settled_curve, settled_seconds = train(module, X_t, settle_recipe, SETTLE_STEPS, 1, optimizer=optimizer)
            jump_to(module, k)
            if carried:
                for group in optimizer.param_groups:
                    group["lr"] = winner.peak
                scheduler = None
                if winner.schedule == "onecycle":
                    for group in optimizer.param_groups:
                        group.pop("initial_lr", None)
                    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=winner.peak, total_steps=winner_budget)
                elif winner.schedule == "cosine":
                    for group in optimizer.param_groups:
                        group.pop("initial_lr", None)
                    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=winner_budget)
                curve, seconds = train(module, X_t, winner, winner_budget, 0, optimizer=optimizer, scheduler=scheduler)
            else:
                curve, seconds = train(module, X_t, winner, winner_budget, 0)
            rows.append((name, k, settled_curve[SETTLE_STEPS], "carried" if carried else "fresh", curve[0], curve[winner_budget // 2] if winner_budget // 2 in curve else math.nan, curve[winner_budget]))
    report.table(
        ["data", "k", "e settled (all open)", "Adam state", "e after jump", f"e@{winner_budget // 2}", f"e@{winner_budget}"],
        rows,
        ["", "d", ".4f", "", ".4f", ".4f", ".4f"],
    )

    # ---------------------------------------------------------------- 4. early exit
    report("## 4. Early exit: after M steps at k, is the projected floor still above e(k+1) + alpha?\n")
    report(
        "Projected floor: e(M) - f (e(M/2) - e(M)), the rest of a power-law fall e_inf + c t^-p (f = 2.4 for p = 0.5, "
        "1 for p = 1). 'exit' must be 'no' wherever the final e(k) - e(k+1) <= alpha (the unit could be removed).\n"
    )
    rows = []
    for recipe in (winner, TODAY):
        for name, target in CASES.items():
            for k in (target - 1, target):
                key, next_key = (recipe, name, k), (recipe, name, k + 1)
                if key not in curves or next_key not in errors:
                    continue
                curve = curves[key]
                threshold = errors[next_key] + ALPHA
                final = max(curve)
                removable = curve[final] <= threshold
                for m in sorted({2 * EVAL_EVERY, 4 * EVAL_EVERY}):
                    if m >= final:
                        continue
                    floors = [projected_floor(curve, m, f) for f in (2.4, 1.0)]
                    rows.append(
                        (recipe.name, name, k, m, curve[m], *floors, threshold, "yes" if removable else "no",
                         "yes" if floors[0] > threshold else "no", "yes" if floors[1] > threshold else "no")
                    )  # fmt: skip
    report.table(
        ["recipe", "data", "k", "M", "e(M)", "floor f=2.4", "floor f=1", "e(k+1)+alpha", "removable (final)", "exit f=2.4", "exit f=1"],
        rows,
        ["", "", "d", "d", ".4f", ".4f", ".4f", ".4f", "", "", ""],
    )
    report(f"Total run time: {time.perf_counter() - total_start:.0f} s\n")
    report.save()


if __name__ == "__main__":
    main()
