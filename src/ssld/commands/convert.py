"""``ssld convert``: PaddleClas ``.pdparams`` weights -> a timm ``.safetensors`` file."""

from __future__ import annotations

import argparse

HELP = "convert PaddleClas .pdparams weights into a timm .safetensors file (safe unpickling, exact names)"
EXAMPLES = """\
  ssld convert ResNet50_vd_ssld_pretrained.pdparams --arch ResNet50_vd --out teacher.safetensors
  ssld convert MobileNetV3_large_x1_0_ssld_pretrained.pdparams   (arch from the file name, out next to it)
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("src", metavar="IN.pdparams", help="PaddleClas weights (paddle.save of a model's state dict)")
    p.add_argument("--arch", default=None,
                   help="PaddleClas (or timm) model name, e.g. ResNet50_vd (default: from the file name)")
    p.add_argument("--out", default=None, help="output .safetensors (default: IN with the suffix .safetensors)")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ssld.models.paddle.files import convert_file

    out = args.out or str(Path(args.src).with_suffix(".safetensors"))
    done = convert_file(args.src, args.arch, out)
    print(
        f"converted {Path(args.src).name} ({done.paddle_name} -> {done.timm_name}, {done.num_classes} classes, "
        f"{done.arrays} arrays, {done.parameters / 1e6:.2f}M parameters) to {done.out}"
    )
    return 0
