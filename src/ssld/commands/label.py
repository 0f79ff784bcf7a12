"""``ssld label``: run the teacher over an image list and write a resumable soft-label store."""

from __future__ import annotations

import argparse
import os

HELP = "soft-label an image list with the teacher into a store (top-k probabilities, resumable, torchrun-able)"
EXAMPLES = """\
  ssld label --list data/fm/unlabeled.txt --root data/fm -c configs/fashion_mnist/teacher.yaml \\
      --weights runs/teacher/student.safetensors --out runs/store
  ssld label ... --topk 5 --full --batch-size 512 --workers 8     # also keep the full probability vectors
  torchrun --nproc_per_node=8 -m ssld label ...                     # shards split over ranks, rank 0 merges
  (a killed run resumes from its last complete shard when started again with the same arguments)
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--list", required=True, help="image list to label (PaddleClas format; labels are ignored)")
    p.add_argument("--root", required=True, help="image root the list's paths are relative to")
    p.add_argument("-c", "--config", required=True, help="teacher config (a single model or a DistillationModel)")
    p.add_argument("-o", "--override", action="append", default=[], metavar="KEY=VALUE", help="config override")
    p.add_argument("--weights", help="teacher weights (ssld checkpoint, safetensors or timm checkpoint); "
                   "default: the config's pretrained path")
    p.add_argument("--out", required=True, help="store directory")
    p.add_argument("--topk", type=int, default=10, help="classes kept per image (default 10, capped at the class count)")
    p.add_argument("--full", action="store_true", help="also store the full float16 probability vectors")
    p.add_argument("--no-embed", dest="embed", action="store_false",
                   help="do not store the teacher's pooled embeddings (embed.npy; `ssld dedup --store` reads them)")
    p.add_argument("--transform", choices=("eval", "train"), default="eval",
                   help="preprocessing: DataLoader.Eval (default) or DataLoader.Train transform_ops")
    p.add_argument("--batch-size", type=int, default=None, help="images per forward pass (default: the config's)")
    p.add_argument("--workers", type=int, default=None, help="data loader workers (default: the config's)")
    p.add_argument("--shard-size", type=int, default=4096, help="images per resumable shard (default 4096)")


def run(args: argparse.Namespace) -> int:
    from ssld.commands.options import check_ranges
    from ssld.config import load_config
    from ssld.data import ImageListDataset, build_transform, read_list
    from ssld.engine import distributed as dist
    from ssld.engine.amp import resolve_precision
    from ssld.errors import UserError
    from ssld.mining.label import label
    from ssld.mining.teacher import load_teacher, resolve_device
    from ssld.utils.io import sha256_file

    check_ranges(args, {"batch_size": (1, None), "workers": (0, None), "shard_size": (1, None)})
    if args.topk < 1:
        raise UserError("--topk: must be at least 1")
    cfg = load_config(args.config, args.override)
    split = cfg.DataLoader.Eval if args.transform == "eval" else cfg.DataLoader.Train
    if split is None:
        key = "Eval" if args.transform == "eval" else "Train"
        raise UserError(f"DataLoader.{key}: missing in {args.config}; label needs its transform_ops")
    samples = read_list(args.list, args.root)  # labels are ignored: any integer is fine here
    if not samples:
        raise UserError(f"--list {args.list}: no images in the list; nothing to label")
    device = resolve_device(cfg)
    dist.init_from_env(device)
    rank = dist.rank()
    try:
        teacher = load_teacher(cfg, args.weights, device)
        ops = split.dataset.transform_ops
        dataset = ImageListDataset(samples, build_transform(ops, fit_size=cfg.Global.image_shape[1:]))
        meta = {
            "teacher": teacher.model_name, "teacher_key": teacher.name, "weights": teacher.weights,
            "weights_sha256": teacher.weights_sha256, "transform": ops, "transform_split": args.transform,
            "source_list": str(args.list), "source_sha256": sha256_file(args.list),
            "image_root": str(args.root),
        }
        manifest = label(
            dataset, teacher.model, args.out,
            paths=[os.path.relpath(s.path, args.root) for s in samples], files=[s.path for s in samples],
            meta=meta, num_classes=teacher.num_classes, topk=args.topk, full=args.full, embed=args.embed,
            batch_size=args.batch_size or split.sampler.batch_size,
            workers=split.loader.num_workers if args.workers is None else args.workers,
            shard_size=args.shard_size, device=device, amp_dtype=resolve_precision(cfg.AMP, device).dtype,
        )
    finally:
        dist.shutdown()
    if rank == 0:
        skipped = manifest.get("skipped", [])
        print(f"labeled {manifest.get('count', 0)} images into {args.out} (top-{manifest['k']}"
              f"{', full probabilities' if args.full else ''}); skipped {len(skipped)}")
        for s in skipped[:10]:
            print(f"  skipped ({s['reason']}): {s['path']}")
    return 0
