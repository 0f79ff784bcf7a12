"""``ssld init``: write a pipeline file (and its training configs) for your own images."""

from __future__ import annotations

import argparse

HELP = "write an SSLD pipeline file for your own list files or class folders (sizes, budgets, teacher guard)"
EXAMPLES = """\
  ssld init --data data/mine --out my_ssld.yaml       # data/mine: train_labeled.txt, unlabeled.txt, val.txt
  ssld init --data photos --out my_ssld.yaml          # photos: train/<class>/, val/<class>/, unlabeled/
  ssld init --data lab.txt,pool.txt,val.txt --root /data/imgs --out my_ssld.yaml
  ssld pipeline -c my_ssld.yaml                       # then run it
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", required=True, metavar="DIR_OR_LISTS",
                   help="a folder of list files (train_labeled.txt, unlabeled.txt, val.txt, optional "
                        "train_teacher.txt), a folder of class folders (train/, val/, optional unlabeled/), or "
                        "LABELED,UNLABELED,VAL list files")
    p.add_argument("--out", required=True, help="the pipeline file to write; its training configs go in a folder "
                                                "of the same name beside it")
    p.add_argument("--root", help="folder the list paths are relative to (default: the lists' folder)")
    p.add_argument("--force", action="store_true", help="overwrite an existing pipeline file")


def run(args: argparse.Namespace) -> int:
    from ssld.pipeline.init import init_pipeline

    path = init_pipeline(args.data, args.out, root=args.root, force=args.force)
    print(f"wrote {path} and its training configs in {path.parent / path.stem}/; run: ssld pipeline -c {path}")
    return 0
