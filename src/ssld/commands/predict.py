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
    from ssld.data import build_transform
    from ssld.errors import UserError
    from ssld.export import load_infer_model
    from ssld.predict import (
        collect_images,
        format_prediction,
        onnx_backend,
        predict,
        read_labels,
        read_sidecar,
        torchscript_backend,
    )
    from ssld.preprocessing import eval_ops, fixed_size_ops

    check_ranges(args, {"batch_size": (1, None)})
    if args.topk < 1:
        raise UserError("--topk: must be at least 1")
    if args.image_size is not None and not 1 <= args.image_size <= 8192:
        raise UserError(f"--image-size: must be between 1 and 8192 pixels, got {args.image_size}")
    if args.weights and not args.config:
        raise UserError("--weights: needs -c/--config (the model architecture)")
    cfg = None
    if args.config:
        from ssld.config import load_config

        cfg = load_config(args.config, args.override)
    files = collect_images(args.images)
    names = read_labels(args.labels) if args.labels else None
    side = read_sidecar(args.onnx or args.torchscript) if (args.onnx or args.torchscript) else None
    image_size = args.image_size if args.image_size is not None else (side or {}).get("image_size")
    if cfg is None and side is not None:
        ops, fallback = side["transform_ops"], side["input_shape"]
    else:
        ops = eval_ops(cfg, image_size)
        fallback = cfg.Global.image_shape if cfg else [3, image_size, image_size]
    ops, shape = fixed_size_ops(ops, image_size, fallback)
    transform = build_transform(ops, image_size=image_size)
    outputs_probs = bool((side or {}).get("softmax", False))
    if args.onnx:
        backend = onnx_backend(args.onnx, shape)
    elif args.torchscript:
        backend = torchscript_backend(args.torchscript)
    else:
        model = load_infer_model(cfg, args.weights)
        backend = model
    results = predict(backend, transform, files, topk=args.topk, outputs_probs=outputs_probs, names=names,
                      batch_size=args.batch_size)
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
