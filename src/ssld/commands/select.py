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
    from pathlib import Path

    from ssld.commands.options import check_ranges
    from ssld.data import write_list
    from ssld.errors import UserError
    from ssld.mining.plots import class_count_chart
    from ssld.mining.select import (
        merge_with_labeled,
        rows_in_list,
        select_topk,
        selected_entries,
        selection_stats,
    )
    from ssld.mining.store import SoftLabelStore
    from ssld.utils.io import write_json

    check_ranges(args, {"min_score": (0, 1)})  # a probability
    if args.k < 1:
        raise UserError(f"--k: must be a positive number of images per class, got {args.k}")
    if args.merged_out and not args.merge:
        raise UserError("--merged-out: needs --merge LABELED.txt")
    store = SoftLabelStore.open(args.store)
    only = rows_in_list(store, args.keep) if args.keep else None
    sel = select_topk(store, args.k, args.min_score, args.multi_label, only)
    entries = selected_entries(store, sel, args.assign_label)
    out = Path(args.out)
    merged = merge_with_labeled(args.merge, entries) if args.merge else None
    write_list(out, entries)
    stats = selection_stats(sel, args.min_score, args.multi_label)
    stats.update(store=str(args.store), image_root=store.manifest.get("image_root"), list=str(out))
    if only is not None:
        stats.update(keep_list=str(args.keep), store_rows_kept=int(only.sum()), store_rows=len(store))
    if merged is not None:
        merged_out = Path(args.merged_out) if args.merged_out else out.with_name("merged.txt")
        write_list(merged_out, merged)
        stats.update(merged_list=str(merged_out), merged_total=len(merged))
    write_json(out.with_name("select_stats.json"), stats)
    class_count_chart(sel.selected, sel.candidates, args.k, out.with_name("select_counts.png"))
    short = stats["classes_short_of_k"]
    print(f"selected {stats['total']} entries ({stats['unique_images']} images) over {store.num_classes} classes "
          f"into {out}; {len(short)} classes had fewer than {args.k} candidates"
          + (f": {short[:20]}" if short else ""))
    if merged is not None:
        print(f"merged list: {stats['merged_list']} ({len(merged)} entries, labeled first)")
    return 0
