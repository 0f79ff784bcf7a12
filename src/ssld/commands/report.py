"""``ssld report``: write RUN/report.md and its figures from a pipeline run directory, and print the table."""

from __future__ import annotations

import argparse

HELP = "write RUN/report.md + PNG figures from a pipeline run and print the results table"
EXAMPLES = """\
  ssld report runs/fashion_mnist_ssld-quick-s0
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run_dir", metavar="RUN", help="run directory written by `ssld pipeline`")


def run(args: argparse.Namespace) -> int:
    from ssld.report.report import write_report
    from ssld.report.tables import results_table

    path = write_report(args.run_dir)
    print(results_table(args.run_dir))
    print(f"report: {path}")
    return 0
