"""Benchmark: the exact expected loss against Monte Carlo estimates, and the two trainers.

For each problem size the script measures, in one run on one machine:

1. the wall time of one exact loss-and-gradient evaluation, and of a Monte Carlo
   loss-and-gradient estimate at 1e3, 1e4 and 1e5 noise draws per point (torch autograd);
2. the relative gradient error each Monte Carlo estimate reaches against the exact gradient, at a
   point that is not stationary (the memorizer moved by a 10 % random perturbation);
3. the wall time the exact-loss trainer (L-BFGS) and the Monte Carlo Adam trainer need to reach
   the memorizer's invariant W1 W2^T within the memorization chapter's tolerance, from the same
   random init.

Usage: ``.venv/bin/python benchmarks/exact_vs_monte_carlo.py [--out benchmarks/RESULTS.md]``.
It takes a few minutes on a 2-core machine and writes a Markdown results page.
"""

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

from reludae import data, expected, metrics, theory, training
from reludae.claims.memorization import PRODUCT_TOLERANCE
from reludae.exact_training import train_exact
from reludae.experiments import memorization as study

PROBLEMS = [dict(d=50, n=4, p=8), dict(d=256, n=5, p=32)]
SIGMA = 0.05
LAM = 1e-2
DRAWS = (1_000, 10_000, 100_000)
# Monte Carlo Adam runs of increasing length; the shortest one that reaches the tolerance counts.
ADAM_STEPS = (250, 500, 1000, 2000, 4000, 8000)
# The memorization chapter's tolerance on W1 W2^T, then two tighter ones.
TOLERANCES = (PRODUCT_TOLERANCE, 1e-2, 1e-3)


def _median_seconds(function, repeats):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _flat(g1, g2):
    return np.concatenate([g1.ravel(), g2.ravel()])


def measure_evaluations(X, width, seed):
    """Time exact and Monte Carlo loss-and-gradient evaluations and their gradient errors."""
    W = theory.memorization_weights(X, SIGMA, LAM, width=width)
    W = study.perturbed(W, 0.1, seed=seed)
    _, g1, g2 = expected.expected_loss_and_grad(W, W, X, SIGMA, LAM)
    exact_gradient = _flat(g1, g2)
    exact_seconds = _median_seconds(lambda: expected.expected_loss_and_grad(W, W, X, SIGMA, LAM), repeats=10)

    rows = []
    for draws in DRAWS:
        repeats = 5 if draws < 100_000 else 2
        seconds = _median_seconds(lambda: study.monte_carlo_gradient(W, W, X, SIGMA, LAM, draws, seed=seed), repeats)
        estimate = _flat(*study.monte_carlo_gradient(W, W, X, SIGMA, LAM, draws, seed=seed + 1))
        error = float(np.linalg.norm(estimate - exact_gradient) / np.linalg.norm(exact_gradient))
        rows.append(dict(draws=draws, seconds=seconds, gradient_error=error))
    return exact_seconds, rows


def measure_trainers(X, width, seed):
    """Time both trainers to the memorizer's product at each tolerance of ``TOLERANCES``.

    The exact trainer stops at the first L-BFGS iterate within the tolerance. The Monte Carlo
    Adam trainer runs once for each length in ``ADAM_STEPS``, with its learning rate decaying
    over the run, and the shortest run that ends within the tolerance counts. ``None`` means
    that no run did.
    """
    W_mem = theory.memorization_weights(X, SIGMA, LAM, width=width)
    target = W_mem @ W_mem.T

    adam_runs = []
    for steps in ADAM_STEPS:
        config = training.TrainConfig(width=width, sigma=SIGMA, lam=LAM, **dict(study.TRAINING, steps=steps))
        result = training.train(X, config, seeds=(seed,))
        adam_runs.append((steps, result.seconds, metrics.relative_error(result.products[0], target)))

    rows = []
    for tolerance in TOLERANCES:

        def within(W1, W2, tolerance=tolerance):
            return metrics.relative_error(W1 @ (W1 if W2 is None else W2).T, target) <= tolerance

        exact = train_exact(X, width, SIGMA, LAM, seed=seed, stop_when=within)
        exact_error = metrics.relative_error(exact.product, target)
        adam = next(((st, sec, err) for st, sec, err in adam_runs if err <= tolerance), None)
        rows.append(
            dict(
                tolerance=tolerance,
                exact_seconds=exact.seconds if exact_error <= tolerance else None,
                exact_iterations=exact.iterations,
                exact_error=exact_error,
                adam_steps=None if adam is None else adam[0],
                adam_seconds=None if adam is None else adam[1],
                adam_error=None if adam is None else adam[2],
            )
        )
    best_adam = min(err for _, _, err in adam_runs)
    converged = train_exact(X, width, SIGMA, LAM, seed=seed)
    return dict(
        rows=rows,
        best_adam_error=best_adam,
        longest_adam_steps=ADAM_STEPS[-1],
        converged_error=metrics.relative_error(converged.product, target),
        residual_scale=float(np.exp(-study.residual_rate(X) / SIGMA**2)),
    )


def machine():
    cpu = "unknown"
    if Path("/proc/cpuinfo").exists():
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return dict(
        cpu=cpu,
        cores=os.cpu_count(),
        python=platform.python_version(),
        numpy=np.__version__,
        torch=torch.__version__,
        platform=platform.platform(),
    )


def render(results):
    lines = [
        "# Benchmark: exact expected loss against Monte Carlo",
        "",
        "Written by `benchmarks/exact_vs_monte_carlo.py`; rerun it to refresh this page.",
        f"Problems: points with pairwise negative cosines, sigma = {SIGMA}, lam = {LAM}.",
        "Monte Carlo estimates use torch autograd on one thread, as the trainer does.",
        "",
        "## Machine",
        "",
    ]
    lines += [f"- {key}: {value}" for key, value in results["machine"].items()]
    for problem in results["problems"]:
        size = f"d = {problem['d']}, n = {problem['n']}, p = {problem['p']}"
        lines += [
            "",
            f"## {size}",
            "",
            "| evaluation | seconds | relative gradient error | time / exact |",
            "| --- | --- | --- | --- |",
            f"| exact loss and gradient | {problem['exact_seconds']:.4f} | 0 (reference) | 1 |",
        ]
        for row in problem["monte_carlo"]:
            ratio = row["seconds"] / problem["exact_seconds"]
            lines.append(
                f"| Monte Carlo, {row['draws']:,} draws | {row['seconds']:.4f} | {row['gradient_error']:.2e} | {ratio:.1f} |"
            )
        at_1e4 = next(r for r in problem["monte_carlo"] if r["draws"] == 10_000)
        trainers = problem["trainers"]
        lines += [
            "",
            f"Exact loss-and-gradient costs {problem['exact_seconds'] / at_1e4['seconds']:.2f} times a "
            "1e4-draw Monte Carlo estimate (target: at most 10).",
            "",
            "| relative error of W1 W2^T | exact trainer (L-BFGS) | Monte Carlo Adam | Adam / exact |",
            "| --- | --- | --- | --- |",
        ]
        for row in trainers["rows"]:
            exact = (
                f"{row['exact_seconds']:.2f} s ({row['exact_iterations']} iterations)"
                if row["exact_seconds"] is not None
                else f"not reached (error {row['exact_error']:.1e})"
            )
            adam = (
                f"{row['adam_seconds']:.2f} s ({row['adam_steps']} steps)"
                if row["adam_seconds"] is not None
                else f"not reached in {trainers['longest_adam_steps']} steps"
            )
            both = row["exact_seconds"] is not None and row["adam_seconds"] is not None
            ratio = f"{row['adam_seconds'] / row['exact_seconds']:.1f}x" if both else "n/a"
            lines.append(f"| {row['tolerance']:g} | {exact} | {adam} | {ratio} |")
        lines += [
            "",
            f"The best Monte Carlo Adam run ends at a relative error of {trainers['best_adam_error']:.1e}, "
            "the floor its gradient noise leaves (target: exact trainer at least 10x faster to the "
            "memorizer's invariants).",
            f"The exact trainer run to convergence ends at {trainers['converged_error']:.1e} from the closed "
            "form: that is the closed form's own distance to the exact minimum, the corollary's residual, "
            f"whose scale exp(-c / sigma^2) is {trainers['residual_scale']:.1e} for these points.",
        ]
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("RESULTS.md"), help="results page to write")
    parser.add_argument("--seed", type=int, default=0, help="seed of the data, perturbation and inits (default 0)")
    args = parser.parse_args(argv)
    if args.seed < 0:
        parser.error(f"--seed must be non-negative, got {args.seed}")

    results = dict(machine=machine(), problems=[])
    for size in PROBLEMS:
        print(f"benchmarking d={size['d']} n={size['n']} p={size['p']}", file=sys.stderr)
        X = data.negative_cosine_points(size["n"], size["d"], seed=args.seed)
        exact_seconds, monte_carlo = measure_evaluations(X, size["p"], args.seed)
        trainers = measure_trainers(X, size["p"], args.seed)
        results["problems"].append(dict(size, exact_seconds=exact_seconds, monte_carlo=monte_carlo, trainers=trainers))

    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(render(results))
    args.out.with_suffix(".json").write_text(json.dumps(results, indent=2))
    print(f"wrote {args.out} and {args.out.with_suffix('.json')}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
