"""``ssld select``: keep the top-k pool images per class from a soft-label store."""

from __future__ import annotations

import argparse

HELP = "select the k most confident pool images per class from a soft-label store (optionally merge with labels)"
EXAMPLES = """\
  ssld select --store runs/store --k 2000 --out runs/selected.txt
  ssld select --store runs/store --k 2000 --min-score 0.5 --out runs/selected.txt \\
      --merge data/fm/train_labeled.txt --merged-out runs/train_plus_pool.txt
  ssld select --store runs/store --k 500 --multi-label --assign-label --out runs/pseudo.txt   # pseudo-labels
Each image goes to its top-1 class only, unless --multi-label (then any class in its stored top-k).
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--store", required=True, help="soft-label store directory from `ssld label`")
    p.add_argument("--k", type=int, required=True, help="images to keep per class")
    p.add_argument("--out", required=True, help="selected list; select_stats.json and select_counts.png go beside it")
    p.add_argument("--keep", metavar="LIST",
                   help="only images this list names are candidates (e.g. dedup's kept.txt, when the whole pool "
                        "was labeled before dedup)")
    p.add_argument("--min-score", type=float, default=0.0, help="drop candidates whose probability is below this")
    p.add_argument("--multi-label", action="store_true",
                   help="an image may be selected under every class in its stored top-k (default: top-1 only)")
    p.add_argument("--assign-label", action="store_true",
                   help="write the teacher's class as the label (pseudo-labels) instead of an unlabeled list")
    p.add_argument("--merge", metavar="LABELED.txt", help="also write the labeled list followed by the selection")
    p.add_argument("--merged-out", help="where the merged list goes (default: merged.txt beside --out)")


def run(args: argparse.Namespace) -> int:
    from ssld.commands.options import check_ranges
    from ssld.mining.jobs import select_images

    check_ranges(args, {"min_score": (0, 1)})  # a probability
    result = select_images(args.store, args.k, args.out, keep=args.keep, min_score=args.min_score,
                           multi_label=args.multi_label, assign_label=args.assign_label, merge=args.merge,
                           merged_out=args.merged_out)
    stats, short = result.stats, result.stats["classes_short_of_k"]
    print(f"selected {stats['total']} entries ({stats['unique_images']} images) over {result.num_classes} classes "
          f"into {result.out}; {len(short)} classes had fewer than {args.k} candidates"
          + (f": {short[:20]}" if short else ""))
    if result.merged is not None:
        print(f"merged list: {result.merged} ({stats['merged_total']} entries, labeled first)")
    return 0
