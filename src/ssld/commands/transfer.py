"""``ssld transfer``: finetune a backbone on a new labeled dataset with a small lr / lr_mult_list / L2 grid."""

from __future__ import annotations

import argparse

HELP = "finetune a (distilled) backbone on a new dataset: grid over lr, lr_mult_list and L2, chosen on a val split"
EXAMPLES = """\
  ssld transfer -c configs/fashion_mnist/transfer.yaml --backbone output/fashion_mnist/distill/student.safetensors
  ssld transfer -c transfer.yaml --backbone deploy/backbone.safetensors \\
      --grid lr=0.03,0.01 --grid l2=1e-4,2.5e-5 --grid lr_mult=1,0.1:0.1:0.2:0.2:0.3,0.25:0.25:0.5:0.5:0.75
  (lr_mult candidates are separated by commas, their stage values by colons; '1' means no multipliers)
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("-c", "--config", required=True,
                   help="config: Arch (class_num of the NEW task), Optimizer, DataLoader.Train (new training list) "
                        "and DataLoader.Eval (its test list)")
    p.add_argument("-o", "--override", action="append", default=[], metavar="KEY=VALUE", help="config override")
    p.add_argument("--backbone", required=True,
                   help="pretrained weights: student.safetensors, a checkpoint, or ssld export's backbone.safetensors")
    p.add_argument("--grid", action="append", default=[], metavar="KEY=V1,V2",
                   help="grid values for lr, lr_mult or l2 (repeatable; default: config lr and lr/3, L2 and L2/4, "
                        "lr_mult none / 0.25..0.75 ramp / 0.1..0.3 ramp)")
    p.add_argument("--val-fraction", type=float, default=0.2,
                   help="share of each class of the training list held out to choose the setting (default 0.2)")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ssld.config import load_config
    from ssld.transfer import run_transfer

    cfg = load_config(args.config, args.override)
    results = run_transfer(cfg, args.backbone, args.grid, args.val_fraction)
    print((Path(cfg.Global.output_dir) / "transfer_results.md").read_text(), end="")
    print(f"results in {cfg.Global.output_dir}/transfer_results.{{md,json}}")
    return 0 if results["test_top1"] is not None else 1
