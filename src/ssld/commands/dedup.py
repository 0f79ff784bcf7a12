"""``ssld dedup``: remove pool images that are near-duplicates of reference (validation) images."""

from __future__ import annotations

import argparse

from ssld.mining.rules import Thresholds

HELP = "drop pool images that copy a validation image (perceptual hash + teacher embedding kNN, SIFT check)"
EXAMPLES = """\
  ssld dedup --pool data/fm/unlabeled.txt --ref data/fm/val.txt --root data/fm \\
      -c configs/fashion_mnist/teacher.yaml --weights runs/teacher/student.safetensors --out runs/dedup
  ssld dedup ... --sim-min 0.92 --sim-margin 0.05     # stricter embedding rule
  ssld label --list data/fm/unlabeled.txt ... --out runs/store      # label the whole pool first, then
  ssld dedup ... --store runs/store                  # pool embeddings come from the store: one teacher pass
  ssld select --store runs/store --keep runs/dedup/kept.txt ...      # select among the images dedup kept
Writes OUT/kept.txt (pool minus duplicates), OUT/removed.csv, OUT/pairs.png and OUT/dedup_report.json.
A pool image is a copy of reference r when r is its best match and clearly ahead of the second-best
reference (a margin), or, for images of at least --sift-min-size px, when SIFT+RANSAC inliers confirm it.
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


def run(args: argparse.Namespace) -> int:
    import os
    import time
    from dataclasses import asdict, replace
    from pathlib import Path

    from ssld.commands.options import check_ranges
    from ssld.config import load_config
    from ssld.data import read_list
    from ssld.engine import distributed as dist
    from ssld.engine.amp import resolve_precision
    from ssld.errors import UserError
    from ssld.mining.dedup import (
        decide,
        dedup_transform,
        merge_parts,
        save_part,
        search,
        shard_rows,
        write_dedup_outputs,
    )
    from ssld.mining.label import progress_enabled
    from ssld.mining.teacher import load_teacher, resolve_device

    check_ranges(args, {"batch_size": (1, None), "workers": (0, None), "pairs": (0, None), "hash_max": (0, 128),
                        "hash_margin": (0, 128), "sim_min": (-1, 1), "sim_margin": (0, 2),
                        "sift_min_size": (1, None), "sift_min_inliers": (1, None),
                        "thumb_margin": (0, 2)})
    if args.knn < 2:
        raise UserError("--knn: must be at least 2 (the margin needs a second-best reference)")
    ref_root = args.ref_root or args.root
    pool = read_list(args.pool, args.root)
    ref = read_list(args.ref, ref_root)
    if not pool:
        raise UserError(f"--pool {args.pool}: no images in the list")
    if not ref:
        raise UserError(f"--ref {args.ref}: no images in the list")
    cfg = load_config(args.config, args.override)
    split = cfg.DataLoader.Eval or cfg.DataLoader.Train
    if split is None:
        raise UserError(f"DataLoader.Eval: missing in {args.config}; dedup needs its transform_ops")
    device = resolve_device(cfg)
    dist.init_from_env(device)
    rank, world = dist.rank(), dist.world_size()
    try:
        teacher = load_teacher(cfg, args.weights, device)
        th = Thresholds(args.hash_max, args.hash_margin, args.sim_min, args.sim_margin, args.sift_min_size,
                        _T.sift_cand_sim, _T.sift_cand_hash, args.sift_min_inliers, args.knn, args.thumb_cand,
                        args.thumb_min, args.thumb_margin)
        workers = split.loader.num_workers if args.workers is None else args.workers
        t0 = time.perf_counter()
        # torchrun: each rank takes one block of the pool (all references), rank 0 merges
        rows = shard_rows(len(pool), rank, world)
        pool_files, ref_files = [pool[i].path for i in rows], [s.path for s in ref]
        pool_embed = _store_embeddings(args.store, pool_files, teacher, split) if args.store else None
        nb = search(pool_files, ref_files, teacher.model, dedup_transform(cfg, split), k=th.k,
                    batch_size=args.batch_size or split.sampler.batch_size, workers=workers, device=device,
                    amp_dtype=resolve_precision(cfg.AMP, device).dtype, progress=progress_enabled(rank),
                    pool_embed=pool_embed, thumb_knn=True if th.thumb_min <= 1 else None,
                    sift_side=th.sift_min_size)
        matches = decide(nb, th, pool_files, ref_files, progress=progress_enabled(rank), workers=max(1, workers))
        matches = [replace(m, pool=int(rows[m.pool])) for m in matches]
        from_store = int(pool_embed[1].sum()) if pool_embed else 0
        if world > 1:
            save_part(Path(args.out), rank, rows, nb, matches, {"from_store": from_store})
            dist.barrier()
            if rank != 0:
                return 0
            nb, matches, counts = merge_parts(Path(args.out), world, len(pool))
            from_store = counts["from_store"]
    finally:
        dist.shutdown()
    report = write_dedup_outputs(args.out, pool, ref, args.root, ref_root, nb, matches, args.pairs,
                                 extra={"thresholds": asdict(th), "teacher": teacher.model_name,
                                        "weights_sha256": teacher.weights_sha256, "store": args.store,
                                        "pool_embeddings_from_store": from_store, "ranks": world,
                                        "seconds_total": time.perf_counter() - t0})
    print(f"dedup: {report['removed']} of {report['pool']} pool images removed as copies of {report['ref']} "
          f"references ({report['by_method']}); kept {report['kept']} -> {os.path.join(args.out, 'kept.txt')}")
    if report["skipped_pool"] or report["skipped_ref"]:
        print(f"  unreadable or missing: {len(report['skipped_pool'])} pool, {len(report['skipped_ref'])} "
              "reference (kept in kept.txt; listed in dedup_report.json)")
    return 0


def _store_embeddings(store_dir: str, pool_files: list[str], teacher, split):
    """Pool embeddings from a labeled store, refused when another teacher or transform wrote it."""
    import os

    from ssld.errors import UserError
    from ssld.mining.embed import store_embeddings
    from ssld.mining.store import SoftLabelStore

    store = SoftLabelStore.open(store_dir)
    m = store.manifest
    if m.get("weights_sha256") != teacher.weights_sha256 or m.get("teacher") != teacher.model_name:
        raise UserError(f"--store {store_dir}: labeled by {m.get('teacher')} (weights sha256 "
                        f"{str(m.get('weights_sha256'))[:12]}), not by this teacher {teacher.model_name} "
                        f"({teacher.weights_sha256[:12]}); its embeddings would not match the references'")
    if m.get("transform") != split.dataset.transform_ops:
        raise UserError(f"--store {store_dir}: labeled with transform_ops {m.get('transform')}, dedup's config "
                        f"has {split.dataset.transform_ops}; label with the same config (--transform eval)")
    root = m.get("image_root") or "."
    return store_embeddings(store, [os.path.relpath(f, root) for f in pool_files])
