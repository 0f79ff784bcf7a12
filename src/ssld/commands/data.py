"""``ssld data``: prepare datasets (Fashion-MNIST as PNGs + list files) and check list files."""

from __future__ import annotations

import argparse
from collections import Counter

HELP = "prepare datasets (Fashion-MNIST as PNG files and list files) and check image lists"
EXAMPLES = """\
  ssld data fashion-mnist --out data/fmnist --labeled-per-class 200
  ssld data fashion-mnist --out data/fm_small --labeled-per-class 20 --pool-size 2000 --val-size 1000 --seed 1
  ssld data fashion-mnist --out data/fmnist --labeled-per-class 200 --idx-dir ~/Downloads/fashion-mnist
  ssld data check-list data/fmnist/train_labeled.txt --root data/fmnist --class-num 10
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="data_command", metavar="<action>", required=True)
    fm = sub.add_parser(
        "fashion-mnist",
        help="write Fashion-MNIST as PNGs with labeled/unlabeled/val list files",
        description="Write Fashion-MNIST as PNG files plus train_labeled.txt, unlabeled.txt (labels withheld), "
        "unlabeled_truth.txt (analysis only), val.txt, train_full.txt, labels.txt and meta.json. "
        "Re-running with the same parameters reuses the finished export.",
    )
    fm.add_argument("--out", required=True, help="output directory (the image root of the list files)")
    fm.add_argument("--labeled-per-class", type=int, required=True, help="labeled train images per class")
    fm.add_argument("--seed", type=int, default=0, help="seed for choosing the labeled, pool and val subsets")
    fm.add_argument("--idx-dir", help="directory with the IDX files (default /usr/share/datasets/fashion-mnist)")
    fm.add_argument("--val-size", type=int, help="class-balanced subset of the 10k test images (default all)")
    fm.add_argument("--pool-size", type=int, help="random subset of the unlabeled train images (default all)")
    ck = sub.add_parser(
        "check-list",
        help="count a list file's images and labels and find unreadable files",
        description="Report the image count, labeled/unlabeled counts, the class histogram and unreadable "
        "files of a list file. Exits 1 when some images cannot be read; a malformed line, or with --class-num a "
        "label outside 0..N-1, is an error naming the file and line (exit 2).",
    )
    ck.add_argument("list", help="list file of 'relative/path [label]' lines")
    ck.add_argument("--root", required=True, help="image root the list's paths are relative to")
    ck.add_argument("--class-num", type=int, default=None, metavar="N",
                    help="labels must be 0..N-1 (or -1 / none: unlabeled), e.g. the config's Arch.class_num")


def _fashion_mnist(args: argparse.Namespace) -> int:
    from ssld.data.fashion_mnist import export

    meta = export(args.out, args.labeled_per_class, seed=args.seed, idx_dir=args.idx_dir, val_size=args.val_size,
                  pool_size=args.pool_size)
    counts = ", ".join(f"{k} {v}" for k, v in meta["counts"].items())
    print(f"Fashion-MNIST in {args.out}: {counts} (image root: {args.out})")
    return 0


def _check_list(args: argparse.Namespace) -> int:
    from concurrent.futures import ThreadPoolExecutor

    from ssld.data.dataset import load_image
    from ssld.data.lists import read_list

    samples = read_list(args.list, args.root, args.class_num, "--class-num")
    with ThreadPoolExecutor(max_workers=8) as pool:
        readable = list(pool.map(lambda s: load_image(s.path) is not None, samples, chunksize=64))
    bad = [s.path for s, ok in zip(samples, readable, strict=True) if not ok]
    hist = Counter(s.label for s in samples if s.label >= 0)
    labeled = sum(hist.values())
    print(f"{args.list}: {len(samples)} images, {labeled} labeled, {len(samples) - labeled} unlabeled, "
          f"{len(hist)} classes")
    if hist:
        print("class histogram: " + ", ".join(f"{c}:{n}" for c, n in sorted(hist.items())))
    print(f"unreadable: {len(bad)}")
    for path in bad:
        print(f"  {path}")
    return 1 if bad else 0


def run(args: argparse.Namespace) -> int:
    from ssld.commands.options import SEED, check_ranges

    check_ranges(args, {"labeled_per_class": (1, None), "seed": SEED, "val_size": (1, None), "pool_size": (0, None),
                        "class_num": (1, None)})
    return _fashion_mnist(args) if args.data_command == "fashion-mnist" else _check_list(args)
