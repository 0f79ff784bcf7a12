"""``ssld label``: run the teacher over an image list and write a resumable soft-label store."""

from __future__ import annotations

import argparse

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
    from ssld.mining.jobs import label_images

    check_ranges(args, {"batch_size": (1, None), "workers": (0, None), "shard_size": (1, None)})
    cfg = load_config(args.config, args.override)
    result = label_images(args.list, args.root, cfg, args.out, weights=args.weights, topk=args.topk, full=args.full,
                          embed=args.embed, transform=args.transform, batch_size=args.batch_size,
                          workers=args.workers, shard_size=args.shard_size, config_name=args.config)
    if result is not None:  # rank 0
        print(f"labeled {result.count} images into {args.out} (top-{result.manifest['k']}"
              f"{', full probabilities' if args.full else ''}); skipped {len(result.skipped)}")
        for s in result.skipped[:10]:
            print(f"  skipped ({s['reason']}): {s['path']}")
    return 0
