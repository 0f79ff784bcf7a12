"""``ssld eval``: top-1/top-5 of a trained model on the config's ``DataLoader.Eval`` set (the attribute metrics,
mA first, for multi-label data)."""

from __future__ import annotations

import argparse
import json

HELP = "evaluate weights on the config's eval set (top-1/top-5); writes nothing unless --out is given"
EXAMPLES = """\
  ssld eval -c configs/fashion_mnist/teacher.yaml --weights runs/teacher/checkpoints/best.pt
  ssld eval -c configs/fashion_mnist/distill.yaml --weights runs/distill/student.safetensors --out eval.json
  ssld eval -c X.yaml --weights W --image-size 32     # test at another resolution (FixRes-style x1.15)
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("-c", "--config", required=True, help="YAML config (its Arch and DataLoader.Eval are used)")
    p.add_argument("-o", "--override", action="append", default=[], metavar="KEY=VALUE", help="config override")
    p.add_argument("--weights", required=True,
                   help="ssld checkpoint, student.safetensors or timm checkpoint (for a DistillationModel config: "
                        "the infer model's weights, or a full distillation checkpoint)")
    p.add_argument("--image-size", type=int, default=None, help="evaluate at this size instead of the config's")
    p.add_argument("--out", default=None, help="also write the metrics as JSON here")


def run(args: argparse.Namespace) -> int:
    from ssld.config import load_config
    from ssld.engine.evaluate import evaluate_weights
    from ssld.errors import UserError
    from ssld.utils import distributed as dist
    from ssld.utils.device import resolve_device
    from ssld.utils.io import write_json

    if args.image_size is not None and not 1 <= args.image_size <= 8192:
        raise UserError(f"--image-size: must be between 1 and 8192 pixels, got {args.image_size}")
    cfg = load_config(args.config, args.override)
    if cfg.DataLoader.Eval is None:
        raise UserError(f"DataLoader.Eval: missing in {args.config}; eval needs an eval set")
    dist.init_from_env(resolve_device(cfg.Global.device))
    rank = dist.rank()
    try:
        metrics = evaluate_weights(cfg, args.weights, image_size=args.image_size)
    finally:
        dist.shutdown()
    if rank == 0:
        metrics = {"weights": args.weights, "image_size": args.image_size, **metrics}
        bad = metrics.get("bad", 0)
        scores = (f"mA {metrics['mA']:.4f}  instance F1 {metrics['instance_f1']:.4f}" if "mA" in metrics
                  else f"top-1 {metrics['top1']:.4f}  top-5 {metrics['top5']:.4f}")
        print(f"{scores}  ({metrics['count']} images" + (f"; {bad} unreadable, skipped)" if bad else ")"))
        print(json.dumps(metrics))
        if args.out:
            write_json(args.out, metrics)
    return 0
