"""``ssld export``: write the inference model as ONNX / TorchScript and check parity with PyTorch."""

from __future__ import annotations

import argparse

HELP = "export the inference model to ONNX/TorchScript (dynamic batch) and check parity with PyTorch"
EXAMPLES = """\
  ssld export -c configs/fashion_mnist/distill.yaml --weights runs/fm/distill/student.safetensors
  ssld export -c cfg.yaml --weights student.safetensors --format onnx --softmax --out deploy/
  ssld export -c cfg.yaml --weights student.safetensors --backbone --image-size 36
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("-c", "--config", required=True, help="config YAML (Arch, DataLoader.Eval preprocessing)")
    p.add_argument("-o", "--override", action="append", default=[], metavar="KEY=VALUE", help="config override")
    p.add_argument("--weights", required=True, help="weights: safetensors, ssld checkpoint or timm checkpoint")
    p.add_argument("--format", default="onnx,torchscript", help="comma list of onnx,torchscript (default: both)")
    p.add_argument("--softmax", action="store_true", help="append a softmax: outputs are probabilities (default: "
                   "Arch.infer_add_softmax, else logits)")
    p.add_argument("--out", default=None, help="output folder (default: Global.save_inference_dir or "
                   "<Global.output_dir>/export)")
    p.add_argument("--backbone", action="store_true",
                   help="also write the model without its classifier (pooled features) + safetensors")
    p.add_argument("--image-size", type=int, default=None, help="export at this eval image size (e.g. FixRes)")
    p.add_argument("--opset", type=int, default=17, help="ONNX opset (default 17)")
    p.add_argument("--model", default=None, help="sub-model of a DistillationModel (default: infer_model_name)")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ssld.config import load_config
    from ssld.deploy.export import PARITY_ATOL, export_model
    from ssld.errors import UserError

    if args.image_size is not None and not 1 <= args.image_size <= 8192:
        raise UserError(f"--image-size: must be between 1 and 8192 pixels, got {args.image_size}")
    cfg = load_config(args.config, args.override)
    out = args.out or cfg.Global.save_inference_dir or str(Path(cfg.Global.output_dir) / "export")
    formats = [f.strip() for f in args.format.split(",") if f.strip()]
    softmax = args.softmax or bool(cfg.Arch.infer_add_softmax)
    result = export_model(cfg, args.weights, out, formats, softmax=softmax, backbone=args.backbone,
                          image_size=args.image_size, opset=args.opset, model_name=args.model)
    shape = "x".join(str(s) for s in result.report["input_shape"])
    name, arch = result.report["model"], result.report["arch"]
    print(f"exported {name}{'' if name == arch else f' ({arch})'}, input Nx{shape}, to {out}")
    for tag, diffs in result.parity.items():
        text = ", ".join(f"{k}: {v:.2e}" for k, v in diffs.items())
        print(f"  {tag:<22} max abs diff vs PyTorch  {text}  {'ok' if max(diffs.values()) <= PARITY_ATOL else 'FAIL'}")
    print(f"  report: {Path(out) / 'export_report.json'}")
    if not result.ok:
        print(f"ssld: error: parity check failed (tolerance {PARITY_ATOL:g}); see export_report.json")
        return 1
    return 0
