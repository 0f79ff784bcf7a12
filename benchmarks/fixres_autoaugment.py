"""FixRes and the AutoAugment "v2" recipe on Fashion-MNIST, as measured rows.

1. FixRes: a ResNet-8 student trained with RandomResizedCrop (RandCropImage, scale 0.25-1: objects look larger
   in training than in the plain 28 px test view) is tested at 28 px (x1), at 32 px (x1.15), at 32 px after BN
   recalibration only, and at 32 px after the FixRes finetune (classifier only, test preprocessing, BN stats
   re-estimated at 32 px) -- ``ssld.engine.fixres.run_fixres``.
2. Recipe: the plain augmentation of configs/fashion_mnist/distill.yaml (pad + random crop + flip, L2 1e-4)
   against the reference's v2 (the same + AutoAugment, half the L2 decay), same network, epochs and seed.
   Both are trained from the labels here (supervised CE) to keep the budget small; the reference measured v2 on
   its distillation run (+0.6% on ImageNet).

All numbers are top-1 on a class-balanced subset of the Fashion-MNIST test images, never used for choices.
Run:  .venv/bin/python benchmarks/fixres_autoaugment.py            (three 10-epoch trainings on 2,000 images)
      .venv/bin/python benchmarks/fixres_autoaugment.py --epochs 4  (a quick look)
Measured wall time: 37 min on 2 CPU cores shared with other jobs (load average 7-16, 46 img/s); the work is
about 60k training images per run, so a few minutes on 2 idle cores.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path
from typing import Any

NORMALIZE = {"NormalizeImage": {"scale": "1.0/255.0", "mean": [0.286] * 3, "std": [0.353] * 3, "order": ""}}
EVAL_OPS = [{"DecodeImage": {"to_rgb": True}}, {"ResizeImage": {"size": 28}}, NORMALIZE]
RRC_OPS = [{"DecodeImage": {"to_rgb": True}}, {"RandCropImage": {"size": 28, "scale": [0.25, 1.0]}},
           {"RandFlipImage": {"flip_code": 1}}, NORMALIZE]
PLAIN_OPS = [{"DecodeImage": {"to_rgb": True}}, {"Pad": {"padding": 2}}, {"RandomCrop": {"size": 28}},
             {"RandFlipImage": {"flip_code": 1}}, NORMALIZE]
V2_OPS = [*PLAIN_OPS[:-1], {"AutoAugment": None}, NORMALIZE]


def config(data: Path, out: Path, train_ops: list, l2: float, epochs: int, lr: float = 0.1,
           extra: dict[str, Any] | None = None, workers: int = 1) -> Any:
    """A supervised ResNet-8 config on the exported Fashion-MNIST subset."""
    from ssld.config.schema import SSLDConfig

    def split(list_name: str, ops: list, bs: int, shuffle: bool) -> dict:
        return {"dataset": {"image_root": str(data), "cls_label_path": str(data / list_name), "transform_ops": ops},
                "sampler": {"batch_size": bs, "shuffle": shuffle},
                "loader": {"num_workers": workers, "persistent_workers": False}}

    return SSLDConfig.model_validate({
        "Global": {"output_dir": str(out), "epochs": epochs, "image_shape": [3, 28, 28], "seed": 0,
                   "device": "auto", "eval_interval": epochs, "save_interval": epochs, "log_interval": 1000},
        "Arch": {"name": "resnet8", "class_num": 10},
        "Optimizer": {"name": "Momentum", "momentum": 0.9,
                      "lr": {"name": "Cosine", "learning_rate": lr, "warmup_epoch": 1},
                      "regularizer": {"name": "L2", "coeff": l2}},
        "DataLoader": {"Train": split("train_labeled.txt", train_ops, 128, True),
                       "Eval": split("val.txt", EVAL_OPS, 500, False)},
        **(extra or {}),
    })


def pct(m: dict) -> str:
    return f"{100 * m['top1']:.2f}"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default="runs/bench/fm_fixres_data", help="where the Fashion-MNIST subset is written")
    p.add_argument("--out", default="runs/bench/fixres_autoaugment", help="run outputs and results.json")
    p.add_argument("--labeled-per-class", type=int, default=200)
    p.add_argument("--test-size", type=int, default=1000, help="class-balanced test images")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--fixres-epochs", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--workers", type=int, default=1, help="DataLoader workers per loader")
    args = p.parse_args()

    import torch

    from ssld.data.fashion_mnist import export
    from ssld.engine import train
    from ssld.engine.fixres import evaluate_at, fixres_split, recalibrate_bn, run_fixres
    from ssld.models.infer import load_infer_model

    torch.set_num_threads(args.threads)
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    start = time.perf_counter()
    data, out = Path(args.data), Path(args.out)
    export(data, labeled_per_class=args.labeled_per_class, seed=0, val_size=args.test_size, pool_size=0)
    rows: list[tuple[str, str, str]] = []

    rrc = config(data, out / "rrc", RRC_OPS, 1e-4, args.epochs, workers=args.workers)
    t = time.perf_counter()
    train(rrc)
    weights = out / "rrc" / "student.safetensors"
    model = load_infer_model(rrc.Arch, weights)
    at28, at32 = evaluate_at(model, rrc, 28), evaluate_at(model, rrc, 32)
    rows += [("FixRes", "RandomResizedCrop student, test 28 px (x1)", pct(at28)),
             ("FixRes", "same weights, test 32 px (x1.15)", pct(at32))]
    from ssld.data import build_loader

    loader, _ = build_loader(fixres_split(rrc, rrc.DataLoader.Train), train=True, seed=0, image_size=32)
    recalibrate_bn(model, loader, 100)
    rows.append(("FixRes", "32 px after BN recalibration only", pct(evaluate_at(model, rrc, 32))))
    fx_cfg = config(data, out / "fixres", RRC_OPS, 1e-4, args.fixres_epochs, lr=0.01, extra={
        "FixRes": {"enabled": True, "train_size": 28, "test_size": 32, "epochs": args.fixres_epochs}},
        workers=args.workers)
    fx_cfg.Global.pretrained_model = str(weights)
    report = run_fixres(fx_cfg)
    rows.append(("FixRes", f"32 px after FixRes finetune ({args.fixres_epochs} epochs, classifier only)",
                 pct(report["after_finetune"])))
    fixres_s = time.perf_counter() - t

    recipe = {}
    for name, ops, l2 in (("plain", PLAIN_OPS, 1e-4), ("v2", V2_OPS, 5e-5)):
        t = time.perf_counter()
        result = train(config(data, out / name, ops, l2, args.epochs, workers=args.workers))
        recipe[name] = {"top1": result["top1"], "seconds": round(time.perf_counter() - t, 1)}
    rows += [("recipe", "plain: pad+crop+flip, L2 1e-4", pct(recipe["plain"])),
             ("recipe", "v2: + AutoAugment, L2 5e-5", pct(recipe["v2"]))]

    table = ["| experiment | row | top-1 (%) |", "|---|---|---|", *[f"| {a} | {b} | {c} |" for a, b, c in rows]]
    print(f"\nFashion-MNIST, ResNet-8, {10 * args.labeled_per_class} labeled train images, {args.epochs} epochs, "
          f"{args.test_size} test images; torch {torch.__version__}, {args.threads} threads")
    print("\n".join(table))
    print(f"\nwall time {time.perf_counter() - start:.0f} s (FixRes part {fixres_s:.0f} s)")
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps({
        "rows": rows, "fixres_report": report, "recipe": recipe, "args": vars(args),
        "wall_s": round(time.perf_counter() - start, 1), "torch": torch.__version__}, indent=2, default=str))


if __name__ == "__main__":
    main()
