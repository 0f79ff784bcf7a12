"""``ssld dedup``: remove pool images that are near-duplicates of reference (validation) images."""

from __future__ import annotations

import argparse

from ssld.mining.rules import Thresholds

HELP = "drop pool images that copy a validation image (hash, descriptor and embedding kNN, aligned NCC, SIFT)"
EXAMPLES = """\
  ssld dedup --pool data/fm/unlabeled.txt --ref data/fm/val.txt --root data/fm \\
      -c configs/fashion_mnist/teacher.yaml --weights runs/teacher/student.safetensors --out runs/dedup
  ssld dedup ... --sim-min 0.92 --sim-margin 0.05     # stricter embedding rule
  ssld label --list data/fm/unlabeled.txt ... --out runs/store      # label the whole pool first, then
  ssld dedup ... --store runs/store                  # pool embeddings come from the store: one teacher pass
  ssld select --store runs/store --keep runs/dedup/kept.txt ...      # select among the images dedup kept
Writes OUT/kept.txt (pool minus duplicates), OUT/removed.csv, OUT/pairs.png and OUT/dedup_report.json.
A pool image is a copy of reference r when r is its best match and clearly ahead of the second-best
reference (a margin); for images of at least --sift-min-size px, when r aligns with it (NCC over mirror, crop,
rotation and shift, --align-min, --align-ratio, --align-peak), or else when SIFT+RANSAC inliers confirm it;
one with little detail (sky, water) when its thumbnail and its colour match r and no other reference
(--colour-de, --colour-ratio). A match whose hues disagree (one shape in two colours) is dropped (--hue-min).
"""

_T = Thresholds()


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--pool", required=True, help="pool list to clean")
    p.add_argument("--ref", required=True, help="reference list (the validation set) whose copies are removed")
    p.add_argument("--root", required=True, help="image root of the pool list")
    p.add_argument("--ref-root", help="image root of the reference list (default: --root)")
    p.add_argument("-c", "--config", required=True, help="teacher config (its embedding finds edited copies)")
    p.add_argument("-o", "--override", action="append", default=[], metavar="KEY=VALUE", help="config override")
    p.add_argument("--weights", help="teacher weights (default: the config's pretrained path)")
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--store", help="soft-label store of the pool from `ssld label` (same teacher and transform): "
                   "pool embeddings are read from it instead of running the teacher over the pool again")
    p.add_argument("--batch-size", type=int, default=None, help="embedding batch size (default: the config's)")
    p.add_argument("--workers", type=int, default=None, help="data loader workers (default: the config's)")
    p.add_argument("--pairs", type=int, default=24, help="pairs shown in pairs.png (default 24)")
    t = p.add_argument_group("decision thresholds")
    t.add_argument("--hash-max", type=int, default=_T.hash_max,
                   help=f"max Hamming distance of 128-bit pHash+dHash (default {_T.hash_max})")
    t.add_argument("--hash-margin", type=int, default=_T.hash_margin,
                   help=f"second-best reference at least this many bits further (default {_T.hash_margin})")
    t.add_argument("--sim-min", type=float, default=_T.sim_min,
                   help=f"min cosine similarity of teacher embeddings (default {_T.sim_min})")
    t.add_argument("--sim-margin", type=float, default=_T.sim_margin,
                   help=f"lead over the second-best reference's similarity (default {_T.sim_margin})")
    t.add_argument("--sift-min-size", type=int, default=_T.sift_min_size,
                   help=f"short side (px) from which SIFT decides (default {_T.sift_min_size})")
    t.add_argument("--sift-min-inliers", type=int, default=_T.sift_min_inliers,
                   help=f"RANSAC inliers that confirm a copy (default {_T.sift_min_inliers})")
    t.add_argument("--thumb-cand", type=float, default=_T.thumb_cand,
                   help=f"thumbnail (weight-free descriptor) similarity that sends a large image to SIFT "
                        f"(default {_T.thumb_cand})")
    t.add_argument("--thumb-min", type=float, default=_T.thumb_min,
                   help=f"thumbnail rule for small images: min similarity (default {_T.thumb_min}: off)")
    t.add_argument("--thumb-margin", type=float, default=_T.thumb_margin,
                   help=f"thumbnail rule: lead over the second-best reference (default {_T.thumb_margin})")
    t.add_argument("--knn", type=int, default=_T.k, help=f"neighbours searched per pool image (default {_T.k})")
    t.add_argument("--align-min", type=float, default=_T.align_min,
                   help=f"aligned NCC that makes a shortlisted reference a copy (default {_T.align_min})")
    t.add_argument("--align-ratio", type=float, default=_T.align_ratio,
                   help=f"how many times closer (1 - NCC) the best reference must be than the next "
                        f"(default {_T.align_ratio:g})")
    t.add_argument("--align-peak", type=float, default=_T.align_peak,
                   help=f"... and than the same reference shifted by more than 3 px: what rejects one straight edge "
                        f"or stripes (default {_T.align_peak:g})")
    t.add_argument("--align-small-min", type=float, default=_T.align_small_min,
                   help=f"align_min where an image is under --sift-min-size px (default {_T.align_small_min}: off; "
                        "0.90 was measured on 28 px Fashion-MNIST, docs/mining.md)")
    t.add_argument("--smooth-min", type=float, default=_T.smooth_min,
                   help=f"an image too smooth to align is a copy when its thumbnail matches this well "
                        f"(default {_T.smooth_min})")
    t.add_argument("--smooth-ratio", type=float, default=_T.smooth_ratio,
                   help=f"... and this many times closer (1 - similarity) than the next reference "
                        f"(default {_T.smooth_ratio:g})")
    t.add_argument("--colour-thumb", type=float, default=_T.colour_thumb,
                   help=f"colour rule: the thumbnail similarity from which a large image is judged by colour "
                        f"(default {_T.colour_thumb})")
    t.add_argument("--colour-de", type=float, default=_T.colour_de,
                   help=f"... a copy when its centre's colour differs from its best match's by at most this "
                        f"CIE76 delta E (default {_T.colour_de:g}; 0: off)")
    t.add_argument("--colour-ratio", type=float, default=_T.colour_ratio,
                   help=f"... and every other shortlisted reference's differs this many times more "
                        f"(default {_T.colour_ratio:g})")
    t.add_argument("--hue-min", type=float, default=_T.hue_min,
                   help=f"a match (other than SIFT's) whose hue histograms share less than this is not a copy "
                        f"(default {_T.hue_min}; 0: off)")
    t.add_argument("--sift-cand-hash", type=int, default=_T.sift_cand_hash,
                   help=f"Hamming distance from which a large image goes to SIFT (default {_T.sift_cand_hash})")
    t.add_argument("--sift-cand-sim", type=float, default=_T.sift_cand_sim,
                   help=f"teacher-embedding similarity from which a large image goes to SIFT "
                        f"(default {_T.sift_cand_sim})")
    t.add_argument("--align-cand", type=float, default=_T.align_cand,
                   help=f"thumbnail similarity from which a pool image is aligned (default {_T.align_cand})")
    t.add_argument("--align-k", type=int, default=_T.align_k,
                   help=f"thumbnail neighbours aligned per pool image (default {_T.align_k})")
    t.add_argument("--align-hires-gate", type=float, default=_T.align_hires_gate,
                   help=f"an ambiguous alignment scoring at least this is redone at 128 px "
                        f"(default {_T.align_hires_gate}; above 1: off)")
    t.add_argument("--sift-align-gate", type=float, default=_T.sift_align_gate,
                   help=f"SIFT checks only pool images whose best aligned NCC reaches this "
                        f"(default {_T.sift_align_gate})")


def run(args: argparse.Namespace) -> int:
    import os

    from ssld.commands.options import check_ranges
    from ssld.config import load_config
    from ssld.mining.jobs import dedup_images
    from ssld.mining.rules import thresholds_from

    check_ranges(args, {"batch_size": (1, None), "workers": (0, None), "pairs": (0, None), "hash_max": (0, 128),
                        "hash_margin": (0, 128), "sim_min": (-1, 1), "sim_margin": (0, 2),
                        "sift_min_size": (1, None), "sift_min_inliers": (1, None),
                        "thumb_margin": (0, 2), "align_min": (-1, 1.01), "align_ratio": (1, None),
                        "align_peak": (1, None), "align_small_min": (-1, 1.01), "sift_align_gate": (-1, 1),
                        "smooth_min": (-1, 1.01), "smooth_ratio": (1, None),
                        "colour_thumb": (-1, 1.01), "colour_de": (0, None), "colour_ratio": (1, None),
                        "hue_min": (0, 1), "sift_cand_hash": (0, 128), "sift_cand_sim": (-1, 1.01),
                        "align_cand": (-1, 1.01), "align_k": (1, None), "align_hires_gate": (-1, None)})
    cfg = load_config(args.config, args.override)
    result = dedup_images(args.pool, args.ref, args.root, cfg, args.out, ref_root=args.ref_root,
                          weights=args.weights, store=args.store, thresholds=thresholds_from(vars(args)),
                          batch_size=args.batch_size, workers=args.workers, pairs=args.pairs,
                          config_name=args.config)
    if result is None:  # a rank other than 0 under torchrun
        return 0
    report = result.report
    print(f"dedup: {report['removed']} of {report['pool']} pool images removed as copies of {report['ref']} "
          f"references ({report['by_method']}); kept {report['kept']} -> {os.path.join(args.out, 'kept.txt')}")
    if report["skipped_pool"] or report["skipped_ref"]:
        print(f"  unreadable or missing: {len(report['skipped_pool'])} pool, {len(report['skipped_ref'])} "
              "reference (kept in kept.txt; listed in dedup_report.json)")
    return 0
