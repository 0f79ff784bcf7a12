"""``ssld convert``: PaddleClas ``.pdparams`` weights -> a timm ``.safetensors`` file."""

from __future__ import annotations

import argparse

HELP = "convert PaddleClas .pdparams weights into a timm .safetensors file, or back (--to-paddle)"
EXAMPLES = """\
  ssld convert ResNet50_vd_ssld_pretrained.pdparams --arch ResNet50_vd --out teacher.safetensors
  ssld convert MobileNetV3_large_x1_0_ssld_pretrained.pdparams   (arch from the file name, out next to it)
  ssld convert teacher.safetensors --to-paddle --arch ResNet18_vd --out teacher.pdparams
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("src", metavar="IN.pdparams", help="PaddleClas weights (paddle.save of a model's state dict)")
    p.add_argument("--arch", default=None,
                   help="PaddleClas (or timm) model name, e.g. ResNet50_vd (default: from the file name)")
    p.add_argument("--out", default=None,
                   help="output .safetensors, or .pdparams with --to-paddle (default: IN with that suffix)")
    p.add_argument("--to-paddle", action="store_true",
                   help="the reverse: ssld/timm weights (IN) -> a PaddleClas .pdparams for --arch (required)")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ssld.errors import UserError
    from ssld.models.paddle.files import convert_file, export_file

    if args.to_paddle:
        if not args.arch:
            raise UserError("--to-paddle: give --arch, the PaddleClas model name (e.g. ResNet18_vd)")
        out = args.out or str(Path(args.src).with_suffix(".pdparams"))
        done = export_file(args.src, args.arch, out)
        print(f"wrote {done.out} ({done.timm_name} -> {done.paddle_name}, {done.num_classes} classes, "
              f"{done.arrays} arrays, {done.parameters / 1e6:.2f}M parameters)")
        return 0
    out = args.out or str(Path(args.src).with_suffix(".safetensors"))
    done = convert_file(args.src, args.arch, out)
    print(
        f"converted {Path(args.src).name} ({done.paddle_name} -> {done.timm_name}, {done.num_classes} classes, "
        f"{done.arrays} arrays, {done.parameters / 1e6:.2f}M parameters) to {done.out}"
    )
    return 0
