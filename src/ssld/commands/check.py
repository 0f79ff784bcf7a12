"""``ssld check``: validate a config, print it resolved, build its models and run one training step."""

from __future__ import annotations

import argparse
import logging

HELP = "validate a config, print it resolved, build every model and run one forward+backward step"
EXAMPLES = """\
  ssld check -c configs/fashion_mnist/distill.yaml
  ssld check -c configs/imagenet/mv3_large_x1_0_distill_mv3_small_x1_0.yaml -o Global.image_shape=[3,64,64]
  (pretrained weights that are not available here give a warning and random weights; missing data paths
   are listed as warnings, which `ssld train` and `ssld eval` refuse)
"""

log = logging.getLogger("ssld.check")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("-c", "--config", required=True, help="YAML config to check")
    p.add_argument("-o", "--override", action="append", default=[], metavar="KEY=VALUE", help="config override")
    p.add_argument("--batch-size", type=int, default=4, help="random batch size of the test step (default 4)")


def run(args: argparse.Namespace) -> int:
    import yaml

    from ssld.config import load_config
    from ssld.engine.check import data_warnings, step
    from ssld.errors import UserError

    if args.batch_size < 2:
        raise UserError("--batch-size: at least 2 (BatchNorm needs more than one image)")
    cfg = load_config(args.config, args.override)
    print(yaml.safe_dump(cfg.model_dump(mode="json", exclude_none=True), sort_keys=False), end="")
    for line in data_warnings(cfg):
        log.warning(line)
    parts = step(cfg, args.batch_size)
    shape = "x".join(str(x) for x in cfg.Global.image_shape)
    losses = ", ".join(f"{k} {v:.4f}" for k, v in parts.items())
    print(f"ok: {args.config}: models built, one step at {shape} (batch {args.batch_size}, half unlabeled): {losses}")
    return 0
