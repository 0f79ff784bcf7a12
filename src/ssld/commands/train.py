"""``ssld train``: supervised (teacher) or distillation training from a PaddleClas-style config."""

from __future__ import annotations

import argparse
import json

HELP = "train a model (supervised or SSLD distillation) from a config; resumable, torchrun-able"
EXAMPLES = """\
  ssld train -c configs/fashion_mnist/teacher.yaml
  ssld train -c configs/fashion_mnist/distill.yaml -o Global.epochs=8 -o Global.output_dir=runs/distill
  ssld train -c X.yaml -o Global.checkpoints=runs/x/checkpoints/latest.pt     # resume at the exact step
  ssld train -c finetune.yaml -o Global.pretrained_model=runs/distill/student.safetensors
  torchrun --nproc_per_node=8 -m ssld train -c X.yaml                          # DDP; batch_size is per process
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("-c", "--config", required=True, help="YAML config (PaddleClas sections)")
    p.add_argument("-o", "--override", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config value, e.g. -o Global.epochs=10 (repeatable)")


def run(args: argparse.Namespace) -> int:
    from ssld.config import load_config
    from ssld.engine import train
    from ssld.utils import distributed as dist

    cfg = load_config(args.config, args.override)
    rank = dist.rank()
    try:
        report = train(cfg)
    finally:
        dist.shutdown()
    if rank == 0:
        scores = ("mA", "instance_f1", "best_mA") if "best_mA" in report else ("top1", "top5", "best_top1")
        keys = (*scores, "img_s", "train_seconds", "skipped_images")
        print(json.dumps({k: report.get(k) for k in keys}))
        print(f"outputs in {cfg.Global.output_dir}")
    return 0
