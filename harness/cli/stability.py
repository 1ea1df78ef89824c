"""``harness stability RUN RUN [...] -o DIR``: how explainer rankings hold up across runs."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from harness.reports.stability import Stability


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``stability`` arguments."""
    parser.add_argument(
        "runs",
        type=Path,
        nargs="+",
        metavar="RUN",
        help="output folders of runs of one spec, e.g. with different seeds (each holding "
        "results.json and comparisons.csv), or their results.json files; at least two",
    )
    parser.add_argument(
        "-o",
        "--output",
        type=Path,
        required=True,
        help="folder for stability.md, stability.csv, stability_ranks.csv and stability_pairs.csv",
    )


def execute(args: argparse.Namespace) -> int:
    """Write the stability report and print one summary line per dataset and model."""
    from harness.reports.stability import load_runs, stability, write_stability

    runs = load_runs(args.runs)
    result = stability(runs)
    for path in write_stability(result, runs, args.output):
        print(f"wrote {path}")
    print_summary(result)
    return 0


def print_summary(result: Stability) -> None:
    """Print how many metrics keep their best method and how the explainer pairs fared."""
    for (ds, model), rows in result.summary.groupby(["dataset", "model"], sort=True):
        print(
            f"{ds} / {model}: {int(rows['same_best'].sum())} of {len(rows)} metrics keep their "
            f"best method in every run; explainer pairs: {int(rows['reproduced'].sum())} "
            f"reproduced, {int(rows['flipped'].sum())} flipped, "
            f"{int(rows['contradicted'].sum())} contradicted"
        )
