"""``ssld predict``: top-k classes with probabilities for image files, from PyTorch weights, ONNX or TorchScript."""

from __future__ import annotations

import argparse

HELP = "classify images with a trained model (weights + config, or an exported ONNX/TorchScript file)"
EXAMPLES = """\
  ssld predict -c configs/fashion_mnist/distill.yaml --weights runs/fm/student.safetensors img1.png photos/
  ssld predict --onnx deploy/model.onnx --labels data/fm/labels.txt --topk 3 img1.png
  ssld predict --torchscript deploy/model.torchscript.pt --json photos/ > preds.json
  ssld predict --onnx other.onnx --image-size 224 img.jpg     # no preprocess.json: resize+crop+ImageNet norm
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("images", nargs="+", metavar="IMAGE_OR_DIR", help="image files or folders (searched recursively)")
    p.add_argument("-c", "--config", help="config YAML: model (with --weights) and DataLoader.Eval preprocessing")
    p.add_argument("-o", "--override", action="append", default=[], metavar="KEY=VALUE", help="config override")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--weights", help="PyTorch weights (needs -c)")
    src.add_argument("--onnx", help="ONNX file from ssld export (reads preprocess.json next to it)")
    src.add_argument("--torchscript", help="TorchScript file from ssld export (reads preprocess.json next to it)")
    p.add_argument("--topk", type=int, default=5, help="classes to show per image (default 5)")
    p.add_argument("--labels", help="class names, one per line (or '<id> <name>')")
    p.add_argument("--image-size", type=int, default=None, help="eval image size (override, or when no sidecar)")
    p.add_argument("--batch-size", type=int, default=32, help="images per forward pass (default 32)")
    p.add_argument("--json", action="store_true", help="print one JSON list instead of text lines")


def run(args: argparse.Namespace) -> int:
    import json
    from dataclasses import asdict

    from ssld.commands.options import check_ranges
    from ssld.deploy.predict import format_prediction, predict_images

    check_ranges(args, {"batch_size": (1, None)})
    cfg = None
    if args.config:
        from ssld.config import load_config

        cfg = load_config(args.config, args.override)
    results = predict_images(args.images, cfg=cfg, weights=args.weights, onnx=args.onnx,
                             torchscript=args.torchscript, image_size=args.image_size, labels=args.labels,
                             topk=args.topk, batch_size=args.batch_size)
    if args.json:
        print(json.dumps([asdict(r) for r in results], indent=1))
    else:
        for r in results:
            print(format_prediction(r))
    failed = sum(r.error is not None for r in results)
    if failed:
        import sys

        print(f"ssld: {failed} of {len(results)} images could not be read", file=sys.stderr)
        return 1
    return 0
