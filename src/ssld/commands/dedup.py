"""``ssld dedup``: remove pool images that are near-duplicates of reference (validation) images."""

from __future__ import annotations

import argparse

from ssld.mining.rules import Thresholds, option_names

HELP = "drop pool images that copy a validation image (hash, descriptor and embedding kNN, aligned NCC, grain, SIFT)"
EXAMPLES = """\
  ssld dedup --pool data/fm/unlabeled.txt --ref data/fm/val.txt --root data/fm \\
      -c configs/fashion_mnist/teacher.yaml --weights runs/teacher/student.safetensors --out runs/dedup
  ssld dedup ... --sim-min 0.92 --sim-margin 0.05     # stricter embedding rule
  ssld dedup --pool pool.txt --ref val.txt --root photos --no-teacher --out runs/dedup   # no weights needed
  ssld label --list data/fm/unlabeled.txt ... --out runs/store      # label the whole pool first, then
  ssld dedup ... --store runs/store                  # pool embeddings come from the store: one teacher pass
  ssld select --store runs/store --keep runs/dedup/kept.txt ...      # select among the images dedup kept
Writes OUT/kept.txt (pool minus duplicates), OUT/removed.csv, OUT/pairs.png and OUT/dedup_report.json.
A pool image is a copy of reference r when r is its best match and clearly ahead of the second-best
reference (a margin); for images of at least --sift-min-size px, when r aligns with it (NCC over mirror, crop,
rotation and shift, --align-min, --align-ratio, --align-peak), or else when SIFT+RANSAC inliers confirm it;
one with little detail (sky, water) when its thumbnail and its colour match r and no other reference
(--colour-de, --colour-ratio); one cropped, mirrored, recoloured or overlaid without resampling when its pixel
grain correlates with r's and with no other candidate's (--noise-min, --noise-ratio). A match whose hues
disagree (one shape in two colours) is dropped (--hue-min).
"""

_T = Thresholds()
# help of each threshold option, in --help's order (every Thresholds field has one: tests/test_mining_cli.py)
THRESHOLD_HELP = {
    "hash_max": "max Hamming distance of 128-bit pHash+dHash",
    "hash_margin": "second-best reference at least this many bits further",
    "sim_min": "min cosine similarity of teacher embeddings",
    "sim_margin": "lead over the second-best reference's similarity",
    "sift_min_size": "short side (px) from which SIFT decides",
    "sift_min_inliers": "RANSAC inliers that confirm a copy",
    "thumb_cand": "thumbnail (weight-free descriptor) similarity that sends a large image to SIFT",
    "thumb_min": "thumbnail rule for small images: min similarity",
    "thumb_margin": "thumbnail rule: lead over the second-best reference",
    "knn": "neighbours searched per pool image",
    "align_min": "aligned NCC that makes a shortlisted reference a copy",
    "align_ratio": "how many times closer (1 - NCC) the best reference must be than the next",
    "align_peak": "... and than the same reference shifted by more than 3 px: what rejects one straight edge or "
                  "stripes",
    "align_small_min": "align_min where an image is under --sift-min-size px (0.90 was measured on 28 px "
                       "Fashion-MNIST, docs/mining.md)",
    "smooth_min": "an image too smooth to align is a copy when its thumbnail matches this well",
    "smooth_ratio": "... and this many times closer (1 - similarity) than the next reference",
    "colour_thumb": "colour rule: the thumbnail similarity from which a large image is judged by colour",
    "colour_de": "... a copy when its centre's colour differs from its best match's by at most this CIE76 delta E",
    "colour_ratio": "... and every other shortlisted reference's differs this many times more",
    "hue_min": "a match (other than SIFT's) whose hue histograms share less than this is not a copy",
    "noise_min": "grain rule: a large image the alignment did not accept is a copy when its pixel grain "
                 "correlates with its best candidate's this well",
    "noise_ratio": "... and this many times better than with the next candidate's",
    "sift_cand_hash": "Hamming distance from which a large image goes to SIFT",
    "sift_cand_sim": "teacher-embedding similarity from which a large image goes to SIFT",
    "align_cand": "thumbnail similarity from which a pool image is aligned",
    "align_k": "thumbnail neighbours aligned per pool image",
    "align_hires_gate": "an ambiguous alignment scoring at least this is redone at 128 px",
    "sift_align_gate": "SIFT checks only pool images whose best aligned NCC reaches this",
}
THRESHOLD_OFF = {"thumb_min": ": off", "align_small_min": ": off", "colour_de": "; 0: off", "hue_min": "; 0: off",
                 "align_hires_gate": "; above 1: off", "noise_min": "; above 1: off"}


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--pool", required=True, help="pool list to clean")
    p.add_argument("--ref", required=True, help="reference list (the validation set) whose copies are removed")
    p.add_argument("--root", required=True, help="image root of the pool list")
    p.add_argument("--ref-root", help="image root of the reference list (default: --root)")
    p.add_argument("-c", "--config", help="teacher config (its embedding finds edited copies); or --no-teacher")
    p.add_argument("--no-teacher", action="store_true",
                   help="weight-free: hashes, thumbnails, the alignment, the grain and SIFT, no teacher embedding "
                        "(how the photo benchmark runs; docs/mining.md)")
    p.add_argument("-o", "--override", action="append", default=[], metavar="KEY=VALUE", help="config override")
    p.add_argument("--weights", help="teacher weights (default: the config's pretrained path)")
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--store", help="soft-label store of the pool from `ssld label` (same teacher and transform): "
                   "pool embeddings are read from it instead of running the teacher over the pool again")
    p.add_argument("--batch-size", type=int, default=None, help="embedding batch size (default: the config's)")
    p.add_argument("--workers", type=int, default=None, help="data loader workers (default: the config's)")
    p.add_argument("--pairs", type=int, default=24, help="pairs shown in pairs.png (default 24)")
    t = p.add_argument_group("decision thresholds")
    defaults = {name: getattr(_T, field) for name, field in option_names().items()}
    for name, text in THRESHOLD_HELP.items():
        default = defaults[name]
        t.add_argument(f"--{name.replace('_', '-')}", type=type(default), default=default,
                       help=f"{text} (default {default:g}{THRESHOLD_OFF.get(name, '')})")


def run(args: argparse.Namespace) -> int:
    import os

    from ssld.commands.options import check_ranges
    from ssld.config import load_config
    from ssld.errors import UserError
    from ssld.mining.jobs import dedup_images
    from ssld.mining.rules import BOUNDS, thresholds_from

    check_ranges(args, {"batch_size": (1, None), "workers": (0, None), "pairs": (0, None), **BOUNDS})
    if args.no_teacher and (args.config or args.override):
        raise UserError("--no-teacher: runs without the teacher's config, so drop -c and -o (or drop --no-teacher)")
    if not args.no_teacher and not args.config:
        raise UserError("-c/--config: the teacher's config is required, or --no-teacher for a weight-free dedup")
    cfg = None if args.no_teacher else load_config(args.config, args.override)
    result = dedup_images(args.pool, args.ref, args.root, cfg, args.out, ref_root=args.ref_root,
                          weights=args.weights, store=args.store, thresholds=thresholds_from(vars(args)),
                          batch_size=args.batch_size, workers=args.workers, pairs=args.pairs,
                          config_name=args.config or "the config")
    if result is None:  # a rank other than 0 under torchrun
        return 0
    report = result.report
    print(f"dedup: {report['removed']} of {report['pool']} pool images removed as copies of {report['ref']} "
          f"references ({report['by_method']}); kept {report['kept']} -> {os.path.join(args.out, 'kept.txt')}")
    if report["skipped_pool"] or report["skipped_ref"]:
        print(f"  unreadable or missing: {len(report['skipped_pool'])} pool, {len(report['skipped_ref'])} "
              "reference (kept in kept.txt; listed in dedup_report.json)")
    return 0
