"""``ssld ablate``: the reference's ablations on a pipeline, one row per claim, mean ± std over seeds."""

from __future__ import annotations

import argparse

HELP = "run the SSLD ablations (one pipeline variant per row, several seeds; resumable) and write the table"
EXAMPLES = """\
  ssld ablate -c configs/fashion_mnist/ablations.yaml                       # every row, the file's seeds
  nohup ssld ablate -c configs/fashion_mnist/ablations.yaml > ablate.log 2>&1 &   # in the background
  ssld ablate -c configs/fashion_mnist/ablations.yaml --rows "reference recipe" --seeds 3
  ssld ablate -c configs/fashion_mnist/ablations.yaml --seed 1 &  ssld ablate -c ... --seed 2   # seeds in parallel
  ssld ablate -c configs/fashion_mnist/ablations.yaml --table-only --out /tmp/table.md
Kill it any time: finished row × seed results are cached and the next start goes on from there.
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("-c", "--config", required=True, help="ablation YAML (an Ablation section)")
    p.add_argument("--seeds", type=int, help="use seeds 0..N-1 (default: the file's seeds)")
    p.add_argument("--seed", type=int, action="append", dest="seed_list", metavar="S",
                   help="run only this seed (repeatable); processes on different seeds can run side by side")
    p.add_argument("--rows", help="comma-separated row names or slugs to run (default: all); a name that itself "
                                  "contains commas is matched whole")
    p.add_argument("--out", help="markdown file for the table (default: the file's results, docs/results.md)")
    p.add_argument("--table-only", action="store_true", help="run nothing; rewrite the table from cached results")


def run(args: argparse.Namespace) -> int:
    from ssld.commands.options import SEED, check_ranges
    from ssld.errors import UserError
    from ssld.pipeline.ablate import run_ablation

    check_ranges(args, {"seed_list": SEED}, flags={"seed_list": "--seed"})
    if args.seeds is not None and args.seeds < 1:
        raise UserError("--seeds: must be at least 1")
    if args.seeds is not None and args.seed_list:
        raise UserError("--seeds and --seed: give one of them")
    rows = _rows(args.rows, args.config) if args.rows else None
    run_ablation(args.config, seeds=args.seed_list or args.seeds, rows=rows, write=args.out, table_only=args.table_only)
    return 0


def _rows(text: str, config: str) -> list[str]:
    """``--rows``: one row whose name or slug is the whole text (names may contain commas), else a comma list."""
    from ssld.pipeline.ablate import load_ablation, slug

    ab, _ = load_ablation(config)
    if slug(text) in {slug(r.name) for r in ab.rows}:
        return [text]
    return [r.strip() for r in text.split(",") if r.strip()]
