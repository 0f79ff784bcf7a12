"""``ssld pipeline``: run the whole SSLD recipe in one resumable run directory."""

from __future__ import annotations

import argparse

HELP = "run the SSLD recipe end to end (data → teacher → baseline → mining → distill → finetune → eval → report)"
EXAMPLES = """\
  ssld pipeline -c configs/fashion_mnist/ssld.yaml --profile quick            # the demo (runs/<name>-quick-s0)
  ssld pipeline -c configs/fashion_mnist/ssld.yaml --profile quick --seed 1 --run-dir runs/q1
  ssld pipeline -c configs/fashion_mnist/ssld.yaml --run-dir runs/q1 --from distill   # rerun distill and after
  ssld pipeline -c configs/fashion_mnist/ssld.yaml --run-dir runs/q1 --only report
  ssld pipeline -c configs/fashion_mnist/ssld.yaml --run-dir runs/q1 --status          # the table, no work
  ssld pipeline -c configs/fashion_mnist/ssld.yaml --profile quick -o select.k=500 --run-dir runs/k500
Run it again after a crash or Ctrl-C: finished stages are skipped and the interrupted one resumes.
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("-c", "--config", required=True, help="pipeline YAML (a Pipeline section and Profiles)")
    p.add_argument("--profile", help="a profile from the file's Profiles section (e.g. quick, full)")
    p.add_argument("--run-dir", help="run directory (default: runs/<Pipeline.name>-<profile>-s<seed>)")
    p.add_argument("--seed", type=int, help="training seed (default: Pipeline.seed)")
    p.add_argument("-o", "--override", action="append", default=[], metavar="KEY=VALUE",
                   help="change the Pipeline section, e.g. -o select.k=500 -o dedup.enabled=false")
    group = p.add_mutually_exclusive_group()
    group.add_argument("--from", dest="start", metavar="STAGE", help="rerun STAGE and every stage after it")
    group.add_argument("--only", metavar="STAGE", help="run just STAGE (its upstream stages must be finished)")
    group.add_argument("--status", action="store_true", help="print the status table and exit")
    p.add_argument("--allow-weak-teacher", action="store_true",
                   help="go on when the teacher guard finds the teacher not clearly better than the labels-only "
                        "student (Pipeline.guard)")
    p.add_argument("--force", action="store_true",
                   help="reuse a run directory made by another config (stages whose inputs changed rerun)")


def run(args: argparse.Namespace) -> int:
    from ssld.commands.options import SEED, check_ranges
    from ssld.config.overrides import apply_override
    from ssld.pipeline.api import open_pipeline

    check_ranges(args, {"seed": SEED})
    extra: dict = {}
    for text in args.override:
        apply_override(extra, text)
    pipe = open_pipeline(args.config, profile=args.profile, seed=args.seed, run_dir=args.run_dir, force=args.force,
                         extra=extra, allow_weak_teacher=args.allow_weak_teacher)
    if args.status:
        pipe.print_status("pipeline status")
        return 0
    pipe.run(only=args.only, start=args.start)
    from ssld.report.tables import results_table

    table = results_table(pipe.run_dir)
    if table:
        print(table)
    return 0
